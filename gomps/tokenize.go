//go:build cgo

package gomps

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
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
	// wordwise: the pre-tokenizer splits at whitespace and the model
	// tokenizes each word alone (BertPreTokenizer + WordPiece), so the ids
	// of a text cut at a space are a prefix of the whole text's ids.
	wordwise bool
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
	var pre, model struct {
		Type string `json:"type"`
	}
	_ = json.Unmarshal(doc["pre_tokenizer"], &pre) // absent or other: wordwise stays false
	_ = json.Unmarshal(doc["model"], &model)
	return &tokenizer{
		tk:       tk,
		cls:      cls,
		sep:      sep,
		dropNUL:  norm.Type == "BertNormalizer" && norm.CleanText,
		wordwise: pre.Type == "BertPreTokenizer" && model.Type == "WordPiece",
	}, nil
}

// encode returns the ids of text without special tokens. text must be valid
// UTF-8 (callers check). Safe for concurrent use; cost: one cgo call, linear
// in len(text).
func (t *tokenizer) encode(text string) ([]int32, error) {
	if strings.IndexByte(text, 0) >= 0 {
		if !t.dropNUL {
			return nil, errors.New("text contains a NUL byte")
		}
		text = strings.ReplaceAll(text, "\x00", "")
	}
	t.mu.RLock()
	defer t.mu.RUnlock()
	if t.tk == nil {
		return nil, ErrClosed
	}
	if !t.wordwise || len(text) <= encodePieceBytes {
		return t.appendIDs(nil, text), nil
	}
	var ids []int32
	for len(text) > 0 {
		end := len(text)
		if end > encodePieceBytes {
			if cut := strings.IndexAny(text[encodePieceBytes:], wordBreaks); cut >= 0 {
				end = encodePieceBytes + cut
			}
		}
		ids = t.appendIDs(ids, text[:end])
		text = text[end:]
	}
	return ids, nil
}

// encodePieceBytes: a wordwise tokenizer encodes a longer text in pieces of
// about this many bytes, cut before a word break, so the native tokenizer's
// working memory (tens of bytes per token) stays bounded; the ids are the
// same.
var encodePieceBytes = 64 << 10

// wordBreaks are the bytes a wordwise text may be cut before without
// changing its ids: ASCII whitespace and the ASCII punctuation the BERT
// pre-tokenizer makes a word of its own, but for the brackets of special
// tokens ("[SEP]").
const wordBreaks = " \t\n\r!\"#$%&'()*+,-./:;<=>?@\\^_`{|}~"

// appendIDs appends the ids of text to ids. t.mu must be read-locked.
func (t *tokenizer) appendIDs(ids []int32, text string) []int32 {
	enc := t.tk.EncodeWithOptions(text, false)
	if ids == nil {
		ids = []int32{}
	}
	ids = slices.Grow(ids, len(enc.IDs))
	for _, id := range enc.IDs {
		ids = append(ids, int32(id))
	}
	return ids
}

// prefixBytesPerToken are the prefix lengths encodeFirst tries, in bytes
// per token wanted: English text takes about 5; a word of more than 100
// characters is one [UNK] token.
var prefixBytesPerToken = []int{8, 128}

// encodeFirst returns the ids of text without special tokens: all of them,
// or at least the first n (n <= 0: all). A long text is cut before a word
// break past n x 8 bytes (then n x 128) and only that prefix is tokenized
// when it holds n tokens, so the cost of a text is bounded by what survives
// truncation; a tokenizer that is not wordwise always gets the whole text.
func (t *tokenizer) encodeFirst(text string, n int) ([]int32, error) {
	if n > 0 && t.wordwise {
		for _, per := range prefixBytesPerToken {
			limit := n * per
			if len(text) <= limit {
				break
			}
			cut := strings.IndexAny(text[limit:], wordBreaks)
			if cut < 0 {
				break
			}
			ids, err := t.encode(text[:limit+cut])
			if err != nil || len(ids) >= n {
				return ids, err
			}
		}
	}
	return t.encode(text)
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
