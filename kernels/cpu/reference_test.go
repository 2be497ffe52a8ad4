package cpu

import "math"

// A float64 reference of every op and of the whole forward pass, written from
// the model's definition (Hugging Face BertForSequenceClassification), against
// which both C paths are checked.

func f64(x []float32) []float64 {
	y := make([]float64, len(x))
	for i, v := range x {
		y[i] = float64(v)
	}
	return y
}

func refLinear64(x []float64, rows, nIn int, w, b []float32, nOut int) []float64 {
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

func refLayerNorm64(x []float64, rows, n int, gamma, beta []float32, eps float64) []float64 {
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

func refGELU64(x float64) float64 { return 0.5 * x * (1 + math.Erf(x/math.Sqrt2)) }

func refSoftmax64(x []float64) []float64 {
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

// refAttention64 is attention for one row of length n: qkv is [n, 3H].
func refAttention64(qkv []float64, n, heads, hd int) []float64 {
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
			p := refSoftmax64(s[:n])
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

// refForward64 is the logit of one row (its real tokens only).
func refForward64(m *testModel, ids, types []int32) float64 {
	c := m.cfg
	H, I, n := c.Hidden, c.Inter, len(ids)
	word, pos, typ := m.tensor("embeddings.word"), m.tensor("embeddings.position"), m.tensor("embeddings.token_type")
	x := make([]float64, n*H)
	for t := 0; t < n; t++ {
		for j := 0; j < H; j++ {
			x[t*H+j] = float64(word[int(ids[t])*H+j]) + float64(typ[int(types[t])*H+j]) + float64(pos[t*H+j])
		}
	}
	x = refLayerNorm64(x, n, H, m.tensor("embeddings.ln.gamma"), m.tensor("embeddings.ln.beta"), c.Eps)
	for l := 0; l < c.Layers; l++ {
		p := "layer." + itoa(l) + "."
		qkv := refLinear64(x, n, H, m.tensor(p+"qkv.weight"), m.tensor(p+"qkv.bias"), 3*H)
		a := refAttention64(qkv, n, c.Heads, H/c.Heads)
		o := refLinear64(a, n, H, m.tensor(p+"attn_out.weight"), m.tensor(p+"attn_out.bias"), H)
		for i := range o {
			o[i] += x[i]
		}
		x = refLayerNorm64(o, n, H, m.tensor(p+"attn_ln.gamma"), m.tensor(p+"attn_ln.beta"), c.Eps)
		u := refLinear64(x, n, H, m.tensor(p+"ffn_up.weight"), m.tensor(p+"ffn_up.bias"), I)
		for i := range u {
			u[i] = refGELU64(u[i])
		}
		d := refLinear64(u, n, I, m.tensor(p+"ffn_down.weight"), m.tensor(p+"ffn_down.bias"), H)
		for i := range d {
			d[i] += x[i]
		}
		x = refLayerNorm64(d, n, H, m.tensor(p+"ffn_ln.gamma"), m.tensor(p+"ffn_ln.beta"), c.Eps)
	}
	pooled := refLinear64(x[:H], 1, H, m.tensor("pooler.weight"), m.tensor("pooler.bias"), H)
	for i := range pooled {
		pooled[i] = math.Tanh(pooled[i])
	}
	return refLinear64(pooled, 1, H, m.tensor("classifier.weight"), m.tensor("classifier.bias"), 1)[0]
}

func itoa(i int) string {
	if i < 10 {
		return string(rune('0' + i))
	}
	return itoa(i/10) + string(rune('0'+i%10))
}

// nmse is sum((got-want)^2) / sum(want^2).
func nmse(got []float32, want []float64) float64 {
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
