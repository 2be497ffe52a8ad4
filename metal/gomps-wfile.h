/*
 * gomps-wfile.h: the Metal backend's reader of the native weights file
 * (weights/FORMAT.md, version 1). Plain C with no Apple dependency, so
 * tools/check-metal.sh tests it on Linux (tools/metalshim/wfile-test.c).
 *
 * It maps the file read-only and checks every rule of FORMAT.md, in the
 * order the page gives, before any tensor byte is used; tensors stay in the
 * mapping (16 KiB-aligned slots), which the backend wraps in MTLBuffers
 * without copies. The tokenizer bytes are bounds-checked but their SHA-256
 * is not verified: the backend never reads them (the Go reader does).
 *
 * Not part of the native ABI.
 */
#ifndef GOMPS_WFILE_H
#define GOMPS_WFILE_H

#include <stddef.h>
#include <stdint.h>

#include "gomps.h"

#ifdef __cplusplus
extern "C" {
#endif

#define GOMPS_WFILE_ALIGN 16384u
#define GOMPS_WFILE_DTYPE_F32 0u
#define GOMPS_WFILE_DTYPE_F16 1u

/* Tensor indices (FORMAT.md, "Tensors, in this order"). */
enum {
    GOMPS_WT_WORD = 0,
    GOMPS_WT_POSITION = 1,
    GOMPS_WT_TOKEN_TYPE = 2,
    GOMPS_WT_EMB_LN_GAMMA = 3,
    GOMPS_WT_EMB_LN_BETA = 4,
    GOMPS_WT_LAYER0 = 5,
    GOMPS_WT_PER_LAYER = 12
};
/* Offsets inside one layer's block of 12. */
enum {
    GOMPS_WL_QKV_W = 0,
    GOMPS_WL_QKV_B,
    GOMPS_WL_ATTN_OUT_W,
    GOMPS_WL_ATTN_OUT_B,
    GOMPS_WL_ATTN_LN_G,
    GOMPS_WL_ATTN_LN_B,
    GOMPS_WL_FFN_UP_W,
    GOMPS_WL_FFN_UP_B,
    GOMPS_WL_FFN_DOWN_W,
    GOMPS_WL_FFN_DOWN_B,
    GOMPS_WL_FFN_LN_G,
    GOMPS_WL_FFN_LN_B
};
/* Head tensors follow the layers: index 5 + 12 L + k. */
enum { GOMPS_WH_POOLER_W = 0, GOMPS_WH_POOLER_B, GOMPS_WH_CLS_W, GOMPS_WH_CLS_B };

typedef struct gomps_wfile_config {
    uint32_t dtype; /* GOMPS_WFILE_DTYPE_* */
    uint32_t vocab_size;
    uint32_t hidden_size;
    uint32_t num_layers;
    uint32_t num_heads;
    uint32_t intermediate_size;
    uint32_t max_position;
    uint32_t type_vocab_size;
    uint32_t pad_token_id;
    double layer_norm_eps;
    char name[81]; /* NUL-terminated */
} gomps_wfile_config;

typedef struct gomps_wfile_tensor {
    char name[65];     /* NUL-terminated */
    uint32_t ndim;     /* 1 or 2 */
    uint64_t shape[2]; /* {n, 0} for 1-D */
    uint64_t offset;   /* multiple of GOMPS_WFILE_ALIGN */
    uint64_t size;     /* bytes of data */
    uint64_t slot;     /* size rounded up to GOMPS_WFILE_ALIGN: bytes mapped after offset */
    const void *data;  /* inside the mapping; valid until gomps_wfile_close */
} gomps_wfile_tensor;

typedef struct gomps_wfile {
    void *base; /* read-only mapping of the whole file */
    size_t size;
    gomps_wfile_config cfg;
    uint32_t n_tensors;
    gomps_wfile_tensor *tensors;
} gomps_wfile;

/* Maps and validates path into *f (zeroed first). On failure *f holds
 * nothing to free, and err (errlen bytes) says which file, field or tensor
 * broke which rule, prefixed "weights: <path>: ". */
gomps_status gomps_wfile_open(const char *path, gomps_wfile *f, char *err, size_t errlen);

/* Unmaps and frees; a zeroed or already closed f is a no-op. */
void gomps_wfile_close(gomps_wfile *f);

/* Index of layer l's tensor k (GOMPS_WL_*) and of head tensor k (GOMPS_WH_*). */
static inline uint32_t gomps_wfile_layer_index(uint32_t l, uint32_t k) {
    return GOMPS_WT_LAYER0 + GOMPS_WT_PER_LAYER * l + k;
}
static inline uint32_t gomps_wfile_head_index(const gomps_wfile *f, uint32_t k) {
    return GOMPS_WT_LAYER0 + GOMPS_WT_PER_LAYER * f->cfg.num_layers + k;
}

/* CRC-32C (Castagnoli), as FORMAT.md uses it; crc 0 to start. */
uint32_t gomps_wfile_crc32c(uint32_t crc, const void *data, size_t n);

#ifdef __cplusplus
}
#endif

#endif /* GOMPS_WFILE_H */
