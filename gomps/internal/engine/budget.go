package engine

import "sync"

// budget is the engine's thread budget: a FIFO counting semaphore over the
// CPU threads that tokenization and all instances may keep busy at once.
// A forward holds its instance's thread count for the duration of the native
// call; a tokenization job holds one thread. FIFO order means a waiting
// forward is never starved by a stream of small tokenization jobs, and a
// waiting tokenization job gets the next free thread before a forward that
// asks after it.
//
// Waiters block on a channel (not a sync.Cond or mutex), so goroutines
// waiting here are durably blocked under testing/synctest.
type budget struct {
	mu      sync.Mutex
	total   int
	free    int
	waiters []budgetWaiter
}

type budgetWaiter struct {
	n  int
	ch chan struct{}
}

func newBudget(total int) *budget {
	return &budget{total: total, free: total}
}

// acquire takes n threads (clamped to the total), blocking until they are free
// and every earlier waiter has been served. It returns the amount taken,
// which the caller hands back to release.
func (b *budget) acquire(n int) int {
	n = min(max(n, 1), b.total)
	b.mu.Lock()
	if len(b.waiters) == 0 && b.free >= n {
		b.free -= n
		b.mu.Unlock()
		return n
	}
	ch := make(chan struct{})
	b.waiters = append(b.waiters, budgetWaiter{n: n, ch: ch})
	b.mu.Unlock()
	<-ch
	return n
}

// release returns n threads and wakes waiters in FIFO order while they fit.
func (b *budget) release(n int) {
	b.mu.Lock()
	b.free += n
	for len(b.waiters) > 0 && b.free >= b.waiters[0].n {
		w := b.waiters[0]
		b.free -= w.n
		b.waiters[0] = budgetWaiter{}
		b.waiters = b.waiters[1:]
		close(w.ch)
	}
	if len(b.waiters) == 0 {
		b.waiters = b.waiters[:0:0]
	}
	b.mu.Unlock()
}
