/*
 * kbench.h: per-kernel microbenchmarks of the CPU backend (kbench.c).
 * INTERNAL: not part of the native ABI; used by kbench.go (gomps kernels).
 */
#ifndef GOMPS_CPU_KBENCH_H
#define GOMPS_CPU_KBENCH_H

#include <stddef.h>
#include <stdint.h>

typedef struct kb_state kb_state;

/* Kernels kb_run can run, in report order. */
enum {
    KB_EMBEDDINGS = 0, /* cpu_embeddings_packed (+ its LayerNorm)              */
    KB_QKV,            /* oneDNN matmul H -> 3H + bias                          */
    KB_ATTENTION,      /* cpu_attention_fast over B rows of L tokens (default kernel) */
    KB_SOFTMAX,        /* cpu_softmax_row_fast over B x heads x L rows of L     */
    KB_ATTN_OUT,       /* oneDNN matmul H -> H + bias + residual                */
    KB_LAYERNORM,      /* cpu_layernorm_fast over B*L rows of H, threaded        */
    KB_FFN_UP,         /* oneDNN matmul H -> I + bias + gelu_erf post-op        */
    KB_GELU,           /* oneDNN eltwise gelu_erf over [B*L, I] f32, in place   */
    KB_FFN_DOWN,       /* oneDNN matmul I -> H + bias + residual                */
    KB_POOLER,         /* dnnl_sgemm over B CLS rows + tanh + classifier        */
    KB_CONVERT,        /* cpu_f32_to_bf16 of [B*L, H] (bf16 precision only)     */
    KB_ATTENTION_AVX512, /* GOMPS_CPU_ATTENTION=avx512: our f32 kernel            */
    KB_ATTENTION_AMX,  /* GOMPS_CPU_ATTENTION=amx: our AMX kernel (bf16, AMX only) */
    KB_ATTENTION_SGEMM, /* GOMPS_CPU_ATTENTION=sgemm: sgemm + C softmax (old default) */
    KB_SOFTMAX_C,      /* cpu_softmax_row_c (the old softmax), rows as KB_SOFTMAX */
    KB_ATTENTION_AVX512BF16, /* GOMPS_CPU_ATTENTION=avx512bf16: our vdpbf16ps kernel (bf16) */
    KB_PEAK_MATMUL,    /* oneDNN matmul at the reference shape (peak)           */
    KB_KERNELS
};

/* Builds a synthetic layer with seeded random weights packed as a model
 * packs them, a batch of `batch` rows of `seq` tokens and a context of
 * `threads` threads. Returns a gomps_status; err gets the text. */
int kb_init(int32_t hidden, int32_t heads, int32_t inter, int32_t batch, int32_t seq,
            int32_t vocab, int32_t precision, int32_t threads, uint64_t seed, kb_state **out,
            char *err, size_t errlen);
void kb_free(kb_state *s);
/* 1 if kb_run can run kernel on this CPU, shape and precision. */
int kb_available(const kb_state *s, int32_t kernel);
/* Runs one kernel once (call from one OS thread at a time). */
int kb_run(kb_state *s, int32_t kernel, char *err, size_t errlen);
/* Rows and n of the KB_PEAK_MATMUL shape ([rows, n] x [n, n]). */
int64_t kb_peak_rows(const kb_state *s);
int32_t kb_peak_n(const kb_state *s);
/* FMA register loop on `threads` threads: returns seconds, sets flops and
 * the instruction set used. */
double kb_peak_fma(int32_t threads, int64_t iters, double *flops, char *isa, size_t isalen);
/* Best seconds of `reps` parallel memcpy of `bytes` (moves 2 x bytes); -1 on OOM. */
double kb_peak_copy(int32_t threads, int64_t bytes, int32_t reps);

#endif /* GOMPS_CPU_KBENCH_H */
