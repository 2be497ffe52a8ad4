/*
 * internal.h: the CPU backend's private structures, shared by its .c files.
 * Nothing outside kernels/cpu includes this file.
 */
#ifndef GOMPS_CPU_INTERNAL_H
#define GOMPS_CPU_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include <oneapi/dnnl/dnnl.h>
#include <oneapi/dnnl/dnnl_version.h>

#include "../gomps.h"
#include "../wfile/gomps-wfile.h"
#include "ops.h"

#if !defined(DNNL_VERSION_MAJOR)
#error "gomps cpu: oneDNN headers without DNNL_VERSION_MAJOR; install libdnnl-dev 2.x (Debian: apt-get install libdnnl-dev)"
#elif DNNL_VERSION_MAJOR != 2
#error "gomps cpu: unsupported oneDNN major version; this backend is written against the oneDNN 2.x C API (Debian libdnnl-dev 2.6). oneDNN 3.x changed memory descriptors and is not supported yet"
#endif

#if !defined(DNNL_CPU_RUNTIME) || DNNL_CPU_RUNTIME != DNNL_RUNTIME_OMP
#error "gomps cpu: oneDNN must be built with the OpenMP CPU runtime (Debian's is); the thread count per context relies on it"
#endif

/* The ISA ceiling (isa.c) ---------------------------------------------------*/

/* Our own vector loops are compiled for AVX-512, AVX2 + FMA and baseline
 * x86-64 and picked by the ISA ceiling below, never by the CPU's features
 * alone (so ONEDNN_MAX_CPU_ISA caps them as it caps oneDNN); elsewhere they
 * are plain C. The committed flags never use -march=native. */
typedef enum cpu_level {
    CPU_LEVEL_BASE = 0, /* portable C (not x86-64; or below AVX2, refused at load) */
    CPU_LEVEL_AVX2,     /* effective ISA avx2 or avx2_vnni, and FMA            */
    CPU_LEVEL_AVX512    /* effective ISA avx512_core or above                  */
} cpu_level;

typedef struct cpu_isa {
    dnnl_cpu_isa_t effective; /* dnnl_get_effective_cpu_isa()                  */
    const char    *name;      /* its name: "avx2", "avx512_core_bf16", ...      */
    int            level;     /* a cpu_level: which of our kernels run          */
    int            bf16;      /* bf16 matmuls are native (AVX512-BF16 or AMX)   */
    int            amx;       /* AMX-BF16 tiles usable (ISA and OS permission)  */
    char           error[256]; /* non-empty: models refuse to load, saying why  */
} cpu_isa;

/* The process's ceiling, decided on first use (as oneDNN decides its own). */
const cpu_isa *cpu_isa_get(void);
/* oneDNN's name of an ISA. */
const char *cpu_isa_name(dnnl_cpu_isa_t isa);
/* 1 if bf16 precision runs natively here, else 0 with the refusal in why. */
int cpu_bf16_usable(char *why, size_t len);

#if defined(__x86_64__) && defined(__GNUC__)
#define CPU_TARGET_AVX512 __attribute__((target("avx512f,avx512cd,avx512bw,avx512dq,avx512vl,fma")))
#define CPU_TARGET_AVX2 __attribute__((target("avx2,fma")))
/* Defines name_avx512, name_avx2 and name_base: void functions of params
 * that run name_body(args) (static, always inlined) compiled for each level. */
#define CPU_CLONES(name, params, args)                                                             \
    CPU_TARGET_AVX512 static void name##_avx512 params { name##_body args; }                       \
    CPU_TARGET_AVX2 static void name##_avx2 params { name##_body args; }                           \
    static void name##_base params { name##_body args; }
/* Runs the clone of name for the ceiling's level. */
#define CPU_DISPATCH(name, args)                                                                   \
    do {                                                                                           \
        switch (cpu_isa_get()->level) {                                                            \
        case CPU_LEVEL_AVX512: name##_avx512 args; break;                                          \
        case CPU_LEVEL_AVX2: name##_avx2 args; break;                                              \
        default: name##_base args; break;                                                          \
        }                                                                                          \
    } while (0)
#else
#define CPU_CLONES(name, params, args) \
    static void name##_base params { name##_body args; }
#define CPU_DISPATCH(name, args) name##_base args
#endif

/* Errors -------------------------------------------------------------------*/

/* The thread-local text of the last failed init on this thread. */
const char *cpu_last_init_error(void);

/* Sets the thread-local init error (printf-style) and returns st. */
gomps_status cpu_init_errorf(gomps_status st, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Sets ctx's last error (printf-style) and returns st. */
gomps_status cpu_ctx_errorf(gomps_context_t *ctx, gomps_status st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Model file ---------------------------------------------------------------*/

/* The validated content of a native weights file, mapped read-only by the
 * backends' shared reader (kernels/wfile), which owns the mapping. */
typedef struct cpu_file {
    gomps_wfile w;
    uint32_t dtype; /* 0 = F32, 1 = F16 */
    int32_t  vocab_size, hidden_size, num_layers, num_heads, intermediate_size;
    int32_t  max_position, type_vocab_size, pad_token_id;
    double   layer_norm_eps;
    char     name[81];
    uint32_t n_tensors;
    /* per tensor: pointer into the map and element count */
    const void **tensor_data;
    uint64_t   *tensor_elems;
} cpu_file;

/* Maps and validates path; on failure sets the init error and returns non-OK
 * with nothing left open. */
gomps_status cpu_file_open(const char *path, cpu_file *f);
void cpu_file_close(cpu_file *f);

/* CRC-32C (Castagnoli) of n bytes (kernels/wfile's; SSE4.2 when the CPU has
 * it, the table when GOMPS_CPU_CRC=portable). */
uint32_t cpu_crc32c(uint32_t crc, const void *data, size_t n);
/* SHA-256 of n bytes into out[32]. */
void cpu_sha256(const void *data, size_t n, uint8_t out[32]);
/* IEEE half to float, n elements. */
void cpu_f16_to_f32(const uint16_t *src, float *dst, size_t n);

/* Linear layers (gemm.c) ---------------------------------------------------*/

typedef enum cpu_linear_kind {
    CPU_LINEAR_QKV = 0,   /* + bias                        */
    CPU_LINEAR_ATTN_OUT,  /* + bias + residual             */
    CPU_LINEAR_FFN_UP,    /* + bias, then exact GELU       */
    CPU_LINEAR_FFN_DOWN,  /* + bias + residual             */
    CPU_LINEAR_KINDS
} cpu_linear_kind;

/* y = x W^T + b [+ residual | then gelu]; W is [n_out, n_in] row-major. */
typedef struct cpu_linear {
    int32_t      n_out, n_in;
    int          bf16;     /* 1: bf16 weights and inputs (AMX), f32 bias and accumulation */
    const float *w;        /* plain f32 [n_out, n_in]                         */
    const float *b;        /* f32 [n_out]                                      */
    void        *w_packed; /* oneDNN layout of W^T ([n_in, n_out] logical); NULL in plain mode */
    dnnl_memory_desc_t w_md;
} cpu_linear;

typedef struct cpu_layer {
    cpu_linear   lin[CPU_LINEAR_KINDS];
    const float *attn_ln_gamma, *attn_ln_beta, *ffn_ln_gamma, *ffn_ln_beta;
} cpu_layer;

/* Rows per oneDNN matmul call; a shorter last chunk is rounded up to
 * CPU_ROWS_GRAIN (the extra rows are scratch and never read back). */
enum { CPU_ROWS_CHUNK = 512, CPU_ROWS_GRAIN = 16,
       CPU_ROW_BUCKETS = CPU_ROWS_CHUNK / CPU_ROWS_GRAIN };

struct gomps_model {
    cpu_file     file;
    char         path[512];
    int32_t      precision, max_batch, max_seq;
    int32_t      num_labels; /* rows of the classifier                        */
    int          plain;      /* 1: the plain reference C path, no oneDNN      */
    float        eps;
    float       *owned;      /* F16 files: f32 copy of every tensor but the linear weights */
    float       *owned_linear; /* F16 files: f32 copy of the linear weights until packed */
    int64_t      heap_bytes; /* counted in the backend's memory_in_use        */
    char        *tokenizer;  /* a copy of the file's tokenizer.json           */
    const float *word, *position, *token_type, *emb_ln_gamma, *emb_ln_beta;
    cpu_layer   *layers;
    const float *pooler_w, *pooler_b, *cls_w, *cls_b;
    gomps_ref_model  ref;    /* the same weights for the reference forward (plain path) */
    gomps_ref_layer *ref_layers;
    dnnl_engine_t engine;    /* NULL in plain mode                            */
    char         isa[48];
};

/* One cached matmul primitive (a kind at a row bucket). */
typedef struct cpu_prim {
    dnnl_primitive_t prim;
    dnnl_memory_t    src, wei, bias, dst, res, scratch;
} cpu_prim;

/* Phases timed when GOMPS_CPU_PROFILE=1 (read at context init); the totals
 * go to stderr when the context is freed. */
typedef enum cpu_phase {
    CPU_PHASE_EMBED = 0, CPU_PHASE_QKV, CPU_PHASE_ATTENTION, CPU_PHASE_ATTN_OUT, CPU_PHASE_LAYERNORM,
    CPU_PHASE_FFN_UP, CPU_PHASE_FFN_DOWN, CPU_PHASE_CONVERT, CPU_PHASE_HEAD, CPU_PHASES
} cpu_phase;

struct gomps_context {
    gomps_model_t *model;
    int            profile;
    double         phase_sec[CPU_PHASES];
    int64_t        forwards;
    int32_t        n_threads;
    int64_t        fixed_bytes; /* scratch counted in memory_in_use, attention scratch apart */
    char           err[512];
    int64_t        rows_cap;   /* rows of hidden/qkv/ctx buffers             */
    float         *hidden;     /* [rows_cap, H]                               */
    float         *qkv;        /* [rows_cap, 3H]                              */
    float         *attn;       /* [rows_cap, H] attention context            */
    float         *tmp;        /* [max(CPU_ROWS_CHUNK, max_batch) + grain, H] */
    float         *inter;      /* [CPU_ROWS_CHUNK, I] (bf16 in bf16 precision) */
    uint16_t      *act16;      /* [chunk, H] bf16 input of a chunk's matmul (bf16 only) */
    uint16_t      *hidden16;   /* [rows_cap, H] hidden rounded to bf16: QKV's input (bf16 only) */
    int            att_bf16;   /* 1: bf16 precision with the AMX attention: QKV writes
                                * bf16 into qkv, attention bf16 into attn / cls_attn */
    float         *cls_hidden; /* [max_batch + grain, H]                       */
    float         *cls_attn;   /* [max_batch + grain, H]                       */
    float         *pooled;     /* [max_batch + 1, H] pooler output, then one row's tanh */
    int64_t       *offsets;    /* [max_batch + 1] row starts in packed tokens  */
    float         *scores;     /* [n_threads, max_seq * max_seq] attention     */
    int32_t        scores_threads;
    int            attention_kind; /* cpu_attention_kind: GOMPS_CPU_ATTENTION   */
    dnnl_stream_t  stream;
    cpu_prim       prims[CPU_LINEAR_KINDS][CPU_ROW_BUCKETS];
    void          *scratchpad;
    size_t         scratchpad_size;
};

/* gemm.c */
gomps_status cpu_linear_pack(gomps_model_t *m, cpu_linear *lin);
void cpu_linear_unpack(cpu_linear *lin);
/* Runs kind over rows [0, rows) of x (row stride n_in) into y; residual (may be
 * NULL unless the kind needs it) is f32 with the shape of y. x is f32, or bf16
 * for a bf16 linear; y is f32, except bf16 for FFN_UP of a bf16 linear and for
 * QKV of a bf16 linear when ctx->att_bf16. */
gomps_status cpu_linear_run(gomps_context_t *ctx, cpu_linear_kind kind, const cpu_linear *lin,
                            const void *x, int64_t rows, const float *residual, void *y);
/* Rounds n floats to bf16 (nearest even), vectorised. */
void cpu_f32_to_bf16(const float *x, uint16_t *y, int64_t n);
void cpu_prims_free(gomps_context_t *ctx);

/* Attention kernels (GOMPS_CPU_ATTENTION, read at context init). AUTO picks,
 * for heads of 32 in bf16 precision, CPU_ATTENTION_AMX where the ceiling has
 * AMX and the OS grants the tile data, else CPU_ATTENTION_AVX512BF16 where it
 * has AVX512-BF16; otherwise the f32 default (see cpu_attention_resolve). */
typedef enum cpu_attention_kind {
    CPU_ATTENTION_AUTO = 0,
    CPU_ATTENTION_SGEMM,   /* "sgemm": dnnl_sgemm per (row, head) + generic C softmax (the old default) */
    CPU_ATTENTION_AVX512,  /* "avx512": our f32 AVX-512 kernel + AVX-512 softmax         */
    CPU_ATTENTION_AMX,     /* "amx": our bf16 AMX kernel (bf16 precision only)          */
    CPU_ATTENTION_AVX512BF16, /* "avx512bf16": our bf16 vdpbf16ps kernel (bf16 precision only) */
} cpu_attention_kind;

/* 1 if kind reads bf16 Q, K, V and writes a bf16 context. */
static inline int cpu_attention_bf16_io(int kind) {
    return kind == CPU_ATTENTION_AMX || kind == CPU_ATTENTION_AVX512BF16;
}

/* Parses GOMPS_CPU_ATTENTION's value (NULL or "" = AUTO); -1 if unknown. */
int cpu_attention_kind_parse(const char *s);
/* The kernel cpu_attention_fast runs for a requested kind, precision and head
 * size on this CPU: never AMX in f32 precision or without AMX. */
int cpu_attention_resolve(int kind, int32_t precision, int32_t head_dim);

/* attention.c: fast attention over packed rows (see ops.h for the layout),
 * with the kernel cpu_attention_resolve gives for ctx->attention_kind; it
 * needs cpu_attention_work floats of ctx->scores per thread. qkv and out are
 * f32, or bf16 (uint16_t) when that kernel is CPU_ATTENTION_AMX. */
int64_t cpu_attention_work(int32_t max_seq, int32_t head_dim);
void cpu_attention_fast(gomps_context_t *ctx, const void *qkv, int32_t batch,
                        const int64_t *offsets, int32_t heads, int32_t head_dim,
                        int cls_only, void *out);

/* isa.c: 1 if the AMX kernel can run here (the ceiling is avx512_core_amx and
 * the kernel grants the tile data; asked once per process). */
int cpu_amx_usable(void);
/* The (row, head) task this thread runs next, whose rows a kernel prefetches
 * into L2 while it computes: Q at q, K at q + kv, V at q + 2 kv (bytes; rows
 * as far apart as the current task's), n keys, nq queries; q NULL: none. */
typedef struct cpu_att_next {
    const char *q;
    int64_t     kv, n, nq;
} cpu_att_next;

/* One (row, head): n keys, nq queries (nq <= n: the first nq tokens), Q, K, V
 * bf16 rows ld_in elements apart, head_dim 32; bf16 context rows ld_out
 * elements apart into o. work is cpu_attention_work floats, 64-byte aligned.
 * The caller has called cpu_amx_tiles_begin on this thread. */
void cpu_attend_amx(const uint16_t *q, const uint16_t *k, const uint16_t *v, int64_t ld_in,
                    int64_t n, int64_t nq, float scale, uint16_t *o, int64_t ld_out, void *work,
                    cpu_att_next next);
/* cpu_attend_amx's contract on AVX512-BF16 (vdpbf16ps) instead of AMX tiles;
 * no tile set-up. */
void cpu_attend_avx512bf16(const uint16_t *q, const uint16_t *k, const uint16_t *v, int64_t ld_in,
                           int64_t n, int64_t nq, float scale, uint16_t *o, int64_t ld_out,
                           void *work, cpu_att_next next);
void cpu_amx_tiles_begin(void);
void cpu_amx_tiles_end(void);
/* Bytes of work cpu_attend_amx needs at n keys. */
int64_t cpu_amx_work_bytes(int64_t n);

/* layernorm.c: vectorised y = LN(x + res); res may be NULL. */
void cpu_layernorm_fast(const float *x, const float *res, const float *gamma, const float *beta,
                        float eps, int64_t rows, int64_t n, float *y);
/* embeddings.c: embeddings + LayerNorm of the real tokens, packed. */
void cpu_embeddings_packed(const gomps_model_t *m, const int32_t *ids, const int32_t *type_ids,
                           int32_t batch, int32_t seq, const int64_t *offsets, int n_threads,
                           float *y);
/* softmax over one row of n, in place (attention.c): the AVX-512 kernel where
 * the CPU has AVX-512, else cpu_softmax_row_c. */
void cpu_softmax_row_fast(float *x, int64_t n);
/* The generic C softmax (multiversioned: AVX-512, AVX2, baseline clones). */
void cpu_softmax_row_c(float *x, int64_t n);

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define CPU_X86 1

/* 2^t for t <= ~0 on 16 lanes: t = n + f with n = round(t), |f| <= 1/2; 2^f
 * by its degree-6 Taylor polynomial (relative error <= 1.2e-7 at |f| = 1/2),
 * times 2^n by scalef (which gives 0 for large negative n, so no clamp). */
__attribute__((target("avx512f"), always_inline)) static inline __m512 cpu_exp2_avx512(__m512 t) {
    const __m512 n = _mm512_roundscale_ps(t, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    const __m512 f = _mm512_sub_ps(t, n);
    __m512 p = _mm512_set1_ps(1.5403530393381606e-4f);
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.3333558146428443e-3f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(9.6181291076284772e-3f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(5.5504108664821580e-2f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(2.4022650695910071e-1f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(6.9314718055994531e-1f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.0f));
    return _mm512_scalef_ps(p, n);
}

/* In-place transpose of 16 x 16 dwords (rows r[0..15]). */
__attribute__((target("avx512f"), always_inline)) static inline void cpu_transpose16_avx512(__m512i r[16]) {
    __m512i a[16], b[16];
    for (int i = 0; i < 8; i++) {
        a[2 * i] = _mm512_unpacklo_epi32(r[2 * i], r[2 * i + 1]);
        a[2 * i + 1] = _mm512_unpackhi_epi32(r[2 * i], r[2 * i + 1]);
    }
    /* b[4i + c], 128-bit lane L: rows 4i..4i+3 of column 4L + c */
    for (int i = 0; i < 4; i++) {
        b[4 * i] = _mm512_unpacklo_epi64(a[4 * i], a[4 * i + 2]);
        b[4 * i + 1] = _mm512_unpackhi_epi64(a[4 * i], a[4 * i + 2]);
        b[4 * i + 2] = _mm512_unpacklo_epi64(a[4 * i + 1], a[4 * i + 3]);
        b[4 * i + 3] = _mm512_unpackhi_epi64(a[4 * i + 1], a[4 * i + 3]);
    }
    /* a 4 x 4 transpose of 128-bit lanes for each c */
    for (int c = 0; c < 4; c++) {
        __m512i u0 = _mm512_shuffle_i32x4(b[c], b[4 + c], _MM_SHUFFLE(1, 0, 1, 0));
        __m512i u1 = _mm512_shuffle_i32x4(b[c], b[4 + c], _MM_SHUFFLE(3, 2, 3, 2));
        __m512i u2 = _mm512_shuffle_i32x4(b[8 + c], b[12 + c], _MM_SHUFFLE(1, 0, 1, 0));
        __m512i u3 = _mm512_shuffle_i32x4(b[8 + c], b[12 + c], _MM_SHUFFLE(3, 2, 3, 2));
        r[c] = _mm512_shuffle_i32x4(u0, u2, _MM_SHUFFLE(2, 0, 2, 0));
        r[4 + c] = _mm512_shuffle_i32x4(u0, u2, _MM_SHUFFLE(3, 1, 3, 1));
        r[8 + c] = _mm512_shuffle_i32x4(u1, u3, _MM_SHUFFLE(2, 0, 2, 0));
        r[12 + c] = _mm512_shuffle_i32x4(u1, u3, _MM_SHUFFLE(3, 1, 3, 1));
    }
}

/* Lane r of the result = the sum (max = 0) or the max (max = 1) of the 16
 * lanes of x[r]: a reduction tree over all 16 rows at once (45 operations
 * instead of 16 dependent shuffle chains). */
__attribute__((target("avx512f"), always_inline)) static inline __m512
cpu_reduce16_avx512(const __m512 x[16], const int max) {
#define RED(u, v) (max ? _mm512_max_ps(u, v) : _mm512_add_ps(u, v))
    __m512 y[8], z[4], w[2];
    /* y[i], 128-bit lane L: partials of rows 2i, 2i+1, 2i, 2i+1 */
    for (int i = 0; i < 8; i++)
        y[i] = RED(_mm512_unpacklo_ps(x[2 * i], x[2 * i + 1]), _mm512_unpackhi_ps(x[2 * i], x[2 * i + 1]));
    /* z[i], lane L: partials of rows 4i..4i+3 */
    for (int i = 0; i < 4; i++)
        z[i] = RED(_mm512_shuffle_ps(y[2 * i], y[2 * i + 1], _MM_SHUFFLE(1, 0, 1, 0)),
                   _mm512_shuffle_ps(y[2 * i], y[2 * i + 1], _MM_SHUFFLE(3, 2, 3, 2)));
    /* w[i]: lanes (z[2i] L0+L1, z[2i] L2+L3, z[2i+1] L0+L1, z[2i+1] L2+L3) */
    for (int i = 0; i < 2; i++)
        w[i] = RED(_mm512_shuffle_f32x4(z[2 * i], z[2 * i + 1], _MM_SHUFFLE(2, 0, 2, 0)),
                   _mm512_shuffle_f32x4(z[2 * i], z[2 * i + 1], _MM_SHUFFLE(3, 1, 3, 1)));
    return RED(_mm512_shuffle_f32x4(w[0], w[1], _MM_SHUFFLE(2, 0, 2, 0)),
               _mm512_shuffle_f32x4(w[0], w[1], _MM_SHUFFLE(3, 1, 3, 1)));
#undef RED
}

/* Prefetches rows [j0, j1) (clipped to n) of a head slice of `bytes` bytes
 * whose rows are ld bytes apart into L1 (cpu_prefetch_rows_l1) or L2. The
 * fused QKV rows put a head's rows 4.6 KB apart, across pages, where the
 * hardware prefetchers do not follow. Inlined with a constant `bytes`. */
__attribute__((always_inline)) static inline void cpu_prefetch_rows_l1(const void *p, int64_t ld,
                                                                       int64_t j0, int64_t j1,
                                                                       int64_t n, const int bytes) {
    for (int64_t j = j0; j < (j1 < n ? j1 : n); j++)
        for (int b = 0; b < bytes; b += 64) _mm_prefetch((const char *)p + j * ld + b, _MM_HINT_T0);
}
__attribute__((always_inline)) static inline void cpu_prefetch_rows_l2(const void *p, int64_t ld,
                                                                       int64_t j0, int64_t j1,
                                                                       int64_t n, const int bytes) {
    for (int64_t j = j0; j < (j1 < n ? j1 : n); j++)
        for (int b = 0; b < bytes; b += 64) _mm_prefetch((const char *)p + j * ld + b, _MM_HINT_T1);
}

/* Prefetches (L2) part `i` of `parts` of the next task's Q, K, V rows. */
__attribute__((always_inline)) static inline void cpu_prefetch_next(cpu_att_next nx, int64_t ld, int64_t i,
                                                                    int64_t parts, const int bytes) {
    if (!nx.q) return;
    const int64_t per = (nx.n + parts - 1) / parts, j0 = i * per, j1 = j0 + per;
    cpu_prefetch_rows_l2(nx.q, ld, j0, j1, nx.nq, bytes);
    cpu_prefetch_rows_l2(nx.q + nx.kv, ld, j0, j1, nx.n, bytes);
    cpu_prefetch_rows_l2(nx.q + 2 * nx.kv, ld, j0, j1, nx.n, bytes);
}

/* AVX-512 softmax of one row of n, in place, of scale * x (scale > 0). */
void cpu_softmax_row_avx512(float *x, int64_t n, float scale);
#endif

#endif /* GOMPS_CPU_INTERNAL_H */
