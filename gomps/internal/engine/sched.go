package engine

import (
	"cmp"
	"fmt"
	"slices"
	"time"
)

// pairRef is one queued pair: the request it belongs to, its index there and
// its assembled length in tokens. r == nil marks a removed entry.
type pairRef struct {
	r   *request
	idx int32
	n   int32
}

// job is one batch on its way to an instance and back. Job values and their
// refs slices are recycled through the scheduler's free list.
type job struct {
	refs  []pairRef
	seq   int  // padded length: the longest row
	real  int  // real tokens
	mixed bool // pairs of more than one request
	slot  int

	// set by the worker
	start, end time.Time
	err        error
	dead       error // the slot's instance could not be replaced: why
}

type slotState struct {
	work    chan *job // capacity 1; sent to only while the slot is idle
	running *job
	pending []*job
	load    int // padded tokens of running and pending jobs
	dead    bool
}

func (s *slotState) idle() bool { return !s.dead && s.running == nil && len(s.pending) == 0 }

type winEntry struct {
	n   int32
	pos int32
}

// scheduler is the batcher: ONE goroutine owns the queue, the slots and
// every request's scheduling fields. Callers, tokenizer workers and instance
// workers talk to it through channels only.
type scheduler struct {
	e    *Engine
	cfg  Config
	in   chan *request
	done chan *job
	wake chan struct{}

	q     []pairRef // FIFO; q[head:] holds the live entries and holes
	head  int
	live  int
	slots []slotState
	rr    int
	plan  []*job // adaptive: batches cut from the last window, not yet sent
	cuts  []int
	dp    []dpCell
	free  []*job
	stamp uint64
	win   []winEntry

	// fixed mode
	timer     *time.Timer
	timerAt   time.Time
	armed     bool
	openSince time.Time // when the current partial batch started collecting
	draining  bool
	brokenErr error // every slot is dead
}

func newScheduler(e *Engine) *scheduler {
	s := &scheduler{
		e:     e,
		cfg:   e.cfg,
		in:    make(chan *request, 64),
		done:  make(chan *job, e.cfg.Instances),
		wake:  make(chan struct{}, 1),
		slots: make([]slotState, e.cfg.Instances),
	}
	for i := range s.slots {
		s.slots[i].work = make(chan *job, 1)
	}
	return s
}

// poke asks the scheduler to sweep cancelled requests out of the queue.
// Never blocks.
func (s *scheduler) poke() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func (s *scheduler) run() {
	defer s.e.goroutines.Done()
	s.timer = time.NewTimer(time.Hour)
	s.timer.Stop()
	defer s.timer.Stop()
	drain := s.e.drain
	for {
		select {
		case r := <-s.in:
			s.enqueue(r)
		case j := <-s.done:
			s.complete(j)
		case <-s.wake:
			s.sweep()
		case <-s.timer.C:
			s.armed = false
		case <-drain:
			s.draining = true
			drain = nil
		case <-s.e.quit:
			return
		}
		// Take in everything else that is ready before cutting batches, so
		// a batch sees as many candidates as possible.
	absorb:
		for {
			select {
			case r := <-s.in:
				s.enqueue(r)
			case j := <-s.done:
				s.complete(j)
			default:
				break absorb
			}
		}
		s.dispatch()
	}
}

func (s *scheduler) enqueue(r *request) {
	if r.cancelled.Load() {
		s.e.c.queued.Add(-int64(r.n))
		s.e.c.dropped.Add(uint64(r.n))
		return
	}
	if s.brokenErr != nil {
		s.e.c.queued.Add(-int64(r.n))
		s.e.c.abandoned.Add(uint64(r.n))
		r.err, r.reason = s.brokenErr, ReasonBackend
		r.finished = true
		close(r.done)
		return
	}
	if s.live == 0 {
		s.openSince = time.Now()
	}
	r.remaining = r.n
	for i := range r.n {
		s.q = append(s.q, pairRef{r: r, idx: int32(i), n: r.off[i+1] - r.off[i]})
	}
	s.live += r.n
}

// sweep removes queued pairs of cancelled and already-failed requests, from
// the queue and from batches waiting at busy slots (fixed mode, round-robin).
func (s *scheduler) sweep() {
	for i := s.head; i < len(s.q); i++ {
		if r := s.q[i].r; r != nil && (r.finished || r.cancelled.Load()) {
			s.removeAt(i)
		}
	}
	s.advance()
	for k := range s.slots {
		st := &s.slots[k]
		kept := st.pending[:0]
		for _, j := range st.pending {
			st.load -= len(j.refs) * j.seq
			if s.prune(j) {
				s.recycle(j)
				continue
			}
			st.load += len(j.refs) * j.seq
			kept = append(kept, j)
		}
		clear(st.pending[len(kept):])
		st.pending = kept
	}
	kept := s.plan[:0]
	for _, j := range s.plan {
		if s.prune(j) {
			s.recycle(j)
			continue
		}
		kept = append(kept, j)
	}
	clear(s.plan[len(kept):])
	s.plan = kept
}

// removeAt drops queued entry i, which never reached a backend.
func (s *scheduler) removeAt(i int) {
	r := s.q[i].r
	s.q[i].r = nil
	s.live--
	s.drop(r)
}

// drop books one pair of r removed before any backend saw it.
func (s *scheduler) drop(r *request) {
	r.remaining--
	s.e.c.queued.Add(-1)
	if r.cancelled.Load() && !r.finished {
		s.e.c.dropped.Add(1)
	} else {
		s.e.c.abandoned.Add(1)
	}
}

// prune removes from a batch not yet started the pairs of cancelled and
// failed requests, recomputing its shape. It reports whether j is now empty.
func (s *scheduler) prune(j *job) bool {
	kept := j.refs[:0]
	j.seq, j.real, j.mixed = 0, 0, false
	for _, ref := range j.refs {
		if ref.r.finished || ref.r.cancelled.Load() {
			s.drop(ref.r)
			continue
		}
		kept = append(kept, ref)
		j.seq = max(j.seq, int(ref.n))
		j.real += int(ref.n)
		j.mixed = j.mixed || ref.r != kept[0].r
	}
	clear(j.refs[len(kept):])
	j.refs = kept
	return len(kept) == 0
}

// advance moves head past removed entries and compacts the queue when the
// dead prefix is large.
func (s *scheduler) advance() {
	for s.head < len(s.q) && s.q[s.head].r == nil {
		s.head++
	}
	if s.head == len(s.q) {
		clear(s.q)
		s.q, s.head = s.q[:0], 0
		return
	}
	if s.head > 1024 && s.head > len(s.q)/2 {
		n := copy(s.q, s.q[s.head:])
		clear(s.q[n:])
		s.q, s.head = s.q[:n], 0
	}
}

func (s *scheduler) finish(r *request) {
	r.finished = true
	close(r.done)
}

func (s *scheduler) newJob() *job {
	if n := len(s.free); n > 0 {
		j := s.free[n-1]
		s.free = s.free[:n-1]
		return j
	}
	return &job{refs: make([]pairRef, 0, s.cfg.MaxBatch)}
}

func (s *scheduler) recycle(j *job) {
	clear(j.refs)
	*j = job{refs: j.refs[:0]}
	s.free = append(s.free, j)
}

// take moves queued entry i into j.
func (s *scheduler) take(j *job, i int) {
	ref := s.q[i]
	s.q[i].r = nil
	s.live--
	j.refs = append(j.refs, ref)
	j.real += int(ref.n)
	j.seq = max(j.seq, int(ref.n))
	if ref.r.stamp != s.stamp {
		ref.r.stamp = s.stamp
		ref.r.batches++
		if len(j.refs) > 1 {
			j.mixed = true
		}
	}
}

func (s *scheduler) dispatch() {
	if s.brokenErr != nil {
		return
	}
	if s.cfg.Mode == ModeFixed {
		s.dispatchFixed()
		return
	}
	for {
		rr := s.rr
		slot := s.pickIdle()
		if slot < 0 {
			return
		}
		j := s.nextPlanned()
		if j == nil {
			s.rr = rr // no batch went out: the turn is not used up
			if s.live == 0 {
				return
			}
			s.planWindow() // takes at least one pair or removes cancelled ones
			continue
		}
		s.assign(slot, j)
	}
}

// pickIdle returns the slot the next adaptive batch goes to, or -1 if no
// instance is idle (then no batch is cut: one is cut the moment an instance
// frees, never on a timer).
func (s *scheduler) pickIdle() int {
	first := -1
	for i := range s.slots {
		if s.slots[i].idle() {
			first = i
			break
		}
	}
	if first < 0 {
		return -1
	}
	if s.cfg.Routing == RouteLeastLoaded {
		return first
	}
	// Round-robin: the next live slot in turn gets the batch even if it is
	// busy (it waits there, one deep).
	for k := range s.slots {
		i := (s.rr + k) % len(s.slots)
		if s.slots[i].dead {
			continue
		}
		if len(s.slots[i].pending) > 0 {
			return -1
		}
		s.rr = (i + 1) % len(s.slots)
		return i
	}
	return -1
}

// planWindow cuts the next batches in adaptive mode. It takes the window,
// the oldest Window queued pairs (FIFO) extended to the end of the call that
// straddles its end (at most to 2 x Window), sorts it by length and cuts
// it into consecutive batches of at most MaxBatch rows with rows x longest
// row <= TokenBudget (the bounds PlanBatches applies to a whole workload),
// at the cut points cutSorted chooses. The batches go out one by one as
// instances free; the next window is planned when they are gone. So a pair
// waits behind at most the pairs queued before it plus its own window,
// every call in a window finishes with that window's last batch, and pairs
// of similar length from different calls share batches. A call queued just
// after a cut waits for one window more, which is why the window is kept
// small against the pairs in flight (Config.Window).
func (s *scheduler) planWindow() {
	s.win = s.win[:0]
	var last *request
	for i := s.head; i < len(s.q); i++ {
		ref := s.q[i]
		if ref.r == nil {
			continue
		}
		if ref.r.finished || ref.r.cancelled.Load() {
			s.removeAt(i)
			continue
		}
		// Full: stop at a call boundary, so calls are not split between
		// windows (up to twice the window for a call straddling the end).
		if n := len(s.win); n >= s.cfg.Window && (ref.r != last || n >= 2*s.cfg.Window) {
			break
		}
		s.win = append(s.win, winEntry{n: ref.n, pos: int32(i)})
		last = ref.r
	}
	slices.SortFunc(s.win, func(a, b winEntry) int {
		if c := cmp.Compare(a.n, b.n); c != 0 {
			return c
		}
		return cmp.Compare(a.pos, b.pos)
	})
	s.cuts = cutSorted(s.cuts, s.win, s.cfg.MaxBatch, s.cfg.TokenBudget, s.cfg.BatchOverhead, &s.dp)
	// Fewer batches than idle instances (light load): spread the window
	// over them in consecutive slices of about equal real tokens, so no
	// instance idles while this window's pairs wait and the slice of the
	// longest pairs is not the one every caller waits for. Under load one
	// instance is idle at a time and this never applies.
	if idle := s.idleSlots(); len(s.cuts) < idle && len(s.win) > len(s.cuts) {
		s.cuts = balancedCuts(s.cuts[:0], s.win, min(idle, len(s.win)))
	}
	k := 0
	for _, rows := range s.cuts {
		s.stamp++
		j := s.newJob()
		for _, w := range s.win[k : k+rows] {
			s.take(j, int(w.pos))
		}
		s.plan = append(s.plan, j)
		k += rows
	}
	s.advance() // only now: it may compact the queue and move positions
}

// cutSorted partitions entries sorted by length into consecutive batches of
// at most maxBatch rows and rows x longest <= budget (a longer entry goes
// alone), minimising padded tokens plus `overhead` tokens per batch: one
// dynamic programme over the window, O(len x maxBatch). The overhead term
// keeps batches full unless splitting one saves more than that much
// padding (a few long pairs no longer pad a batch of shorter ones). It
// returns the batch sizes in order, reusing cuts and dp.
func cutSorted(cuts []int, win []winEntry, maxBatch, budget, overhead int, dp *[]dpCell) []int {
	n := len(win)
	if cap(*dp) < n+1 {
		*dp = make([]dpCell, n+1)
	}
	f := (*dp)[:n+1]
	f[0] = dpCell{}
	for i := 1; i <= n; i++ {
		longest := int(win[i-1].n) // sorted: the last row of a batch is its longest
		best := dpCell{cost: -1}
		for r := 1; r <= min(maxBatch, i); r++ {
			if r > 1 && r*longest > budget {
				break
			}
			c := f[i-r].cost + r*longest + overhead
			if best.cost < 0 || c < best.cost {
				best = dpCell{cost: c, rows: r}
			}
		}
		f[i] = best
	}
	cuts = cuts[:0]
	for i := n; i > 0; i -= f[i].rows {
		cuts = append(cuts, f[i].rows)
	}
	slices.Reverse(cuts)
	return cuts
}

type dpCell struct{ cost, rows int }

// balancedCuts splits the entries of win (sorted by length) into k <=
// len(win) consecutive batches of at least one entry each whose real tokens
// are about equal (batch i ends at the first entry where the running total
// reaches i+1 k-ths of the whole), appended to cuts. Forward time on the CPU
// backend follows real tokens, so the batches finish at about the same time;
// equal row counts would leave the batch of the longest rows last.
func balancedCuts(cuts []int, win []winEntry, k int) []int {
	total := 0
	for _, w := range win {
		total += int(w.n)
	}
	start, sum := 0, 0
	for i := 0; i < k-1; i++ {
		goal := total * (i + 1) / k
		end := start + 1 // at least one entry
		sum += int(win[start].n)
		// leave at least one entry for each batch still to cut
		for end < len(win)-(k-1-i) && sum+int(win[end].n) <= goal {
			sum += int(win[end].n)
			end++
		}
		cuts = append(cuts, end-start)
		start = end
	}
	return append(cuts, len(win)-start)
}

func (s *scheduler) idleSlots() int {
	n := 0
	for i := range s.slots {
		if s.slots[i].idle() {
			n++
		}
	}
	return n
}

// nextPlanned pops the next planned batch, without the pairs of calls that
// were cancelled or failed since it was cut; nil when the plan is empty.
func (s *scheduler) nextPlanned() *job {
	for len(s.plan) > 0 {
		j := s.plan[0]
		s.plan[0] = nil
		s.plan = s.plan[1:]
		if len(s.plan) == 0 {
			s.plan = s.plan[:0:0]
		}
		if s.prune(j) {
			s.recycle(j)
			continue
		}
		return j
	}
	return nil
}

// formFixed cuts the oldest up to MaxBatch pairs in FIFO order.
func (s *scheduler) formFixed() *job {
	s.stamp++
	j := s.newJob()
	for i := s.head; i < len(s.q) && len(j.refs) < s.cfg.MaxBatch; i++ {
		ref := s.q[i]
		if ref.r == nil {
			continue
		}
		if ref.r.finished || ref.r.cancelled.Load() {
			s.removeAt(i)
			continue
		}
		s.take(j, i)
	}
	s.advance()
	if len(j.refs) == 0 {
		s.recycle(j)
		return nil
	}
	return j
}

func (s *scheduler) dispatchFixed() {
	now := time.Now()
	for s.live > 0 {
		due := s.live >= s.cfg.MaxBatch || s.draining || !now.Before(s.openSince.Add(s.cfg.Timeout))
		if !due {
			break
		}
		j := s.formFixed()
		if j == nil {
			break
		}
		s.assign(s.route(), j)
		s.openSince = now
	}
	if s.live == 0 {
		if s.armed {
			s.timer.Stop()
			s.armed = false
		}
		return
	}
	at := s.openSince.Add(s.cfg.Timeout)
	if !s.armed || !at.Equal(s.timerAt) {
		s.timer.Reset(at.Sub(now))
		s.timerAt, s.armed = at, true
	}
}

// route picks the slot for a fixed-mode batch.
func (s *scheduler) route() int {
	if s.cfg.Routing == RouteRoundRobin {
		for k := range s.slots {
			i := (s.rr + k) % len(s.slots)
			if !s.slots[i].dead {
				s.rr = (i + 1) % len(s.slots)
				return i
			}
		}
	}
	best := -1
	for i := range s.slots {
		if !s.slots[i].dead && (best < 0 || s.slots[i].load < s.slots[best].load) {
			best = i
		}
	}
	return best
}

func (s *scheduler) assign(slot int, j *job) {
	j.slot = slot
	st := &s.slots[slot]
	st.load += len(j.refs) * j.seq
	if st.running == nil {
		s.start(st, j)
		return
	}
	st.pending = append(st.pending, j)
}

// start hands j to its idle slot's worker. Its pairs leave the queue (and
// the MaxQueue count) here, not when the batch was cut, so batches waiting at
// a busy slot still count as queued.
func (s *scheduler) start(st *slotState, j *job) {
	s.e.c.queued.Add(-int64(len(j.refs)))
	st.running = j
	st.work <- j
}

// complete books a finished batch and resolves its requests.
func (s *scheduler) complete(j *job) {
	padded := len(j.refs) * j.seq
	failed := false
	for _, ref := range j.refs {
		r := ref.r
		r.remaining--
		if r.finished {
			continue
		}
		if r.firstStart.IsZero() || j.start.Before(r.firstStart) {
			r.firstStart = j.start
		}
		if j.end.After(r.lastEnd) {
			r.lastEnd = j.end
		}
		if j.err != nil {
			r.err, r.reason = j.err, ReasonBackend
			s.finish(r)
			failed = true
			continue
		}
		if r.remaining == 0 && !r.cancelled.Load() {
			s.finish(r)
		}
	}
	st := &s.slots[j.slot]
	st.load -= padded
	st.running = nil
	dead, slot := j.dead, j.slot
	s.recycle(j)
	if dead != nil {
		s.killSlot(st, slot, dead)
	} else {
		for len(st.pending) > 0 {
			next := st.pending[0]
			st.pending = slices.Delete(st.pending, 0, 1)
			st.load -= len(next.refs) * next.seq
			if s.prune(next) { // every pair's caller gave up meanwhile
				s.recycle(next)
				continue
			}
			st.load += len(next.refs) * next.seq
			s.start(st, next)
			break
		}
	}
	if failed {
		s.sweep()
	}
}

// killSlot retires a slot whose instance could not be replaced: its pending
// batches fail, and if no slot is left every queued call fails.
func (s *scheduler) killSlot(st *slotState, slot int, cause error) {
	st.dead = true
	err := fmt.Errorf("%w: instance %d lost and could not be rebuilt: %w", ErrBackend, slot, cause)
	for _, j := range st.pending {
		for _, ref := range j.refs {
			r := ref.r
			r.remaining--
			if !r.finished {
				r.err, r.reason = err, ReasonBackend
				s.finish(r)
			}
		}
		s.e.c.queued.Add(-int64(len(j.refs)))
		s.e.c.abandoned.Add(uint64(len(j.refs)))
		s.recycle(j)
	}
	st.pending = nil
	for i := range s.slots {
		if !s.slots[i].dead {
			s.sweep()
			return
		}
	}
	s.brokenErr = err
	fail := func(r *request) {
		if r != nil && !r.finished {
			r.err, r.reason = err, ReasonBackend
			s.finish(r)
		}
	}
	for i := s.head; i < len(s.q); i++ {
		fail(s.q[i].r)
	}
	for _, j := range s.plan {
		for _, ref := range j.refs {
			fail(ref.r)
		}
	}
	s.sweep()
}
