/*
 * half-test.c: checks metal/gomps-half.c (the Metal backend's fp16 <-> fp32
 * conversion for weights) against the compiler's _Float16 (gcc 12, x86-64):
 * every one of the 65536 halves to float, every float exactly halfway
 * between two neighbouring halves (ties to even) and its neighbours, and
 * 2^32 / 251 floats spread over the whole range (NaN: only NaN-ness).
 * Built and run by tools/check-metal.sh.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "gomps-half.h"

static unsigned long bad;

static void check(float f) {
    _Float16 want = (_Float16)f;
    uint16_t w;
    memcpy(&w, &want, 2);
    uint16_t got = gomps_f32_to_f16(f);
    int ok = isnan(f) ? ((got & 0x7c00u) == 0x7c00u && (got & 0x3ffu) != 0) : got == w;
    if (!ok && bad++ < 5) printf("half-test: f32_to_f16(%a) = %04x, want %04x\n", (double)f, got, w);
}

int main(void) {
    unsigned long n = 0;
    for (uint32_t h = 0; h < 65536; h++, n++) {
        _Float16 x;
        uint16_t hb = (uint16_t)h;
        memcpy(&x, &hb, 2);
        float want = (float)x, got = gomps_f16_to_f32(hb);
        int ok = isnan(want) ? isnan(got) : memcmp(&want, &got, 4) == 0;
        if (!ok && bad++ < 5) printf("half-test: f16_to_f32(%04x) = %a, want %a\n", hb, (double)got, (double)want);
        /* the float halfway to the next half, and its neighbours */
        if ((h & 0x7c00u) != 0x7c00u && (h & 0x7fffu) != 0x7bffu) {
            uint16_t nb = (uint16_t)(h + 1);
            _Float16 y;
            memcpy(&y, &nb, 2);
            float mid = (float)(((double)x + (double)y) / 2);
            check(mid);
            check(nextafterf(mid, INFINITY));
            check(nextafterf(mid, -INFINITY));
            n += 3;
        }
    }
    for (uint64_t u = 0; u < (1ull << 32); u += 251, n++) {
        uint32_t b = (uint32_t)u;
        float f;
        memcpy(&f, &b, 4);
        check(f);
    }
    printf("half-test: %lu conversions, %lu wrong\n", n, bad);
    printf("%-44s %s\n", "half/f16<->f32 vs _Float16", bad ? "FAIL" : "PASS");
    return bad ? 1 : 0;
}
