package engine

import "slices"

// Helpers for the raw forward-throughput baseline that engine overhead is
// judged against: the same pairs, pre-assembled, sorted by length over the
// whole workload, cut by the token budget and forwarded back to back.

// PlanBatches sorts pairs by length (stable) and cuts them into batches the
// way the adaptive batcher bounds one: at most maxBatch rows and rows x
// longest row <= tokenBudget (a pair longer than the budget goes alone). It
// returns the pair indices of each batch.
func PlanBatches(lengths []int, maxBatch, tokenBudget int) [][]int {
	order := make([]int, len(lengths))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return lengths[a] - lengths[b] })
	var out [][]int
	for k := 0; k < len(order); {
		rows, longest := 1, lengths[order[k]]
		for k+rows < len(order) && rows < maxBatch && (rows+1)*max(longest, lengths[order[k+rows]]) <= tokenBudget {
			longest = max(longest, lengths[order[k+rows]])
			rows++
		}
		out = append(out, order[k:k+rows:k+rows])
		k += rows
	}
	return out
}

// Fill lays out rows of assembled pairs (ids[i], types[i] as AssemblePair
// returns them) for the pairs in `rows`, padded with id 0 and type 0 to the
// longest, reusing b's buffers. It is the packing the engine's workers do.
func (b *Batch) Fill(ids, types [][]int32, rows []int) {
	seq := 0
	for _, p := range rows {
		seq = max(seq, len(ids[p]))
	}
	b.Rows, b.Seq = len(rows), seq
	b.IDs = grow(b.IDs, len(rows)*seq)
	b.Types = grow(b.Types, len(rows)*seq)
	b.Lengths = grow(b.Lengths, len(rows))
	for k, p := range rows {
		row := k * seq
		n := copy(b.IDs[row:row+seq], ids[p])
		copy(b.Types[row:row+seq], types[p])
		clear(b.IDs[row+n : row+seq])
		clear(b.Types[row+n : row+seq])
		b.Lengths[k] = int32(n)
	}
}
