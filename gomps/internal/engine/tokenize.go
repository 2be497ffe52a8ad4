package engine

import (
	"fmt"
	"math"
	"time"
)

// tokenizeLoop is one tokenizer pool worker. Calls reach it through the
// bounded e.tokJobs queue; admission control (MaxQueue) bounds the pairs
// behind it.
func (e *Engine) tokenizeLoop() {
	defer e.goroutines.Done()
	for {
		select {
		case r := <-e.tokJobs:
			e.tokenize(r)
		case <-e.quit:
			return
		}
	}
}

func (e *Engine) tokenize(r *request) {
	if r.cancelled.Load() {
		e.c.queued.Add(-int64(r.places))
		e.c.dropped.Add(uint64(r.n))
		return
	}
	th := e.budget.acquire(1)
	select {
	case <-e.quit:
		e.budget.release(th)
		return
	default:
	}
	if r.cancelled.Load() { // cancelled while waiting for a thread
		e.budget.release(th)
		e.c.queued.Add(-int64(r.places))
		e.c.dropped.Add(uint64(r.n))
		return
	}
	err := e.encode(r)
	e.budget.release(th)
	r.passages = nil
	r.tTokEnd = time.Now()
	if err != nil {
		e.c.queued.Add(-int64(r.places))
		e.c.abandoned.Add(uint64(r.n))
		r.err = err
		close(r.done)
		return
	}
	r.tEnqueue = time.Now()
	select {
	case e.sched.in <- r:
	case <-e.quit:
	}
}

// encode tokenizes the query once and the passages, then assembles every
// pair into the request's flat buffers (one allocation each for ids, types,
// offsets and logits).
func (e *Engine) encode(r *request) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%w: encoder panicked: %v", ErrTokenize, p)
			r.reason = ReasonTokenization
		}
	}()
	q, err := e.enc.EncodeQuery(r.query)
	if err != nil {
		r.reason = ReasonTokenization
		return fmt.Errorf("%w: query: %w", ErrTokenize, err)
	}
	need := r.call.tokensNeeded(len(q), e.cfg.MaxSeq)
	if e.cfg.TruncationError {
		need = 0 // a refusal says how long the pair is
	}
	ps, err := e.enc.EncodePassages(r.passages, need)
	if err != nil {
		r.reason = ReasonTokenization
		return fmt.Errorf("%w: passages: %w", ErrTokenize, err)
	}
	if len(ps) != r.n {
		r.reason = ReasonTokenization
		return fmt.Errorf("%w: encoder returned %d passages for %d", ErrTokenize, len(ps), r.n)
	}
	wins, err := e.plan(r, q, ps)
	if err != nil {
		r.reason = ReasonTooLong
		return err
	}
	e.assemble(r, q, wins)
	return nil
}

// plan cuts every passage into the windows that become its pairs, counts
// the call's tokens and truncated passages, and fails a call with a pair
// too long when Config.TruncationError is set.
func (e *Engine) plan(r *request, q []int32, ps [][]int32) ([][]int32, error) {
	maxSeq := e.cfg.MaxSeq
	wins := make([][]int32, 0, len(ps))
	chunked := r.call.chunks() > 1
	total := 0
	for i, p := range ps {
		first := len(wins)
		var cut bool
		wins, cut = r.call.windows(wins, p, len(q), maxSeq)
		for _, w := range wins[first:] {
			kq, kp, c := PairLengths(len(q), len(w), maxSeq)
			cut = cut || c
			total += kq + kp + pairSpecials
		}
		if cut && e.cfg.TruncationError {
			return nil, &TooLongError{Index: i, Tokens: len(q) + len(p) + pairSpecials, MaxLength: maxSeq}
		}
		if cut {
			r.truncated++
		}
		if chunked {
			for range wins[first:] {
				r.owner = append(r.owner, int32(i))
			}
		}
	}
	if total > math.MaxInt32 {
		return nil, fmt.Errorf("%w: %d tokens in one call", ErrTooLong, total)
	}
	r.tokens = total
	return wins, nil
}

// assemble lays out the pairs of the query and each window, then trades the
// queue places admission reserved for one per pair.
func (e *Engine) assemble(r *request, q []int32, wins [][]int32) {
	maxSeq := e.cfg.MaxSeq
	r.ids = make([]int32, 0, r.tokens)
	r.types = make([]int32, 0, r.tokens)
	r.off = make([]int32, len(wins)+1)
	for i, p := range wins {
		q := q
		if r.call.TruncateLeft { // keep the suffixes PairLengths allows; AppendPair then cuts nothing
			kq, kp, _ := PairLengths(len(q), len(p), maxSeq)
			q, p = q[len(q)-kq:], p[len(p)-kp:]
		}
		r.ids, r.types, _ = AppendPair(r.ids, r.types, q, p, maxSeq, e.cfg.ClsID, e.cfg.SepID)
		r.off[i+1] = int32(len(r.ids))
	}
	rows := len(wins)
	r.logits = make([]float32, rows*e.cfg.Labels)
	e.c.queued.Add(int64(rows - r.places))
	e.c.pairs.Add(uint64(rows - r.n))
	r.n, r.places = rows, rows
}
