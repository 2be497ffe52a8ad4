/*
 * gomps-metal.h: the Metal backend's own entry points, beside the native ABI
 * (kernels/gomps.h). NOT part of the ABI: only the Go package
 * github.com/gomps/gomps/metal and diagnostics use them; the library in
 * gomps/ includes gomps.h alone.
 */
#ifndef GOMPS_METAL_H
#define GOMPS_METAL_H

#include <stddef.h>
#include <stdint.h>

#include "gomps.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Most buckets a model may have (the options' buckets string). */
#define GOMPS_METAL_MAX_BUCKETS 64

/* Bits of gomps_metal_stats.kernels: which of our Metal kernels replace a part
 * of the MPSGraph in the model's forward pass. Chosen at model init from the
 * environment variable GOMPS_METAL_KERNELS (read once per init): "" or "none"
 * = pure MPSGraph (the default until a GPU trace on a Mac shows a kernel
 * pays), "all", or a comma list of "embed" (the embedding front end),
 * "layer_norm" (all 2 per layer), "softmax" (the attention probabilities;
 * "masked_softmax" is accepted too) and "bias_gelu" (the FFN's bias + GELU).
 * Each layer kernel splits the forward into one more MPSGraph segment per
 * layer (metal/README.md; gomps-plan.h). The values equal GOMPS_PLAN_*. */
#define GOMPS_METAL_KERNEL_EMBED 1u
#define GOMPS_METAL_KERNEL_LAYER_NORM 2u
#define GOMPS_METAL_KERNEL_SOFTMAX 4u
#define GOMPS_METAL_KERNEL_BIAS_GELU 8u
#define GOMPS_METAL_KERNEL_ALL 15u

/* Hands the backend the shader library source (package kernels/metal's
 * Source()); the text is copied. The Go package metal calls it from init.
 * Without it the custom kernels are unavailable: any GOMPS_METAL_KERNELS
 * selection then fails at model init, and the pure MPSGraph path still works. */
void gomps_metal_set_shader_source(const char *src, size_t len);

/* What a model's load did; filled by gomps_metal_model_stats. */
typedef struct gomps_metal_stats {
    uint32_t struct_size;     /* sizeof(gomps_metal_stats)                           */
    double   load_ms;         /* the whole model_init                                */
    double   compile_ms;      /* every bucket's compile + warm-up run                */
    int32_t  n_buckets;
    int32_t  bucket_batch[GOMPS_METAL_MAX_BUCKETS];
    int32_t  bucket_seq[GOMPS_METAL_MAX_BUCKETS];
    double   bucket_ms[GOMPS_METAL_MAX_BUCKETS]; /* compile + warm-up of each bucket  */
    int32_t  weights_zero_copy; /* 1 if every weight MTLBuffer wraps the mapped file */
    uint32_t kernels;         /* GOMPS_METAL_KERNEL_* in use                          */
    int32_t  locked_encode;   /* 1 if encodes of one model are serialized (default)  */
    int32_t  segments;        /* MPSGraph executables per forward of one bucket      */
    int32_t  kernel_steps;    /* kernel dispatches per forward of one bucket         */
} gomps_metal_stats;

gomps_status gomps_metal_model_stats(const gomps_model_t *model, gomps_metal_stats *out);

/* Writes the kernel name <op>_<dtype>[_<variant>] (dtype f32 or f16 from
 * precision; variant NULL or "" for none) into buf; returns the length it
 * needs (snprintf rules), or -1 for a precision without kernels. The one
 * host-side place kernel names are made (the shaders' is GOMPS_KERNEL). */
int gomps_metal_kernel_name(char *buf, size_t n, const char *op, int32_t precision, const char *variant);

/* One op run both ways on the device, for `gomps kernels`: our Metal kernel
 * and the same op as a small MPSGraph executable, on the same seeded random
 * inputs. Times include GPU completion (one command buffer per iteration,
 * waited). */
typedef struct gomps_metal_op_result {
    uint32_t struct_size;  /* sizeof(gomps_metal_op_result)           */
    double   kernel_ms;    /* mean per iteration, our kernel          */
    double   graph_ms;     /* mean per iteration, the MPSGraph path   */
    double   max_abs_diff; /* between the two outputs                 */
    double   nmse;         /* sum (kernel - graph)^2 / sum graph^2    */
} gomps_metal_op_result;

/* op: "layer_norm" (rows x cols), "masked_softmax" (rows score rows of cols
 * keys, one batch row), "bias_gelu" (rows x cols), "embed" (rows tokens,
 * hidden cols). precision: F32 or F16. On failure err says why. */
gomps_status gomps_metal_op_compare(const char *op, int32_t precision, int32_t rows, int32_t cols, int32_t iters,
                                    gomps_metal_op_result *out, char *err, size_t errlen);

/* Bytes this process has allocated on the system default Metal device (the
 * one model_init uses): MTLDevice.currentAllocatedSize, which counts
 * every buffer, texture and heap of the process on that device, ours and
 * MPSGraph's. GOMPS_ERR_DEVICE with err when there is no device. Cheap: no
 * GPU work. Any thread. */
gomps_status gomps_metal_gpu_allocated(uint64_t *bytes, char *err, size_t errlen);

#ifdef __cplusplus
}
#endif

#endif /* GOMPS_METAL_H */
