package main

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Progress cadence: a terminal bar is redrawn every progressBarEvery; a
// non-terminal stream gets a line every progressLineEvery of work.
const (
	progressBarEvery  = 250 * time.Millisecond
	progressLineEvery = 5 * time.Second
)

// progress reports how many pairs are scored while scoring runs, from its
// own goroutine on a ticker, so it moves as the engine's counters move
// (batch by batch), not when the caller's chunk returns.
//
// On a terminal (bar) it redraws one line, "[=====   ] 42% 1800/4300 pairs,
// 85 pairs/s, eta 29s", every progressBarEvery. Elsewhere it prints a line
// when scoring starts, one every progressLineEvery, and a summary at the
// end. The total is set with setTotal when it becomes known (it may be
// counted while scoring runs); until then the lines show pairs and rate.
type progress struct {
	w     io.Writer
	quiet bool
	bar   bool
	done  func() int // pairs scored since start
	total atomic.Int64

	mu    sync.Mutex // guards the writes to w
	drawn bool       // a bar is on screen
	ended bool
	start time.Time
	stop  chan struct{}
	exit  chan struct{}
}

// newProgress returns a progress over done; nothing is printed before start.
func newProgress(w io.Writer, quiet, bar bool, done func() int) *progress {
	return &progress{w: w, quiet: quiet, bar: bar && !quiet, done: done}
}

// setTotal records the number of pairs the run will score (0 = unknown).
func (p *progress) setTotal(n int) { p.total.Store(int64(n)) }

// begin prints the start line (not on a terminal) and starts the ticker.
func (p *progress) begin(startLine string) {
	p.start = time.Now()
	if p.quiet {
		return
	}
	if !p.bar {
		fmt.Fprintln(p.w, startLine)
	}
	every := progressLineEvery
	if p.bar {
		every = progressBarEvery
		p.report()
	}
	p.stop, p.exit = make(chan struct{}), make(chan struct{})
	go func() {
		defer close(p.exit)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-p.stop:
				return
			case <-t.C:
				p.report()
			}
		}
	}()
}

// report prints the current state: the bar or a line.
func (p *progress) report() {
	n, total := p.done(), int(p.total.Load())
	el := time.Since(p.start).Seconds()
	rate := 0.0
	if el > 0 {
		rate = float64(n) / el
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.bar {
		fmt.Fprint(p.w, "\r"+barLine(n, total, rate)+"\x1b[K")
		p.drawn = true
		return
	}
	fmt.Fprintln(p.w, statusLine(n, total, rate))
}

// end stops the ticker, clears the bar and prints summary (unless quiet or
// summary is ""). Calls after the first do nothing.
func (p *progress) end(summary string) {
	if p.ended {
		return
	}
	p.ended = true
	if p.stop != nil {
		close(p.stop)
		<-p.exit
	}
	if p.quiet {
		return
	}
	if p.drawn {
		fmt.Fprint(p.w, "\r\x1b[K")
	}
	if summary != "" {
		fmt.Fprintln(p.w, summary)
	}
}

// elapsed is the time since begin.
func (p *progress) elapsed() time.Duration { return time.Since(p.start) }

// eta formats the time left at rate, "" when it cannot be told.
func eta(pairs, total int, rate float64) string {
	if total <= 0 || rate <= 0 || pairs >= total {
		return ""
	}
	return time.Duration(float64(total-pairs) / rate * float64(time.Second)).Round(time.Second).String()
}

// statusLine is the non-terminal progress line.
func statusLine(pairs, total int, rate float64) string {
	if total <= 0 {
		return fmt.Sprintf("score: %d pairs, %.0f pairs/s", pairs, rate)
	}
	s := fmt.Sprintf("score: %d/%d pairs (%.0f%%), %.0f pairs/s", pairs, total, 100*min(float64(pairs)/float64(total), 1), rate)
	if e := eta(pairs, total, rate); e != "" {
		s += ", eta " + e
	}
	return s
}

// barLine draws the progress bar: a 30-cell bar and percentage when the total
// is known, else the count alone.
func barLine(pairs, total int, rate float64) string {
	if total <= 0 {
		return fmt.Sprintf("score: %d pairs, %.0f pairs/s", pairs, rate)
	}
	const cells = 30
	frac := min(float64(pairs)/float64(total), 1)
	full := int(frac * cells)
	s := fmt.Sprintf("score: [%s%s] %3.0f%% %d/%d pairs, %.0f pairs/s",
		strings.Repeat("=", full), strings.Repeat(" ", cells-full), 100*frac, pairs, total, rate)
	if e := eta(pairs, total, rate); e != "" {
		s += ", eta " + e
	}
	return s
}
