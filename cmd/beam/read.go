package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/io/filesystem"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/log"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	"github.com/gomps/gomps/gomps/pairio"
	"github.com/gomps/gomps/gomps/shard"
)

var (
	pairsRead       = beam.NewCounter("gomps", "pairs_read")
	badLinesSkipped = beam.NewCounter("gomps", "bad_lines_skipped")
)

// readFn reads one input file with the score command's readers (pairio) and
// emits each pair keyed by its query (shard.Key). A whole file is read by
// one worker, in order, so that positions (file:line), header rules and
// skip-bad counting are exactly the score command's; the GroupByKey that
// follows spreads the queries over the workers, and many input files (a
// glob) are read in parallel.
//
// A malformed line fails the bundle with pairio's file:line error (and so
// the pipeline, after the runner's retries), or, with SkipBad, is counted in
// the gomps/bad_lines_skipped counter and logged with its position.
type readFn struct {
	Format   string // tsv, jsonl or trec
	Header   int    // pairio.Header
	SkipBad  bool
	Queries  string // trec: the qid<TAB>query file
	Passages string // trec: the docid<TAB>text file
}

func openFile(ctx context.Context, path string) (io.ReadCloser, error) {
	fs, err := filesystem.New(ctx, path)
	if err != nil {
		return nil, fmt.Errorf("beam: %s: %w", path, err)
	}
	defer fs.Close()
	r, err := fs.OpenRead(ctx, path)
	if err != nil {
		return nil, fmt.Errorf("beam: %s: %w", path, err)
	}
	return r, nil
}

func (f *readFn) reader(ctx context.Context, path string, opt pairio.Options) (pairio.Reader, func(), error) {
	r, err := openFile(ctx, path)
	if err != nil {
		return nil, nil, err
	}
	closeAll := func() { r.Close() }
	switch pairio.Format(f.Format) {
	case pairio.FormatTSV:
		return pairio.NewTSVReader(r, path, opt), closeAll, nil
	case pairio.FormatJSONL:
		return pairio.NewJSONLReader(r, path, opt), closeAll, nil
	case pairio.FormatTREC:
		defer closeAll()
		q, err := openFile(ctx, f.Queries)
		if err != nil {
			return nil, nil, err
		}
		defer q.Close()
		p, err := openFile(ctx, f.Passages)
		if err != nil {
			return nil, nil, err
		}
		defer p.Close()
		tr, err := pairio.NewTRECReader(r, path, q, f.Queries, p, f.Passages, opt)
		if err != nil {
			return nil, nil, err
		}
		return tr, func() {}, nil
	}
	r.Close()
	return nil, nil, fmt.Errorf("beam: unknown input format %q", f.Format)
}

func (f *readFn) ProcessElement(ctx context.Context, in InputFile, emit func(string, Pair)) error {
	opt := pairio.Options{
		SkipBad: f.SkipBad,
		Header:  pairio.Header(f.Header),
		OnSkip: func(le *pairio.LineError) {
			badLinesSkipped.Inc(ctx, 1)
			log.Warnf(ctx, "beam: skipped malformed line: %v", le)
		},
	}
	r, done, err := f.reader(ctx, in.Path, opt)
	if err != nil {
		return err
	}
	defer done()
	for seq := int64(0); ; seq++ {
		it, err := r.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("beam: %w", err)
		}
		pairsRead.Inc(ctx, 1)
		emit(shard.Key(it.QID, it.Query), pairOf(&it, in.Index, seq))
	}
}

func init() {
	register.DoFn3x1[context.Context, InputFile, func(string, Pair), error](&readFn{})
	register.Emitter2[string, Pair]()
}
