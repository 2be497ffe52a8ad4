package gomps

import (
	"context"
	"io"
)

// FetchModel finds a model as Open does, without loading it: a native
// weights file, a Hugging Face model directory, or a model id ("org/name")
// from the Hugging Face cache, else downloaded from the Hub into that cache
// by Open's resolver (config.json, model.safetensors, tokenizer.json at
// revision main; HF_ENDPOINT, HF_TOKEN, and HF_HUB_OFFLINE=1 to forbid it;
// a notice on notices). A model id comes back as its snapshot directory in
// the Hugging Face cache (Kind SourceHFDir, ModelID set), for callers that
// convert it with their own options; Open's resolver also keeps the native
// copy it loads from (NativeCachePath) when that conversion succeeds.
// model "" means $GOMPS_MODEL or the defaults, as in ResolveModel. Of
// opts only WithTrustUnverified applies. Errors match ErrNoModel.
func FetchModel(ctx context.Context, model string, notices io.Writer, opts ...Option) (Source, error) {
	if src, err := ResolveModel(model); err == nil {
		return src, nil // on disk already: no network, no conversion
	}
	o := defaultOptions()
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return Source{}, err
		}
	}
	_, err := resolveModel(ctx, model, notices, o.trustUnverified)
	// After a download the model is in the Hugging Face cache even when
	// Open's own conversion of it failed (an encoder without a head, say),
	// which is no failure for a caller that converts with other options.
	src, rerr := ResolveModel(model)
	switch {
	case rerr == nil:
		return src, nil
	case err != nil:
		return Source{}, err
	}
	return Source{}, rerr
}
