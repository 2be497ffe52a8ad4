package gomps

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestDefaultInstances: on the CPU one single-threaded instance per thread up
// to the cap, then the largest count up to the cap that splits the threads
// evenly; 1 on every other backend.
func TestDefaultInstances(t *testing.T) {
	for _, tc := range []struct {
		backend string
		threads int
		want    int
	}{
		{"cpu", 1, 1}, {"cpu", 2, 2}, {"cpu", 3, 3}, {"cpu", 4, 4},
		{"cpu", 5, 1}, {"cpu", 6, 3}, {"cpu", 8, 4}, {"cpu", 12, 4}, {"cpu", 9, 3}, {"cpu", 7, 1},
		{"cpu", 64, 4}, {"metal", 8, 1}, {"metal", 1, 1},
	} {
		t.Run(fmt.Sprintf("%s/threads=%d", tc.backend, tc.threads), func(t *testing.T) {
			assert.Equal(t, tc.want, DefaultInstances(tc.backend, tc.threads))
		})
	}
}
