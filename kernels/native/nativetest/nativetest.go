//go:build cgo && !darwin

// Package nativetest links a second native backend into a program for
// tests: "ref", the ABI in plain C over the CPU backend's reference ops
// (ref-backend.c), single-threaded, f32, computing every row at the padded
// length. Test support only: a test registers it with the binding
// (Register) and runs it beside the built-in backend through the same
// calls.
package nativetest

/*
#cgo CFLAGS: -O2 -std=gnu11 -Wall -Wextra -I${SRCDIR}/../..
#include "gomps.h"
const gomps_backend *nativetest_backend_ref(void);
const gomps_backend *nativetest_backend_stale(void);
*/
import "C"

import (
	"unsafe"

	"github.com/gomps/gomps/kernels/native"
	// the reference ops (kernels/cpu/ops.h) and the weights reader the
	// backend's C calls; the binding links them too
	_ "github.com/gomps/gomps/kernels/cpu"
	_ "github.com/gomps/gomps/kernels/wfile"
)

// Register registers the "ref" backend with the binding (once; later calls
// return the same backend).
func Register() (*native.Backend, error) {
	return native.Register(unsafe.Pointer(C.nativetest_backend_ref()))
}

// StaleTable is the ref backend's table claiming ABI version 1, which
// native.Register must refuse.
func StaleTable() unsafe.Pointer { return unsafe.Pointer(C.nativetest_backend_stale()) }
