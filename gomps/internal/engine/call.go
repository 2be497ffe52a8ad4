package engine

import "fmt"

// TooLongError: with Config.TruncationError, passage Index of a call makes
// a pair of Tokens tokens (including [CLS] and two [SEP]), more than
// MaxLength. It matches ErrTooLong.
type TooLongError struct {
	Index     int
	Tokens    int
	MaxLength int
}

func (e *TooLongError) Error() string {
	return fmt.Sprintf("pair %d: %d tokens, longer than the maximum length %d (truncation is off)", e.Index, e.Tokens, e.MaxLength)
}

// Unwrap returns ErrTooLong.
func (e *TooLongError) Unwrap() error { return ErrTooLong }

// Call holds the per-call settings of Score.
type Call struct {
	// TruncateLeft keeps the last tokens of a too-long query or passage
	// (Hugging Face's truncation direction "left") instead of the first;
	// the lengths kept are the same (PairLengths).
	TruncateLeft bool
	// MaxPassageTokens, when positive, cuts every passage to its first
	// MaxPassageTokens tokens before its pair is assembled. A cut asked for
	// is not counted in Result.Truncated.
	MaxPassageTokens int
	// MaxChunks, when above 1, scores a passage too long to pair whole with
	// the query in windows: consecutive runs of the tokens a pair keeps of
	// it (from its end with TruncateLeft), at most MaxChunks, each paired
	// with the query and forwarded as its own row. The passage gets its
	// best window's logits (by label 0); tokens past its last window are
	// cut. 0 or 1: one window, the pair truncated as usual.
	MaxChunks int
}

// chunks is the most windows a passage may take.
func (c Call) chunks() int { return max(1, c.MaxChunks) }

// tokensNeeded is how many of a passage's first tokens decide its pairs
// with a query of nq tokens (0: all of them). While the query fits the
// budget, every passage of more than budget tokens keeps the same tokens
// per window, so chunks x budget + 1 tokens tell all its windows and
// whether any are left over, and a 2 MiB passage costs what a 512-token one
// does. MaxPassageTokens bounds it too.
func (c Call) tokensNeeded(nq, maxSeq int) int {
	need := 0
	if budget := maxSeq - pairSpecials; budget > 0 && nq <= budget && !c.TruncateLeft {
		need = c.chunks()*budget + 1
	}
	if m := c.MaxPassageTokens; m > 0 && (need == 0 || m < need) {
		need = m
	}
	return need
}

// windows appends to dst the parts of passage p that become pairs with a
// query of nq tokens, and reports whether tokens of p were left out of
// them (past its last window). p is first cut to MaxPassageTokens.
func (c Call) windows(dst [][]int32, p []int32, nq, maxSeq int) ([][]int32, bool) {
	if m := c.MaxPassageTokens; m > 0 && len(p) > m {
		p = p[:m]
	}
	_, w, cut := PairLengths(nq, len(p), maxSeq)
	if !cut || c.chunks() == 1 || w == 0 {
		return append(dst, p), false
	}
	for k := 0; k < c.chunks() && len(p) > 0; k++ {
		n := min(w, len(p))
		if c.TruncateLeft {
			dst = append(dst, p[len(p)-n:])
			p = p[:len(p)-n]
		} else {
			dst = append(dst, p[:n])
			p = p[n:]
		}
	}
	return dst, len(p) > 0
}

// fold returns the call's scores and logits per passage (n passages,
// labels per row): each row's own, or with windows each passage's best
// row's, by label 0.
func (r *request) fold(n, labels int) (scores, logits []float32) {
	scores = make([]float32, n)
	if r.owner == nil {
		for i := range scores {
			scores[i] = r.logits[i*labels]
		}
		return scores, r.logits
	}
	logits = make([]float32, n*labels)
	best := make([]int, n)
	for i := range best {
		best[i] = -1
	}
	for row, i := range r.owner {
		if b := best[i]; b < 0 || r.logits[row*labels] > r.logits[b*labels] {
			best[i] = row
		}
	}
	for i, row := range best {
		copy(logits[i*labels:(i+1)*labels], r.logits[row*labels:(row+1)*labels])
		scores[i] = logits[i*labels]
	}
	return scores, logits
}
