package baseline

import (
	"math"
	"testing"
	"time"
)

func minuteOf(s string) int64 {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t.Unix() / 60
}

func TestSlot(t *testing.T) {
	tests := []struct {
		at   string
		want int
		name string
	}{
		{"2026-03-02T00:00:00Z", 0, "weekday 00:00 UTC"},  // Monday
		{"2026-03-06T23:59:00Z", 23, "weekday 23:00 UTC"}, // Friday
		{"2026-03-07T00:00:00Z", 24, "weekend 00:00 UTC"}, // Saturday
		{"2026-03-08T13:30:00Z", 37, "weekend 13:00 UTC"}, // Sunday
		{"1969-12-31T23:00:00Z", 23, "weekday 23:00 UTC"}, // Wednesday, before the epoch
	}
	for _, tc := range tests {
		if got := Slot(minuteOf(tc.at)); got != tc.want {
			t.Errorf("Slot(%s) = %d, want %d", tc.at, got, tc.want)
		}
		if got := SlotName(tc.want); got != tc.name {
			t.Errorf("SlotName(%d) = %q, want %q", tc.want, got, tc.name)
		}
	}
}

// learnWeek feeds one week of hours with rate(hour-of-week) calls per minute.
func learnWeek(m *Model, start int64, rate func(h int) float64) {
	for h := 0; h < 168; h++ {
		r := rate(h)
		m.ObserveHour(start+int64(h)*60, r*60, r*r*60, false)
	}
}

func TestExpectedLearnsDailyShape(t *testing.T) {
	var m Model
	mon := minuteOf("2026-03-02T00:00:00Z")
	business := func(h int) float64 {
		day, hour := h/24, h%24
		if day < 5 && hour >= 9 && hour < 17 {
			return 10
		}
		return 1
	}
	learnWeek(&m, mon, business)
	learnWeek(&m, mon+7*1440, business)
	tests := []struct {
		at   string
		want float64
	}{
		{"2026-03-16T10:00:00Z", 10}, // Monday, business hours
		{"2026-03-16T03:00:00Z", 1},  // Monday night
		{"2026-03-21T10:00:00Z", 1},  // Saturday
	}
	for _, tc := range tests {
		if got := m.Expected(minuteOf(tc.at)); math.Abs(got-tc.want) > 0.05*tc.want {
			t.Errorf("Expected(%s) = %.3f, want %.3f", tc.at, got, tc.want)
		}
	}
}

func TestExpectedQuiet(t *testing.T) {
	mon := minuteOf("2026-03-02T00:00:00Z")
	office := func(h int) float64 { // busy weekday days, quiet nights, quieter weekends
		day, hour := h/24, h%24
		switch {
		case day >= 5:
			return 0.5
		case hour >= 9 && hour < 17:
			return 10
		}
		return 2
	}
	var m Model
	learnWeek(&m, mon, office)
	learnWeek(&m, mon+7*1440, office)
	tests := []struct {
		at   string
		want float64
	}{
		{"2026-03-17T10:00:00Z", 0.5}, // a Tuesday's day: as quiet as the weekend
		{"2026-03-17T03:00:00Z", 0.5}, // its night too
		{"2026-03-21T10:00:00Z", 0.5}, // Saturday: the weekend itself
	}
	for _, tc := range tests {
		if got := m.ExpectedQuiet(minuteOf(tc.at)); math.Abs(got-tc.want) > 0.05*tc.want {
			t.Errorf("ExpectedQuiet(%s) = %.3f, want %.3f", tc.at, got, tc.want)
		}
	}

	// A series busier at weekends keeps its weekday expectation; one whose
	// weekend is not established yet too.
	var w Model
	learnWeek(&w, mon, func(h int) float64 { return 1 + 4*float64(b(h/24 >= 5)) })
	learnWeek(&w, mon+7*1440, func(h int) float64 { return 1 + 4*float64(b(h/24 >= 5)) })
	tue := minuteOf("2026-03-17T10:00:00Z")
	if got, want := w.ExpectedQuiet(tue), w.Expected(tue); got != want || math.Abs(want-1) > 0.15 {
		t.Errorf("weekend-busy series: ExpectedQuiet on a Tuesday = %.3f, want Expected %.3f (about 1)", got, want)
	}
	var n Model
	for h := range 5 * 24 { // Monday to Friday only
		n.ObserveHour(mon+int64(h)*60, 120, 240, false)
	}
	if got, want := n.ExpectedQuiet(minuteOf("2026-03-06T10:00:00Z")), n.Expected(minuteOf("2026-03-06T10:00:00Z")); got != want {
		t.Errorf("weekend never seen: ExpectedQuiet = %.3f, want Expected %.3f", got, want)
	}
}

func b(v bool) int {
	if v {
		return 1
	}
	return 0
}

func TestBurstBarelyMovesBaseline(t *testing.T) {
	var m Model
	mon := minuteOf("2026-03-02T00:00:00Z")
	learnWeek(&m, mon, func(int) float64 { return 2 })
	at := mon + 7*1440 + 10*60
	before := m.Expected(at)
	m.ObserveHour(at, 100*60, 100*100*60, true) // an anomalous hour at 50x
	if after := m.Expected(at); after > before*1.2 {
		t.Errorf("one anomalous hour moved the expectation from %.2f to %.2f", before, after)
	}
}

func TestSlowGrowthAbsorbed(t *testing.T) {
	var m Model
	mon := minuteOf("2026-03-02T00:00:00Z")
	for w := 0; w < 4; w++ {
		r := 5 * math.Pow(1.3, float64(w)) // +30% a week
		learnWeek(&m, mon+int64(w)*7*1440, func(int) float64 { return r })
	}
	// The expectation follows growth (the slots' weighted mean of past
	// weeks, scaled by the recent level) within far less than the 3x a
	// burst needs.
	got := m.Expected(mon + 28*1440 + 600)
	if now := 5 * math.Pow(1.3, 3); got < 0.75*now || got > 1.3*now {
		t.Errorf("after 4 weeks of 30%% growth Expected = %.2f, want between %.2f and %.2f", got, 0.75*now, 1.3*now)
	}
}

func TestPeriodic(t *testing.T) {
	tests := []struct {
		name     string
		minutes  []int64
		periodic bool
		period   float64
	}{
		{"hourly job", seq(0, 60, 30), true, 60},
		{"15-min job with two calls per run", interleave(seq(0, 15, 40), seq(1, 15, 40)), true, 14},
		{"too few runs", seq(0, 60, 4), false, 0},
		{"irregular", []int64{0, 7, 90, 95, 300, 310, 800, 805, 1500, 2000}, false, 0},
	}
	for _, tc := range tests {
		var m Model
		for _, t := range tc.minutes {
			m.ObserveActive(1_000_000+t, true)
		}
		p, _, ok := m.Periodic()
		if ok != tc.periodic || math.Abs(p-tc.period) > 0.5 {
			t.Errorf("%s: Periodic() = %.1f, %v; want %.1f, %v", tc.name, p, ok, tc.period, tc.periodic)
		}
	}
}

func TestObserveActiveWithoutLearning(t *testing.T) {
	var m Model
	for _, t := range seq(0, 60, 10) {
		m.ObserveActive(t+1, true)
	}
	m.ObserveActive(10*60+600, false) // the silence before was reported as a gap
	if _, longest, ok := m.Periodic(); !ok || longest != 60 {
		t.Errorf("a reported gap was learned: longest %v, periodic %v", longest, ok)
	}
}

func seq(start, step int64, n int) []int64 {
	out := make([]int64, n)
	for i := range out {
		out[i] = start + int64(i)*step
	}
	return out
}

func interleave(a, b []int64) []int64 {
	var out []int64
	for i := range a {
		out = append(out, a[i], b[i])
	}
	return out
}

// TestObserveNoiseLearnsOnlyKnownSlots: an hour of a slot never observed is
// judged against a stand-in expectation and must not teach κ; the same
// hour a day later, its slot known, does.
func TestObserveNoiseLearnsOnlyKnownSlots(t *testing.T) {
	var m Model
	mon := minuteOf("2026-03-02T00:00:00Z")
	// Night hours at 1 call a minute: 00:00–08:00 known.
	for h := range 8 {
		m.ObserveHour(mon+int64(h)*60, 60, 60, false)
	}
	// 09:00 has never been seen; five-minute sums swing between 0 and 60.
	nine := mon + 9*60
	sumSq5 := 6 * 60.0 * 60 // six sums of 60, six of 0
	tests := []struct {
		name  string
		start int64
		learn bool
	}{
		{"unseen slot", nine, false},
		{"seen slot", nine + 1440, true},
	}
	for _, tc := range tests {
		before := m.NoiseN
		m.ObserveNoise(tc.start, 360, sumSq5, false)
		if learned := m.NoiseN > before; learned != tc.learn {
			t.Errorf("%s: κ learned = %v, want %v", tc.name, learned, tc.learn)
		}
		m.ObserveHour(tc.start, 360, 6*60*60, false)
	}
	if k := m.NoiseVar(); k <= noisePrior {
		t.Errorf("κ = %.3f after a wandering hour of a known slot, want above the prior %.2f", k, noisePrior)
	}
}
