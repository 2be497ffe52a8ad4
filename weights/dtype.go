package weights

import (
	"encoding/binary"
	"fmt"
	"math"
)

// DType is an element type of weights. Its values are the dtype codes of the
// native format (FORMAT.md): F32 = 0, F16 = 1, BF16 = 2 (BF16 is readable
// from safetensors but not written in format v1).
type DType uint32

// Element types.
const (
	F32  DType = 0
	F16  DType = 1
	BF16 DType = 2
)

// String returns the safetensors spelling: "F32", "F16", "BF16".
func (d DType) String() string {
	switch d {
	case F32:
		return "F32"
	case F16:
		return "F16"
	case BF16:
		return "BF16"
	}
	return fmt.Sprintf("DType(%d)", uint32(d))
}

// Size returns the bytes per element.
func (d DType) Size() int {
	if d == F32 {
		return 4
	}
	return 2
}

// ParseDType parses "f32", "f16" (any case) for the converter.
func ParseDType(s string) (DType, error) {
	switch s {
	case "f32", "F32", "float32":
		return F32, nil
	case "f16", "F16", "float16":
		return F16, nil
	}
	return 0, fmt.Errorf("weights: dtype %q: want f32 or f16", s)
}

// decodeFloat32 converts little-endian F32, F16 or BF16 bytes to float32.
func decodeFloat32(data []byte, dt DType) []float32 {
	n := len(data) / dt.Size()
	out := make([]float32, n)
	switch dt {
	case F32:
		for i := range out {
			out[i] = math.Float32frombits(binary.LittleEndian.Uint32(data[4*i:]))
		}
	case F16:
		for i := range out {
			out[i] = f16ToF32(binary.LittleEndian.Uint16(data[2*i:]))
		}
	case BF16:
		for i := range out {
			out[i] = math.Float32frombits(uint32(binary.LittleEndian.Uint16(data[2*i:])) << 16)
		}
	}
	return out
}

// f16ToF32 converts an IEEE 754 binary16 to float32 exactly.
func f16ToF32(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp := uint32(h>>10) & 0x1f
	man := uint32(h) & 0x3ff
	switch {
	case exp == 0x1f: // Inf or NaN
		return math.Float32frombits(sign | 0xff<<23 | man<<13)
	case exp == 0:
		if man == 0 {
			return math.Float32frombits(sign)
		}
		// Subnormal: value = man * 2^-24.
		f := float32(man) * (1.0 / (1 << 24))
		if sign != 0 {
			f = -f
		}
		return f
	}
	return math.Float32frombits(sign | (exp+127-15)<<23 | man<<13)
}

// f32ToF16 converts float32 to binary16 rounding to nearest, ties to even.
// ok is false when a finite value overflows to infinity.
func f32ToF16(f float32) (h uint16, ok bool) {
	b := math.Float32bits(f)
	sign := uint16(b>>16) & 0x8000
	exp := int32(b>>23) & 0xff
	man := b & 0x7fffff
	if exp == 0xff { // Inf or NaN
		if man == 0 {
			return sign | 0x7c00, true
		}
		return sign | 0x7e00 | uint16(man>>13), true
	}
	e := exp - 127 + 15
	if e >= 0x1f {
		return sign | 0x7c00, false
	}
	if e <= 0 {
		// Subnormal or zero in binary16.
		if e < -10 {
			return sign, true
		}
		m := man | 0x800000 // implicit bit
		shift := uint32(14 - e)
		half := uint32(1) << (shift - 1)
		rest := m & (1<<shift - 1)
		r := m >> shift
		if rest > half || (rest == half && r&1 == 1) {
			r++
		}
		return sign | uint16(r), true
	}
	r := uint32(e)<<10 | man>>13
	rest := man & 0x1fff
	if rest > 0x1000 || (rest == 0x1000 && r&1 == 1) {
		r++ // may carry into the exponent, correctly
	}
	if r >= 0x7c00 {
		return sign | 0x7c00, false
	}
	return sign | uint16(r), true
}

// EncodeFloat32 encodes vals as little-endian F32, F16 or BF16 (both rounded
// to nearest, ties to even). A finite value that overflows F16 is an error.
func EncodeFloat32(vals []float32, dt DType) ([]byte, error) {
	out := make([]byte, 0, len(vals)*dt.Size())
	for i, v := range vals {
		switch dt {
		case F32:
			out = le.AppendUint32(out, math.Float32bits(v))
		case F16:
			h, ok := f32ToF16(v)
			if !ok {
				return nil, fmt.Errorf("weights: element %d = %v overflows F16", i, v)
			}
			out = le.AppendUint16(out, h)
		case BF16:
			b := math.Float32bits(v)
			if v != v { // NaN stays a quiet NaN
				out = le.AppendUint16(out, uint16(b>>16)|0x40)
				continue
			}
			out = le.AppendUint16(out, uint16((b+0x7fff+(b>>16)&1)>>16))
		default:
			return nil, fmt.Errorf("weights: dtype %v", dt)
		}
	}
	return out, nil
}
