/*
 * gomps.h: the one native ABI of gomps, version 2.
 *
 * A backend is a value: a table of functions (gomps_backend) with its own
 * name and version, reached through the one accessor the backend exports
 * (gomps_backend_cpu, gomps_backend_metal, ...). Every other function of a
 * backend is private to it, so any number of backends link into one program
 * and the caller picks one at run time, after asking it what it can do
 * (capabilities). The Go binding (package kernels/native) is the only Go
 * code that calls these functions; it includes nothing else. Plain C99 with
 * sized integers.
 *
 * Objects (opaque; each backend defines its own, and a handle goes back only
 * to the table that made it)
 *   gomps_model_t    weights loaded from a native weights file (weights/FORMAT.md)
 *                    plus the options fixed at load: precision, max batch, max
 *                    sequence, shape buckets. The backend validates the file
 *                    (every rule of FORMAT.md, every checksum, the tokenizer's
 *                    SHA-256) once, at model_init; nothing else needs to read
 *                    it again. Immutable after init: every function taking a
 *                    const model may be called from any number of threads at
 *                    once. Shared by every context made from it; it must
 *                    outlive them.
 *   gomps_context_t  per-instance scratch memory (and on Metal a command queue
 *                    and I/O buffers). Used by ONE thread at a time; different
 *                    contexts of one model may run concurrently.
 *
 * Errors
 *   Every fallible function returns a gomps_status (0 = ok, negative = a class
 *   of failure). Nothing aborts, exits or throws across this boundary.
 *   Detail text:
 *   - last_init_error(): the text of the last failed model_init or
 *     context_init of that backend ON THE CALLING THREAD (thread-local, so
 *     concurrent inits on different threads do not clobber each other). A
 *     caller whose runtime migrates between threads (Go) must pin the thread
 *     across the init call and this read.
 *   - context_last_error(ctx): the text of the last failed call on ctx; owned
 *     by ctx, valid until the next call on ctx or its free.
 *
 * Memory
 *   Whoever allocates, frees: each _init has a matching _free. Buffers passed
 *   to context_forward are lent for the duration of that call only; the
 *   backend keeps no pointer to them afterwards. Strings and tables a backend
 *   returns (its name, version, the table itself) live as long as the program;
 *   a model's tokenizer bytes live as long as the model.
 *
 * Growing version 2 without a new version
 *   GOMPS_ABI_VERSION changes only when a signature, a field's meaning or
 *   position, or a rule below changes. These additions keep version 2:
 *   - a new gomps_precision value (the next free number; a precision set is a
 *     32-bit mask, so up to 32 precisions). A backend refuses a precision it
 *     does not know with GOMPS_ERR_UNSUPPORTED, as it refuses one it knows
 *     but cannot run here.
 *   - a new field at the END of a struct that carries struct_size. The caller
 *     zero-initialises the struct and sets struct_size = sizeof as it was
 *     compiled. A backend reads (options) or writes (info, capabilities) only
 *     the bytes both sides know, min(struct_size, its own sizeof): an older
 *     backend leaves a newer caller's extra fields zero, and a zero field
 *     means "not given" / "not known". struct_size below the version-2 size
 *     is GOMPS_ERR_INVALID_ARG.
 *   - a new function pointer at the END of gomps_backend: the caller checks
 *     that the table's struct_size covers it (GOMPS_BACKEND_HAS) before it
 *     calls it.
 *   - a new model family: gomps_model_info.arch is a name, not an enum.
 */
#ifndef GOMPS_H
#define GOMPS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Bumped on any change to a signature, struct or meaning in this header other
 * than the additions listed above. */
#define GOMPS_ABI_VERSION 2

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

/* Compute precisions. New ones take the next value (int8 is planned as 3). */
typedef enum gomps_precision {
    GOMPS_PRECISION_F32  = 0, /* exact default everywhere                          */
    GOMPS_PRECISION_BF16 = 1, /* CPU: bf16 matmuls (AMX, AVX512-BF16), fp32 softmax/LayerNorm */
    GOMPS_PRECISION_F16  = 2  /* Metal: fp16 compute, fp32 softmax/LN statistics   */
} gomps_precision;

/* A set of precisions: bit GOMPS_PRECISION_BIT(p) set for each member p. */
typedef uint32_t gomps_precision_set;
#define GOMPS_PRECISION_BIT(p) (1u << (uint32_t)(p))

typedef struct gomps_model   gomps_model_t;
typedef struct gomps_context gomps_context_t;

/* Options fixed at model load. Zero-initialise, set struct_size, then set
 * what you need: a zero field means "the backend's default". */
typedef struct gomps_model_options {
    uint32_t    struct_size; /* sizeof(gomps_model_options) as the caller was compiled    */
    int32_t     precision;   /* a gomps_precision                                         */
    int32_t     max_batch;   /* rows per forward; 0 = 64                                  */
    int32_t     max_seq;     /* tokens per row incl. specials; 0 = the model's max positions.
                                More than the model's max positions is GOMPS_ERR_INVALID_ARG
                                ("max_seq N is more than the model's P positions").          */
    const char *buckets;     /* backend-specific shape buckets "BxS,BxS,..."; NULL = default.
                                Backends without buckets reject a non-NULL value.           */
} gomps_model_options;

/* What a backend can do on this machine; filled by capabilities. Asked before
 * any model exists; the caller configures its engine from the answers. */
typedef struct gomps_capabilities {
    uint32_t struct_size;     /* sizeof(gomps_capabilities) as the caller was compiled     */
    int32_t  usable;          /* 1: models can load here; 0: unusable[] says why not       */
    gomps_precision_set precisions; /* the precisions that run natively here; any other is
                                       refused at model_init, saying why                    */
    int32_t  padded;          /* 1: a forward computes every row at the padded length (static
                                 shapes), so padding costs as much as real tokens; 0: only
                                 real tokens are computed and padding is free              */
    int32_t  max_batch;       /* the largest max_batch model_init accepts                  */
    int32_t  max_seq;         /* the largest max_seq model_init accepts; 0 = no limit of the
                                 backend's own (the model's max positions bound it)        */
    int32_t  instances;       /* preferred number of contexts for the thread budget asked  */
    int32_t  threads;         /* preferred threads per context for that budget             */
    int64_t  memory_in_use;   /* bytes this backend holds now for its live models and
                                 contexts (CPU: heap; Metal: the device's allocated size);
                                 -1 if unknown                                              */
    char     isa[48];         /* the instruction set or device it runs on: "avx512_core_amx",
                                 "apple-m2", ...; "" if known only once a model loads      */
    char     unusable[256];   /* "" when usable; else why no model can load here          */
} gomps_capabilities;

/* What a loaded model is; filled by model_info. */
typedef struct gomps_model_info {
    uint32_t    struct_size;        /* sizeof(gomps_model_info) as the caller was compiled */
    char        backend[16];        /* the backend's name; NUL-terminated                  */
    char        isa[48];            /* "avx512_core_amx", "apple-m2", ...                   */
    char        arch[32];           /* the model family from the file: "bert"               */
    char        name[96];           /* the model name recorded in the file ("" if none)     */
    uint8_t     source_sha256[32];  /* SHA-256 of the source model.safetensors (zeros if unknown) */
    int32_t     num_labels;         /* logits per row that context_forward writes          */
    int32_t     vocab_size;
    int32_t     hidden_size;
    int32_t     num_layers;
    int32_t     num_heads;
    int32_t     intermediate_size;
    int32_t     max_position;
    int32_t     type_vocab_size;
    int32_t     pad_token_id;
    double      layer_norm_eps;
    int32_t     precision;          /* a gomps_precision in force                          */
    int32_t     max_batch;          /* as resolved from the options                        */
    int32_t     max_seq;            /* as resolved from the options                        */
    int64_t     weights_bytes;      /* bytes of weights the model keeps for its forward:
                                       packed or converted copies plus the tensors it reads
                                       in place from the file                               */
    int64_t     context_bytes;      /* bytes of scratch one context allocates (address
                                       space; resident as far as batches touch it)         */
    const char *tokenizer;          /* the file's tokenizer.json (SHA-256 verified at init),
                                       tokenizer_size bytes, not NUL-terminated; valid until
                                       model_free                                          */
    uint64_t    tokenizer_size;
} gomps_model_info;

/* A backend. */
typedef struct gomps_backend {
    uint32_t    struct_size;  /* sizeof(gomps_backend) as the backend was compiled          */
    uint32_t    abi_version;  /* the GOMPS_ABI_VERSION it implements; a caller refuses any
                                 other                                                       */
    const char *name;         /* "cpu", "metal", ...: unique among the backends of a program */
    const char *version;      /* the backend's own version and what it is built on, one line */

    /* What the backend can do here for a budget of threads CPU threads over all
     * contexts (<= 0: every CPU the process may use). Cheap; any thread. */
    gomps_status (*capabilities)(int32_t threads, gomps_capabilities *out);

    /* Loads and validates a native weights file. On success *out is a new
     * model; on failure *out is NULL and last_init_error() says why (naming
     * file, tensor and rule broken for a bad file). */
    gomps_status (*model_init)(const char *path, const gomps_model_options *opts, gomps_model_t **out);
    /* Frees a model. NULL is a no-op. Every context of it must be freed first. */
    void (*model_free)(gomps_model_t *model);
    gomps_status (*model_info)(const gomps_model_t *model, gomps_model_info *out);
    /* Thread-local text of the last failed init on this thread ("" if none). */
    const char *(*last_init_error)(void);

    /* Makes a context of model using n_threads threads for its forward passes
     * (n_threads <= 0: the backend's choice). */
    gomps_status (*context_init)(gomps_model_t *model, int32_t n_threads, gomps_context_t **out);
    /* Frees a context. NULL is a no-op. */
    void (*context_free)(gomps_context_t *ctx);
    /* Changes the thread count used by later forward calls on ctx. */
    gomps_status (*context_set_threads)(gomps_context_t *ctx, int32_t n_threads);
    /* One forward pass over a padded batch.
     *   batch     rows, 1 <= batch <= max_batch
     *   seq       padded row length, 1 <= seq <= max_seq
     *   ids       [batch * seq] token ids, row-major; positions >= lengths[r] are padding
     *   type_ids  [batch * seq] token type ids (0 for families without types)
     *   lengths   [batch] real tokens per row, 1 <= lengths[r] <= seq
     *   logits    [batch * num_labels] out, row-major: every label's raw logit
     * Padding content is ignored: the result for a row depends only on its
     * first lengths[r] ids and types. A backend with shape buckets pads
     * internally. */
    gomps_status (*context_forward)(gomps_context_t *ctx, int32_t batch, int32_t seq, const int32_t *ids,
                                    const int32_t *type_ids, const int32_t *lengths, float *logits);
    /* Text of the last failed call on ctx ("" if none). */
    const char *(*context_last_error)(const gomps_context_t *ctx);
} gomps_backend;

/* 1 if table b (as its struct_size says) has the member named field. */
#define GOMPS_BACKEND_HAS(b, field) \
    ((b)->struct_size >= offsetof(gomps_backend, field) + sizeof((b)->field))

/* The accessors: each backend exports exactly one (and nothing else of the
 * ABI). A program links whichever it was built with. */
const gomps_backend *gomps_backend_cpu(void);   /* kernels/cpu: C over oneDNN, x86-64 Linux */
const gomps_backend *gomps_backend_metal(void); /* metal/: Objective-C over MPSGraph, macOS */

#ifdef __cplusplus
}
#endif

#endif /* GOMPS_H */
