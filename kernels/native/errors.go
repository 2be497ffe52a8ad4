package native

import (
	"errors"
	"fmt"
)

// Errors of the binding. A backend's failure is an *Error matching the
// sentinel of its Code.
var (
	// ErrNoCgo: the binary was built without cgo, so no native backend exists.
	ErrNoCgo = errors.New("built without cgo: no native backend (rebuild with CGO_ENABLED=1)")
	// ErrABIMismatch: a backend implements another version of the native
	// ABI (kernels/gomps.h) than this package was compiled against.
	ErrABIMismatch = errors.New("native ABI version mismatch")
	// ErrNoBackend: no backend of the name asked is linked or registered.
	ErrNoBackend = errors.New("no such backend")
	// ErrClosed: a Model or Context was used after Close.
	ErrClosed = errors.New("native object closed")
)

// Sentinels of the native status classes (gomps_status).
var (
	ErrInvalidArg  = errors.New("invalid argument")
	ErrOutOfMemory = errors.New("out of memory")
	ErrIO          = errors.New("I/O error")
	ErrFormat      = errors.New("bad weights file")
	ErrUnsupported = errors.New("unsupported")
	ErrDevice      = errors.New("device failure")
	ErrInternal    = errors.New("internal error")
)

// Code is a native status (gomps_status): 0 is ok, negative values name a
// class of failure.
type Code int32

// The native status codes, equal to the GOMPS_* values of kernels/gomps.h
// (checked against the header at compile time in the cgo build).
const (
	CodeOK          Code = 0
	CodeInvalidArg  Code = -1
	CodeOutOfMemory Code = -2
	CodeIO          Code = -3
	CodeFormat      Code = -4
	CodeUnsupported Code = -5
	CodeDevice      Code = -6
	CodeInternal    Code = -7
)

var codeSentinels = map[Code]error{
	CodeInvalidArg:  ErrInvalidArg,
	CodeOutOfMemory: ErrOutOfMemory,
	CodeIO:          ErrIO,
	CodeFormat:      ErrFormat,
	CodeUnsupported: ErrUnsupported,
	CodeDevice:      ErrDevice,
	CodeInternal:    ErrInternal,
}

var codeNames = map[Code]string{
	CodeOK:          "ok",
	CodeInvalidArg:  "invalid argument",
	CodeOutOfMemory: "out of memory",
	CodeIO:          "I/O error",
	CodeFormat:      "bad weights file",
	CodeUnsupported: "unsupported",
	CodeDevice:      "device failure",
	CodeInternal:    "internal error",
}

func (c Code) String() string {
	if s, ok := codeNames[c]; ok {
		return s
	}
	return fmt.Sprintf("status %d", int32(c))
}

// Error is a failure reported by a native backend: its status Code, the
// operation that failed (Op: "model_init", "context_init", "forward", ...)
// and the backend's detail text.
type Error struct {
	Code Code
	Op   string
	Msg  string
}

// Error is the backend's text, which says what failed; without one, the
// operation and the status class.
func (e *Error) Error() string {
	if e.Msg == "" {
		return fmt.Sprintf("%s: %s", e.Op, e.Code)
	}
	return e.Msg
}

// Is reports whether target is the sentinel of e's Code.
func (e *Error) Is(target error) bool {
	s, ok := codeSentinels[e.Code]
	return ok && s == target
}

var _ error = (*Error)(nil)
