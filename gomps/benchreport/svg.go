package benchreport

import (
	"bufio"
	"fmt"
	"html"
	"io"
	"math"
	"strings"
)

// Plot geometry, in SVG user units.
const (
	plotW, plotH                       = 720, 360
	marginL, marginR, marginT, marginB = 70, 20, 40, 50
)

// Line is one series of a line chart; points with NaN y are gaps.
type Line struct {
	Name  string
	Color string
	X, Y  []float64
}

// LineChart is a titled chart of lines over shared axes.
type LineChart struct {
	Title, XLabel, YLabel string
	Lines                 []Line
}

// niceTicks returns about n round tick values covering [lo, hi].
func niceTicks(lo, hi float64, n int) []float64 {
	if hi <= lo {
		hi = lo + 1
	}
	raw := (hi - lo) / float64(n)
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	step := mag
	for _, f := range []float64{1, 2, 2.5, 5, 10} {
		if f*mag >= raw {
			step = f * mag
			break
		}
	}
	var t []float64
	for v := math.Floor(lo/step) * step; v <= hi+step*1e-9; v += step {
		t = append(t, v)
	}
	return t
}

func fmtTick(v float64) string {
	s := fmt.Sprintf("%.3g", v)
	if math.Abs(v) >= 1000 {
		s = fmt.Sprintf("%.0f", v)
	}
	return s
}

type frame struct {
	x0, x1, y0, y1 float64
}

func (f frame) px(x float64) float64 {
	return marginL + (x-f.x0)/(f.x1-f.x0)*(plotW-marginL-marginR)
}

func (f frame) py(y float64) float64 {
	return plotH - marginB - (y-f.y0)/(f.y1-f.y0)*(plotH-marginT-marginB)
}

// axes draws the frame, ticks, labels and title, and returns the frame.
func axes(w *bufio.Writer, title, xl, yl string, x0, x1, y0, y1 float64) frame {
	xt, yt := niceTicks(x0, x1, 8), niceTicks(y0, y1, 6)
	f := frame{x0: xt[0], x1: xt[len(xt)-1], y0: yt[0], y1: yt[len(yt)-1]}
	if f.x1 <= f.x0 {
		f.x1 = f.x0 + 1
	}
	if f.y1 <= f.y0 {
		f.y1 = f.y0 + 1
	}
	fmt.Fprintf(w, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n", plotW, plotH, plotW, plotH)
	fmt.Fprintf(w, `<rect width="%d" height="%d" fill="white"/>`+"\n", plotW, plotH)
	fmt.Fprintf(w, `<text x="%d" y="22" text-anchor="middle" font-size="15">%s</text>`+"\n", plotW/2, html.EscapeString(title))
	for _, v := range yt {
		y := f.py(v)
		fmt.Fprintf(w, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#ddd"/>`+"\n", marginL, y, plotW-marginR, y)
		fmt.Fprintf(w, `<text x="%d" y="%.1f" text-anchor="end">%s</text>`+"\n", marginL-6, y+4, fmtTick(v))
	}
	for _, v := range xt {
		x := f.px(v)
		fmt.Fprintf(w, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#eee"/>`+"\n", x, marginT, x, plotH-marginB)
		fmt.Fprintf(w, `<text x="%.1f" y="%d" text-anchor="middle">%s</text>`+"\n", x, plotH-marginB+16, fmtTick(v))
	}
	fmt.Fprintf(w, `<rect x="%d" y="%d" width="%d" height="%d" fill="none" stroke="black"/>`+"\n",
		marginL, marginT, plotW-marginL-marginR, plotH-marginT-marginB)
	fmt.Fprintf(w, `<text x="%d" y="%d" text-anchor="middle">%s</text>`+"\n", (plotW+marginL-marginR)/2, plotH-10, html.EscapeString(xl))
	fmt.Fprintf(w, `<text transform="translate(16,%d) rotate(-90)" text-anchor="middle">%s</text>`+"\n", (plotH+marginT-marginB)/2, html.EscapeString(yl))
	return f
}

// WriteLineChart renders c as SVG.
func WriteLineChart(out io.Writer, c LineChart) error {
	w := bufio.NewWriter(out)
	x0, x1, y1 := math.Inf(1), math.Inf(-1), 0.0
	for _, l := range c.Lines {
		for i := range l.X {
			if math.IsNaN(l.Y[i]) {
				continue
			}
			x0, x1, y1 = math.Min(x0, l.X[i]), math.Max(x1, l.X[i]), math.Max(y1, l.Y[i])
		}
	}
	if math.IsInf(x0, 1) {
		x0, x1 = 0, 1
	}
	if x0 > 0 {
		x0 = 0
	}
	f := axes(w, c.Title, c.XLabel, c.YLabel, x0, x1, 0, y1*1.05)
	for k, l := range c.Lines {
		var seg []string
		flush := func() {
			if len(seg) == 1 {
				xy := strings.Split(seg[0], ",")
				fmt.Fprintf(w, `<circle cx="%s" cy="%s" r="2.5" fill="%s"/>`+"\n", xy[0], xy[1], l.Color)
			} else if len(seg) > 1 {
				fmt.Fprintf(w, `<polyline fill="none" stroke="%s" stroke-width="1.8" points="%s"/>`+"\n", l.Color, strings.Join(seg, " "))
			}
			seg = seg[:0]
		}
		for i := range l.X {
			if math.IsNaN(l.Y[i]) {
				flush()
				continue
			}
			seg = append(seg, fmt.Sprintf("%.1f,%.1f", f.px(l.X[i]), f.py(l.Y[i])))
		}
		flush()
		ly := marginT + 14 + 16*k
		fmt.Fprintf(w, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s" stroke-width="3"/>`+"\n", marginL+10, ly-4, marginL+30, ly-4, l.Color)
		fmt.Fprintf(w, `<text x="%d" y="%d">%s</text>`+"\n", marginL+36, ly, html.EscapeString(l.Name))
	}
	fmt.Fprintln(w, "</svg>")
	return w.Flush()
}

// WriteHistogram renders the distribution of values (ms) in bins equal bins.
func WriteHistogram(out io.Writer, title, xl string, values []float64, bins int) error {
	w := bufio.NewWriter(out)
	if bins < 1 {
		bins = 1
	}
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, v := range values {
		lo, hi = math.Min(lo, v), math.Max(hi, v)
	}
	if len(values) == 0 {
		lo, hi = 0, 1
	}
	if hi <= lo {
		hi = lo + 1
	}
	counts := make([]int, bins)
	for _, v := range values {
		k := min(int((v-lo)/(hi-lo)*float64(bins)), bins-1)
		counts[k]++
	}
	top := 0
	for _, c := range counts {
		top = max(top, c)
	}
	f := axes(w, title, xl, "requests", lo, hi, 0, float64(top)*1.05)
	bw := (hi - lo) / float64(bins)
	for k, c := range counts {
		if c == 0 {
			continue
		}
		xa, xb := f.px(lo+float64(k)*bw), f.px(lo+float64(k+1)*bw)
		ya, yb := f.py(float64(c)), f.py(0)
		fmt.Fprintf(w, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="#4a7ebb" stroke="white" stroke-width="0.5"><title>%d</title></rect>`+"\n",
			xa, ya, math.Max(xb-xa, 0.5), yb-ya, c)
	}
	fmt.Fprintln(w, "</svg>")
	return w.Flush()
}

// WriteLatencyOverTime plots the per-interval latency percentiles.
func WriteLatencyOverTime(out io.Writer, title string, pts []Point) error {
	t := make([]float64, len(pts))
	p50, p95, p99 := make([]float64, len(pts)), make([]float64, len(pts)), make([]float64, len(pts))
	for i, p := range pts {
		t[i] = p.T
		p50[i], p95[i], p99[i] = orNaN(p.LatP50), orNaN(p.LatP95), orNaN(p.LatP99)
	}
	return WriteLineChart(out, LineChart{Title: title, XLabel: "time (s)", YLabel: "latency (ms)", Lines: []Line{
		{Name: "P50", Color: "#1f77b4", X: t, Y: p50},
		{Name: "P95", Color: "#ff7f0e", X: t, Y: p95},
		{Name: "P99", Color: "#d62728", X: t, Y: p99},
	}})
}

// WriteThroughputOverTime plots the per-interval pairs/s.
func WriteThroughputOverTime(out io.Writer, title string, pts []Point) error {
	t, tp := make([]float64, len(pts)), make([]float64, len(pts))
	for i, p := range pts {
		t[i], tp[i] = p.T, p.PairsPerSec
	}
	return WriteLineChart(out, LineChart{Title: title, XLabel: "time (s)", YLabel: "pairs/s",
		Lines: []Line{{Name: "pairs/s", Color: "#2ca02c", X: t, Y: tp}}})
}

func orNaN(p *float64) float64 {
	if p == nil {
		return math.NaN()
	}
	return *p
}
