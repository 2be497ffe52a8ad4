/*
 * gomps.h: the one native ABI of gomps.
 *
 * Every backend (the CPU backend in kernels/cpu, the Metal backend in metal/)
 * implements exactly this header, and the Go binding in gomps/ includes
 * nothing else. It is plain C99 with sized integers.
 *
 * Objects
 *   gomps_model_t    weights loaded from a native weights file (weights/FORMAT.md)
 *                    plus the options fixed at load: precision, max batch, max
 *                    sequence, shape buckets. Immutable after init: every
 *                    function taking a const model may be called from any
 *                    number of threads at once. Shared by every context made
 *                    from it; it must outlive them.
 *   gomps_context_t  per-instance scratch memory (and on Metal a command queue
 *                    and I/O buffers). Used by ONE thread at a time; different
 *                    contexts of one model may run concurrently.
 *
 * Errors
 *   Every fallible function returns a gomps_status (0 = ok, negative = a class
 *   of failure). Nothing aborts, exits or throws across this boundary.
 *   Detail text:
 *   - gomps_last_init_error(): the text of the last failed gomps_model_init or
 *     gomps_context_init ON THE CALLING THREAD (thread-local, so concurrent
 *     inits on different threads do not clobber each other). A caller whose
 *     runtime migrates between threads (Go) must pin the thread across the init
 *     call and this read.
 *   - gomps_context_last_error(ctx): the text of the last failed call on ctx;
 *     owned by ctx, valid until the next call on ctx or its free.
 *
 * Memory
 *   Whoever allocates, frees: each _init has a matching _free. Buffers passed
 *   to gomps_context_forward are lent for the duration of that call only; the
 *   library keeps no pointer to them afterwards.
 */
#ifndef GOMPS_H
#define GOMPS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Bumped on any change to a signature, struct or meaning in this header. */
#define GOMPS_ABI_VERSION 1

typedef enum gomps_status {
    GOMPS_OK                = 0,
    GOMPS_ERR_INVALID_ARG   = -1, /* a NULL handle, a size out of range, ...      */
    GOMPS_ERR_OOM           = -2, /* an allocation failed                          */
    GOMPS_ERR_IO            = -3, /* the weights file could not be opened or read  */
    GOMPS_ERR_FORMAT        = -4, /* the weights file is corrupt or not ours       */
    GOMPS_ERR_UNSUPPORTED   = -5, /* precision, shape or ISA this backend lacks    */
    GOMPS_ERR_DEVICE        = -6, /* the device or its runtime failed              */
    GOMPS_ERR_INTERNAL      = -7  /* a bug: an invariant of ours did not hold      */
} gomps_status;

typedef enum gomps_precision {
    GOMPS_PRECISION_F32  = 0, /* exact default everywhere                          */
    GOMPS_PRECISION_BF16 = 1, /* CPU: bf16 matmuls (AMX), fp32 softmax/LayerNorm   */
    GOMPS_PRECISION_F16  = 2  /* Metal: fp16 compute, fp32 softmax/LN statistics   */
} gomps_precision;

typedef struct gomps_model   gomps_model_t;
typedef struct gomps_context gomps_context_t;

/* Options fixed at model load. Zero-initialise, then set what you need:
 * a zero field means "the backend's default". */
typedef struct gomps_model_options {
    uint32_t    struct_size; /* sizeof(gomps_model_options), for forward compatibility */
    int32_t     precision;   /* a gomps_precision                                        */
    int32_t     max_batch;   /* rows per forward; 0 = 64                                 */
    int32_t     max_seq;     /* tokens per row incl. specials; 0 = the model's max positions */
    const char *buckets;     /* backend-specific shape buckets "BxS,BxS,..."; NULL = default.
                                Backends without buckets reject a non-NULL value.          */
} gomps_model_options;

/* What a loaded model is; filled by gomps_model_info. */
typedef struct gomps_model_info {
    uint32_t struct_size;       /* sizeof(gomps_model_info)                  */
    int32_t  vocab_size;
    int32_t  hidden_size;
    int32_t  num_layers;
    int32_t  num_heads;
    int32_t  intermediate_size;
    int32_t  max_position;
    int32_t  type_vocab_size;
    int32_t  precision;         /* a gomps_precision in force               */
    int32_t  max_batch;         /* as resolved from the options             */
    int32_t  max_seq;           /* as resolved from the options             */
    char     backend[16];       /* "cpu", "metal"; NUL-terminated           */
    char     isa[48];           /* "avx512_core_amx", "apple-m2", ...        */
} gomps_model_info;

/* ABI version the library was built with; Go refuses to run unless it equals
 * the GOMPS_ABI_VERSION it was compiled against. */
uint32_t gomps_abi_version(void);

/* Load a native weights file. On success *out is a new model; on failure
 * *out is NULL and gomps_last_init_error() says why (naming file, tensor and
 * rule broken for a bad file). */
gomps_status gomps_model_init(const char *path, const gomps_model_options *opts,
                              gomps_model_t **out);

/* Frees a model. NULL is a no-op. Every context of it must be freed first. */
void gomps_model_free(gomps_model_t *model);

gomps_status gomps_model_info_get(const gomps_model_t *model, gomps_model_info *out);

/* Thread-local text of the last failed init on this thread ("" if none). */
const char *gomps_last_init_error(void);

/* Make a context of model using n_threads threads for its forward passes
 * (n_threads <= 0: the backend's choice). */
gomps_status gomps_context_init(gomps_model_t *model, int32_t n_threads,
                                gomps_context_t **out);

/* Frees a context. NULL is a no-op. */
void gomps_context_free(gomps_context_t *ctx);

/* Changes the thread count used by later forward calls on ctx. */
gomps_status gomps_context_set_threads(gomps_context_t *ctx, int32_t n_threads);

/* One forward pass over a padded batch.
 *   batch     rows, 1 <= batch <= max_batch
 *   seq       padded row length, 1 <= seq <= max_seq
 *   ids       [batch * seq] token ids, row-major; positions >= lengths[r] are padding
 *   type_ids  [batch * seq] token type ids (0 or 1)
 *   lengths   [batch] real tokens per row, 1 <= lengths[r] <= seq
 *   logits    [batch] out: the classifier's raw logit per row
 * Padding content is ignored: the result for a row depends only on its first
 * lengths[r] ids and types. A backend with shape buckets pads internally. */
gomps_status gomps_context_forward(gomps_context_t *ctx, int32_t batch, int32_t seq,
                                   const int32_t *ids, const int32_t *type_ids,
                                   const int32_t *lengths, float *logits);

/* Text of the last failed call on ctx ("" if none). */
const char *gomps_context_last_error(const gomps_context_t *ctx);

#ifdef __cplusplus
}
#endif

#endif /* GOMPS_H */
