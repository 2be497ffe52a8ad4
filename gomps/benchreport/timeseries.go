package benchreport

import (
	"bufio"
	"encoding/json"
	"io"
)

// WriteTimeSeries writes points as JSON lines, one object per interval.
func WriteTimeSeries(out io.Writer, points []Point) error {
	w := bufio.NewWriter(out)
	enc := json.NewEncoder(w)
	for _, p := range points {
		if err := enc.Encode(p); err != nil {
			return err
		}
	}
	return w.Flush()
}
