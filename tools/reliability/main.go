// Command reliability runs `gomps serve` through load, abuse and faults on
// loopback and prints what happened as a table: attack / load / fault,
// inputs tried, outcome, anything lost. It exits 1 when a check fails.
//
//	go run ./tools/reliability                 # short form (CI: under 3 minutes)
//	go run ./tools/reliability -form long      # make soak: a 30-minute flood
//
// Phases, each bounded in count and time: a closed-loop calibration (the
// capacity in pairs/s); a flood at twice that capacity, open loop, with a
// fixed canary pair in every request whose score must not move; hostile
// bodies (oversize, deep, null, too many texts, wrong types) that must get
// their 4xx; slow-body, admission-exhausting and slow-read clients;
// concurrent bodies at the body limit (peak memory); SIGTERM in the middle
// of load, where every request sent must get a response (200 or 503),
// once draining in time and once cut by --shutdown-timeout. After each
// phase the server is settled (idle, garbage collected) and its live heap
// and goroutines must be back within a stated tolerance of the baseline:
// heapTolerance and goroutineTolerance.
//
// Only loopback is used. The server runs the test model (or -model) with
// the flags in serveArgs.
package main

import (
	"context"
	"flag"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/gomps/gomps/gomps"
)

// Tolerances of the footprint after a phase against the baseline.
const (
	heapTolerance      = 16 << 20 // bytes of live heap
	goroutineTolerance = 4
	// requestBytesPerBodyByte is the memory a request may hold per byte of
	// its body, the figure the server's default --max-concurrent-requests
	// assumes (gomps/server.requestBytesPerBodyByte).
	requestBytesPerBodyByte = 8
)

// readTimeout is the server's default --read-timeout, which the slow-body
// phases wait for.
const readTimeout = 10 * time.Second

type row struct {
	attack, inputs, outcome, lost string
	ok                            bool
}

type suite struct {
	bin, model string
	threads    int
	cl         *client
	rows       []row
	canaryRef  float64
	capacity   float64
}

func (s *suite) add(r row) {
	mark := "ok"
	if !r.ok {
		mark = "FAIL"
	}
	fmt.Fprintf(os.Stderr, "reliability: [%s] %s: %s: %s\n", mark, r.attack, r.inputs, r.outcome)
	s.rows = append(s.rows, r)
}

// serveArgs are the flags every server of the suite runs with: the defaults
// but for a short dashboard history (a bounded footprint); later flags win.
func (s *suite) serveArgs(extra ...string) []string {
	return append([]string{"--model", s.model, "--threads", fmt.Sprint(s.threads),
		"--shutdown-timeout", "10s", "--dashboard-history", "60s"}, extra...)
}

func main() {
	form := flag.String("form", "short", "short (CI) or long (make soak)")
	floodFor := flag.Duration("flood", 0, "how long the flood runs (default 30s short, 30m long)")
	bin := flag.String("gomps", "", "the gomps binary (default: go build ./cmd/gomps into a temporary directory)")
	model := flag.String("model", "", "the model to serve (default: the test model tools/setup.sh installs)")
	threads := flag.Int("threads", 2, "--threads of the server")
	out := flag.String("out", "", "also write the table (markdown) to this file")
	memoryOnly := flag.Bool("memory-only", false, "run only the memory phase (the measure behind --max-concurrent-requests)")
	flag.Parse()

	calibrateFor, sampleEvery := 10*time.Second, 10*time.Second
	switch *form {
	case "short":
		if *floodFor == 0 {
			*floodFor = 25 * time.Second
		}
	case "long":
		calibrateFor, sampleEvery = 30*time.Second, 5*time.Minute
		if *floodFor == 0 {
			*floodFor = 30 * time.Minute
		}
	default:
		fatalf("-form %q: want short or long", *form)
	}
	s := &suite{bin: *bin, model: *model, threads: *threads, cl: newClient(), canaryRef: math.NaN()}
	if s.model == "" {
		s.model = gomps.TestModelPath()
	}
	if _, err := os.Stat(s.model); err != nil {
		fatalf("the model: %v (run bash tools/setup.sh)", err)
	}
	if s.bin == "" {
		dir, err := os.MkdirTemp("", "gomps-reliability-*")
		if err != nil {
			fatalf("%v", err)
		}
		defer os.RemoveAll(dir)
		s.bin = filepath.Join(dir, "gomps")
		build := exec.Command("go", "build", "-o", s.bin, "./cmd/gomps")
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			fatalf("go build ./cmd/gomps (run from the repository root): %v", err)
		}
	}
	start := time.Now()
	if *memoryOnly {
		s.memory(64, 2<<20, 1000) // the server's defaults
	} else {
		s.run(calibrateFor, *floodFor, sampleEvery)
	}
	report := s.table(*form, time.Since(start))
	fmt.Print(report)
	if *out != "" {
		if err := os.WriteFile(*out, []byte(report), 0o644); err != nil {
			fatalf("%v", err)
		}
	}
	for _, r := range s.rows {
		if !r.ok {
			os.Exit(1)
		}
	}
}

func fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "reliability: "+format+"\n", args...)
	os.Exit(2)
}

// run runs every phase.
func (s *suite) run(calibrateFor, floodFor, sampleEvery time.Duration) {
	srv, err := startServe(s.bin, s.serveArgs()...)
	if err != nil {
		fatalf("%v", err)
	}
	defer func() {
		select {
		case <-srv.exited:
		default:
			srv.kill()
		}
	}()
	if s.canaryRef, err = canaryCheck(context.Background(), s.cl, srv.base, math.NaN()); err != nil {
		fatalf("%v", err)
	}
	maxConcurrent, maxBody, maxBatch := srv.infoInt("max_concurrent_requests"), srv.infoInt("max_body_bytes"), srv.infoInt("max_client_batch_size")
	fmt.Fprintf(os.Stderr, "reliability: serving at %s: --max-concurrent-requests %d, --max-body %d, --max-client-batch-size %d, --max-queue %d\n",
		srv.addr, maxConcurrent, maxBody, maxBatch, srv.infoInt("max_queue_pairs"))

	s.capacity = s.calibrate(srv, 4, calibrateFor)
	base, err := srv.settle(s.cl, maxBody)
	if err != nil {
		fatalf("%v", err)
	}
	s.add(row{attack: "baseline", inputs: "settled after the calibration", outcome: base.String(), lost: "none", ok: true})

	check := func(after string) footprint {
		f, err := srv.settle(s.cl, maxBody)
		if err != nil {
			s.add(row{attack: "footprint after " + after, inputs: "settled", outcome: "FAILED: " + err.Error(), lost: "none"})
			return f
		}
		s.add(row{
			attack: "footprint after " + after,
			inputs: fmt.Sprintf("settled; tolerance: live heap +%d MiB, goroutines +%d", heapTolerance>>20, goroutineTolerance),
			outcome: fmt.Sprintf("%s (baseline: %+.1f MiB heap, %+d goroutines, %+.0f MiB RSS)", f,
				(f.heapLive-base.heapLive)/(1<<20), int(f.goroutines-base.goroutines), (f.rss-base.rss)/(1<<20)),
			lost: "none",
			ok:   f.heapLive <= base.heapLive+heapTolerance && f.goroutines <= base.goroutines+goroutineTolerance,
		})
		return f
	}

	s.flood(srv, 2*s.capacity/float64(textsPerRequest+1), floodFor, sampleEvery)
	check("the flood")
	s.hostile(srv, maxBody, maxBatch)
	check("the hostile bodies")
	s.slowBody(srv, readTimeout)
	s.admission(srv, maxConcurrent, readTimeout)
	s.slowRead(srv)
	check("the slow clients")
	code := srv.stop(time.Minute)
	s.add(row{attack: "SIGTERM when idle", inputs: "no request in progress", outcome: fmt.Sprintf("exit status %d", code), lost: "none", ok: code == 0})
	s.memory(maxConcurrent, maxBody, maxBatch)

	// SIGTERM in the middle of load, drained in time: exit 0.
	srv2, err := startServe(s.bin, s.serveArgs()...)
	if err != nil {
		fatalf("%v", err)
	}
	s.sigterm(srv2, "drained within --shutdown-timeout 10s", 4, 3*time.Second, func(cp *corpus) []byte {
		return teiBody(cp.passages(textsPerRequest), 0)
	}, 0)
	// SIGTERM with requests that outlast --shutdown-timeout: cut with 503, exit 1.
	srv3, err := startServe(s.bin, s.serveArgs("--shutdown-timeout", "300ms")...)
	if err != nil {
		fatalf("%v", err)
	}
	s.sigterm(srv3, "requests cut by --shutdown-timeout 300ms", 8, 3*time.Second, func(cp *corpus) []byte {
		return teiBody(cp.passages(maxBatch-1), 0)
	}, 1)
}

// table renders the rows as markdown.
func (s *suite) table(form string, took time.Duration) string {
	var b strings.Builder
	failed := 0
	for _, r := range s.rows {
		if !r.ok {
			failed++
		}
	}
	fmt.Fprintf(&b, "\n## gomps serve reliability suite, %s form (%v; %d checks, %d failed)\n\n", form, took.Round(time.Second), len(s.rows), failed)
	fmt.Fprintf(&b, "Model %s, --threads %d, capacity %.0f pairs/s, canary reference %.6f.\n\n", filepath.Base(s.model), s.threads, s.capacity, s.canaryRef)
	b.WriteString("| attack / load / fault | inputs tried | outcome | lost | check |\n|---|---|---|---|---|\n")
	esc := func(t string) string { return strings.ReplaceAll(t, "|", `\|`) }
	for _, r := range s.rows {
		mark := "ok"
		if !r.ok {
			mark = "**FAIL**"
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", esc(r.attack), esc(r.inputs), esc(r.outcome), esc(r.lost), mark)
	}
	return b.String()
}

func sortedKeys(m map[int]int) []int {
	keys := make([]int, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Ints(keys)
	return keys
}
