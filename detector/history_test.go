package detector

import (
	"math"
	"testing"
	"time"

	"github.com/trailsight/trailsight/baseline"
)

// TestHistory feeds synthetic anomalies and checks what History gives right
// after each End: points line up with the counts fed, expectations are the
// model's, and the insight's span holds the anomaly.
func TestHistory(t *testing.T) {
	tests := []struct {
		name     string
		days     int
		traffic  traffic
		kind     string
		from, to int // the planted anomaly, minute indexes; the span must be within ±slack of it
		slack    int
	}{
		{
			name: "burst", days: 4, kind: "burst", from: minute(3, 10, 0), to: minute(3, 10, 30), slack: 6,
			traffic: traffic{name: "RunInstances", rate: func(i int) float64 {
				if i >= minute(3, 10, 0) && i < minute(3, 10, 30) {
					return 12
				}
				return 2
			}},
		},
		{
			// A steady flow silent for 40 minutes: the gap is declared 10
			// minutes in, and ends with the first call back.
			name: "gap", days: 4, kind: "gap", from: minute(3, 10, 10), to: minute(3, 10, 40), slack: 3,
			traffic: traffic{name: "PutRecord", fixed: func(i int) int {
				if i >= minute(3, 10, 0) && i < minute(3, 10, 40) {
					return 0
				}
				return 3
			}},
		},
		{
			name: "drop", days: 5, kind: "drop", from: minute(4, 10, 0), to: minute(4, 14, 0), slack: 20,
			traffic: dropTraffic(),
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			evs := synth(tc.days, 7, tc.traffic)
			k := baseline.Key{Account: "111122223333", Region: "us-east-1", Source: "ec2.amazonaws.com", Name: tc.traffic.name, Measure: baseline.Calls}
			fed := map[int64]float64{} // minute → events
			for _, ev := range evs {
				fed[floorDiv(ev.Time.Unix(), 60)]++
			}
			d, err := New(DefaultConfig())
			if err != nil {
				t.Fatal(err)
			}
			var end *Insight
			var h SeriesHistory
			var mdl baseline.Model // the model when History was called
			check := func(ins []Insight) {
				for i := range ins {
					if ins[i].State == End && end == nil {
						end = &ins[i]
						var ok bool
						if h, ok = d.History(ins[i].Key()); !ok {
							t.Fatalf("History(%v): not found", ins[i].Key())
						}
						mdl = d.series[d.ids[k]].model
					}
				}
			}
			for i := range evs {
				d.Add(&evs[i])
				if i%500 == 0 {
					check(d.Advance())
				}
			}
			check(d.Advance())
			check(d.Flush())
			if end == nil {
				t.Fatal("no End")
			}
			if end.Explanation.Kind != tc.kind {
				t.Fatalf("kind %s, want %s", end.Explanation.Kind, tc.kind)
			}
			if h.Key != k || end.Key() != k {
				t.Errorf("History key %v, insight key %v, want %v", h.Key, end.Key(), k)
			}
			endMin := end.Time.Unix() / 60
			startMin := endMin - int64(end.Stats.InsightDuration)
			if got := int(startMin - t0.Unix()/60); math.Abs(float64(got-tc.from)) > float64(tc.slack) {
				t.Errorf("span starts at minute %d, want %d ±%d", got, tc.from, tc.slack)
			}
			if got := int(endMin - t0.Unix()/60); math.Abs(float64(got-tc.to)) > float64(tc.slack) {
				t.Errorf("span ends at minute %d, want %d ±%d", got, tc.to, tc.slack)
			}
			closed := h.Closed.Unix() / 60
			if closed < endMin {
				t.Errorf("History closed at %v, before the End %v", h.Closed, end.Time)
			}
			// Minutes: consecutive up to the newest closed one, about 2 hours
			// (the ring's 128 minutes less those still open), the counts fed,
			// the model's expectations.
			if n := len(h.Minutes); n < 100 || n > ringReach || h.Minutes[n-1].Time.Unix()/60 != closed-1 {
				t.Errorf("%d minute points ending %v, want 100 to %d ending at %v", n, h.Minutes[n-1].Time, ringReach, h.Closed)
			}
			for i, p := range h.Minutes {
				m := p.Time.Unix() / 60
				if i > 0 && m != h.Minutes[i-1].Time.Unix()/60+1 || p.Minutes != 1 {
					t.Fatalf("minute point %d at %v (%d minutes): not consecutive", i, p.Time, p.Minutes)
				}
				if p.Observed != fed[m] {
					t.Errorf("minute %v: observed %v, fed %v", p.Time, p.Observed, fed[m])
				}
				if want := mdl.Expected(m); !near(p.Expected, want) {
					t.Errorf("minute %v: expected %v, Model.Expected %v", p.Time, p.Expected, want)
				}
				if want := mdl.ExpectedQuiet(m); !near(p.Quiet, want) {
					t.Errorf("minute %v: quiet %v, Model.ExpectedQuiet %v", p.Time, p.Quiet, want)
				}
				if !(p.Low <= p.Expected && p.Expected <= p.High) {
					t.Errorf("minute %v: band %v–%v misses expected %v", p.Time, p.Low, p.High, p.Expected)
				}
			}
			// Hours: the whole run (under a week), the last one partial.
			if first := h.Hours[0].Time; first.Before(t0) || first.After(t0.Add(time.Hour)) {
				t.Errorf("first hour %v, want the run's first whole hour", first)
			}
			var spanObs, spanExp, spanQuiet float64
			for i, p := range h.Hours {
				m := p.Time.Unix() / 60
				if i > 0 && m != h.Hours[i-1].Time.Unix()/60+60 {
					t.Fatalf("hour point %d at %v: not consecutive", i, p.Time)
				}
				if p.Minutes != 60 && (i != len(h.Hours)-1 || m+int64(p.Minutes) != closed) {
					t.Errorf("hour %v covers %d minutes", p.Time, p.Minutes)
				}
				var obs, exp, quiet float64
				for x := m; x < m+int64(p.Minutes); x++ {
					obs += fed[x]
					exp += mdl.Expected(x)
					quiet += mdl.ExpectedQuiet(x)
				}
				if p.Observed != obs || !near(p.Expected, exp) || !near(p.Quiet, quiet) {
					t.Errorf("hour %v: observed %v expected %v quiet %v, want %v %v %v", p.Time, p.Observed, p.Expected, p.Quiet, obs, exp, quiet)
				}
				if m >= startMin && m+60 <= endMin {
					spanObs, spanExp, spanQuiet = spanObs+obs, spanExp+exp, spanQuiet+quiet
				}
			}
			// The span holds the anomaly (whole hours of it for a drop, its
			// minutes otherwise).
			if tc.kind != "drop" {
				spanObs, spanExp = 0, 0
				for _, p := range h.Minutes {
					if m := p.Time.Unix() / 60; m >= startMin && m < endMin {
						spanObs, spanExp = spanObs+p.Observed, spanExp+p.Expected
					}
				}
			}
			switch tc.kind {
			case "burst":
				if spanObs < 2.5*spanExp {
					t.Errorf("burst span: %v observed, %v expected", spanObs, spanExp)
				}
			case "gap":
				if spanObs != 0 || spanExp < 10 {
					t.Errorf("gap span: %v observed, %v expected", spanObs, spanExp)
				}
			case "drop":
				if spanQuiet == 0 || spanObs*2 > spanQuiet {
					t.Errorf("drop span's whole hours: %v observed, %v expected on the quietest day", spanObs, spanQuiet)
				}
			}
		})
	}
}

func near(a, b float64) bool { return math.Abs(a-b) <= 1e-9*math.Max(1, math.Abs(b)) }

func TestHistoryUnknown(t *testing.T) {
	d, err := New(DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := d.History(baseline.Key{Name: "RunInstances"}); ok {
		t.Error("History of an unknown series: ok")
	}
}
