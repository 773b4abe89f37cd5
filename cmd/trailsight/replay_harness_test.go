package main

import (
	"cmp"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"

	"github.com/trailsight/trailsight/configs"
	"github.com/trailsight/trailsight/datasets"
	"github.com/trailsight/trailsight/detector"
	"github.com/trailsight/trailsight/stream"
)

// archiveReplay holds a generated archive's records in event-time order
// without holding their bytes: each record is (time, file, index in
// file); a file is decoded again when its first record is due and dropped
// after its last, so memory follows the span of delivery delays, not the
// archive.
type archiveReplay struct {
	files   []stream.File
	order   []replayRef
	left    []int // records of each file not yet sent
	loaded  map[int]*loadedFile
	dec     *stream.Decoder
	open    func(stream.File) ([]byte, error)
	records int
}

type replayRef struct {
	t    int64 // event time, Unix ns
	file int32
	rec  int32
}

type loadedFile struct {
	evs  []stream.Event
	raws [][]byte
}

func newArchiveReplay(ctx context.Context, dir string) (*archiveReplay, error) {
	files, _, _, err := listInput(ctx, dir, time.Time{}, time.Time{})
	if err != nil {
		return nil, err
	}
	a := &archiveReplay{files: files, left: make([]int, len(files)), loaded: map[int]*loadedFile{},
		dec: stream.NewDecoder(), open: func(f stream.File) ([]byte, error) { return os.ReadFile(f.Path) }}
	for i, f := range files {
		data, err := a.open(f)
		if err != nil {
			return nil, err
		}
		n := 0
		if _, err := a.dec.DecodeRaw(data, func(ev stream.Event, _ []byte) error {
			a.order = append(a.order, replayRef{ev.Time.UnixNano(), int32(i), int32(n)})
			n++
			return nil
		}); err != nil {
			return nil, fmt.Errorf("%s: %w", f.Path, err)
		}
		a.left[i] = n
		a.records += n
	}
	// Stable: records of the same second keep their file order.
	slices.SortStableFunc(a.order, func(x, y replayRef) int { return cmp.Compare(x.t, y.t) })
	return a, nil
}

// record returns the i-th record in event-time order.
func (a *archiveReplay) record(i int) (*stream.File, stream.Event, []byte, error) {
	r := a.order[i]
	lf := a.loaded[int(r.file)]
	if lf == nil {
		data, err := a.open(a.files[r.file])
		if err != nil {
			return nil, stream.Event{}, nil, err
		}
		lf = &loadedFile{}
		if _, err := a.dec.DecodeRaw(data, func(ev stream.Event, raw []byte) error {
			lf.evs = append(lf.evs, ev)
			lf.raws = append(lf.raws, appendCompact(nil, raw))
			return nil
		}); err != nil {
			return nil, stream.Event{}, nil, err
		}
		a.loaded[int(r.file)] = lf
	}
	ev, raw := lf.evs[r.rec], lf.raws[r.rec]
	if a.left[r.file]--; a.left[r.file] == 0 {
		delete(a.loaded, int(r.file))
	}
	return &a.files[r.file], ev, raw, nil
}

// burstDelay is what the latency proof measured for one planted anomaly.
type burstDelay struct {
	label    datasets.Label
	found    bool
	start    time.Time // eventTime of its Start (the minute the detector names)
	position time.Time // the stream's event-time position when the Start arrived
	paced    bool      // the Start arrived while the stream was replayed in real time
	alone    time.Time // the same detector in process, fed the same records: time of the record that raised the Start
}

// attribution is Start eventTime − labelled start: how the detector places
// the anomaly, independent of the service.
func (d burstDelay) attribution() time.Duration { return d.start.Sub(d.label.Start) }

// emission is the stream position when the Start arrived − labelled start:
// the delay a reader of the insights sees, in event time.
func (d burstDelay) emission() time.Duration { return d.position.Sub(d.label.Start) }

// detection is when the detector alone, without the service, raised the
// Start: the event time of the record after which it did − labelled start.
// It is the statistics' part of the delay (a rare API needs a few calls to
// be significant); emission − detection is the service's part.
func (d burstDelay) detection() time.Duration { return d.alone.Sub(d.label.Start) }

// afterStart is the stream position when the Start arrived − the Start's
// own minute: the part of the delay that is the service's.
func (d burstDelay) afterStart() time.Duration { return d.position.Sub(d.start) }

// latencyOptions is one latency replay.
type latencyOptions struct {
	speed    float64 // N× real time inside the paced windows
	days     int     // of the generated scenario (anomalies are planted from day 8)
	accounts int
	seed     int64
	lead     time.Duration // paced before a labelled start
	maxWait  time.Duration // paced after a labelled start when no Start comes
}

// measuredKinds are the planted anomalies a Start is awaited for: rate
// rises (write bursts, throttling, denied calls). Gaps are reported only
// after a silence, by design, and are not part of this proof.
var measuredKinds = map[string]bool{datasets.KindBurst: true, datasets.KindLimit: true, datasets.KindError: true}

// replayLatency generates a labelled scenario, replays it into a real
// NATS stream that a `trailsight run` child reads, and measures when the
// Start of every planted anomaly arrives on the insights subject.
//
// History is sent as fast as the service takes it. From o.lead before each
// planted start the stream is replayed at o.speed× real time by event time,
// until every planted anomaly open at that point has its Start (or o.maxWait
// has passed); then fast again. Before each paced window the publisher
// waits until the service has read everything, so the window starts from a
// live stream, as a service in production sees it. The stream's position
// (event time) at a wall instant in a window is windowStart + elapsed×speed:
// so a wall delay of the service (fetch, detect, publish, subscriber) counts
// speed times over — at 60× a 1 s hiccup is a minute of event time. The
// figures are pessimistic above 1×.
func replayLatency(tb testing.TB, o latencyOptions) []burstDelay {
	tb.Helper()
	ctx := context.Background()
	dir := tb.TempDir()
	arch := filepath.Join(dir, "archive")
	labels, _, err := datasets.Generate(ctx, datasets.GenOptions{Out: arch, Days: o.days, Accounts: o.accounts, Seed: o.seed})
	if err != nil {
		tb.Fatal(err)
	}
	replay, err := newArchiveReplay(ctx, arch)
	if err != nil {
		tb.Fatal(err)
	}
	var delays []*burstDelay
	for _, lb := range labels.Labels {
		if !lb.Decoy && measuredKinds[lb.Kind] {
			delays = append(delays, &burstDelay{label: lb})
		}
	}
	slices.SortStableFunc(delays, func(a, b *burstDelay) int { return a.label.Start.Compare(b.label.Start) })
	if len(delays) == 0 {
		tb.Fatal("the scenario has no planted burst")
	}

	url := startTestNATS(tb)
	p, err := newPublisher(ctx, mustNATSOptions(tb, url+"/CLOUDTRAIL"), stream.DefaultEventsPrefix, true, 0, 4096, zerolog.Nop())
	if err != nil {
		tb.Fatal(err)
	}
	defer p.close()

	// The stream's event-time position, for the subscriber.
	var clock struct {
		sync.Mutex
		paced             bool
		wallStart         time.Time
		evStart, maxEvent time.Time
	}
	position := func(now time.Time) (time.Time, bool) {
		clock.Lock()
		defer clock.Unlock()
		if clock.paced {
			return clock.evStart.Add(time.Duration(float64(now.Sub(clock.wallStart)) * o.speed)), true
		}
		return clock.maxEvent, false
	}
	var mu sync.Mutex
	var found atomic.Int64
	nc, err := nats.Connect(url)
	if err != nil {
		tb.Fatal(err)
	}
	defer nc.Close()
	sub := subscribeStarts(tb, nc, &mu, func(in detector.Insight) {
		pos, paced := position(time.Now())
		for _, d := range delays {
			if !d.found && matchesLabel(in, d.label) {
				d.found, d.start, d.position, d.paced = true, in.Time, pos, paced
				found.Add(1)
				break
			}
		}
	})
	defer sub.Unsubscribe()

	listen := freeAddr(tb)
	cfg := runConfig{source: url + "/CLOUDTRAIL?durable=latency", listen: listen, insights: url + "/INSIGHTS?create=1"}.write(tb, dir)
	svc := startRun(tb, cfg, listen)

	// drain waits until the service has read every record stored so far.
	drain := func() {
		select {
		case <-p.js.PublishAsyncComplete():
		case <-time.After(time.Minute):
			tb.Fatal("publishes not acknowledged after a minute")
		}
		want := float64(p.stored.Load())
		deadline := time.Now().Add(2 * time.Minute)
		for {
			m, err := svc.scrape()
			if err == nil && m["trailsight_events_total"] >= want {
				return
			}
			if time.Now().After(deadline) {
				tb.Fatalf("the service read %v of %v records after 2 minutes (%v):\n%s", m["trailsight_events_total"], want, err, svc.stderr.String())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	// open reports whether a planted anomaly near t is still awaited.
	awaited := func(t time.Time) bool {
		mu.Lock()
		defer mu.Unlock()
		for _, d := range delays {
			if !d.found && !t.Before(d.label.Start.Add(-o.lead)) && t.Before(d.label.Start.Add(o.maxWait)) {
				return true
			}
		}
		return false
	}
	// The reference: the service's detector, in process, fed the same
	// records in the same order, with no wall clock anywhere.
	ref, err := detector.New(configs.Default().DetectorConfig())
	if err != nil {
		tb.Fatal(err)
	}
	refDedupe := stream.NewDeduper(configs.Default().Input.DedupeWindow.Duration)
	windows := 0
	var pacedWall time.Duration
	for i := 0; i < len(replay.order); i++ {
		f, ev, raw, err := replay.record(i)
		if err != nil {
			tb.Fatal(err)
		}
		clock.Lock()
		paced := clock.paced
		clock.Unlock()
		switch now := awaited(ev.Time); {
		case now && !paced:
			drain()
			windows++
			clock.Lock()
			clock.paced, clock.wallStart, clock.evStart = true, time.Now(), ev.Time
			clock.Unlock()
			paced = true
		case !now && paced:
			clock.Lock()
			clock.paced = false
			pacedWall += time.Since(clock.wallStart)
			clock.Unlock()
			paced = false
		}
		if paced {
			clock.Lock()
			due := clock.wallStart.Add(time.Duration(float64(ev.Time.Sub(clock.evStart)) / o.speed))
			clock.Unlock()
			if d := time.Until(due); d > 0 {
				time.Sleep(d)
			}
		}
		if err := p.publish(ctx, f, ev, raw); err != nil {
			tb.Fatal(err)
		}
		if !refDedupe.Seen(&ev) {
			ref.Add(&ev)
		}
		for _, in := range ref.Advance() {
			if in.State != detector.Start {
				continue
			}
			for _, d := range delays {
				if d.alone.IsZero() && matchesLabel(in, d.label) {
					d.alone = ev.Time
					break
				}
			}
		}
		clock.Lock()
		if ev.Time.After(clock.maxEvent) {
			clock.maxEvent = ev.Time
		}
		clock.Unlock()
	}
	drain()
	time.Sleep(500 * time.Millisecond) // the last insights on their way
	svc.stop()
	if svc.err != nil {
		tb.Errorf("trailsight run: %v\n%s", svc.err, svc.stderr.String())
	}
	tb.Logf("%d records, %d planted anomalies (%d with a Start), %d paced windows, %v paced at %g×",
		len(replay.order), len(delays), found.Load(), windows, pacedWall.Round(time.Millisecond), o.speed)
	mu.Lock()
	defer mu.Unlock()
	out := make([]burstDelay, len(delays))
	for i, d := range delays {
		out[i] = *d
	}
	return out
}

// matchesLabel: the Start is on the label's series and within its span (a
// detector may place the start a few minutes early, on the first
// unusual minute it sees).
func matchesLabel(in detector.Insight, lb datasets.Label) bool {
	return (lb.InsightType == "" || lb.InsightType == in.Type.String()) && lb.Account == in.Account &&
		(lb.Region == "" || lb.Region == in.Region) && (lb.EventSource == "" || lb.EventSource == in.EventSource) &&
		(lb.EventName == "" || lb.EventName == in.EventName) && (lb.ErrorCode == "" || lb.ErrorCode == in.ErrorCode) &&
		!in.Time.Before(lb.Start.Add(-5*time.Minute)) && in.Time.Before(lb.End)
}

func mustNATSOptions(tb testing.TB, u string) stream.NATSSourceOptions {
	o, err := stream.ParseNATSURL(u)
	if err != nil {
		tb.Fatal(err)
	}
	return o
}
