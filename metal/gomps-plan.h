/*
 * gomps-plan.h: the forward pass as a sequence of units, split into MPSGraph
 * segments around the custom Metal kernels selected in the model, and the
 * buffers every intermediate lives in between steps (gomps-plan.c). Plain C:
 * graph.m turns a plan into MPSGraph executables and backend.m encodes it;
 * tools/metalshim/layer.cpp executes the same plan on Linux (float64 for the
 * graph units, the .metal kernels through the shim) against an independent
 * float64 model, so the data flow is checked without a Mac.
 *
 * Not part of the native ABI.
 */
#ifndef GOMPS_PLAN_H
#define GOMPS_PLAN_H

#include <stddef.h>
#include <stdint.h>

#include "gomps-args.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Kernel selection bits (the same values as gomps-metal.h's
 * GOMPS_METAL_KERNEL_*; gomps-plan.c does not include that header). */
#define GOMPS_PLAN_EMBED 1u
#define GOMPS_PLAN_LAYER_NORM 2u
#define GOMPS_PLAN_SOFTMAX 4u
#define GOMPS_PLAN_BIAS_GELU 8u

#define GOMPS_PLAN_MAX_LAYERS 48
#define GOMPS_PLAN_MAX_UNITS (2 + 8 * GOMPS_PLAN_MAX_LAYERS)
#define GOMPS_PLAN_MAX_VALUES (GOMPS_PLAN_IO_VALUES + 1 + 9 * GOMPS_PLAN_MAX_LAYERS + 1)
#define GOMPS_PLAN_SEG_IO 8 /* most inputs (or outputs) of one step */

/* One unit of the forward pass. Each runs as MPSGraph ops inside a segment or,
 * when its kernel is selected, as our Metal kernel between segments. Shapes:
 * N = batch * seq tokens, H hidden, I intermediate, nh heads. */
typedef enum gomps_unit_kind {
    GOMPS_U_EMBED,   /* ids, types -> x [N,H]: gather word+position+type, LayerNorm (kernel: embed) */
    GOMPS_U_SCORES,  /* x -> qkv [N,3H], scores [B,nh,S,S] = (q/sqrt(hd)) k^T; graph only */
    GOMPS_U_SOFTMAX, /* scores, mask (graph) | lengths (kernel) -> probs [B,nh,S,S] (kernel: masked_softmax, scale 1) */
    GOMPS_U_ATTN,    /* probs, qkv, x -> sum1 [N,H] = (probs v) Wo^T + bo + x; graph only */
    GOMPS_U_LN1,     /* sum1 -> x1 [N,H] (kernel: layer_norm with the attention LN weights) */
    GOMPS_U_UP,      /* x1 -> up [N,I] = x1 Wu^T, no bias; graph only */
    GOMPS_U_GELU,    /* up -> act [N,I] = gelu(up + bu) (kernel: bias_gelu) */
    GOMPS_U_DOWN,    /* act, x1 -> sum2 [N,H] = act Wd^T + bd + x1; graph only */
    GOMPS_U_LN2,     /* sum2 -> x [N,H], the next layer's input (kernel: layer_norm, FFN LN weights) */
    GOMPS_U_HEAD     /* x -> logits [B,1]: CLS row, tanh pooler, classifier; graph only */
} gomps_unit_kind;

/* Where a value lives between steps. The I/O classes are the session's fixed
 * buffers (one each); the others are pools of interchangeable buffers sized
 * for the largest bucket, in the compute dtype. */
typedef enum gomps_buf_class {
    GOMPS_BUF_IDS,     /* int32 [B,S]                 */
    GOMPS_BUF_TYPES,   /* int32 [B,S]                 */
    GOMPS_BUF_MASK,    /* f32 [B,S] additive, 0 | -1e4 */
    GOMPS_BUF_LENGTHS, /* int32 [B] real tokens per row */
    GOMPS_BUF_LOGITS,  /* f32 [B,1]                   */
    GOMPS_BUF_HIDDEN,  /* dtype [N,H]                 */
    GOMPS_BUF_QKV,     /* dtype [N,3H]                */
    GOMPS_BUF_SCORES,  /* dtype [B,nh,S,S]            */
    GOMPS_BUF_FFN,     /* dtype [N,I]                 */
    GOMPS_BUF_NCLASS
} gomps_buf_class;

#define GOMPS_BUF_FIRST_POOL GOMPS_BUF_HIDDEN

/* The I/O values have fixed ids. */
enum { GOMPS_V_IDS, GOMPS_V_TYPES, GOMPS_V_MASK, GOMPS_V_LENGTHS, GOMPS_PLAN_IO_VALUES };

typedef struct gomps_plan_unit {
    uint8_t  kind;    /* gomps_unit_kind                                  */
    uint8_t  kernel;  /* 1: runs as our Metal kernel, 0: inside a segment */
    uint16_t layer;   /* the encoder layer (0 for EMBED and HEAD)         */
    int16_t  in[3];   /* value ids read, -1 = none                        */
    int16_t  out[2];  /* value ids written, -1 = none                     */
    int16_t  step;    /* the step it belongs to                           */
} gomps_plan_unit;

typedef struct gomps_plan_value {
    uint8_t cls;      /* gomps_buf_class                                   */
    int8_t  buf;      /* pool index (0 for I/O); -1 = only inside its segment */
    int16_t producer; /* unit index; -1 for the I/O inputs                 */
    int16_t last_use; /* last unit that reads it; GOMPS_PLAN_MAX_UNITS for logits */
} gomps_plan_value;

/* A step is one MPSGraph segment (units first..first+n-1, all kernel == 0) or
 * one kernel unit (n == 1). inputs: values it reads from buffers; outputs:
 * values it writes to buffers (for a segment, its executable's targets). */
typedef struct gomps_plan_step {
    uint8_t kernel;
    int16_t first, n;
    int16_t n_in, n_out;
    int16_t in[GOMPS_PLAN_SEG_IO];
    int16_t out[GOMPS_PLAN_SEG_IO];
} gomps_plan_step;

typedef struct gomps_plan {
    uint32_t kernels; /* GOMPS_PLAN_* bits it was built for */
    int32_t  n_layers;
    int32_t  n_units, n_values, n_steps;
    int32_t  n_segments;               /* graph steps                     */
    int32_t  pool[GOMPS_BUF_NCLASS];   /* buffers needed per class        */
    int16_t  logits;                   /* value id of the logits          */
    gomps_plan_unit  units[GOMPS_PLAN_MAX_UNITS];
    gomps_plan_value values[GOMPS_PLAN_MAX_VALUES];
    gomps_plan_step  steps[GOMPS_PLAN_MAX_UNITS];
} gomps_plan;

/* Builds the plan of a model with n_layers layers and the kernel bits
 * (GOMPS_PLAN_*), then checks it with gomps_plan_validate. Returns 0, or -1
 * with err set. The plan does not depend on the bucket shape. */
int gomps_plan_build(gomps_plan *p, int32_t n_layers, uint32_t kernels, char *err, size_t errlen);

/* Checks a plan's data flow: every value is written before it is read; no
 * buffer is written while it still holds a value read later; no step writes a
 * buffer it also reads, except a kernel in place on an input that dies there
 * (every gomps kernel allows out == x); counts are in range. Returns 0, or -1
 * with err set. */
int gomps_plan_validate(const gomps_plan *p, char *err, size_t errlen);

/* Elements of one buffer of class cls for a (batch, seq) bucket. */
uint64_t gomps_plan_class_elems(int cls, int64_t batch, int64_t seq, int64_t hidden, int64_t heads,
                                int64_t intermediate);

/* "embed", "layer_norm", ... for a unit's kernel; NULL for graph-only units. */
const char *gomps_plan_kernel_op(int kind);

/* The sizes a kernel dispatch depends on: the bucket and the model config. */
typedef struct gomps_plan_dims {
    uint32_t batch, seq;
    uint32_t hidden, heads, intermediate;
    uint32_t vocab, type_vocab, max_position;
    float    eps;
} gomps_plan_dims;

/* What buffer index i of a kernel binds: a plan value's buffer (value >= 0)
 * or a weight tensor of the native file (weight >= 0, a GOMPS_WT_* /
 * gomps_wfile_layer_index index). Offsets are always 0. */
typedef struct gomps_plan_binding {
    int16_t value;
    int32_t weight;
} gomps_plan_binding;

#define GOMPS_PLAN_MAX_BIND 9

/* One kernel step exactly as the host encodes it (metal/backend.m) and the
 * Linux check runs it (tools/metalshim/layer.cpp): the pipeline's op, buffer
 * 0 = args (args_size bytes, setBytes), buffers 1..n_bind-1 = bind[i], then
 * groups threadgroups of threads threads. */
typedef struct gomps_plan_dispatch {
    const char *op;
    int         kind; /* gomps_unit_kind */
    uint32_t    groups, threads;
    union {
        gomps_args_embed          embed;
        gomps_args_layer_norm     layer_norm;
        gomps_args_masked_softmax masked_softmax;
        gomps_args_bias_gelu      bias_gelu;
    } args;
    uint32_t           args_size;
    int                n_bind;
    gomps_plan_binding bind[GOMPS_PLAN_MAX_BIND];
} gomps_plan_dispatch;

/* Fills out for kernel step `step` of p at dims d. Returns 0, or -1 with err
 * set (not a kernel step, or a size that overflows the kernels' 32-bit
 * indices). */
int gomps_plan_dispatch_of(const gomps_plan *p, int step, const gomps_plan_dims *d, gomps_plan_dispatch *out,
                           char *err, size_t errlen);

#ifdef __cplusplus
}
#endif

#endif /* GOMPS_PLAN_H */
