// Package wfile holds the one C reader of the native weights file
// (weights/FORMAT.md, version 1) that every native backend uses:
// gomps-wfile.[ch] in this directory, plain C11 + POSIX.
//
// With cgo, importing the package compiles that C into the program, so a
// backend's C code (kernels/cpu, metal/) can call gomps_wfile_open; the
// backends import it for that side effect. Its Go API (Check, CRC32C,
// SHA256) is test-facing: it lets Go tests run the C reader against files
// from the Go writer (weights.Convert) and against corruptions. The header
// is internal to the backends, not part of the native ABI
// (kernels/gomps.h), and the gomps library never includes it.
//
// Without cgo the package is empty.
package wfile
