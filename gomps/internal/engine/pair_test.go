package engine

import (
	"fmt"
	"testing"
	"testing/synctest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func seq(from, n int) []int32 {
	s := make([]int32, n)
	for i := range s {
		s[i] = int32(from + i)
	}
	return s
}

// Hand-computed against the rule in tokenizers' truncation.rs. The first
// block is that file's own longest_first table (max_length 7 for the two
// sequences, i.e. maxLen 10 with the three specials); the rest are worked
// out by hand below each case.
func TestPairLengths(t *testing.T) {
	t.Parallel()
	cases := []struct {
		nq, np, maxLen int
		kq, kp         int
		cut            bool
	}{
		// tokenizers' table: lengths 0 (empty), 2 (short), 4 (medium), 8 (long), budget 7.
		{0, 0, 10, 0, 0, false},
		{0, 2, 10, 0, 2, false},
		{0, 4, 10, 0, 4, false},
		{0, 8, 10, 0, 7, true},
		{2, 0, 10, 2, 0, false},
		{2, 2, 10, 2, 2, false},
		{2, 4, 10, 2, 4, false},
		{2, 8, 10, 2, 5, true},
		{4, 0, 10, 4, 0, false},
		{4, 2, 10, 4, 2, false},
		{4, 4, 10, 3, 4, true}, // tie: both halved, odd token to the passage
		{4, 8, 10, 3, 4, true},
		{8, 0, 10, 7, 0, true},
		{8, 2, 10, 5, 2, true},
		{8, 4, 10, 4, 3, true}, // query longer: it gets the odd token
		{8, 8, 10, 3, 4, true},
		// budget 509 (maxLen 512): typical query, long passage -> passage cut to 509-9 = 500.
		{9, 600, 512, 9, 500, true},
		// exactly fits: 9 + 500 = 509.
		{9, 500, 512, 9, 500, false},
		// one over: 9 + 501 -> passage loses one.
		{9, 501, 512, 9, 500, true},
		// both long, odd budget 509: n1 = 254, n2 = 255 to the longer side.
		{300, 400, 512, 254, 255, true},
		{400, 300, 512, 255, 254, true},
		// equal and long: the passage (second) gets the odd token.
		{300, 300, 512, 254, 255, true},
		// even budget 508 (maxLen 511): exact halves.
		{300, 400, 511, 254, 254, true},
		// shorter side just over half the budget: n2 = max(n1, 509-n1) = n1, sum > 509 -> halves.
		{255, 1000, 512, 254, 255, true},
		// shorter side exactly half-ish: 254 + max(254, 255) = 509 fits -> keep 254, cut other to 255.
		{254, 1000, 512, 254, 255, true},
		// shorter side longer than the whole budget (n1 > budget special case).
		{600, 700, 512, 254, 255, true},
		// maxLen 3: budget 0, both sides emptied.
		{5, 5, 3, 0, 0, true},
		{0, 0, 3, 0, 0, false},
		// maxLen 4: budget 1 -> n1 = 0, n2 = 1 on the longer side.
		{2, 3, 4, 0, 1, true},
		{3, 2, 4, 1, 0, true},
		// short passage, long query: the query is cut.
		{100, 5, 64, 56, 5, true},
	}
	for _, c := range cases {
		t.Run(fmt.Sprintf("q=%d/p=%d/max=%d", c.nq, c.np, c.maxLen), func(t *testing.T) {
			kq, kp, cut := PairLengths(c.nq, c.np, c.maxLen)
			assert.Equal(t, c.kq, kq, "query tokens kept")
			assert.Equal(t, c.kp, kp, "passage tokens kept")
			assert.Equal(t, c.cut, cut, "truncated")
			assert.LessOrEqual(t, kq+kp+3, max(c.maxLen, 3), "fits")
		})
	}
}

// A passage's tokens past passageTokensNeeded never change its pair: for
// every query that asks for a cap, PairLengths of a longer passage equals
// PairLengths of the capped one.
func TestPassageTokensNeeded(t *testing.T) {
	for maxLen := 3; maxLen <= 40; maxLen++ {
		for nq := 0; nq <= 60; nq++ {
			need := Call{}.tokensNeeded(nq, maxLen)
			if need == 0 {
				assert.True(t, nq > maxLen-pairSpecials || maxLen == pairSpecials, "no cap only for a query over the budget (maxLen %d, nq %d)", maxLen, nq)
				continue
			}
			kq0, kp0, cut0 := PairLengths(nq, need, maxLen)
			for np := need; np <= need+60; np++ {
				kq, kp, cut := PairLengths(nq, np, maxLen)
				if kq != kq0 || kp != kp0 || cut != cut0 {
					t.Fatalf("maxLen=%d nq=%d np=%d: (%d, %d, %v), capped at %d: (%d, %d, %v)", maxLen, nq, np, kq, kp, cut, need, kq0, kp0, cut0)
				}
			}
		}
	}
	assert.Equal(t, 510, Call{}.tokensNeeded(8, 512))
	assert.Equal(t, 3*509+1, Call{MaxChunks: 3}.tokensNeeded(8, 512), "three windows and one more token")
	assert.Equal(t, 100, Call{MaxChunks: 3, MaxPassageTokens: 100}.tokensNeeded(8, 512))
	assert.Equal(t, 100, Call{TruncateLeft: true, MaxPassageTokens: 100}.tokensNeeded(8, 512))
	assert.Equal(t, 0, Call{TruncateLeft: true}.tokensNeeded(8, 512), "the last tokens: all of them")
	assert.Equal(t, 0, Call{}.tokensNeeded(510, 512), "a query over the budget: every passage token counts")
}

func TestAssemblePair(t *testing.T) {
	t.Parallel()
	t.Run("fits", func(t *testing.T) {
		ids, types, cut := AssemblePair([]int32{7, 8}, []int32{20, 21, 22}, 512, 101, 102)
		assert.Equal(t, []int32{101, 7, 8, 102, 20, 21, 22, 102}, ids)
		assert.Equal(t, []int32{0, 0, 0, 0, 1, 1, 1, 1}, types)
		assert.False(t, cut)
	})
	t.Run("longest_first", func(t *testing.T) {
		// budget 7: q 4, p 8 -> 3 and 4, keeping each side's first tokens.
		ids, types, cut := AssemblePair(seq(10, 4), seq(50, 8), 10, 101, 102)
		assert.Equal(t, []int32{101, 10, 11, 12, 102, 50, 51, 52, 53, 102}, ids)
		assert.Equal(t, []int32{0, 0, 0, 0, 0, 1, 1, 1, 1, 1}, types)
		assert.True(t, cut)
	})
	t.Run("empty", func(t *testing.T) {
		ids, types, cut := AssemblePair(nil, nil, 512, 101, 102)
		assert.Equal(t, []int32{101, 102, 102}, ids)
		assert.Equal(t, []int32{0, 0, 1}, types)
		assert.False(t, cut)
	})
	t.Run("append reuses", func(t *testing.T) {
		ids := make([]int32, 0, 64)
		types := make([]int32, 0, 64)
		ids, types, _ = AppendPair(ids, types, []int32{1}, []int32{2}, 512, 101, 102)
		ids2, types2, _ := AppendPair(ids, types, []int32{3}, []int32{4, 5}, 512, 101, 102)
		require.Len(t, ids2, 5+6)
		assert.Equal(t, []int32{101, 1, 102, 2, 102, 101, 3, 102, 4, 5, 102}, ids2)
		assert.Equal(t, []int32{0, 0, 0, 1, 1, 0, 0, 0, 1, 1, 1}, types2)
		assert.Equal(t, &ids[:1][0], &ids2[:1][0], "no reallocation within capacity")
	})
}

func TestPlanBatches(t *testing.T) {
	t.Parallel()
	lengths := []int{10, 50, 12, 11, 300, 49, 10}
	plan := PlanBatches(lengths, 3, 100)
	// sorted: 0(10) 6(10) 3(11) 2(12) 5(49) 1(50) 4(300)
	// [0 6 3]: 3x11=33; then [2 5]: 2x49=98, adding 1 would be 3x50=150;
	// [1]: 50 then 2x300 > 100; [4] alone over the budget.
	assert.Equal(t, [][]int{{0, 6, 3}, {2, 5}, {1}, {4}}, plan)

	ids := [][]int32{{101, 5, 102}, {101, 6, 7, 8, 102}}
	types := [][]int32{{0, 0, 1}, {0, 0, 0, 1, 1}}
	var b Batch
	b.Fill(ids, types, []int{1, 0})
	assert.Equal(t, 2, b.Rows)
	assert.Equal(t, 5, b.Seq)
	assert.Equal(t, []int32{101, 6, 7, 8, 102, 101, 5, 102, 0, 0}, b.IDs)
	assert.Equal(t, []int32{0, 0, 0, 1, 1, 0, 0, 1, 0, 0}, b.Types)
	assert.Equal(t, []int32{5, 3}, b.Lengths)
	b.IDs[9] = 42 // stale content from an earlier batch is cleared on reuse
	b.Fill(ids, types, []int{1, 0})
	assert.Equal(t, int32(0), b.IDs[9])
}

// winOf is a scheduler window of entries of these lengths, in this order.
func winOf(lengths ...int32) []winEntry {
	w := make([]winEntry, len(lengths))
	for i, n := range lengths {
		w[i] = winEntry{n: n, pos: int32(i)}
	}
	return w
}

func TestCutSorted(t *testing.T) {
	t.Parallel()
	var dp []dpCell
	// Three short rows and one long: one batch pads 3 x 190 = 570 tokens.
	// With overhead 1024 a second batch costs more than that padding ...
	assert.Equal(t, []int{4}, cutSorted(nil, winOf(10, 10, 10, 200), 64, 8192, 1024, &dp))
	// ... with overhead 100 splitting the long row off pays.
	assert.Equal(t, []int{3, 1}, cutSorted(nil, winOf(10, 10, 10, 200), 64, 8192, 100, &dp))
	// Equal lengths: as few batches as MaxBatch allows, the first one full.
	hundred := make([]int32, 100)
	for i := range hundred {
		hundred[i] = 100
	}
	assert.Equal(t, []int{64, 36}, cutSorted(nil, winOf(hundred...), 64, 8192, 1024, &dp))
	// The token budget bounds rows: 300 x 27 = 8100 <= 8192 < 300 x 28.
	long := make([]int32, 30)
	for i := range long {
		long[i] = 300
	}
	assert.Equal(t, []int{27, 3}, cutSorted(nil, winOf(long...), 64, 8192, 1024, &dp))
	// A row longer than the budget goes alone.
	assert.Equal(t, []int{1, 1}, cutSorted(nil, winOf(9000, 9000), 64, 8192, 0, &dp))
	assert.Empty(t, cutSorted(nil, nil, 64, 8192, 0, &dp))
}

func TestBalancedCuts(t *testing.T) {
	t.Parallel()
	same := make([]int32, 64)
	for i := range same {
		same[i] = 20
	}
	assert.Equal(t, []int{32, 32}, balancedCuts(nil, winOf(same...), 2), "equal lengths: equal rows")
	assert.Equal(t, []int{2, 2, 3}, balancedCuts(nil, winOf(5, 5, 5, 5, 5, 5, 5), 3))
	assert.Equal(t, []int{1}, balancedCuts(nil, winOf(7), 1))
	// 10 rows of 10 and 2 of 50: 200 tokens; the short rows make one half
	assert.Equal(t, []int{10, 2}, balancedCuts(nil, winOf(10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 50, 50), 2))
	// one very long row: every other batch still gets a row
	assert.Equal(t, []int{1, 1, 1}, balancedCuts(nil, winOf(1, 1, 1000), 3))
	assert.Equal(t, []int{2, 1, 1}, balancedCuts(nil, winOf(1, 1, 1, 1000), 3))
	// rows sorted by length 1..64: each half carries about half the tokens
	var ramp []int32
	for i := int32(1); i <= 64; i++ {
		ramp = append(ramp, i)
	}
	cuts := balancedCuts(nil, winOf(ramp...), 2)
	require.Len(t, cuts, 2)
	assert.Equal(t, 64, cuts[0]+cuts[1])
	first := 0
	for _, n := range ramp[:cuts[0]] {
		first += int(n)
	}
	assert.InDelta(t, 2080/2, first, 64, "tokens of the first batch (of 2080)")
	assert.Greater(t, cuts[0], cuts[1], "the batch of the longer rows has fewer of them")
}

func TestBudgetFIFO(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		b := newBudget(2)
		got := b.acquire(5)
		assert.Equal(t, 2, got, "clamped to the total")
		got1 := make(chan string, 2)
		go func() { n := b.acquire(2); got1 <- "forward"; b.release(n) }()
		synctest.Wait()
		go func() { n := b.acquire(1); got1 <- "tokenize"; b.release(n) }()
		synctest.Wait()
		b.release(1) // one thread free, but the earlier waiter needs two: the later one must not jump it
		synctest.Wait()
		assert.Empty(t, got1)
		b.release(1)
		assert.Equal(t, "forward", <-got1)
		assert.Equal(t, "tokenize", <-got1)
		synctest.Wait()
		b.mu.Lock()
		assert.Equal(t, 2, b.free, "all threads back")
		b.mu.Unlock()
	})
}
