/*
 * gomps-wfile.h: the one C reader of the native weights file
 * (weights/FORMAT.md, version 1), shared by every native backend
 * (kernels/cpu, metal/). Plain C11 + POSIX, no backend dependency; the Go
 * package kernels/wfile exists so cgo compiles it (a backend imports it for
 * its side effect) and so its tests run. Internal: not part of the native ABI
 * (kernels/gomps.h), and gomps/ never includes it.
 *
 * gomps_wfile_open maps the file read-only and checks every rule of
 * FORMAT.md in the order the page gives (header CRC-32C, config ranges, the
 * tensor table against the config, contiguous 16 KiB slots, zero padding and
 * reserved fields, each tensor's CRC-32C) before any tensor byte is handed
 * out; nothing is allocated from a size in the file before that size has
 * been bounded by the file's real size. The tokenizer's SHA-256 is checked
 * when the caller asks (GOMPS_WFILE_VERIFY_TOKENIZER): a backend that never
 * reads the tokenizer bytes may leave that to the Go reader. Tensors stay in
 * the mapping, in their 16 KiB-aligned slots (Metal wraps them without
 * copies).
 *
 * Thread safety: gomps_wfile_open and the checksum functions may be called
 * from any thread; an opened gomps_wfile is read-only and may be shared.
 */
#ifndef GOMPS_WFILE_H
#define GOMPS_WFILE_H

#include <stddef.h>
#include <stdint.h>

#include "../gomps.h"

#ifdef __cplusplus
extern "C" {
#endif

#define GOMPS_WFILE_ALIGN 16384u
#define GOMPS_WFILE_DTYPE_F32 0u
#define GOMPS_WFILE_DTYPE_F16 1u

/* Flags of gomps_wfile_open. */
enum {
    GOMPS_WFILE_VERIFY_TOKENIZER = 1u << 0 /* check tokenizer_sha256 (and fail on a mismatch) */
};

/* Tensor indices (FORMAT.md, "Tensors, in this order"). */
enum {
    GOMPS_WT_WORD = 0,
    GOMPS_WT_POSITION = 1,
    GOMPS_WT_TOKEN_TYPE = 2,
    GOMPS_WT_EMB_LN_GAMMA = 3,
    GOMPS_WT_EMB_LN_BETA = 4,
    GOMPS_WT_LAYER0 = 5,
    GOMPS_WT_PER_LAYER = 12,
    GOMPS_WT_FIXED = 9 /* 5 embedding tensors + pooler (2) + classifier (2) */
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
    uint32_t arch;  /* 1 = BertForSequenceClassification, the one family of version 1 */
    uint32_t vocab_size;
    uint32_t hidden_size;
    uint32_t num_layers;
    uint32_t num_heads;
    uint32_t intermediate_size;
    uint32_t max_position;
    uint32_t type_vocab_size;
    uint32_t pad_token_id;
    double layer_norm_eps;
    char name[81]; /* NUL-terminated, valid UTF-8 */
    uint8_t source_sha256[32]; /* of the source model.safetensors; zeros if unknown */
} gomps_wfile_config;

typedef struct gomps_wfile_tensor {
    char name[65];     /* NUL-terminated */
    uint32_t ndim;     /* 1 or 2 */
    uint64_t shape[2]; /* {n, 0} for 1-D */
    uint64_t elems;    /* shape[0] * (ndim == 2 ? shape[1] : 1) */
    uint64_t offset;   /* multiple of GOMPS_WFILE_ALIGN */
    uint64_t size;     /* bytes of data: elems * element size */
    uint64_t slot;     /* size rounded up to GOMPS_WFILE_ALIGN: bytes mapped after offset */
    const void *data;  /* inside the mapping; valid until gomps_wfile_close */
} gomps_wfile_tensor;

typedef struct gomps_wfile {
    void *base; /* read-only mapping of the whole file */
    size_t size;
    gomps_wfile_config cfg;
    const void *tokenizer; /* tokenizer.json bytes inside the mapping */
    uint64_t tokenizer_size;
    uint32_t n_tensors;
    gomps_wfile_tensor *tensors;
} gomps_wfile;

/* Maps and validates path into *f (zeroed first); flags: GOMPS_WFILE_*.
 * GOMPS_ERR_IO when the file cannot be opened, read or mapped,
 * GOMPS_ERR_FORMAT when it breaks a rule, GOMPS_ERR_OOM. On failure *f holds
 * nothing to free, and err (errlen bytes, always NUL-terminated when errlen >
 * 0) says which file, field or tensor broke which rule:
 * "weights: <path>: <field>: ...". */
gomps_status gomps_wfile_open(const char *path, uint32_t flags, gomps_wfile *f, char *err, size_t errlen);

/* Unmaps and frees; a zeroed or already closed f is a no-op. */
void gomps_wfile_close(gomps_wfile *f);

/* Drops the mapping's resident pages (madvise MADV_DONTNEED where the system
 * has it): a backend that has copied what it needs out of the file calls it
 * so the file no longer counts in the process's resident memory. The mapping
 * stays valid: a page read again comes back from the page cache. */
void gomps_wfile_release(const gomps_wfile *f);

/* Index of layer l's tensor k (GOMPS_WL_*) and of head tensor k (GOMPS_WH_*). */
static inline uint32_t gomps_wfile_layer_index(uint32_t l, uint32_t k) {
    return GOMPS_WT_LAYER0 + GOMPS_WT_PER_LAYER * l + k;
}
static inline uint32_t gomps_wfile_head_index(const gomps_wfile *f, uint32_t k) {
    return GOMPS_WT_LAYER0 + GOMPS_WT_PER_LAYER * f->cfg.num_layers + k;
}

/* CRC-32C (Castagnoli), as FORMAT.md uses it; crc 0 to start, or a previous
 * result to continue. Uses the CPU's CRC-32C instructions when it has them
 * (SSE4.2 on x86-64, checked at run time; the ARMv8 CRC extension when the
 * compiler targets it, as for Apple silicon). */
uint32_t gomps_wfile_crc32c(uint32_t crc, const void *data, size_t n);
/* The same with the portable table (slice-by-8) only; tests compare the two. */
uint32_t gomps_wfile_crc32c_portable(uint32_t crc, const void *data, size_t n);
/* SHA-256 (FIPS 180-4) of n bytes into out. */
void gomps_wfile_sha256(const void *data, size_t n, uint8_t out[32]);

#ifdef __cplusplus
}
#endif

#endif /* GOMPS_WFILE_H */
