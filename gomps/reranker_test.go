//go:build cgo

package gomps

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const (
	berlinQ  = "How many people live in Berlin?"
	berlinP1 = "Berlin had a population of 3,520,031 registered inhabitants in an area of 891.82 square kilometers."
	berlinP2 = "Berlin is well known for its museums."
)

func openTiny(t testing.TB, opts ...Option) *Reranker {
	t.Helper()
	r, err := Open(context.Background(), tinyModelPath(t), opts...)
	require.NoError(t, err)
	t.Cleanup(func() { r.Close() })
	return r
}

// syntheticLogit returns the golden logit of the named synthetic case.
func syntheticLogit(t testing.TB, model, name string) float32 {
	t.Helper()
	for _, c := range loadGoldens(t, model, false) {
		if c.Name == name {
			return float32(c.Logit)
		}
	}
	t.Fatalf("no golden %s in %s", name, model)
	return 0
}

func TestInfo(t *testing.T) {
	r := openTiny(t)
	in := r.Info()
	src, err := os.ReadFile(filepath.Join("testdata", "tiny", "model.safetensors"))
	require.NoError(t, err)
	sum := sha256.Sum256(src)
	assert.Equal(t, "gomps-test/tiny", in.Model, "name from the file")
	assert.Equal(t, hex.EncodeToString(sum[:]), in.SHA256, "sha256 of the source safetensors")
	assert.Equal(t, SourceNative, in.Kind)
	assert.Equal(t, "cpu", in.Backend)
	assert.NotEmpty(t, in.ISA)
	assert.Equal(t, "f32", in.Precision)
	assert.Equal(t, 2, in.Config.NumLayers)
	assert.Equal(t, 32, in.Config.HiddenSize)
	assert.Equal(t, 512, in.MaxLength, "default: the model's positions")
	assert.Equal(t, runtime.NumCPU(), in.Threads, "default: every CPU")
	assert.Equal(t, DefaultInstances(runtime.NumCPU()), in.Instances, "default on the CPU backend")
	assert.Zero(t, in.Threads%in.Instances, "the default splits the threads evenly")
	assert.True(t, in.Truncate)
	assert.False(t, in.Sigmoid)
	assert.False(t, in.TestModel)

	r2 := openTiny(t, WithInstances(2), WithThreads(4), WithMaxLength(128), WithMaxBatch(8), WithBatcher("fixed"), WithSigmoid())
	in = r2.Info()
	assert.Equal(t, 2, in.Instances)
	assert.Equal(t, 4, in.Threads)
	assert.Equal(t, 128, in.MaxLength)
	assert.Equal(t, 8, in.MaxBatch)
	assert.Equal(t, "fixed", in.Batcher)
	assert.True(t, in.Sigmoid)
}

func TestScoreBerlin(t *testing.T) {
	r := openTiny(t)
	got, err := r.Score(context.Background(), berlinQ, []string{berlinP1, berlinP2})
	require.NoError(t, err)
	require.Len(t, got, 2)
	assert.InDelta(t, syntheticLogit(t, "tiny", "berlin-1"), got[0], 1e-4, "berlin-1")
	assert.InDelta(t, syntheticLogit(t, "tiny", "berlin-2"), got[1], 1e-4, "berlin-2")

	pairs, err := scorePairs(r, context.Background(), []Pair{{berlinQ, berlinP2}, {"what is this word", "x"}, {berlinQ, berlinP1}})
	require.NoError(t, err)
	assert.InDelta(t, got[1], pairs[0], 1e-5, "ScorePairs agrees with Score")
	assert.InDelta(t, got[0], pairs[2], 1e-5, "ScorePairs agrees with Score")

	sig := openTiny(t, WithSigmoid())
	s, err := sig.Score(context.Background(), berlinQ, []string{berlinP1, berlinP2})
	require.NoError(t, err)
	for i := range s {
		assert.InDelta(t, 1/(1+math.Exp(-float64(got[i]))), s[i], 1e-6, "sigmoid of the logit")
	}
}

func TestRank(t *testing.T) {
	r := openTiny(t)
	passages := []string{berlinP1, berlinP2, "museums", "", "Berlin population"}
	scores, err := r.Score(context.Background(), berlinQ, passages)
	require.NoError(t, err)
	all, err := r.Rank(context.Background(), berlinQ, passages, 0)
	require.NoError(t, err)
	require.Len(t, all, len(passages))
	seen := map[int]bool{}
	for i, e := range all {
		assert.Equal(t, scores[e.Index], e.Score, "entry %d carries its passage's score", i)
		seen[e.Index] = true
		if i > 0 {
			assert.GreaterOrEqual(t, all[i-1].Score, e.Score, "best first")
		}
	}
	assert.Len(t, seen, len(passages), "every passage once")
	top, err := r.Rank(context.Background(), berlinQ, passages, 2)
	require.NoError(t, err)
	assert.Equal(t, all[:2], top)
	_, err = r.Rank(context.Background(), "", passages, 2)
	assert.ErrorIs(t, err, ErrEmptyQuery)
}

// Scores do not depend on batching: one call of many passages (padded
// batches, length-sorted) equals one call per passage.
func TestScoreBatchIndependent(t *testing.T) {
	r := openTiny(t, WithMaxBatch(5), WithInstances(2), WithThreads(2))
	var passages []string
	for i := range 23 {
		passages = append(passages, strings.Repeat("berlin museum population ", i%9)+"end")
	}
	passages = append(passages, "")
	all, err := r.Score(context.Background(), berlinQ, passages)
	require.NoError(t, err)
	for i, p := range passages {
		one, err := r.Score(context.Background(), berlinQ, []string{p})
		require.NoError(t, err)
		assert.InDelta(t, one[0], all[i], 1e-5, "passage %d alone vs in a batch", i)
	}
}

func TestScoreErrors(t *testing.T) {
	r := openTiny(t)
	ctx := context.Background()

	got, err := r.Score(ctx, berlinQ, nil)
	require.NoError(t, err)
	assert.NotNil(t, got, "empty passages -> empty, non-nil result")
	assert.Empty(t, got)
	got, err = scorePairs(r, ctx, nil)
	require.NoError(t, err)
	assert.Empty(t, got)

	empty, err := r.Score(ctx, berlinQ, []string{""})
	require.NoError(t, err, "an empty passage is valid")
	assert.Len(t, empty, 1)

	_, err = r.Score(ctx, "", []string{"x"})
	assert.ErrorIs(t, err, ErrEmptyQuery)
	_, err = scorePairs(r, ctx, []Pair{{"q", "p"}, {"", "p"}})
	assert.ErrorIs(t, err, ErrEmptyQuery)
	assert.ErrorContains(t, err, "pair 1")

	_, err = r.Score(ctx, "q\xff", []string{"x"})
	assert.ErrorIs(t, err, ErrInvalidUTF8)
	_, err = r.Score(ctx, "q", []string{"ok", "bad\xc3"})
	assert.ErrorIs(t, err, ErrInvalidUTF8)
	assert.Equal(t, "passage 1: text is not valid UTF-8", err.Error())
	_, err = scorePairs(r, ctx, []Pair{{"q", "\xff"}})
	assert.ErrorIs(t, err, ErrInvalidUTF8)

	cctx, cancel := context.WithCancel(ctx)
	cancel()
	_, err = r.Score(cctx, berlinQ, []string{"x"})
	assert.ErrorIs(t, err, context.Canceled)
	_, err = scorePairs(r, cctx, []Pair{{"q", "p"}})
	assert.ErrorIs(t, err, context.Canceled)
}

// A call larger than the queue bound is split and never overloads it alone.
func TestScoreLargerThanQueue(t *testing.T) {
	r := openTiny(t, WithMaxQueue(1024), WithInstances(2), WithThreads(2))
	passages := make([]string, 2500)
	for i := range passages {
		passages[i] = strings.Repeat("museum ", i%7)
	}
	got, err := r.Score(context.Background(), berlinQ, passages)
	require.NoError(t, err)
	require.Len(t, got, len(passages))
	assert.Equal(t, got[0], got[7], "equal passages score equally")
	assert.Equal(t, got[3], got[3+7*300], "equal passages in different chunks score equally")
}

func TestTruncation(t *testing.T) {
	long := strings.Repeat("population ", 40) // 40 tokens
	passages := []string{"short", long, "short too"}

	on := openTiny(t, WithMaxLength(32))
	got, err := on.Score(context.Background(), berlinQ, passages)
	require.NoError(t, err, "truncation is on by default")
	require.Len(t, got, 3)
	// Cut to 32 tokens, the long passage scores as its first 32-3-7 tokens.
	cut := strings.Repeat("population ", 32-3-7)
	want, err := on.Score(context.Background(), berlinQ, []string{cut})
	require.NoError(t, err)
	assert.InDelta(t, want[0], got[1], 1e-5, "truncated longest_first to the max length")

	off := openTiny(t, WithMaxLength(32), WithTruncation(false))
	_, err = off.Score(context.Background(), berlinQ, passages)
	require.ErrorIs(t, err, ErrTooLong)
	var tl *TooLongError
	require.ErrorAs(t, err, &tl)
	assert.Equal(t, TooLongError{Index: 1, Tokens: 7 + 40 + 3, MaxLength: 32}, *tl)
	_, err = scorePairs(off, context.Background(), []Pair{{"a", "b"}, {"c", "d"}, {berlinQ, long}})
	require.ErrorAs(t, err, &tl)
	assert.Equal(t, 2, tl.Index, "the pair's index in the input")
	ok, err := off.Score(context.Background(), berlinQ, []string{"short"})
	require.NoError(t, err, "pairs that fit still score")
	assert.Len(t, ok, 1)
}

func TestOptionErrors(t *testing.T) {
	for name, c := range map[string]struct {
		opt  Option
		text string
	}{
		"max-length=2":    {WithMaxLength(2), "max length 2: want 3..65536"},
		"max-batch=0":     {WithMaxBatch(0), "max batch 0: want 1..4096"},
		"threads=0":       {WithThreads(0), "threads 0: want 1..1024"},
		"instances=0":     {WithInstances(0), "instances 0: want 1..256"},
		"precision=fp64":  {WithPrecision("fp64"), `precision "fp64": want f32, bf16 or f16`},
		"batcher=greedy":  {WithBatcher("greedy"), `batcher "greedy": want adaptive or fixed`},
		"max-queue=small": {WithMaxQueue(10), "max queue 10: want at least 1024"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Open(context.Background(), tinyModelPath(t), c.opt)
			assert.EqualError(t, err, c.text, "the option and the value, no package name")
		})
	}
	_, err := Open(context.Background(), tinyModelPath(t), WithMaxLength(513))
	assert.ErrorContains(t, err, "more than the model's 512 positions")
}

// A backend failure is an *Error that matches its sentinel.
func TestNativeError(t *testing.T) {
	_, err := Open(context.Background(), tinyModelPath(t), WithPrecision("f16"))
	require.Error(t, err, "the CPU backend has no f16 mode")
	var ne *Error
	require.ErrorAs(t, err, &ne)
	assert.Equal(t, CodeUnsupported, ne.Code)
	assert.Equal(t, "model_init", ne.Op)
	assert.ErrorIs(t, err, ErrUnsupported)
	assert.NotErrorIs(t, err, ErrFormat)

	bad := filepath.Join(t.TempDir(), "bad.gomps")
	require.NoError(t, os.WriteFile(bad, bytes.Repeat([]byte{0}, 4096), 0o644))
	_, err = Open(context.Background(), bad)
	require.Error(t, err, "a corrupt file is an error, not a crash")
}

func TestClose(t *testing.T) {
	r, err := Open(context.Background(), tinyModelPath(t))
	require.NoError(t, err)
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			assert.NoError(t, r.Close())
		}()
	}
	wg.Wait()
	assert.NoError(t, r.Close(), "Close is idempotent")
	_, err = r.Score(context.Background(), berlinQ, []string{"x"})
	assert.ErrorIs(t, err, ErrClosed)
	_, err = scorePairs(r, context.Background(), []Pair{{"q", "p"}})
	assert.ErrorIs(t, err, ErrClosed)
	_, err = r.Score(context.Background(), berlinQ, nil)
	assert.ErrorIs(t, err, ErrClosed)
	assert.Equal(t, "gomps-test/tiny", r.Info().Model, "Info stays readable")
}

// Close while calls run: each call returns scores or ErrClosed, nothing else.
func TestCloseDuringScore(t *testing.T) {
	r, err := Open(context.Background(), tinyModelPath(t), WithInstances(2), WithThreads(2))
	require.NoError(t, err)
	passages := make([]string, 300)
	for i := range passages {
		passages[i] = strings.Repeat("museum ", i%50)
	}
	var wg sync.WaitGroup
	start := make(chan struct{})
	for range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			for range 5 {
				got, err := r.Score(context.Background(), berlinQ, passages)
				if err != nil {
					assert.ErrorIs(t, err, ErrClosed)
					return
				}
				assert.Len(t, got, len(passages))
			}
		}()
	}
	close(start)
	require.NoError(t, r.Close())
	wg.Wait()
}

// Open/Close in a loop leaves no native handle behind.
func TestNoLeak(t *testing.T) {
	m0, c0 := liveModels.Load(), liveContexts.Load()
	for range 5 {
		r, err := Open(context.Background(), tinyModelPath(t), WithInstances(3), WithThreads(3))
		require.NoError(t, err)
		assert.Equal(t, m0+1, liveModels.Load(), "one model while open")
		assert.Equal(t, c0+3, liveContexts.Load(), "one context per instance while open")
		_, err = r.Score(context.Background(), berlinQ, []string{"x", "y"})
		require.NoError(t, err)
		require.NoError(t, r.Close())
		assert.Equal(t, m0, liveModels.Load(), "model freed")
		assert.Equal(t, c0, liveContexts.Load(), "contexts freed")
	}
}

// A Reranker dropped without Close is freed by its runtime cleanup (a
// safety net, not the contract).
func TestCleanupFreesUnclosed(t *testing.T) {
	path := tinyModelPath(t)
	m0, c0 := liveModels.Load(), liveContexts.Load()
	func() {
		r, err := Open(context.Background(), path, WithInstances(2), WithThreads(2))
		require.NoError(t, err)
		_, err = r.Score(context.Background(), berlinQ, []string{"x"})
		require.NoError(t, err)
	}()
	for i := 0; i < 200 && (liveModels.Load() != m0 || liveContexts.Load() != c0); i++ {
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
	}
	assert.Equal(t, m0, liveModels.Load(), "model freed by the cleanup")
	assert.Equal(t, c0, liveContexts.Load(), "contexts freed by the cleanup")
}

// A Hugging Face model directory is converted at load and scores like the
// native file converted from it.
func TestOpenHFDir(t *testing.T) {
	r, err := Open(context.Background(), filepath.Join("testdata", "tiny"))
	require.NoError(t, err)
	defer r.Close()
	assert.Equal(t, SourceHFDir, r.Info().Kind)
	got, err := r.Score(context.Background(), berlinQ, []string{berlinP1})
	require.NoError(t, err)
	assert.InDelta(t, syntheticLogit(t, "tiny", "berlin-1"), got[0], 1e-4)
}

func TestResolveModel(t *testing.T) {
	hub := t.TempDir()
	cache := t.TempDir()
	t.Setenv("HF_HUB_CACHE", hub)
	t.Setenv("GOMPS_CACHE", cache)
	t.Setenv("GOMPS_MODEL", "")

	_, err := ResolveModel("")
	require.ErrorIs(t, err, ErrNoModel)
	assert.ErrorContains(t, err, "bash tools/setup.sh")

	// The test model is the last fallback, with a notice.
	test := filepath.Join(cache, "models", TestModelFile)
	require.NoError(t, os.MkdirAll(filepath.Dir(test), 0o755))
	raw, err := os.ReadFile(tinyModelPath(t))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(test, raw, 0o644))
	src, err := ResolveModel("")
	require.NoError(t, err)
	assert.Equal(t, Source{Path: test, Kind: SourceNative, TestModel: true}, src)
	assert.Contains(t, src.Notice(), "TEST model")

	var notices bytes.Buffer
	r, err := Open(context.Background(), "", WithNotices(&notices))
	require.NoError(t, err)
	assert.True(t, r.Info().TestModel)
	require.NoError(t, r.Close())
	assert.Equal(t, 1, strings.Count(notices.String(), "\n"), "one line")
	assert.Contains(t, notices.String(), "not the real reranker")

	// The Hugging Face cache entry of the default model wins over it.
	snap := filepath.Join(hub, "models--cross-encoder--ms-marco-MiniLM-L-6-v2", "snapshots", "abc123")
	require.NoError(t, os.MkdirAll(snap, 0o755))
	require.NoError(t, os.MkdirAll(filepath.Join(hub, "models--cross-encoder--ms-marco-MiniLM-L-6-v2", "refs"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(hub, "models--cross-encoder--ms-marco-MiniLM-L-6-v2", "refs", "main"), []byte("abc123\n"), 0o644))
	src, err = ResolveModel("")
	require.NoError(t, err)
	assert.Equal(t, Source{Path: snap, Kind: SourceHFDir, ModelID: DefaultModelID}, src)
	assert.Empty(t, src.Notice())

	// An argument, else GOMPS_MODEL, wins over both.
	src, err = ResolveModel(test)
	require.NoError(t, err)
	assert.Equal(t, Source{Path: test, Kind: SourceNative}, src, "a file argument is no fallback")
	t.Setenv("GOMPS_MODEL", "testdata/tiny")
	src, err = ResolveModel("")
	require.NoError(t, err)
	assert.Equal(t, Source{Path: "testdata/tiny", Kind: SourceHFDir}, src)
	src, err = ResolveModel("cross-encoder/ms-marco-MiniLM-L-6-v2")
	require.NoError(t, err, "a model id in the cache")
	assert.Equal(t, Source{Path: snap, Kind: SourceHFDir, ModelID: DefaultModelID}, src)

	for _, bad := range []string{"no/such-model", "./missing.gomps", "/nope/x.gomps"} {
		_, err = ResolveModel(bad)
		assert.ErrorIs(t, err, ErrNoModel, bad)
		assert.ErrorContains(t, err, bad)
	}
}
