/*
 * backend.c: the native ABI (kernels/gomps.h) for the CPU: the table that
 * gomps_backend_cpu() returns, the one symbol of the ABI this backend exports.
 *
 * A model maps and validates the weights file, converts F16 to f32, and in the
 * fast path reorders every linear weight once into oneDNN's blocked layout; all
 * of its contexts share that. Then the mapping's resident pages are released:
 * the tensors still read in place (embeddings, biases, LayerNorm, head) come
 * back from the page cache as forwards touch them. A context owns scratch
 * sized at init for max_batch x max_seq tokens, an oneDNN stream and its
 * cached matmul primitives.
 *
 * The fast path works on packed rows: the real tokens of all rows one after the
 * other, so padding is never computed and can never change a result. In the
 * last layer only each row's [CLS] token goes on past attention.
 *
 * GOMPS_CPU_PLAIN=1 (read at model init) selects the plain reference C path of
 * ops.h instead (no oneDNN; slow; for tests). GOMPS_CPU_PROFILE=1 (read at
 * context init) times each phase of the fast path and prints the totals to
 * stderr when the context is freed.
 *
 * Every dispatch follows one ISA ceiling, oneDNN's effective ISA (isa.c); a
 * model refuses to load under a ceiling gomps cannot run (below AVX2, or an
 * ONEDNN_MAX_CPU_ISA value oneDNN does not know).
 *
 * Precision bf16 (fast path only, and only where bf16 is native: AMX or
 * AVX512-BF16; anything else is GOMPS_ERR_UNSUPPORTED, never a silent slow
 * path): the linear weights are packed as bf16 once per model, matmul inputs
 * are rounded to bf16, accumulation, bias, GELU, residual, softmax and
 * LayerNorm stay f32; attention is bf16 on AMX and f32 elsewhere.
 */
#define _GNU_SOURCE
#include <math.h>
#include <omp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "internal.h"

/* Bytes held by live models (packed and converted weights) and contexts
 * (scratch): capabilities' memory_in_use. */
static _Atomic int64_t mem_in_use;

static double now_sec(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Adds the time since *t0 to phase (when profiling) and restarts the clock. */
static void phase_end(gomps_context_t *ctx, cpu_phase phase, double *t0) {
    if (!ctx->profile) return;
    double t = now_sec();
    ctx->phase_sec[phase] += t - *t0;
    *t0 = t;
}

static _Thread_local char init_error[1024];

gomps_status cpu_init_errorf(gomps_status st, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(init_error, sizeof init_error, fmt, ap);
    va_end(ap);
    return st;
}

gomps_status cpu_ctx_errorf(gomps_context_t *ctx, gomps_status st, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ctx->err, sizeof ctx->err, fmt, ap);
    va_end(ap);
    return st;
}

const char *cpu_last_init_error(void) { return init_error; }

/* 1 if tensor i of the file is the weight matrix of a linear layer (the
 * tensors the fast path packs). */
static int is_linear_weight(const cpu_file *f, uint32_t i) {
    if (i < GOMPS_WT_LAYER0 || i >= GOMPS_WT_LAYER0 + GOMPS_WT_PER_LAYER * (uint32_t)f->num_layers) return 0;
    uint32_t k = (i - GOMPS_WT_LAYER0) % GOMPS_WT_PER_LAYER;
    return k == GOMPS_WL_QKV_W || k == GOMPS_WL_ATTN_OUT_W || k == GOMPS_WL_FFN_UP_W || k == GOMPS_WL_FFN_DOWN_W;
}

static uint64_t round16(uint64_t n) { return (n + 15) / 16 * 16; }

/* Converts the F16 tensors i with is_linear_weight(i) == linear into one new
 * f32 block (*block), pointing t[i] into it. */
static gomps_status convert_f16(gomps_model_t *m, const float **t, int linear, float **block) {
    const cpu_file *f = &m->file;
    uint64_t total = 0;
    for (uint32_t i = 0; i < f->n_tensors; i++)
        if (is_linear_weight(f, i) == linear) total += round16(f->tensor_elems[i]);
    *block = aligned_alloc(64, total * sizeof(float));
    if (!*block)
        return cpu_init_errorf(GOMPS_ERR_OOM, "cpu: %s: out of memory converting F16 weights to f32 (%llu bytes)",
                               m->path, (unsigned long long)(total * 4));
    float *p = *block;
    for (uint32_t i = 0; i < f->n_tensors; i++) {
        if (is_linear_weight(f, i) != linear) continue;
        cpu_f16_to_f32(f->tensor_data[i], p, f->tensor_elems[i]);
        t[i] = p;
        p += round16(f->tensor_elems[i]);
    }
    return GOMPS_OK;
}

/* Points every tensor of the model at its f32 data: in place in the mapping
 * for F32 files; for F16 files converted copies, the linear weights in a
 * block of their own (m->owned_linear) that packing makes unneeded. Sets
 * m->num_labels from the classifier's shape. */
static gomps_status model_bind(gomps_model_t *m) {
    cpu_file *f = &m->file;
    const float **t = calloc(f->n_tensors, sizeof *t);
    if (!t) return cpu_init_errorf(GOMPS_ERR_OOM, "cpu: %s: out of memory", m->path);
    if (f->dtype == 0) {
        for (uint32_t i = 0; i < f->n_tensors; i++) t[i] = f->tensor_data[i];
    } else {
        gomps_status st = convert_f16(m, t, 0, &m->owned);
        if (!st) st = convert_f16(m, t, 1, &m->owned_linear);
        if (st) {
            free(t);
            return st;
        }
    }
    const int32_t H = f->hidden_size, I = f->intermediate_size, L = f->num_layers;
    m->word = t[0];
    m->position = t[1];
    m->token_type = t[2];
    m->emb_ln_gamma = t[3];
    m->emb_ln_beta = t[4];
    m->layers = calloc((size_t)L, sizeof *m->layers);
    if (!m->layers) {
        free(t);
        return cpu_init_errorf(GOMPS_ERR_OOM, "cpu: %s: out of memory", m->path);
    }
    for (int32_t l = 0; l < L; l++) {
        const float **lt = t + 5 + 12 * l;
        cpu_layer *ly = &m->layers[l];
        ly->lin[CPU_LINEAR_QKV] = (cpu_linear){.n_out = 3 * H, .n_in = H, .w = lt[0], .b = lt[1]};
        ly->lin[CPU_LINEAR_ATTN_OUT] = (cpu_linear){.n_out = H, .n_in = H, .w = lt[2], .b = lt[3]};
        ly->attn_ln_gamma = lt[4];
        ly->attn_ln_beta = lt[5];
        ly->lin[CPU_LINEAR_FFN_UP] = (cpu_linear){.n_out = I, .n_in = H, .w = lt[6], .b = lt[7]};
        ly->lin[CPU_LINEAR_FFN_DOWN] = (cpu_linear){.n_out = H, .n_in = I, .w = lt[8], .b = lt[9]};
        ly->ffn_ln_gamma = lt[10];
        ly->ffn_ln_beta = lt[11];
    }
    const float **ht = t + 5 + 12 * L;
    m->pooler_w = ht[0];
    m->pooler_b = ht[1];
    m->cls_w = ht[2];
    m->cls_b = ht[3];
    m->num_labels = (int32_t)f->w.tensors[gomps_wfile_head_index(&f->w, GOMPS_WH_CLS_B)].elems;
    free(t);
    /* the same weights as the reference forward reads them (plain path) */
    m->ref_layers = calloc((size_t)L, sizeof *m->ref_layers);
    if (!m->ref_layers) return cpu_init_errorf(GOMPS_ERR_OOM, "cpu: %s: out of memory", m->path);
    for (int32_t l = 0; l < L; l++) {
        const cpu_layer *ly = &m->layers[l];
        const cpu_linear *lin = ly->lin;
        m->ref_layers[l] = (gomps_ref_layer){
            .qkv_w = lin[CPU_LINEAR_QKV].w, .qkv_b = lin[CPU_LINEAR_QKV].b,
            .attn_out_w = lin[CPU_LINEAR_ATTN_OUT].w, .attn_out_b = lin[CPU_LINEAR_ATTN_OUT].b,
            .attn_ln_gamma = ly->attn_ln_gamma, .attn_ln_beta = ly->attn_ln_beta,
            .ffn_up_w = lin[CPU_LINEAR_FFN_UP].w, .ffn_up_b = lin[CPU_LINEAR_FFN_UP].b,
            .ffn_down_w = lin[CPU_LINEAR_FFN_DOWN].w, .ffn_down_b = lin[CPU_LINEAR_FFN_DOWN].b,
            .ffn_ln_gamma = ly->ffn_ln_gamma, .ffn_ln_beta = ly->ffn_ln_beta};
    }
    m->ref = (gomps_ref_model){.hidden = H, .intermediate = I, .num_layers = L, .num_heads = f->num_heads,
                               .num_labels = m->num_labels, .eps = m->eps, .word = m->word,
                               .position = m->position, .token_type = m->token_type,
                               .emb_ln_gamma = m->emb_ln_gamma, .emb_ln_beta = m->emb_ln_beta,
                               .layers = m->ref_layers, .pooler_w = m->pooler_w, .pooler_b = m->pooler_b,
                               .cls_w = m->cls_w, .cls_b = m->cls_b};
    return GOMPS_OK;
}

/* Bytes of the f32 weights the forward reads: every tensor but the linear
 * weights, plus the linear weights as the forward holds them (packed, or
 * plain in plain mode). */
static int64_t weights_bytes(const gomps_model_t *m) {
    const cpu_file *f = &m->file;
    int64_t n = 0;
    for (uint32_t i = 0; i < f->n_tensors; i++)
        if (m->plain || !is_linear_weight(f, i)) n += (int64_t)f->tensor_elems[i] * 4;
    if (!m->plain)
        for (int32_t l = 0; l < f->num_layers; l++)
            for (int k = 0; k < CPU_LINEAR_KINDS; k++) n += (int64_t)dnnl_memory_desc_get_size(&m->layers[l].lin[k].w_md);
    return n;
}

/* Bytes of heap the model holds (packed and converted weights). */
static int64_t model_heap_bytes(const gomps_model_t *m) {
    const cpu_file *f = &m->file;
    int64_t n = (int64_t)f->w.tokenizer_size;
    if (m->owned)
        for (uint32_t i = 0; i < f->n_tensors; i++)
            if (!is_linear_weight(f, i)) n += (int64_t)round16(f->tensor_elems[i]) * 4;
    if (m->owned_linear)
        for (uint32_t i = 0; i < f->n_tensors; i++)
            if (is_linear_weight(f, i)) n += (int64_t)round16(f->tensor_elems[i]) * 4;
    if (!m->plain && m->layers)
        for (int32_t l = 0; l < f->num_layers; l++)
            for (int k = 0; k < CPU_LINEAR_KINDS; k++)
                if (m->layers[l].lin[k].w_packed)
                    n += (int64_t)dnnl_memory_desc_get_size(&m->layers[l].lin[k].w_md);
    return n;
}

static void model_free(gomps_model_t *m);

static gomps_status model_init(const char *path, const gomps_model_options *opts, gomps_model_t **out) {
    init_error[0] = 0;
    if (!out) return cpu_init_errorf(GOMPS_ERR_INVALID_ARG, "cpu: model init: out is NULL");
    *out = NULL;
    if (!path) return cpu_init_errorf(GOMPS_ERR_INVALID_ARG, "cpu: model init: path is NULL");
    gomps_model_options o = {0};
    if (opts) {
        if (opts->struct_size < sizeof(gomps_model_options))
            return cpu_init_errorf(GOMPS_ERR_INVALID_ARG,
                                   "cpu: model init: options struct_size %u is too small (want %zu)",
                                   opts->struct_size, sizeof(gomps_model_options));
        o = *opts; /* the fields this backend knows */
    }
    if (o.buckets)
        return cpu_init_errorf(GOMPS_ERR_INVALID_ARG,
                               "cpu: model init: the CPU backend has no shape buckets; buckets must be NULL");
    if (o.precision < 0)
        return cpu_init_errorf(GOMPS_ERR_INVALID_ARG, "cpu: model init: precision %d is negative", o.precision);
    if (o.precision == GOMPS_PRECISION_F16)
        return cpu_init_errorf(GOMPS_ERR_UNSUPPORTED,
                               "cpu: precision f16 is Metal's; the CPU backend offers f32 and bf16");
    if (o.precision != GOMPS_PRECISION_F32 && o.precision != GOMPS_PRECISION_BF16)
        return cpu_init_errorf(GOMPS_ERR_UNSUPPORTED,
                               "cpu: precision %d is not one this backend knows; it offers f32 and bf16",
                               o.precision);
    if (o.max_batch < 0 || o.max_batch > 65536)
        return cpu_init_errorf(GOMPS_ERR_INVALID_ARG, "cpu: model init: max_batch %d is outside [0, 65536]",
                               o.max_batch);
    if (o.max_seq < 0)
        return cpu_init_errorf(GOMPS_ERR_INVALID_ARG, "cpu: model init: max_seq %d is negative", o.max_seq);

    const cpu_isa *isa = cpu_isa_get();
    if (isa->error[0]) return cpu_init_errorf(GOMPS_ERR_UNSUPPORTED, "cpu: %s", isa->error);

    gomps_model_t *m = calloc(1, sizeof *m);
    if (!m) return cpu_init_errorf(GOMPS_ERR_OOM, "cpu: model init: out of memory");
    snprintf(m->path, sizeof m->path, "%s", path);
    gomps_status st = cpu_file_open(path, &m->file);
    if (st) {
        free(m);
        return st;
    }
    m->precision = o.precision;
    m->max_batch = o.max_batch ? o.max_batch : 64;
    m->max_seq = o.max_seq ? o.max_seq : m->file.max_position;
    if (m->max_seq > m->file.max_position) {
        st = cpu_init_errorf(GOMPS_ERR_INVALID_ARG, "cpu: %s: max_seq %d is more than the model's %d positions",
                             path, m->max_seq, m->file.max_position);
        goto fail;
    }
    m->eps = (float)m->file.layer_norm_eps;
    const char *plain = getenv("GOMPS_CPU_PLAIN");
    m->plain = plain && strcmp(plain, "1") == 0;
    if ((st = model_bind(m))) goto fail;
    if (m->plain && m->precision == GOMPS_PRECISION_BF16) {
        st = cpu_init_errorf(GOMPS_ERR_UNSUPPORTED,
                             "cpu: precision bf16 needs the oneDNN path; GOMPS_CPU_PLAIN=1 is f32 only");
        goto fail;
    }
    if (m->plain) {
        snprintf(m->isa, sizeof m->isa, "plain-c");
    } else {
        char why[256];
        if (m->precision == GOMPS_PRECISION_BF16 && !cpu_bf16_usable(why, sizeof why)) {
            /* bf16 without native instructions runs at half the fp32 rate (AVX-512)
             * or not at all: never a silent slow path */
            st = cpu_init_errorf(GOMPS_ERR_UNSUPPORTED, "%s", why);
            goto fail;
        }
        snprintf(m->isa, sizeof m->isa, "%s", cpu_isa_get()->name);
        if (dnnl_engine_create(&m->engine, dnnl_cpu, 0) != dnnl_success) {
            m->engine = NULL;
            st = cpu_init_errorf(GOMPS_ERR_DEVICE, "cpu: %s: oneDNN CPU engine could not be created", path);
            goto fail;
        }
        for (int32_t l = 0; l < m->file.num_layers; l++)
            for (int k = 0; k < CPU_LINEAR_KINDS; k++) {
                m->layers[l].lin[k].bf16 = m->precision == GOMPS_PRECISION_BF16;
                if ((st = cpu_linear_pack(m, &m->layers[l].lin[k]))) goto fail;
            }
        /* packed: the plain linear weights are not read again */
        free(m->owned_linear);
        m->owned_linear = NULL;
    }
    /* the tokenizer is read once, by the caller, after init: a copy of it, so
     * that the release below is not undone by that read */
    m->tokenizer = malloc(m->file.w.tokenizer_size);
    if (!m->tokenizer) {
        st = cpu_init_errorf(GOMPS_ERR_OOM, "cpu: %s: out of memory for the tokenizer", path);
        goto fail;
    }
    memcpy(m->tokenizer, m->file.w.tokenizer, m->file.w.tokenizer_size);
    /* Everything the forward reads is packed, converted, or read in place and
     * paged back in as used: drop the pages validation and packing touched. */
    gomps_wfile_release(&m->file.w);
    m->heap_bytes = model_heap_bytes(m);
    mem_in_use += m->heap_bytes;
    *out = m;
    return GOMPS_OK;
fail:
    model_free(m);
    return st;
}

static void model_free(gomps_model_t *m) {
    if (!m) return;
    mem_in_use -= m->heap_bytes;
    if (m->layers)
        for (int32_t l = 0; l < m->file.num_layers; l++)
            for (int k = 0; k < CPU_LINEAR_KINDS; k++) cpu_linear_unpack(&m->layers[l].lin[k]);
    free(m->layers);
    free(m->ref_layers);
    if (m->engine) dnnl_engine_destroy(m->engine);
    free(m->owned);
    free(m->owned_linear);
    free(m->tokenizer);
    cpu_file_close(&m->file);
    free(m);
}

static int64_t context_bytes(const gomps_model_t *m, int32_t n_threads);

static gomps_status model_info(const gomps_model_t *m, gomps_model_info *out) {
    if (!m || !out) return GOMPS_ERR_INVALID_ARG;
    if (out->struct_size < sizeof(gomps_model_info)) return GOMPS_ERR_INVALID_ARG;
    gomps_model_info info = {0};
    info.struct_size = sizeof info;
    snprintf(info.arch, sizeof info.arch, "bert");
    snprintf(info.name, sizeof info.name, "%s", m->file.name);
    memcpy(info.source_sha256, m->file.w.cfg.source_sha256, sizeof info.source_sha256);
    info.num_labels = m->num_labels;
    info.pad_token_id = m->file.pad_token_id;
    info.layer_norm_eps = m->file.layer_norm_eps;
    info.weights_bytes = weights_bytes(m);
    info.context_bytes = context_bytes(m, 1);
    info.tokenizer = m->tokenizer;
    info.tokenizer_size = m->file.w.tokenizer_size;
    info.vocab_size = m->file.vocab_size;
    info.hidden_size = m->file.hidden_size;
    info.num_layers = m->file.num_layers;
    info.num_heads = m->file.num_heads;
    info.intermediate_size = m->file.intermediate_size;
    info.max_position = m->file.max_position;
    info.type_vocab_size = m->file.type_vocab_size;
    info.precision = m->precision;
    info.max_batch = m->max_batch;
    info.max_seq = m->max_seq;
    snprintf(info.backend, sizeof info.backend, "cpu");
    snprintf(info.isa, sizeof info.isa, "%s", m->isa);
    memcpy(out, &info, sizeof info); /* a larger caller struct keeps its zeroed tail */
    return GOMPS_OK;
}

/* Context ------------------------------------------------------------------*/

static int32_t default_threads(void) {
    int n = omp_get_num_procs();
    return n > 0 ? n : 1;
}

static void *alloc_f32(int64_t n) { return calloc((size_t)n, sizeof(float)); }

/* Zeroed floats at a 64-byte boundary (calloc of a large block returns a page
 * + 16 bytes): the attention kernels read and write 128-byte head slices of
 * these rows, which would otherwise straddle three cache lines. Still calloc
 * underneath, so untouched pages cost nothing. Freed with free_aligned. */
static void *alloc_f32_aligned(int64_t n) {
    char *raw = calloc((size_t)n * sizeof(float) + 128, 1);
    if (!raw) return NULL;
    char *p = (char *)(((uintptr_t)raw + 64 + 63) & ~(uintptr_t)63);
    ((void **)p)[-1] = raw;
    return p;
}

static void free_aligned(void *p) {
    if (p) free(((void **)p)[-1]);
}

/* Attention scratch floats per thread. */
static int64_t scores_per_thread(const gomps_model_t *m) {
    if (m->plain) return m->max_seq;
    return cpu_attention_work(m->max_seq, m->file.hidden_size / m->file.num_heads);
}

static gomps_status scores_alloc(gomps_context_t *ctx) {
    free(ctx->scores);
    ctx->scores = alloc_f32(scores_per_thread(ctx->model) * ctx->n_threads);
    int32_t had = ctx->scores_threads;
    ctx->scores_threads = ctx->scores ? ctx->n_threads : 0;
    mem_in_use += (int64_t)(ctx->scores_threads - had) * scores_per_thread(ctx->model) * 4;
    return ctx->scores ? GOMPS_OK : GOMPS_ERR_OOM;
}

static int64_t round_grain(int64_t n) {
    return (n + CPU_ROWS_GRAIN - 1) / CPU_ROWS_GRAIN * CPU_ROWS_GRAIN;
}

/* Rows of a context's per-chunk buffers (tmp, inter, act16). */
static int64_t chunk_rows(const gomps_model_t *m) {
    return CPU_ROWS_CHUNK > m->max_batch ? CPU_ROWS_CHUNK : round_grain(m->max_batch);
}

/* Bytes context_init allocates apart from the attention scratch. */
static int64_t context_fixed_bytes(const gomps_model_t *m) {
    const int64_t H = m->file.hidden_size, I = m->file.intermediate_size, chunk = chunk_rows(m);
    const int64_t rows = round_grain((int64_t)m->max_batch * m->max_seq), cls = round_grain(m->max_batch);
    int64_t f32 = rows * H * 5 + chunk * (H + I) + 2 * cls * H + ((int64_t)m->max_batch + 1) * H;
    int64_t n = f32 * 4 + 256 + ((int64_t)m->max_batch + 1) * 8;
    if (m->precision == GOMPS_PRECISION_BF16) n += (chunk * H + rows * H) * 2;
    return n;
}

/* Bytes a context of n_threads threads allocates at init. */
static int64_t context_bytes(const gomps_model_t *m, int32_t n_threads) {
    return context_fixed_bytes(m) + scores_per_thread(m) * n_threads * 4;
}

static void context_free(gomps_context_t *ctx);

static gomps_status context_init(gomps_model_t *m, int32_t n_threads, gomps_context_t **out) {
    init_error[0] = 0;
    if (!out) return cpu_init_errorf(GOMPS_ERR_INVALID_ARG, "cpu: context init: out is NULL");
    *out = NULL;
    if (!m) return cpu_init_errorf(GOMPS_ERR_INVALID_ARG, "cpu: context init: model is NULL");
    if (n_threads > 1024)
        return cpu_init_errorf(GOMPS_ERR_INVALID_ARG, "cpu: context init: %d threads is too many",
                               n_threads);
    gomps_context_t *ctx = calloc(1, sizeof *ctx);
    if (!ctx) return cpu_init_errorf(GOMPS_ERR_OOM, "cpu: context init: out of memory");
    ctx->model = m;
    ctx->n_threads = n_threads > 0 ? n_threads : default_threads();
    const char *prof = getenv("GOMPS_CPU_PROFILE");
    ctx->profile = prof && strcmp(prof, "1") == 0;
    const char *att = getenv("GOMPS_CPU_ATTENTION");
    ctx->attention_kind = cpu_attention_kind_parse(att);
    if (ctx->attention_kind < 0) {
        free(ctx);
        return cpu_init_errorf(GOMPS_ERR_INVALID_ARG,
                               "cpu: context init: GOMPS_CPU_ATTENTION=%s: want sgemm, avx512, amx or avx512bf16",
                               att);
    }
    const int64_t H = m->file.hidden_size, I = m->file.intermediate_size;
    const int64_t chunk = chunk_rows(m);
    ctx->rows_cap = round_grain((int64_t)m->max_batch * m->max_seq);
    ctx->hidden = alloc_f32(ctx->rows_cap * H);
    ctx->qkv = alloc_f32_aligned(ctx->rows_cap * 3 * H);
    ctx->attn = alloc_f32_aligned(ctx->rows_cap * H);
    ctx->tmp = alloc_f32(chunk * H);
    ctx->inter = alloc_f32(chunk * I);
    ctx->cls_hidden = alloc_f32(round_grain(m->max_batch) * H);
    ctx->cls_attn = alloc_f32(round_grain(m->max_batch) * H);
    ctx->pooled = alloc_f32(((int64_t)m->max_batch + 1) * H);
    ctx->offsets = calloc((size_t)m->max_batch + 1, sizeof *ctx->offsets);
    gomps_status st = GOMPS_OK;
    if (m->precision == GOMPS_PRECISION_BF16) {
        ctx->act16 = calloc((size_t)(chunk * H), 2);
        ctx->hidden16 = calloc((size_t)(ctx->rows_cap * H), 2);
        ctx->att_bf16 = cpu_attention_bf16_io(
            cpu_attention_resolve(ctx->attention_kind, m->precision, (int32_t)(H / m->file.num_heads)));
    }
    if (!ctx->hidden || !ctx->qkv || !ctx->attn || !ctx->tmp || !ctx->inter || !ctx->cls_hidden ||
        !ctx->cls_attn || !ctx->pooled || !ctx->offsets || scores_alloc(ctx) ||
        (m->precision == GOMPS_PRECISION_BF16 && (!ctx->act16 || !ctx->hidden16))) {
        st = cpu_init_errorf(GOMPS_ERR_OOM,
                             "cpu: context init: out of memory for %d x %d tokens of scratch",
                             m->max_batch, m->max_seq);
        goto fail;
    }
    if (!m->plain && dnnl_stream_create(&ctx->stream, m->engine, dnnl_stream_default_flags)) {
        ctx->stream = NULL;
        st = cpu_init_errorf(GOMPS_ERR_DEVICE, "cpu: context init: oneDNN stream could not be created");
        goto fail;
    }
    ctx->fixed_bytes = context_fixed_bytes(m);
    mem_in_use += ctx->fixed_bytes;
    *out = ctx;
    return GOMPS_OK;
fail:
    context_free(ctx);
    return st;
}

static void context_free(gomps_context_t *ctx) {
    if (!ctx) return;
    mem_in_use -= ctx->fixed_bytes + (int64_t)ctx->scores_threads * scores_per_thread(ctx->model) * 4;
    if (ctx->profile && ctx->forwards > 0) {
        static const char *names[CPU_PHASES] = {"embeddings", "qkv", "attention", "attn_out",
                                                "layernorm", "ffn_up", "ffn_down", "bf16_convert",
                                                "pooler_head"};
        double total = 0;
        for (int i = 0; i < CPU_PHASES; i++) total += ctx->phase_sec[i];
        fprintf(stderr, "gomps cpu profile: %lld forwards, %d threads, %.3f ms per forward\n",
                (long long)ctx->forwards, ctx->n_threads, 1e3 * total / (double)ctx->forwards);
        for (int i = 0; i < CPU_PHASES; i++)
            fprintf(stderr, "  %-12s %8.3f ms  %5.1f%%\n", names[i],
                    1e3 * ctx->phase_sec[i] / (double)ctx->forwards,
                    total > 0 ? 100 * ctx->phase_sec[i] / total : 0.0);
    }
    cpu_prims_free(ctx);
    if (ctx->stream) dnnl_stream_destroy(ctx->stream);
    free(ctx->scratchpad);
    free(ctx->hidden);
    free_aligned(ctx->qkv);
    free_aligned(ctx->attn);
    free(ctx->tmp);
    free(ctx->inter);
    free(ctx->cls_hidden);
    free(ctx->cls_attn);
    free(ctx->pooled);
    free(ctx->offsets);
    free(ctx->scores);
    free(ctx->act16);
    free(ctx->hidden16);
    free(ctx);
}

static gomps_status context_set_threads(gomps_context_t *ctx, int32_t n_threads) {
    if (!ctx) return GOMPS_ERR_INVALID_ARG;
    if (n_threads > 1024)
        return cpu_ctx_errorf(ctx, GOMPS_ERR_INVALID_ARG, "cpu: set threads: %d is too many", n_threads);
    int32_t n = n_threads > 0 ? n_threads : default_threads();
    if (n == ctx->n_threads) return GOMPS_OK;
    int32_t old = ctx->n_threads;
    ctx->n_threads = n;
    if (n > ctx->scores_threads && scores_alloc(ctx)) {
        ctx->n_threads = old;
        scores_alloc(ctx);
        return cpu_ctx_errorf(ctx, GOMPS_ERR_OOM, "cpu: set threads: out of memory");
    }
    /* oneDNN primitives keep the thread count they were made with */
    cpu_prims_free(ctx);
    return GOMPS_OK;
}

static const char *context_last_error(const gomps_context_t *ctx) { return ctx ? ctx->err : ""; }

/* Forward ------------------------------------------------------------------*/

static gomps_status forward_plain(gomps_context_t *ctx, int32_t batch, int32_t seq,
                                  const int32_t *ids, const int32_t *type_ids,
                                  const int32_t *lengths, float *logits) {
    const gomps_ref_scratch s = {.hidden = ctx->hidden, .qkv = ctx->qkv, .attn = ctx->attn, .tmp = ctx->tmp,
                                 .inter = ctx->inter, .scores = ctx->scores, .cls = ctx->cls_hidden,
                                 .head = ctx->pooled, .chunk = CPU_ROWS_CHUNK};
    gomps_ref_forward_f32(&ctx->model->ref, &s, batch, seq, ids, type_ids, lengths, logits);
    return GOMPS_OK;
}

/* Row-wise ops over the context's threads, in blocks of 16 rows. LayerNorm
 * also rounds each block to bf16 into y16 (when not NULL) while it is in L1:
 * the next matmul's input. */
static void layernorm_par(const gomps_context_t *ctx, const float *x, const float *gamma,
                          const float *beta, int64_t rows, float *y, uint16_t *y16) {
    const int64_t H = ctx->model->file.hidden_size;
    const float eps = ctx->model->eps;
#pragma omp parallel for schedule(static) num_threads(ctx->n_threads) if (rows > 16)
    for (int64_t r0 = 0; r0 < rows; r0 += 16) {
        int64_t n = rows - r0 < 16 ? rows - r0 : 16;
        cpu_layernorm_fast(x + r0 * H, NULL, gamma, beta, eps, n, H, y + r0 * H);
        if (y16) cpu_f32_to_bf16(y + r0 * H, y16 + r0 * H, n * H);
    }
}

static void to_bf16_par(const gomps_context_t *ctx, const float *x, int64_t rows, int64_t cols,
                        uint16_t *y) {
#pragma omp parallel for schedule(static) num_threads(ctx->n_threads) if (rows > 16)
    for (int64_t r0 = 0; r0 < rows; r0 += 16) {
        int64_t n = rows - r0 < 16 ? rows - r0 : 16;
        cpu_f32_to_bf16(x + r0 * cols, y + r0 * cols, n * cols);
    }
}

/* x as the input of lin: itself, or rounded to bf16 into ctx->act16. */
static const void *linear_input(gomps_context_t *ctx, const cpu_linear *lin, const float *x,
                                int64_t rows, double *t0) {
    if (!lin->bf16) return x;
    to_bf16_par(ctx, x, rows, lin->n_in, ctx->act16);
    phase_end(ctx, CPU_PHASE_CONVERT, t0);
    return ctx->act16;
}

/* Attention output, residual + LayerNorm and the FFN over rows of attn and
 * hidden (updated in place), one chunk of rows at a time. attn is bf16 when
 * ctx->att_bf16, else f32. In bf16 precision the first LayerNorm writes the
 * FFN's bf16 input beside h, and the second, when hidden16 is not NULL, the
 * next layer's (the rows of hidden16 that match hidden's). */
static gomps_status layer_tail_fast(gomps_context_t *ctx, const cpu_layer *ly, const void *attn,
                                    float *hidden, uint16_t *hidden16, int64_t rows, double *t0) {
    const gomps_model_t *m = ctx->model;
    const int64_t H = m->file.hidden_size;
    const cpu_linear *lin = ly->lin;
    const int bf16 = m->precision == GOMPS_PRECISION_BF16;
    gomps_status st;
    for (int64_t c = 0; c < rows; c += CPU_ROWS_CHUNK) {
        int64_t n = rows - c < CPU_ROWS_CHUNK ? rows - c : CPU_ROWS_CHUNK;
        float *h = hidden + c * H;
        const cpu_linear *lo = &lin[CPU_LINEAR_ATTN_OUT], *lu = &lin[CPU_LINEAR_FFN_UP];
        const void *ain = ctx->att_bf16 ? (const void *)((const uint16_t *)attn + c * H)
                                        : linear_input(ctx, lo, (const float *)attn + c * H, n, t0);
        if ((st = cpu_linear_run(ctx, CPU_LINEAR_ATTN_OUT, lo, ain, n, h, ctx->tmp))) return st;
        phase_end(ctx, CPU_PHASE_ATTN_OUT, t0);
        layernorm_par(ctx, ctx->tmp, ly->attn_ln_gamma, ly->attn_ln_beta, n, h,
                      bf16 ? ctx->act16 : NULL);
        phase_end(ctx, CPU_PHASE_LAYERNORM, t0);
        if ((st = cpu_linear_run(ctx, CPU_LINEAR_FFN_UP, lu, bf16 ? (const void *)ctx->act16 : h, n,
                                 NULL, ctx->inter)))
            return st;
        phase_end(ctx, CPU_PHASE_FFN_UP, t0);
        if ((st = cpu_linear_run(ctx, CPU_LINEAR_FFN_DOWN, &lin[CPU_LINEAR_FFN_DOWN], ctx->inter, n,
                                 h, ctx->tmp)))
            return st;
        phase_end(ctx, CPU_PHASE_FFN_DOWN, t0);
        layernorm_par(ctx, ctx->tmp, ly->ffn_ln_gamma, ly->ffn_ln_beta, n, h,
                      hidden16 ? hidden16 + c * H : NULL);
        phase_end(ctx, CPU_PHASE_LAYERNORM, t0);
    }
    return GOMPS_OK;
}

static gomps_status forward_fast(gomps_context_t *ctx, int32_t batch, int32_t seq,
                                 const int32_t *ids, const int32_t *type_ids, float *logits) {
    const gomps_model_t *m = ctx->model;
    const int64_t H = m->file.hidden_size;
    const int32_t heads = m->file.num_heads, hd = m->file.hidden_size / m->file.num_heads;
    const int64_t *off = ctx->offsets;
    const int64_t total = off[batch];
    gomps_status st;
    double t0 = ctx->profile ? now_sec() : 0;
    ctx->forwards++;
    cpu_embeddings_packed(m, ids, type_ids, batch, seq, off, ctx->n_threads, ctx->hidden);
    /* rows past the real tokens up to the row grain are read by the matmuls
     * (their results are never used); keep them finite */
    memset(ctx->hidden + total * H, 0, (size_t)((round_grain(total) - total) * H) * sizeof(float));
    phase_end(ctx, CPU_PHASE_EMBED, &t0);
    /* bf16: the first QKV's input; each layer's last LayerNorm writes the next */
    const int bf16 = m->precision == GOMPS_PRECISION_BF16;
    if (bf16) {
        to_bf16_par(ctx, ctx->hidden, round_grain(total), H, ctx->hidden16);
        phase_end(ctx, CPU_PHASE_CONVERT, &t0);
    }
    const int32_t L = m->file.num_layers;
    for (int32_t l = 0; l < L; l++) {
        const cpu_layer *ly = &m->layers[l];
        const cpu_linear *lq = &ly->lin[CPU_LINEAR_QKV];
        if ((st = cpu_linear_run(ctx, CPU_LINEAR_QKV, lq,
                                 bf16 ? (const void *)ctx->hidden16 : ctx->hidden, total, NULL,
                                 ctx->qkv)))
            return st;
        phase_end(ctx, CPU_PHASE_QKV, &t0);
        if (l < L - 1) {
            cpu_attention_fast(ctx, ctx->qkv, batch, off, heads, hd, 0, ctx->attn);
            phase_end(ctx, CPU_PHASE_ATTENTION, &t0);
            if ((st = layer_tail_fast(ctx, ly, ctx->attn, ctx->hidden, bf16 ? ctx->hidden16 : NULL,
                                      total, &t0)))
                return st;
        } else {
            cpu_attention_fast(ctx, ctx->qkv, batch, off, heads, hd, 1, ctx->cls_attn);
            for (int32_t b = 0; b < batch; b++)
                memcpy(ctx->cls_hidden + (int64_t)b * H, ctx->hidden + off[b] * H,
                       (size_t)H * sizeof(float));
            phase_end(ctx, CPU_PHASE_ATTENTION, &t0);
            if ((st = layer_tail_fast(ctx, ly, ctx->cls_attn, ctx->cls_hidden, NULL, batch, &t0)))
                return st;
        }
    }
    /* pooler: one small GEMM over the [CLS] rows, then tanh and the classifier
     * (num_labels dot products per row) */
    dnnl_status_t ds = dnnl_sgemm('N', 'T', batch, H, H, 1.0f, ctx->cls_hidden, H, m->pooler_w, H,
                                  0.0f, ctx->pooled, H);
    if (ds)
        return cpu_ctx_errorf(ctx, GOMPS_ERR_DEVICE, "cpu: pooler sgemm failed: status %d", (int)ds);
    const int32_t NL = m->num_labels;
    float *act = ctx->pooled + (int64_t)m->max_batch * H; /* [H] tanh of one row */
    for (int32_t b = 0; b < batch; b++) {
        const float *p = ctx->pooled + (int64_t)b * H;
        for (int64_t j = 0; j < H; j++) act[j] = tanhf(p[j] + m->pooler_b[j]);
        for (int32_t k = 0; k < NL; k++) {
            const float *w = m->cls_w + (int64_t)k * H;
            float acc = 0;
            for (int64_t j = 0; j < H; j++) acc += act[j] * w[j];
            logits[(int64_t)b * NL + k] = acc + m->cls_b[k];
        }
    }
    phase_end(ctx, CPU_PHASE_HEAD, &t0);
    return GOMPS_OK;
}

static gomps_status context_forward(gomps_context_t *ctx, int32_t batch, int32_t seq, const int32_t *ids,
                                    const int32_t *type_ids, const int32_t *lengths, float *logits) {
    if (!ctx) return GOMPS_ERR_INVALID_ARG;
    ctx->err[0] = 0;
    const gomps_model_t *m = ctx->model;
    if (!ids || !type_ids || !lengths || !logits)
        return cpu_ctx_errorf(ctx, GOMPS_ERR_INVALID_ARG, "cpu: forward: a buffer is NULL");
    if (batch < 1 || batch > m->max_batch)
        return cpu_ctx_errorf(ctx, GOMPS_ERR_INVALID_ARG, "cpu: forward: batch %d is outside [1, %d]",
                              batch, m->max_batch);
    if (seq < 1 || seq > m->max_seq)
        return cpu_ctx_errorf(ctx, GOMPS_ERR_INVALID_ARG, "cpu: forward: seq %d is outside [1, %d]",
                              seq, m->max_seq);
    int64_t *off = ctx->offsets;
    off[0] = 0;
    for (int32_t b = 0; b < batch; b++) {
        int32_t len = lengths[b];
        if (len < 1 || len > seq)
            return cpu_ctx_errorf(ctx, GOMPS_ERR_INVALID_ARG,
                                  "cpu: forward: lengths[%d] = %d is outside [1, seq = %d]", b, len, seq);
        for (int32_t t = 0; t < len; t++) {
            int64_t i = (int64_t)b * seq + t;
            if (ids[i] < 0 || ids[i] >= m->file.vocab_size)
                return cpu_ctx_errorf(ctx, GOMPS_ERR_INVALID_ARG,
                                      "cpu: forward: ids[%d][%d] = %d is outside [0, vocab_size %d)",
                                      b, t, ids[i], m->file.vocab_size);
            if (type_ids[i] < 0 || type_ids[i] >= m->file.type_vocab_size)
                return cpu_ctx_errorf(ctx, GOMPS_ERR_INVALID_ARG,
                                      "cpu: forward: type_ids[%d][%d] = %d is outside [0, %d)", b, t,
                                      type_ids[i], m->file.type_vocab_size);
        }
        off[b + 1] = off[b] + len;
    }
    /* the thread count of this context, on this calling thread, every time */
    omp_set_num_threads(ctx->n_threads);
    if (m->plain) return forward_plain(ctx, batch, seq, ids, type_ids, lengths, logits);
    return forward_fast(ctx, batch, seq, ids, type_ids, logits);
}

/* Capabilities and the table -----------------------------------------------*/

/* The instances and threads per instance this backend prefers for a budget of
 * threads: one single-threaded instance per thread up to CPU_MAX_INSTANCES,
 * above that the largest count up to the cap that splits the threads evenly
 * (1 when none does). Single-threaded instances run their forward passes
 * without OpenMP barriers, and under light load the batcher spreads a call
 * over the idle instances; each instance holds its own scratch, hence the cap
 * (kernels/cpu/README.md, "Instances"). */
enum { CPU_MAX_INSTANCES = 4 };

static void preferred(int32_t threads, int32_t *instances, int32_t *per) {
    if (threads <= 0) threads = default_threads();
    int32_t n = 1;
    for (int32_t k = threads < CPU_MAX_INSTANCES ? threads : CPU_MAX_INSTANCES; k > 1; k--)
        if (threads % k == 0) {
            n = k;
            break;
        }
    *instances = n;
    *per = threads / n;
}

static gomps_status capabilities(int32_t threads, gomps_capabilities *out) {
    if (!out || out->struct_size < sizeof(gomps_capabilities)) return GOMPS_ERR_INVALID_ARG;
    const cpu_isa *isa = cpu_isa_get();
    gomps_capabilities c = {0};
    c.struct_size = sizeof c;
    c.usable = isa->error[0] == 0;
    if (c.usable) {
        c.precisions = GOMPS_PRECISION_BIT(GOMPS_PRECISION_F32);
        if (isa->bf16) c.precisions |= GOMPS_PRECISION_BIT(GOMPS_PRECISION_BF16);
    }
    c.padded = 0; /* only real tokens are computed */
    c.max_batch = 65536;
    c.max_seq = 0;
    preferred(threads, &c.instances, &c.threads);
    c.memory_in_use = mem_in_use;
    snprintf(c.isa, sizeof c.isa, "%s", isa->name);
    if (isa->error[0]) snprintf(c.unusable, sizeof c.unusable, "cpu: %.240s", isa->error);
    memcpy(out, &c, sizeof c);
    return GOMPS_OK;
}

#define CPU_STR_(x) #x
#define CPU_STR(x) CPU_STR_(x)

static const gomps_backend cpu_backend = {
    .struct_size = sizeof(gomps_backend),
    .abi_version = GOMPS_ABI_VERSION,
    .name = "cpu",
    .version = "C over oneDNN " CPU_STR(DNNL_VERSION_MAJOR) "." CPU_STR(DNNL_VERSION_MINOR) "." CPU_STR(
        DNNL_VERSION_PATCH) " (OpenMP)",
    .capabilities = capabilities,
    .model_init = model_init,
    .model_free = model_free,
    .model_info = model_info,
    .last_init_error = cpu_last_init_error,
    .context_init = context_init,
    .context_free = context_free,
    .context_set_threads = context_set_threads,
    .context_forward = context_forward,
    .context_last_error = context_last_error,
};

const gomps_backend *gomps_backend_cpu(void) { return &cpu_backend; }
