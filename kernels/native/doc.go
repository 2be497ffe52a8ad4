// Package native is the one Go binding of the native ABI (kernels/gomps.h):
// the only Go code that calls the gomps_* functions. Every other package
// (the gomps library, the backends' tests, the tools) calls this Go API.
//
// A backend is a value (*Backend): a table of C functions with a name and a
// version, asked what it can do here (Capabilities) before a model loads.
// The backends built into this package are chosen once, here, by build
// tags: with cgo, the CPU backend (kernels/cpu) on every platform but
// darwin and the Metal backend (metal/) on darwin. Register adds any other
// table that implements the ABI (tests link a reference backend that way).
// Without cgo there is no backend: Default and Lookup return ErrNoCgo.
//
// Objects follow the ABI's rules: a Model is immutable and shared by its
// Contexts; a Context is used by one goroutine at a time; buffers are lent
// to C for one call only. Errors from a backend are *Error values that
// match the sentinel of their Code with errors.Is.
package native
