package detector

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/trailsight/trailsight/stream"
)

// TestSoak streams days of traffic over many series through one detector,
// minute by minute as a service would see it, with a burst planted in a
// random series every few hours (+10 calls a minute for 10 minutes). It checks that memory is flat once the
// baselines are learned and that the detector holds at most 2 KiB per
// series, and reports the event-time delay from a burst's start to its Start
// event (p50, p99). Short by default (1,000 series, 10 days); -tags long:
// 10,000 series, 30 days.
func TestSoak(t *testing.T) {
	nSeries, days := 1000, 10
	if longTests {
		nSeries, days = 10_000, 30
	}
	r := rand.New(rand.NewPCG(99, 1))
	type spec struct {
		ev   stream.Event
		rate float64
	}
	specs := make([]spec, nSeries)
	for i := range specs {
		specs[i] = spec{
			ev: stream.Event{Account: fmt.Sprintf("%012d", 100000000000+i/50), Region: "us-east-1",
				Source: fmt.Sprintf("svc%d.amazonaws.com", i%7), Name: fmt.Sprintf("Api%d", i), Type: "AwsApiCall",
				UserArn: "arn:aws:iam::1:user/ops", UserAgent: "aws-cli/2", Category: stream.Management},
			rate: math.Exp(math.Log(0.002) + r.Float64()*(math.Log(0.5)-math.Log(0.002))),
		}
	}
	d, err := New(DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	planted := map[string]int{} // series name → start minute of its burst
	burstUntil := map[int]int{}
	var delays []float64
	var heap []uint64
	var events int64
	start := time.Now()
	buf := make([]stream.Event, 0, 4096)
	for m := 0; m < days*1440; m++ {
		if m >= 2*1440 && m%(4*60) == 17 { // a burst every 4 hours after two days of learning
			i := r.IntN(nSeries)
			if _, busy := planted[specs[i].ev.Name]; !busy {
				planted[specs[i].ev.Name] = m
				burstUntil[i] = m + 10
			}
		}
		at := t0.Add(time.Duration(m) * time.Minute)
		buf = buf[:0]
		for i := range specs {
			lam := specs[i].rate
			if until, ok := burstUntil[i]; ok && m < until {
				lam = lam*10 + 10
			}
			for n := poisson(r, lam); n > 0; n-- {
				e := specs[i].ev
				e.Time = at.Add(time.Duration(r.IntN(60)) * time.Second)
				buf = append(buf, e)
			}
		}
		slices.SortFunc(buf, func(a, b stream.Event) int { return a.Time.Compare(b.Time) })
		for j := range buf {
			d.Add(&buf[j])
			for _, in := range d.Advance() {
				if s, ok := planted[in.EventName]; ok && in.State == Start && in.Time.Sub(t0) >= time.Duration(s)*time.Minute {
					delays = append(delays, buf[j].Time.Sub(t0.Add(time.Duration(s)*time.Minute)).Seconds())
					delete(planted, in.EventName)
				}
			}
		}
		events += int64(len(buf))
		if m%1440 == 1439 {
			heap = append(heap, liveHeap())
		}
	}
	st := d.Stats()
	t.Logf("%d series (%d known), %d days, %d events in %v (%.0f events/s)", nSeries, st.Series, days, events,
		time.Since(start).Round(time.Millisecond), float64(events)/time.Since(start).Seconds())
	// The detector's own bytes: the live heap with it, less the live heap
	// once it is gone (this test's tables stay alive across both).
	withD := liveHeap()
	runtime.KeepAlive(d)
	d = nil
	own := float64(withD-liveHeap()) / float64(st.Series)
	runtime.KeepAlive(specs)
	runtime.KeepAlive(buf)
	runtime.KeepAlive(planted)
	runtime.KeepAlive(burstUntil)
	t.Logf("detector: %.0f bytes per series (the heap below also holds this test's tables)", own)
	if own > 2048 {
		t.Errorf("detector holds %.0f bytes per series, want ≤ 2 KiB", own)
	}
	for i, h := range heap {
		t.Logf("day %2d: heap %6.1f MiB, %5.0f bytes per series", i+1, float64(h)/(1<<20), float64(h)/float64(st.Series))
	}
	if last, day3 := heap[len(heap)-1], heap[2]; float64(last) > 1.25*float64(day3) {
		t.Errorf("heap grew from %d to %d bytes after the baselines were learned", day3, last)
	}
	slices.Sort(delays)
	if len(delays) < 5 {
		t.Fatalf("only %d planted bursts were reported", len(delays))
	}
	q := func(p float64) float64 { return delays[int(p*float64(len(delays)-1))] }
	t.Logf("planted bursts reported: %d; event-time delay start→Start: p50 %.0fs, p99 %.0fs, max %.0fs",
		len(delays), q(0.5), q(0.99), delays[len(delays)-1])
	if q(0.5) > 120 || q(0.99) > 180 {
		t.Errorf("delay p50 %.0fs, p99 %.0fs; want ≤ 120s and ≤ 180s", q(0.5), q(0.99))
	}
}

// liveHeap returns the bytes of live heap objects after a full collection.
func liveHeap() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}
