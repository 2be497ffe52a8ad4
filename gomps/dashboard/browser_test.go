//go:build cgo

package dashboard_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gomps/gomps/gomps"
	"github.com/gomps/gomps/gomps/server"
)

// chromium finds the browser: $GOMPS_CHROMIUM, else Debian's chromium. It
// fails under CI=true when there is none and skips otherwise.
func chromium(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("GOMPS_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("required under CI=true: no chromium on PATH (apt-get install chromium)")
	}
	t.Skip("no chromium on PATH (apt-get install chromium)")
	return ""
}

// artifactsDir is $GOMPS_ARTIFACTS (created) or the test's temp dir.
func artifactsDir(t *testing.T) string {
	t.Helper()
	if d := os.Getenv("GOMPS_ARTIFACTS"); d != "" {
		require.NoError(t, os.MkdirAll(d, 0o755))
		return d
	}
	return t.TempDir()
}

// scrape is one read of /metrics: start is taken before the request is
// sent, end after the body is read, so the server read its counters in
// between.
type scrape struct {
	start, end time.Time
	values     map[string]float64 // exposition lines: "name{labels}" -> value
}

var lineRE = regexp.MustCompile(`^([a-zA-Z_:][a-zA-Z0-9_:]*(?:\{[^}]*\})?) (\S+)$`)

func scrapeMetrics(c *http.Client, u string) (scrape, error) {
	s := scrape{start: time.Now(), values: map[string]float64{}}
	resp, err := c.Get(u)
	if err != nil {
		return s, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	s.end = time.Now()
	if err != nil {
		return s, err
	}
	for _, line := range strings.Split(string(body), "\n") {
		if m := lineRE.FindStringSubmatch(line); m != nil {
			if v, err := strconv.ParseFloat(m[2], 64); err == nil {
				s.values[m[1]] = v
			}
		}
	}
	return s, nil
}

// bracket returns the lowest and highest value a monotone counter can have
// had at instant at, from the scrapes that ended before it and those that
// started after it.
func bracket(t *testing.T, ss []scrape, name string, at time.Time) (lo, hi float64) {
	t.Helper()
	lo, hi = math.NaN(), math.NaN()
	for _, s := range ss {
		if !s.end.After(at) {
			lo = s.values[name] // counters absent before the model loads are 0
		}
		if s.start.After(at) && math.IsNaN(hi) {
			hi = s.values[name]
		}
	}
	require.False(t, math.IsNaN(lo) || math.IsNaN(hi), "%s: no scrapes on both sides of %v", name, at)
	return lo, hi
}

// nearest returns the scrape whose midpoint is closest to at.
func nearest(ss []scrape, at time.Time) scrape {
	best, bestD := ss[0], time.Duration(math.MaxInt64)
	for _, s := range ss {
		mid := s.start.Add(s.end.Sub(s.start) / 2)
		if d := max(mid.Sub(at), at.Sub(mid)); d < bestD {
			best, bestD = s, d
		}
	}
	return best
}

var leRE = regexp.MustCompile(`^gomps_request_duration_seconds_bucket\{le="([^"]+)"\}$`)

// bucketOf returns the index of the histogram bucket (upper bounds ub,
// ascending) holding v: the first bound >= v.
func bucketOf(ub []float64, v float64) int { return sort.SearchFloat64s(ub, v) }

// quantileBucket returns the bucket holding the q-quantile of the request
// durations observed between scrapes a and b, from /metrics alone.
func quantileBucket(t *testing.T, a, b scrape, q float64) (ub []float64, idx int) {
	t.Helper()
	type bk struct{ le, cum float64 }
	var bs []bk
	for k, v := range b.values {
		m := leRE.FindStringSubmatch(k)
		if m == nil || m[1] == "+Inf" {
			continue
		}
		le, err := strconv.ParseFloat(m[1], 64)
		require.NoError(t, err)
		bs = append(bs, bk{le, v - a.values[k]})
	}
	sort.Slice(bs, func(i, j int) bool { return bs[i].le < bs[j].le })
	total := b.values["gomps_request_duration_seconds_count"] - a.values["gomps_request_duration_seconds_count"]
	require.Positive(t, total)
	idx = len(bs)
	for i, x := range bs {
		ub = append(ub, x.le)
		if x.cum >= q*total && idx == len(bs) {
			idx = i
		}
	}
	return ub, idx
}

// pageFigures is what the test reads from the page in one evaluation.
type pageFigures struct {
	From           float64           `json:"from"`
	To             float64           `json:"to"`
	Window         string            `json:"window"`
	Values         map[string]string `json:"values"`
	Config         string            `json:"config"`
	YLabels        []string          `json:"ylabels"`
	XLabels        []string          `json:"xlabels"`
	Charts         int               `json:"charts"`
	ChartsWithData int               `json:"chartsWithData"`
}

const readPage = `(() => {
  const s = document.getElementById("summary");
  const values = {};
  for (const e of document.querySelectorAll("#summary .value[id]")) values[e.id.slice(2)] = e.textContent;
  const svgs = [...document.querySelectorAll("#charts svg")];
  return {
    from: +s.dataset.from, to: +s.dataset.to, window: s.dataset.window, values,
    config: document.getElementById("config").textContent,
    ylabels: svgs.map(g => (g.querySelector(".ylabel") || {}).textContent || ""),
    xlabels: svgs.map(g => (g.querySelector(".xlabel") || {}).textContent || ""),
    charts: svgs.length,
    chartsWithData: svgs.filter(g => g.querySelector("path.series")).length,
  };
})()`

func msTime(ms float64) time.Time { return time.UnixMicro(int64(math.Round(ms * 1000))) }

func num(t *testing.T, s string) float64 {
	t.Helper()
	v, err := strconv.ParseFloat(s, 64)
	require.NoError(t, err, "page figure %q", s)
	return v
}

// TestDashboardInBrowser runs the real server on a loopback port under load
// from this test, opens /dashboard in headless Chromium, picks the 1 min
// window, and checks that the page's figures agree with /metrics: rates
// within 2% of the counters' increase over the page's own window (bracketed
// by scrapes taken around its two end points), percentiles within one
// histogram bucket. It saves a screenshot in $GOMPS_ARTIFACTS or the test's
// temp dir.
func TestDashboardInBrowser(t *testing.T) {
	browser := chromium(t)
	r, err := gomps.Open(context.Background(), "../testdata/tiny", gomps.WithNotices(nil), gomps.WithThreads(2))
	require.NoError(t, err)
	defer r.Close()

	// Keep 8 s of history: the 1 min window then starts inside the load.
	srv := server.New(server.Config{AutoTruncate: true, Dashboard: true, DashboardHistory: 8 * time.Second, Version: "test",
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	defer srv.Close()
	hs := httptest.NewServer(srv) // 127.0.0.1, a free port
	defer hs.Close()
	host := hs.Listener.Addr().String()

	ctx, stopAll := context.WithCancel(context.Background())
	defer stopAll()
	var wg sync.WaitGroup
	defer wg.Wait()
	defer stopAll()

	// Scrape /metrics every 50 ms from before the model is ready.
	var (
		mu      sync.Mutex
		scrapes []scrape
	)
	scrapeCtx, stopScrapes := context.WithCancel(ctx)
	wg.Add(1)
	go func() {
		defer wg.Done()
		c := &http.Client{Timeout: 5 * time.Second}
		for scrapeCtx.Err() == nil {
			if s, err := scrapeMetrics(c, hs.URL+"/metrics"); err == nil {
				mu.Lock()
				scrapes = append(scrapes, s)
				mu.Unlock()
			}
			time.Sleep(50 * time.Millisecond)
		}
	}()
	time.Sleep(200 * time.Millisecond)
	require.NoError(t, srv.SetReranker(r))

	// Load: 3 closed-loop clients, 24 texts of varied length per request.
	loadCtx, stopLoad := context.WithCancel(ctx)
	var sent, failed sync.Map
	for w := 0; w < 3; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := &http.Client{Timeout: 30 * time.Second}
			for i := 0; loadCtx.Err() == nil; i++ {
				texts := make([]string, 24)
				for k := range texts {
					texts[k] = strings.Repeat(fmt.Sprintf("berlin has %d inhabitants in district %d ", i*31+k, k), 1+(i+k)%6)
				}
				body, _ := json.Marshal(map[string]any{"query": "How many people live in Berlin?", "texts": texts})
				resp, err := c.Post(hs.URL+"/rerank", "application/json", strings.NewReader(string(body)))
				if err != nil {
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					failed.Store(resp.StatusCode, true)
				}
				sent.Store(w, i+1)
			}
		}()
	}
	time.Sleep(10 * time.Second) // the 8 s history fills with load

	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(browser), chromedp.WindowSize(1440, 1200))
	if os.Geteuid() == 0 {
		opts = append(opts, chromedp.NoSandbox) // Chromium refuses to run as root with its sandbox
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	defer cancelAlloc()
	bctx, cancelBrowser := chromedp.NewContext(actx)
	defer cancelBrowser()
	var urlsMu sync.Mutex
	var urls []string
	require.NoError(t, chromedp.Listen(bctx, func(ev any) {
		if e, ok := ev.(*network.EventRequestWillBeSent); ok {
			urlsMu.Lock()
			urls = append(urls, e.Request.URL)
			urlsMu.Unlock()
		}
	}))
	require.NoError(t, chromedp.Do(bctx,
		chromedp.Navigate(hs.URL+"/dashboard"),
		chromedp.WaitVisible(`#windows button[data-window="60"]`),
		chromedp.Click(`#windows button[data-window="60"]`),
	))
	_, err = chromedp.Run(bctx, chromedp.Poll[chromedp.Void](
		`document.getElementById("summary").dataset.window === "60" && document.querySelector("#windows button.active").dataset.window === "60"`,
		chromedp.WithPollingTimeout(20*time.Second)))
	require.NoError(t, err, "the page switched to the 1 min window")
	require.NoError(t, chromedp.Do(bctx, chromedp.Sleep(2500*time.Millisecond))) // a few refreshes at the new window
	fig, err := chromedp.Run(bctx, chromedp.Evaluate[pageFigures](readPage))
	require.NoError(t, err)
	time.Sleep(300 * time.Millisecond) // scrapes after the page's newest sample
	stopScrapes()
	png, err := chromedp.Run(bctx, chromedp.FullScreenshot(100))
	require.NoError(t, err)
	stopLoad()
	shot := filepath.Join(artifactsDir(t), "dashboard.png")
	require.NoError(t, os.WriteFile(shot, png, 0o644))
	t.Logf("screenshot: %s (%d bytes)", shot, len(png))

	failed.Range(func(k, _ any) bool { t.Errorf("load request failed with status %v", k); return true })
	mu.Lock()
	ss := append([]scrape(nil), scrapes...)
	mu.Unlock()
	require.Greater(t, len(ss), 20, "scrapes")

	// The page: configuration, units, charts.
	in := r.Info()
	for _, want := range []string{"model " + in.Model, "sha256 " + in.SHA256[:12], "backend " + in.Backend, "precision " + in.Precision,
		fmt.Sprintf("instances %d", in.Instances), fmt.Sprintf("threads %d", in.Threads), "batcher " + in.Batcher} {
		assert.Contains(t, fig.Config, want, "header")
	}
	assert.Equal(t, "60", fig.Window)
	require.Equal(t, 10, fig.Charts)
	assert.GreaterOrEqual(t, fig.ChartsWithData, 9, "charts with lines (the queue may stay empty)")
	for i := range fig.YLabels {
		assert.NotEmpty(t, fig.YLabels[i], "chart %d: y unit", i)
		assert.Equal(t, "time before now (s)", fig.XLabels[i], "chart %d: x unit", i)
	}
	urlsMu.Lock()
	for _, u := range urls {
		p, err := url.Parse(u)
		if assert.NoError(t, err) {
			assert.Equal(t, host, p.Host, "the page fetched only from the server: %s", u)
		}
	}
	assert.NotEmpty(t, urls)
	urlsMu.Unlock()

	// The figures against /metrics over the page's own window.
	from, to := msTime(fig.From), msTime(fig.To)
	w := to.Sub(from).Seconds()
	t.Logf("page window %.3f s, %d scrapes, figures %v", w, len(ss), fig.Values)
	require.Greater(t, w, 5.0, "the window spans the kept history")
	pairs := num(t, fig.Values["pairs_per_s"])
	assert.Positive(t, pairs, "non-zero throughput")
	for _, c := range []struct {
		key, metric string
		scale       float64
	}{
		{"pairs_per_s", "gomps_batch_size_sum", 1},
		{"requests_per_s", "gomps_request_success_total", 1},
		{"cpu_pct", "process_cpu_seconds_total", 100},
	} {
		loFrom, hiFrom := bracket(t, ss, c.metric, from)
		loTo, hiTo := bracket(t, ss, c.metric, to)
		lo, hi := c.scale*(loTo-hiFrom)/w, c.scale*(hiTo-loFrom)/w
		got := num(t, fig.Values[c.key])
		t.Logf("%s: page %.4g, /metrics bracket [%.4g, %.4g]", c.key, got, lo, hi)
		assert.Positive(t, lo, c.key)
		assert.GreaterOrEqual(t, got, 0.98*lo, "%s within 2%% of /metrics", c.key)
		assert.LessOrEqual(t, got, 1.02*hi, "%s within 2%% of /metrics", c.key)
	}
	a, b := nearest(ss, from), nearest(ss, to)
	for _, q := range []struct {
		key string
		q   float64
	}{{"latency_p50_ms", 0.50}, {"latency_p95_ms", 0.95}, {"latency_p99_ms", 0.99}} {
		ub, want := quantileBucket(t, a, b, q.q)
		got := bucketOf(ub, num(t, fig.Values[q.key])/1000)
		t.Logf("%s: page %s ms in bucket %d, /metrics bucket %d (le %g s)", q.key, fig.Values[q.key], got, want, ub[min(want, len(ub)-1)])
		assert.LessOrEqual(t, max(got-want, want-got), 1, "%s within one histogram bucket", q.key)
	}
}
