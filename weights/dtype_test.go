package weights

import (
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestF16RoundTripExhaustive: every binary16 value widens exactly and narrows
// back to itself.
func TestF16RoundTripExhaustive(t *testing.T) {
	t.Parallel()
	for h := range 1 << 16 {
		f := f16ToF32(uint16(h))
		got, ok := f32ToF16(f)
		if math.IsNaN(float64(f)) {
			require.True(t, got&0x7c00 == 0x7c00 && got&0x3ff != 0, "NaN %04x stays NaN, got %04x", h, got)
			continue
		}
		require.True(t, ok, "%04x", h)
		require.Equal(t, uint16(h), got, "round trip of %04x (%v)", h, f)
	}
}

func TestF16Rounding(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name string
		in   float32
		want uint16
		ok   bool
	}{
		{"one", 1, 0x3c00, true},
		{"max", 65504, 0x7bff, true},
		{"tie_to_even_down", 1 + 1.0/2048, 0x3c00, true},          // halfway between 1 and 1+2^-10
		{"tie_to_even_up", 1 + 3.0/2048, 0x3c02, true},            // halfway between 1+2^-10 and 1+2^-9
		{"above_half_up", 1 + 1.0/2048 + 1.0/65536, 0x3c01, true}, // just above halfway
		{"rounds_to_max", 65519, 0x7bff, true},
		{"overflow", 65520, 0x7c00, false},
		{"smallest_subnormal", float32(math.Ldexp(1, -24)), 0x0001, true},
		{"half_smallest_subnormal_ties_to_zero", float32(math.Ldexp(1, -25)), 0x0000, true},
		{"above_half_smallest_subnormal", float32(math.Ldexp(1.5, -25)), 0x0001, true},
		{"subnormal_to_normal_carry", float32(math.Ldexp(1023.5, -24)), 0x0400, true},
		{"neg_zero", float32(math.Copysign(0, -1)), 0x8000, true},
		{"inf", float32(math.Inf(1)), 0x7c00, true},
		{"neg", -2, 0xc000, true},
	} {
		t.Run("case="+c.name, func(t *testing.T) {
			got, ok := f32ToF16(c.in)
			assert.Equal(t, c.want, got, "bits")
			assert.Equal(t, c.ok, ok, "ok")
		})
	}
}

func TestEncodeBF16(t *testing.T) {
	t.Parallel()
	b, err := EncodeFloat32([]float32{1, float32(1 + math.Ldexp(1, -8)), float32(1 + 3*math.Ldexp(1, -8)), -3.5}, BF16)
	require.NoError(t, err)
	got := decodeFloat32(b, BF16)
	// 1+2^-8 is halfway between 1 and 1+2^-7: ties to even gives 1.
	assert.Equal(t, []float32{1, 1, float32(1 + 4*math.Ldexp(1, -8)), -3.5}, got)
}

func TestParseDType(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]DType{"f32": F32, "F16": F16, "float16": F16} {
		got, err := ParseDType(in)
		require.NoError(t, err, in)
		assert.Equal(t, want, got, in)
	}
	_, err := ParseDType("bf16")
	assert.Error(t, err, "bf16 is not written by format v1")
}
