// Package datasets makes and scores labelled test data for trailsight.
//
// Generate writes a synthetic CloudTrail archive in the real S3 layout
// (AWSLogs/<account>/CloudTrail/<region>/YYYY/MM/DD/…json.gz, a file every
// five minutes per account and region, records shuffled and delivered late,
// the odd duplicate file) from Poisson processes with time-of-week
// modulation, periodic jobs and background errors, and plants anomalies —
// write bursts, gaps, limit hits, access-denied enumerations — and decoys
// that must not be reported, all described in labels.json. Nothing is
// planted in the first seven days: a detector needs that history.
//
// Evaluate scores insights against labels: per-kind recall and precision,
// false insights on decoys, and delays (detector.ReadInsights reads the
// insights back from a folder or file).
//
// The package does not detect anything and does not read the wall clock:
// the same options and seed give the same bytes.
package datasets

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/klauspost/compress/gzip"
)

// GenOptions says what Generate makes. Zero fields take the defaults: 14
// days from Monday 2026-03-02 00:00 UTC, 2 accounts, scale 1, regions
// us-east-1 and eu-west-1.
type GenOptions struct {
	Out      string    // folder to write AWSLogs/… and labels.json into
	Days     int       // length of the archive in days
	Seed     int64     // the same seed gives the same bytes
	Scale    float64   // multiplies every rate (background and anomalies)
	Accounts int       // number of accounts
	Start    time.Time // first minute of the archive (truncated to the minute)
	Regions  []string  // the first region holds global services (IAM, STS) and most anomalies

	// Background writes normal traffic only: the recurring patterns (growth,
	// the weekly peak, the daily deploy, a holiday) but no planted anomaly
	// and no one-off decoy — for measuring the rate of false insights.
	Background bool

	// Workers bounds the files written in parallel; 0 means GOMAXPROCS.
	// It does not change the output.
	Workers int
}

// DefaultStart is the default first day of a generated archive, a Monday.
var DefaultStart = time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)

// DefaultRegions are the regions of a generated archive unless told otherwise.
var DefaultRegions = []string{"us-east-1", "eu-west-1"}

// GenStats counts what Generate wrote.
type GenStats struct {
	Events         int64 // records, not counting duplicate files
	Files          int64 // log files, including duplicates
	DuplicateFiles int64 // files delivered twice under another name
	Bytes          int64 // compressed bytes on disk
	RawBytes       int64 // uncompressed JSON bytes
	Labels         int
}

func (o *GenOptions) setDefaults() error {
	if o.Out == "" {
		return errors.New("datasets: no output folder")
	}
	if o.Days == 0 {
		o.Days = 14
	}
	if o.Scale == 0 {
		o.Scale = 1
	}
	if o.Accounts == 0 {
		o.Accounts = 2
	}
	if o.Start.IsZero() {
		o.Start = DefaultStart
	}
	o.Start = o.Start.UTC().Truncate(time.Minute)
	if len(o.Regions) == 0 {
		o.Regions = DefaultRegions
	}
	if o.Workers <= 0 {
		o.Workers = runtime.GOMAXPROCS(0)
	}
	switch {
	case o.Days < 0:
		return fmt.Errorf("datasets: days %d < 0", o.Days)
	case o.Scale < 0:
		return fmt.Errorf("datasets: scale %g < 0", o.Scale)
	case o.Accounts < 0 || o.Accounts > 1000:
		return fmt.Errorf("datasets: accounts %d not in 1..1000", o.Accounts)
	}
	return nil
}

// Generate writes the archive under opts.Out/AWSLogs/… and the labels to
// opts.Out/labels.json. Files are streamed to disk a day at a time, so
// memory stays flat however many days are asked for; the output is the same
// for the same options whatever the number of workers.
func Generate(ctx context.Context, opts GenOptions) (Labels, GenStats, error) {
	if err := opts.setDefaults(); err != nil {
		return Labels{}, GenStats{}, err
	}
	labels := Labels{Scenario: "default", Seed: opts.Seed, Start: opts.Start,
		End: opts.Start.Add(time.Duration(opts.Days) * 24 * time.Hour)}
	var units []*unit
	for i := range opts.Accounts {
		a := newAccount(&opts, i)
		labels.Labels = append(labels.Labels, plan(&opts, a)...)
		for ri := range opts.Regions {
			units = append(units, newUnit(&opts, a, ri))
		}
	}
	sort.SliceStable(labels.Labels, func(i, j int) bool {
		a, b := labels.Labels[i], labels.Labels[j]
		if !a.Start.Equal(b.Start) {
			return a.Start.Before(b.Start)
		}
		return a.Account+a.Region+a.Kind+a.EventName < b.Account+b.Region+b.Kind+b.EventName
	})
	if labels.Labels == nil {
		labels.Labels = []Label{}
	}
	if err := os.MkdirAll(opts.Out, 0o755); err != nil {
		return labels, GenStats{}, fmt.Errorf("datasets: %w", err)
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	jobs := make(chan *unit)
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		stats GenStats
		errs  []error
	)
	for range min(opts.Workers, len(units)) {
		wg.Go(func() {
			w := newFileWriter()
			for u := range jobs {
				st, err := u.run(ctx, w)
				mu.Lock()
				stats.Events += st.Events
				stats.Files += st.Files
				stats.DuplicateFiles += st.DuplicateFiles
				stats.Bytes += st.Bytes
				stats.RawBytes += st.RawBytes
				if err != nil {
					errs = append(errs, err)
					cancel()
				}
				mu.Unlock()
			}
		})
	}
feed:
	for _, u := range units {
		select {
		case jobs <- u:
		case <-ctx.Done():
			break feed
		}
	}
	close(jobs)
	wg.Wait()
	if len(errs) > 0 {
		return labels, stats, errors.Join(errs...)
	}
	if err := ctx.Err(); err != nil {
		return labels, stats, fmt.Errorf("datasets: generate: %w", err)
	}
	stats.Labels = len(labels.Labels)
	if err := WriteLabels(filepath.Join(opts.Out, "labels.json"), labels); err != nil {
		return labels, stats, err
	}
	return labels, stats, nil
}

// unit generates one account in one region, day after day.
type unit struct {
	opts    *GenOptions
	a       *account
	ri      int
	region  string
	rates   []float64  // per catalog stream; 0 when absent from this region
	windows [][]window // per catalog stream: this region's windows
	extras  []window   // wExtra windows of this region
}

func newUnit(opts *GenOptions, a *account, ri int) *unit {
	u := &unit{opts: opts, a: a, ri: ri, region: opts.Regions[ri],
		rates: make([]float64, len(catalog)), windows: make([][]window, len(catalog))}
	for i, s := range catalog {
		switch {
		case ri == 0:
			u.rates[i] = a.rates[i]
		case !s.primary:
			u.rates[i] = a.rates[i] * regionFactor
		}
	}
	for _, w := range a.windows {
		if w.region != ri {
			continue
		}
		if w.kind == wExtra {
			u.extras = append(u.extras, w)
		} else {
			u.windows[w.stream] = append(u.windows[w.stream], w)
		}
	}
	return u
}

// genEvent is a planned call.
type genEvent struct {
	t      int64 // eventTime, Unix seconds
	stream int16
	who    int8 // -1: the stream's own principal
	err    string
}

// run writes every file of the unit.
func (u *unit) run(ctx context.Context, w *fileWriter) (GenStats, error) {
	var st GenStats
	start := u.opts.Start.Unix()
	slots := map[int64][]genEvent{}
	var day []genEvent
	for d := range u.opts.Days {
		if err := ctx.Err(); err != nil {
			return st, err
		}
		ds := start + int64(d)*86400
		day = u.genDay(ds, day[:0])
		r := newRand(u.opts.Seed, purposeDay, int64(u.a.idx), int64(u.ri), ds, 1)
		for _, e := range day {
			slot := deliverySlot(e.t, r)
			slots[slot] = append(slots[slot], e)
		}
		if err := u.flush(w, slots, ds+86400, &st); err != nil {
			return st, err
		}
	}
	return st, u.flush(w, slots, 1<<62, &st)
}

// deliverySlot returns the delivery minute of a call made at t: 1-5 minutes
// later, with a tail up to 15, rounded up to the 5-minute grid.
func deliverySlot(t int64, r interface{ IntN(int) int }) int64 {
	delay := int64(60 + r.IntN(241))
	if r.IntN(100) < 4 {
		delay = int64(300 + r.IntN(601))
	}
	d := t + delay
	return (d + 299) / 300 * 300
}

// flush writes the slots at or before until, in time order.
func (u *unit) flush(w *fileWriter, slots map[int64][]genEvent, until int64, st *GenStats) error {
	var keys []int64
	for k := range slots {
		if k <= until {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		if err := u.writeSlot(w, k, slots[k], st); err != nil {
			return err
		}
		delete(slots, k)
	}
	return nil
}

// genDay appends the calls of the day starting at ds (Unix seconds) in the
// order of the catalog, then the planted extras.
func (u *unit) genDay(ds int64, out []genEvent) []genEvent {
	r := newRand(u.opts.Seed, purposeDay, int64(u.a.idx), int64(u.ri), ds)
	scale := u.opts.Scale
	holiday := u.a.holidays[ds/86400]
	start := u.opts.Start.Unix()
	for i := range catalog {
		s := &catalog[i]
		rate := u.rates[i] * scale
		if rate == 0 && s.period == 0 {
			continue
		}
		wins := overlapping(u.windows[i], ds, ds+86400)
		if s.period > 0 {
			if u.ri > 0 && s.primary {
				continue
			}
			for m := s.offset % s.period; m < 1440; m += s.period {
				t := ds + int64(m)*60
				if suppressed(wins, t) {
					continue
				}
				for j := range max(1, int(float64(s.perRun)*scale+0.5)) {
					ts := t + int64(r.IntN(40)) + int64(j)*int64(r.IntN(3))
					out = append(out, genEvent{t: ts, stream: int16(i), who: -1, err: u.errFor(s, wins, ts, r)})
				}
			}
			continue
		}
		prof := &profiles[s.prof]
		growth := s.tag == "growth"
		for m := range int64(1440) {
			t := ds + m*60
			mow := minuteOfWeek(t)
			if holiday && s.prof == office {
				mow = 6*1440 + int(m) // a Sunday
			}
			lambda := rate * prof[mow]
			if growth {
				lambda *= growthFactor(t - start)
			}
			for _, w := range wins {
				if t >= w.start && t < w.end {
					switch w.kind {
					case wMult:
						lambda *= w.rate
					case wSuppress:
						lambda = 0
					}
				}
			}
			for range poisson(r, lambda) {
				ts := t + int64(r.IntN(60))
				out = append(out, genEvent{t: ts, stream: int16(i), who: -1, err: u.errFor(s, wins, ts, r)})
			}
		}
	}
	for _, w := range overlapping(u.extras, ds, ds+86400) {
		who := int8(-1)
		if w.hasWho {
			who = int8(w.who)
		}
		for t := max(w.start, ds) / 60 * 60; t < min(w.end, ds+86400); t += 60 {
			for range poisson(r, w.rate*scale) {
				e := genEvent{t: t + int64(r.IntN(60)), stream: int16(w.stream), who: who}
				if w.share > 0 && r.Float64() < w.share {
					e.err = w.err
				}
				out = append(out, e)
			}
		}
	}
	return out
}

// growthFactor is 30% a week, compounded, after d seconds.
func growthFactor(d int64) float64 {
	return math.Pow(1.3, float64(d)/(7*86400))
}

func overlapping(ws []window, from, to int64) []window {
	var out []window
	for _, w := range ws {
		if w.start < to && from < w.end {
			out = append(out, w)
		}
	}
	return out
}

func suppressed(ws []window, t int64) bool {
	for _, w := range ws {
		if w.kind == wSuppress && t >= w.start && t < w.end {
			return true
		}
	}
	return false
}

// errFor returns the error code of a background call of s at t: a planted
// throttling share, else the stream's background error rate.
func (u *unit) errFor(s *stream, wins []window, t int64, r interface{ Float64() float64 }) string {
	for _, w := range wins {
		if w.kind == wErrShare && t >= w.start && t < w.end && r.Float64() < w.share {
			return w.err
		}
	}
	if s.errRate > 0 && r.Float64() < s.errRate {
		return s.errCode
	}
	return ""
}

// fileWriter holds the buffers one worker reuses from file to file.
type fileWriter struct {
	buf  []byte
	gz   *gzip.Writer
	bw   *bufio.Writer
	dirs map[string]bool
}

func newFileWriter() *fileWriter {
	gz, _ := gzip.NewWriterLevel(nil, gzip.DefaultCompression)
	return &fileWriter{gz: gz, bw: bufio.NewWriterSize(nil, 256<<10), dirs: map[string]bool{}}
}

// writeSlot writes the file delivered at slot (Unix seconds), and now and
// then a second copy of it under another name.
func (u *unit) writeSlot(w *fileWriter, slot int64, evs []genEvent, st *GenStats) error {
	r := newRand(u.opts.Seed, purposeFile, int64(u.a.idx), int64(u.ri), slot)
	r.Shuffle(len(evs), func(i, j int) { evs[i], evs[j] = evs[j], evs[i] })
	c := &recCtx{acct: u.a.id, region: u.region, bucket: u.a.bucket, rng: r}
	b := append(w.buf[:0], `{"Records":[`...)
	for i, e := range evs {
		if i > 0 {
			b = append(b, ',')
		}
		s := &catalog[e.stream]
		p := s.who
		if e.who >= 0 {
			p = who(e.who)
		}
		b = appendRecord(b, time.Unix(e.t, 0).UTC(), s.api, &u.a.ids[p], e.err, c)
	}
	b = append(b, "]}"...)
	w.buf = b
	st.Events += int64(len(evs))
	if err := u.writeFile(w, slot, r, b, st); err != nil {
		return err
	}
	if r.IntN(1000) < 3 {
		st.DuplicateFiles++
		return u.writeFile(w, slot+300, r, b, st)
	}
	return nil
}

// writeFile writes body, gzip'd, as AWS would name a file delivered at t.
func (u *unit) writeFile(w *fileWriter, t int64, r interface{ IntN(int) int }, body []byte, st *GenStats) error {
	tm := time.Unix(t, 0).UTC()
	dir := filepath.Join(u.opts.Out, "AWSLogs", u.a.id, "CloudTrail", u.region, tm.Format("2006/01/02"))
	if !w.dirs[dir] {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("datasets: %w", err)
		}
		w.dirs[dir] = true
	}
	var name strings.Builder
	name.WriteString(u.a.id)
	name.WriteString("_CloudTrail_")
	name.WriteString(u.region)
	name.WriteString(tm.Format("_20060102T1504Z_"))
	for range 16 {
		name.WriteByte(alnum[r.IntN(len(alnum))])
	}
	name.WriteString(".json.gz")
	path := filepath.Join(dir, name.String())
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("datasets: %w", err)
	}
	cw := &countWriter{w: f}
	w.bw.Reset(cw)
	w.gz.Reset(w.bw)
	_, err = w.gz.Write(body)
	if err == nil {
		err = w.gz.Close()
	}
	if err == nil {
		err = w.bw.Flush()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("datasets: write %s: %w", path, err)
	}
	st.Files++
	st.Bytes += cw.n
	st.RawBytes += int64(len(body))
	return nil
}

type countWriter struct {
	w interface{ Write([]byte) (int, error) }
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
