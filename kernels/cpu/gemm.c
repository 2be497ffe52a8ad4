/*
 * gemm.c: the linear layers. The reference is a plain loop; the fast path is a
 * oneDNN matmul per (kind, row bucket) over weights reordered once per model
 * into the blocked layout oneDNN picks for this CPU, with bias, GELU and the
 * residual fused as post-ops.
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

void gomps_ref_linear_f32(const float *x, int64_t rows, int64_t n_in, const float *w,
                          const float *b, int64_t n_out, float *y) {
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * n_in;
        for (int64_t o = 0; o < n_out; o++) {
            const float *wo = w + o * n_in;
            float acc = 0;
            for (int64_t k = 0; k < n_in; k++) acc += xr[k] * wo[k];
            y[r * n_out + o] = b ? acc + b[o] : acc;
        }
    }
}

static int kind_has_residual(cpu_linear_kind kind) {
    return kind == CPU_LINEAR_ATTN_OUT || kind == CPU_LINEAR_FFN_DOWN;
}

/* 1 if kind writes bf16: FFN_UP of a bf16 linear (FFN_DOWN's input), and QKV
 * of a bf16 linear when the context's attention reads bf16 (ctx->att_bf16). */
static int dst_bf16(const gomps_context_t *ctx, cpu_linear_kind kind, const cpu_linear *lin) {
    return lin->bf16 && (kind == CPU_LINEAR_FFN_UP || (kind == CPU_LINEAR_QKV && ctx->att_bf16));
}

/* The matmul descriptor and attributes of kind at rows, writing bf16 when
 * out_bf16 and f32 otherwise; wei may be "any". */
static dnnl_status_t linear_pd(dnnl_engine_t eng, cpu_linear_kind kind, const cpu_linear *lin,
                               int64_t rows, int out_bf16, const dnnl_memory_desc_t *wei,
                               dnnl_primitive_desc_t *pd) {
    dnnl_memory_desc_t src, bias, dst, res;
    dnnl_dims_t sd = {rows, lin->n_in}, bd = {1, lin->n_out}, dd = {rows, lin->n_out};
    dnnl_data_type_t src_dt = lin->bf16 ? dnnl_bf16 : dnnl_f32;
    dnnl_data_type_t dst_dt = out_bf16 ? dnnl_bf16 : dnnl_f32;
    dnnl_status_t st;
    if ((st = dnnl_memory_desc_init_by_tag(&src, 2, sd, src_dt, dnnl_ab))) return st;
    if ((st = dnnl_memory_desc_init_by_tag(&bias, 2, bd, dnnl_f32, dnnl_ab))) return st;
    if ((st = dnnl_memory_desc_init_by_tag(&dst, 2, dd, dst_dt, dnnl_ab))) return st;
    if ((st = dnnl_memory_desc_init_by_tag(&res, 2, dd, dnnl_f32, dnnl_ab))) return st;
    dnnl_matmul_desc_t md;
    if ((st = dnnl_matmul_desc_init(&md, &src, wei, &bias, &dst))) return st;
    dnnl_primitive_attr_t attr = NULL;
    dnnl_post_ops_t po = NULL;
    if ((st = dnnl_primitive_attr_create(&attr))) return st;
    if ((st = dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user))) goto out;
    if ((st = dnnl_post_ops_create(&po))) goto out;
    if (kind == CPU_LINEAR_FFN_UP &&
        (st = dnnl_post_ops_append_eltwise(po, 1.0f, dnnl_eltwise_gelu_erf, 0.0f, 0.0f)))
        goto out;
    if (kind_has_residual(kind) && (st = dnnl_post_ops_append_binary(po, dnnl_binary_add, &res)))
        goto out;
    if ((st = dnnl_primitive_attr_set_post_ops(attr, po))) goto out;
    st = dnnl_primitive_desc_create(pd, &md, attr, eng, NULL);
out:
    if (po) dnnl_post_ops_destroy(po);
    dnnl_primitive_attr_destroy(attr);
    return st;
}

/* Picks the weights layout at a full chunk of rows and reorders W^T into it
 * (converting to bf16, rounding to nearest even, for a bf16 linear).
 * The layout is then forced for every row bucket (checked to work for 1..512
 * rows on AVX-512 and AVX2 dispatch). */
gomps_status cpu_linear_pack(gomps_model_t *m, cpu_linear *lin) {
    static const cpu_linear_kind kind_any = CPU_LINEAR_QKV;
    dnnl_memory_desc_t any, plain;
    dnnl_dims_t wd = {lin->n_in, lin->n_out};
    dnnl_primitive_desc_t pd = NULL, rpd = NULL;
    dnnl_primitive_t reorder = NULL;
    dnnl_memory_t msrc = NULL, mdst = NULL;
    dnnl_stream_t stream = NULL;
    dnnl_status_t st;
    const char *what = "matmul";
    if ((st = dnnl_memory_desc_init_by_tag(&any, 2, wd, lin->bf16 ? dnnl_bf16 : dnnl_f32,
                                           dnnl_format_tag_any)))
        goto fail;
    if ((st = dnnl_memory_desc_init_by_tag(&plain, 2, wd, dnnl_f32, dnnl_ba))) goto fail;
    if ((st = linear_pd(m->engine, kind_any, lin, CPU_ROWS_CHUNK, 0, &any, &pd))) goto fail;
    lin->w_md = *dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
    size_t size = dnnl_memory_desc_get_size(&lin->w_md);
    lin->w_packed = aligned_alloc(64, (size + 63) / 64 * 64);
    if (!lin->w_packed) {
        dnnl_primitive_desc_destroy(pd);
        return cpu_init_errorf(GOMPS_ERR_OOM, "cpu: %s: out of memory packing weights", m->path);
    }
    what = "reorder";
    if ((st = dnnl_reorder_primitive_desc_create(&rpd, &plain, m->engine, &lin->w_md, m->engine,
                                                 NULL)))
        goto fail;
    if ((st = dnnl_primitive_create(&reorder, rpd))) goto fail;
    if ((st = dnnl_memory_create(&msrc, &plain, m->engine, (void *)lin->w))) goto fail;
    if ((st = dnnl_memory_create(&mdst, &lin->w_md, m->engine, lin->w_packed))) goto fail;
    if ((st = dnnl_stream_create(&stream, m->engine, dnnl_stream_default_flags))) goto fail;
    dnnl_exec_arg_t args[2] = {{DNNL_ARG_FROM, msrc}, {DNNL_ARG_TO, mdst}};
    if ((st = dnnl_primitive_execute(reorder, stream, 2, args))) goto fail;
    if ((st = dnnl_stream_wait(stream))) goto fail;
    dnnl_stream_destroy(stream);
    dnnl_memory_destroy(msrc);
    dnnl_memory_destroy(mdst);
    dnnl_primitive_destroy(reorder);
    dnnl_primitive_desc_destroy(rpd);
    dnnl_primitive_desc_destroy(pd);
    return GOMPS_OK;
fail:
    if (stream) dnnl_stream_destroy(stream);
    if (msrc) dnnl_memory_destroy(msrc);
    if (mdst) dnnl_memory_destroy(mdst);
    if (reorder) dnnl_primitive_destroy(reorder);
    if (rpd) dnnl_primitive_desc_destroy(rpd);
    if (pd) dnnl_primitive_desc_destroy(pd);
    free(lin->w_packed);
    lin->w_packed = NULL;
    return cpu_init_errorf(GOMPS_ERR_DEVICE, "cpu: %s: oneDNN %s for a %dx%d weight failed: status %d",
                           m->path, what, lin->n_out, lin->n_in, (int)st);
}

void cpu_linear_unpack(cpu_linear *lin) {
    free(lin->w_packed);
    lin->w_packed = NULL;
}

static void prim_free(cpu_prim *p) {
    if (p->prim) dnnl_primitive_destroy(p->prim);
    dnnl_memory_t *mems[] = {&p->src, &p->wei, &p->bias, &p->dst, &p->res, &p->scratch};
    for (size_t i = 0; i < sizeof mems / sizeof mems[0]; i++)
        if (*mems[i]) dnnl_memory_destroy(*mems[i]);
    memset(p, 0, sizeof *p);
}

void cpu_prims_free(gomps_context_t *ctx) {
    for (int k = 0; k < CPU_LINEAR_KINDS; k++)
        for (int b = 0; b < CPU_ROW_BUCKETS; b++) prim_free(&ctx->prims[k][b]);
}

/* Creates the primitive of kind at bucket (rows = (bucket + 1) * grain) with
 * the calling thread's OpenMP thread count, which oneDNN bakes in. */
static gomps_status prim_make(gomps_context_t *ctx, cpu_linear_kind kind, const cpu_linear *lin,
                              int bucket) {
    cpu_prim *p = &ctx->prims[kind][bucket];
    dnnl_engine_t eng = ctx->model->engine;
    int64_t rows = (int64_t)(bucket + 1) * CPU_ROWS_GRAIN;
    dnnl_primitive_desc_t pd = NULL;
    dnnl_status_t st = linear_pd(eng, kind, lin, rows, dst_bf16(ctx, kind, lin), &lin->w_md, &pd);
    if (st) goto fail;
    const dnnl_memory_desc_t *sp = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
    size_t need = sp ? dnnl_memory_desc_get_size(sp) : 0;
    if (need > ctx->scratchpad_size) {
        /* only while primitives are first made, never in a warm forward */
        void *buf = aligned_alloc(64, (need + 63) / 64 * 64);
        if (!buf) {
            dnnl_primitive_desc_destroy(pd);
            return cpu_ctx_errorf(ctx, GOMPS_ERR_OOM, "cpu: out of memory for a %zu-byte scratchpad", need);
        }
        free(ctx->scratchpad);
        ctx->scratchpad = buf;
        ctx->scratchpad_size = need;
    }
    if ((st = dnnl_primitive_create(&p->prim, pd))) goto fail;
#define MEM(field, query)                                                                        \
    if ((st = dnnl_memory_create(&p->field, dnnl_primitive_desc_query_md(pd, query, 0), eng,     \
                                 DNNL_MEMORY_NONE)))                                             \
        goto fail;
    MEM(src, dnnl_query_src_md)
    MEM(wei, dnnl_query_weights_md)
    if ((st = dnnl_memory_create(&p->bias, dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 1),
                                 eng, DNNL_MEMORY_NONE)))
        goto fail;
    MEM(dst, dnnl_query_dst_md)
    MEM(scratch, dnnl_query_scratchpad_md)
#undef MEM
    if (kind_has_residual(kind) &&
        (st = dnnl_memory_create(&p->res, dnnl_primitive_desc_query_md(pd, dnnl_query_dst_md, 0),
                                 eng, DNNL_MEMORY_NONE)))
        goto fail;
    dnnl_primitive_desc_destroy(pd);
    return GOMPS_OK;
fail:
    if (pd) dnnl_primitive_desc_destroy(pd);
    prim_free(p);
    return cpu_ctx_errorf(ctx, GOMPS_ERR_DEVICE,
                          "cpu: oneDNN matmul %dx%d at %lld rows could not be created: status %d",
                          lin->n_out, lin->n_in, (long long)rows, (int)st);
}

__attribute__((always_inline)) static inline void f32_to_bf16_body(const float *x, uint16_t *y,
                                                                  int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        uint32_t b;
        memcpy(&b, &x[i], 4);
        /* inputs are finite here (LayerNorm and attention outputs) */
        y[i] = (uint16_t)((b + 0x7fffu + ((b >> 16) & 1u)) >> 16);
    }
}

CPU_CLONES(f32_to_bf16, (const float *x, uint16_t *y, int64_t n), (x, y, n))

void cpu_f32_to_bf16(const float *x, uint16_t *y, int64_t n) { CPU_DISPATCH(f32_to_bf16, (x, y, n)); }

gomps_status cpu_linear_run(gomps_context_t *ctx, cpu_linear_kind kind, const cpu_linear *lin,
                            const void *x, int64_t rows, const float *residual, void *y) {
    const int64_t src_es = lin->bf16 ? 2 : 4;
    const int64_t dst_es = dst_bf16(ctx, kind, lin) ? 2 : 4;
    for (int64_t c = 0; c < rows; c += CPU_ROWS_CHUNK) {
        int64_t m = rows - c < CPU_ROWS_CHUNK ? rows - c : CPU_ROWS_CHUNK;
        int bucket = (int)((m + CPU_ROWS_GRAIN - 1) / CPU_ROWS_GRAIN) - 1;
        cpu_prim *p = &ctx->prims[kind][bucket];
        if (!p->prim) {
            gomps_status s = prim_make(ctx, kind, lin, bucket);
            if (s) return s;
        }
        dnnl_memory_set_data_handle(p->src, (char *)x + c * lin->n_in * src_es);
        dnnl_memory_set_data_handle(p->wei, lin->w_packed);
        dnnl_memory_set_data_handle(p->bias, (void *)lin->b);
        dnnl_memory_set_data_handle(p->dst, (char *)y + c * lin->n_out * dst_es);
        dnnl_memory_set_data_handle(p->scratch, ctx->scratchpad);
        dnnl_exec_arg_t args[6] = {{DNNL_ARG_SRC, p->src},         {DNNL_ARG_WEIGHTS, p->wei},
                                   {DNNL_ARG_BIAS, p->bias},       {DNNL_ARG_DST, p->dst},
                                   {DNNL_ARG_SCRATCHPAD, p->scratch}, {0, NULL}};
        int nargs = 5;
        if (kind_has_residual(kind)) {
            dnnl_memory_set_data_handle(p->res, (void *)(residual + c * lin->n_out));
            args[5].arg = DNNL_ARG_ATTR_MULTIPLE_POST_OP(0) | DNNL_ARG_SRC_1;
            args[5].memory = p->res;
            nargs = 6;
        }
        dnnl_status_t st = dnnl_primitive_execute(p->prim, ctx->stream, nargs, args);
        if (st == dnnl_success) st = dnnl_stream_wait(ctx->stream);
        if (st)
            return cpu_ctx_errorf(ctx, GOMPS_ERR_DEVICE, "cpu: oneDNN matmul %dx%d failed: status %d",
                                  lin->n_out, lin->n_in, (int)st);
    }
    return GOMPS_OK;
}
