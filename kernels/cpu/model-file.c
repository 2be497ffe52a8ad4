/*
 * model-file.c: opens a native weights file (weights/FORMAT.md, version 1)
 * with the backends' shared reader (kernels/wfile), which maps it and
 * validates every rule, tokenizer SHA-256 included, before a byte of it is
 * used. A bad file is an error naming the file, the field or tensor and the
 * rule; never a crash.
 */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* CRC-32C and SHA-256 ------------------------------------------------------*/

/* GOMPS_CPU_CRC=portable forces the table path (tests compare the two). */
uint32_t cpu_crc32c(uint32_t crc, const void *data, size_t n) {
    const char *force = getenv("GOMPS_CPU_CRC");
    if (force && strcmp(force, "portable") == 0) return gomps_wfile_crc32c_portable(crc, data, n);
    return gomps_wfile_crc32c(crc, data, n);
}

void cpu_sha256(const void *data, size_t n, uint8_t out[32]) { gomps_wfile_sha256(data, n, out); }

/* F16 ----------------------------------------------------------------------*/

void cpu_f16_to_f32(const uint16_t *src, float *dst, size_t n) {
    for (size_t i = 0; i < n; i++) {
        uint32_t h = src[i];
        uint32_t sign = (h & 0x8000u) << 16, exp = (h >> 10) & 0x1f, man = h & 0x3ff, bits;
        if (exp == 0x1f) {
            bits = sign | 0x7f800000u | (man << 13);
        } else if (exp != 0) {
            bits = sign | ((exp + 112) << 23) | (man << 13);
        } else if (man == 0) {
            bits = sign;
        } else { /* subnormal: normalise */
            int e = -1;
            do {
                e++;
                man <<= 1;
            } while ((man & 0x400u) == 0);
            bits = sign | ((uint32_t)(112 - e) << 23) | ((man & 0x3ffu) << 13);
        }
        memcpy(&dst[i], &bits, 4);
    }
}

/* The file ----------------------------------------------------------------*/

gomps_status cpu_file_open(const char *path, cpu_file *f) {
    memset(f, 0, sizeof *f);
    char err[1024];
    gomps_status st = gomps_wfile_open(path, GOMPS_WFILE_VERIFY_TOKENIZER, &f->w, err, sizeof err);
    if (st) return cpu_init_errorf(st, "cpu: %s", err);
    const gomps_wfile_config *c = &f->w.cfg;
    f->dtype = c->dtype;
    /* every field below is bounded by the reader (<= 1,000,000) */
    f->vocab_size = (int32_t)c->vocab_size;
    f->hidden_size = (int32_t)c->hidden_size;
    f->num_layers = (int32_t)c->num_layers;
    f->num_heads = (int32_t)c->num_heads;
    f->intermediate_size = (int32_t)c->intermediate_size;
    f->max_position = (int32_t)c->max_position;
    f->type_vocab_size = (int32_t)c->type_vocab_size;
    f->pad_token_id = (int32_t)c->pad_token_id;
    f->layer_norm_eps = c->layer_norm_eps;
    memcpy(f->name, c->name, sizeof f->name);
    f->n_tensors = f->w.n_tensors;
    f->tensor_data = calloc(f->n_tensors, sizeof *f->tensor_data);
    f->tensor_elems = calloc(f->n_tensors, sizeof *f->tensor_elems);
    if (!f->tensor_data || !f->tensor_elems) {
        cpu_file_close(f);
        return cpu_init_errorf(GOMPS_ERR_OOM, "cpu: %s: out of memory for the tensor table", path);
    }
    for (uint32_t i = 0; i < f->n_tensors; i++) {
        f->tensor_data[i] = f->w.tensors[i].data;
        f->tensor_elems[i] = f->w.tensors[i].elems;
    }
    return GOMPS_OK;
}

void cpu_file_close(cpu_file *f) {
    gomps_wfile_close(&f->w);
    free(f->tensor_data);
    free(f->tensor_elems);
    memset(f, 0, sizeof *f);
}
