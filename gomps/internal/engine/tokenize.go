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
		e.c.queued.Add(-int64(r.n))
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
		e.c.queued.Add(-int64(r.n))
		e.c.dropped.Add(uint64(r.n))
		return
	}
	err := e.encode(r)
	e.budget.release(th)
	r.passages = nil
	r.tTokEnd = time.Now()
	if err != nil {
		e.c.queued.Add(-int64(r.n))
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

// passageTokensNeeded is how many of a passage's first tokens decide its
// pair with a query of nq tokens (0: all). While the query fits the budget,
// PairLengths gives the same result for every passage of budget+1 tokens or
// more, so the tokenizer may stop there and a 2 MiB passage costs what a
// 512-token one does.
func passageTokensNeeded(nq, maxSeq int) int {
	if budget := maxSeq - pairSpecials; budget > 0 && nq <= budget {
		return budget + 1
	}
	return 0
}

// encode tokenizes the query once and the passages, then assembles every pair
// into the request's flat buffers (one allocation each for ids, types,
// offsets and scores).
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
	atLeast := passageTokensNeeded(len(q), e.cfg.MaxSeq)
	if r.left {
		atLeast = 0 // the last tokens are kept: all are needed
	}
	ps, err := e.enc.EncodePassages(r.passages, atLeast)
	if err != nil {
		r.reason = ReasonTokenization
		return fmt.Errorf("%w: passages: %w", ErrTokenize, err)
	}
	if len(ps) != r.n {
		r.reason = ReasonTokenization
		return fmt.Errorf("%w: encoder returned %d passages for %d", ErrTokenize, len(ps), r.n)
	}
	maxSeq := e.cfg.MaxSeq
	total := 0
	for i, p := range ps {
		kq, kp, cut := PairLengths(len(q), len(p), maxSeq)
		if cut {
			if e.cfg.TruncationError {
				r.reason = ReasonTooLong
				return fmt.Errorf("%w: passage %d: %d tokens with the query exceed max sequence %d",
					ErrTooLong, i, len(q)+len(p)+pairSpecials, maxSeq)
			}
			r.truncated++
		}
		total += kq + kp + pairSpecials
	}
	if total > math.MaxInt32 {
		r.reason = ReasonTooLong
		return fmt.Errorf("%w: %d tokens in one call", ErrTooLong, total)
	}
	r.ids = make([]int32, 0, total)
	r.types = make([]int32, 0, total)
	r.off = make([]int32, r.n+1)
	for i, p := range ps {
		q := q
		if r.left { // keep the suffixes PairLengths allows; AppendPair then cuts nothing
			kq, kp, _ := PairLengths(len(q), len(p), maxSeq)
			q, p = q[len(q)-kq:], p[len(p)-kp:]
		}
		r.ids, r.types, _ = AppendPair(r.ids, r.types, q, p, maxSeq, e.cfg.ClsID, e.cfg.SepID)
		r.off[i+1] = int32(len(r.ids))
	}
	r.tokens = total
	r.scores = make([]float32, r.n)
	return nil
}
