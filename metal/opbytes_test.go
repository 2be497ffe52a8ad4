package metal

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestOpBytes(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		op         string
		f16        bool
		rows, cols int
		want       int64
	}{
		// 4096 tokens x 384: in + out (2 x 6 MiB) + gamma, beta
		{"layer_norm", false, 4096, 384, 4 * (2*4096*384 + 2*384)},
		{"layer_norm", true, 4096, 384, 2 * (2*4096*384 + 2*384)},
		{"bias_gelu", false, 4096, 1536, 4 * (2*4096*1536 + 1536)},
		{"masked_softmax", false, 7, 129, 4*2*7*129 + 4},
		// ids + types (8 B per token), word + position + type rows and the output, gamma + beta
		{"embed", false, 128, 384, 8*128 + 4*(4*128*384+2*384)},
		{"embed", true, 1, 1, 8 + 2*(4+2)},
	} {
		got, err := OpBytes(c.op, c.f16, c.rows, c.cols)
		require.NoError(t, err, c.op)
		assert.Equal(t, c.want, got, "op=%s/f16=%v/rows=%d/cols=%d", c.op, c.f16, c.rows, c.cols)
	}
	for _, op := range Ops {
		_, err := OpBytes(op, false, 0, 4)
		assert.Error(t, err, "op=%s rows=0", op)
	}
	_, err := OpBytes("softmax", false, 1, 1)
	assert.ErrorContains(t, err, `unknown op "softmax"`)
}
