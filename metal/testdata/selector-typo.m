//go:build darwin && cgo

/*
 * selector-typo.m: a planted mistake, kept as a fixture. tools/check-metal.sh
 * part (a) type-checks it beside the real sources and cross-builds ./metal
 * with it added, and REQUIRES both to fail: MPSGraph's selector is
 * matrixMultiplicationWithPrimaryTensor:secondaryTensor:name:, so this file
 * must be rejected with "no visible @interface for 'MPSGraph' declares the
 * selector". If the check ever accepts it, the check is broken.
 * (Under testdata/, the go tool never builds it in place.)
 */
#import "internal.h"

MPSGraphTensor *gomps_fixture_selector_typo(MPSGraph *g, MPSGraphTensor *a, MPSGraphTensor *b);

MPSGraphTensor *gomps_fixture_selector_typo(MPSGraph *g, MPSGraphTensor *a, MPSGraphTensor *b) {
    return [g matrixMultiplyWithPrimaryTensor:a secondaryTensor:b name:nil];
}
