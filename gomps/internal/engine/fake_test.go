package engine

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// This file holds in-Go TEST DOUBLES of the engine's two dependencies:
// fakeEncoder (a tokenizer) and fakeInstance (a backend context). Neither is
// a model; they exist so the engine's scheduling can be tested exactly.

// fakeEncoder turns whitespace-separated decimal numbers into those ids
// (other words hash to an id). The word "!fail" makes encoding fail and
// "!panic" makes it panic. hold, if set, is called during each encode (to
// observe or slow it); inUse tracks the budget use of the fake backend.
type fakeEncoder struct {
	hold  func()
	inUse *atomic.Int64
	peak  *atomic.Int64
}

var errFakeEncode = errors.New("fake encoder: refused")

func fakeWords(s string) ([]int32, error) {
	f := strings.Fields(s)
	ids := make([]int32, 0, len(f))
	for _, w := range f {
		switch w {
		case "!fail":
			return nil, errFakeEncode
		case "!panic":
			panic("fake encoder: asked to panic")
		}
		v, err := strconv.Atoi(w)
		if err != nil {
			h := uint32(2166136261)
			for i := 0; i < len(w); i++ {
				h = (h ^ uint32(w[i])) * 16777619
			}
			v = 1000 + int(h%29000)
		}
		ids = append(ids, int32(v))
	}
	return ids, nil
}

func (f *fakeEncoder) enter() func() {
	if f.inUse != nil {
		n := f.inUse.Add(1)
		for {
			p := f.peak.Load()
			if n <= p || f.peak.CompareAndSwap(p, n) {
				break
			}
		}
	}
	if f.hold != nil {
		f.hold()
	}
	return func() {
		if f.inUse != nil {
			f.inUse.Add(-1)
		}
	}
}

func (f *fakeEncoder) EncodeQuery(q string) ([]int32, error) {
	defer f.enter()()
	return fakeWords(q)
}

func (f *fakeEncoder) EncodePassages(ps []string, _ int) ([][]int32, error) {
	defer f.enter()()
	out := make([][]int32, len(ps))
	for i, p := range ps {
		ids, err := fakeWords(p)
		if err != nil {
			return nil, err
		}
		out[i] = ids
	}
	return out, nil
}

// fakeScore is the fake model: a deterministic function of one row's real
// tokens only, so a pair scores bit-identically in any batch.
func fakeScore(ids, types []int32) float32 {
	h := uint32(2166136261)
	for i := range ids {
		h = (h ^ uint32(ids[i])) * 16777619
		h = (h ^ uint32(types[i]+7)) * 16777619
	}
	return float32(int32(h)) / 65536
}

// fakeForward records one forward call.
type fakeForward struct {
	slot       int
	rows, seq  int
	start, end time.Time
	tags       []int32 // first passage token of each row
}

// fakeBackend is the shared state of a set of fakeInstances (one per slot).
type fakeBackend struct {
	// cost is how long a forward takes (time.Sleep, so fake time under
	// testing/synctest); nil = instant.
	cost func(b *Batch) time.Duration
	// failID / panicID make a forward whose batch holds that id fail or
	// panic.
	failID, panicID int32
	// labels is the logits per row (0: 1); label l of a row is its score
	// plus l.
	labels int
	// buildErr makes the factory fail for slot builds numbered >= buildErrAt.
	buildErrAt int

	inUse, peak *atomic.Int64 // threads busy in encoder + forwards

	mu       sync.Mutex
	forwards []fakeForward
	seen     map[int32]int // every real token id forwarded, counted
	builds   int
	closes   int
	threads  map[int]int // slot -> SetThreads value
	padBad   int         // rows whose padding was not id 0 / type 0
	typesBad int         // rows whose types were not 0...0 1...1
}

func newFakeBackend() *fakeBackend {
	return &fakeBackend{seen: map[int32]int{}, threads: map[int]int{}, inUse: new(atomic.Int64), peak: new(atomic.Int64)}
}

func (fb *fakeBackend) factory(slot int) (Instance, error) {
	fb.mu.Lock()
	defer fb.mu.Unlock()
	fb.builds++
	if fb.buildErrAt > 0 && fb.builds >= fb.buildErrAt {
		return nil, fmt.Errorf("fake backend: build %d refused", fb.builds)
	}
	return &fakeInstance{fb: fb, slot: slot}, nil
}

func (fb *fakeBackend) log() []fakeForward {
	fb.mu.Lock()
	defer fb.mu.Unlock()
	return append([]fakeForward(nil), fb.forwards...)
}

func (fb *fakeBackend) sawID(id int32) int {
	fb.mu.Lock()
	defer fb.mu.Unlock()
	return fb.seen[id]
}

// fakeInstance is a TEST DOUBLE of a backend context.
type fakeInstance struct {
	fb      *fakeBackend
	slot    int
	threads int
}

var _ Instance = (*fakeInstance)(nil)

func (f *fakeInstance) SetThreads(n int) error {
	f.threads = n
	f.fb.mu.Lock()
	f.fb.threads[f.slot] = n
	f.fb.mu.Unlock()
	return nil
}

func (f *fakeInstance) Close() error {
	f.fb.mu.Lock()
	f.fb.closes++
	f.fb.mu.Unlock()
	return nil
}

func (f *fakeInstance) Forward(b *Batch, logits []float32) error {
	fb := f.fb
	n := fb.inUse.Add(int64(f.threads))
	for {
		p := fb.peak.Load()
		if n <= p || fb.peak.CompareAndSwap(p, n) {
			break
		}
	}
	defer fb.inUse.Add(-int64(f.threads))
	rec := fakeForward{slot: f.slot, rows: b.Rows, seq: b.Seq, start: time.Now()}
	if fb.cost != nil {
		time.Sleep(fb.cost(b))
	}
	fb.mu.Lock()
	defer fb.mu.Unlock()
	nl := max(1, fb.labels)
	if len(logits) != b.Rows*nl || len(b.IDs) != b.Rows*b.Seq || len(b.Types) != b.Rows*b.Seq || len(b.Lengths) != b.Rows {
		return fmt.Errorf("fake backend: bad batch shape %dx%d", b.Rows, b.Seq)
	}
	for r := 0; r < b.Rows; r++ {
		row := b.IDs[r*b.Seq : (r+1)*b.Seq]
		typ := b.Types[r*b.Seq : (r+1)*b.Seq]
		n := int(b.Lengths[r])
		for i := n; i < b.Seq; i++ {
			if row[i] != 0 || typ[i] != 0 {
				fb.padBad++
				break
			}
		}
		for i := 1; i < n; i++ {
			if typ[i] < typ[i-1] || typ[i] > 1 {
				fb.typesBad++
				break
			}
		}
		tag := int32(-1)
		for i := 0; i < n; i++ {
			id := row[i]
			fb.seen[id]++
			if id == fb.panicID && fb.panicID != 0 {
				panic("fake backend: asked to panic")
			}
			if id == fb.failID && fb.failID != 0 {
				return errors.New("fake backend: refused batch")
			}
			if tag < 0 && typ[i] == 1 {
				tag = id
			}
		}
		rec.tags = append(rec.tags, tag)
		for l := range nl {
			logits[r*nl+l] = fakeScore(row[:n], typ[:n]) + float32(l)
		}
	}
	rec.end = time.Now()
	fb.forwards = append(fb.forwards, rec)
	return nil
}
