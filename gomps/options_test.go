//go:build cgo && !darwin

package gomps

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestDefaultInstances: the default instance count is the CPU backend's
// answer: one single-threaded instance per thread up to the cap, then the
// largest count up to the cap that splits the threads evenly.
func TestDefaultInstances(t *testing.T) {
	for _, tc := range []struct {
		threads int
		want    int
	}{
		{1, 1}, {2, 2}, {3, 3}, {4, 4}, {5, 1}, {6, 3}, {8, 4}, {12, 4}, {9, 3}, {7, 1}, {64, 4},
	} {
		t.Run(fmt.Sprintf("cpu/threads=%d", tc.threads), func(t *testing.T) {
			assert.Equal(t, tc.want, DefaultInstances(tc.threads))
		})
	}
}
