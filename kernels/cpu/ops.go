package cpu

/*
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "internal.h"

// Runs the fast attention on packed rows outside a model, for the op tests.
// The kernel is the one a context picks: GOMPS_CPU_ATTENTION and precision.
// The AMX kernel reads and writes bf16: qkv is rounded to bf16 for it (as the
// QKV matmul's bf16 output is) and its bf16 output widened into out.
static int op_attention_fast(int32_t precision, const float *qkv, int32_t batch,
                             const int64_t *offsets, int32_t heads, int32_t head_dim, int cls_only,
                             int32_t max_seq, int32_t threads, float *out) {
    const int64_t H = (int64_t)heads * head_dim, rows = cls_only ? batch : offsets[batch];
    gomps_model_t m;
    memset(&m, 0, sizeof m);
    m.max_seq = max_seq;
    m.precision = precision;
    gomps_context_t c;
    memset(&c, 0, sizeof c);
    c.model = &m;
    c.n_threads = threads;
    c.attention_kind = cpu_attention_kind_parse(getenv("GOMPS_CPU_ATTENTION"));
    if (c.attention_kind < 0) return GOMPS_ERR_INVALID_ARG;
    c.scores = calloc((size_t)cpu_attention_work(max_seq, head_dim) * threads, sizeof(float));
    if (!c.scores) return GOMPS_ERR_OOM;
    omp_set_num_threads(threads);
    if (!cpu_attention_bf16_io(cpu_attention_resolve(c.attention_kind, precision, head_dim))) {
        cpu_attention_fast(&c, qkv, batch, offsets, heads, head_dim, cls_only, out);
        free(c.scores);
        return GOMPS_OK;
    }
    uint16_t *q16 = malloc((size_t)(offsets[batch] * 3 * H) * 2), *o16 = malloc((size_t)(rows * H) * 2);
    if (!q16 || !o16) {
        free(q16);
        free(o16);
        free(c.scores);
        return GOMPS_ERR_OOM;
    }
    cpu_f32_to_bf16(qkv, q16, offsets[batch] * 3 * H);
    // poison: a row the kernel does not write reads back as NaN
    memset(o16, 0xff, (size_t)(rows * H) * 2);
    cpu_attention_fast(&c, q16, batch, offsets, heads, head_dim, cls_only, o16);
    for (int64_t i = 0; i < rows * H; i++) {
        uint32_t b = (uint32_t)o16[i] << 16;
        memcpy(&out[i], &b, 4);
    }
    free(q16);
    free(o16);
    free(c.scores);
    return GOMPS_OK;
}

// The kernel cpu_attention_fast runs for GOMPS_CPU_ATTENTION, precision and head_dim.
static int op_attention_kernel(int32_t precision, int32_t head_dim) {
    int kind = cpu_attention_kind_parse(getenv("GOMPS_CPU_ATTENTION"));
    return kind < 0 ? kind : cpu_attention_resolve(kind, precision, head_dim);
}

// Runs one fast linear kind (oneDNN, weights packed as a model would) over
// rows rows, for the op tests. Returns a gomps_status; err gets the text.
static int op_linear_fast(int kind, const float *x, int64_t rows, int32_t n_in, const float *w,
                          const float *b, int32_t n_out, const float *res, float *y,
                          int32_t threads, char *err, size_t errlen) {
    int64_t cap = (rows + CPU_ROWS_GRAIN - 1) / CPU_ROWS_GRAIN * CPU_ROWS_GRAIN;
    gomps_model_t *m = calloc(1, sizeof *m);
    gomps_context_t *c = calloc(1, sizeof *c);
    float *xs = calloc((size_t)(cap * n_in), sizeof(float));
    float *rs = calloc((size_t)(cap * n_out), sizeof(float));
    float *ys = calloc((size_t)(cap * n_out), sizeof(float));
    cpu_linear lin = {.n_out = n_out, .n_in = n_in, .w = w, .b = b};
    gomps_status st = GOMPS_ERR_OOM;
    snprintf(err, errlen, "op linear: out of memory");
    if (!m || !c || !xs || !rs || !ys) goto out;
    snprintf(m->path, sizeof m->path, "op-test");
    omp_set_num_threads(threads);
    st = GOMPS_ERR_DEVICE;
    if (dnnl_engine_create(&m->engine, dnnl_cpu, 0)) { m->engine = NULL; goto out; }
    if (dnnl_stream_create(&c->stream, m->engine, dnnl_stream_default_flags)) { c->stream = NULL; goto out; }
    c->model = m;
    c->n_threads = threads;
    if ((st = cpu_linear_pack(m, &lin))) { snprintf(err, errlen, "%s", cpu_last_init_error()); goto out; }
    memcpy(xs, x, (size_t)(rows * n_in) * sizeof(float));
    if (res) memcpy(rs, res, (size_t)(rows * n_out) * sizeof(float));
    st = cpu_linear_run(c, (cpu_linear_kind)kind, &lin, xs, rows, res ? rs : NULL, ys);
    if (st) { snprintf(err, errlen, "%s", c->err); goto out; }
    memcpy(y, ys, (size_t)(rows * n_out) * sizeof(float));
    err[0] = 0;
out:
    if (c) {
        cpu_prims_free(c);
        if (c->stream) dnnl_stream_destroy(c->stream);
        free(c->scratchpad);
    }
    cpu_linear_unpack(&lin);
    if (m && m->engine) dnnl_engine_destroy(m->engine);
    free(m); free(c); free(xs); free(rs); free(ys);
    return st;
}

// Fast embeddings of packed rows with tables outside a model, for the op tests.
static void op_embeddings_fast(const float *word, const float *position, const float *token_type,
                               const float *gamma, const float *beta, float eps, int32_t hidden,
                               const int32_t *ids, const int32_t *type_ids, int32_t batch,
                               int32_t seq, const int64_t *offsets, int32_t threads, float *y) {
    gomps_model_t m;
    memset(&m, 0, sizeof m);
    m.file.hidden_size = hidden;
    m.word = word; m.position = position; m.token_type = token_type;
    m.emb_ln_gamma = gamma; m.emb_ln_beta = beta; m.eps = eps;
    cpu_embeddings_packed(&m, ids, type_ids, batch, seq, offsets, threads, y);
}
*/
import "C"

import (
	"os"
	"unsafe"
)

// Linear kinds of the fast path (the post-ops fused into each matmul).
const (
	LinearQKV     = int(C.CPU_LINEAR_QKV)      // + bias
	LinearAttnOut = int(C.CPU_LINEAR_ATTN_OUT) // + bias + residual
	LinearFFNUp   = int(C.CPU_LINEAR_FFN_UP)   // + bias, then erf GELU
	LinearFFNDown = int(C.CPU_LINEAR_FFN_DOWN) // + bias + residual
)

func fp(s []float32) *C.float {
	if len(s) == 0 {
		return nil
	}
	return (*C.float)(unsafe.Pointer(&s[0]))
}

func ip(s []int32) *C.int32_t {
	if len(s) == 0 {
		return nil
	}
	return (*C.int32_t)(unsafe.Pointer(&s[0]))
}

func i64p(s []int64) *C.int64_t {
	if len(s) == 0 {
		return nil
	}
	return (*C.int64_t)(unsafe.Pointer(&s[0]))
}

// RefLinear is gomps_ref_linear_f32: y[rows,nOut] = x W^T + b (b may be nil).
func RefLinear(x []float32, rows, nIn int, w, b []float32, nOut int, y []float32) {
	C.gomps_ref_linear_f32(fp(x), C.int64_t(rows), C.int64_t(nIn), fp(w), fp(b), C.int64_t(nOut), fp(y))
}

// FastLinear runs one fast-path linear kind through oneDNN with weights
// packed as a model packs them; res is the residual for the kinds that add one.
func FastLinear(kind int, x []float32, rows, nIn int, w, b []float32, nOut int, res, y []float32, threads int) error {
	var errBuf [512]C.char
	st := C.op_linear_fast(C.int(kind), fp(x), C.int64_t(rows), C.int32_t(nIn), fp(w), fp(b),
		C.int32_t(nOut), fp(res), fp(y), C.int32_t(threads), &errBuf[0], C.size_t(len(errBuf)))
	if st != 0 {
		return &Error{Code: int(st), Msg: C.GoString(&errBuf[0])}
	}
	return nil
}

// RefLayerNorm is gomps_ref_layernorm_f32 (res may be nil).
func RefLayerNorm(x, res, gamma, beta []float32, eps float32, rows, n int, y []float32) {
	C.gomps_ref_layernorm_f32(fp(x), fp(res), fp(gamma), fp(beta), C.float(eps), C.int64_t(rows), C.int64_t(n), fp(y))
}

// FastLayerNorm is the vectorised LayerNorm of the fast path (res may be nil).
func FastLayerNorm(x, res, gamma, beta []float32, eps float32, rows, n int, y []float32) {
	C.cpu_layernorm_fast(fp(x), fp(res), fp(gamma), fp(beta), C.float(eps), C.int64_t(rows), C.int64_t(n), fp(y))
}

// RefSoftmaxMasked is gomps_ref_softmax_masked_f32.
func RefSoftmaxMasked(x []float32, rows, n, valid int, y []float32) {
	C.gomps_ref_softmax_masked_f32(fp(x), C.int64_t(rows), C.int64_t(n), C.int64_t(valid), fp(y))
}

// FastSoftmaxRow is the fast path's in-place softmax of one row.
func FastSoftmaxRow(x []float32) {
	C.cpu_softmax_row_fast(fp(x), C.int64_t(len(x)))
}

// RefGELU is gomps_ref_gelu_erf_f32.
func RefGELU(x, y []float32) {
	C.gomps_ref_gelu_erf_f32(fp(x), C.int64_t(len(x)), fp(y))
}

// RefEmbeddings is gomps_ref_embeddings_f32 over a padded batch.
func RefEmbeddings(word, position, tokenType, gamma, beta []float32, eps float32, hidden int,
	ids, types []int32, batch, seq int, lengths []int32, y []float32) {
	C.gomps_ref_embeddings_f32(fp(word), fp(position), fp(tokenType), fp(gamma), fp(beta), C.float(eps),
		C.int64_t(hidden), ip(ids), ip(types), C.int32_t(batch), C.int32_t(seq), ip(lengths), fp(y))
}

// FastEmbeddings is the fast path's embeddings of a padded batch into packed
// rows (offsets[b] = first packed row of row b; offsets[batch] = total).
func FastEmbeddings(word, position, tokenType, gamma, beta []float32, eps float32, hidden int,
	ids, types []int32, batch, seq int, offsets []int64, threads int, y []float32) {
	C.op_embeddings_fast(fp(word), fp(position), fp(tokenType), fp(gamma), fp(beta), C.float(eps),
		C.int32_t(hidden), ip(ids), ip(types), C.int32_t(batch), C.int32_t(seq), i64p(offsets),
		C.int32_t(threads), fp(y))
}

// RefAttention is gomps_ref_attention_f32 over a padded batch.
func RefAttention(qkv []float32, batch, seq, heads, headDim int, lengths []int32, ctx []float32) {
	scratch := make([]float32, seq)
	C.gomps_ref_attention_f32(fp(qkv), C.int32_t(batch), C.int32_t(seq), C.int32_t(heads),
		C.int32_t(headDim), ip(lengths), fp(scratch), fp(ctx))
}

// FastAttention is the fast path's attention over packed rows in f32
// precision; clsOnly computes only each row's first query, into out[batch, H].
// The kernel is the one a context would pick (GOMPS_CPU_ATTENTION).
func FastAttention(qkv []float32, batch int, offsets []int64, heads, headDim int, clsOnly bool, maxSeq, threads int, out []float32) {
	if err := FastAttentionPrecision(PrecisionF32, qkv, batch, offsets, heads, headDim, clsOnly, maxSeq, threads, out); err != nil {
		panic(err)
	}
}

// FastAttentionPrecision is FastAttention for a model of the given precision
// (in bf16 the AMX kernel, where it can run).
func FastAttentionPrecision(precision int, qkv []float32, batch int, offsets []int64, heads, headDim int, clsOnly bool, maxSeq, threads int, out []float32) error {
	cls := 0
	if clsOnly {
		cls = 1
	}
	if st := C.op_attention_fast(C.int32_t(precision), fp(qkv), C.int32_t(batch), i64p(offsets), C.int32_t(heads), C.int32_t(headDim),
		C.int(cls), C.int32_t(maxSeq), C.int32_t(threads), fp(out)); st != 0 {
		return &Error{Code: int(st), Msg: "cpu: attention: bad GOMPS_CPU_ATTENTION or out of memory"}
	}
	return nil
}

// Attention kernels (what GOMPS_CPU_ATTENTION asks for and the backend runs).
const (
	AttentionSGEMM  = int(C.CPU_ATTENTION_SGEMM)
	AttentionAVX512 = int(C.CPU_ATTENTION_AVX512)
	AttentionAMX    = int(C.CPU_ATTENTION_AMX)
	// AttentionAVX512BF16 is the vdpbf16ps kernel (bf16 precision, AVX512-BF16).
	AttentionAVX512BF16 = int(C.CPU_ATTENTION_AVX512BF16)
)

// AttentionKernel is the kernel a context of this precision and head size
// runs under the current GOMPS_CPU_ATTENTION (-1: the value is not known).
func AttentionKernel(precision, headDim int) int {
	return int(C.op_attention_kernel(C.int32_t(precision), C.int32_t(headDim)))
}

// RefHead is gomps_ref_head_f32: pooler tanh and classifier over CLS rows,
// one label per element of clsB (logits [rows, len(clsB)]).
func RefHead(cls []float32, rows, hidden int, poolerW, poolerB, clsW, clsB []float32, logits []float32) {
	scratch := make([]float32, hidden)
	C.gomps_ref_head_f32(fp(cls), C.int64_t(rows), C.int64_t(hidden), fp(poolerW), fp(poolerB),
		fp(clsW), fp(clsB), C.int64_t(len(clsB)), fp(scratch), fp(logits))
}

// CRC32C is the backend's CRC-32C; portable forces the table path.
func CRC32C(data []byte, portable bool) uint32 {
	if portable {
		os.Setenv("GOMPS_CPU_CRC", "portable")
		defer os.Unsetenv("GOMPS_CPU_CRC")
	}
	var p unsafe.Pointer
	if len(data) > 0 {
		p = unsafe.Pointer(&data[0])
	}
	return uint32(C.cpu_crc32c(0, p, C.size_t(len(data))))
}

// SHA256 is the backend's SHA-256.
func SHA256(data []byte) [32]byte {
	var out [32]byte
	var p unsafe.Pointer
	if len(data) > 0 {
		p = unsafe.Pointer(&data[0])
	}
	C.cpu_sha256(p, C.size_t(len(data)), (*C.uint8_t)(unsafe.Pointer(&out[0])))
	return out
}

// ToBF16 is the fast path's f32 -> bf16 rounding (nearest, ties to even).
func ToBF16(x []float32, y []uint16) {
	if len(x) == 0 {
		return
	}
	C.cpu_f32_to_bf16(fp(x), (*C.uint16_t)(unsafe.Pointer(&y[0])), C.int64_t(len(x)))
}
