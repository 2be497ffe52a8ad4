package weights

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// ResolveHFCache finds the snapshot directory of a Hugging Face model id
// ("org/name") in the local Hugging Face cache, where huggingface_hub puts
// it: the hub directory is $HF_HUB_CACHE, else $HF_HOME/hub, else
// $XDG_CACHE_HOME/huggingface/hub, else ~/.cache/huggingface/hub; in it,
// models--{org}--{name}/refs/main names the commit whose files are in
// snapshots/{commit}/. It never touches the network. The error says where it
// looked.
func ResolveHFCache(modelID string) (string, error) {
	if err := checkModelID(modelID); err != nil {
		return "", err
	}
	hub, how := hubDir()
	repo := filepath.Join(hub, "models--"+strings.ReplaceAll(modelID, "/", "--"))
	fail := func(format string, args ...any) error {
		return fmt.Errorf("weights: model %q %w: %s (hub cache %s, from %s)", modelID, ErrNotInCache, fmt.Sprintf(format, args...), hub, how)
	}
	ref := filepath.Join(repo, "refs", "main")
	raw, err := os.ReadFile(ref)
	if err != nil {
		if os.IsNotExist(err) {
			if _, serr := os.Stat(repo); serr != nil {
				return "", fail("no directory %s", repo)
			}
			return "", fail("no %s", ref)
		}
		return "", fail("%v", err)
	}
	commit := strings.TrimSpace(string(raw))
	if commit == "" || strings.ContainsAny(commit, `/\`) || commit == "." || commit == ".." {
		return "", fail("%s holds %q, not a commit", ref, commit)
	}
	snap := filepath.Join(repo, "snapshots", commit)
	st, err := os.Stat(snap)
	if err != nil || !st.IsDir() {
		return "", fail("refs/main names commit %s but %s is missing", commit, snap)
	}
	return snap, nil
}

// hubDir returns the hub cache directory and which setting chose it.
func hubDir() (dir, how string) {
	if d := os.Getenv("HF_HUB_CACHE"); d != "" {
		return d, "HF_HUB_CACHE"
	}
	if d := os.Getenv("HF_HOME"); d != "" {
		return filepath.Join(d, "hub"), "HF_HOME/hub; HF_HUB_CACHE unset"
	}
	if d := os.Getenv("XDG_CACHE_HOME"); d != "" {
		return filepath.Join(d, "huggingface", "hub"), "XDG_CACHE_HOME/huggingface/hub; HF_HUB_CACHE and HF_HOME unset"
	}
	home, err := os.UserHomeDir()
	if err != nil {
		home = "~"
	}
	return filepath.Join(home, ".cache", "huggingface", "hub"), "the default; HF_HUB_CACHE, HF_HOME and XDG_CACHE_HOME unset"
}

// checkModelID accepts "name" or "org/name" made of the characters the Hub
// allows in repository names.
func checkModelID(id string) error {
	bad := func(why string) error {
		return fmt.Errorf("weights: model id %q: %s", id, why)
	}
	parts := strings.Split(id, "/")
	if id == "" || len(parts) > 2 {
		return bad(`want "org/name"`)
	}
	for _, p := range parts {
		if p == "" || p == "." || p == ".." || strings.Contains(p, "--") {
			return bad(`want "org/name"`)
		}
		for _, r := range p {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
				return bad(fmt.Sprintf("character %q not allowed", r))
			}
		}
	}
	return nil
}

// modelIDFromSnapshot returns "org/name" when dir is a cache snapshot
// directory (.../models--org--name/snapshots/<commit>), else "".
func modelIDFromSnapshot(dir string) string {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return ""
	}
	if filepath.Base(filepath.Dir(abs)) != "snapshots" {
		return ""
	}
	repo := filepath.Base(filepath.Dir(filepath.Dir(abs)))
	name, ok := strings.CutPrefix(repo, "models--")
	if !ok || name == "" {
		return ""
	}
	return strings.ReplaceAll(name, "--", "/")
}
