package gomps

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// pairSpecials reads the ids of [CLS] and [SEP] from the post_processor and
// checks the pair layout is the BERT one.
func pairSpecials(raw json.RawMessage) (cls, sep int32, err error) {
	var pp struct {
		Type string `json:"type"`
		// BertProcessing
		Sep []json.RawMessage `json:"sep"`
		Cls []json.RawMessage `json:"cls"`
		// TemplateProcessing
		Pair []struct {
			SpecialToken *struct {
				ID     string `json:"id"`
				TypeID int    `json:"type_id"`
			} `json:"SpecialToken"`
			Sequence *struct {
				ID     string `json:"id"`
				TypeID int    `json:"type_id"`
			} `json:"Sequence"`
		} `json:"pair"`
		SpecialTokens map[string]struct {
			IDs []int32 `json:"ids"`
		} `json:"special_tokens"`
	}
	if len(raw) == 0 || string(raw) == "null" {
		return 0, 0, errors.New("tokenizer: tokenizer.json has no post_processor (need [CLS] A [SEP] B [SEP])")
	}
	if err := json.Unmarshal(raw, &pp); err != nil {
		return 0, 0, fmt.Errorf("tokenizer: post_processor: %w", err)
	}
	switch pp.Type {
	case "BertProcessing":
		var id [2]int32
		for i, tok := range [][]json.RawMessage{pp.Cls, pp.Sep} {
			if len(tok) != 2 || json.Unmarshal(tok[1], &id[i]) != nil {
				return 0, 0, errors.New("tokenizer: post_processor: BertProcessing cls/sep is not [token, id]")
			}
		}
		return id[0], id[1], nil
	case "TemplateProcessing":
		const want = "S:0 A:0 S:0 B:1 S:1"
		var got []string
		var specials []string
		for _, p := range pp.Pair {
			switch {
			case p.SpecialToken != nil:
				got = append(got, fmt.Sprintf("S:%d", p.SpecialToken.TypeID))
				specials = append(specials, p.SpecialToken.ID)
			case p.Sequence != nil:
				got = append(got, fmt.Sprintf("%s:%d", p.Sequence.ID, p.Sequence.TypeID))
			default:
				got = append(got, "?")
			}
		}
		if strings.Join(got, " ") != want || specials[1] != specials[2] {
			return 0, 0, fmt.Errorf("tokenizer: post_processor: pair template %q is not [CLS] A [SEP] B [SEP] with types 0 0 0 1 1", strings.Join(got, " "))
		}
		var id [2]int32
		for i, name := range []string{specials[0], specials[1]} {
			st, ok := pp.SpecialTokens[name]
			if !ok || len(st.IDs) != 1 {
				return 0, 0, fmt.Errorf("tokenizer: post_processor: special token %q is not one id", name)
			}
			id[i] = st.IDs[0]
		}
		return id[0], id[1], nil
	}
	return 0, 0, fmt.Errorf("tokenizer: post_processor type %q is not supported (want TemplateProcessing or BertProcessing)", pp.Type)
}
