//go:build cgo && !darwin

/*
 * ref-backend.c: "ref", a second backend for tests: the native ABI
 * (kernels/gomps.h) in plain C over the CPU backend's reference ops
 * (kernels/cpu/ops.h) and the shared weights reader (kernels/wfile).
 * Single-threaded, f32 only, F32 files only; it computes every row at the
 * padded length (capabilities: padded), so it differs from the CPU backend
 * in what it answers as well as in how it computes.
 *
 * Its one exported symbol is nativetest_backend_ref (a test accessor, so
 * not named like the project's backends); nativetest_backend_stale returns
 * the same table claiming ABI version 1, which a caller must refuse.
 *
 * (The build constraint above is for the go tool.)
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpu/ops.h"
#include "gomps.h"
#include "wfile/gomps-wfile.h"

struct gomps_model {
    gomps_wfile file;
    int32_t max_batch, max_seq;
    gomps_ref_layer *layers;
    gomps_ref_model ref;
};

struct gomps_context {
    gomps_model_t *model;
    gomps_ref_scratch s;
    int64_t bytes;
    char err[512];
};

static _Thread_local char init_error[1024];
static _Atomic int64_t mem_in_use;

static gomps_status init_fail(gomps_status st, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(init_error, sizeof init_error, fmt, ap);
    va_end(ap);
    return st;
}

static gomps_status ctx_fail(gomps_context_t *c, gomps_status st, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err, sizeof c->err, fmt, ap);
    va_end(ap);
    return st;
}

static const char *last_init_error(void) { return init_error; }

static gomps_status capabilities(int32_t threads, gomps_capabilities *out) {
    (void)threads;
    if (!out || out->struct_size < sizeof(gomps_capabilities)) return GOMPS_ERR_INVALID_ARG;
    gomps_capabilities c = {0};
    c.struct_size = sizeof c;
    c.usable = 1;
    c.precisions = GOMPS_PRECISION_BIT(GOMPS_PRECISION_F32);
    c.padded = 1;
    c.max_batch = 256;
    c.instances = 1;
    c.threads = 1;
    c.memory_in_use = mem_in_use;
    snprintf(c.isa, sizeof c.isa, "plain-c");
    memcpy(out, &c, sizeof c);
    return GOMPS_OK;
}

static void model_free(gomps_model_t *m) {
    if (!m) return;
    gomps_wfile_close(&m->file);
    free(m->layers);
    free(m);
}

static const float *tensor(const gomps_model_t *m, uint32_t i) { return (const float *)m->file.tensors[i].data; }

static gomps_status model_init(const char *path, const gomps_model_options *opts, gomps_model_t **out) {
    init_error[0] = 0;
    if (!out || !path) return init_fail(GOMPS_ERR_INVALID_ARG, "ref: model init: NULL argument");
    *out = NULL;
    gomps_model_options o = {0};
    if (opts) {
        if (opts->struct_size < sizeof o) return init_fail(GOMPS_ERR_INVALID_ARG, "ref: options too small");
        o = *opts;
    }
    if (o.buckets) return init_fail(GOMPS_ERR_INVALID_ARG, "ref: no shape buckets");
    if (o.precision != GOMPS_PRECISION_F32)
        return init_fail(o.precision < 0 ? GOMPS_ERR_INVALID_ARG : GOMPS_ERR_UNSUPPORTED,
                         "ref: precision %d; this backend runs f32 only", o.precision);
    if (o.max_batch < 0 || o.max_batch > 256 || o.max_seq < 0)
        return init_fail(GOMPS_ERR_INVALID_ARG, "ref: max_batch %d or max_seq %d out of range", o.max_batch, o.max_seq);
    gomps_model_t *m = calloc(1, sizeof *m);
    if (!m) return init_fail(GOMPS_ERR_OOM, "ref: out of memory");
    char err[1024];
    gomps_status st = gomps_wfile_open(path, GOMPS_WFILE_VERIFY_TOKENIZER, &m->file, err, sizeof err);
    if (st) {
        free(m);
        return init_fail(st, "ref: %s", err);
    }
    const gomps_wfile_config *c = &m->file.cfg;
    m->max_batch = o.max_batch ? o.max_batch : 64;
    m->max_seq = o.max_seq ? o.max_seq : (int32_t)c->max_position;
    if (m->max_seq > (int32_t)c->max_position) {
        st = init_fail(GOMPS_ERR_INVALID_ARG, "ref: %s: max_seq %d is more than the model's %u positions", path,
                       m->max_seq, c->max_position);
        goto fail;
    }
    if (c->dtype != GOMPS_WFILE_DTYPE_F32) {
        st = init_fail(GOMPS_ERR_UNSUPPORTED, "ref: %s: F16 files are not supported", path);
        goto fail;
    }
    const uint32_t L = c->num_layers;
    m->layers = calloc(L, sizeof *m->layers);
    if (!m->layers) {
        st = init_fail(GOMPS_ERR_OOM, "ref: out of memory");
        goto fail;
    }
    for (uint32_t l = 0; l < L; l++) {
#define T(k) tensor(m, gomps_wfile_layer_index(l, k))
        m->layers[l] = (gomps_ref_layer){
            .qkv_w = T(GOMPS_WL_QKV_W), .qkv_b = T(GOMPS_WL_QKV_B),
            .attn_out_w = T(GOMPS_WL_ATTN_OUT_W), .attn_out_b = T(GOMPS_WL_ATTN_OUT_B),
            .attn_ln_gamma = T(GOMPS_WL_ATTN_LN_G), .attn_ln_beta = T(GOMPS_WL_ATTN_LN_B),
            .ffn_up_w = T(GOMPS_WL_FFN_UP_W), .ffn_up_b = T(GOMPS_WL_FFN_UP_B),
            .ffn_down_w = T(GOMPS_WL_FFN_DOWN_W), .ffn_down_b = T(GOMPS_WL_FFN_DOWN_B),
            .ffn_ln_gamma = T(GOMPS_WL_FFN_LN_G), .ffn_ln_beta = T(GOMPS_WL_FFN_LN_B)};
#undef T
    }
    const gomps_wfile *f = &m->file;
    m->ref = (gomps_ref_model){
        .hidden = c->hidden_size, .intermediate = c->intermediate_size, .num_layers = (int32_t)L,
        .num_heads = (int32_t)c->num_heads,
        .num_labels = (int32_t)f->tensors[gomps_wfile_head_index(f, GOMPS_WH_CLS_B)].elems,
        .eps = (float)c->layer_norm_eps, .word = tensor(m, GOMPS_WT_WORD), .position = tensor(m, GOMPS_WT_POSITION),
        .token_type = tensor(m, GOMPS_WT_TOKEN_TYPE), .emb_ln_gamma = tensor(m, GOMPS_WT_EMB_LN_GAMMA),
        .emb_ln_beta = tensor(m, GOMPS_WT_EMB_LN_BETA), .layers = m->layers,
        .pooler_w = tensor(m, gomps_wfile_head_index(f, GOMPS_WH_POOLER_W)),
        .pooler_b = tensor(m, gomps_wfile_head_index(f, GOMPS_WH_POOLER_B)),
        .cls_w = tensor(m, gomps_wfile_head_index(f, GOMPS_WH_CLS_W)),
        .cls_b = tensor(m, gomps_wfile_head_index(f, GOMPS_WH_CLS_B))};
    *out = m;
    return GOMPS_OK;
fail:
    model_free(m);
    return st;
}

static gomps_status model_info(const gomps_model_t *m, gomps_model_info *out) {
    if (!m || !out || out->struct_size < sizeof(gomps_model_info)) return GOMPS_ERR_INVALID_ARG;
    const gomps_wfile_config *c = &m->file.cfg;
    gomps_model_info in = {0};
    in.struct_size = sizeof in;
    snprintf(in.backend, sizeof in.backend, "ref");
    snprintf(in.isa, sizeof in.isa, "plain-c");
    snprintf(in.arch, sizeof in.arch, "bert");
    snprintf(in.name, sizeof in.name, "%s", c->name);
    memcpy(in.source_sha256, c->source_sha256, sizeof in.source_sha256);
    in.num_labels = m->ref.num_labels;
    in.vocab_size = (int32_t)c->vocab_size;
    in.hidden_size = (int32_t)c->hidden_size;
    in.num_layers = (int32_t)c->num_layers;
    in.num_heads = (int32_t)c->num_heads;
    in.intermediate_size = (int32_t)c->intermediate_size;
    in.max_position = (int32_t)c->max_position;
    in.type_vocab_size = (int32_t)c->type_vocab_size;
    in.pad_token_id = (int32_t)c->pad_token_id;
    in.layer_norm_eps = c->layer_norm_eps;
    in.precision = GOMPS_PRECISION_F32;
    in.max_batch = m->max_batch;
    in.max_seq = m->max_seq;
    for (uint32_t i = 0; i < m->file.n_tensors; i++) in.weights_bytes += (int64_t)m->file.tensors[i].size;
    in.tokenizer = m->file.tokenizer;
    in.tokenizer_size = m->file.tokenizer_size;
    memcpy(out, &in, sizeof in);
    return GOMPS_OK;
}

static void context_free(gomps_context_t *c) {
    if (!c) return;
    mem_in_use -= c->bytes;
    free(c->s.hidden);
    free(c->s.qkv);
    free(c->s.attn);
    free(c->s.tmp);
    free(c->s.inter);
    free(c->s.scores);
    free(c->s.cls);
    free(c->s.head);
    free(c);
}

static float *floats(gomps_context_t *c, int64_t n) {
    c->bytes += n * (int64_t)sizeof(float);
    return calloc((size_t)n, sizeof(float));
}

static gomps_status context_init(gomps_model_t *m, int32_t n_threads, gomps_context_t **out) {
    (void)n_threads;
    init_error[0] = 0;
    if (!m || !out) return init_fail(GOMPS_ERR_INVALID_ARG, "ref: context init: NULL argument");
    gomps_context_t *c = calloc(1, sizeof *c);
    if (!c) return init_fail(GOMPS_ERR_OOM, "ref: out of memory");
    c->model = m;
    const int64_t H = m->ref.hidden, I = m->ref.intermediate, rows = (int64_t)m->max_batch * m->max_seq;
    c->s = (gomps_ref_scratch){.hidden = floats(c, rows * H), .qkv = floats(c, rows * 3 * H),
                               .attn = floats(c, rows * H), .tmp = floats(c, 64 * H), .inter = floats(c, 64 * I),
                               .scores = floats(c, m->max_seq), .cls = floats(c, (int64_t)m->max_batch * H),
                               .head = floats(c, H), .chunk = 64};
    mem_in_use += c->bytes;
    if (!c->s.hidden || !c->s.qkv || !c->s.attn || !c->s.tmp || !c->s.inter || !c->s.scores || !c->s.cls ||
        !c->s.head) {
        context_free(c);
        return init_fail(GOMPS_ERR_OOM, "ref: out of memory for scratch");
    }
    *out = c;
    return GOMPS_OK;
}

static gomps_status context_set_threads(gomps_context_t *c, int32_t n) {
    (void)n;
    return c ? GOMPS_OK : GOMPS_ERR_INVALID_ARG;
}

static const char *context_last_error(const gomps_context_t *c) { return c ? c->err : ""; }

static gomps_status context_forward(gomps_context_t *c, int32_t batch, int32_t seq, const int32_t *ids,
                                    const int32_t *type_ids, const int32_t *lengths, float *logits) {
    if (!c) return GOMPS_ERR_INVALID_ARG;
    c->err[0] = 0;
    const gomps_model_t *m = c->model;
    const gomps_wfile_config *cfg = &m->file.cfg;
    if (!ids || !type_ids || !lengths || !logits) return ctx_fail(c, GOMPS_ERR_INVALID_ARG, "ref: forward: a buffer is NULL");
    if (batch < 1 || batch > m->max_batch || seq < 1 || seq > m->max_seq)
        return ctx_fail(c, GOMPS_ERR_INVALID_ARG, "ref: forward: batch %d x seq %d is outside %d x %d", batch, seq,
                        m->max_batch, m->max_seq);
    for (int32_t b = 0; b < batch; b++) {
        if (lengths[b] < 1 || lengths[b] > seq)
            return ctx_fail(c, GOMPS_ERR_INVALID_ARG, "ref: forward: lengths[%d] = %d is outside [1, %d]", b,
                            lengths[b], seq);
        for (int32_t t = 0; t < lengths[b]; t++) {
            const int64_t i = (int64_t)b * seq + t;
            if (ids[i] < 0 || (uint32_t)ids[i] >= cfg->vocab_size || type_ids[i] < 0 ||
                (uint32_t)type_ids[i] >= cfg->type_vocab_size)
                return ctx_fail(c, GOMPS_ERR_INVALID_ARG, "ref: forward: token [%d][%d] out of range", b, t);
        }
    }
    gomps_ref_forward_f32(&m->ref, &c->s, batch, seq, ids, type_ids, lengths, logits);
    return GOMPS_OK;
}

static const gomps_backend ref_backend = {
    .struct_size = sizeof(gomps_backend),
    .abi_version = GOMPS_ABI_VERSION,
    .name = "ref",
    .version = "plain C over kernels/cpu/ops.h (tests only)",
    .capabilities = capabilities,
    .model_init = model_init,
    .model_free = model_free,
    .model_info = model_info,
    .last_init_error = last_init_error,
    .context_init = context_init,
    .context_free = context_free,
    .context_set_threads = context_set_threads,
    .context_forward = context_forward,
    .context_last_error = context_last_error,
};

const gomps_backend *nativetest_backend_ref(void) { return &ref_backend; }

/* The ref table under another name, claiming ABI version 1. */
static gomps_backend stale_backend;
static pthread_once_t stale_once = PTHREAD_ONCE_INIT;

static void stale_init(void) {
    stale_backend = ref_backend;
    stale_backend.abi_version = 1;
    stale_backend.name = "stale";
    stale_backend.version = "the ref table under ABI version 1";
}

const gomps_backend *nativetest_backend_stale(void) {
    pthread_once(&stale_once, stale_init);
    return &stale_backend;
}
