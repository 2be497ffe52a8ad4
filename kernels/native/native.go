//go:build cgo

package native

/*
#cgo CFLAGS: -I${SRCDIR}/..
#include <stdlib.h>
#include <string.h>
#include "gomps.h"

// Calls through a backend's table (cgo cannot call C function pointers).
static gomps_status nb_capabilities(const gomps_backend *b, int32_t threads, gomps_capabilities *out) {
    return b->capabilities(threads, out);
}
static gomps_status nb_model_init(const gomps_backend *b, const char *path, const gomps_model_options *o,
                                  gomps_model_t **out) {
    return b->model_init(path, o, out);
}
static void nb_model_free(const gomps_backend *b, gomps_model_t *m) { b->model_free(m); }
static gomps_status nb_model_info(const gomps_backend *b, const gomps_model_t *m, gomps_model_info *out) {
    return b->model_info(m, out);
}
static const char *nb_last_init_error(const gomps_backend *b) { return b->last_init_error(); }
static gomps_status nb_context_init(const gomps_backend *b, gomps_model_t *m, int32_t n, gomps_context_t **out) {
    return b->context_init(m, n, out);
}
static void nb_context_free(const gomps_backend *b, gomps_context_t *c) { b->context_free(c); }
static gomps_status nb_context_set_threads(const gomps_backend *b, gomps_context_t *c, int32_t n) {
    return b->context_set_threads(c, n);
}
static gomps_status nb_context_forward(const gomps_backend *b, gomps_context_t *c, int32_t batch, int32_t seq,
                                       const int32_t *ids, const int32_t *types, const int32_t *lengths,
                                       float *logits) {
    return b->context_forward(c, batch, seq, ids, types, lengths, logits);
}
static const char *nb_context_last_error(const gomps_backend *b, const gomps_context_t *c) {
    return b->context_last_error(c);
}
// 1 if the table is one this binding can call: version 2, every function set.
static int nb_complete(const gomps_backend *b) {
    return GOMPS_BACKEND_HAS(b, context_last_error) && b->name && b->version && b->capabilities &&
           b->model_init && b->model_free && b->model_info && b->last_init_error && b->context_init &&
           b->context_free && b->context_set_threads && b->context_forward && b->context_last_error;
}
*/
import "C"

import (
	"errors"
	"fmt"
	"runtime"
	"sync"
	"unsafe"

	"github.com/gomps/gomps/weights"
)

// The codes and precisions of this package equal the header's: each index
// below is a compile-time constant that is out of range unless the two are
// equal.
var (
	_ = [1]struct{}{}[CodeOK-C.GOMPS_OK]
	_ = [1]struct{}{}[CodeInvalidArg-C.GOMPS_ERR_INVALID_ARG]
	_ = [1]struct{}{}[CodeOutOfMemory-C.GOMPS_ERR_OOM]
	_ = [1]struct{}{}[CodeIO-C.GOMPS_ERR_IO]
	_ = [1]struct{}{}[CodeFormat-C.GOMPS_ERR_FORMAT]
	_ = [1]struct{}{}[CodeUnsupported-C.GOMPS_ERR_UNSUPPORTED]
	_ = [1]struct{}{}[CodeDevice-C.GOMPS_ERR_DEVICE]
	_ = [1]struct{}{}[CodeInternal-C.GOMPS_ERR_INTERNAL]
	_ = [1]struct{}{}[PrecisionF32-C.GOMPS_PRECISION_F32]
	_ = [1]struct{}{}[PrecisionBF16-C.GOMPS_PRECISION_BF16]
	_ = [1]struct{}{}[PrecisionF16-C.GOMPS_PRECISION_F16]
)

// ABIVersion is the GOMPS_ABI_VERSION this package was compiled against.
const ABIVersion = C.GOMPS_ABI_VERSION

// Backend is one backend's table of functions.
type Backend struct {
	t       *C.gomps_backend
	name    string
	version string
}

var (
	regMu    sync.Mutex
	backends []*Backend // the nLinked built-in ones first (in preference order), then registered
	nLinked  int
	linkErr  error // a built-in backend that implements another ABI
)

func init() {
	for _, t := range linked() {
		b, err := newBackend(t)
		if err != nil {
			linkErr = errors.Join(linkErr, err)
			continue
		}
		backends = append(backends, b)
	}
	nLinked = len(backends)
}

// newBackend checks a table: the ABI version this package was compiled
// against, and every function present.
func newBackend(t *C.gomps_backend) (*Backend, error) {
	if t == nil {
		return nil, fmt.Errorf("%w: the accessor returned no table", ErrABIMismatch)
	}
	if t.abi_version != C.GOMPS_ABI_VERSION {
		name := "a backend"
		if t.name != nil {
			name = "backend " + C.GoString(t.name)
		}
		return nil, fmt.Errorf("%w: %s implements version %d, gomps was compiled against %d",
			ErrABIMismatch, name, uint32(t.abi_version), C.GOMPS_ABI_VERSION)
	}
	if C.nb_complete(t) == 0 {
		return nil, fmt.Errorf("%w: a version %d table with struct_size %d lacks a function or its name",
			ErrABIMismatch, uint32(t.abi_version), uint32(t.struct_size))
	}
	return &Backend{t: t, name: C.GoString(t.name), version: C.GoString(t.version)}, nil
}

// Register adds a backend from its table (a const gomps_backend * from its
// accessor, as an unsafe.Pointer) after checking its ABI version and
// functions. Registering a table twice returns the first *Backend; a
// different table under a name already taken is refused.
func Register(table unsafe.Pointer) (*Backend, error) {
	b, err := newBackend((*C.gomps_backend)(table))
	if err != nil {
		return nil, err
	}
	regMu.Lock()
	defer regMu.Unlock()
	for _, o := range backends {
		if o.name == b.name {
			if o.t == b.t {
				return o, nil
			}
			return nil, fmt.Errorf("backend %q is already registered", b.name)
		}
	}
	backends = append(backends, b)
	return b, nil
}

// Backends lists the backends of this program: those linked in (in
// preference order), then those registered.
func Backends() []*Backend {
	regMu.Lock()
	defer regMu.Unlock()
	return append([]*Backend(nil), backends...)
}

// Default is the preferred backend linked into this program.
func Default() (*Backend, error) {
	regMu.Lock()
	defer regMu.Unlock()
	if nLinked == 0 {
		if linkErr != nil {
			return nil, linkErr
		}
		return nil, fmt.Errorf("%w: none is linked into this program", ErrNoBackend)
	}
	return backends[0], nil
}

// Lookup returns the backend named name ("" = Default).
func Lookup(name string) (*Backend, error) {
	if name == "" {
		return Default()
	}
	regMu.Lock()
	defer regMu.Unlock()
	var names []string
	for _, b := range backends {
		if b.name == name {
			return b, nil
		}
		names = append(names, b.name)
	}
	return nil, fmt.Errorf("%w: %q (this program has %q)", ErrNoBackend, name, names)
}

// Name is the backend's name ("cpu", "metal", ...).
func (b *Backend) Name() string { return b.name }

// Version is the backend's own version and what it is built on.
func (b *Backend) Version() string { return b.version }

// Capabilities asks the backend what it can do here for a budget of threads
// CPU threads over all contexts (<= 0: every CPU the process may use).
// Cheap; any goroutine.
func (b *Backend) Capabilities(threads int) (Capabilities, error) {
	var c C.gomps_capabilities
	c.struct_size = C.uint32_t(C.sizeof_gomps_capabilities)
	if st := C.nb_capabilities(b.t, C.int32_t(threads), &c); st != C.GOMPS_OK {
		return Capabilities{}, &Error{Code: Code(st), Op: "capabilities"}
	}
	out := Capabilities{
		Precisions:  precisionsOf(uint32(c.precisions)),
		Padded:      c.padded != 0,
		MaxBatch:    int(c.max_batch),
		MaxSeq:      int(c.max_seq),
		Instances:   max(1, int(c.instances)),
		Threads:     max(1, int(c.threads)),
		MemoryInUse: int64(c.memory_in_use),
		ISA:         cString(c.isa[:]),
	}
	if c.usable == 0 {
		out.Unusable = cString(c.unusable[:])
		if out.Unusable == "" {
			out.Unusable = b.name + ": no model can load here"
		}
	}
	return out, nil
}

// Model is a loaded model of one backend: immutable, shared by its
// contexts, which must be closed before it.
type Model struct {
	b    *Backend
	p    *C.gomps_model_t
	info ModelInfo
	tok  []byte
	once sync.Once
}

// Load loads and validates the native weights file at path. The OS thread
// is pinned across the init and the read of its thread-local error text.
// Cost: the backend reads the whole file once and packs its weights.
func (b *Backend) Load(path string, o Options) (*Model, error) {
	opts := C.gomps_model_options{
		struct_size: C.uint32_t(C.sizeof_gomps_model_options),
		precision:   C.int32_t(o.Precision),
		max_batch:   C.int32_t(o.MaxBatch),
		max_seq:     C.int32_t(o.MaxSeq),
	}
	if o.Buckets != "" {
		cb := C.CString(o.Buckets)
		defer C.free(unsafe.Pointer(cb))
		opts.buckets = cb
	}
	cpath := C.CString(path)
	defer C.free(unsafe.Pointer(cpath))
	runtime.LockOSThread()
	var p *C.gomps_model_t
	st := C.nb_model_init(b.t, cpath, &opts, &p)
	var msg string
	if st != C.GOMPS_OK {
		msg = C.GoString(C.nb_last_init_error(b.t))
	}
	runtime.UnlockOSThread()
	if st != C.GOMPS_OK {
		return nil, &Error{Code: Code(st), Op: "model_init", Msg: msg}
	}
	if p == nil {
		return nil, &Error{Code: CodeInternal, Op: "model_init", Msg: b.name + ": returned ok and no model"}
	}
	m := &Model{b: b, p: p}
	var in C.gomps_model_info
	in.struct_size = C.uint32_t(C.sizeof_gomps_model_info)
	if st := C.nb_model_info(b.t, p, &in); st != C.GOMPS_OK {
		C.nb_model_free(b.t, p)
		return nil, &Error{Code: Code(st), Op: "model_info"}
	}
	m.info = ModelInfo{
		Backend:   cString(in.backend[:]),
		ISA:       cString(in.isa[:]),
		Arch:      cString(in.arch[:]),
		Name:      cString(in.name[:]),
		NumLabels: int(in.num_labels),
		Config: weights.Config{
			VocabSize:        int(in.vocab_size),
			HiddenSize:       int(in.hidden_size),
			NumLayers:        int(in.num_layers),
			NumHeads:         int(in.num_heads),
			IntermediateSize: int(in.intermediate_size),
			MaxPosition:      int(in.max_position),
			TypeVocabSize:    int(in.type_vocab_size),
			PadTokenID:       int(in.pad_token_id),
			LayerNormEps:     float64(in.layer_norm_eps),
		},
		Precision:    Precision(in.precision),
		MaxBatch:     int(in.max_batch),
		MaxSeq:       int(in.max_seq),
		WeightsBytes: int64(in.weights_bytes),
		ContextBytes: int64(in.context_bytes),
	}
	for i := range m.info.SourceSHA256 {
		m.info.SourceSHA256[i] = byte(in.source_sha256[i])
	}
	if in.tokenizer != nil && in.tokenizer_size > 0 {
		m.tok = C.GoBytes(unsafe.Pointer(in.tokenizer), C.int(in.tokenizer_size))
	}
	if m.info.NumLabels < 1 {
		C.nb_model_free(b.t, p)
		return nil, &Error{Code: CodeInternal, Op: "model_info", Msg: fmt.Sprintf("%s: num_labels %d", b.name, m.info.NumLabels)}
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

// Backend is the backend that loaded m.
func (m *Model) Backend() *Backend { return m.b }

// Info is what the backend reported at load.
func (m *Model) Info() ModelInfo { return m.info }

// Tokenizer is the file's tokenizer.json as the backend verified it (a copy
// owned by m; do not modify it).
func (m *Model) Tokenizer() []byte { return m.tok }

// Handle is the backend's gomps_model_t *, for a backend's own diagnostic
// entry points (metal.ModelStats); nil after Close.
func (m *Model) Handle() unsafe.Pointer { return unsafe.Pointer(m.p) }

// Close frees the model; every context of it must be closed first.
// Idempotent.
func (m *Model) Close() {
	m.once.Do(func() {
		C.nb_model_free(m.b.t, m.p)
		m.p = nil
	})
}

// Context is one instance's scratch over a model: one goroutine at a time.
type Context struct {
	m    *Model
	p    *C.gomps_context_t
	once sync.Once
}

// NewContext makes a context of m whose forward passes use threads threads
// (<= 0: the backend's choice), the OS thread pinned as for Load.
func (m *Model) NewContext(threads int) (*Context, error) {
	if m.p == nil {
		return nil, ErrClosed
	}
	runtime.LockOSThread()
	var p *C.gomps_context_t
	st := C.nb_context_init(m.b.t, m.p, C.int32_t(threads), &p)
	var msg string
	if st != C.GOMPS_OK {
		msg = C.GoString(C.nb_last_init_error(m.b.t))
	}
	runtime.UnlockOSThread()
	if st != C.GOMPS_OK {
		return nil, &Error{Code: Code(st), Op: "context_init", Msg: msg}
	}
	if p == nil {
		return nil, &Error{Code: CodeInternal, Op: "context_init", Msg: m.b.name + ": returned ok and no context"}
	}
	return &Context{m: m, p: p}, nil
}

// Forward runs one padded batch: ids and types are [batch*seq], lengths
// [batch], logits [batch*NumLabels] (filled, row-major). The slices are
// lent to C for this one call. An empty slice is passed as NULL, so the
// backend's own checks answer it; any other slice must be large enough for
// batch x seq. Cost: one cgo call.
func (c *Context) Forward(batch, seq int, ids, types, lengths []int32, logits []float32) error {
	if c.p == nil {
		return ErrClosed
	}
	short := func(n, want int) bool { return n > 0 && n < want }
	nl := c.m.info.NumLabels
	if short(len(ids), batch*seq) || short(len(types), batch*seq) || short(len(lengths), batch) || short(len(logits), batch*nl) {
		return &Error{Code: CodeInvalidArg, Op: "forward", Msg: fmt.Sprintf("forward: buffers too small for batch %d x seq %d x %d labels", batch, seq, nl)}
	}
	st := C.nb_context_forward(c.m.b.t, c.p, C.int32_t(batch), C.int32_t(seq),
		(*C.int32_t)(unsafe.Pointer(first(ids))), (*C.int32_t)(unsafe.Pointer(first(types))),
		(*C.int32_t)(unsafe.Pointer(first(lengths))), (*C.float)(unsafe.Pointer(first(logits))))
	if st != C.GOMPS_OK {
		return &Error{Code: Code(st), Op: "forward", Msg: C.GoString(C.nb_context_last_error(c.m.b.t, c.p))}
	}
	return nil
}

func first[T int32 | float32](s []T) *T {
	if len(s) == 0 {
		return nil
	}
	return &s[0]
}

// SetThreads changes the threads later forward calls use.
func (c *Context) SetThreads(n int) error {
	if c.p == nil {
		return ErrClosed
	}
	if st := C.nb_context_set_threads(c.m.b.t, c.p, C.int32_t(n)); st != C.GOMPS_OK {
		return &Error{Code: Code(st), Op: "context_set_threads", Msg: C.GoString(C.nb_context_last_error(c.m.b.t, c.p))}
	}
	return nil
}

// Close frees the context. Idempotent.
func (c *Context) Close() {
	c.once.Do(func() {
		C.nb_context_free(c.m.b.t, c.p)
		c.p = nil
	})
}
