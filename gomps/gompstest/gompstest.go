// Package gompstest holds test helpers shared by the packages that use gomps.
package gompstest

import (
	"os"
	"testing"

	"github.com/gomps/gomps/gomps"
)

// TestModel returns the real-shape test model ($GOMPS_TEST_MODEL, else the
// one tools/setup.sh installs). Missing, it fails the test under CI=true
// and skips it otherwise.
func TestModel(t testing.TB) string {
	t.Helper()
	p := os.Getenv("GOMPS_TEST_MODEL")
	if p == "" {
		p = gomps.TestModelPath()
	}
	if _, err := os.Stat(p); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("required under CI=true: the real-shape test model at %s (run bash tools/setup.sh): %v", p, err)
		}
		t.Skipf("the real-shape test model is missing at %s (run bash tools/setup.sh): %v", p, err)
	}
	return p
}
