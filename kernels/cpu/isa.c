/*
 * isa.c: the one ISA ceiling of the CPU backend.
 *
 * Every dispatch of the backend, oneDNN's and our own kernels', follows
 * oneDNN's effective ISA (dnnl_get_effective_cpu_isa): the CPU's best level,
 * capped by ONEDNN_MAX_CPU_ISA (or its older name DNNL_MAX_CPU_ISA). oneDNN
 * ignores a value it does not know and runs the full ISA; we refuse it, and
 * any level below AVX2, when a model is loaded. It is decided once per
 * process, as oneDNN decides it.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "internal.h"

static cpu_isa isa_state;
static pthread_once_t isa_once = PTHREAD_ONCE_INIT;

/* The names oneDNN 2.x accepts for its ceiling (case-insensitive), and
 * whether gomps runs under it. */
static const struct {
    const char *name;
    int         usable;
} isa_levels[] = {
    {"ALL", 1},         {"AVX2", 1},        {"AVX2_VNNI", 1},        {"AVX512_CORE", 1},
    {"AVX512_CORE_VNNI", 1}, {"AVX512_CORE_BF16", 1}, {"AVX512_CORE_AMX", 1},
    {"SSE41", 0},       {"AVX", 0},         {"AVX512_MIC", 0},       {"AVX512_MIC_4OPS", 0},
};

static const char isa_usable_names[] =
    "ALL, AVX2, AVX2_VNNI, AVX512_CORE, AVX512_CORE_VNNI, AVX512_CORE_BF16, AVX512_CORE_AMX";

const char *cpu_isa_name(dnnl_cpu_isa_t isa) {
    switch (isa) {
    case dnnl_cpu_isa_avx512_core_amx: return "avx512_core_amx";
    case dnnl_cpu_isa_avx512_core_bf16: return "avx512_core_bf16";
    case dnnl_cpu_isa_avx512_core_vnni: return "avx512_core_vnni";
    case dnnl_cpu_isa_avx512_core: return "avx512_core";
    case dnnl_cpu_isa_avx2_vnni: return "avx2_vnni";
    case dnnl_cpu_isa_avx2: return "avx2";
    case dnnl_cpu_isa_avx: return "avx";
    case dnnl_cpu_isa_sse41: return "sse41";
    default: return "unknown";
    }
}

/* 1 if the effective ISA includes all of level's bits. */
static int has(dnnl_cpu_isa_t eff, dnnl_cpu_isa_t level) { return (eff & level) == level; }

/* Checks the ceiling's environment variable the way oneDNN reads it; on a bad
 * value writes why into s->error. */
static void check_env(cpu_isa *s) {
    const char *var = "ONEDNN_MAX_CPU_ISA", *v = getenv(var);
    if (!v || !*v) {
        var = "DNNL_MAX_CPU_ISA";
        v = getenv(var);
    }
    if (!v || !*v) return;
    for (size_t i = 0; i < sizeof isa_levels / sizeof isa_levels[0]; i++) {
        if (strcasecmp(v, isa_levels[i].name) != 0) continue;
        if (!isa_levels[i].usable)
            snprintf(s->error, sizeof s->error,
                     "%s=%s is below AVX2, which the CPU backend needs; use one of %s", var, v,
                     isa_usable_names);
        return;
    }
    snprintf(s->error, sizeof s->error, "%s=%.64s is not an ISA level; use one of %s", var, v,
             isa_usable_names);
}

#ifdef CPU_X86
#define ARCH_GET_XCOMP_PERM 0x1022
#define ARCH_REQ_XCOMP_PERM 0x1023
#define XFEATURE_XTILEDATA 18

/* 1 if the kernel grants this process the AMX tile data state (Linux >= 5.16). */
static int amx_granted(void) {
    if (syscall(SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) != 0) return 0;
    unsigned long long mask = 0;
    if (syscall(SYS_arch_prctl, ARCH_GET_XCOMP_PERM, &mask) != 0) return 0;
    return (mask >> XFEATURE_XTILEDATA) & 1;
}
#endif

static void isa_probe(void) {
    cpu_isa *s = &isa_state;
    s->effective = dnnl_get_effective_cpu_isa();
    s->name = cpu_isa_name(s->effective);
    check_env(s);
#ifdef CPU_X86
    if (has(s->effective, dnnl_cpu_isa_avx512_core)) {
        s->level = CPU_LEVEL_AVX512;
    } else if (has(s->effective, dnnl_cpu_isa_avx2) && __builtin_cpu_supports("fma")) {
        s->level = CPU_LEVEL_AVX2;
    } else {
        s->level = CPU_LEVEL_BASE;
        if (!s->error[0])
            snprintf(s->error, sizeof s->error,
                     "this CPU (%s) lacks AVX2 and FMA, which the CPU backend needs", s->name);
    }
    s->bf16 = has(s->effective, dnnl_cpu_isa_avx512_core_bf16);
    s->amx = has(s->effective, dnnl_cpu_isa_avx512_core_amx) && amx_granted();
#else
    s->level = CPU_LEVEL_BASE; /* portable C kernels; oneDNN picks its own */
#endif
}

const cpu_isa *cpu_isa_get(void) {
    pthread_once(&isa_once, isa_probe);
    return &isa_state;
}

int cpu_bf16_usable(char *why, size_t len) {
    const cpu_isa *s = cpu_isa_get();
    if (s->bf16) return 1;
    snprintf(why, len, "precision bf16 needs AMX or AVX512-BF16; this CPU (%s) runs f32", s->name);
    return 0;
}

int cpu_amx_usable(void) { return cpu_isa_get()->amx; }
