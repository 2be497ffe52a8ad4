//go:build cgo

package gomps

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gomps/gomps/gomps/internal/engine"
)

func TestWithRouting(t *testing.T) {
	r := openTiny(t, WithInstances(2), WithThreads(2))
	assert.Equal(t, "least-loaded", r.Info().Routing, "the default")
	assert.Equal(t, engine.RouteLeastLoaded, r.eng.Config().Routing)

	// Round robin: sequential one-batch calls go to the instances in turn,
	// busy or not, so each gets exactly half.
	for _, mode := range []string{"adaptive", "fixed"} {
		t.Run("batcher="+mode, func(t *testing.T) {
			rr := openTiny(t, WithInstances(2), WithThreads(2), WithRouting("round-robin"), WithBatcher(mode), WithBatchTimeout(time.Millisecond))
			assert.Equal(t, "round-robin", rr.Info().Routing)
			require.Equal(t, engine.RouteRoundRobin, rr.eng.Config().Routing, "wired into the engine")
			const calls = 8
			for i := 0; i < calls; i++ {
				_, err := scorePairs(rr, context.Background(), []Pair{{Query: berlinQ, Passage: berlinP1}})
				require.NoError(t, err)
			}
			st := rr.Stats()
			require.Len(t, st.Instances, 2)
			assert.Equal(t, uint64(calls/2), st.Instances[0].Batches, "instance 0 gets every other batch")
			assert.Equal(t, uint64(calls/2), st.Instances[1].Batches, "instance 1 gets every other batch")
		})
	}

	_, err := Open(context.Background(), tinyModelPath(t), WithRouting("random"))
	require.Error(t, err)
	assert.Contains(t, err.Error(), `routing "random"`)
}

func TestWithBatchTimeout(t *testing.T) {
	r := openTiny(t, WithBatcher("fixed"))
	assert.Equal(t, 100*time.Millisecond, r.Info().BatchWait, "the default")

	// A lone pair fills no batch, so the fixed batcher sends it when the
	// timeout passes: the call takes at least the timeout.
	const long = 400 * time.Millisecond
	slow := openTiny(t, WithBatcher("fixed"), WithBatchTimeout(long))
	require.Equal(t, long, slow.eng.Config().Timeout, "wired into the engine")
	assert.Equal(t, long, slow.Info().BatchWait)
	pair := []Pair{{Query: berlinQ, Passage: berlinP2}}
	_, err := scorePairs(slow, context.Background(), pair) // warm-up
	require.NoError(t, err)
	start := time.Now()
	want, err := scorePairs(slow, context.Background(), pair)
	require.NoError(t, err)
	assert.GreaterOrEqual(t, time.Since(start), long, "a partial batch waits for the timeout")

	fast := openTiny(t, WithBatcher("fixed"), WithBatchTimeout(time.Millisecond))
	_, err = scorePairs(fast, context.Background(), pair)
	require.NoError(t, err)
	start = time.Now()
	got, err := scorePairs(fast, context.Background(), pair)
	require.NoError(t, err)
	assert.Less(t, time.Since(start), long/2, "a 1ms timeout sends the partial batch at once")
	assert.Equal(t, want, got, "the timeout changes when, not what")

	for _, d := range []time.Duration{0, -time.Millisecond, 2 * time.Minute} {
		_, err := Open(context.Background(), tinyModelPath(t), WithBatchTimeout(d))
		require.Error(t, err, "%v", d)
		assert.Contains(t, err.Error(), "batch timeout")
	}
}
