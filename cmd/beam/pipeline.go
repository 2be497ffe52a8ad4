package main

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"strings"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/io/filesystem"
	"github.com/gomps/gomps/gomps/pairio"
)

// Options are the pipeline's own settings (Beam's runner options are
// Beam's flags, see main.go). Paths may be on any Beam filesystem (local,
// gs://) that the launcher and every worker can read.
type Options struct {
	Input        string // file or glob; for trec, the run file(s)
	Format       string // tsv, jsonl or trec; "" = from the extension of Input
	Queries      string // trec: the qid<TAB>query file
	Passages     string // trec: the docid<TAB>text file
	Header       bool   // the first line of each file is a header, whatever it says (else: pairio's auto rule)
	SkipBad      bool   // count malformed lines instead of failing
	Output       string // "<stem><ext>": shards are <stem>-00000-of-0000N<ext>
	OutputFormat string // tsv, jsonl or trec; "" = the input's kind
	Shards       int    // output shards, split by shard.Of(qid, Shards)
	TopK         int
	Rerank       bool
	Tag          string
	Batch        int // pairs per scoring batch within a bundle
	Model        ModelConfig

	header pairio.Header
}

// check fills defaults and validates; every error names the flag.
func (o *Options) check() error {
	if o.Input == "" {
		return errors.New("beam: --input is required")
	}
	if o.Output == "" {
		return errors.New("beam: --output is required")
	}
	if o.Model.Model == "" {
		return errors.New("beam: --model is required (a native file or Hugging Face dir every worker can read)")
	}
	var f pairio.Format
	var err error
	if o.Format == "" {
		f, err = pairio.FormatOf(o.Input)
	} else {
		f, err = pairio.ParseFormat(o.Format)
	}
	if err != nil {
		return fmt.Errorf("beam: --format: %w", err)
	}
	o.Format = string(f)
	if f == pairio.FormatTREC && (o.Queries == "" || o.Passages == "") {
		return errors.New("beam: a TREC run input needs --queries (qid<TAB>query) and --passages (docid<TAB>text)")
	}
	if o.OutputFormat == "" {
		o.OutputFormat = o.Format
	} else {
		of, err := pairio.ParseFormat(o.OutputFormat)
		if err != nil {
			return fmt.Errorf("beam: --output-format: %w", err)
		}
		o.OutputFormat = string(of)
	}
	if o.OutputFormat == string(pairio.FormatTREC) && f == pairio.FormatTSV {
		return errors.New("beam: --output-format trec needs qids and docids: give JSONL candidates or a TREC run")
	}
	o.header = pairio.HeaderAuto
	if o.Header {
		o.header = pairio.HeaderPresent
	}
	if o.Shards < 1 {
		return fmt.Errorf("beam: --shards %d: want 1 or more", o.Shards)
	}
	if o.TopK < 0 {
		return fmt.Errorf("beam: --top-k %d: want 0 (all) or more", o.TopK)
	}
	if o.Batch < 1 {
		return fmt.Errorf("beam: --batch %d: want 1 or more", o.Batch)
	}
	if o.Tag == "" {
		o.Tag = "gomps"
	}
	return nil
}

// splitOutput splits "<stem><ext>" so shards are "<stem>-i-of-n<ext>".
func splitOutput(out string) (stem, ext string) {
	ext = filepath.Ext(out)
	if strings.ContainsAny(ext, "/\\") {
		ext = ""
	}
	return strings.TrimSuffix(out, ext), ext
}

// expandInput lists the files the input pattern matches, sorted, so file
// indices (and so output order) do not depend on listing order.
func expandInput(ctx context.Context, pattern string) ([]InputFile, error) {
	fs, err := filesystem.New(ctx, pattern)
	if err != nil {
		return nil, fmt.Errorf("beam: --input %q: %w", pattern, err)
	}
	defer fs.Close()
	names, err := fs.List(ctx, pattern)
	if err != nil {
		return nil, fmt.Errorf("beam: --input %q: %w", pattern, err)
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("beam: --input %q matches no file", pattern)
	}
	sort.Strings(names)
	files := make([]InputFile, len(names))
	for i, n := range names {
		files[i] = InputFile{Path: n, Index: int64(i)}
	}
	return files, nil
}

// Build adds the pipeline to s:
//
//	files -> read (one worker per file; pairio rules) -> KV<qid, Pair>
//	      -> GroupByKey (each query's pairs meet on one worker)
//	      -> score (batched per bundle; emits KV<shard, Block>)
//	      -> Flatten with one empty marker per shard -> GroupByKey
//	      -> write (one file per shard, temp then rename)
func Build(s beam.Scope, o Options, files []InputFile) {
	s = s.Scope("gomps")
	in := beam.CreateList(s, files)
	read := &readFn{Format: o.Format, Header: int(o.header), SkipBad: o.SkipBad, Queries: o.Queries, Passages: o.Passages}
	pairs := beam.ParDo(s, read, in)
	byQuery := beam.GroupByKey(s, pairs)
	out := outputConfig{Format: o.OutputFormat, Rerank: o.Rerank, TopK: o.TopK, Tag: o.Tag}
	blocks := beam.ParDo(s, &scoreFn{Model: o.Model, Batch: o.Batch, Out: out, Shards: o.Shards}, byQuery)
	idx := make([]int, o.Shards)
	for i := range idx {
		idx[i] = i
	}
	markers := beam.ParDo(s, markShard, beam.CreateList(s, idx))
	byShard := beam.GroupByKey(s, beam.Flatten(s, blocks, markers))
	stem, ext := splitOutput(o.Output)
	beam.ParDo0(s, &writeFn{Stem: stem, Ext: ext, Shards: o.Shards}, byShard)
}
