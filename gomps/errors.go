package gomps

import (
	"errors"
	"fmt"

	"github.com/gomps/gomps/gomps/internal/engine"
	"github.com/gomps/gomps/kernels/native"
)

// Errors of the library. Every error a Reranker returns matches one of these
// (or context.Canceled / context.DeadlineExceeded) with errors.Is. Their
// texts name no package; a wrapper adds where, once.
var (
	// ErrClosed: the Reranker was closed before or during the call.
	ErrClosed = errors.New("reranker closed")
	// ErrEmptyQuery: the query is "" (an empty passage is valid).
	ErrEmptyQuery = errors.New("empty query")
	// ErrInvalidUTF8: a query or passage is not valid UTF-8.
	ErrInvalidUTF8 = errors.New("text is not valid UTF-8")
	// ErrTooLong: with WithTruncation(false), a pair is longer than the
	// maximum length. The error is a *TooLongError.
	ErrTooLong = engine.ErrTooLong
	// ErrTokenizer: the tokenizer refused a text (such as text with a NUL
	// byte for a tokenizer that does not drop them). The error is a
	// *TokenizerError.
	ErrTokenizer = errors.New("the tokenizer refused the text")
	// ErrOverloaded: admitting the call would put more pairs in the queue
	// than WithMaxQueue allows. Returned at once, without waiting.
	ErrOverloaded = engine.ErrOverloaded
	// ErrNoModel: no model was given and none of the defaults exists.
	ErrNoModel = errors.New("no model found")
	// ErrNoCgo: the binary was built without cgo, so no native backend exists.
	ErrNoCgo = native.ErrNoCgo
	// ErrABIMismatch: a linked backend implements another version of the
	// native ABI (kernels/gomps.h) than this package was compiled against.
	ErrABIMismatch = native.ErrABIMismatch
	// ErrNoBackend: WithBackend names a backend this program does not have.
	ErrNoBackend = native.ErrNoBackend
)

// Sentinels of the native status classes (kernels/gomps.h gomps_status). An
// *Error from the backend matches the sentinel of its Code with errors.Is.
var (
	ErrInvalidArg  = native.ErrInvalidArg
	ErrOutOfMemory = native.ErrOutOfMemory
	ErrIO          = native.ErrIO
	ErrFormat      = native.ErrFormat
	ErrUnsupported = native.ErrUnsupported
	ErrDevice      = native.ErrDevice
	ErrInternal    = native.ErrInternal
)

// Code is a native status (gomps_status): 0 is ok, negative values name a
// class of failure.
type Code = native.Code

// The native status codes, equal to the GOMPS_* values of kernels/gomps.h.
const (
	CodeOK          = native.CodeOK
	CodeInvalidArg  = native.CodeInvalidArg
	CodeOutOfMemory = native.CodeOutOfMemory
	CodeIO          = native.CodeIO
	CodeFormat      = native.CodeFormat
	CodeUnsupported = native.CodeUnsupported
	CodeDevice      = native.CodeDevice
	CodeInternal    = native.CodeInternal
)

// Error is a failure reported by the native backend: its status Code, the
// operation that failed (Op: "model_init", "context_init", "forward", ...)
// and the backend's detail text. It matches the sentinel of its Code.
type Error = native.Error

// TooLongError says which pair is too long: Index is the passage's (or the
// pair's) in the request, Tokens the pair's tokens including [CLS] and two
// [SEP], MaxLength the limit in force. It matches ErrTooLong.
type TooLongError = engine.TooLongError

// TokenizerError says which text the tokenizer refused, and why. It matches
// ErrTokenizer.
type TokenizerError struct {
	Index int   // index of the passage (or pair) in the request; -1 for the query
	Err   error // the tokenizer's reason
}

func (e *TokenizerError) Error() string {
	where := "query"
	if e.Index >= 0 {
		where = fmt.Sprintf("passage %d", e.Index)
	}
	return fmt.Sprintf("%s: the tokenizer refused the text: %v", where, e.Err)
}

// Is reports whether target is ErrTokenizer.
func (e *TokenizerError) Is(target error) bool { return target == ErrTokenizer }

// Unwrap returns the tokenizer's reason.
func (e *TokenizerError) Unwrap() error { return e.Err }

// located is an error of this package with where it happened: its text is
// "<where>: <err>", and it unwraps to err.
type located struct {
	where string
	err   error
}

func (e *located) Error() string {
	return e.where + ": " + e.err.Error()
}

func (e *located) Unwrap() error { return e.err }

// at returns err located at fmt.Sprintf(format, args...).
func at(err error, format string, args ...any) error {
	return &located{where: fmt.Sprintf(format, args...), err: err}
}

var (
	_ error = (*located)(nil)
	_ error = (*TokenizerError)(nil)
)
