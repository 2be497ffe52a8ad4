package engine

// Pair assembly: [CLS] query [SEP] passage [SEP] with token types 0 then 1,
// truncated the way Hugging Face tokenizers truncates a pair under
// TruncationStrategy::LongestFirst (direction right, stride 0).
//
// The rule, from tokenizers/src/utils/truncation.rs (truncate_encodings) and
// tokenizer/mod.rs (post_process), restated:
//
//  1. The budget for the two sequences is maxLen minus the 3 special tokens
//     the BERT pair template adds.
//  2. If len(q)+len(p) <= budget nothing is cut.
//  3. Otherwise let n1 be the shorter length and n2 the longer (a tie keeps
//     n1 = the query). If n1 > budget, n2 = n1; else n2 = max(n1, budget-n1).
//     If n1+n2 > budget, both are cut to halves: n1 = budget/2 and
//     n2 = n1 + budget%2, so the odd token goes to the LONGER side (the
//     passage on a tie).
//  4. Each side keeps its first n tokens (truncating a side to more than
//     its length is a no-op).
//
// A budget of zero or less (maxLen <= 3) cuts both sides to nothing, as
// tokenizers does for max_length 0.

// pairSpecials is the number of special tokens in a BERT pair.
const pairSpecials = 3

// PairLengths returns how many query and passage tokens survive longest_first
// truncation of a pair of nq and np tokens to maxLen tokens including the
// three specials. truncated reports whether anything was cut.
func PairLengths(nq, np, maxLen int) (kq, kp int, truncated bool) {
	budget := maxLen - pairSpecials
	if budget <= 0 {
		return 0, 0, nq+np > 0
	}
	if nq+np <= budget {
		return nq, np, false
	}
	n1, n2 := nq, np
	swapped := false
	if n1 > n2 {
		n1, n2 = n2, n1
		swapped = true
	}
	if n1 > budget {
		n2 = n1
	} else {
		n2 = max(n1, budget-n1)
	}
	if n1+n2 > budget {
		n1 = budget / 2
		n2 = n1 + budget%2
	}
	if swapped {
		n1, n2 = n2, n1
	}
	return min(nq, n1), min(np, n2), true
}

// AppendPair appends the assembled pair [CLS] q [SEP] p [SEP] to ids and its
// token types (0 for [CLS] q [SEP], 1 for p [SEP]) to types, truncating q and
// p with PairLengths. It allocates only when ids or types must grow.
func AppendPair(ids, types []int32, q, p []int32, maxLen int, clsID, sepID int32) ([]int32, []int32, bool) {
	kq, kp, truncated := PairLengths(len(q), len(p), maxLen)
	ids = append(ids, clsID)
	ids = append(ids, q[:kq]...)
	ids = append(ids, sepID)
	ids = append(ids, p[:kp]...)
	ids = append(ids, sepID)
	n := kq + kp + pairSpecials
	for i := 0; i < kq+2; i++ {
		types = append(types, 0)
	}
	for i := kq + 2; i < n; i++ {
		types = append(types, 1)
	}
	return ids, types, truncated
}

// AssemblePair returns the model input for one (query, passage) pair given
// their token ids without special tokens: ids = [CLS] q [SEP] p [SEP], types 0
// for the first segment and 1 for the second, at most maxLen tokens (maxLen
// >= 3), truncated longest_first exactly as Hugging Face tokenizers does.
// truncated reports whether tokens were cut.
func AssemblePair(q, p []int32, maxLen int, clsID, sepID int32) (ids, types []int32, truncated bool) {
	kq, kp, _ := PairLengths(len(q), len(p), maxLen)
	n := kq + kp + pairSpecials
	return AppendPair(make([]int32, 0, n), make([]int32, 0, n), q, p, maxLen, clsID, sepID)
}
