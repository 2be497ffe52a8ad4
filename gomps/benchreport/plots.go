package benchreport

import (
	"fmt"
	"image/color"
	"io"
	"math"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// PlotFormats are the image formats WritePlot writes, by file extension.
var PlotFormats = []string{"svg", "png"}

// Plot size: 720 x 360 points (a 2:1 chart that reads on a laptop screen).
const plotW, plotH = 720 * vg.Length(1), 360 * vg.Length(1)

// Series is one named line of a chart; a NaN y is a gap (the line breaks).
type Series struct {
	Name string
	X, Y []float64
}

// seriesStyles tells the series of one chart apart by colour, dash and
// marker, so a series drawn over another (P95 equal to P99) still shows.
var seriesStyles = []struct {
	color  color.RGBA
	dashes []vg.Length
	glyph  draw.GlyphDrawer
}{
	{color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff}, nil, draw.CircleGlyph{}},
	{color.RGBA{R: 0xff, G: 0x7f, B: 0x0e, A: 0xff}, []vg.Length{vg.Points(6), vg.Points(3)}, draw.TriangleGlyph{}},
	{color.RGBA{R: 0xd6, G: 0x27, B: 0x28, A: 0xff}, []vg.Length{vg.Points(2), vg.Points(2)}, draw.SquareGlyph{}},
	{color.RGBA{R: 0x2c, G: 0xa0, B: 0x2c, A: 0xff}, nil, draw.PlusGlyph{}},
}

// LineChart plots series over shared axes: y from 0, one legend entry per
// series, markers at every point.
func LineChart(title, xLabel, yLabel string, series []Series) (*plot.Plot, error) {
	if len(series) > len(seriesStyles) {
		return nil, fmt.Errorf("%d series, at most %d", len(series), len(seriesStyles))
	}
	p := plot.New()
	p.Title.Text, p.X.Label.Text, p.Y.Label.Text = title, xLabel, yLabel
	p.Legend.Top, p.Legend.Left = true, true
	p.Add(plotter.NewGrid())
	p.Y.Min, p.Y.Max = 0, 1
	p.X.Min, p.X.Max = 0, 1
	for k, s := range series {
		if len(s.X) != len(s.Y) {
			return nil, fmt.Errorf("series %q: %d x values and %d y values", s.Name, len(s.X), len(s.Y))
		}
		st := seriesStyles[k]
		var thumbs []plot.Thumbnailer
		for _, seg := range segments(s.X, s.Y) {
			line, points, err := plotter.NewLinePoints(seg)
			if err != nil {
				return nil, fmt.Errorf("series %q: %w", s.Name, err)
			}
			line.Color, line.Dashes, line.Width = st.color, st.dashes, vg.Points(1.5)
			points.GlyphStyle = draw.GlyphStyle{Color: st.color, Radius: vg.Points(2.5), Shape: st.glyph}
			p.Add(line, points)
			thumbs = []plot.Thumbnailer{line, points}
		}
		if thumbs != nil {
			p.Legend.Add(s.Name, thumbs...)
		}
	}
	// The top fifth of the frame stays free for the legend (top left), and
	// the x axis runs 2% past the last point so its marker is not cut.
	p.Y.Max *= 1.25
	p.X.Max += 0.02 * (p.X.Max - p.X.Min)
	return p, nil
}

// segments cuts x, y at NaN y values into runs of points.
func segments(x, y []float64) []plotter.XYs {
	var out []plotter.XYs
	var cur plotter.XYs
	for i := range x {
		if math.IsNaN(y[i]) || math.IsInf(y[i], 0) || math.IsNaN(x[i]) || math.IsInf(x[i], 0) {
			if len(cur) > 0 {
				out = append(out, cur)
			}
			cur = nil
			continue
		}
		cur = append(cur, plotter.XY{X: x[i], Y: y[i]})
	}
	if len(cur) > 0 {
		out = append(out, cur)
	}
	return out
}

// Histogram plots the distribution of values in bins equal bins.
func Histogram(title, xLabel string, values []float64, bins int) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text, p.X.Label.Text, p.Y.Label.Text = title, xLabel, "requests"
	p.Add(plotter.NewGrid())
	p.Y.Min = 0
	if len(values) == 0 {
		return p, nil
	}
	h, err := plotter.NewHist(plotter.Values(values), max(bins, 1))
	if err != nil {
		return nil, err
	}
	h.FillColor = seriesStyles[0].color
	h.LineStyle.Color = color.White
	p.Add(h)
	return p, nil
}

// full reports whether a time-series point covers a whole sampling interval:
// the last interval of a phase is cut short when the phase ends, and its
// per-second rates would swing with its length.
func full(pt Point) bool { return !pt.Partial }

// LatencyOverTime plots the latency percentiles of the whole intervals.
func LatencyOverTime(title string, pts []Point) (*plot.Plot, error) {
	var t, p50, p95, p99 []float64
	for _, p := range pts {
		if !full(p) {
			continue
		}
		t = append(t, p.T)
		p50, p95, p99 = append(p50, orNaN(p.LatP50)), append(p95, orNaN(p.LatP95)), append(p99, orNaN(p.LatP99))
	}
	return LineChart(title, "time (s)", "latency (ms)", []Series{{"P50", t, p50}, {"P95", t, p95}, {"P99", t, p99}})
}

// ThroughputOverTime plots the pairs/s of the whole intervals.
func ThroughputOverTime(title string, pts []Point) (*plot.Plot, error) {
	var t, tp []float64
	for _, p := range pts {
		if full(p) {
			t, tp = append(t, p.T), append(tp, p.PairsPerSec)
		}
	}
	return LineChart(title, "time (s)", "throughput (pairs/s)", []Series{{"pairs/s", t, tp}})
}

// WritePlot renders p in format (one of PlotFormats) at the plot size.
func WritePlot(w io.Writer, p *plot.Plot, format string) error {
	wt, err := p.WriterTo(plotW, plotH, format)
	if err != nil {
		return err
	}
	_, err = wt.WriteTo(w)
	return err
}

func orNaN(p *float64) float64 {
	if p == nil {
		return math.NaN()
	}
	return *p
}
