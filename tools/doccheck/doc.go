// Package doccheck checks that docs/ARCHITECTURE.md names only things that
// exist; its test runs in CI with the rest of `go test ./...`.
//
// Every `backticked` token of the page is read as one of:
//
//   - a path (it contains a slash or ends in a source or doc extension):
//     the file or directory must exist, relative to the repository root;
//   - a route ("/rerank"): gomps/server/server.go must register it;
//   - a C name of the ABI (gomps_*, GOMPS_*): kernels/gomps.h must hold it;
//   - a Go name (pkg.Name, pkg.Type.Member): a package of that name in the
//     repository must declare it (functions, types, variables, constants,
//     methods, struct fields and interface methods count);
//   - a command ("gomps bench"): cmd/gomps/bench.go must exist;
//   - in the first column of the Packages table, a bare package name: a
//     directory of that name must exist.
//
// Tokens with spaces, angle brackets or of no such shape are prose and are
// not checked. Any mention of ARCHITECTURE.md elsewhere in the repository
// must say docs/ARCHITECTURE.md.
package doccheck
