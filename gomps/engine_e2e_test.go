//go:build cgo

package gomps

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// e2eTolerance bounds |batched - unbatched| for one logit of the real-shape
// model in f32. The CPU backend never computes padding, but the row count
// and padded length of a batch change the shapes oneDNN's sgemm sees (M =
// rows x seq), and with them its blocking and so the order of the float
// additions in the hidden-size dot products: scores are not promised
// bit-identical across batch compositions. The observed spread is logged;
// 1e-5 is about 10 ulps at the logits' magnitude (|logit| <= 12).
const e2eTolerance = 1e-5

// TestEngineEndToEndRealModel sends random subsets of real DL19 pairs from
// 64 concurrent callers through Score of the real-shape test model (the
// default adaptive batcher, 2 instances over the thread budget) and checks
// every score against the same pair scored alone (a batch of one row) by
// the same Reranker before the concurrent phase: right caller, right order,
// within e2eTolerance. Stats must show that batches held pairs of several
// requests and more than one row, so batching was really exercised.
func TestEngineEndToEndRealModel(t *testing.T) {
	model := testModelPath(t)
	reqs := loadDL19(t, 0)
	r, err := Open(context.Background(), model, WithInstances(2), WithNotices(nil))
	require.NoError(t, err)
	defer func() { require.NoError(t, r.Close()) }()
	ctx := context.Background()

	// The reference pool: 8 queries spread over DL19, 24 passages each
	// (random picks from the query's first request), each scored alone.
	const queries, perQuery = 8, 24
	rng := rand.New(rand.NewPCG(19, 64))
	type pool struct {
		query    string
		passages []string
		want     []float32
	}
	pools := make([]pool, queries)
	for i := range pools {
		src := reqs[(i*len(reqs)/queries)&^1] // even index: a query's first request
		p := pool{query: src.query}
		for _, k := range rng.Perm(len(src.passages))[:perQuery] {
			p.passages = append(p.passages, src.passages[k])
			got, err := r.Score(ctx, src.query, []string{src.passages[k]})
			require.NoError(t, err, "unbatched reference")
			p.want = append(p.want, got[0])
		}
		pools[i] = p
	}
	before := r.Stats()

	const callers, rounds = 64, 2
	type mismatch struct {
		caller, round, k int
		got, want        float32
	}
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		maxDiff float64
		exact   int
		total   int
		bad     []mismatch
	)
	for c := range callers {
		crng := rand.New(rand.NewPCG(uint64(c), 7))
		wg.Go(func() {
			for round := range rounds {
				p := pools[crng.IntN(len(pools))]
				idx := crng.Perm(len(p.passages))[:1+crng.IntN(len(p.passages))]
				passages := make([]string, len(idx))
				for k, j := range idx {
					passages[k] = p.passages[j]
				}
				got, err := r.Score(ctx, p.query, passages)
				if !assert.NoError(t, err, "caller=%d/round=%d", c, round) {
					return
				}
				if !assert.Len(t, got, len(idx), "caller=%d/round=%d", c, round) {
					return
				}
				mu.Lock()
				for k, j := range idx {
					d := math.Abs(float64(got[k]) - float64(p.want[j]))
					maxDiff = max(maxDiff, d)
					total++
					if got[k] == p.want[j] {
						exact++
					}
					if d > e2eTolerance {
						bad = append(bad, mismatch{c, round, k, got[k], p.want[j]})
					}
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	after := r.Stats()
	t.Logf("%d scores from %d callers x %d rounds: max |batched - alone| = %.3g, %d bit-identical; %d batches, %d mixed, %.1f rows/batch",
		total, callers, rounds, maxDiff, exact, after.Batches-before.Batches, after.MixedBatches-before.MixedBatches,
		float64(after.Rows-before.Rows)/float64(max(after.Batches-before.Batches, 1)))
	for i, m := range bad {
		if i == 10 {
			t.Errorf("... and %d more", len(bad)-10)
			break
		}
		t.Errorf("caller=%d/round=%d/pair=%d: got %v, scored alone %v (diff %.3g > %g)",
			m.caller, m.round, m.k, m.got, m.want, math.Abs(float64(m.got)-float64(m.want)), e2eTolerance)
	}
	assert.Positive(t, total, "scores checked")
	assert.Greater(t, after.MixedBatches, before.MixedBatches, "some batch mixed several requests")
	assert.Greater(t, after.Rows-before.Rows, after.Batches-before.Batches, "batches averaged more than one row")
	assert.Equal(t, before.PairsScored+uint64(total), after.PairsScored, "every pair reached the backend once")
}

// procMemory reads VmRSS and VmHWM (bytes) from /proc/self/status.
func procMemory(t testing.TB) (rss, hwm int64) {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		missing(t, true, "no /proc/self/status: %v", err)
	}
	rss, hwm = -1, -1
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		key, rest, _ := strings.Cut(sc.Text(), ":")
		f := strings.Fields(rest)
		if len(f) != 2 || f[1] != "kB" || (key != "VmRSS" && key != "VmHWM") {
			continue
		}
		kb, err := strconv.ParseInt(f[0], 10, 64)
		require.NoError(t, err, "%s", sc.Text())
		if key == "VmRSS" {
			rss = kb << 10
		} else {
			hwm = kb << 10
		}
	}
	require.True(t, rss > 0 && hwm > 0, "VmRSS/VmHWM not found in /proc/self/status")
	return rss, hwm
}

// rssChildEnv makes the test binary a TestEngineRSS child: it opens the
// real-shape model with that many instances, warms every instance with a
// 64-pair DL19 request and prints "rss <VmRSS> <VmHWM>".
const rssChildEnv = "GOMPS_RSS_CHILD_INSTANCES"

// TestEngineRSS measures resident memory after Open and one warm batch per
// instance, with 1 and with 2 instances, each in a fresh process (VmHWM is
// per process). The weights are loaded once and shared, so the second
// instance may add its scratch memory only: less than half the weights
// file. Run without -race for the figures (the race detector's shadow
// memory inflates them).
func TestEngineRSS(t *testing.T) {
	if v := os.Getenv(rssChildEnv); v != "" {
		n, err := strconv.Atoi(v)
		require.NoError(t, err)
		model := testModelPath(t)
		reqs := loadDL19(t, 0)
		r, err := Open(context.Background(), model, WithInstances(n), WithNotices(nil))
		require.NoError(t, err)
		defer r.Close()
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				_, err := r.Score(context.Background(), reqs[i].query, reqs[i].passages)
				assert.NoError(t, err)
			})
		}
		wg.Wait()
		per := r.Stats().Instances
		for i := range per {
			require.Positive(t, per[i].Batches, "instance %d was warmed", i)
		}
		rss, hwm := procMemory(t)
		fmt.Printf("rss %d %d\n", rss, hwm)
		status, err := os.ReadFile("/proc/self/status")
		require.NoError(t, err)
		for _, line := range strings.Split(string(status), "\n") {
			if strings.HasPrefix(line, "Rss") { // RssAnon, RssFile, RssShmem: where the pages are
				fmt.Println(strings.Join(strings.Fields(line), " "))
			}
		}
		return
	}
	model := testModelPath(t)
	_ = loadDL19(t, 1) // fail or skip here, not in the children
	st, err := os.Stat(model)
	require.NoError(t, err)
	measure := func(n int) (rss, hwm int64) {
		cmd := exec.Command(os.Args[0], "-test.run=^TestEngineRSS$", "-test.count=1")
		cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%d", rssChildEnv, n), "GOMPS_TEST_MODEL="+model)
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "child with %d instances:\n%s", n, out)
		found := false
		for _, line := range strings.Split(string(out), "\n") {
			if _, err := fmt.Sscanf(line, "rss %d %d", &rss, &hwm); err == nil {
				found = true
			}
			if strings.HasPrefix(line, "Rss") {
				t.Logf("%d instance(s): %s", n, line)
			}
		}
		if found {
			return rss, hwm
		}
		t.Fatalf("child with %d instances printed no rss line:\n%s", n, out)
		return
	}
	rss1, hwm1 := measure(1)
	rss2, hwm2 := measure(2)
	mib := func(b int64) float64 { return float64(b) / (1 << 20) }
	t.Logf("weights file %.1f MiB; 1 instance: VmRSS %.1f MiB, VmHWM %.1f MiB; 2 instances: VmRSS %.1f MiB, VmHWM %.1f MiB; second instance adds %.1f MiB RSS",
		mib(st.Size()), mib(rss1), mib(hwm1), mib(rss2), mib(hwm2), mib(rss2-rss1))
	assert.Greater(t, rss1, st.Size()/2, "the weights are resident with 1 instance")
	assert.Less(t, rss2-rss1, st.Size()/2, "a second instance does not load the weights again")
}
