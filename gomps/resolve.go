package gomps

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/gomps/gomps/weights"
	"github.com/gomps/gomps/weights/hfhub"
)

// DefaultModelID is the reranker gomps is built for, looked up in the local
// Hugging Face cache when no model is given.
const DefaultModelID = "cross-encoder/ms-marco-MiniLM-L-6-v2"

// TestModelFile is the file name of the real-shape test model that
// tools/setup.sh installs in the models folder of the gomps cache.
const TestModelFile = "test-minilm-l6.gomps"

// SourceKind says what a model argument named.
type SourceKind int

const (
	// SourceNative is a native weights file (weights/FORMAT.md).
	SourceNative SourceKind = iota + 1
	// SourceHFDir is a Hugging Face model directory (config.json,
	// model.safetensors, tokenizer.json), converted at load.
	SourceHFDir
)

func (k SourceKind) String() string {
	switch k {
	case SourceNative:
		return "native"
	case SourceHFDir:
		return "hf-dir"
	}
	return "unknown"
}

// Source is a resolved model: where it is and how it was found.
type Source struct {
	Path    string     // the native file or the model directory
	Kind    SourceKind //
	ModelID string     // the Hugging Face model id when found in the cache
	// TestModel is set when nothing was asked for and the test model was
	// the fallback: its scores do not come from the real reranker.
	TestModel bool
}

// Notice returns the one line to show a user about the source, or "".
func (s Source) Notice() string {
	if !s.TestModel {
		return ""
	}
	return fmt.Sprintf("gomps: notice: no model given and %s is not in the Hugging Face cache; "+
		"scores come from the TEST model (%s), not the real reranker", DefaultModelID, s.Path)
}

// CacheDir returns the gomps cache folder: $GOMPS_CACHE, else
// ~/.cache/gomps (where tools/setup.sh installs the test model).
func CacheDir() string {
	if d := os.Getenv("GOMPS_CACHE"); d != "" {
		return d
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return filepath.Join(".cache", "gomps")
	}
	return filepath.Join(home, ".cache", "gomps")
}

// TestModelPath returns where tools/setup.sh installs the test model.
func TestModelPath() string { return filepath.Join(CacheDir(), "models", TestModelFile) }

// ResolveModel finds the model to load, the same way for the library and
// the CLI:
//
//  1. model, else $GOMPS_MODEL: a native weights file, a Hugging Face model
//     directory, or a model id ("org/name") in the local Hugging Face cache;
//  2. else DefaultModelID from the Hugging Face cache;
//  3. else the test model at TestModelPath (Source.TestModel is set);
//  4. else an error matching ErrNoModel that says to run the set-up command.
//
// It only looks at the file system (no network). Cost: a few stats.
func ResolveModel(model string) (Source, error) {
	if model == "" {
		model = os.Getenv("GOMPS_MODEL")
	}
	if model != "" {
		return resolveArg(model)
	}
	dir, cacheErr := weights.ResolveHFCache(DefaultModelID)
	if cacheErr == nil {
		return Source{Path: dir, Kind: SourceHFDir, ModelID: DefaultModelID}, nil
	}
	test := TestModelPath()
	if st, err := os.Stat(test); err == nil && st.Mode().IsRegular() {
		return Source{Path: test, Kind: SourceNative, TestModel: true}, nil
	}
	return Source{}, fmt.Errorf("%w: no --model or GOMPS_MODEL; %s is not in the Hugging Face cache (%v); "+
		"and the test model %s is missing: run `bash tools/setup.sh` to install it", ErrNoModel, DefaultModelID, cacheErr, test)
}

func resolveArg(model string) (Source, error) {
	st, err := os.Stat(model)
	switch {
	case err == nil && st.IsDir():
		return Source{Path: model, Kind: SourceHFDir}, nil
	case err == nil && st.Mode().IsRegular():
		return Source{Path: model, Kind: SourceNative}, nil
	case err == nil:
		return Source{}, fmt.Errorf("%w: %s is neither a file nor a directory", ErrNoModel, model)
	case !errors.Is(err, os.ErrNotExist):
		return Source{}, fmt.Errorf("%w: %s: %v", ErrNoModel, model, err)
	}
	// Not a path: a model id in the Hugging Face cache?
	if !hfhub.ValidModelID(model) {
		return Source{}, fmt.Errorf("%w: %s is no file or directory, nor a Hugging Face model id (\"org/name\")", ErrNoModel, model)
	}
	dir, cerr := weights.ResolveHFCache(model)
	if cerr != nil {
		return Source{}, fmt.Errorf("%w: %s is no file or directory, nor a model in the Hugging Face cache: %v", ErrNoModel, model, cerr)
	}
	return Source{Path: dir, Kind: SourceHFDir, ModelID: model}, nil
}

// resolveModel is ResolveModel plus the network and the native cache, for
// Open:
//
//   - a model id "org/name" (from model or $GOMPS_MODEL) that is not in the
//     Hugging Face cache is downloaded into it with hfhub.Download
//     (config.json, model.safetensors, tokenizer.json at revision main;
//     HF_ENDPOINT, HF_TOKEN and HF_HUB_OFFLINE apply; every file verified
//     against its hash unless trustUnverified), with a notice; anything else
//     that is no path is an error without network;
//   - a model from the Hugging Face cache is converted once into
//     NativeCachePath(id, commit), and later calls load that file directly.
//
// Errors match ErrNoModel; a failed or offline download says how to supply
// the files by hand.
func resolveModel(ctx context.Context, model string, notices io.Writer, trustUnverified bool) (Source, error) {
	src, err := ResolveModel(model)
	if err != nil {
		id := model
		if id == "" {
			id = os.Getenv("GOMPS_MODEL")
		}
		if id == "" || !hfhub.ValidModelID(id) {
			return Source{}, err
		}
		if _, serr := os.Stat(id); !errors.Is(serr, os.ErrNotExist) {
			return Source{}, err // a path after all
		}
		if notices != nil {
			fmt.Fprintf(notices, "gomps: %s is not in the Hugging Face cache; downloading it from the Hub\n", id)
		}
		snap, derr := hfhub.Download(ctx, id, "main", hfhub.DefaultFiles, hfhub.Options{TrustUnverified: trustUnverified})
		if derr != nil {
			return Source{}, fmt.Errorf("%w: %s: %w", ErrNoModel, id, derr)
		}
		src = Source{Path: snap, Kind: SourceHFDir, ModelID: id}
	}
	if src.Kind != SourceHFDir || src.ModelID == "" {
		return src, nil
	}
	native := NativeCachePath(src.ModelID, filepath.Base(src.Path))
	if st, err := os.Stat(native); err == nil && st.Mode().IsRegular() {
		return Source{Path: native, Kind: SourceNative, ModelID: src.ModelID, TestModel: src.TestModel}, nil
	}
	if err := os.MkdirAll(filepath.Dir(native), 0o755); err != nil {
		return src, nil // no cache to write to: Open converts to a temporary file
	}
	var rnd [8]byte
	_, _ = rand.Read(rnd[:])
	tmp := native + ".tmp-" + hex.EncodeToString(rnd[:])
	if _, err := weights.Convert(src.Path, tmp, weights.ConvertOptions{Name: src.ModelID}); err != nil {
		os.Remove(tmp)
		return Source{}, fmt.Errorf("converting %s: %w", src.Path, err)
	}
	if err := os.Rename(tmp, native); err != nil {
		os.Remove(tmp)
		return src, nil
	}
	return Source{Path: native, Kind: SourceNative, ModelID: src.ModelID, TestModel: src.TestModel}, nil
}

// NativeCachePath is where a model from the Hugging Face cache is kept once
// converted: CacheDir()/models/<org>--<name>-<commit>.gomps.
func NativeCachePath(modelID, commit string) string {
	return filepath.Join(CacheDir(), "models", strings.ReplaceAll(modelID, "/", "--")+"-"+commit+".gomps")
}
