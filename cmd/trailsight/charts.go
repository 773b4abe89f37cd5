package main

import (
	"bytes"
	"errors"
	"fmt"
	"image/color"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/text"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"

	"github.com/trailsight/trailsight/baseline"
	"github.com/trailsight/trailsight/detector"
	"github.com/trailsight/trailsight/notify"
)

// Chart size in pixels (at vgimg's 96 dots per inch).
const (
	chartW, chartH = 900, 560
	chartDPI       = 96
	chartHours     = 48 // hours before the End on the hourly panel
	minPartialHour = 10 // fewest closed minutes of the current hour drawn on the hourly panel
)

// charts writes one PNG per insight when its End arrives (see
// detector.Detector.History): the series' hours and minutes against what
// was expected, the insight's span shaded. Rendering runs on worker
// goroutines; add must be called from the goroutine that drives the
// detector, right after the detector returned the insights. A chart that
// fails is logged and counted, never an error of the run.
type charts struct {
	dir string
	log zerolog.Logger
	// onDone, when set, is told of each chart written (ok) or failed; it
	// is called from the renderers.
	onDone func(ok bool)
	starts map[string]time.Time // SharedEventID → start, of insights whose End has not come
	jobs   chan chartJob
	wg     sync.WaitGroup

	mu      sync.Mutex
	written int
	failed  int
}

type chartJob struct {
	end   detector.Insight
	start time.Time
	hist  detector.SeriesHistory
}

// newCharts checks that dir can be written (creating it) and starts the
// renderers. setting names where dir comes from, for errors ("--charts").
func newCharts(setting, dir string, log zerolog.Logger) (*charts, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("%s %s: %w", setting, dir, err)
	}
	f, err := os.CreateTemp(dir, ".trailsight-probe-*")
	if err != nil {
		return nil, fmt.Errorf("%s %s: not writable: %w", setting, dir, err)
	}
	f.Close()
	os.Remove(f.Name())
	c := &charts{dir: dir, log: log, starts: map[string]time.Time{}, jobs: make(chan chartJob, 16)}
	for range max(1, runtime.GOMAXPROCS(0)/2) {
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			for j := range c.jobs {
				c.render(j)
			}
		}()
	}
	return c, nil
}

// add takes a batch of insights from det: Starts are remembered, and each
// End's chart is drawn from det.History, read now.
func (c *charts) add(det *detector.Detector, ins []detector.Insight) {
	if c == nil {
		return
	}
	for i := range ins {
		in := &ins[i]
		if in.State == detector.Start {
			c.starts[in.SharedEventID] = in.Time
			continue
		}
		start, ok := c.starts[in.SharedEventID]
		if !ok { // not seen (cannot happen in one run): from the duration
			start = in.Time.Add(-time.Duration(in.Stats.InsightDuration) * time.Minute)
		}
		delete(c.starts, in.SharedEventID)
		h, ok := det.History(in.Key())
		if !ok {
			c.fail(in, errors.New("detector does not know the series"))
			continue
		}
		c.jobs <- chartJob{end: *in, start: start, hist: h}
	}
}

// close waits for the charts under way and returns how many were written
// and how many failed.
func (c *charts) close() (written, failed int) {
	if c == nil {
		return 0, 0
	}
	close(c.jobs)
	c.wg.Wait()
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.written, c.failed
}

func (c *charts) fail(in *detector.Insight, err error) {
	c.log.Warn().Err(err).Str("account", in.Account).Str("region", in.Region).Str("event_name", in.EventName).
		Str("shared_event_id", in.SharedEventID).Msg("chart not written")
	c.mu.Lock()
	c.failed++
	c.mu.Unlock()
	if c.onDone != nil {
		c.onDone(false)
	}
}

func (c *charts) render(j chartJob) {
	path := filepath.Join(c.dir, chartName(&j.end, j.start))
	err := func() (err error) {
		defer func() { // gonum/plot panics on some inputs: a chart, never the run
			if r := recover(); r != nil {
				err = fmt.Errorf("render: %v", r)
			}
		}()
		var b bytes.Buffer
		if err := drawChart(&b, &j.end, j.start, &j.hist); err != nil {
			return err
		}
		return notify.WriteFileAtomic(path, b.Bytes())
	}()
	if err != nil {
		c.fail(&j.end, fmt.Errorf("chart %s: %w", path, err))
		return
	}
	c.mu.Lock()
	c.written++
	c.mu.Unlock()
	if c.onDone != nil {
		c.onDone(true)
	}
}

// chartName is ACCOUNT/REGION/START_API_KIND_ID8.png, e.g.
// 111122223333/us-east-1/2026-03-05T1412Z_ec2.RunInstances_burst_1a2b3c4d.png:
// sorted by start within a folder, stable across runs (the ID is the
// insight's sharedEventID, derived from the series and the start).
func chartName(in *detector.Insight, start time.Time) string {
	api := strings.TrimSuffix(in.EventSource, ".amazonaws.com") + "." + in.EventName
	if in.ErrorCode != "" {
		api += "." + in.ErrorCode
	}
	name := fmt.Sprintf("%s_%s_%s_%s.png", start.UTC().Format("2006-01-02T1504Z"), safeName(api, true),
		safeName(insightKind(in), false), safeName(strings.ReplaceAll(in.SharedEventID, "-", "")[:min(8, len(in.SharedEventID))], false))
	return filepath.Join(safeName(in.Account, false), safeName(in.Region, false), name)
}

// safeName keeps letters, digits, '-' and '_' (and '.' when dots is set,
// never leading) and replaces anything else with '-', so that a name from
// the input can never leave its folder.
func safeName(s string, dots bool) string {
	b := []byte(s)
	for i, c := range b {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || dots && c == '.' && i > 0
		if !ok {
			b[i] = '-'
		}
	}
	if len(b) == 0 {
		return "-"
	}
	return string(b)
}

func insightKind(in *detector.Insight) string {
	if in.Explanation != nil && in.Explanation.Kind != "" {
		return in.Explanation.Kind
	}
	return in.Type.String()
}

// Chart colours.
var (
	colObserved = color.RGBA{R: 0x1f, G: 0x3b, B: 0x73, A: 0xff}
	colExpected = color.RGBA{R: 0x2e, G: 0x7d, B: 0x32, A: 0xff}
	colBand     = color.NRGBA{R: 0x66, G: 0xbb, B: 0x6a, A: 0x66} // translucent: the span shows through
	colSpan     = color.RGBA{R: 0xff, G: 0xe0, B: 0xb2, A: 0xff}
	colQuiet    = color.RGBA{R: 0x8d, G: 0x6e, B: 0x63, A: 0xff}
)

var (
	sans = font.Font{Typeface: "Liberation", Variant: "Sans"}
)

// drawChart writes the PNG of the insight that ended with end and started
// at start: a header (what, where, when, why), the hourly panel and the
// minute panel.
func drawChart(w *bytes.Buffer, end *detector.Insight, start time.Time, h *detector.SeriesHistory) error {
	img := vgimg.NewWith(vgimg.UseWH(vg.Length(chartW)/chartDPI*vg.Inch, vg.Length(chartH)/chartDPI*vg.Inch), vgimg.UseDPI(chartDPI))
	dc := draw.New(img)

	unit := "calls"
	if h.Key.Measure == baseline.Errors {
		unit = "errors"
	}
	lines := chartHeader(end, start, unit)
	styles := []text.Style{
		{Color: color.Black, Font: font.From(sans, 14), Handler: plot.DefaultTextHandler},
		{Color: color.Black, Font: font.From(sans, 10), Handler: plot.DefaultTextHandler},
		{Color: color.Black, Font: font.From(sans, 10), Handler: plot.DefaultTextHandler},
	}
	y := dc.Max.Y - vg.Points(6)
	for i, l := range lines {
		st := styles[min(i, len(styles)-1)]
		st.XAlign, st.YAlign = draw.XLeft, draw.YTop
		dc.FillText(st, vg.Point{X: dc.Min.X + vg.Points(8), Y: y}, l)
		y -= st.Rectangle(l).Size().Y + vg.Points(3)
	}
	body := draw.Crop(dc, 0, 0, 0, y-dc.Max.Y-vg.Points(2))

	below := end.Explanation != nil && end.Explanation.Direction == "below"
	endAt := end.Time
	var hours, minutes []detector.Point
	for _, p := range h.Hours {
		// The current hour's first minutes alone would make a noisy rate.
		if !p.Time.Before(endAt.Add(-chartHours*time.Hour)) && p.Minutes >= minPartialHour {
			hours = append(hours, p)
		}
	}
	minutes = h.Minutes
	top := panel(hours, start, endAt, below, unit+" / hour", 60, hourTicks{}, true)
	bottom := panel(minutes, start, endAt, below, unit+" / minute", 1, minuteTicks{}, false)
	tiles := draw.Tiles{Rows: 2, Cols: 1, PadX: vg.Points(4), PadY: vg.Points(10),
		PadTop: vg.Points(2), PadBottom: vg.Points(4), PadLeft: vg.Points(6), PadRight: vg.Points(14)}
	cs := plot.Align([][]*plot.Plot{{top}, {bottom}}, tiles, body)
	top.Draw(cs[0][0])
	bottom.Draw(cs[1][0])
	_, err := vgimg.PngCanvas{Canvas: img}.WriteTo(w)
	return err
}

// chartHeader returns the chart's title lines: what and which series; where
// and when; why (the explanation, when the insight has one).
func chartHeader(end *detector.Insight, start time.Time, unit string) []string {
	api := end.EventSource + " " + end.EventName
	if end.ErrorCode != "" {
		api += " [" + end.ErrorCode + "]"
	}
	what := fmt.Sprintf("%s — %s — %s", insightKind(end), api, end.Type)
	if end.Explanation == nil {
		what = fmt.Sprintf("%s — %s", end.Type, api)
	}
	out := []string{
		what,
		fmt.Sprintf("account %s · %s · %s → %s UTC (%d min)", end.Account, end.Region,
			start.UTC().Format("2006-01-02 15:04"), endLabel(start, end.Time), int(end.Time.Sub(start)/time.Minute)),
	}
	x := end.Explanation
	if x == nil {
		return out
	}
	ratio := ""
	if r := x.Observed / x.Expected; x.Expected > 0 && r >= 100 {
		ratio = fmt.Sprintf(" (×%.0f)", r)
	} else if x.Expected > 0 {
		ratio = fmt.Sprintf(" (×%.3g)", r)
	}
	var why string
	switch x.Kind {
	case "gap":
		why = fmt.Sprintf("silent %d min where %.3g %s were expected (band %.3g–%.3g)", x.SilentMinutes, x.Expected, unit, x.BandLow, x.BandHigh)
		if x.PeriodMinutes > 0 {
			why += fmt.Sprintf("; a job that ran every %d min", x.PeriodMinutes)
		}
	case "drop":
		why = fmt.Sprintf("%.4g %s in %d min where the quietest day expects %.4g%s (band %.4g–%.4g)", x.Observed, unit, x.WindowMinutes, x.Expected, ratio, x.BandLow, x.BandHigh)
	default:
		why = fmt.Sprintf("%.4g %s in %d min where %.3g were expected%s (band %.3g–%.3g)", x.Observed, unit, x.WindowMinutes, x.Expected, ratio, x.BandLow, x.BandHigh)
	}
	why += fmt.Sprintf(", score %.3g", x.Score)
	if x.Slot != "" {
		why += " · " + x.Slot
	}
	return append(out, why)
}

// endLabel is the end time, without its date when it is the start's.
func endLabel(start, end time.Time) string {
	if start.UTC().Format(time.DateOnly) == end.UTC().Format(time.DateOnly) {
		return end.UTC().Format("15:04")
	}
	return end.UTC().Format("2006-01-02 15:04")
}

// panel draws points as steps (values per per minutes: rates of the
// hourly points, whose last may be partial), the expected band and line,
// for a drop or a gap the quietest day's line, and the insight span shaded.
func panel(pts []detector.Point, start, end time.Time, below bool, ylabel string, per float64, ticks plot.Ticker, legend bool) *plot.Plot {
	p := plot.New()
	p.Y.Label.Text = ylabel
	p.Y.Label.TextStyle.Font = font.From(sans, 9)
	p.Y.Tick.Label.Font = font.From(sans, 8)
	p.X.Tick.Label.Font = font.From(sans, 8)
	p.X.Tick.Marker = ticks
	p.Legend.TextStyle.Font = font.From(sans, 8)
	p.Legend.Top, p.Legend.Left = true, true
	p.Legend.XOffs, p.Legend.YOffs = vg.Points(6), vg.Points(-4)
	p.Legend.ThumbnailWidth = vg.Points(14)
	if len(pts) == 0 {
		p.Title.Text = "(no data held)"
		p.Title.TextStyle.Font = font.From(sans, 9)
		p.X.Min, p.X.Max = float64(start.Unix()), float64(end.Unix())
		p.Y.Min, p.Y.Max = 0, 1
		return p
	}
	rate := func(p detector.Point, v float64) float64 { return v * per / float64(p.Minutes) }
	xmin := float64(pts[0].Time.Unix())
	last := pts[len(pts)-1]
	xmax := float64(last.Time.Add(time.Duration(last.Minutes) * time.Minute).Unix())
	ymax := 1.0
	for _, q := range pts {
		ymax = math.Max(ymax, math.Max(rate(q, q.Observed), rate(q, q.High)))
	}
	ymax *= 1.3 // room for the legend

	// The span, clipped to the panel.
	if s, e := math.Max(xmin, float64(start.Unix())), math.Min(xmax, float64(end.Unix())); e > s {
		sp, err := plotter.NewPolygon(plotter.XYs{{X: s, Y: 0}, {X: e, Y: 0}, {X: e, Y: ymax}, {X: s, Y: ymax}})
		if err == nil {
			sp.Color = colSpan
			sp.LineStyle.Width = 0
			p.Add(sp)
			if legend {
				p.Legend.Add("insight", sp)
			}
		}
	}
	step := func(v func(detector.Point) float64) plotter.XYs {
		xy := make(plotter.XYs, 0, 2*len(pts))
		for _, q := range pts {
			x0 := float64(q.Time.Unix())
			x1 := x0 + float64(q.Minutes*60)
			y := rate(q, v(q))
			xy = append(xy, plotter.XY{X: x0, Y: y}, plotter.XY{X: x1, Y: y})
		}
		return xy
	}
	hi, lo := step(func(q detector.Point) float64 { return q.High }), step(func(q detector.Point) float64 { return q.Low })
	poly := append(plotter.XYs{}, hi...)
	for i := len(lo) - 1; i >= 0; i-- {
		poly = append(poly, lo[i])
	}
	if band, err := plotter.NewPolygon(poly); err == nil {
		band.Color = colBand
		band.LineStyle.Width = 0
		p.Add(band)
		if legend {
			p.Legend.Add("expected band", band)
		}
	}
	if exp, err := plotter.NewLine(step(func(q detector.Point) float64 { return q.Expected })); err == nil {
		exp.Color = colExpected
		exp.Width = vg.Points(1.2)
		p.Add(exp)
		if legend {
			p.Legend.Add("expected", exp)
		}
	}
	if below {
		if q, err := plotter.NewLine(step(func(q detector.Point) float64 { return q.Quiet })); err == nil {
			q.Color = colQuiet
			q.Width = vg.Points(1)
			q.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
			p.Add(q)
			if legend {
				p.Legend.Add("quietest day", q)
			}
		}
	}
	if obs, err := plotter.NewLine(step(func(q detector.Point) float64 { return q.Observed })); err == nil {
		obs.Color = colObserved
		obs.Width = vg.Points(1.2)
		p.Add(obs)
		if legend {
			p.Legend.Add("observed", obs)
		}
	}
	p.X.Min, p.X.Max = xmin, xmax
	p.Y.Min, p.Y.Max = 0, ymax
	p.Add(plotter.NewGrid())
	return p
}

// hourTicks marks hours on an hourly panel: a label every 6 hours (with the
// day at midnight), a tick every hour.
type hourTicks struct{}

func (hourTicks) Ticks(lo, hi float64) []plot.Tick {
	return timeTicks(lo, hi, 3600, 6*3600, func(t time.Time) string {
		if t.Hour() == 0 {
			return t.Format("Mon Jan 2")
		}
		return t.Format("15:04")
	})
}

// minuteTicks marks minutes on a minute panel: a label every 15 minutes, a
// tick every 5.
type minuteTicks struct{}

func (minuteTicks) Ticks(lo, hi float64) []plot.Tick {
	return timeTicks(lo, hi, 300, 900, func(t time.Time) string { return t.Format("15:04") })
}

// timeTicks returns ticks at multiples of minor seconds in [lo, hi] (Unix
// seconds, UTC), labelled at multiples of major.
func timeTicks(lo, hi float64, minor, major int64, label func(time.Time) string) []plot.Tick {
	var out []plot.Tick
	first := int64(math.Ceil(lo/float64(minor))) * minor
	for s := first; float64(s) <= hi; s += minor {
		tk := plot.Tick{Value: float64(s)}
		if s%major == 0 {
			tk.Label = label(time.Unix(s, 0).UTC())
		}
		out = append(out, tk)
	}
	return out
}
