//go:build darwin && cgo

/*
 * graph.m: the MPSGraph of the forward pass and the bucket set.
 *
 * One MPSGraph per model holds the weight placeholders (one per tensor of the
 * native file, fed from MTLBuffers shared by every bucket and context) and,
 * for each (batch, seq) bucket, one static-shape subgraph per graph step of
 * the model's plan (gomps-plan.h): with no layer kernel selected that is a
 * single segment from the inputs to the [B, num_labels] logits; each
 * selected kernel splits it. Every segment compiles to its own executable,
 * which only contains the ops its targets need; its inputs and results are
 * views over the session's buffers.
 *
 * Weights are in Hugging Face orientation [out, in]; matmul_wt() transposes
 * them in the graph (whether that transpose is free is one of the things to
 * measure on a Mac, metal/README.md).
 */
#import "internal.h"

#include <stdlib.h>
#include <string.h>

@implementation GompsStep
@end

@implementation GompsBucket
@end

/* ---- buckets ---- */

static int bucket_cmp(const void *a, const void *b) {
    const int32_t *x = a, *y = b;
    if (x[1] != y[1]) return x[1] < y[1] ? -1 : 1;
    return x[0] < y[0] ? -1 : x[0] > y[0];
}

gomps_status gomps_buckets_resolve(const char *spec, int32_t max_batch, int32_t max_seq,
                                   NSMutableArray<GompsBucket *> *out, char *err, size_t errlen) {
    int32_t list[GOMPS_METAL_MAX_BUCKETS][2];
    int n = 0;
    if (spec == NULL) {
        /* Default (12 buckets before clamping): seq 64, 128, 256 with batch
         * 1, 8, 32; seq 512 with batch 1, 4, 16 (the fp32 scores of 16 x 512
         * are 16*12*512*512*4 B = 192 MiB; 32 x 512 would be twice that).
         * Each is clamped to (max_batch, max_seq); a max_seq above 512 moves
         * the last group to max_seq. */
        static const int32_t seqs[4] = {64, 128, 256, 512};
        static const int32_t small[3] = {1, 8, 32}, large[3] = {1, 4, 16};
        for (int s = 0; s < 4; s++) {
            int32_t seq = seqs[s];
            if (s == 3 && max_seq > seq) seq = max_seq;
            if (seq > max_seq) seq = max_seq;
            for (int k = 0; k < 3; k++) {
                int32_t b = (s < 3 ? small : large)[k];
                if (b > max_batch) b = max_batch;
                list[n][0] = b;
                list[n][1] = seq;
                n++;
            }
        }
    } else {
        const char *p = spec;
        while (*p) {
            char *end;
            long b = strtol(p, &end, 10);
            if (end == p || (*end != 'x' && *end != 'X')) {
                snprintf(err, errlen, "metal: buckets \"%s\": want \"BxS,BxS,...\" at \"%s\"", spec, p);
                return GOMPS_ERR_INVALID_ARG;
            }
            p = end + 1;
            long s = strtol(p, &end, 10);
            if (end == p || (*end != ',' && *end != 0)) {
                snprintf(err, errlen, "metal: buckets \"%s\": want \"BxS,BxS,...\" at \"%s\"", spec, p);
                return GOMPS_ERR_INVALID_ARG;
            }
            p = *end ? end + 1 : end;
            if (b < 1 || b > max_batch || s < 1 || s > max_seq) {
                snprintf(err, errlen, "metal: buckets: %ldx%ld is outside 1..%d x 1..%d (max_batch x max_seq)", b, s,
                         max_batch, max_seq);
                return GOMPS_ERR_INVALID_ARG;
            }
            if (n == GOMPS_METAL_MAX_BUCKETS) {
                snprintf(err, errlen, "metal: buckets: more than %d", GOMPS_METAL_MAX_BUCKETS);
                return GOMPS_ERR_INVALID_ARG;
            }
            list[n][0] = (int32_t)b;
            list[n][1] = (int32_t)s;
            n++;
        }
        if (n == 0) {
            snprintf(err, errlen, "metal: buckets: empty list");
            return GOMPS_ERR_INVALID_ARG;
        }
    }
    qsort(list, (size_t)n, sizeof list[0], bucket_cmp);
    int32_t top = 0;
    for (int i = 0; i < n; i++) {
        if (i > 0 && list[i][0] == list[i - 1][0] && list[i][1] == list[i - 1][1]) continue;
        GompsBucket *b = [GompsBucket new];
        b.batch = list[i][0];
        b.seq = list[i][1];
        [out addObject:b];
        if (b.seq > top) top = b.seq;
    }
    if (top < max_seq) {
        snprintf(err, errlen,
                 "metal: buckets: the longest bucket has seq %d, below max_seq %d; add a bucket with seq %d or "
                 "lower max_seq",
                 top, max_seq, max_seq);
        return GOMPS_ERR_INVALID_ARG;
    }
    return GOMPS_OK;
}

/* ---- graph ---- */

typedef struct builder {
    MPSGraph *g;
    GompsModel *m;
    MPSDataType dt;          /* compute dtype */
    NSMutableIndexSet *used; /* weights the current segment reads */
} builder;

static MPSGraphTensor *W(const builder *c, uint32_t index) {
    [c->used addIndex:index];
    return c->m.weightTensors[index];
}

static MPSGraphTensor *cast(const builder *c, MPSGraphTensor *t, MPSDataType to) {
    if (t.dataType == to) return t;
    return [c->g castTensor:t toType:to name:nil];
}

static MPSGraphTensor *scalar(const builder *c, double v, MPSDataType dt) {
    return [c->g constantWithScalar:v dataType:dt];
}

/* y = x W^T, x [N, in], W [out, in] */
static MPSGraphTensor *matmul_wt(const builder *c, MPSGraphTensor *x, uint32_t w) {
    MPSGraphTensor *wt = [c->g transposeTensor:W(c, w) dimension:0 withDimension:1 name:nil];
    return [c->g matrixMultiplicationWithPrimaryTensor:x secondaryTensor:wt name:nil];
}

/* y = x W^T + b, b [out] */
static MPSGraphTensor *linear(const builder *c, MPSGraphTensor *x, uint32_t w, uint32_t b) {
    return [c->g additionWithPrimaryTensor:matmul_wt(c, x, w) secondaryTensor:W(c, b) name:nil];
}

/* LayerNorm over axis 1 of x [N, H], entirely in fp32 (statistics, scale and
 * shift), biased variance, then back to the compute dtype. */
static MPSGraphTensor *layer_norm(const builder *c, MPSGraphTensor *x, uint32_t gamma, uint32_t beta) {
    MPSGraph *g = c->g;
    MPSGraphTensor *xf = cast(c, x, MPSDataTypeFloat32);
    MPSGraphTensor *mean = [g meanOfTensor:xf axes:@[ @1 ] name:nil];
    MPSGraphTensor *d = [g subtractionWithPrimaryTensor:xf secondaryTensor:mean name:nil];
    MPSGraphTensor *var = [g meanOfTensor:[g squareWithTensor:d name:nil] axes:@[ @1 ] name:nil];
    MPSGraphTensor *eps = scalar(c, c->m->file.cfg.layer_norm_eps, MPSDataTypeFloat32);
    MPSGraphTensor *inv = [g reverseSquareRootWithTensor:[g additionWithPrimaryTensor:var secondaryTensor:eps name:nil]
                                                    name:nil];
    MPSGraphTensor *y = [g multiplicationWithPrimaryTensor:d secondaryTensor:inv name:nil];
    y = [g multiplicationWithPrimaryTensor:y secondaryTensor:cast(c, W(c, gamma), MPSDataTypeFloat32) name:nil];
    y = [g additionWithPrimaryTensor:y secondaryTensor:cast(c, W(c, beta), MPSDataTypeFloat32) name:nil];
    return cast(c, y, c->dt);
}

/* exact GELU: x/2 * (1 + erf(x / sqrt 2)) */
static MPSGraphTensor *gelu(const builder *c, MPSGraphTensor *x) {
    MPSGraph *g = c->g;
    MPSGraphTensor *e = [g erfWithTensor:[g multiplicationWithPrimaryTensor:x
                                                            secondaryTensor:scalar(c, 0.70710678118654752, c->dt)
                                                                       name:nil]
                                    name:nil];
    MPSGraphTensor *onePlus = [g additionWithPrimaryTensor:e secondaryTensor:scalar(c, 1.0, c->dt) name:nil];
    MPSGraphTensor *half = [g multiplicationWithPrimaryTensor:x secondaryTensor:scalar(c, 0.5, c->dt) name:nil];
    return [g multiplicationWithPrimaryTensor:half secondaryTensor:onePlus name:nil];
}

/* [B*S, H] slice of heads -> [B, nh, S, hd] */
static MPSGraphTensor *split_heads(const builder *c, MPSGraphTensor *t, int32_t B, int32_t S) {
    const int32_t nh = (int32_t)c->m->file.cfg.num_heads, hd = (int32_t)(c->m->file.cfg.hidden_size / c->m->file.cfg.num_heads);
    MPSGraphTensor *r = [c->g reshapeTensor:t withShape:@[ @(B), @(S), @(nh), @(hd) ] name:nil];
    return [c->g transposeTensor:r permutation:@[ @0, @2, @1, @3 ] name:nil];
}

MPSDataType gomps_graph_value_dtype(GompsModel *m, int v) {
    switch (m->plan->values[v].cls) {
    case GOMPS_BUF_IDS:
    case GOMPS_BUF_TYPES:
    case GOMPS_BUF_LENGTHS: return MPSDataTypeInt32;
    case GOMPS_BUF_MASK:
    case GOMPS_BUF_LOGITS: return MPSDataTypeFloat32;
    default: return m->dtype;
    }
}

MPSShape *gomps_graph_value_shape(GompsModel *m, GompsBucket *b, int v) {
    const gomps_wfile_config *cfg = &m->file.cfg;
    const int32_t B = b.batch, S = b.seq, H = (int32_t)cfg->hidden_size;
    switch (m->plan->values[v].cls) {
    case GOMPS_BUF_IDS:
    case GOMPS_BUF_TYPES:
    case GOMPS_BUF_MASK: return @[ @(B), @(S) ];
    case GOMPS_BUF_LENGTHS: return @[ @(B) ];
    case GOMPS_BUF_LOGITS: return @[ @(B), @(m->info.num_labels) ];
    case GOMPS_BUF_HIDDEN: return @[ @(B * S), @(H) ];
    case GOMPS_BUF_QKV: return @[ @(B * S), @(3 * H) ];
    case GOMPS_BUF_SCORES: return @[ @(B), @(cfg->num_heads), @(S), @(S) ];
    default: return @[ @(B * S), @(cfg->intermediate_size) ];
    }
}

/* Adds the MPSGraph ops of one graph unit; t maps plan value ids (NSNumber)
 * to this segment's tensors. NO if an input the unit reads is missing. */
static BOOL emit_unit(builder *c, const gomps_plan_unit *u, int32_t B, int32_t S,
                      NSMutableDictionary<NSNumber *, MPSGraphTensor *> *t) {
    MPSGraph *g = c->g;
    GompsModel *m = c->m;
    const int32_t H = (int32_t)m->file.cfg.hidden_size, nh = (int32_t)m->file.cfg.num_heads, hd = H / nh;
    const uint32_t l = u->layer;
    MPSGraphTensor *a = u->in[0] >= 0 ? t[@(u->in[0])] : nil;
    MPSGraphTensor *b1 = u->in[1] >= 0 ? t[@(u->in[1])] : nil;
    MPSGraphTensor *b2 = u->in[2] >= 0 ? t[@(u->in[2])] : nil;
    MPSGraphTensor *out0 = nil, *out1 = nil;
    if (a == nil) return NO; /* every unit reads in[0] */
    switch ((gomps_unit_kind)u->kind) {
    case GOMPS_U_EMBED: {
        if (b1 == nil) return NO;
        /* a = ids, b1 = types, both int32 [B, S]; sum in fp32, then the
         * LayerNorm (which casts back) */
        MPSGraphTensor *we = [g gatherWithUpdatesTensor:W(c, GOMPS_WT_WORD) indicesTensor:a axis:0 batchDimensions:0 name:nil];
        MPSGraphTensor *te = [g gatherWithUpdatesTensor:W(c, GOMPS_WT_TOKEN_TYPE) indicesTensor:b1 axis:0 batchDimensions:0 name:nil];
        MPSGraphTensor *pe = [g sliceTensor:W(c, GOMPS_WT_POSITION) dimension:0 start:0 length:S name:nil];
        MPSGraphTensor *e = [g additionWithPrimaryTensor:cast(c, we, MPSDataTypeFloat32) secondaryTensor:cast(c, te, MPSDataTypeFloat32) name:nil];
        e = [g additionWithPrimaryTensor:e secondaryTensor:cast(c, pe, MPSDataTypeFloat32) name:nil];
        e = [g reshapeTensor:e withShape:@[ @(B * S), @(H) ] name:nil];
        out0 = layer_norm(c, e, GOMPS_WT_EMB_LN_GAMMA, GOMPS_WT_EMB_LN_BETA);
        break;
    }
    case GOMPS_U_SCORES: {
        /* out0 = qkv [B*S, 3H]; out1 = (q / sqrt(hd)) k^T [B, nh, S, S] in the
         * compute dtype (the softmax takes it to fp32) */
        MPSGraphTensor *qkv = linear(c, a, gomps_wfile_layer_index(l, GOMPS_WL_QKV_W), gomps_wfile_layer_index(l, GOMPS_WL_QKV_B));
        MPSGraphTensor *q = [g sliceTensor:qkv dimension:1 start:0 length:H name:nil];
        MPSGraphTensor *k = [g sliceTensor:qkv dimension:1 start:H length:H name:nil];
        q = [g multiplicationWithPrimaryTensor:split_heads(c, q, B, S) secondaryTensor:scalar(c, 1.0 / sqrt((double)hd), c->dt)
                                          name:nil];
        MPSGraphTensor *kt = [g transposeTensor:split_heads(c, k, B, S) dimension:2 withDimension:3 name:nil];
        out0 = qkv;
        out1 = [g matrixMultiplicationWithPrimaryTensor:q secondaryTensor:kt name:nil];
        break;
    }
    case GOMPS_U_SOFTMAX: {
        if (b1 == nil) return NO;
        /* b1 = the additive mask f32 [B, S]; mask and softmax in fp32 */
        MPSGraphTensor *mask4 = [g reshapeTensor:b1 withShape:@[ @(B), @1, @1, @(S) ] name:nil];
        MPSGraphTensor *sc = [g additionWithPrimaryTensor:cast(c, a, MPSDataTypeFloat32) secondaryTensor:mask4 name:nil];
        out0 = cast(c, [g softMaxWithTensor:sc axis:3 name:nil], c->dt);
        break;
    }
    case GOMPS_U_ATTN: {
        if (b1 == nil || b2 == nil) return NO;
        /* a = probs, b1 = qkv, b2 = the layer input (residual) */
        MPSGraphTensor *v = [g sliceTensor:b1 dimension:1 start:2 * H length:H name:nil];
        MPSGraphTensor *ctx = [g matrixMultiplicationWithPrimaryTensor:a secondaryTensor:split_heads(c, v, B, S) name:nil];
        ctx = [g transposeTensor:ctx permutation:@[ @0, @2, @1, @3 ] name:nil];
        ctx = [g reshapeTensor:ctx withShape:@[ @(B * S), @(H) ] name:nil];
        MPSGraphTensor *o = linear(c, ctx, gomps_wfile_layer_index(l, GOMPS_WL_ATTN_OUT_W), gomps_wfile_layer_index(l, GOMPS_WL_ATTN_OUT_B));
        out0 = [g additionWithPrimaryTensor:o secondaryTensor:b2 name:nil];
        break;
    }
    case GOMPS_U_LN1:
        out0 = layer_norm(c, a, gomps_wfile_layer_index(l, GOMPS_WL_ATTN_LN_G), gomps_wfile_layer_index(l, GOMPS_WL_ATTN_LN_B));
        break;
    case GOMPS_U_UP:
        out0 = matmul_wt(c, a, gomps_wfile_layer_index(l, GOMPS_WL_FFN_UP_W));
        break;
    case GOMPS_U_GELU:
        out0 = gelu(c, [g additionWithPrimaryTensor:a secondaryTensor:W(c, gomps_wfile_layer_index(l, GOMPS_WL_FFN_UP_B)) name:nil]);
        break;
    case GOMPS_U_DOWN: {
        if (b1 == nil) return NO;
        /* a = act, b1 = x1 (residual) */
        MPSGraphTensor *d = linear(c, a, gomps_wfile_layer_index(l, GOMPS_WL_FFN_DOWN_W), gomps_wfile_layer_index(l, GOMPS_WL_FFN_DOWN_B));
        out0 = [g additionWithPrimaryTensor:d secondaryTensor:b1 name:nil];
        break;
    }
    case GOMPS_U_LN2:
        out0 = layer_norm(c, a, gomps_wfile_layer_index(l, GOMPS_WL_FFN_LN_G), gomps_wfile_layer_index(l, GOMPS_WL_FFN_LN_B));
        break;
    case GOMPS_U_HEAD: {
        /* pooler over [CLS], then the classifier, f32 [B, num_labels] */
        MPSGraphTensor *x3 = [g reshapeTensor:a withShape:@[ @(B), @(S), @(H) ] name:nil];
        MPSGraphTensor *cls = [g reshapeTensor:[g sliceTensor:x3 dimension:1 start:0 length:1 name:nil]
                                     withShape:@[ @(B), @(H) ]
                                          name:nil];
        MPSGraphTensor *pooled = [g tanhWithTensor:linear(c, cls, gomps_wfile_head_index(&m->file, GOMPS_WH_POOLER_W),
                                                          gomps_wfile_head_index(&m->file, GOMPS_WH_POOLER_B))
                                              name:nil];
        MPSGraphTensor *logit = linear(c, pooled, gomps_wfile_head_index(&m->file, GOMPS_WH_CLS_W),
                                       gomps_wfile_head_index(&m->file, GOMPS_WH_CLS_B));
        out0 = cast(c, logit, MPSDataTypeFloat32);
        break;
    }
    }
    if (u->out[0] >= 0 && out0 != nil) t[@(u->out[0])] = out0;
    if (u->out[1] >= 0 && out1 != nil) t[@(u->out[1])] = out1;
    return YES;
}

gomps_status gomps_graph_build_bucket(GompsModel *m, GompsBucket *b, MPSGraphDevice *dev,
                                      MPSGraphCompilationDescriptor *cd, char *err, size_t errlen) {
    const gomps_plan *p = m->plan;
    MPSGraph *g = m.graph;
    NSMutableArray<GompsStep *> *steps = [NSMutableArray arrayWithCapacity:(NSUInteger)p->n_steps];
    for (int i = 0; i < p->n_steps; i++) {
        const gomps_plan_step *ps = &p->steps[i];
        GompsStep *st = [GompsStep new];
        st.index = i;
        [steps addObject:st];
        if (ps->kernel) continue;

        builder c = {g, m, m->dtype, [NSMutableIndexSet indexSet]};
        NSMutableDictionary<NSNumber *, MPSGraphTensor *> *t = [NSMutableDictionary dictionary];
        NSMutableDictionary<MPSGraphTensor *, MPSGraphShapedType *> *feeds = [NSMutableDictionary dictionary];
        NSMutableArray<MPSGraphTensor *> *inputs = [NSMutableArray array];
        for (int k = 0; k < ps->n_in; k++) {
            const int v = ps->in[k];
            MPSShape *shape = gomps_graph_value_shape(m, b, v);
            const MPSDataType dt = gomps_graph_value_dtype(m, v);
            NSString *name = [NSString stringWithFormat:@"b%dxs%d.step%d.v%d", b.batch, b.seq, i, v];
            MPSGraphTensor *ph = [g placeholderWithShape:shape dataType:dt name:name];
            t[@(v)] = ph;
            feeds[ph] = [[MPSGraphShapedType alloc] initWithShape:shape dataType:dt];
            [inputs addObject:ph];
        }
        for (int u = ps->first; u < ps->first + ps->n; u++) {
            if (!emit_unit(&c, &p->units[u], b.batch, b.seq, t)) {
                snprintf(err, errlen, "metal: bucket %dx%d: step %d: unit %d reads a value the segment lacks", b.batch,
                         b.seq, i, u);
                return GOMPS_ERR_INTERNAL;
            }
        }
        NSMutableArray<MPSGraphTensor *> *targets = [NSMutableArray arrayWithCapacity:(NSUInteger)ps->n_out];
        NSMutableArray<NSNumber *> *resultValues = [NSMutableArray arrayWithCapacity:(NSUInteger)ps->n_out];
        for (int k = 0; k < ps->n_out; k++) {
            MPSGraphTensor *out = t[@(ps->out[k])];
            if (out == nil) {
                snprintf(err, errlen, "metal: bucket %dx%d: step %d: value %d was not built", b.batch, b.seq, i, ps->out[k]);
                return GOMPS_ERR_INTERNAL;
            }
            [targets addObject:out];
            [resultValues addObject:@(ps->out[k])];
        }
        __block NSUInteger w = 0;
        NSMutableIndexSet *used = c.used;
        [used enumerateIndexesUsingBlock:^(NSUInteger idx, BOOL *stop) {
          (void)stop;
          feeds[m.weightTensors[idx]] = [[MPSGraphShapedType alloc] initWithShape:m.weightData[idx].shape dataType:m->dtype];
          w++;
        }];
        st.exe = [g compileWithDevice:dev feeds:feeds targetTensors:targets targetOperations:nil compilationDescriptor:cd];
        if (st.exe == nil) {
            snprintf(err, errlen, "metal: bucket %dx%d: step %d: MPSGraph compile returned nothing", b.batch, b.seq, i);
            return GOMPS_ERR_DEVICE;
        }
        /* the inputs array follows the executable's feed order */
        NSArray<MPSGraphTensor *> *order = st.exe.feedTensors;
        NSMutableArray *tmpl = [NSMutableArray arrayWithCapacity:order.count];
        NSMutableArray<NSNumber *> *io = [NSMutableArray arrayWithCapacity:order.count];
        NSUInteger seen = 0;
        for (NSUInteger k = 0; k < order.count; k++) {
            MPSGraphTensor *ft = order[k];
            const NSUInteger in = [inputs indexOfObjectIdenticalTo:ft];
            if (in != NSNotFound) {
                [tmpl addObject:[NSNull null]];
                [io addObject:@(ps->in[in])];
                seen++;
                continue;
            }
            const NSUInteger wi = [m.weightTensors indexOfObjectIdenticalTo:ft];
            if (wi == NSNotFound) {
                snprintf(err, errlen, "metal: bucket %dx%d: step %d: feed %lu is neither an input nor a weight", b.batch,
                         b.seq, i, (unsigned long)k);
                return GOMPS_ERR_INTERNAL;
            }
            [tmpl addObject:m.weightData[wi]];
            [io addObject:@(-1)];
        }
        if (seen != inputs.count) {
            snprintf(err, errlen, "metal: bucket %dx%d: step %d: %lu of the %lu buffer inputs are among the executable's "
                     "%lu feeds (%lu weights fed)", b.batch, b.seq, i, (unsigned long)seen, (unsigned long)inputs.count,
                     (unsigned long)order.count, (unsigned long)w);
            return GOMPS_ERR_INTERNAL;
        }
        st.inputTemplate = tmpl;
        st.ioValue = io;
        st.resultValues = resultValues;
    }
    b.steps = steps;
    return GOMPS_OK;
}
