//go:build cgo

package gomps

/*
#cgo CFLAGS: -I${SRCDIR}/../kernels
#include <stdlib.h>
#include "gomps.h"
*/
import "C"

import (
	"fmt"
	"runtime"
	"unsafe"
)

// The status codes of this package equal the header's: each index below is
// a compile-time constant that is out of range unless the two are equal.
var (
	_ = [1]struct{}{}[CodeOK-C.GOMPS_OK]
	_ = [1]struct{}{}[CodeInvalidArg-C.GOMPS_ERR_INVALID_ARG]
	_ = [1]struct{}{}[CodeOutOfMemory-C.GOMPS_ERR_OOM]
	_ = [1]struct{}{}[CodeIO-C.GOMPS_ERR_IO]
	_ = [1]struct{}{}[CodeFormat-C.GOMPS_ERR_FORMAT]
	_ = [1]struct{}{}[CodeUnsupported-C.GOMPS_ERR_UNSUPPORTED]
	_ = [1]struct{}{}[CodeDevice-C.GOMPS_ERR_DEVICE]
	_ = [1]struct{}{}[CodeInternal-C.GOMPS_ERR_INTERNAL]
	_ = [1]struct{}{}[precisionF32-C.GOMPS_PRECISION_F32]
	_ = [1]struct{}{}[precisionBF16-C.GOMPS_PRECISION_BF16]
	_ = [1]struct{}{}[precisionF16-C.GOMPS_PRECISION_F16]
)

// haveNative: a native backend is linked.
const haveNative = true

// abiErr is set at init when the linked backend implements another ABI
// version; every load then fails with it.
var abiErr error

func init() {
	if got := uint32(C.gomps_abi_version()); got != C.GOMPS_ABI_VERSION {
		abiErr = fmt.Errorf("%w: backend implements version %d, gomps was compiled against %d",
			ErrABIMismatch, got, C.GOMPS_ABI_VERSION)
	}
}

// nativeModel owns a gomps_model_t. Immutable after load; free only after
// every context made from it is freed.
type nativeModel struct {
	p    *C.gomps_model_t
	info modelInfo
}

// modelInfo is gomps_model_info in Go terms.
type modelInfo struct {
	vocabSize, hidden, layers, heads, intermediate, maxPosition, typeVocab int
	precision, maxBatch, maxSeq                                            int
	backend, isa                                                           string
}

// nativeContext owns a gomps_context_t: one goroutine at a time.
type nativeContext struct {
	p *C.gomps_context_t
}

func statusError(st C.gomps_status, op, msg string) error {
	return &Error{Code: Code(st), Op: op, Msg: msg}
}

// loadModel loads a native weights file. The OS thread is pinned across the
// init and the read of its thread-local error text.
func loadModel(path string, precision int32, maxBatch, maxSeq int) (*nativeModel, error) {
	if abiErr != nil {
		return nil, abiErr
	}
	opts := C.gomps_model_options{
		struct_size: C.uint32_t(C.sizeof_gomps_model_options),
		precision:   C.int32_t(precision),
		max_batch:   C.int32_t(maxBatch),
		max_seq:     C.int32_t(maxSeq),
	}
	cpath := C.CString(path)
	defer C.free(unsafe.Pointer(cpath))
	runtime.LockOSThread()
	var p *C.gomps_model_t
	st := C.gomps_model_init(cpath, &opts, &p)
	var msg string
	if st != C.GOMPS_OK {
		msg = C.GoString(C.gomps_last_init_error())
	}
	runtime.UnlockOSThread()
	if st != C.GOMPS_OK {
		return nil, statusError(st, "model_init", msg)
	}
	if p == nil {
		return nil, &Error{Code: CodeInternal, Op: "model_init", Msg: "backend returned ok and no model"}
	}
	m := &nativeModel{p: p}
	var in C.gomps_model_info
	in.struct_size = C.uint32_t(C.sizeof_gomps_model_info)
	if st := C.gomps_model_info_get(p, &in); st != C.GOMPS_OK {
		C.gomps_model_free(p)
		return nil, statusError(st, "model_info_get", "")
	}
	m.info = modelInfo{
		vocabSize:    int(in.vocab_size),
		hidden:       int(in.hidden_size),
		layers:       int(in.num_layers),
		heads:        int(in.num_heads),
		intermediate: int(in.intermediate_size),
		maxPosition:  int(in.max_position),
		typeVocab:    int(in.type_vocab_size),
		precision:    int(in.precision),
		maxBatch:     int(in.max_batch),
		maxSeq:       int(in.max_seq),
		backend:      cString(in.backend[:]),
		isa:          cString(in.isa[:]),
	}
	return m, nil
}

// cString reads a NUL-terminated fixed-size char array without trusting the NUL.
func cString(a []C.char) string {
	b := make([]byte, 0, len(a))
	for _, c := range a {
		if c == 0 {
			break
		}
		b = append(b, byte(c))
	}
	return string(b)
}

func (m *nativeModel) free() {
	if m.p != nil {
		C.gomps_model_free(m.p)
		m.p = nil
	}
}

// newContext makes a context of m with n threads (pinned thread as for
// loadModel).
func (m *nativeModel) newContext(threads int) (*nativeContext, error) {
	runtime.LockOSThread()
	var p *C.gomps_context_t
	st := C.gomps_context_init(m.p, C.int32_t(threads), &p)
	var msg string
	if st != C.GOMPS_OK {
		msg = C.GoString(C.gomps_last_init_error())
	}
	runtime.UnlockOSThread()
	if st != C.GOMPS_OK {
		return nil, statusError(st, "context_init", msg)
	}
	if p == nil {
		return nil, &Error{Code: CodeInternal, Op: "context_init", Msg: "backend returned ok and no context"}
	}
	return &nativeContext{p: p}, nil
}

// forward runs one padded batch: ids and types are [batch*seq], lengths
// [batch], logits [batch] (filled). The Go slices are lent to C for this one
// call only. Cost: one cgo call, O(batch * seq^2) work.
func (c *nativeContext) forward(batch, seq int, ids, types, lengths []int32, logits []float32) error {
	if batch < 1 || seq < 1 || len(ids) < batch*seq || len(types) < batch*seq || len(lengths) < batch || len(logits) < batch {
		return &Error{Code: CodeInvalidArg, Op: "forward", Msg: fmt.Sprintf("buffers too small for batch %d x seq %d", batch, seq)}
	}
	st := C.gomps_context_forward(c.p, C.int32_t(batch), C.int32_t(seq),
		(*C.int32_t)(unsafe.Pointer(&ids[0])), (*C.int32_t)(unsafe.Pointer(&types[0])),
		(*C.int32_t)(unsafe.Pointer(&lengths[0])), (*C.float)(unsafe.Pointer(&logits[0])))
	if st != C.GOMPS_OK {
		return statusError(st, "forward", C.GoString(C.gomps_context_last_error(c.p)))
	}
	return nil
}

// setThreads changes the threads later forward calls use.
func (c *nativeContext) setThreads(n int) error {
	if st := C.gomps_context_set_threads(c.p, C.int32_t(n)); st != C.GOMPS_OK {
		return statusError(st, "context_set_threads", C.GoString(C.gomps_context_last_error(c.p)))
	}
	return nil
}

func (c *nativeContext) free() {
	if c.p != nil {
		C.gomps_context_free(c.p)
		c.p = nil
	}
}
