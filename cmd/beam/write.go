package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"sort"

	"github.com/apache/beam/sdks/v2/go/pkg/beam/io/filesystem"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
)

// writeFn writes one output shard: the blocks of every query of the shard,
// in input order of each query's first pair, to a temporary file next to
// the final one, then renames it into place (on filesystems without rename,
// Beam's filesystem.Rename copies and removes; an object store's copy is
// atomic too). A retried bundle rewrites the same bytes. A reader therefore
// sees the old file or the whole new one, never part of one.
type writeFn struct {
	Stem, Ext string
	Shards    int
}

func (f *writeFn) ProcessElement(ctx context.Context, i int, blocks func(*Block) bool) (err error) {
	var all []Block
	var b Block
	for blocks(&b) {
		if !b.Empty {
			all = append(all, b)
		}
	}
	sort.Slice(all, func(x, y int) bool { return all[x].before(&all[y]) })

	final := shardName(f.Stem, f.Ext, i, f.Shards)
	var rnd [6]byte
	_, _ = rand.Read(rnd[:])
	tmp := final + ".tmp-" + hex.EncodeToString(rnd[:])
	fs, err := filesystem.New(ctx, final)
	if err != nil {
		return fmt.Errorf("beam: %s: %w", final, err)
	}
	defer fs.Close()
	w, err := fs.OpenWrite(ctx, tmp)
	if err != nil {
		return fmt.Errorf("beam: %w", err)
	}
	for _, b := range all {
		if _, err = io.WriteString(w, b.Text); err != nil {
			break
		}
	}
	if cerr := w.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = filesystem.Rename(ctx, fs, tmp, final)
	}
	if err != nil {
		if rm, ok := fs.(filesystem.Remover); ok {
			_ = rm.Remove(ctx, tmp)
		}
		return fmt.Errorf("beam: writing %s: %w", final, err)
	}
	return nil
}

// markShard emits an empty marker for shard i, so that every shard file is
// written even when no query hashes to it.
func markShard(i int) (int, Block) { return i, Block{Empty: true} }

func init() {
	register.DoFn3x1[context.Context, int, func(*Block) bool, error](&writeFn{})
	register.Function1x2(markShard)
	register.Iter1[Block]()
}
