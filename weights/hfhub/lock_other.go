//go:build !unix

package hfhub

import "context"

// lockFile does nothing where flock is unavailable: concurrent downloads of
// one blob are then not coordinated (each still verifies its file).
func lockFile(context.Context, string) (func(), error) { return func() {}, nil }
