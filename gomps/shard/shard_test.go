package shard

import (
	"errors"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The rule is a published contract (docs/distributed.md, the package doc):
// these values are FNV-1a 64 test vectors computed independently by hash/fnv
// and the published FNV reference vectors, so a change of hash breaks here.
func TestHashMatchesFNV1a64(t *testing.T) {
	t.Parallel()
	// Reference vectors of the FNV authors (FNV-1a 64): "" and "a".
	assert.Equal(t, uint64(0xcbf29ce484222325), Hash(""), "empty string is the offset basis")
	assert.Equal(t, uint64(0xaf63dc4c8601ec8c), Hash("a"), `FNV-1a 64 of "a"`)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 2000 {
		b := make([]byte, rng.IntN(40))
		for j := range b {
			b[j] = byte(rng.UintN(256))
		}
		h := fnv.New64a()
		_, _ = h.Write(b)
		require.Equal(t, h.Sum64(), Hash(string(b)), "case %d: %q", i, b)
	}
}

func TestOfKnownValues(t *testing.T) {
	t.Parallel()
	// Hash("1037798") etc. computed by hash/fnv; the shard is the remainder.
	for _, qid := range []string{"1037798", "19335", "what is a cross encoder", ""} {
		h := fnv.New64a()
		_, _ = h.Write([]byte(qid))
		for _, n := range []int{1, 2, 3, 7, 64} {
			assert.Equal(t, int(h.Sum64()%uint64(n)), Of(qid, n), "qid=%q/n=%d", qid, n)
		}
	}
}

func TestPartitionIsExactAndDeterministic(t *testing.T) {
	t.Parallel()
	qids := make([]string, 0, 5000)
	for i := range 5000 {
		qids = append(qids, strconv.Itoa(1_000_000+i*37))
	}
	qids = append(qids, "", "query with spaces", "ünïcode", "1/2")
	for _, n := range []int{1, 2, 3, 5, 8, 13} {
		t.Run(fmt.Sprintf("n=%d", n), func(t *testing.T) {
			t.Parallel()
			count := make(map[string]int, len(qids))
			sizes := make([]int, n)
			for i := range n {
				spec, err := ParseSpec(fmt.Sprintf("%d/%d", i, n))
				require.NoError(t, err)
				for _, q := range qids {
					if spec.Keep(q) {
						count[q]++
						sizes[i]++
						assert.Equal(t, spec.Keep(q), spec.Keep(q), "Keep is deterministic")
					}
				}
			}
			assert.Len(t, count, len(qids), "the union of the shards is every qid")
			for q, c := range count {
				assert.Equal(t, 1, c, "qid %q is in exactly one shard", q)
			}
			// Balance: with 5000 ids no shard is empty and none holds
			// more than twice its fair share (a broken hash fails this).
			for i, s := range sizes {
				assert.Greater(t, s, 0, "shard %d is not empty", i)
				assert.Less(t, s, 2*len(qids)/n+10, "shard %d is not overfull", i)
			}
		})
	}
}

func TestParseSpec(t *testing.T) {
	t.Parallel()
	ok := []struct {
		in   string
		want Spec
	}{
		{"0/1", Spec{0, 1}},
		{"3/8", Spec{3, 8}},
		{" 7 / 8 ", Spec{7, 8}},
		{"", Spec{}},
	}
	for _, c := range ok {
		got, err := ParseSpec(c.in)
		require.NoError(t, err, "spec=%q", c.in)
		assert.Equal(t, c.want, got, "spec=%q", c.in)
		assert.Equal(t, c.want.String(), got.String(), "spec=%q", c.in)
	}
	bad := []struct {
		in, msg string
	}{
		{"0/0", "count must be at least 1"},
		{"3/2", "index must be in 0..1"},
		{"2/2", "index must be in 0..1 (shards are numbered from 0), got 2"},
		{"-1/4", "index must be in 0..3"},
		{"x", "want i/n"},
		{"x/4", `index "x" is not a whole number`},
		{"1/y", `count "y" is not a whole number`},
		{"1/2/3", `count "2/3" is not a whole number`},
		{"1/-2", "count must be at least 1"},
	}
	for _, c := range bad {
		_, err := ParseSpec(c.in)
		require.Error(t, err, "spec=%q", c.in)
		assert.True(t, errors.Is(err, ErrSpec), "spec=%q wraps ErrSpec", c.in)
		assert.Contains(t, err.Error(), c.msg, "spec=%q", c.in)
		assert.True(t, strings.HasPrefix(err.Error(), strconv.Quote(c.in)+": "), "spec=%q: %q starts with the spec, no package name", c.in, err)
	}
}

func TestZeroSpecKeepsAll(t *testing.T) {
	t.Parallel()
	var s Spec
	assert.True(t, s.All())
	assert.True(t, s.Keep("anything"))
	one, err := ParseSpec("0/1")
	require.NoError(t, err)
	assert.True(t, one.All())
	assert.True(t, one.Keep("anything"))
	half, err := ParseSpec("0/2")
	require.NoError(t, err)
	assert.False(t, half.All())
}

func TestHashAllocatesNothing(t *testing.T) {
	qid := "1037798"
	allocs := testing.AllocsPerRun(100, func() { _ = Of(qid, 8) })
	assert.Zero(t, allocs)
}

func TestKey(t *testing.T) {
	t.Parallel()
	assert.Equal(t, "1037798", Key("1037798", "who is robert gray"), "the id wins")
	assert.Equal(t, "who is robert gray", Key("", "who is robert gray"), "the text without an id")
	s, err := ParseSpec("1/3")
	require.NoError(t, err)
	for _, q := range []string{"a", "b", "c", "d", "e", "f"} {
		assert.Equal(t, s.Keep(q), s.KeepPair("", q), "text %q", q)
		assert.Equal(t, s.Keep(q), s.KeepPair(q, "other text"), "id %q", q)
	}
}
