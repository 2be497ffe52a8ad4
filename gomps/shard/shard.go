// Package shard splits scoring work deterministically by query, so that every
// candidate of a query lands in the same shard and shards can be scored on
// different machines (a Slurm job array, a Kubernetes Indexed Job, the Beam
// pipeline in cmd/beam) and concatenated afterwards.
//
// The rule, fixed so that every tool and every version agrees:
//
//	shard(qid, n) = FNV-1a-64(bytes of qid) mod n
//
// FNV-1a 64 is hash/fnv's New64a: offset basis 14695981039346656037, prime
// 1099511628211, over the raw bytes of the query id (no normalisation, no
// trailing newline). The query id is the format's own id where it has one
// (the JSONL "qid" field, column 1 of a TREC run) and the query text
// otherwise (TSV input has no id column): see Key.
//
// Shards are numbered from 0, as Slurm's --array=0-N and Kubernetes'
// JOB_COMPLETION_INDEX are: the spec "i/n" means shard i of n, 0 <= i < n.
//
// A Spec is a small value, safe for concurrent use; hashing costs one pass
// over the id and allocates nothing.
package shard

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// ErrSpec is the sentinel every spec parse error wraps (errors.Is works).
var ErrSpec = errors.New("invalid shard spec")

// Spec selects shard Index of Count. The zero Spec selects everything: it
// is what ParseSpec("") returns, so an unset flag means "no sharding".
type Spec struct {
	Index int // 0 <= Index < Count
	Count int // number of shards, >= 1; 0 only in the zero Spec
}

// ParseSpec parses "i/n" (0 <= i < n, n >= 1, both decimal). Surrounding
// spaces are ignored. The empty string gives the zero Spec (all queries).
func ParseSpec(s string) (Spec, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return Spec{}, nil
	}
	is, ns, ok := strings.Cut(s, "/")
	if !ok {
		return Spec{}, fmt.Errorf("%q: %w: want i/n, for example 0/4", s, ErrSpec)
	}
	i, err := strconv.Atoi(strings.TrimSpace(is))
	if err != nil {
		return Spec{}, fmt.Errorf("%q: %w: index %q is not a whole number", s, ErrSpec, is)
	}
	n, err := strconv.Atoi(strings.TrimSpace(ns))
	if err != nil {
		return Spec{}, fmt.Errorf("%q: %w: count %q is not a whole number", s, ErrSpec, ns)
	}
	if n < 1 {
		return Spec{}, fmt.Errorf("%q: %w: count must be at least 1, got %d", s, ErrSpec, n)
	}
	if i < 0 || i >= n {
		return Spec{}, fmt.Errorf("%q: %w: index must be in 0..%d (shards are numbered from 0), got %d", s, ErrSpec, n-1, i)
	}
	return Spec{Index: i, Count: n}, nil
}

// All reports whether s selects every query (the zero Spec or n = 1).
func (s Spec) All() bool { return s.Count <= 1 }

// Keep reports whether the query with this id belongs to shard s.
func (s Spec) Keep(qid string) bool {
	if s.All() {
		return true
	}
	return Of(qid, s.Count) == s.Index
}

// Key is the id a pair is sharded by: its query id, or its query text when
// the input has no ids (TSV, JSONL without "qid"). It is the rule
// pairio.GroupReader groups a query's items by, so a query group never
// straddles two shards.
func Key(qid, query string) string {
	if qid != "" {
		return qid
	}
	return query
}

// KeepPair reports whether the pair with this query id and query text
// belongs to shard s: Keep(Key(qid, query)).
func (s Spec) KeepPair(qid, query string) bool { return s.Keep(Key(qid, query)) }

// String returns "i/n", or "" for the zero Spec.
func (s Spec) String() string {
	if s.Count == 0 {
		return ""
	}
	return strconv.Itoa(s.Index) + "/" + strconv.Itoa(s.Count)
}

// Of returns the shard, in 0..n-1, of the query with this id. It panics if
// n < 1, which is a programmer error (ParseSpec never yields it).
func Of(qid string, n int) int {
	if n < 1 {
		panic("shard: Of with n < 1")
	}
	return int(Hash(qid) % uint64(n))
}

// FNV-1a 64 parameters (the same as hash/fnv's New64a; the test checks).
const (
	fnvOffset64 = 14695981039346656037
	fnvPrime64  = 1099511628211
)

// Hash is FNV-1a 64 of the bytes of qid, equal to hash/fnv's New64a sum.
// Written out so that it allocates nothing.
func Hash(qid string) uint64 {
	h := uint64(fnvOffset64)
	for i := 0; i < len(qid); i++ {
		h ^= uint64(qid[i])
		h *= fnvPrime64
	}
	return h
}
