//go:build cgo

package gomps

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/daulet/tokenizers"
)

// tokenizer turns text into WordPiece ids with the model's own tokenizer.json,
// through the Rust Hugging Face tokenizers library (daulet/tokenizers).
//
// Concurrency: one handle serves every goroutine at once. The Rust
// Tokenizer::encode takes &self, TokenizerImpl is Send + Sync, and neither the
// BERT normalizer, pre-tokenizer nor the WordPiece model keeps mutable state
// (no cache), so concurrent encodes on one handle are safe; a pool of handles
// would only multiply the ~10 MB the vocabulary costs. mu guards the handle
// against Close only (read-locked by encode).
type tokenizer struct {
	mu sync.RWMutex
	tk *tokenizers.Tokenizer

	cls, sep int32 // ids of the pair template's special tokens
	// dropNUL: the normalizer deletes U+0000 (BertNormalizer clean_text), so
	// removing NUL bytes before handing text to C (which ends strings at NUL)
	// changes nothing. Without it, text with a NUL is refused.
	dropNUL bool
}

// newTokenizer loads a tokenizer.json. Its own "truncation" and "padding" are
// forced to null first: truncation and padding are ours (pair assembly), and a
// tokenizer.json saved with e.g. truncation 128 would otherwise cut each text
// before assembly. The pair template must be [CLS] A [SEP] B [SEP] with type
// ids 0 0 0 1 1 (TemplateProcessing or BertProcessing).
func newTokenizer(data []byte) (*tokenizer, error) {
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("tokenizer: tokenizer.json: %w", err)
	}
	doc["truncation"] = json.RawMessage("null")
	doc["padding"] = json.RawMessage("null")
	cls, sep, err := pairSpecials(doc["post_processor"])
	if err != nil {
		return nil, err
	}
	clean, err := json.Marshal(doc)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: tokenizer.json: %w", err)
	}
	tk, err := tokenizers.FromBytes(clean)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: tokenizer.json: %w", err)
	}
	var norm struct {
		Type      string `json:"type"`
		CleanText bool   `json:"clean_text"`
	}
	_ = json.Unmarshal(doc["normalizer"], &norm) // absent or other: dropNUL stays false
	return &tokenizer{
		tk:      tk,
		cls:     cls,
		sep:     sep,
		dropNUL: norm.Type == "BertNormalizer" && norm.CleanText,
	}, nil
}

// encode returns the ids of text without special tokens. text must be valid
// UTF-8 (callers check). Safe for concurrent use; cost: one cgo call, linear
// in len(text).
func (t *tokenizer) encode(text string) ([]int32, error) {
	if strings.IndexByte(text, 0) >= 0 {
		if !t.dropNUL {
			return nil, errors.New("tokenizer: text contains a NUL byte")
		}
		text = strings.ReplaceAll(text, "\x00", "")
	}
	t.mu.RLock()
	defer t.mu.RUnlock()
	if t.tk == nil {
		return nil, ErrClosed
	}
	enc := t.tk.EncodeWithOptions(text, false)
	ids := make([]int32, len(enc.IDs))
	for i, id := range enc.IDs {
		ids[i] = int32(id)
	}
	return ids, nil
}

// Close frees the handle after in-flight encodes finish. Idempotent.
func (t *tokenizer) Close() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.tk != nil {
		t.tk.Close()
		t.tk = nil
	}
	return nil
}
