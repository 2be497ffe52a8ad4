/* kbench.c: per-kernel microbenchmarks of the CPU backend, outside a model.
 *
 * A kb_state holds one synthetic layer at the model's shapes (random weights
 * packed exactly as a model packs them), a batch of `batch` rows of `seq`
 * tokens, and a context with the backend's scratch. kb_run runs one kernel
 * once, through the same functions the forward pass calls (cpu_linear_run,
 * cpu_attention_fast, cpu_layernorm_fast, cpu_embeddings_packed, ...); the Go
 * side times repetitions. kb_peak_* measure the machine's ceilings in the
 * same process: an FMA register loop and a streaming copy.
 *
 * INTERNAL: test- and CLI-facing (gomps kernels), not part of the ABI. */
#include <immintrin.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "kbench.h"

struct kb_state {
    gomps_model_t   m;
    gomps_context_t c;
    cpu_linear      lin[CPU_LINEAR_KINDS];
    cpu_linear      peak;      /* n x n reference-shape matmul             */
    gomps_context_t cp;        /* the peak matmul's own primitive cache    */
    int64_t         peak_rows;
    int32_t         B, L, H, heads, I, threads;
    int64_t         rows;      /* B * L                                    */
    float          *w_all;     /* weights of every linear, f32             */
    float          *x, *res, *y, *qkv, *inter, *pooled, *cls, *gelu, *soft;
    uint16_t       *x16, *inter16;
    uint16_t       *qkv16, *y16;   /* bf16 QKV rows and context of the bf16 attention kernels */
    float          *px, *py;   /* peak matmul in/out                       */
    uint16_t       *px16;
    int32_t        *ids, *types;
    int64_t        *offsets;
    float          *tables;    /* word, position, token type, gamma, beta  */
    float          *logits;
    dnnl_primitive_t gelu_prim;
    dnnl_memory_t    gelu_mem;
};

static uint64_t rng_next(uint64_t *s) {
    *s += 0x9e3779b97f4a7c15ull;
    uint64_t z = *s;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* uniform in [-a, a) */
static void fill(float *p, int64_t n, float a, uint64_t *s) {
    for (int64_t i = 0; i < n; i++)
        p[i] = a * (2.0f * (float)(rng_next(s) >> 40) / (float)(1ull << 24) - 1.0f);
}

static void *zalloc(size_t n) {
    void *p = aligned_alloc(64, (n + 63) / 64 * 64);
    if (p) memset(p, 0, (n + 63) / 64 * 64);
    return p;
}

static int fail(char *err, size_t len, int st, const char *msg) {
    snprintf(err, len, "kbench: %s", msg);
    return st;
}

int kb_init(int32_t hidden, int32_t heads, int32_t inter, int32_t batch, int32_t seq,
            int32_t vocab, int32_t precision, int32_t threads, uint64_t seed, kb_state **out,
            char *err, size_t errlen) {
    *out = NULL;
    if (hidden < 1 || heads < 1 || hidden % heads || inter < 1 || batch < 1 || seq < 1 ||
        vocab < 1 || threads < 1)
        return fail(err, errlen, GOMPS_ERR_INVALID_ARG, "invalid shape or thread count");
    if (precision != GOMPS_PRECISION_F32 && precision != GOMPS_PRECISION_BF16)
        return fail(err, errlen, GOMPS_ERR_UNSUPPORTED, "precision must be f32 or bf16");
    if (cpu_isa_get()->error[0]) return fail(err, errlen, GOMPS_ERR_UNSUPPORTED, cpu_isa_get()->error);
    char why[256];
    if (precision == GOMPS_PRECISION_BF16 && !cpu_bf16_usable(why, sizeof why))
        return fail(err, errlen, GOMPS_ERR_UNSUPPORTED, why); /* as a model would refuse it */
    kb_state *s = calloc(1, sizeof *s);
    if (!s) return fail(err, errlen, GOMPS_ERR_OOM, "out of memory");
    uint64_t rs = seed;
    const int64_t H = hidden, I = inter, rows = (int64_t)batch * seq;
    const int64_t cap = (rows + CPU_ROWS_GRAIN - 1) / CPU_ROWS_GRAIN * CPU_ROWS_GRAIN;
    s->B = batch; s->L = seq; s->H = hidden; s->heads = heads; s->I = inter; s->threads = threads;
    s->rows = rows;
    s->peak_rows = 2048;
    const int32_t pn = 1024;
    gomps_model_t *m = &s->m;
    snprintf(m->path, sizeof m->path, "kbench");
    m->precision = precision;
    m->max_batch = batch;
    m->max_seq = seq;
    m->eps = 1e-12f;
    m->file.hidden_size = hidden;
    m->file.num_heads = heads;
    m->file.intermediate_size = inter;
    m->file.vocab_size = vocab;
    m->file.max_position = seq;
    m->file.type_vocab_size = 2;
    int st = GOMPS_ERR_OOM;
    omp_set_num_threads(threads);
    if (dnnl_engine_create(&m->engine, dnnl_cpu, 0)) {
        m->engine = NULL;
        st = fail(err, errlen, GOMPS_ERR_DEVICE, "oneDNN engine could not be created");
        goto bad;
    }
    gomps_context_t *c = &s->c;
    c->model = m;
    c->n_threads = threads;
    c->att_bf16 = precision == GOMPS_PRECISION_BF16 &&
                  cpu_attention_bf16_io(cpu_attention_resolve(CPU_ATTENTION_AUTO, precision, hidden / heads));
    if (dnnl_stream_create(&c->stream, m->engine, dnnl_stream_default_flags)) {
        c->stream = NULL;
        st = fail(err, errlen, GOMPS_ERR_DEVICE, "oneDNN stream could not be created");
        goto bad;
    }
    gomps_context_t *cp = &s->cp;
    cp->model = m;
    cp->n_threads = threads;
    if (dnnl_stream_create(&cp->stream, m->engine, dnnl_stream_default_flags)) {
        cp->stream = NULL;
        st = fail(err, errlen, GOMPS_ERR_DEVICE, "oneDNN stream could not be created");
        goto bad;
    }
    const int32_t n_out[CPU_LINEAR_KINDS] = {3 * hidden, hidden, inter, hidden};
    const int32_t n_in[CPU_LINEAR_KINDS] = {hidden, hidden, hidden, inter};
    int64_t wtotal = 0;
    for (int k = 0; k < CPU_LINEAR_KINDS; k++) wtotal += (int64_t)n_out[k] * (n_in[k] + 1);
    wtotal += (int64_t)pn * (pn + 1) + H * (H + 1) + 2 * H;
    s->w_all = zalloc((size_t)wtotal * sizeof(float));
    s->x = zalloc((size_t)(cap * (I > H ? I : H)) * sizeof(float));
    s->res = zalloc((size_t)(cap * H) * sizeof(float));
    s->y = zalloc((size_t)(cap * (I > 3 * H ? I : 3 * H)) * sizeof(float));
    s->qkv = zalloc((size_t)(cap * 3 * H) * sizeof(float));
    s->qkv16 = zalloc((size_t)(cap * 3 * H) * 2);
    s->y16 = zalloc((size_t)(cap * H) * 2);
    s->inter = zalloc((size_t)(cap * I) * sizeof(float));
    s->gelu = zalloc((size_t)(rows * I) * sizeof(float));
    s->soft = zalloc((size_t)((int64_t)batch * heads * seq * seq) * sizeof(float));
    s->cls = zalloc((size_t)(batch * H) * sizeof(float));
    s->pooled = zalloc((size_t)(batch * H) * sizeof(float));
    s->logits = zalloc((size_t)batch * sizeof(float));
    s->x16 = zalloc((size_t)(cap * (I > H ? I : H)) * 2);
    s->inter16 = zalloc((size_t)(cap * I) * 2);
    s->px = zalloc((size_t)(s->peak_rows * pn) * sizeof(float));
    s->py = zalloc((size_t)(s->peak_rows * pn) * sizeof(float));
    s->px16 = zalloc((size_t)(s->peak_rows * pn) * 2);
    s->ids = zalloc((size_t)rows * sizeof(int32_t));
    s->types = zalloc((size_t)rows * sizeof(int32_t));
    s->offsets = zalloc((size_t)(batch + 1) * sizeof(int64_t));
    s->tables = zalloc((size_t)(((int64_t)vocab + seq + 2 + 2) * H) * sizeof(float));
    c->scores = zalloc((size_t)(cpu_attention_work(seq, hidden / heads) * threads) * sizeof(float));
    c->scores_threads = threads;
    if (!s->w_all || !s->x || !s->res || !s->y || !s->qkv || !s->inter || !s->gelu || !s->soft ||
        !s->cls || !s->pooled || !s->logits || !s->x16 || !s->inter16 || !s->qkv16 || !s->y16 || !s->px || !s->py ||
        !s->px16 || !s->ids || !s->types || !s->offsets || !s->tables || !c->scores) {
        st = fail(err, errlen, GOMPS_ERR_OOM, "out of memory for the buffers");
        goto bad;
    }
    float *w = s->w_all;
    const float wscale = 0.05f;
    for (int k = 0; k < CPU_LINEAR_KINDS; k++) {
        cpu_linear *lin = &s->lin[k];
        lin->n_out = n_out[k];
        lin->n_in = n_in[k];
        lin->bf16 = precision == GOMPS_PRECISION_BF16;
        lin->w = w;
        fill(w, (int64_t)n_out[k] * n_in[k], wscale, &rs);
        w += (int64_t)n_out[k] * n_in[k];
        lin->b = w;
        fill(w, n_out[k], wscale, &rs);
        w += n_out[k];
        if (cpu_linear_pack(m, lin)) {
            st = fail(err, errlen, GOMPS_ERR_DEVICE, cpu_last_init_error());
            goto bad;
        }
    }
    s->peak.n_out = s->peak.n_in = pn;
    s->peak.bf16 = precision == GOMPS_PRECISION_BF16;
    s->peak.w = w;
    fill(w, (int64_t)pn * pn, wscale, &rs);
    w += (int64_t)pn * pn;
    s->peak.b = w;
    w += pn;
    if (cpu_linear_pack(m, &s->peak)) {
        st = fail(err, errlen, GOMPS_ERR_DEVICE, cpu_last_init_error());
        goto bad;
    }
    m->pooler_w = w;
    fill(w, H * H, wscale, &rs);
    w += H * H;
    m->pooler_b = w;
    w += H;
    m->cls_w = w;
    fill(w, H, wscale, &rs);
    w += H;
    m->cls_b = w;

    float *t = s->tables;
    m->word = t;
    fill(t, (int64_t)vocab * H, 0.1f, &rs);
    t += (int64_t)vocab * H;
    m->position = t;
    fill(t, (int64_t)seq * H, 0.1f, &rs);
    t += (int64_t)seq * H;
    m->token_type = t;
    fill(t, 2 * H, 0.1f, &rs);
    t += 2 * H;
    m->emb_ln_gamma = t;
    for (int64_t j = 0; j < H; j++) t[j] = 1.0f;
    t += H;
    m->emb_ln_beta = t;

    fill(s->x, cap * (I > H ? I : H), 1.0f, &rs);
    fill(s->res, cap * H, 1.0f, &rs);
    fill(s->qkv, cap * 3 * H, 1.0f, &rs);
    fill(s->inter, cap * I, 1.0f, &rs);
    fill(s->gelu, rows * I, 3.0f, &rs);
    fill(s->soft, (int64_t)batch * heads * seq * seq, 4.0f, &rs);
    fill(s->cls, (int64_t)batch * H, 1.0f, &rs);
    fill(s->px, s->peak_rows * pn, 1.0f, &rs);
    cpu_f32_to_bf16(s->x, s->x16, cap * (I > H ? I : H));
    cpu_f32_to_bf16(s->inter, s->inter16, cap * I);
    cpu_f32_to_bf16(s->qkv, s->qkv16, cap * 3 * H);
    cpu_f32_to_bf16(s->px, s->px16, s->peak_rows * pn);
    for (int64_t i = 0; i < rows; i++) {
        s->ids[i] = (int32_t)(rng_next(&rs) % (uint64_t)vocab);
        s->types[i] = (i % seq) >= seq / 2;
    }
    for (int32_t b = 0; b <= batch; b++) s->offsets[b] = (int64_t)b * seq;

    /* GELU: the oneDNN eltwise the FFN-up matmul fuses as its post-op */
    dnnl_memory_desc_t gmd;
    dnnl_dims_t gd = {rows, inter};
    dnnl_eltwise_desc_t ed;
    dnnl_primitive_desc_t gpd = NULL;
    if (dnnl_memory_desc_init_by_tag(&gmd, 2, gd, dnnl_f32, dnnl_ab) ||
        dnnl_eltwise_forward_desc_init(&ed, dnnl_forward_inference, dnnl_eltwise_gelu_erf, &gmd, 0,
                                       0) ||
        dnnl_primitive_desc_create(&gpd, &ed, NULL, m->engine, NULL) ||
        dnnl_primitive_create(&s->gelu_prim, gpd) ||
        dnnl_memory_create(&s->gelu_mem, &gmd, m->engine, s->gelu)) {
        if (gpd) dnnl_primitive_desc_destroy(gpd);
        st = fail(err, errlen, GOMPS_ERR_DEVICE, "oneDNN gelu_erf eltwise could not be created");
        goto bad;
    }
    dnnl_primitive_desc_destroy(gpd);
    *out = s;
    err[0] = 0;
    return GOMPS_OK;
bad:
    kb_free(s);
    return st;
}

void kb_free(kb_state *s) {
    if (!s) return;
    if (s->gelu_prim) dnnl_primitive_destroy(s->gelu_prim);
    if (s->gelu_mem) dnnl_memory_destroy(s->gelu_mem);
    gomps_context_t *cs[2] = {&s->c, &s->cp};
    for (int i = 0; i < 2; i++) {
        cpu_prims_free(cs[i]);
        if (cs[i]->stream) dnnl_stream_destroy(cs[i]->stream);
        free(cs[i]->scratchpad);
    }
    free(s->c.scores);
    for (int k = 0; k < CPU_LINEAR_KINDS; k++) cpu_linear_unpack(&s->lin[k]);
    cpu_linear_unpack(&s->peak);
    if (s->m.engine) dnnl_engine_destroy(s->m.engine);
    void *bufs[] = {s->w_all, s->x, s->res, s->y, s->qkv, s->inter, s->gelu, s->soft, s->cls,
                    s->pooled, s->logits, s->x16, s->inter16, s->qkv16, s->y16, s->px, s->py, s->px16, s->ids,
                    s->types, s->offsets, s->tables};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) free(bufs[i]);
    free(s);
}

int kb_run(kb_state *s, int32_t kernel, char *err, size_t errlen) {
    gomps_context_t *c = &s->c;
    const gomps_model_t *m = &s->m;
    const int64_t H = s->H, rows = s->rows;
    const int bf16 = m->precision == GOMPS_PRECISION_BF16;
    int st = GOMPS_OK;
    omp_set_num_threads(s->threads);
    switch (kernel) {
    case KB_QKV: /* bf16 out where the forward's attention reads bf16 (c->att_bf16) */
        st = cpu_linear_run(c, CPU_LINEAR_QKV, &s->lin[CPU_LINEAR_QKV],
                            bf16 ? (const void *)s->x16 : (const void *)s->x, rows, NULL, s->y);
        break;
    case KB_ATTN_OUT:
        st = cpu_linear_run(c, CPU_LINEAR_ATTN_OUT, &s->lin[CPU_LINEAR_ATTN_OUT],
                            bf16 ? (const void *)s->x16 : (const void *)s->x, rows, s->res, s->y);
        break;
    case KB_FFN_UP:
        st = cpu_linear_run(c, CPU_LINEAR_FFN_UP, &s->lin[CPU_LINEAR_FFN_UP],
                            bf16 ? (const void *)s->x16 : (const void *)s->x, rows, NULL,
                            bf16 ? (void *)s->inter16 : (void *)s->y);
        break;
    case KB_FFN_DOWN:
        st = cpu_linear_run(c, CPU_LINEAR_FFN_DOWN, &s->lin[CPU_LINEAR_FFN_DOWN],
                            bf16 ? (const void *)s->inter16 : (const void *)s->inter, rows, s->res,
                            s->y);
        break;
    case KB_POOLER: {
        /* as forward_fast: one sgemm over the [CLS] rows, then tanh and the classifier */
        dnnl_status_t ds = dnnl_sgemm('N', 'T', s->B, H, H, 1.0f, s->cls, H, m->pooler_w, H, 0.0f,
                                      s->pooled, H);
        if (ds) {
            snprintf(err, errlen, "kbench: pooler sgemm failed: status %d", (int)ds);
            return GOMPS_ERR_DEVICE;
        }
        for (int32_t b = 0; b < s->B; b++) {
            const float *p = s->pooled + (int64_t)b * H;
            float acc = 0;
            for (int64_t j = 0; j < H; j++) acc += tanhf(p[j] + m->pooler_b[j]) * m->cls_w[j];
            s->logits[b] = acc + m->cls_b[0];
        }
        break;
    }
    case KB_ATTENTION:
        if (c->att_bf16)
            cpu_attention_fast(c, s->qkv16, s->B, s->offsets, s->heads, s->H / s->heads, 0, s->y16);
        else
            cpu_attention_fast(c, s->qkv, s->B, s->offsets, s->heads, s->H / s->heads, 0, s->y);
        break;
    case KB_LAYERNORM:
        /* as layer_tail_fast (backend.c layernorm_par): per chunk of rows, blocks of
         * 16 rows over the context's threads, in bf16 each block also rounded to
         * bf16 (the next matmul's input); the residual is fused into the matmul
         * before it */
        for (int64_t c0 = 0; c0 < rows; c0 += CPU_ROWS_CHUNK) {
            const int64_t n = rows - c0 < CPU_ROWS_CHUNK ? rows - c0 : CPU_ROWS_CHUNK;
            const float *x = s->res + c0 * H;
            float *y = s->y + c0 * H;
#pragma omp parallel for schedule(static) num_threads(s->threads) if (n > 16)
            for (int64_t r0 = 0; r0 < n; r0 += 16) {
                int64_t k = n - r0 < 16 ? n - r0 : 16;
                cpu_layernorm_fast(x + r0 * H, NULL, m->emb_ln_gamma, m->emb_ln_beta, m->eps, k, H,
                                   y + r0 * H);
                if (bf16) cpu_f32_to_bf16(y + r0 * H, s->x16 + (c0 + r0) * H, k * H);
            }
        }
        break;
    case KB_GELU: {
        dnnl_exec_arg_t args[2] = {{DNNL_ARG_SRC, s->gelu_mem}, {DNNL_ARG_DST, s->gelu_mem}};
        dnnl_status_t ds = dnnl_primitive_execute(s->gelu_prim, c->stream, 2, args);
        if (ds == dnnl_success) ds = dnnl_stream_wait(c->stream);
        if (ds) {
            snprintf(err, errlen, "kbench: gelu eltwise failed: status %d", (int)ds);
            return GOMPS_ERR_DEVICE;
        }
        break;
    }
    case KB_EMBEDDINGS:
        cpu_embeddings_packed(m, s->ids, s->types, s->B, s->L, s->offsets, s->threads, s->y);
        break;
    case KB_SOFTMAX:
    case KB_SOFTMAX_C: {
        /* every (row, head, query) score row of attention, spread over threads
         * as attention spreads (row, head) tasks */
        const int64_t n = (int64_t)s->B * s->heads * s->L, L = s->L;
        float *sc = s->soft;
        if (kernel == KB_SOFTMAX) {
#pragma omp parallel for schedule(static) num_threads(s->threads)
            for (int64_t r = 0; r < n; r++) cpu_softmax_row_fast(sc + r * L, L);
        } else {
#pragma omp parallel for schedule(static) num_threads(s->threads)
            for (int64_t r = 0; r < n; r++) cpu_softmax_row_c(sc + r * L, L);
        }
        break;
    }
    case KB_ATTENTION_SGEMM:
        c->attention_kind = CPU_ATTENTION_SGEMM;
        cpu_attention_fast(c, s->qkv, s->B, s->offsets, s->heads, s->H / s->heads, 0, s->y);
        c->attention_kind = CPU_ATTENTION_AUTO;
        break;
    case KB_CONVERT: {
        /* as linear_input (backend.c to_bf16_par): blocks of 16 rows over the threads */
        const float *x = s->x;
        uint16_t *y = s->x16;
#pragma omp parallel for schedule(static) num_threads(s->threads) if (rows > 16)
        for (int64_t r0 = 0; r0 < rows; r0 += 16) {
            int64_t k = rows - r0 < 16 ? rows - r0 : 16;
            cpu_f32_to_bf16(x + r0 * H, y + r0 * H, k * H);
        }
        break;
    }
    case KB_ATTENTION_AVX512:
        if (!kb_available(s, kernel)) {
            snprintf(err, errlen, "kbench: the AVX-512 attention needs AVX-512 and head_dim 16, 32 or 64");
            return GOMPS_ERR_UNSUPPORTED;
        }
        c->attention_kind = CPU_ATTENTION_AVX512;
        cpu_attention_fast(c, s->qkv, s->B, s->offsets, s->heads, s->H / s->heads, 0, s->y);
        c->attention_kind = CPU_ATTENTION_AUTO;
        break;
    case KB_ATTENTION_AMX:
        if (!kb_available(s, kernel)) {
            snprintf(err, errlen, "kbench: the AMX attention needs bf16 precision, AMX and head_dim 32");
            return GOMPS_ERR_UNSUPPORTED;
        }
        c->attention_kind = CPU_ATTENTION_AMX;
        cpu_attention_fast(c, s->qkv16, s->B, s->offsets, s->heads, s->H / s->heads, 0, s->y16);
        c->attention_kind = CPU_ATTENTION_AUTO;
        break;
    case KB_ATTENTION_AVX512BF16:
        if (!kb_available(s, kernel)) {
            snprintf(err, errlen, "kbench: the AVX512-BF16 attention needs bf16 precision, AVX512-BF16 and head_dim 32");
            return GOMPS_ERR_UNSUPPORTED;
        }
        c->attention_kind = CPU_ATTENTION_AVX512BF16;
        cpu_attention_fast(c, s->qkv16, s->B, s->offsets, s->heads, s->H / s->heads, 0, s->y16);
        c->attention_kind = CPU_ATTENTION_AUTO;
        break;
    case KB_PEAK_MATMUL:
        st = cpu_linear_run(&s->cp, CPU_LINEAR_QKV, &s->peak,
                            s->peak.bf16 ? (const void *)s->px16 : (const void *)s->px,
                            s->peak_rows, NULL, s->py);
        if (st) {
            snprintf(err, errlen, "kbench: %s", s->cp.err);
            return st;
        }
        break;
    default:
        snprintf(err, errlen, "kbench: unknown kernel %d", (int)kernel);
        return GOMPS_ERR_INVALID_ARG;
    }
    if (st) snprintf(err, errlen, "kbench: %s", c->err);
    return st;
}

int kb_available(const kb_state *s, int32_t kernel) {
    const int32_t hd = s->H / s->heads;
    switch (kernel) {
    case KB_CONVERT:
        return s->m.precision == GOMPS_PRECISION_BF16;
    case KB_ATTENTION_AMX:
        return cpu_attention_resolve(CPU_ATTENTION_AMX, s->m.precision, hd) == CPU_ATTENTION_AMX;
    case KB_ATTENTION_AVX512BF16:
        return cpu_attention_resolve(CPU_ATTENTION_AVX512BF16, s->m.precision, hd) ==
               CPU_ATTENTION_AVX512BF16;
    case KB_ATTENTION_AVX512:
        return cpu_attention_resolve(CPU_ATTENTION_AVX512, s->m.precision, hd) == CPU_ATTENTION_AVX512;
    }
    return kernel >= 0 && kernel < KB_KERNELS;
}

int64_t kb_peak_rows(const kb_state *s) { return s->peak_rows; }
int32_t kb_peak_n(const kb_state *s) { return s->peak.n_out; }

/* 12 independent FMA chains per thread keep both FMA ports busy through the
 * 4-cycle latency; the result is folded into *sink so nothing is elided. */
#if defined(__x86_64__) && defined(__GNUC__)
__attribute__((target("avx512f"))) static float fma_avx512(int64_t iters) {
    __m512 a[12];
    const __m512 b = _mm512_set1_ps(0.9999999f), c = _mm512_set1_ps(1e-7f);
    for (int k = 0; k < 12; k++) a[k] = _mm512_set1_ps(1.0f + (float)k);
    for (int64_t i = 0; i < iters; i++)
        for (int k = 0; k < 12; k++) a[k] = _mm512_fmadd_ps(a[k], b, c);
    __m512 acc = a[0];
    for (int k = 1; k < 12; k++) acc = _mm512_add_ps(acc, a[k]);
    return _mm512_reduce_add_ps(acc);
}

__attribute__((target("avx2,fma"))) static float fma_avx2(int64_t iters) {
    __m256 a[12];
    const __m256 b = _mm256_set1_ps(0.9999999f), c = _mm256_set1_ps(1e-7f);
    for (int k = 0; k < 12; k++) a[k] = _mm256_set1_ps(1.0f + (float)k);
    for (int64_t i = 0; i < iters; i++)
        for (int k = 0; k < 12; k++) a[k] = _mm256_fmadd_ps(a[k], b, c);
    float out[8], sum = 0;
    __m256 acc = a[0];
    for (int k = 1; k < 12; k++) acc = _mm256_add_ps(acc, a[k]);
    _mm256_storeu_ps(out, acc);
    for (int k = 0; k < 8; k++) sum += out[k];
    return sum;
}
#endif

static float fma_scalar(int64_t iters) {
    float a[12];
    for (int k = 0; k < 12; k++) a[k] = 1.0f + (float)k;
    for (int64_t i = 0; i < iters; i++)
        for (int k = 0; k < 12; k++) a[k] = fmaf(a[k], 0.9999999f, 1e-7f);
    float sum = 0;
    for (int k = 0; k < 12; k++) sum += a[k];
    return sum;
}

double kb_peak_fma(int32_t threads, int64_t iters, double *flops, char *isa, size_t isalen) {
    int lanes = 1;
    const char *name = "scalar";
#if defined(__x86_64__) && defined(__GNUC__)
    if (cpu_isa_get()->level == CPU_LEVEL_AVX512) {
        lanes = 16;
        name = "avx512f";
    } else if (cpu_isa_get()->level == CPU_LEVEL_AVX2) {
        lanes = 8;
        name = "avx2+fma";
    }
#endif
    snprintf(isa, isalen, "%s", name);
    volatile float sink = 0;
    double t0 = omp_get_wtime();
#pragma omp parallel num_threads(threads)
    {
        float r;
#if defined(__x86_64__) && defined(__GNUC__)
        if (lanes == 16)
            r = fma_avx512(iters);
        else if (lanes == 8)
            r = fma_avx2(iters);
        else
#endif
            r = fma_scalar(iters);
#pragma omp atomic
        sink += r;
    }
    double t = omp_get_wtime() - t0;
    (void)sink;
    *flops = 2.0 * 12 * lanes * (double)iters * threads;
    return t;
}

double kb_peak_copy(int32_t threads, int64_t bytes, int32_t reps) {
    char *a = zalloc((size_t)bytes), *b = zalloc((size_t)bytes);
    if (!a || !b) {
        free(a);
        free(b);
        return -1;
    }
    double best = 1e30;
    for (int32_t r = 0; r < reps; r++) {
        double t0 = omp_get_wtime();
#pragma omp parallel num_threads(threads)
        {
            int n = omp_get_num_threads(), i = omp_get_thread_num();
            int64_t chunk = (bytes / n + 63) / 64 * 64;
            int64_t lo = (int64_t)i * chunk, hi = lo + chunk < bytes ? lo + chunk : bytes;
            if (lo < hi) memcpy(b + lo, a + lo, (size_t)(hi - lo));
        }
        double t = omp_get_wtime() - t0;
        if (t < best) best = t;
        char *tmp = a;
        a = b;
        b = tmp;
    }
    free(a);
    free(b);
    return best;
}
