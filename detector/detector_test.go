package detector

import (
	"bytes"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/trailsight/trailsight/baseline"
	"github.com/trailsight/trailsight/stream"
)

var t0 = time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC) // a Monday

// traffic describes one synthetic series: rate(minute index) calls per minute.
type traffic struct {
	name  string
	err   string // errorCode, "" for successful write calls
	rate  func(i int) float64
	fixed func(i int) int // exact count instead of Poisson, when set
}

// synth makes the events of days of traffic, in minute order, with
// Poisson counts drawn from a fixed seed.
func synth(days int, seed uint64, ts ...traffic) []stream.Event {
	r := rand.New(rand.NewPCG(seed, 1))
	var out []stream.Event
	for i := 0; i < days*1440; i++ {
		at := t0.Add(time.Duration(i) * time.Minute)
		for _, tr := range ts {
			var n int
			if tr.fixed != nil {
				n = tr.fixed(i)
			} else {
				n = poisson(r, tr.rate(i))
			}
			for j := 0; j < n; j++ {
				out = append(out, stream.Event{
					Time: at.Add(time.Duration(r.IntN(60)) * time.Second), Account: "111122223333", Region: "us-east-1",
					Source: "ec2.amazonaws.com", Name: tr.name, ErrorCode: tr.err, Type: "AwsApiCall",
					ID: fmt.Sprintf("%s-%d-%d", tr.name, i, j), UserArn: "arn:aws:iam::111122223333:user/ops",
					UserAgent: "aws-cli/2.15.0", Category: stream.Management, ReadOnly: strings.HasPrefix(tr.name, "Describe"),
				})
			}
		}
	}
	return out
}

func poisson(r *rand.Rand, l float64) int {
	if l <= 0 {
		return 0
	}
	if l > 50 {
		return max(0, int(math.Round(l+math.Sqrt(l)*r.NormFloat64())))
	}
	L, k, p := math.Exp(-l), 0, 1.0
	for {
		p *= r.Float64()
		if p <= L {
			return k
		}
		k++
	}
}

// run feeds events, advancing every chunk events, and returns all insights.
func run(t *testing.T, evs []stream.Event, chunk int) []Insight {
	t.Helper()
	d, err := New(DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	var out []Insight
	for i := range evs {
		d.Add(&evs[i])
		if (i+1)%chunk == 0 {
			out = append(out, d.Advance()...)
		}
	}
	out = append(out, d.Advance()...)
	out = append(out, d.Flush()...)
	return out
}

func minute(day, hour, min int) int { return day*1440 + hour*60 + min }

// dropTraffic is a steady flow of 20 calls a minute that slows to 3 on
// day 4 (a Friday) from 10:00 to 14:00: never silent for long, so no gap.
func dropTraffic() traffic {
	return traffic{name: "PutRecords", rate: func(i int) float64 {
		if i >= minute(4, 10, 0) && i < minute(4, 14, 0) {
			return 3
		}
		return 20
	}}
}

func TestScenarios(t *testing.T) {
	steady := func(i int) float64 { return 2 }
	tests := []struct {
		name      string
		days      int
		traffic   []traffic
		wantKinds []string // explanation kinds of the Starts, in order
		wantStart []int    // start minute index of each, ±window tolerance
	}{
		{
			name: "quiet traffic raises nothing", days: 5,
			traffic: []traffic{{name: "RunInstances", rate: steady}, {name: "CreateTags", rate: func(int) float64 { return 0.01 }}},
		},
		{
			// Thursdays 13:00-16:00 at 4x: reported the first week (nothing
			// to go by), recognised from then on.
			name: "weekly peak", days: 15,
			traffic: []traffic{{name: "StartQueryExecution", rate: func(i int) float64 {
				if d := i / 1440; d%7 == 3 && i%1440 >= 13*60 && i%1440 < 16*60 {
					return 8
				}
				return 2
			}}},
			wantKinds: []string{"burst"}, wantStart: []int{minute(3, 13, 0)},
		},
		{
			name: "burst on a busy API", days: 4,
			traffic: []traffic{{name: "RunInstances", rate: func(i int) float64 {
				if i >= minute(3, 10, 0) && i < minute(3, 10, 30) {
					return 12
				}
				return 2
			}}},
			wantKinds: []string{"burst"}, wantStart: []int{minute(3, 10, 0)},
		},
		{
			name: "rare API called many times in one minute", days: 4,
			traffic: []traffic{{name: "DeleteTrail", fixed: func(i int) int {
				if i == minute(3, 4, 7) {
					return 6
				}
				if i%1440 == 600 {
					return 1
				}
				return 0
			}}},
			wantKinds: []string{"burst"}, wantStart: []int{minute(3, 4, 7)},
		},
		{
			name: "hourly job stops", days: 4,
			traffic: []traffic{{name: "CreateSnapshot", fixed: func(i int) int {
				if i%60 == 5 && i < minute(3, 12, 0) {
					return 1
				}
				return 0
			}}, {name: "DescribeVolumes", rate: steady}}, // read-only traffic moves the watermark
			wantKinds: []string{"gap"}, wantStart: []int{minute(3, 11, 5) + 120},
		},
		{
			// An office flow (the generator's: busy on weekday days, a call
			// an hour or so on weekday nights, every two hours at weekends).
			// Day 15, a Tuesday, is a public holiday: nothing from 18:00 the
			// day before until 16:00, 22 hours. Judged by weekdays the
			// silence is impossible; judged by the weekend, a quiet day off.
			name: "holiday as quiet as a Sunday is not a gap", days: 17,
			traffic: []traffic{{name: "UpdateFunctionCode", rate: func(i int) float64 {
				day, h := i/1440, i%1440/60
				switch {
				case day == 14 && h >= 18, day == 15 && h < 16:
					return 0
				case day%7 >= 5 || day == 15:
					return 0.0086
				case h >= 9 && h < 17:
					return 0.15
				}
				return 0.017
			}}, {name: "DescribeVolumes", rate: steady}},
		},
		{
			name: "busy flow slows far below its quietest day", days: 5,
			traffic: []traffic{dropTraffic()}, wantKinds: []string{"drop"}, wantStart: []int{minute(4, 10, 0)},
		},
		{
			// Silent at first, then a call every few minutes for four
			// hours: one insight, not a gap at each long silence.
			name: "steady flow slows to a trickle", days: 5,
			traffic: []traffic{{name: "PutRecord", rate: func(i int) float64 {
				if i >= minute(4, 10, 0) && i < minute(4, 14, 0) {
					return 0.2
				}
				return 3
			}}},
			wantKinds: []string{"gap"}, wantStart: []int{minute(4, 10, 20)}, // at its first long silence
		},
		{
			name: "steady flow stops on a weekday", days: 12,
			traffic: []traffic{{name: "PutRecord", rate: func(i int) float64 {
				if i >= minute(10, 10, 0) && i < minute(10, 14, 0) {
					return 0
				}
				return 1
			}}},
			wantKinds: []string{"gap"}, wantStart: []int{minute(10, 10, 0) + 10},
		},
		{
			name: "throttling storm", days: 4,
			traffic: []traffic{
				{name: "DescribeInstances", err: "RequestLimitExceeded", rate: func(i int) float64 {
					if i >= minute(3, 9, 0) && i < minute(3, 9, 20) {
						return 8
					}
					return 0.02
				}},
			},
			wantKinds: []string{"limit"}, wantStart: []int{minute(3, 9, 0)},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			evs := synth(tc.days, 7, tc.traffic...)
			got := run(t, evs, 500)
			var kinds []string
			var starts []int
			for _, in := range got {
				if in.State == Start {
					kinds = append(kinds, in.Explanation.Kind)
					starts = append(starts, int(in.Time.Sub(t0)/time.Minute))
				}
			}
			if !slices.Equal(kinds, tc.wantKinds) {
				t.Fatalf("start kinds = %v at %v, want %v at %v", kinds, starts, tc.wantKinds, tc.wantStart)
			}
			for i := range starts {
				if d := starts[i] - tc.wantStart[i]; d < -2 || d > 15 {
					t.Errorf("start %d at minute %d, want %d (+15)", i, starts[i], tc.wantStart[i])
				}
			}
			checkPairs(t, got)
		})
	}
}

// checkPairs asserts that every Start has exactly one End after it, sharing its sharedEventID.
func checkPairs(t *testing.T, ins []Insight) {
	t.Helper()
	starts := map[string]Insight{}
	ends := map[string]int{}
	for _, in := range ins {
		switch in.State {
		case Start:
			if _, dup := starts[in.SharedEventID]; dup {
				t.Errorf("two Starts share %s", in.SharedEventID)
			}
			starts[in.SharedEventID] = in
		case End:
			ends[in.SharedEventID]++
			s, ok := starts[in.SharedEventID]
			if !ok {
				t.Errorf("End %s without Start", in.SharedEventID)
				continue
			}
			if !in.Time.After(s.Time) {
				t.Errorf("End %v not after Start %v", in.Time, s.Time)
			}
			if want := int(in.Time.Sub(s.Time) / time.Minute); in.Stats.InsightDuration != want {
				t.Errorf("End insightDuration = %d, want %d", in.Stats.InsightDuration, want)
			}
			if in.EventID == s.EventID {
				t.Errorf("Start and End share eventID %s", in.EventID)
			}
		}
	}
	for id := range starts {
		if ends[id] != 1 {
			t.Errorf("Start %s has %d Ends", id, ends[id])
		}
	}
}

// TestChunkingInvariance: streaming (advance after every event) and backfill
// (advance rarely) give the same insights, IDs included.
func TestChunkingInvariance(t *testing.T) {
	evs := synth(4, 11, traffic{name: "RunInstances", rate: func(i int) float64 {
		if i >= minute(3, 10, 0) && i < minute(3, 10, 20) {
			return 15
		}
		return 1
	}}, traffic{name: "CreateSnapshot", fixed: func(i int) int {
		if i%60 == 5 && i < minute(3, 1, 0) {
			return 1
		}
		return 0
	}})
	a := run(t, evs, 1)
	b := run(t, evs, 100000)
	if len(a) == 0 {
		t.Fatal("no insights")
	}
	if len(a) != len(b) {
		t.Fatalf("%d insights streaming, %d backfill", len(a), len(b))
	}
	for i := range a {
		if a[i].EventID != b[i].EventID || a[i].Stats != b[i].Stats {
			t.Errorf("insight %d differs:\n%+v\n%+v", i, a[i], b[i])
		}
	}
}

func TestStatistics(t *testing.T) {
	// 2 calls a minute for 8 days, then 20 a minute for exactly 10 minutes.
	evs := synth(9, 3, traffic{name: "RunInstances", fixed: func(i int) int {
		if i >= minute(8, 12, 0) && i < minute(8, 12, 10) {
			return 20
		}
		return 2
	}})
	got := run(t, evs, 1000)
	if len(got) != 2 {
		t.Fatalf("got %d insights, want a Start and an End: %+v", len(got), got)
	}
	s, e := got[0], got[1]
	if want := t0.Add(time.Duration(minute(8, 12, 0)) * time.Minute); !s.Time.Equal(want) {
		t.Errorf("Start at %v, want %v", s.Time, want)
	}
	// Declared early, on the event that crossed the threshold: the Start
	// counts the first minute so far; the End has the whole of it.
	if a := s.Stats.InsightAverage; a < 5 || a > 20 {
		t.Errorf("Start insight.average = %v, want the minute's count so far (5 to 20)", a)
	}
	if math.Abs(s.Stats.BaselineAverage-2) > 1e-9 || s.Stats.BaselineDuration != 10080 {
		t.Errorf("baseline = %v over %d min, want 2 over 10080", s.Stats.BaselineAverage, s.Stats.BaselineDuration)
	}
	if e.Stats.InsightDuration != 10 || e.Stats.InsightAverage != 20 {
		t.Errorf("End duration %d avg %v, want 10 and 20", e.Stats.InsightDuration, e.Stats.InsightAverage)
	}
	if a := e.Attributions; len(a) != 3 || a[0].Insight[0].Average != 20 || a[2].Insight[0].Value != "null" {
		t.Errorf("End attributions = %+v", a)
	}
	if b := e.Attributions[0].Baseline; len(b) != 1 || math.Abs(b[0].Average-2) > 0.05 {
		t.Errorf("baseline attribution = %+v, want ops at ~2/min", b)
	}
}

func TestLateEventsDropped(t *testing.T) {
	d, _ := New(DefaultConfig())
	ev := stream.Event{Time: t0.Add(2 * time.Hour), Account: "1", Region: "r", Source: "s", Name: "n", Category: stream.Management}
	d.Add(&ev)
	d.Advance()
	old := ev
	old.Time = t0
	d.Add(&old)
	if st := d.Stats(); st.Late != 1 || st.Events != 2 {
		t.Errorf("stats = %+v, want 1 late of 2", st)
	}
}

func TestConfigValidate(t *testing.T) {
	c := DefaultConfig()
	c.Windows = []int{0, 90}
	c.Calm = 0
	err := c.Validate()
	if err == nil {
		t.Fatal("want errors")
	}
	for _, want := range []string{"windows: 0", "windows: 90", "calm 0"} {
		if !contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }

func BenchmarkDetector(b *testing.B) {
	evs := synth(2, 5, traffic{name: "RunInstances", rate: func(int) float64 { return 20 }},
		traffic{name: "CreateTags", rate: func(int) float64 { return 30 }})
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		d, _ := New(DefaultConfig())
		for j := range evs {
			d.Add(&evs[j])
			if j%1000 == 0 {
				d.Advance()
			}
		}
		d.Flush()
	}
	b.ReportMetric(float64(len(evs)*b.N)/b.Elapsed().Seconds(), "events/s")
}

// TestWarmStart: a detector started from a saved snapshot of the first 8
// days raises on day 9 what one that saw all 9 days raises, while a cold
// detector on day 9 alone is still warming up.
func TestWarmStart(t *testing.T) {
	evs := synth(9, 21, traffic{name: "RunInstances", rate: func(i int) float64 {
		if i >= minute(8, 9, 0) && i < minute(8, 9, 20) {
			return 15
		}
		return 1
	}}, traffic{name: "CreateSnapshot", fixed: func(i int) int {
		if i%60 == 5 && i < minute(8, 14, 0) {
			return 1
		}
		return 0
	}})
	split := slices.IndexFunc(evs, func(e stream.Event) bool { return !e.Time.Before(t0.Add(8 * 24 * time.Hour)) })
	starts := func(ins []Insight) []string {
		var out []string
		for _, in := range ins {
			if in.State == Start {
				out = append(out, in.Time.Format(time.RFC3339)+" "+in.EventName+" "+in.Explanation.Kind)
			}
		}
		return out
	}
	full := starts(run(t, evs, 1000))

	learn, _ := New(DefaultConfig())
	for i := range evs[:split] {
		learn.Add(&evs[i])
	}
	meta, entries := learn.Snapshot()
	var buf bytes.Buffer
	if err := baseline.Save(&buf, meta, entries); err != nil {
		t.Fatal(err)
	}
	meta, entries, err := baseline.Load(&buf)
	if err != nil {
		t.Fatal(err)
	}
	warm, _ := New(DefaultConfig())
	if err := warm.LoadModels(meta, entries); err != nil {
		t.Fatal(err)
	}
	var got []Insight
	for i := range evs[split:] {
		warm.Add(&evs[split+i])
	}
	got = append(got, warm.Advance()...)
	got = append(got, warm.Flush()...)
	var fullDay9 []string
	for _, s := range full {
		if s >= "2026-03-10" {
			fullDay9 = append(fullDay9, s)
		}
	}
	if len(fullDay9) == 0 {
		t.Fatal("the full run raised nothing on day 9")
	}
	if w := starts(got); !slices.Equal(w, fullDay9) {
		t.Errorf("warm start raised %v, the full run %v", w, fullDay9)
	}
	if cold := starts(run(t, evs[split:], 1000)); len(cold) != 0 {
		t.Errorf("a cold detector on day 9 alone raised %v during its warm-up", cold)
	}
}

// TestEarlyLatency: fed as a stream, a burst's Start is out within two
// minutes of event time after the first unusual minute began, not after
// the 15 minutes of allowed lateness.
func TestEarlyLatency(t *testing.T) {
	var delays []time.Duration
	for i, at := range []int{minute(3, 10, 0), minute(3, 14, 37), minute(3, 22, 5)} {
		evs := synth(4, uint64(40+i), traffic{name: "RunInstances", rate: func(m int) float64 {
			if m >= at && m < at+10 {
				return 12
			}
			return 1
		}})
		d, _ := New(DefaultConfig())
		for j := range evs {
			d.Add(&evs[j])
			for _, in := range d.Advance() {
				if in.State == Start {
					delays = append(delays, evs[j].Time.Sub(in.Time))
				}
			}
		}
	}
	if len(delays) != 3 {
		t.Fatalf("%d Starts, want 3", len(delays))
	}
	for _, dl := range delays {
		if dl < 0 || dl > 2*time.Minute {
			t.Errorf("Start emitted %v of event time after its first unusual minute began, want ≤ 2m", dl)
		}
	}
	t.Logf("event-time delays from the start of the first unusual minute to the Start: %v", delays)
}

// TestDrop: a busy flow that slows to a seventh of its rate for four hours
// is one insight below its baseline, from the hour the drop began to its
// end, explained.
func TestDrop(t *testing.T) {
	got := run(t, synth(5, 7, dropTraffic()), 500)
	checkPairs(t, got)
	if len(got) != 2 {
		t.Fatalf("got %d insight events, want one Start and one End: %+v", len(got), got)
	}
	st, en := got[0], got[1]
	if want := t0.Add(time.Duration(minute(4, 10, 0)) * time.Minute); !st.Time.Equal(want) {
		t.Errorf("Start at %v, want %v", st.Time, want)
	}
	if lo, hi := t0.Add(time.Duration(minute(4, 14, 0))*time.Minute), t0.Add(time.Duration(minute(4, 14, 20))*time.Minute); en.Time.Before(lo) || en.Time.After(hi) {
		t.Errorf("End at %v, want between %v and %v", en.Time, lo, hi)
	}
	e := st.Explanation
	if e == nil || e.Kind != "drop" || e.Direction != "below" || e.Observed*dropRatio > e.Expected || e.Score < DefaultConfig().Threshold {
		t.Fatalf("explanation %+v, want a drop below, observed under half the expectation, past the threshold", e)
	}
	if en.Stats.InsightAverage > 4 || en.Stats.InsightAverage < 2 || en.Stats.BaselineAverage < 15 {
		t.Errorf("End statistics %+v: want an insight average near 3 against a baseline near 20", en.Stats)
	}
}

// TestTrickle: a flow that falls silent, then comes back as a trickle, is
// one insight that lasts until the rate is back, and its End says how few
// calls came.
func TestTrickle(t *testing.T) {
	got := run(t, synth(5, 7, traffic{name: "PutRecord", rate: func(i int) float64 {
		if i >= minute(4, 10, 0) && i < minute(4, 14, 0) {
			return 0.2
		}
		return 3
	}}), 500)
	checkPairs(t, got)
	if len(got) != 2 {
		t.Fatalf("got %d insight events, want one Start and one End", len(got))
	}
	en := got[1]
	if lo, hi := t0.Add(time.Duration(minute(4, 14, 0))*time.Minute), t0.Add(time.Duration(minute(4, 14, 20))*time.Minute); en.Time.Before(lo) || en.Time.After(hi) {
		t.Errorf("End at %v, want between %v and %v", en.Time, lo, hi)
	}
	if a := en.Stats.InsightAverage; a < 0.1 || a > 0.4 {
		t.Errorf("End insight average %v calls/min, want about 0.2", a)
	}
}

// TestFalseAlarmBudget: on normal traffic (Poisson, flat, rates from one
// call a day to two a minute) the default threshold stays within its budget
// of one false insight per 1,000 series-days, and a budget 1,000 times
// larger raises more, as the knob promises.
func TestFalseAlarmBudget(t *testing.T) {
	const nSeries, days = 200, 7
	r := rand.New(rand.NewPCG(11, 3))
	rates := make([]float64, nSeries)
	names := make([]string, nSeries)
	for i := range rates {
		rates[i] = math.Pow(10, -3+4.3*r.Float64()) // 0.001 to 2 calls a minute
		names[i] = fmt.Sprintf("Put%03d", i)
	}
	budgets := []float64{1, 1000}
	dets := make([]*Detector, len(budgets))
	for i, b := range budgets {
		cfg := DefaultConfig()
		cfg.Threshold = ThresholdForBudget(b)
		var err error
		if dets[i], err = New(cfg); err != nil {
			t.Fatal(err)
		}
	}
	ev := stream.Event{Account: "111122223333", Region: "us-east-1", Source: "ec2.amazonaws.com", Type: "AwsApiCall",
		UserArn: "arn:aws:iam::111122223333:user/ops", UserAgent: "aws-cli/2.15.0", Category: stream.Management}
	for m := range days * 1440 {
		at := t0.Add(time.Duration(m) * time.Minute)
		for i, rate := range rates {
			for range poisson(r, rate) {
				ev.Name, ev.Time = names[i], at.Add(time.Duration(r.IntN(60))*time.Second)
				for _, d := range dets {
					d.Add(&ev)
				}
			}
		}
	}
	for i, d := range dets {
		d.Flush()
		starts := 0
		for _, n := range d.Stats().Starts {
			starts += n
		}
		perK := float64(starts) / (nSeries * (days - 1)) * 1000 // the first day is warm-up
		t.Logf("budget %g (threshold %.2f): %d false insights, %.2f per 1,000 series-days", budgets[i], d.cfg.Threshold, starts, perK)
		switch {
		case budgets[i] == 1 && starts > 3: // 1,200 series-days: about 1.2 allowed, and randomness
			t.Errorf("budget 1: %d false insights in %d series-days", starts, nSeries*(days-1))
		case budgets[i] == 1000 && starts < 5:
			t.Errorf("budget 1000: only %d false insights: the budget does not move the threshold", starts)
		}
	}
}
