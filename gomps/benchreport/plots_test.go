package benchreport

import (
	"bytes"
	"encoding/xml"
	"image/png"
	"io"
	"math"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gonum.org/v1/plot"
)

// svgPath is one <path> of a plot: its colour and the points of its d.
type svgPath struct {
	color  string // fill or stroke, upper case hex
	width  string // stroke-width, "" when filled
	points [][2]float64
}

// svgDoc is what the tests read back from a plot's SVG.
type svgDoc struct {
	paths []svgPath
	texts []string
}

// parseSVG reads the paths and texts of a gonum/plot SVG. Its coordinates
// are those of the <path d> attributes (gonum's, y up).
func parseSVG(t *testing.T, b []byte) svgDoc {
	t.Helper()
	var doc svgDoc
	dec := xml.NewDecoder(bytes.NewReader(b))
	inText := false
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		require.NoError(t, err, "the SVG is well-formed XML")
		switch el := tok.(type) {
		case xml.StartElement:
			attr := map[string]string{}
			for _, a := range el.Attr {
				attr[a.Name.Local] = a.Value
			}
			switch el.Name.Local {
			case "path":
				doc.paths = append(doc.paths, svgPath{color: styleOf(attr["style"], "stroke", "fill"), width: styleOf(attr["style"], "stroke-width"),
					points: pathPoints(t, attr["d"])})
			case "text":
				inText = true
				doc.texts = append(doc.texts, "")
			}
		case xml.CharData:
			if inText {
				doc.texts[len(doc.texts)-1] += string(el)
			}
		case xml.EndElement:
			if el.Name.Local == "text" {
				inText = false
			}
		}
	}
	return doc
}

// styleOf returns the first of keys set in a style attribute.
func styleOf(style string, keys ...string) string {
	for _, k := range keys {
		for _, kv := range strings.Split(style, ";") {
			if name, v, ok := strings.Cut(kv, ":"); ok && strings.TrimSpace(name) == k && v != "none" {
				return strings.ToUpper(strings.TrimSpace(v))
			}
		}
	}
	return ""
}

var pathToken = regexp.MustCompile(`[A-Z]|-?[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?`)

// pathPoints returns the end points of the M, L and A commands of d.
func pathPoints(t *testing.T, d string) [][2]float64 {
	t.Helper()
	var pts [][2]float64
	var cmd byte
	var nums []float64
	flush := func() {
		switch cmd {
		case 'M', 'L':
			for i := 0; i+1 < len(nums); i += 2 {
				pts = append(pts, [2]float64{nums[i], nums[i+1]})
			}
		case 'A':
			for i := 0; i+6 < len(nums); i += 7 {
				pts = append(pts, [2]float64{nums[i+5], nums[i+6]})
			}
		}
		nums = nums[:0]
	}
	for _, tok := range pathToken.FindAllString(d, -1) {
		if c := tok[0]; c >= 'A' && c <= 'Z' {
			flush()
			cmd = c
			continue
		}
		v, err := strconv.ParseFloat(tok, 64)
		require.NoError(t, err, "path %q", d)
		nums = append(nums, v)
	}
	flush()
	return pts
}

// frame is the data area: from the axis lines (black, 0.5 wide, the
// longest horizontal and vertical ones).
type frame struct{ x0, x1, y0, y1 float64 }

func frameOf(t *testing.T, doc svgDoc) frame {
	t.Helper()
	var f frame
	var bestX, bestY float64
	for _, p := range doc.paths {
		if p.color != "#000000" || len(p.points) != 2 {
			continue
		}
		a, b := p.points[0], p.points[1]
		if a[1] == b[1] && b[0]-a[0] > bestX {
			bestX, f.x0, f.x1 = b[0]-a[0], a[0], b[0]
		}
		if a[0] == b[0] && b[1]-a[1] > bestY {
			bestY, f.y0, f.y1 = b[1]-a[1], a[1], b[1]
		}
	}
	require.Positive(t, bestX, "an x axis line")
	require.Positive(t, bestY, "a y axis line")
	return f
}

// center is the middle of a path's bounding box (a marker's centre).
func center(p svgPath) [2]float64 {
	lo, hi := [2]float64{math.Inf(1), math.Inf(1)}, [2]float64{math.Inf(-1), math.Inf(-1)}
	for _, q := range p.points {
		for k := range 2 {
			lo[k], hi[k] = math.Min(lo[k], q[k]), math.Max(hi[k], q[k])
		}
	}
	return [2]float64{(lo[0] + hi[0]) / 2, (lo[1] + hi[1]) / 2}
}

func (f frame) inside(q [2]float64) bool {
	const eps = 0.01
	return q[0] >= f.x0-eps && q[0] <= f.x1+eps && q[1] >= f.y0-eps && q[1] <= f.y1+eps
}

func render(t *testing.T, p *plot.Plot) svgDoc {
	t.Helper()
	var b bytes.Buffer
	require.NoError(t, WritePlot(&b, p, "svg"))
	var pb bytes.Buffer
	require.NoError(t, WritePlot(&pb, p, "png"))
	img, err := png.Decode(&pb)
	require.NoError(t, err, "the PNG decodes")
	assert.Equal(t, 960, img.Bounds().Dx(), "720 pt at 96 dpi")
	return parseSVG(t, b.Bytes())
}

// checkSeries asserts, for each series colour, that its markers number
// its points plus one (the legend's), that every marker and line vertex is
// inside the frame, and that each name is in exactly one text (the legend).
func checkSeries(t *testing.T, doc svgDoc, names []string, points []int) {
	t.Helper()
	f := frameOf(t, doc)
	for k, name := range names {
		color := strings.ToUpper(hexColor(seriesStyles[k].color.R, seriesStyles[k].color.G, seriesStyles[k].color.B))
		markers, lines := 0, 0
		for _, p := range doc.paths {
			if p.color != color {
				continue
			}
			if p.width == "1.5" { // a line
				lines++
				for _, q := range p.points {
					assert.True(t, f.inside(q), "%s: line vertex %v outside the frame %+v", name, q, f)
				}
				continue
			}
			markers++
			assert.True(t, f.inside(center(p)), "%s: marker at %v outside the frame %+v", name, center(p), f)
		}
		assert.Equal(t, points[k]+1, markers, "%s: a marker per point and one in the legend", name)
		assert.Positive(t, lines, "%s: drawn as a line too", name)
		n := 0
		for _, s := range doc.texts {
			if s == name {
				n++
			}
		}
		assert.Equal(t, 1, n, "%s: one legend entry", name)
	}
}

func hexColor(r, g, b uint8) string { return "#" + hex2(r) + hex2(g) + hex2(b) }
func hex2(v uint8) string {
	s := strconv.FormatUint(uint64(v), 16)
	return strings.Repeat("0", 2-len(s)) + s
}

// yTicks returns the numeric labels of the y axis (texts left of the frame).
func maxTickLabel(doc svgDoc) float64 {
	top := math.Inf(-1)
	for _, s := range doc.texts {
		if v, err := strconv.ParseFloat(strings.ReplaceAll(s, ",", ""), 64); err == nil {
			top = math.Max(top, v)
		}
	}
	return top
}

func TestPlotsInsideTheirAxes(t *testing.T) {
	f := func(v float64) *float64 { return &v }
	// 20 one-second intervals near 45 pairs/s with latencies where P95 and
	// P99 are equal, one interval without requests (a gap), and the last
	// interval 2 ms long with 3,918 pairs/s (partial).
	var pts []Point
	for i := range 20 {
		pt := Point{T: float64(i + 1), Window: 1, PairsPerSec: 45 + float64(i%3)}
		if i != 7 {
			pt.LatP50, pt.LatP95, pt.LatP99 = f(100+float64(i)), f(180), f(180)
		}
		pts = append(pts, pt)
	}
	pts = append(pts, Point{T: 20.002, Window: 0.002, PairsPerSec: 3918, LatP50: f(900), LatP95: f(950), LatP99: f(990), Partial: true})

	p, err := ThroughputOverTime("throughput", pts)
	require.NoError(t, err)
	doc := render(t, p)
	checkSeries(t, doc, []string{"pairs/s"}, []int{20})
	assert.Less(t, maxTickLabel(doc), 100.0, "the partial interval does not stretch the y axis")

	p, err = LatencyOverTime("latency", pts)
	require.NoError(t, err)
	doc = render(t, p)
	checkSeries(t, doc, []string{"P50", "P95", "P99"}, []int{19, 19, 19})
	assert.Less(t, maxTickLabel(doc), 300.0, "the partial interval is not drawn")
	assert.Contains(t, doc.texts, "latency")

	p, err = Histogram("histogram", "latency (ms)", []float64{1, 2, 2, 3, 10}, 5)
	require.NoError(t, err)
	doc = render(t, p)
	fr := frameOf(t, doc)
	bars := 0
	for _, path := range doc.paths {
		if path.color == strings.ToUpper(hexColor(0x1f, 0x77, 0xb4)) {
			bars++
			for _, q := range path.points {
				assert.True(t, fr.inside(q), "bar corner %v outside the frame %+v", q, fr)
			}
		}
	}
	assert.Equal(t, 5, bars, "one bar per bin")
}
