// Package cputest holds what the CPU backend's tests share, internal and
// external: a minimal writer of the native weight format (weights/FORMAT.md,
// version 1) with seeded random models, so the tests do not depend on the
// weights package; a float64 reference of every op and of the whole forward
// pass; and the ISA expectation of the running process. Test support only.
package cputest

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gomps/gomps/kernels/cpu/isaexpect"
)

// NewRNG is the tests' seeded generator.
func NewRNG(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, 7)) }

// RandSlice is n values of N(0, scale^2).
func RandSlice(rng *rand.Rand, n int, scale float64) []float32 {
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(scale * rng.NormFloat64())
	}
	return x
}

// Level is the expectation for isa, the ISA oneDNN runs at in this process
// (cpu.OneDNNISA). Where GOMPS_EXPECT_ISA is set (a capped CI stage, a child
// of TestISACeilings: one ISA or several separated by commas), the ISA must
// be one of those.
func Level(t testing.TB, isa string) isaexpect.Level {
	t.Helper()
	if want := os.Getenv("GOMPS_EXPECT_ISA"); want != "" {
		require.Contains(t, strings.Split(want, ","), isa,
			"effective ISA under ONEDNN_MAX_CPU_ISA=%q", os.Getenv("ONEDNN_MAX_CPU_ISA"))
	}
	l, err := isaexpect.For(isa)
	require.NoError(t, err)
	return l
}

const fileAlign = 16384

// Config is a model shape and how its file is written (F16: dtype F16).
type Config struct {
	Vocab, Hidden, Layers, Heads, Inter, MaxPos, TypeVocab, PadID int
	Eps                                                           float64
	Name                                                          string
	F16                                                           bool
}

// Tensor is one tensor of a Model, in file order.
type Tensor struct {
	Name  string
	Shape [2]uint64 // {n, 0} for 1-D
	Data  []float32 // as the reader will see it (F16-rounded for F16 files)
}

// Model is a native weights file's content, as the reader must see it.
type Model struct {
	Cfg     Config
	Tensors []Tensor
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func alignUp(x uint64) uint64 { return (x + fileAlign - 1) / fileAlign * fileAlign }

// TensorSpecs lists the names and shapes FORMAT.md requires for cfg.
func TensorSpecs(cfg Config) []Tensor {
	H, I := uint64(cfg.Hidden), uint64(cfg.Inter)
	ts := []Tensor{
		{Name: "embeddings.word", Shape: [2]uint64{uint64(cfg.Vocab), H}},
		{Name: "embeddings.position", Shape: [2]uint64{uint64(cfg.MaxPos), H}},
		{Name: "embeddings.token_type", Shape: [2]uint64{uint64(cfg.TypeVocab), H}},
		{Name: "embeddings.ln.gamma", Shape: [2]uint64{H, 0}},
		{Name: "embeddings.ln.beta", Shape: [2]uint64{H, 0}},
	}
	for l := 0; l < cfg.Layers; l++ {
		p := fmt.Sprintf("layer.%d.", l)
		ts = append(ts,
			Tensor{Name: p + "qkv.weight", Shape: [2]uint64{3 * H, H}},
			Tensor{Name: p + "qkv.bias", Shape: [2]uint64{3 * H, 0}},
			Tensor{Name: p + "attn_out.weight", Shape: [2]uint64{H, H}},
			Tensor{Name: p + "attn_out.bias", Shape: [2]uint64{H, 0}},
			Tensor{Name: p + "attn_ln.gamma", Shape: [2]uint64{H, 0}},
			Tensor{Name: p + "attn_ln.beta", Shape: [2]uint64{H, 0}},
			Tensor{Name: p + "ffn_up.weight", Shape: [2]uint64{I, H}},
			Tensor{Name: p + "ffn_up.bias", Shape: [2]uint64{I, 0}},
			Tensor{Name: p + "ffn_down.weight", Shape: [2]uint64{H, I}},
			Tensor{Name: p + "ffn_down.bias", Shape: [2]uint64{H, 0}},
			Tensor{Name: p + "ffn_ln.gamma", Shape: [2]uint64{H, 0}},
			Tensor{Name: p + "ffn_ln.beta", Shape: [2]uint64{H, 0}},
		)
	}
	return append(ts,
		Tensor{Name: "pooler.weight", Shape: [2]uint64{H, H}},
		Tensor{Name: "pooler.bias", Shape: [2]uint64{H, 0}},
		Tensor{Name: "classifier.weight", Shape: [2]uint64{1, H}},
		Tensor{Name: "classifier.bias", Shape: [2]uint64{1, 0}},
	)
}

// Elems is the tensor's element count.
func (t Tensor) Elems() int {
	if t.Shape[1] == 0 {
		return int(t.Shape[0])
	}
	return int(t.Shape[0] * t.Shape[1])
}

// RandomModel fills every tensor with seeded values scaled so activations stay
// O(1) through the layers (weights ~ N(0, 1/fan_in), LayerNorm gamma near 1),
// and the classifier wide, which keeps the logits spread over a range where
// 1e-4 is a meaningful bound.
func RandomModel(cfg Config, seed uint64) *Model {
	rng := rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))
	m := &Model{Cfg: cfg, Tensors: TensorSpecs(cfg)}
	for i := range m.Tensors {
		t := &m.Tensors[i]
		t.Data = make([]float32, t.Elems())
		var scale, base float64
		switch {
		case t.Shape[1] != 0 && i < 3:
			scale = 0.5
		case t.Name == "classifier.weight":
			scale = 1 // logits with a spread of about 1
		case t.Shape[1] != 0:
			scale = 1 / math.Sqrt(float64(t.Shape[1]))
		case filepath.Ext(t.Name) == ".gamma":
			scale, base = 0.1, 1
		default:
			scale = 0.1
		}
		for j := range t.Data {
			t.Data[j] = float32(base + scale*rng.NormFloat64())
		}
		if cfg.F16 {
			for j, v := range t.Data {
				t.Data[j] = F16ToF32(F32ToF16(v))
			}
		}
	}
	return m
}

// Tensor returns the data of the named tensor; it panics if there is none.
func (m *Model) Tensor(name string) []float32 {
	for _, t := range m.Tensors {
		if t.Name == name {
			return t.Data
		}
	}
	panic("no tensor " + name)
}

// Encode returns the bytes of m as a native weights file.
func (m *Model) Encode() []byte {
	cfg := m.Cfg
	tok := []byte(`{"version":"1.0","model":{"type":"WordPiece"}}`)
	n := len(m.Tensors)
	headerSize := uint64(256 + 128*n)
	dataStart := alignUp(headerSize)
	esize := uint64(4)
	if cfg.F16 {
		esize = 2
	}
	end := dataStart + alignUp(uint64(len(tok)))
	offsets := make([]uint64, n)
	for i, t := range m.Tensors {
		offsets[i] = end
		end += alignUp(uint64(t.Elems()) * esize)
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
	for i, t := range m.Tensors {
		e := buf[256+128*i:]
		copy(e[:64], t.Name)
		ndim := uint32(2)
		if t.Shape[1] == 0 {
			ndim = 1
		}
		le.PutUint32(e[64:], ndim)
		le.PutUint64(e[72:], t.Shape[0])
		le.PutUint64(e[80:], t.Shape[1])
		le.PutUint64(e[88:], offsets[i])
		size := uint64(t.Elems()) * esize
		le.PutUint64(e[96:], size)
		d := buf[offsets[i] : offsets[i]+size]
		for j, v := range t.Data {
			if cfg.F16 {
				le.PutUint16(d[2*j:], F32ToF16(v))
			} else {
				le.PutUint32(d[4*j:], math.Float32bits(v))
			}
		}
		le.PutUint32(e[104:], crc32.Checksum(d, castagnoli))
	}
	ResealHeader(buf)
	return buf
}

// ResealHeader recomputes the header CRC after buf's header was edited.
func ResealHeader(buf []byte) {
	hs := binary.LittleEndian.Uint32(buf[12:])
	binary.LittleEndian.PutUint32(buf[16:], 0)
	binary.LittleEndian.PutUint32(buf[16:], crc32.Checksum(buf[:hs], castagnoli))
}

// Write writes m as dir/model.gomps and returns the path.
func (m *Model) Write(t testing.TB, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "model.gomps")
	require.NoError(t, os.WriteFile(path, m.Encode(), 0o644))
	return path
}

// F32ToF16 rounds to the nearest IEEE half (ties to even).
func F32ToF16(f float32) uint16 {
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

// F16ToF32 widens an IEEE half exactly.
func F16ToF32(h uint16) float32 {
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

// The float64 reference of every op and of the whole forward pass, written
// from the model's definition (Hugging Face BertForSequenceClassification),
// against which both C paths are checked.

func F64(x []float32) []float64 {
	y := make([]float64, len(x))
	for i, v := range x {
		y[i] = float64(v)
	}
	return y
}

// Linear64 is y[rows, nOut] = x W^T + b (b may be nil), W [nOut, nIn].
func Linear64(x []float64, rows, nIn int, w, b []float32, nOut int) []float64 {
	y := make([]float64, rows*nOut)
	for r := 0; r < rows; r++ {
		for o := 0; o < nOut; o++ {
			acc := 0.0
			for k := 0; k < nIn; k++ {
				acc += x[r*nIn+k] * float64(w[o*nIn+k])
			}
			if b != nil {
				acc += float64(b[o])
			}
			y[r*nOut+o] = acc
		}
	}
	return y
}

// LayerNorm64 normalizes each row of n (biased variance, eps inside the root).
func LayerNorm64(x []float64, rows, n int, gamma, beta []float32, eps float64) []float64 {
	y := make([]float64, rows*n)
	for r := 0; r < rows; r++ {
		row := x[r*n : (r+1)*n]
		mean := 0.0
		for _, v := range row {
			mean += v
		}
		mean /= float64(n)
		variance := 0.0
		for _, v := range row {
			variance += (v - mean) * (v - mean)
		}
		variance /= float64(n)
		rstd := 1 / math.Sqrt(variance+eps)
		for j, v := range row {
			y[r*n+j] = (v-mean)*rstd*float64(gamma[j]) + float64(beta[j])
		}
	}
	return y
}

// GELU64 is the exact (erf) GELU.
func GELU64(x float64) float64 { return 0.5 * x * (1 + math.Erf(x/math.Sqrt2)) }

// Softmax64 is the softmax of x.
func Softmax64(x []float64) []float64 {
	mx := math.Inf(-1)
	for _, v := range x {
		mx = math.Max(mx, v)
	}
	y := make([]float64, len(x))
	sum := 0.0
	for i, v := range x {
		y[i] = math.Exp(v - mx)
		sum += y[i]
	}
	for i := range y {
		y[i] /= sum
	}
	return y
}

// Attention64 is attention for one row of length n: qkv is [n, 3H].
func Attention64(qkv []float64, n, heads, hd int) []float64 {
	H := heads * hd
	out := make([]float64, n*H)
	s := make([]float64, n)
	for h := 0; h < heads; h++ {
		for i := 0; i < n; i++ {
			for j := 0; j < n; j++ {
				dot := 0.0
				for d := 0; d < hd; d++ {
					dot += qkv[i*3*H+h*hd+d] * qkv[j*3*H+H+h*hd+d]
				}
				s[j] = dot / math.Sqrt(float64(hd))
			}
			p := Softmax64(s[:n])
			for d := 0; d < hd; d++ {
				acc := 0.0
				for j := 0; j < n; j++ {
					acc += p[j] * qkv[j*3*H+2*H+h*hd+d]
				}
				out[i*H+h*hd+d] = acc
			}
		}
	}
	return out
}

// Forward64 is the logit of one row (its real tokens only).
func Forward64(m *Model, ids, types []int32) float64 {
	c := m.Cfg
	H, I, n := c.Hidden, c.Inter, len(ids)
	word, pos, typ := m.Tensor("embeddings.word"), m.Tensor("embeddings.position"), m.Tensor("embeddings.token_type")
	x := make([]float64, n*H)
	for t := 0; t < n; t++ {
		for j := 0; j < H; j++ {
			x[t*H+j] = float64(word[int(ids[t])*H+j]) + float64(typ[int(types[t])*H+j]) + float64(pos[t*H+j])
		}
	}
	x = LayerNorm64(x, n, H, m.Tensor("embeddings.ln.gamma"), m.Tensor("embeddings.ln.beta"), c.Eps)
	for l := 0; l < c.Layers; l++ {
		p := "layer." + itoa(l) + "."
		qkv := Linear64(x, n, H, m.Tensor(p+"qkv.weight"), m.Tensor(p+"qkv.bias"), 3*H)
		a := Attention64(qkv, n, c.Heads, H/c.Heads)
		o := Linear64(a, n, H, m.Tensor(p+"attn_out.weight"), m.Tensor(p+"attn_out.bias"), H)
		for i := range o {
			o[i] += x[i]
		}
		x = LayerNorm64(o, n, H, m.Tensor(p+"attn_ln.gamma"), m.Tensor(p+"attn_ln.beta"), c.Eps)
		u := Linear64(x, n, H, m.Tensor(p+"ffn_up.weight"), m.Tensor(p+"ffn_up.bias"), I)
		for i := range u {
			u[i] = GELU64(u[i])
		}
		d := Linear64(u, n, I, m.Tensor(p+"ffn_down.weight"), m.Tensor(p+"ffn_down.bias"), H)
		for i := range d {
			d[i] += x[i]
		}
		x = LayerNorm64(d, n, H, m.Tensor(p+"ffn_ln.gamma"), m.Tensor(p+"ffn_ln.beta"), c.Eps)
	}
	pooled := Linear64(x[:H], 1, H, m.Tensor("pooler.weight"), m.Tensor("pooler.bias"), H)
	for i := range pooled {
		pooled[i] = math.Tanh(pooled[i])
	}
	return Linear64(pooled, 1, H, m.Tensor("classifier.weight"), m.Tensor("classifier.bias"), 1)[0]
}

func itoa(i int) string {
	if i < 10 {
		return string(rune('0' + i))
	}
	return itoa(i/10) + string(rune('0'+i%10))
}

// NMSE is sum((got-want)^2) / sum(want^2).
func NMSE(got []float32, want []float64) float64 {
	num, den := 0.0, 0.0
	for i, w := range want {
		d := float64(got[i]) - w
		num += d * d
		den += w * w
	}
	if den == 0 {
		return num
	}
	return num / den
}
