/*
 * gomps-half.h: fp16 <-> fp32 conversion by bits (gomps-half.c).
 * Not part of the native ABI.
 */
#ifndef GOMPS_HALF_H
#define GOMPS_HALF_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* round to nearest even; overflow gives infinity; NaN stays NaN */
uint16_t gomps_f32_to_f16(float f);
float gomps_f16_to_f32(uint16_t h);

#ifdef __cplusplus
}
#endif

#endif /* GOMPS_HALF_H */
