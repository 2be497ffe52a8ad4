//go:build darwin && cgo

/*
 * graph.m: the MPSGraph of the forward pass and the bucket set.
 *
 * One MPSGraph per model holds the weight placeholders (one per tensor of the
 * native file, fed from MTLBuffers shared by every bucket and context) and,
 * for each (batch, seq) bucket, that bucket's static-shape subgraph from its
 * inputs to its [B, 1] logits. Each bucket compiles to its own executable,
 * which only contains the ops its logits need.
 *
 * Weights are in Hugging Face orientation [out, in]; linear() transposes them
 * in the graph (whether that transpose is free is one of the things to
 * measure on a Mac, metal/README.md).
 */
#import "internal.h"

#include <stdlib.h>
#include <string.h>

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
        b.idsSlot = b.typesSlot = b.hiddenSlot = b.maskSlot = -1;
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
    MPSDataType dt; /* compute dtype */
} builder;

static MPSGraphTensor *W(const builder *c, uint32_t index) { return c->m.weightTensors[index]; }

static MPSGraphTensor *cast(const builder *c, MPSGraphTensor *t, MPSDataType to) {
    if (t.dataType == to) return t;
    return [c->g castTensor:t toType:to name:nil];
}

static MPSGraphTensor *scalar(const builder *c, double v, MPSDataType dt) {
    return [c->g constantWithScalar:v dataType:dt];
}

/* y = x W^T + b, x [N, in], W [out, in], b [out] */
static MPSGraphTensor *linear(const builder *c, MPSGraphTensor *x, uint32_t w, uint32_t b) {
    MPSGraphTensor *wt = [c->g transposeTensor:W(c, w) dimension:0 withDimension:1 name:nil];
    MPSGraphTensor *y = [c->g matrixMultiplicationWithPrimaryTensor:x secondaryTensor:wt name:nil];
    return [c->g additionWithPrimaryTensor:y secondaryTensor:W(c, b) name:nil];
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

static MPSGraphTensor *attention(const builder *c, MPSGraphTensor *x, MPSGraphTensor *mask4, uint32_t l, int32_t B,
                                 int32_t S) {
    MPSGraph *g = c->g;
    const int32_t H = (int32_t)c->m->file.cfg.hidden_size, nh = (int32_t)c->m->file.cfg.num_heads, hd = H / nh;
    MPSGraphTensor *qkv = linear(c, x, gomps_wfile_layer_index(l, GOMPS_WL_QKV_W), gomps_wfile_layer_index(l, GOMPS_WL_QKV_B));
    MPSGraphTensor *q = [g sliceTensor:qkv dimension:1 start:0 length:H name:nil];
    MPSGraphTensor *k = [g sliceTensor:qkv dimension:1 start:H length:H name:nil];
    MPSGraphTensor *v = [g sliceTensor:qkv dimension:1 start:2 * H length:H name:nil];
    q = [g multiplicationWithPrimaryTensor:split_heads(c, q, B, S) secondaryTensor:scalar(c, 1.0 / sqrt((double)hd), c->dt)
                                      name:nil];
    MPSGraphTensor *kt = [g transposeTensor:split_heads(c, k, B, S) dimension:2 withDimension:3 name:nil];
    /* scores, mask and softmax in fp32 whatever the compute dtype */
    MPSGraphTensor *scores = cast(c, [g matrixMultiplicationWithPrimaryTensor:q secondaryTensor:kt name:nil], MPSDataTypeFloat32);
    scores = [g additionWithPrimaryTensor:scores secondaryTensor:mask4 name:nil];
    MPSGraphTensor *probs = cast(c, [g softMaxWithTensor:scores axis:3 name:nil], c->dt);
    MPSGraphTensor *ctx = [g matrixMultiplicationWithPrimaryTensor:probs secondaryTensor:split_heads(c, v, B, S) name:nil];
    ctx = [g transposeTensor:ctx permutation:@[ @0, @2, @1, @3 ] name:nil];
    ctx = [g reshapeTensor:ctx withShape:@[ @(B * S), @(H) ] name:nil];
    return linear(c, ctx, gomps_wfile_layer_index(l, GOMPS_WL_ATTN_OUT_W), gomps_wfile_layer_index(l, GOMPS_WL_ATTN_OUT_B));
}

void gomps_graph_add_bucket(GompsModel *m, GompsBucket *b) {
    builder c = {m.graph, m, m->dtype};
    MPSGraph *g = m.graph;
    const int32_t B = b.batch, S = b.seq, H = (int32_t)m->file.cfg.hidden_size;
    NSString *tag = [NSString stringWithFormat:@"b%dxs%d", B, S];
    MPSGraphTensor *x;
    if (m->kernels & GOMPS_METAL_KERNEL_EMBED) {
        /* the embed kernel wrote LayerNorm(word + position + type) */
        b.hidden = [g placeholderWithShape:@[ @(B * S), @(H) ] dataType:m->dtype name:[tag stringByAppendingString:@".hidden"]];
        x = b.hidden;
    } else {
        b.ids = [g placeholderWithShape:@[ @(B), @(S) ] dataType:MPSDataTypeInt32 name:[tag stringByAppendingString:@".ids"]];
        b.types = [g placeholderWithShape:@[ @(B), @(S) ] dataType:MPSDataTypeInt32 name:[tag stringByAppendingString:@".types"]];
        MPSGraphTensor *we = [g gatherWithUpdatesTensor:W(&c, GOMPS_WT_WORD) indicesTensor:b.ids axis:0 batchDimensions:0 name:nil];
        MPSGraphTensor *te = [g gatherWithUpdatesTensor:W(&c, GOMPS_WT_TOKEN_TYPE) indicesTensor:b.types axis:0 batchDimensions:0 name:nil];
        MPSGraphTensor *pe = [g sliceTensor:W(&c, GOMPS_WT_POSITION) dimension:0 start:0 length:S name:nil];
        /* sum in fp32, then LayerNorm (which casts back) */
        MPSGraphTensor *e = [g additionWithPrimaryTensor:cast(&c, we, MPSDataTypeFloat32) secondaryTensor:cast(&c, te, MPSDataTypeFloat32) name:nil];
        e = [g additionWithPrimaryTensor:e secondaryTensor:cast(&c, pe, MPSDataTypeFloat32) name:nil];
        e = [g reshapeTensor:e withShape:@[ @(B * S), @(H) ] name:nil];
        x = layer_norm(&c, e, GOMPS_WT_EMB_LN_GAMMA, GOMPS_WT_EMB_LN_BETA);
    }
    b.mask = [g placeholderWithShape:@[ @(B), @(S) ] dataType:MPSDataTypeFloat32 name:[tag stringByAppendingString:@".mask"]];
    MPSGraphTensor *mask4 = [g reshapeTensor:b.mask withShape:@[ @(B), @1, @1, @(S) ] name:nil];

    for (uint32_t l = 0; l < m->file.cfg.num_layers; l++) {
        MPSGraphTensor *a = attention(&c, x, mask4, l, B, S);
        x = layer_norm(&c, [g additionWithPrimaryTensor:a secondaryTensor:x name:nil],
                       gomps_wfile_layer_index(l, GOMPS_WL_ATTN_LN_G), gomps_wfile_layer_index(l, GOMPS_WL_ATTN_LN_B));
        MPSGraphTensor *up = gelu(&c, linear(&c, x, gomps_wfile_layer_index(l, GOMPS_WL_FFN_UP_W),
                                             gomps_wfile_layer_index(l, GOMPS_WL_FFN_UP_B)));
        MPSGraphTensor *down = linear(&c, up, gomps_wfile_layer_index(l, GOMPS_WL_FFN_DOWN_W),
                                      gomps_wfile_layer_index(l, GOMPS_WL_FFN_DOWN_B));
        x = layer_norm(&c, [g additionWithPrimaryTensor:down secondaryTensor:x name:nil],
                       gomps_wfile_layer_index(l, GOMPS_WL_FFN_LN_G), gomps_wfile_layer_index(l, GOMPS_WL_FFN_LN_B));
    }
    /* pooler over [CLS], then the classifier */
    MPSGraphTensor *x3 = [g reshapeTensor:x withShape:@[ @(B), @(S), @(H) ] name:nil];
    MPSGraphTensor *cls = [g reshapeTensor:[g sliceTensor:x3 dimension:1 start:0 length:1 name:nil]
                                 withShape:@[ @(B), @(H) ]
                                      name:nil];
    MPSGraphTensor *pooled = [g tanhWithTensor:linear(&c, cls, gomps_wfile_head_index(&m->file, GOMPS_WH_POOLER_W),
                                                      gomps_wfile_head_index(&m->file, GOMPS_WH_POOLER_B))
                                          name:nil];
    MPSGraphTensor *logit = linear(&c, pooled, gomps_wfile_head_index(&m->file, GOMPS_WH_CLS_W),
                                   gomps_wfile_head_index(&m->file, GOMPS_WH_CLS_B));
    b.logits = cast(&c, logit, MPSDataTypeFloat32);
}
