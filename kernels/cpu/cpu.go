// Package cpu is the CPU backend of gomps: C behind the native ABI
// (kernels/gomps.h) with matrix products through oneDNN 2.x (Debian
// libdnnl-dev). cgo compiles its C files; importing the package links the
// gomps_* symbols into the program.
//
// The Go API here is a thin, test-facing wrapper over the ABI and over the
// per-op reference functions of ops.h; the library binding lives in gomps/.
package cpu

/*
#cgo CFLAGS: -O3 -std=gnu11 -fopenmp -Wall -Wextra -Wno-unused-parameter
#cgo LDFLAGS: -ldnnl -lm -fopenmp
#include <stdlib.h>
#include "internal.h"

static const char *cpu_onednn_isa(void) { return cpu_isa_name(dnnl_get_effective_cpu_isa()); }
*/
import "C"

import (
	"fmt"
	"runtime"
	"unsafe"

	// the native weights reader (gomps_wfile_open), compiled by cgo there
	_ "github.com/gomps/gomps/kernels/wfile"
)

// Status codes of the native ABI.
const (
	StatusOK          = int(C.GOMPS_OK)
	StatusInvalidArg  = int(C.GOMPS_ERR_INVALID_ARG)
	StatusOOM         = int(C.GOMPS_ERR_OOM)
	StatusIO          = int(C.GOMPS_ERR_IO)
	StatusFormat      = int(C.GOMPS_ERR_FORMAT)
	StatusUnsupported = int(C.GOMPS_ERR_UNSUPPORTED)
	StatusDevice      = int(C.GOMPS_ERR_DEVICE)
	StatusInternal    = int(C.GOMPS_ERR_INTERNAL)
)

// Precisions of the native ABI.
const (
	PrecisionF32  = int(C.GOMPS_PRECISION_F32)
	PrecisionBF16 = int(C.GOMPS_PRECISION_BF16)
)

// Error is a failed native call: its status code and the library's text.
type Error struct {
	Code int
	Msg  string
}

func (e *Error) Error() string { return fmt.Sprintf("%s (status %d)", e.Msg, e.Code) }

// Capabilities is what the backend runs on this CPU under the ISA ceiling
// (oneDNN's effective ISA, capped by ONEDNN_MAX_CPU_ISA): the ISA's name, the
// precisions it runs natively, and why models cannot load (nil when they can).
func Capabilities() (isa string, precisions []string, err error) {
	s := C.cpu_isa_get()
	isa = C.GoString(s.name)
	if s.error[0] != 0 {
		return isa, nil, &Error{Code: StatusUnsupported, Msg: "cpu: " + C.GoString(&s.error[0])}
	}
	precisions = []string{"f32"}
	if s.bf16 != 0 {
		precisions = append(precisions, "bf16")
	}
	return isa, precisions, nil
}

// OneDNNISA is oneDNN's own effective ISA, read without the backend's checks
// (for tests, which take their expectations from it).
func OneDNNISA() string { return C.GoString(C.cpu_onednn_isa()) }

// ABIVersion is the ABI version the C library was built with.
func ABIVersion() uint32 { return uint32(C.gomps_abi_version()) }

// Model is a loaded native weights file.
type Model struct {
	m *C.gomps_model_t
}

// OpenModel loads path with the given precision, max batch and max sequence
// (0 = the backend's defaults).
func OpenModel(path string, precision, maxBatch, maxSeq int) (*Model, error) {
	cpath := C.CString(path)
	defer C.free(unsafe.Pointer(cpath))
	opts := C.gomps_model_options{
		struct_size: C.uint32_t(unsafe.Sizeof(C.gomps_model_options{})),
		precision:   C.int32_t(precision),
		max_batch:   C.int32_t(maxBatch),
		max_seq:     C.int32_t(maxSeq),
	}
	// The init error is thread-local: read it on the thread that failed.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var m *C.gomps_model_t
	st := C.gomps_model_init(cpath, &opts, &m)
	if st != C.GOMPS_OK {
		return nil, &Error{Code: int(st), Msg: C.GoString(C.gomps_last_init_error())}
	}
	return &Model{m: m}, nil
}

// Close frees the model; every context of it must be closed first.
func (m *Model) Close() {
	if m.m != nil {
		C.gomps_model_free(m.m)
		m.m = nil
	}
}

// Info is what the backend reports about a loaded model.
type Info struct {
	Vocab, Hidden, Layers, Heads, Intermediate, MaxPosition, TypeVocab int
	Precision, MaxBatch, MaxSeq                                        int
	Backend, ISA                                                       string
}

// Info returns the model's shape and options.
func (m *Model) Info() (Info, error) {
	var in C.gomps_model_info
	in.struct_size = C.uint32_t(unsafe.Sizeof(in))
	if st := C.gomps_model_info_get(m.m, &in); st != C.GOMPS_OK {
		return Info{}, &Error{Code: int(st), Msg: "cpu: model info failed"}
	}
	return Info{
		Vocab: int(in.vocab_size), Hidden: int(in.hidden_size), Layers: int(in.num_layers),
		Heads: int(in.num_heads), Intermediate: int(in.intermediate_size),
		MaxPosition: int(in.max_position), TypeVocab: int(in.type_vocab_size),
		Precision: int(in.precision), MaxBatch: int(in.max_batch), MaxSeq: int(in.max_seq),
		Backend: C.GoString(&in.backend[0]), ISA: C.GoString(&in.isa[0]),
	}, nil
}

// Context is one instance's scratch over a model; one goroutine at a time.
type Context struct {
	c *C.gomps_context_t
}

// NewContext makes a context of m using threads threads (<= 0: all cores).
func NewContext(m *Model, threads int) (*Context, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var c *C.gomps_context_t
	if st := C.gomps_context_init(m.m, C.int32_t(threads), &c); st != C.GOMPS_OK {
		return nil, &Error{Code: int(st), Msg: C.GoString(C.gomps_last_init_error())}
	}
	return &Context{c: c}, nil
}

// Close frees the context.
func (c *Context) Close() {
	if c.c != nil {
		C.gomps_context_free(c.c)
		c.c = nil
	}
}

// SetThreads changes the thread count of later forwards.
func (c *Context) SetThreads(n int) error {
	if st := C.gomps_context_set_threads(c.c, C.int32_t(n)); st != C.GOMPS_OK {
		return &Error{Code: int(st), Msg: C.GoString(C.gomps_context_last_error(c.c))}
	}
	return nil
}

func ptr32[T int32 | float32](s []T) *T {
	if len(s) == 0 {
		return nil
	}
	return &s[0]
}

// Forward runs one padded batch: ids and types are [batch*seq], lengths
// [batch], logits [batch]. Slice lengths are passed through unchecked beyond
// emptiness so that tests can exercise the C checks.
func (c *Context) Forward(batch, seq int, ids, types, lengths []int32, logits []float32) error {
	st := C.gomps_context_forward(c.c, C.int32_t(batch), C.int32_t(seq),
		(*C.int32_t)(unsafe.Pointer(ptr32(ids))), (*C.int32_t)(unsafe.Pointer(ptr32(types))),
		(*C.int32_t)(unsafe.Pointer(ptr32(lengths))), (*C.float)(unsafe.Pointer(ptr32(logits))))
	if st != C.GOMPS_OK {
		return &Error{Code: int(st), Msg: C.GoString(C.gomps_context_last_error(c.c))}
	}
	return nil
}
