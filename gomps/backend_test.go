//go:build cgo && !darwin

package gomps

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gomps/gomps/kernels/native/nativetest"
)

// TestBackendsConfigureTheEngine: Open asks the backend it runs on and
// configures the engine from the answers, with no knowledge of backend
// names: the CPU backend (padding free, one instance per thread) and the
// test's reference backend (padded rows, one single-threaded instance),
// both linked into this test binary, give the same scores.
func TestBackendsConfigureTheEngine(t *testing.T) {
	_, err := nativetest.Register()
	require.NoError(t, err)
	passages := []string{berlinP1, berlinP2, "", "Berlin"}
	scores := map[string][]float32{}
	for _, name := range []string{"cpu", "ref"} {
		t.Run("backend="+name, func(t *testing.T) {
			r := openTiny(t, WithBackend(name), WithThreads(2), WithNotices(nil))
			in := r.Info()
			assert.Equal(t, name, in.Backend)
			cfg := r.eng.Config()
			switch name {
			case "cpu":
				assert.Equal(t, 2, in.Instances, "CPU: one instance per thread")
				assert.False(t, cfg.PaddedBackend)
				assert.Equal(t, cfg.TokenBudget/8, cfg.BatchOverhead, "padding is free: full batches")
			case "ref":
				assert.Equal(t, 1, in.Instances, "ref: one instance")
				assert.Equal(t, 1, in.Threads, "ref: single-threaded")
				assert.True(t, cfg.PaddedBackend)
				assert.Equal(t, cfg.TokenBudget/32, cfg.BatchOverhead, "padding costs: batches of closer lengths")
			}
			s, err := r.Score(context.Background(), berlinQ, passages)
			require.NoError(t, err)
			scores[name] = s
		})
	}
	assert.InDeltaSlice(t, scores["cpu"], scores["ref"], 1e-4, "the same model on two backends")

	_, err = Open(context.Background(), tinyModelPath(t), WithBackend("tpu"))
	assert.ErrorIs(t, err, ErrNoBackend)
	assert.ErrorContains(t, err, `"tpu"`)
}
