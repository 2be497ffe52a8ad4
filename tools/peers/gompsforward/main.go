//go:build cgo && !darwin

// Command gompsforward is the gomps side of the peer benchmark
// (tools/peers/peers.py; dev-only): it forwards batches that peers.py
// tokenized and planned through the CPU backend's native ABI (the binding
// kernels/native: one model, -instances contexts of -threads/-instances
// threads each, every context driven by its own goroutine locked to its OS
// thread as the engine's workers are), so gomps and every peer run exactly
// the same padded batches. With more than one instance the batches go, in
// the plan's order, to whichever instance is free (as the engine routes
// them). Warm-up and timing follow peers.py's measure(): three batches
// (longest, middle, shortest) untimed on every instance, then every batch
// once; wall time and the process's CPU time (user + system) over the timed
// batches are written as JSON with the logits of every batch.
//
// Input (-in), little-endian: "GPB1", int32 batch count, then per batch
// int32 rows, int32 seq, int32 ids[rows*seq], int32 types[rows*seq],
// int32 lengths[rows].
//
//	gompsforward -model M.gomps -precision bf16 -threads 2 -instances 2 -in batches.bin -out result.json
//
// With -pairs instead of -in it runs end to end through the library, as a
// user calls it: the pairs (JSON lines {"q": query, "p": passage} from
// peers.py) go from text to logits through gomps.Open(model, precision,
// threads) and one library call (Do: tokenization, batching and forwards
// inside the library); warm-up: one untimed call of the first 64
// pairs. Logits are written as one "batch" in pair order.
package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"sort"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gomps/gomps/gomps"
	"github.com/gomps/gomps/kernels/native"
)

type batch struct {
	rows, seq           int
	ids, types, lengths []int32
}

type result struct {
	Precision string      `json:"precision"`
	Threads   int         `json:"threads"`
	Instances int         `json:"instances"`
	ISA       string      `json:"isa"`
	Pairs     int         `json:"pairs"`
	WallS     float64     `json:"wall_s"`
	CPUS      float64     `json:"cpu_s"`
	Logits    [][]float32 `json:"logits"` // per batch, in row order
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "gompsforward:", err)
		os.Exit(1)
	}
}

func run() error {
	model := flag.String("model", "", "native weights file (.gomps)")
	precision := flag.String("precision", "f32", "f32 or bf16")
	threads := flag.Int("threads", 2, "native threads over all instances")
	instances := flag.Int("instances", 0, "contexts running forward passes at once (threads/instances threads each; 0 = the backend's preferred count, gomps.DefaultInstances)")
	in := flag.String("in", "", "batches written by peers.py")
	pairsFile := flag.String("pairs", "", "end to end instead: pairs written by peers.py (JSON lines {q, p}), scored through the library")
	out := flag.String("out", "", "JSON result")
	flag.Parse()
	if *model == "" || (*in == "") == (*pairsFile == "") || *out == "" {
		return errors.New("-model, -out and one of -in and -pairs are required")
	}
	if *instances == 0 {
		*instances = gomps.DefaultInstances(*threads)
	}
	if *instances < 1 || *threads < *instances || *threads%*instances != 0 {
		return fmt.Errorf("-threads %d -instances %d: want instances >= 1 dividing threads", *threads, *instances)
	}
	per := *threads / *instances
	prec, ok := native.ParsePrecision(*precision)
	if !ok || prec == native.PrecisionF16 {
		return fmt.Errorf("-precision %q: want f32 or bf16", *precision)
	}
	if *pairsFile != "" {
		return endToEnd(*model, *precision, *threads, *instances, *pairsFile, *out)
	}
	batches, err := readBatches(*in)
	if err != nil {
		return err
	}
	// Sized as the library sizes its model: the engine's max batch (64) and
	// the model's 512 positions, or more if a batch needs it.
	maxRows, maxSeq := 64, 512
	for _, b := range batches {
		maxRows, maxSeq = max(maxRows, b.rows), max(maxSeq, b.seq)
	}

	be, err := native.Lookup("cpu")
	if err != nil {
		return err
	}
	m, err := be.Load(*model, native.Options{Precision: prec, MaxBatch: maxRows, MaxSeq: maxSeq})
	if err != nil {
		return fmt.Errorf("open %s (%s): %w", *model, *precision, err)
	}
	defer m.Close()
	info := m.Info()

	res := result{Precision: *precision, Threads: *threads, Instances: *instances, ISA: info.ISA,
		Logits: make([][]float32, len(batches))}
	for i, b := range batches {
		res.Logits[i] = make([]float32, b.rows)
		res.Pairs += b.rows
	}
	bySeq := make([]int, len(batches))
	for i := range bySeq {
		bySeq[i] = i
	}
	sort.SliceStable(bySeq, func(a, b int) bool { return batches[bySeq[a]].seq < batches[bySeq[b]].seq })
	warm := map[int]bool{bySeq[len(bySeq)-1]: true, bySeq[len(bySeq)/2]: true, bySeq[0]: true}

	// One goroutine per instance, each locked to its OS thread for its
	// context's whole life (OpenMP state is per thread). All warm up, meet at
	// start, then take the next batch of the plan as they become free.
	var (
		next        atomic.Int64
		ready, done sync.WaitGroup
		start       = make(chan struct{})
		mu          sync.Mutex
		firstErr    error
		setErr      = func(err error) {
			mu.Lock()
			if firstErr == nil {
				firstErr = err
			}
			mu.Unlock()
		}
	)
	ready.Add(*instances)
	done.Add(*instances)
	for k := 0; k < *instances; k++ {
		go func() {
			defer done.Done()
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			ctx, err := m.NewContext(per)
			if err != nil {
				setErr(fmt.Errorf("instance %d: %w", k, err))
				ready.Done()
				return
			}
			defer ctx.Close()
			scratch := make([]float32, maxRows)
			for i := range warm {
				b := batches[i]
				if err := ctx.Forward(b.rows, b.seq, b.ids, b.types, b.lengths, scratch[:b.rows]); err != nil {
					setErr(fmt.Errorf("instance %d: warm-up batch %d: %w", k, i, err))
					ready.Done()
					return
				}
			}
			ready.Done()
			<-start
			for {
				i := int(next.Add(1)) - 1
				if i >= len(batches) {
					return
				}
				b := batches[i]
				if err := ctx.Forward(b.rows, b.seq, b.ids, b.types, b.lengths, res.Logits[i]); err != nil {
					setErr(fmt.Errorf("instance %d: batch %d: %w", k, i, err))
					return
				}
			}
		}()
	}
	ready.Wait()
	if firstErr != nil {
		next.Store(int64(len(batches))) // the others stop at once
		close(start)
		done.Wait()
		return firstErr
	}
	c0, t0 := cpuTime(), time.Now()
	close(start)
	done.Wait()
	res.WallS, res.CPUS = time.Since(t0).Seconds(), (cpuTime() - c0).Seconds()
	if firstErr != nil {
		return firstErr
	}

	data, err := json.Marshal(res)
	if err != nil {
		return err
	}
	return os.WriteFile(*out, data, 0o644)
}

// endToEnd scores the pairs of path through the library (see the package
// doc) and writes the result JSON to out.
func endToEnd(model, precision string, threads, instances int, path, out string) error {
	pairs, err := readPairs(path)
	if err != nil {
		return err
	}
	ctx := context.Background()
	r, err := gomps.Open(ctx, model, gomps.WithPrecision(precision), gomps.WithThreads(threads),
		gomps.WithInstances(instances), gomps.WithNotices(io.Discard))
	if err != nil {
		return err
	}
	defer r.Close()
	if _, err := r.Do(ctx, gomps.Request{Pairs: pairs[:min(64, len(pairs))]}); err != nil {
		return fmt.Errorf("warm-up: %w", err)
	}
	c0, t0 := cpuTime(), time.Now()
	res, err := r.Do(ctx, gomps.Request{Pairs: pairs})
	wall, cpuS := time.Since(t0).Seconds(), (cpuTime() - c0).Seconds()
	if err != nil {
		return err
	}
	in := r.Info()
	data, err := json.Marshal(result{Precision: precision, Threads: threads, Instances: in.Instances, ISA: in.ISA,
		Pairs: len(pairs), WallS: wall, CPUS: cpuS, Logits: [][]float32{res.Scores}})
	if err != nil {
		return err
	}
	return os.WriteFile(out, data, 0o644)
}

// readPairs reads JSON lines {"q": query, "p": passage}.
func readPairs(path string) ([]gomps.Pair, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var pairs []gomps.Pair
	dec := json.NewDecoder(bufio.NewReader(f))
	for {
		var p struct{ Q, P string }
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			return nil, fmt.Errorf("%s: pair %d: %w", path, len(pairs)+1, err)
		}
		pairs = append(pairs, gomps.Pair{Query: p.Q, Passage: p.P})
	}
	if len(pairs) == 0 {
		return nil, fmt.Errorf("%s: no pairs", path)
	}
	return pairs, nil
}

// cpuTime is the process's user + system CPU time (every thread).
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func readBatches(path string) ([]batch, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r := bufio.NewReader(f)
	var magic [4]byte
	if _, err := io.ReadFull(r, magic[:]); err != nil || string(magic[:]) != "GPB1" {
		return nil, fmt.Errorf("%s: not a GPB1 batch file", path)
	}
	var n int32
	if err := binary.Read(r, binary.LittleEndian, &n); err != nil || n <= 0 || n > 1<<20 {
		return nil, fmt.Errorf("%s: bad batch count", path)
	}
	out := make([]batch, n)
	for i := range out {
		var hdr [2]int32
		if err := binary.Read(r, binary.LittleEndian, &hdr); err != nil {
			return nil, fmt.Errorf("%s: batch %d: %w", path, i, err)
		}
		rows, seq := int(hdr[0]), int(hdr[1])
		if rows <= 0 || seq <= 0 || rows > 1<<16 || seq > 1<<16 {
			return nil, fmt.Errorf("%s: batch %d: bad shape %dx%d", path, i, rows, seq)
		}
		b := batch{rows: rows, seq: seq, ids: make([]int32, rows*seq), types: make([]int32, rows*seq), lengths: make([]int32, rows)}
		for _, s := range [][]int32{b.ids, b.types, b.lengths} {
			if err := binary.Read(r, binary.LittleEndian, s); err != nil {
				return nil, fmt.Errorf("%s: batch %d: %w", path, i, err)
			}
		}
		out[i] = b
	}
	return out, nil
}
