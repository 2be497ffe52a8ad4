package main

import (
	"fmt"
	"reflect"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/gomps/gomps/gomps/pairio"
)

// InputFile is one input file and its index in the sorted list of files the
// --input pattern matched; the index orders output across files.
type InputFile struct {
	Path  string
	Index int64
}

// Pair is one pairio.Item on its way through the pipeline, flattened for
// Beam's coder, with its input order (File, Seq), so that output order does
// not depend on how the runner shuffles elements.
type Pair struct {
	QID, Query, DocID, Passage string
	InputRank                  int64
	InputScore                 float64
	HasInputScore              bool
	PosFile                    string
	PosLine                    int64
	File                       int64 // InputFile.Index
	Seq                        int64 // 0-based index of the item in the reader's order
}

func pairOf(it *pairio.Item, file, seq int64) Pair {
	return Pair{
		QID: it.QID, Query: it.Query, DocID: it.DocID, Passage: it.Passage,
		InputRank: int64(it.InputRank), InputScore: it.InputScore, HasInputScore: it.HasInputScore,
		PosFile: it.Pos.File, PosLine: int64(it.Pos.Line), File: file, Seq: seq,
	}
}

func (p *Pair) item() pairio.Item {
	return pairio.Item{
		QID: p.QID, Query: p.Query, DocID: p.DocID, Passage: p.Passage,
		InputRank: int(p.InputRank), InputScore: p.InputScore, HasInputScore: p.HasInputScore,
		Pos: pairio.Pos{File: p.PosFile, Line: int(p.PosLine)},
	}
}

// before orders pairs by input order.
func (p *Pair) before(q *Pair) bool {
	if p.File != q.File {
		return p.File < q.File
	}
	return p.Seq < q.Seq
}

// Block is the formatted output of one query, or an empty marker that makes
// sure every shard file is written. The blocks of a shard are written in the
// input order of each query's first pair.
type Block struct {
	File, Seq int64  // input order of the query's first pair
	Text      string // whole output lines, each ending in "\n"
	Empty     bool   // a marker, no output
}

func (b *Block) before(c *Block) bool {
	if b.File != c.File {
		return b.File < c.File
	}
	return b.Seq < c.Seq
}

func init() {
	for _, v := range []any{InputFile{}, Pair{}, Block{}} {
		beam.RegisterType(reflect.TypeOf(v))
	}
}

// shardName is the file shard i of n is written to: Beam's naming,
// "<stem>-00003-of-00008<ext>" for --output "<stem><ext>".
func shardName(stem, ext string, i, n int) string {
	return fmt.Sprintf("%s-%05d-of-%05d%s", stem, i, n, ext)
}
