package weights_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gomps/gomps/weights"
	"github.com/gomps/gomps/weights/weightstest"
)

// synthDir writes a synthetic model directory for o.
func synthDir(t *testing.T, o weightstest.Options) (string, map[string]weightstest.Tensor) {
	t.Helper()
	dir := t.TempDir()
	ts, err := weightstest.WriteHFDir(dir, o)
	require.NoError(t, err)
	return dir, ts
}

func tinyOpts(seed uint64) weightstest.Options {
	return weightstest.Options{Config: weightstest.TinyConfig(), Seed: seed}
}

func TestLoadHFDirVariants(t *testing.T) {
	t.Parallel()
	l4 := weightstest.TinyConfig()
	l4.NumLayers, l4.HiddenSize, l4.NumHeads, l4.IntermediateSize = 4, 48, 3, 96
	for _, c := range []struct {
		name string
		o    weightstest.Options
		head bool
	}{
		{"arch=seqcls/prefix=bert", tinyOpts(1), false},
		{"arch=seqcls/layernorm=gamma_beta", weightstest.Options{Config: weightstest.TinyConfig(), Seed: 2, GammaBeta: true}, false},
		{"arch=seqcls/storage=f16", weightstest.Options{Config: weightstest.TinyConfig(), Seed: 3, DType: weights.F16}, false},
		{"arch=seqcls/storage=bf16", weightstest.Options{Config: weightstest.TinyConfig(), Seed: 4, DType: weights.BF16}, false},
		{"arch=seqcls/position_ids=i64", weightstest.Options{Config: weightstest.TinyConfig(), Seed: 5, PositionIDs: true}, false},
		{"arch=seqcls/layers=4", weightstest.Options{Config: l4, Seed: 6}, false},
		{"arch=seqcls/head=replaced", tinyOpts(7), true},
		{"arch=bertmodel/prefix=none/head", weightstest.Options{Config: weightstest.TinyConfig(), Seed: 8, Architecture: "BertModel", PositionIDs: true}, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			dir, _ := synthDir(t, c.o)
			var opts []weights.LoadOption
			if c.head {
				hp := filepath.Join(t.TempDir(), "head.safetensors")
				_, err := weightstest.WriteHead(hp, c.o.Config.HiddenSize, 99)
				require.NoError(t, err)
				opts = append(opts, weights.WithHead(hp))
			}
			m, err := weights.LoadHFDir(dir, opts...)
			require.NoError(t, err)
			defer m.Close()
			assert.Equal(t, c.o.Config, m.Config, "config from config.json")
			assert.Equal(t, weightstest.Tokenizer(), m.Tokenizer, "tokenizer")
		})
	}
}

func TestLoadHFDirRejects(t *testing.T) {
	t.Parallel()
	tiny := weightstest.TinyConfig()
	extra := weights.STWrite{Name: "bert.encoder.layer.2.output.dense.bias", DType: "F32", Shape: []int64{32}, Data: make([]byte, 128)}
	i32 := weights.STWrite{Name: "bert.embeddings.word_embeddings.weight", DType: "I32", Shape: []int64{64, 32}, Data: make([]byte, 64*32*4)}
	for _, c := range []struct {
		name string
		o    weightstest.Options
		head bool
		rule error
		says string // the error names what and why
	}{
		{"why=architecture", weightstest.Options{Config: tiny, ConfigOverride: map[string]any{"architectures": []string{"RobertaForSequenceClassification"}}},
			false, weights.ErrUnsupportedModel, "RobertaForSequenceClassification is not supported"},
		{"why=two_architectures", weightstest.Options{Config: tiny, ConfigOverride: map[string]any{"architectures": []string{"BertModel", "BertForMaskedLM"}}},
			false, weights.ErrUnsupportedModel, "exactly one architecture"},
		{"why=no_architectures", weightstest.Options{Config: tiny, ConfigOverride: map[string]any{"architectures": nil}},
			false, weights.ErrUnsupportedModel, "architectures"},
		{"why=model_type", weightstest.Options{Config: tiny, ConfigOverride: map[string]any{"model_type": "roberta"}},
			false, weights.ErrUnsupportedModel, `"roberta" is not supported`},
		{"why=labels=2", weightstest.Options{Config: tiny, ConfigOverride: map[string]any{"id2label": map[string]string{"0": "no", "1": "yes"}}},
			false, weights.ErrUnsupportedModel, "with 2 labels is not supported"},
		{"why=labels=default_2", weightstest.Options{Config: tiny, ConfigOverride: map[string]any{"id2label": nil}},
			false, weights.ErrUnsupportedModel, "with 2 labels"},
		{"why=labels=num_labels_3", weightstest.Options{Config: tiny, ConfigOverride: map[string]any{"id2label": nil, "num_labels": 3}},
			false, weights.ErrUnsupportedModel, "with 3 labels"},
		{"why=position_embedding_type", weightstest.Options{Config: tiny, ConfigOverride: map[string]any{"position_embedding_type": "relative_key"}},
			false, weights.ErrUnsupportedModel, `"relative_key" is not supported`},
		{"why=hidden_act", weightstest.Options{Config: tiny, ConfigOverride: map[string]any{"hidden_act": "gelu_new"}},
			false, weights.ErrUnsupportedModel, `"gelu_new" is not supported`},
		{"why=decoder", weightstest.Options{Config: tiny, ConfigOverride: map[string]any{"is_decoder": true}},
			false, weights.ErrUnsupportedModel, "decoder"},
		{"why=config_range", weightstest.Options{Config: tiny, ConfigOverride: map[string]any{"num_attention_heads": 3}},
			false, weights.ErrUnsupportedModel, "not a multiple of num_heads"},
		{"why=bertmodel_without_head", weightstest.Options{Config: tiny, Architecture: "BertModel"},
			false, weights.ErrNeedHead, "BertModel encoder has no pooler/classifier"},
		{"why=missing_classifier", weightstest.Options{Config: tiny, Skip: []string{"classifier.weight"}},
			false, weights.ErrNeedHead, "classifier.weight"},
		{"why=missing_tensor", weightstest.Options{Config: tiny, Skip: []string{"encoder.layer.1.attention.self.key.bias"}},
			false, weights.ErrMissingTensor, "bert.encoder.layer.1.attention.self.key.bias"},
		{"why=shape", weightstest.Options{Config: tiny, ConfigOverride: map[string]any{"intermediate_size": 65}},
			false, weights.ErrTensorShape, "want [65 32] from config.json"},
		{"why=extra_layer", weightstest.Options{Config: tiny, Extra: []weights.STWrite{extra}},
			false, weights.ErrUnexpectedTensor, "encoder.layer.2.output.dense.bias"},
		{"why=int_weights", weightstest.Options{Config: tiny, Skip: []string{"embeddings.word_embeddings.weight"}, Extra: []weights.STWrite{i32}},
			false, weights.ErrSTUnsupportedType, "I32"},
		{"why=no_tokenizer_is_fine_until_write", weightstest.Options{Config: tiny, Tokenizer: []byte{}}, false, nil, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			dir, _ := synthDir(t, c.o)
			m, err := weights.LoadHFDir(dir)
			if c.rule == nil {
				require.NoError(t, err)
				defer m.Close()
				err = m.WriteNative(&strings.Builder{}, weights.NativeOptions{})
				assert.ErrorContains(t, err, "no tokenizer.json")
				return
			}
			require.Error(t, err)
			assert.Nil(t, m)
			assert.ErrorIs(t, err, c.rule, "rule")
			assert.ErrorContains(t, err, c.says, "message")
			assert.True(t, strings.HasPrefix(err.Error(), "weights: "), "component prefix: %v", err)
		})
	}
}

func TestLoadHFDirHeadProblems(t *testing.T) {
	t.Parallel()
	o := weightstest.Options{Config: weightstest.TinyConfig(), Architecture: "BertModel"}
	dir, _ := synthDir(t, o)
	bad := filepath.Join(t.TempDir(), "head.safetensors")
	_, err := weightstest.WriteHead(bad, 16, 1) // hidden 16, model has 32
	require.NoError(t, err)
	_, err = weights.LoadHFDir(dir, weights.WithHead(bad))
	assert.ErrorIs(t, err, weights.ErrTensorShape, "head of the wrong hidden size")
	assert.ErrorContains(t, err, "pooler.dense.weight")

	_, err = weights.LoadHFDir(dir, weights.WithHead(filepath.Join(t.TempDir(), "missing.safetensors")))
	assert.ErrorContains(t, err, "missing.safetensors")

	require.NoError(t, os.Remove(filepath.Join(dir, "model.safetensors")))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "pytorch_model.bin"), []byte("x"), 0o644))
	good := filepath.Join(t.TempDir(), "head.safetensors")
	_, err = weightstest.WriteHead(good, 32, 1)
	require.NoError(t, err)
	_, err = weights.LoadHFDir(dir, weights.WithHead(good))
	assert.ErrorContains(t, err, "only a single model.safetensors")
}
