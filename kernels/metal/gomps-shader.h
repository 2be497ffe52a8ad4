/*
 * gomps-shader.h: helpers shared by the gomps Metal shaders (MSL only; the
 * host never includes it).
 *
 * Also compiled as C++ on Linux through tools/metalshim, which defines
 * GOMPS_MSL_SHIM; the only difference that makes here is GOMPS_TG (a
 * threadgroup pointer parameter has no C++ spelling in the shim).
 *
 * Fast-math is off (the host compiles with fastMathEnabled = NO): every
 * reduction accumulates in fp32 in a fixed order per thread.
 */
#ifndef GOMPS_SHADER_H
#define GOMPS_SHADER_H

#include <metal_stdlib>
using namespace metal;

#ifdef GOMPS_MSL_SHIM
#define GOMPS_TG
#else
#define GOMPS_TG threadgroup
#endif

/* GOMPS_KERNEL(op, dtype, T) instantiates the template kernel op<T> under the
 * name op_dtype; GOMPS_PARAMS_<op>(T) is the op's parameter list. This is the
 * one place kernel names are made in the shaders; the host builds the same
 * names with gomps_metal_kernel_name. */
#ifdef GOMPS_MSL_SHIM
#define GOMPS_KERNEL(op, dtype, T) template void op<T>(GOMPS_PARAMS_##op(T));
#else
#define GOMPS_STR_(x) #x
#define GOMPS_STR(x) GOMPS_STR_(x)
#define GOMPS_KERNEL(op, dtype, T) \
    template [[host_name(GOMPS_STR(op##_##dtype))]] [[kernel]] void op<T>(GOMPS_PARAMS_##op(T));
#endif

#define GOMPS_ROW_SIMDGROUPS (GOMPS_ROW_THREADS / GOMPS_SIMD_WIDTH)
#define GOMPS_FLOAT_LOWEST (-3.402823466e+38f)

/* Sum of v over the threadgroup; every thread receives the total. partial has
 * one slot per simdgroup and is reused by the next reduction, hence the
 * second barrier. Every thread of the group must call it. */
inline float gomps_group_sum(float v, GOMPS_TG float *partial, uint lane, uint sg, uint nsg) {
    const float s = simd_sum(v);
    if (lane == 0) {
        partial[sg] = s;
    }
    threadgroup_barrier(mem_flags::mem_threadgroup);
    float total = 0.0f;
    for (uint i = 0; i < nsg; ++i) {
        total += partial[i];
    }
    threadgroup_barrier(mem_flags::mem_threadgroup); // gomps:reuse-barrier
    return total;
}

/* Maximum of v over the threadgroup; same contract as gomps_group_sum. */
inline float gomps_group_max(float v, GOMPS_TG float *partial, uint lane, uint sg, uint nsg) {
    const float s = simd_max(v);
    if (lane == 0) {
        partial[sg] = s;
    }
    threadgroup_barrier(mem_flags::mem_threadgroup);
    float m = partial[0];
    for (uint i = 1; i < nsg; ++i) {
        m = max(m, partial[i]);
    }
    threadgroup_barrier(mem_flags::mem_threadgroup); // gomps:reuse-barrier
    return m;
}

/* erf for fp32. MSL's standard library has no erf. |x| < 0.5: the Maclaurin
 * series to x^13 (truncation < 1e-9); otherwise Abramowitz & Stegun 7.1.26
 * (|error| <= 1.5e-7 in exact arithmetic). The fp32 result's max absolute
 * error against libm's erf is measured by tools/metalshim (bound 1e-6). */
inline float gomps_erf(float x) {
    const float ax = fabs(x);
    if (ax < 0.5f) {
        const float x2 = x * x;
        float p = 1.0f / 9360.0f;
        p = p * x2 - 1.0f / 1320.0f;
        p = p * x2 + 1.0f / 216.0f;
        p = p * x2 - 1.0f / 42.0f;
        p = p * x2 + 1.0f / 10.0f;
        p = p * x2 - 1.0f / 3.0f;
        p = p * x2 + 1.0f;
        return 1.1283791670955126f * x * p; /* 2/sqrt(pi) */
    }
    const float t = 1.0f / (1.0f + 0.3275911f * ax);
    float p = 1.061405429f;
    p = p * t - 1.453152027f;
    p = p * t + 1.421413741f;
    p = p * t - 0.284496736f;
    p = p * t + 0.254829592f;
    const float y = 1.0f - p * t * exp(-ax * ax);
    return copysign(y, x);
}

/* Exact (erf) GELU, as BERT uses. */
inline float gomps_gelu(float v) {
    return 0.5f * v * (1.0f + gomps_erf(v * 0.70710678118654752f));
}

#endif /* GOMPS_SHADER_H */
