package cpu

import (
	"crypto/sha256"
	"fmt"
	"hash/crc32"
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gomps/gomps/kernels/cpu/cputest"
)

var opShapes = []int{1, 7, 127, 128, 129, 512}

const (
	maxNMSE    = 1e-7
	guardLen   = 16
	guardValue = 0x7fc0dead // a NaN no op produces
)

// guarded returns an output slice of n floats with guard words on both sides.
func guarded(n int) (buf, out []float32) {
	buf = make([]float32, n+2*guardLen)
	for i := range buf {
		buf[i] = math.Float32frombits(guardValue)
	}
	return buf, buf[guardLen : guardLen+n]
}

// checkOut checks NaN/Inf first, then the guard words, then the error.
func checkOut(t *testing.T, buf []float32, n int, want []float64) {
	t.Helper()
	checkOutBound(t, buf, n, want, maxNMSE)
}

// checkOutBound is checkOut with its own NMSE bound; it returns the NMSE.
func checkOutBound(t *testing.T, buf []float32, n int, want []float64, bound float64) float64 {
	t.Helper()
	out := buf[guardLen : guardLen+n]
	for i, v := range out {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			require.Failf(t, "non-finite output", "out[%d] = %v", i, v)
		}
	}
	for i := 0; i < guardLen; i++ {
		assert.Equal(t, uint32(guardValue), math.Float32bits(buf[i]), "guard before output overwritten at %d", i)
		assert.Equal(t, uint32(guardValue), math.Float32bits(buf[guardLen+n+i]), "guard after output overwritten at %d", i)
	}
	e := cputest.NMSE(out, want)
	assert.LessOrEqual(t, e, bound, "normalized MSE")
	return e
}

func TestCRC32CMatchesCastagnoli(t *testing.T) {
	rng := cputest.NewRNG(1)
	data := make([]byte, 1<<20+13)
	for i := range data {
		data[i] = byte(rng.Uint32())
	}
	for _, n := range []int{0, 1, 7, 8, 9, 63, 64, 1000, len(data)} {
		want := crc32.Checksum(data[:n], crc32.MakeTable(crc32.Castagnoli))
		assert.Equal(t, want, CRC32C(data[:n], false), "hardware/default path, n=%d", n)
		assert.Equal(t, want, CRC32C(data[:n], true), "portable path, n=%d", n)
	}
	assert.Equal(t, uint32(0xe3069283), CRC32C([]byte("123456789"), false), "standard check value")
}

func TestSHA256MatchesStdlib(t *testing.T) {
	rng := cputest.NewRNG(2)
	data := make([]byte, 300)
	for i := range data {
		data[i] = byte(rng.Uint32())
	}
	for n := 0; n <= len(data); n++ {
		assert.Equal(t, sha256.Sum256(data[:n]), SHA256(data[:n]), "n=%d", n)
	}
}

func TestOpLinear(t *testing.T) {
	kinds := []struct {
		name string
		kind int
	}{{"qkv", LinearQKV}, {"attn_out", LinearAttnOut}, {"ffn_up", LinearFFNUp}, {"ffn_down", LinearFFNDown}}
	type dims struct{ rows, nIn, nOut int }
	var cases []dims
	for _, s := range opShapes {
		cases = append(cases, dims{s, 64, 96}, dims{7, s, s})
	}
	cases = append(cases, dims{1100, 384, 1152}) // more than one row chunk
	for _, c := range cases {
		rng := cputest.NewRNG(uint64(c.rows*1000003 + c.nIn*1009 + c.nOut))
		x := cputest.RandSlice(rng, c.rows*c.nIn, 1)
		w := cputest.RandSlice(rng, c.nOut*c.nIn, 1/math.Sqrt(float64(c.nIn)))
		b := cputest.RandSlice(rng, c.nOut, 0.5)
		res := cputest.RandSlice(rng, c.rows*c.nOut, 1)
		plain := cputest.Linear64(cputest.F64(x), c.rows, c.nIn, w, b, c.nOut)
		t.Run(fmt.Sprintf("op=linear/impl=ref/m=%d/k=%d/n=%d", c.rows, c.nIn, c.nOut), func(t *testing.T) {
			buf, out := guarded(c.rows * c.nOut)
			RefLinear(x, c.rows, c.nIn, w, b, c.nOut, out)
			checkOut(t, buf, len(out), plain)
		})
		for _, k := range kinds {
			t.Run(fmt.Sprintf("op=linear/impl=onednn/kind=%s/m=%d/k=%d/n=%d", k.name, c.rows, c.nIn, c.nOut), func(t *testing.T) {
				want := make([]float64, len(plain))
				for i, v := range plain {
					switch k.kind {
					case LinearFFNUp:
						v = cputest.GELU64(v)
					case LinearAttnOut, LinearFFNDown:
						v += float64(res[i])
					}
					want[i] = v
				}
				buf, out := guarded(c.rows * c.nOut)
				require.NoError(t, FastLinear(k.kind, x, c.rows, c.nIn, w, b, c.nOut, res, out, 2))
				checkOut(t, buf, len(out), want)
			})
		}
	}
}

func TestOpLayerNorm(t *testing.T) {
	type dims struct{ rows, n int }
	var cases []dims
	for _, s := range opShapes {
		cases = append(cases, dims{7, s}, dims{s, 384})
	}
	for _, c := range cases {
		for _, withRes := range []bool{false, true} {
			rng := cputest.NewRNG(uint64(c.rows*7919 + c.n))
			x := cputest.RandSlice(rng, c.rows*c.n, 2)
			for i := range x {
				x[i] += 3 // a non-zero mean exercises the centring
			}
			res := cputest.RandSlice(rng, c.rows*c.n, 1)
			gamma := cputest.RandSlice(rng, c.n, 0.2)
			for i := range gamma {
				gamma[i]++
			}
			beta := cputest.RandSlice(rng, c.n, 0.2)
			in := cputest.F64(x)
			var resArg []float32
			if withRes {
				resArg = res
				for i := range in {
					in[i] = float64(x[i] + res[i])
				}
			}
			want := cputest.LayerNorm64(in, c.rows, c.n, gamma, beta, 1e-12)
			impls := []struct {
				name string
				fn   func(x, res, gamma, beta []float32, eps float32, rows, n int, y []float32)
			}{{"ref", RefLayerNorm}, {"fast", FastLayerNorm}}
			for _, im := range impls {
				t.Run(fmt.Sprintf("op=layernorm/impl=%s/rows=%d/n=%d/residual=%v", im.name, c.rows, c.n, withRes), func(t *testing.T) {
					buf, out := guarded(c.rows * c.n)
					im.fn(x, resArg, gamma, beta, 1e-12, c.rows, c.n, out)
					checkOut(t, buf, len(out), want)
				})
			}
		}
	}
}

func TestOpSoftmax(t *testing.T) {
	for _, n := range opShapes {
		for _, valid := range []int{1, n/2 + 1, n} {
			rng := cputest.NewRNG(uint64(n*31 + valid))
			rows := 3
			x := cputest.RandSlice(rng, rows*n, 4)
			want := make([]float64, rows*n)
			for r := 0; r < rows; r++ {
				copy(want[r*n:], cputest.Softmax64(cputest.F64(x[r*n:r*n+valid])))
			}
			t.Run(fmt.Sprintf("op=softmax_masked/impl=ref/n=%d/valid=%d", n, valid), func(t *testing.T) {
				buf, out := guarded(rows * n)
				RefSoftmaxMasked(x, rows, n, valid, out)
				checkOut(t, buf, len(out), want)
			})
		}
		rng := cputest.NewRNG(uint64(n))
		x := cputest.RandSlice(rng, n, 30) // wide range: exp underflows for some entries
		t.Run(fmt.Sprintf("op=softmax/impl=fast/n=%d", n), func(t *testing.T) {
			buf, out := guarded(n)
			copy(out, x)
			FastSoftmaxRow(out)
			checkOut(t, buf, n, cputest.Softmax64(cputest.F64(x)))
		})
	}
}

func TestOpGELU(t *testing.T) {
	for _, n := range opShapes {
		rng := cputest.NewRNG(uint64(n + 5))
		x := cputest.RandSlice(rng, n, 3)
		want := make([]float64, n)
		for i, v := range x {
			want[i] = cputest.GELU64(float64(v))
		}
		t.Run(fmt.Sprintf("op=gelu_erf/impl=ref/n=%d", n), func(t *testing.T) {
			buf, out := guarded(n)
			RefGELU(x, out)
			checkOut(t, buf, n, want)
		})
	}
}

func TestOpEmbeddings(t *testing.T) {
	const hidden, vocab, types, batch = 96, 50, 2, 3
	for _, seq := range opShapes {
		rng := cputest.NewRNG(uint64(seq + 11))
		word := cputest.RandSlice(rng, vocab*hidden, 1)
		pos := cputest.RandSlice(rng, seq*hidden, 1)
		typ := cputest.RandSlice(rng, types*hidden, 1)
		gamma := cputest.RandSlice(rng, hidden, 0.1)
		beta := cputest.RandSlice(rng, hidden, 0.1)
		ids := make([]int32, batch*seq)
		tys := make([]int32, batch*seq)
		lengths := []int32{int32(seq), int32((seq + 1) / 2), 1}
		offsets := []int64{0}
		for b := 0; b < batch; b++ {
			offsets = append(offsets, offsets[b]+int64(lengths[b]))
			for t := 0; t < seq; t++ {
				ids[b*seq+t] = int32(rng.IntN(vocab))
				tys[b*seq+t] = int32(rng.IntN(types))
			}
		}
		want := make([]float64, batch*seq*hidden) // padded layout, zero rows for padding
		var packed []float64
		for b := 0; b < batch; b++ {
			for t := 0; t < int(lengths[b]); t++ {
				i := b*seq + t
				row := make([]float64, hidden)
				for j := range row {
					row[j] = float64(word[int(ids[i])*hidden+j]) + float64(typ[int(tys[i])*hidden+j]) + float64(pos[t*hidden+j])
				}
				ln := cputest.LayerNorm64(row, 1, hidden, gamma, beta, 1e-12)
				copy(want[i*hidden:], ln)
				packed = append(packed, ln...)
			}
		}
		t.Run(fmt.Sprintf("op=embeddings/impl=ref/seq=%d", seq), func(t *testing.T) {
			buf, out := guarded(len(want))
			RefEmbeddings(word, pos, typ, gamma, beta, 1e-12, hidden, ids, tys, batch, seq, lengths, out)
			checkOut(t, buf, len(out), want)
		})
		t.Run(fmt.Sprintf("op=embeddings/impl=fast/seq=%d", seq), func(t *testing.T) {
			buf, out := guarded(len(packed))
			FastEmbeddings(word, pos, typ, gamma, beta, 1e-12, hidden, ids, tys, batch, seq, offsets, 2, out)
			checkOut(t, buf, len(out), packed)
		})
	}
}

func TestOpAttention(t *testing.T) {
	// GOMPS_CPU_ATTENTION=sgemm is dnnl_sgemm + the C softmax; avx512 our f32
	// kernel for head_dim 32 (where the CPU has AVX-512), falling back to
	// sgemm for 24; "" the f32 default.
	for _, hd := range []int{32, 24} {
		for _, impl := range []string{"sgemm", "avx512", ""} {
			t.Setenv("GOMPS_CPU_ATTENTION", impl)
			testOpAttention(t, hd, impl)
		}
	}
}

func testOpAttention(t *testing.T, hd int, impl string) {
	const heads, batch = 3, 3
	H := heads * hd
	for _, seq := range opShapes {
		rng := cputest.NewRNG(uint64(seq + 17))
		qkv := cputest.RandSlice(rng, batch*seq*3*H, 1)
		lengths := []int32{int32(seq), int32((seq + 1) / 2), 1}
		offsets := []int64{0}
		var packedQKV []float32
		var wantPacked, wantCLS []float64
		wantPadded := make([]float64, batch*seq*H)
		for b := 0; b < batch; b++ {
			n := int(lengths[b])
			offsets = append(offsets, offsets[b]+int64(n))
			rowQKV := qkv[b*seq*3*H : (b*seq+n)*3*H]
			packedQKV = append(packedQKV, rowQKV...)
			o := cputest.Attention64(cputest.F64(rowQKV), n, heads, hd)
			copy(wantPadded[b*seq*H:], o)
			wantPacked = append(wantPacked, o...)
			wantCLS = append(wantCLS, o[:H]...)
		}
		t.Run(fmt.Sprintf("op=attention/impl=ref/d=%d/seq=%d", hd, seq), func(t *testing.T) {
			buf, out := guarded(len(wantPadded))
			RefAttention(qkv, batch, seq, heads, hd, lengths, out)
			checkOut(t, buf, len(out), wantPadded)
		})
		t.Run(fmt.Sprintf("op=attention/impl=fast_%s/d=%d/seq=%d", impl, hd, seq), func(t *testing.T) {
			buf, out := guarded(len(wantPacked))
			FastAttention(packedQKV, batch, offsets, heads, hd, false, seq, 2, out)
			checkOut(t, buf, len(out), wantPacked)
		})
		t.Run(fmt.Sprintf("op=attention/impl=fast_%s_cls/d=%d/seq=%d", impl, hd, seq), func(t *testing.T) {
			buf, out := guarded(len(wantCLS))
			FastAttention(packedQKV, batch, offsets, heads, hd, true, seq, 2, out)
			checkOut(t, buf, len(out), wantCLS)
		})
	}
}

func TestOpHead(t *testing.T) {
	for _, hidden := range opShapes {
		rng := cputest.NewRNG(uint64(hidden + 23))
		rows := 5
		cls := cputest.RandSlice(rng, rows*hidden, 1)
		pw := cputest.RandSlice(rng, hidden*hidden, 1/math.Sqrt(float64(hidden)))
		pb := cputest.RandSlice(rng, hidden, 0.1)
		cw := cputest.RandSlice(rng, hidden, 1)
		cb := cputest.RandSlice(rng, 1, 1)
		want := make([]float64, rows)
		for r := 0; r < rows; r++ {
			p := cputest.Linear64(cputest.F64(cls[r*hidden:(r+1)*hidden]), 1, hidden, pw, pb, hidden)
			for i := range p {
				p[i] = math.Tanh(p[i])
			}
			want[r] = cputest.Linear64(p, 1, hidden, cw, cb, 1)[0]
		}
		t.Run(fmt.Sprintf("op=head/impl=ref/hidden=%d", hidden), func(t *testing.T) {
			buf, out := guarded(rows)
			RefHead(cls, rows, hidden, pw, pb, cw, cb, out)
			checkOut(t, buf, rows, want)
		})
	}
}

func TestOpToBF16(t *testing.T) {
	// exact cases: representable, ties to even (down and up), just above a tie
	cases := map[uint32]uint16{
		0x3f800000: 0x3f80, // 1
		0x3f808000: 0x3f80, // tie, even below
		0x3f818000: 0x3f82, // tie, odd below: up
		0x3f808001: 0x3f81, // above the tie
		0xbf80ffff: 0xbf81, // negative, rounds away
		0x00000000: 0x0000,
		0x80000000: 0x8000,
	}
	for in, want := range cases {
		var out [1]uint16
		ToBF16([]float32{math.Float32frombits(in)}, out[:])
		assert.Equal(t, want, out[0], "bits %#08x", in)
	}
	// random values: within half a bf16 ulp, for every vector tail length
	for _, n := range opShapes {
		rng := cputest.NewRNG(uint64(n + 31))
		x := cputest.RandSlice(rng, n, 100)
		y := make([]uint16, n+2)
		y[n], y[n+1] = 0xdead, 0xbeef
		ToBF16(x, y[:n])
		assert.Equal(t, []uint16{0xdead, 0xbeef}, y[n:], "guard after output, n=%d", n)
		for i, v := range x {
			back := float64(math.Float32frombits(uint32(y[i]) << 16))
			assert.LessOrEqual(t, math.Abs(back-float64(v)), math.Abs(float64(v))/256+1e-30, "n=%d i=%d", n, i)
		}
	}
}
