package cpu

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// A minimal, test-only writer of the native weight format (weights/FORMAT.md,
// version 1), so these tests do not depend on the weights package.

const fileAlign = 16384

type nativeConfig struct {
	Vocab, Hidden, Layers, Heads, Inter, MaxPos, TypeVocab, PadID int
	Eps                                                           float64
	Name                                                          string
	F16                                                           bool
}

type testTensor struct {
	name  string
	shape [2]uint64 // {n, 0} for 1-D
	data  []float32 // as the reader will see it (F16-rounded for F16 files)
}

type testModel struct {
	cfg     nativeConfig
	tensors []testTensor
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func alignUp(x uint64) uint64 { return (x + fileAlign - 1) / fileAlign * fileAlign }

// tensorSpecs lists the names and shapes FORMAT.md requires for cfg.
func tensorSpecs(cfg nativeConfig) []testTensor {
	H, I := uint64(cfg.Hidden), uint64(cfg.Inter)
	ts := []testTensor{
		{name: "embeddings.word", shape: [2]uint64{uint64(cfg.Vocab), H}},
		{name: "embeddings.position", shape: [2]uint64{uint64(cfg.MaxPos), H}},
		{name: "embeddings.token_type", shape: [2]uint64{uint64(cfg.TypeVocab), H}},
		{name: "embeddings.ln.gamma", shape: [2]uint64{H, 0}},
		{name: "embeddings.ln.beta", shape: [2]uint64{H, 0}},
	}
	for l := 0; l < cfg.Layers; l++ {
		p := fmt.Sprintf("layer.%d.", l)
		ts = append(ts,
			testTensor{name: p + "qkv.weight", shape: [2]uint64{3 * H, H}},
			testTensor{name: p + "qkv.bias", shape: [2]uint64{3 * H, 0}},
			testTensor{name: p + "attn_out.weight", shape: [2]uint64{H, H}},
			testTensor{name: p + "attn_out.bias", shape: [2]uint64{H, 0}},
			testTensor{name: p + "attn_ln.gamma", shape: [2]uint64{H, 0}},
			testTensor{name: p + "attn_ln.beta", shape: [2]uint64{H, 0}},
			testTensor{name: p + "ffn_up.weight", shape: [2]uint64{I, H}},
			testTensor{name: p + "ffn_up.bias", shape: [2]uint64{I, 0}},
			testTensor{name: p + "ffn_down.weight", shape: [2]uint64{H, I}},
			testTensor{name: p + "ffn_down.bias", shape: [2]uint64{H, 0}},
			testTensor{name: p + "ffn_ln.gamma", shape: [2]uint64{H, 0}},
			testTensor{name: p + "ffn_ln.beta", shape: [2]uint64{H, 0}},
		)
	}
	return append(ts,
		testTensor{name: "pooler.weight", shape: [2]uint64{H, H}},
		testTensor{name: "pooler.bias", shape: [2]uint64{H, 0}},
		testTensor{name: "classifier.weight", shape: [2]uint64{1, H}},
		testTensor{name: "classifier.bias", shape: [2]uint64{1, 0}},
	)
}

func (t testTensor) elems() int {
	if t.shape[1] == 0 {
		return int(t.shape[0])
	}
	return int(t.shape[0] * t.shape[1])
}

// randomModel fills every tensor with seeded values scaled so activations stay
// O(1) through the layers (weights ~ N(0, 1/fan_in), LayerNorm gamma near 1),
// and the classifier wide, which keeps the logits spread over a range where
// 1e-4 is a meaningful bound.
func randomModel(cfg nativeConfig, seed uint64) *testModel {
	rng := rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))
	m := &testModel{cfg: cfg, tensors: tensorSpecs(cfg)}
	for i := range m.tensors {
		t := &m.tensors[i]
		t.data = make([]float32, t.elems())
		var scale, base float64
		switch {
		case t.shape[1] != 0 && i < 3:
			scale = 0.5
		case t.name == "classifier.weight":
			scale = 1 // logits with a spread of about 1
		case t.shape[1] != 0:
			scale = 1 / math.Sqrt(float64(t.shape[1]))
		case filepath.Ext(t.name) == ".gamma":
			scale, base = 0.1, 1
		default:
			scale = 0.1
		}
		for j := range t.data {
			t.data[j] = float32(base + scale*rng.NormFloat64())
		}
		if cfg.F16 {
			for j, v := range t.data {
				t.data[j] = f16ToF32(f32ToF16(v))
			}
		}
	}
	return m
}

func (m *testModel) tensor(name string) []float32 {
	for _, t := range m.tensors {
		if t.name == name {
			return t.data
		}
	}
	panic("no tensor " + name)
}

// encode returns the bytes of m as a native weights file.
func (m *testModel) encode() []byte {
	cfg := m.cfg
	tok := []byte(`{"version":"1.0","model":{"type":"WordPiece"}}`)
	n := len(m.tensors)
	headerSize := uint64(256 + 128*n)
	dataStart := alignUp(headerSize)
	esize := uint64(4)
	if cfg.F16 {
		esize = 2
	}
	end := dataStart + alignUp(uint64(len(tok)))
	offsets := make([]uint64, n)
	for i, t := range m.tensors {
		offsets[i] = end
		end += alignUp(uint64(t.elems()) * esize)
	}
	buf := make([]byte, end)
	le := binary.LittleEndian
	copy(buf[0:], "GOMPSWTS")
	le.PutUint32(buf[8:], 1)
	le.PutUint32(buf[12:], uint32(headerSize))
	le.PutUint32(buf[20:], fileAlign)
	le.PutUint64(buf[24:], end)
	if cfg.F16 {
		le.PutUint32(buf[32:], 1)
	}
	le.PutUint32(buf[36:], uint32(n))
	le.PutUint32(buf[40:], 1)
	for i, v := range []int{cfg.Vocab, cfg.Hidden, cfg.Layers, cfg.Heads, cfg.Inter, cfg.MaxPos, cfg.TypeVocab, cfg.PadID} {
		le.PutUint32(buf[44+4*i:], uint32(v))
	}
	le.PutUint64(buf[80:], math.Float64bits(cfg.Eps))
	le.PutUint64(buf[88:], dataStart)
	le.PutUint64(buf[96:], uint64(len(tok)))
	sum := sha256.Sum256(tok)
	copy(buf[104:], sum[:])
	copy(buf[168:248], cfg.Name)
	copy(buf[dataStart:], tok)
	for i, t := range m.tensors {
		e := buf[256+128*i:]
		copy(e[:64], t.name)
		ndim := uint32(2)
		if t.shape[1] == 0 {
			ndim = 1
		}
		le.PutUint32(e[64:], ndim)
		le.PutUint64(e[72:], t.shape[0])
		le.PutUint64(e[80:], t.shape[1])
		le.PutUint64(e[88:], offsets[i])
		size := uint64(t.elems()) * esize
		le.PutUint64(e[96:], size)
		d := buf[offsets[i] : offsets[i]+size]
		for j, v := range t.data {
			if cfg.F16 {
				le.PutUint16(d[2*j:], f32ToF16(v))
			} else {
				le.PutUint32(d[4*j:], math.Float32bits(v))
			}
		}
		le.PutUint32(e[104:], crc32.Checksum(d, castagnoli))
	}
	resealHeader(buf)
	return buf
}

// resealHeader recomputes the header CRC after buf's header was edited.
func resealHeader(buf []byte) {
	hs := binary.LittleEndian.Uint32(buf[12:])
	binary.LittleEndian.PutUint32(buf[16:], 0)
	binary.LittleEndian.PutUint32(buf[16:], crc32.Checksum(buf[:hs], castagnoli))
}

func (m *testModel) write(t testing.TB, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "model.gomps")
	require.NoError(t, os.WriteFile(path, m.encode(), 0o644))
	return path
}

// f32ToF16 rounds to the nearest IEEE half (ties to even).
func f32ToF16(f float32) uint16 {
	b := math.Float32bits(f)
	sign := uint16(b>>16) & 0x8000
	exp := int(b>>23&0xff) - 127 + 15
	man := b & 0x7fffff
	switch {
	case b&0x7fffffff == 0:
		return sign
	case exp >= 31:
		return sign | 0x7c00
	case exp <= 0:
		if exp < -10 {
			return sign
		}
		man |= 0x800000
		shift := uint(14 - exp)
		half := uint32(1) << (shift - 1)
		r := man >> shift
		if rem := man & (1<<shift - 1); rem > half || (rem == half && r&1 == 1) {
			r++
		}
		return sign | uint16(r)
	}
	r := uint32(exp)<<10 | man>>13
	if rem := man & 0x1fff; rem > 0x1000 || (rem == 0x1000 && r&1 == 1) {
		r++
	}
	return sign | uint16(r)
}

func f16ToF32(h uint16) float32 {
	sign := uint32(h&0x8000) << 16
	exp := uint32(h>>10) & 0x1f
	man := uint32(h & 0x3ff)
	switch {
	case exp == 0x1f:
		return math.Float32frombits(sign | 0x7f800000 | man<<13)
	case exp == 0:
		v := float32(float64(man) * math.Pow(2, -24))
		if sign != 0 {
			v = -v
		}
		return v
	}
	return math.Float32frombits(sign | (exp+112)<<23 | man<<13)
}
