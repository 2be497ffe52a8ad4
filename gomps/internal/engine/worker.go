package engine

import (
	"fmt"
	"runtime"
	"time"
)

// workerLoop owns pool slot `slot`: it locks itself to an OS thread, builds
// the slot's instance there, and runs the batches the scheduler sends it.
func (e *Engine) workerLoop(slot int, ready chan<- error) {
	defer e.goroutines.Done()
	// Locked for good: the thread exits with the goroutine, taking any
	// thread-local backend state (an OpenMP pool) with it.
	runtime.LockOSThread()
	inst, err := e.buildInstance(slot)
	ready <- err
	if err != nil {
		return
	}
	w := &worker{e: e, slot: slot, inst: inst}
	work := e.sched.slots[slot].work
	for {
		select {
		case j := <-work:
			if !w.run(j) {
				return
			}
		case <-e.quit:
			w.close()
			return
		}
	}
}

func (e *Engine) buildInstance(slot int) (inst Instance, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("instance %d: factory panicked: %v", slot, p)
		}
	}()
	inst, err = e.newInstance(slot)
	if err != nil {
		return nil, fmt.Errorf("instance %d: %w", slot, err)
	}
	if inst == nil {
		return nil, fmt.Errorf("instance %d: factory returned nil", slot)
	}
	if err := inst.SetThreads(e.threadsPer); err != nil {
		_ = inst.Close()
		return nil, fmt.Errorf("instance %d: set threads %d: %w", slot, e.threadsPer, err)
	}
	return inst, nil
}

type worker struct {
	e      *Engine
	slot   int
	inst   Instance
	batch  Batch
	logits []float32
}

func (w *worker) close() {
	if w.inst == nil {
		return
	}
	func() {
		defer func() {
			if p := recover(); p != nil {
				w.e.addCloseErr(fmt.Errorf("instance %d: close panicked: %v", w.slot, p))
			}
		}()
		if err := w.inst.Close(); err != nil {
			w.e.addCloseErr(fmt.Errorf("instance %d: close: %w", w.slot, err))
		}
	}()
	w.inst = nil
}

// run forwards one batch under the thread budget, writes its scores into the
// requests and reports back. It returns false when the worker must exit
// (the engine is closing, or the slot is dead).
func (w *worker) run(j *job) bool {
	e := w.e
	th := e.budget.acquire(e.threadsPer)
	select {
	case <-e.quit: // nobody is waiting for this batch any more
		e.budget.release(th)
		w.close()
		return false
	default:
	}
	j.start = time.Now()
	w.pack(j)
	err := w.forward()
	j.end = time.Now()
	e.budget.release(th)
	w.book(j, err)
	if err == nil {
		nl := e.cfg.Labels
		for k, ref := range j.refs {
			i := int(ref.idx) * nl
			copy(ref.r.logits[i:i+nl], w.logits[k*nl:(k+1)*nl])
		}
	} else {
		j.err = err
		if _, ok := err.(*panicError); ok {
			// The context may be corrupt: discard it and build a new one.
			w.close()
			inst, berr := e.buildInstance(w.slot)
			if berr != nil {
				j.dead = berr
				e.sched.done <- j
				return false
			}
			w.inst = inst
		}
	}
	e.sched.done <- j
	return true
}

// book counts a forward call that ran (here, not in the scheduler, so a
// batch still running when the engine closes is counted too).
func (w *worker) book(j *job, err error) {
	c := w.e.c
	rows := len(j.refs)
	padded := rows * j.seq
	c.batches.Add(1)
	c.rows.Add(uint64(rows))
	c.realTokens.Add(uint64(j.real))
	c.paddedTokens.Add(uint64(padded))
	if j.mixed {
		c.mixed.Add(1)
	}
	c.batchRows.observe(float64(rows))
	c.batchTokens.observe(float64(padded))
	c.waste.observe(1 - float64(j.real)/float64(padded))
	sc := &c.slots[w.slot]
	sc.batches.Add(1)
	sc.rows.Add(uint64(rows))
	sc.busy.Add(int64(j.end.Sub(j.start)))
	if err != nil {
		c.failedBatch.Add(1)
		if _, ok := err.(*panicError); ok {
			c.panics.Add(1)
		}
	} else {
		c.scored.Add(uint64(rows))
	}
}

// pack lays the batch's pairs out as rows of w.batch, padded with id 0 and
// type 0 to the longest row. Buffers are reused across batches.
func (w *worker) pack(j *job) {
	b := &w.batch
	rows, seq := len(j.refs), j.seq
	b.Rows, b.Seq = rows, seq
	b.IDs = grow(b.IDs, rows*seq)
	b.Types = grow(b.Types, rows*seq)
	b.Lengths = grow(b.Lengths, rows)
	w.logits = growF(w.logits, rows*w.e.cfg.Labels)
	for k, ref := range j.refs {
		r := ref.r
		lo, hi := r.off[ref.idx], r.off[ref.idx+1]
		row := k * seq
		n := copy(b.IDs[row:row+seq], r.ids[lo:hi])
		copy(b.Types[row:row+seq], r.types[lo:hi])
		clear(b.IDs[row+n : row+seq])
		clear(b.Types[row+n : row+seq])
		b.Lengths[k] = int32(n)
	}
}

type panicError struct {
	slot int
	val  any
}

func (p *panicError) Error() string {
	return fmt.Sprintf("instance %d: forward panicked: %v", p.slot, p.val)
}

func (p *panicError) Unwrap() error { return ErrBackend }

func (w *worker) forward() (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = &panicError{slot: w.slot, val: p}
		}
	}()
	if err := w.inst.Forward(&w.batch, w.logits[:w.batch.Rows*w.e.cfg.Labels]); err != nil {
		return fmt.Errorf("instance %d: forward %dx%d: %w: %w", w.slot, w.batch.Rows, w.batch.Seq, ErrBackend, err)
	}
	return nil
}

func grow(s []int32, n int) []int32 {
	if cap(s) < n {
		return make([]int32, n, n+n/4)
	}
	return s[:n]
}

func growF(s []float32, n int) []float32 {
	if cap(s) < n {
		return make([]float32, n)
	}
	return s[:n]
}
