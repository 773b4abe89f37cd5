package datasets

import (
	"bytes"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	ctstream "github.com/trailsight/trailsight/stream"
)

// The -update flag rewrites testdata/nab_*.golden. Other tests of the package
// may define it too; whoever comes first registers it.
func init() {
	if flag.Lookup("update") == nil {
		flag.Bool("update", false, "rewrite testdata/*.golden")
	}
}

func nabUpdate() bool {
	f := flag.Lookup("update")
	if f == nil {
		return false
	}
	g, ok := f.Value.(flag.Getter)
	if !ok {
		return false
	}
	b, _ := g.Get().(bool)
	return b
}

var nabT0 = time.Date(2015, 2, 26, 21, 42, 53, 0, time.UTC)

// nabSynth returns a series of n rows, one every step from nabT0, valued 10,
// with windows over the given rows [l, r].
func nabSynth(n int, step time.Duration, windows ...[2]int) NABSeries {
	s := NABSeries{File: "synth/test_series.csv"}
	for i := range n {
		s.Times = append(s.Times, nabT0.Add(time.Duration(i)*step))
		s.Values = append(s.Values, 10)
	}
	for _, w := range windows {
		s.Windows = append(s.Windows, [2]time.Time{s.Times[w[0]], s.Times[w[1]]})
	}
	return s
}

func nabRows(n int, rows ...int) []bool {
	d := make([]bool, n)
	for _, r := range rows {
		d[r] = true
	}
	return d
}

func TestNABScaledSigmoid(t *testing.T) {
	// Values from the docstring of NAB's scaledSigmoid.
	for _, tc := range []struct{ x, want float64 }{
		{-1, 0.98661}, {-0.5, 0.84828}, {0, 0}, {1, -0.98661}, {2.999, -1}, {3, -1}, {100, -1}, {-100, 1},
	} {
		if got := nabScaledSigmoid(tc.x); math.Abs(got-tc.want) > 1e-5 {
			t.Errorf("nabScaledSigmoid(%v) = %.6f, want %.5f", tc.x, got, tc.want)
		}
	}
}

func TestNABProbation(t *testing.T) {
	for _, tc := range []struct{ n, want int }{
		{0, 0}, {6, 0}, {7, 1}, {20, 3}, {100, 15}, {4032, 604}, {5000, 750}, {10320, 750}, {15902, 750},
	} {
		if got := nabProbation(tc.n); got != tc.want {
			t.Errorf("nabProbation(%d) = %d, want %d", tc.n, got, tc.want)
		}
	}
}

func TestNABScoreFile(t *testing.T) {
	std := NABProfile{Name: "standard", TP: 1, FP: 0.11, FN: 1, TN: 1}
	lowFN := NABProfile{Name: "reward_low_FN_rate", TP: 1, FP: 0.11, FN: 2, TN: 1}
	σ := nabScaledSigmoid
	maxTP := σ(-1)
	// 100 rows, probation 15, windows over rows 40–49 and 70–79.
	two := nabSynth(100, 5*time.Minute, [2]int{40, 49}, [2]int{70, 79})
	for _, tc := range []struct {
		name  string
		s     NABSeries
		flags []int
		p     NABProfile
		want  NABFileScore // File and Probation filled in below
	}{
		{"nothing", two, nil, std, NABFileScore{Score: -2, Null: -2, Perfect: 2, TN: 65, FN: 20, Windows: 2}},
		{"nothing, low FN", two, nil, lowFN, NABFileScore{Score: -4, Null: -4, Perfect: 2, TN: 65, FN: 20, Windows: 2}},
		{"first row of each window", two, []int{40, 70}, std, NABFileScore{Score: 2, Null: -2, Perfect: 2, TP: 2, TN: 65, FN: 18, Windows: 2}},
		{"last row of a window", two, []int{49}, std,
			NABFileScore{Score: σ(-0.1)/maxTP - 1, Null: -2, Perfect: 2, TP: 1, TN: 65, FN: 19, Windows: 2}},
		{"earliest flag counts", two, []int{45, 42, 47}, std,
			NABFileScore{Score: σ(-0.8)/maxTP - 1, Null: -2, Perfect: 2, TP: 3, TN: 65, FN: 17, Windows: 2}},
		{"flags in probation ignored", two, []int{0, 5, 14}, std, NABFileScore{Score: -2, Null: -2, Perfect: 2, TN: 65, FN: 20, Windows: 2}},
		{"FP before any window", two, []int{15, 39}, std,
			NABFileScore{Score: -2 - 0.22, Null: -2, Perfect: 2, FP: 2, TN: 63, FN: 20, Windows: 2}},
		{"FP right after a window", two, []int{50}, std,
			NABFileScore{Score: -2 + 0.11*σ(1.0/9), Null: -2, Perfect: 2, FP: 1, TN: 64, FN: 20, Windows: 2}},
		{"FP later after a window", two, []int{60, 69, 99}, std,
			NABFileScore{Score: -2 + 0.11*(σ(11.0/9)+σ(20.0/9)+σ(20.0/9)), Null: -2, Perfect: 2, FP: 3, TN: 62, FN: 20, Windows: 2}},
		{"FP far after a window", two, []int{69}, NABProfile{TP: 1, FP: 0.22, FN: 1},
			NABFileScore{Score: -2 + 0.22*σ(20.0/9), Null: -2, Perfect: 2, FP: 1, TN: 64, FN: 20, Windows: 2}},
		{"window in probation not scored", nabSynth(100, time.Minute, [2]int{2, 9}, [2]int{40, 49}), []int{20}, std,
			NABFileScore{Score: -1 + 0.11*σ(11.0/7), Null: -1, Perfect: 1, FP: 1, TN: 74, FN: 10, Windows: 1}},
		{"window straddling probation", nabSynth(100, time.Minute, [2]int{10, 20}), []int{12}, std,
			NABFileScore{Score: -1, Null: -1, Perfect: σ(-6.0/11) / maxTP, TN: 79, FN: 6, Windows: 1}},
		{"window straddling probation, flagged", nabSynth(100, time.Minute, [2]int{10, 20}), []int{16}, std,
			NABFileScore{Score: σ(-5.0/11) / maxTP, Null: -1, Perfect: σ(-6.0/11) / maxTP, TP: 1, TN: 79, FN: 5, Windows: 1}},
		{"one-row window then FP", nabSynth(100, time.Minute, [2]int{40, 40}), []int{40, 41}, std,
			NABFileScore{Score: 1 - 0.11, Null: -1, Perfect: 1, TP: 1, FP: 1, TN: 83, Windows: 1}},
		{"no windows", nabSynth(100, time.Minute), []int{50}, std, NABFileScore{Score: -0.11, FP: 1, TN: 84}},
		{"empty series", nabSynth(0, time.Minute), nil, std, NABFileScore{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := len(tc.s.Times)
			got := NABScoreFile(tc.s, nabRows(n, tc.flags...), tc.p)
			want := tc.want
			want.File, want.Probation = tc.s.File, nabProbation(n)
			if d := cmp.Diff(want, got, cmp.Comparer(func(a, b float64) bool { return math.Abs(a-b) < 1e-12 })); d != "" {
				t.Errorf("NABScoreFile(flags %v, %s) (-want +got):\n%s", tc.flags, tc.p.Name, d)
			}
		})
	}
}

func TestNABScoreFilePanicsOnLength(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("NABScoreFile with 3 flags for 4 rows did not panic")
		}
	}()
	NABScoreFile(nabSynth(4, time.Minute), make([]bool, 3), NABProfile{})
}

func TestNABWindowRows(t *testing.T) {
	s := nabSynth(10, time.Minute)
	at := func(m float64) time.Time { return nabT0.Add(time.Duration(m * float64(time.Minute))) }
	s.Windows = [][2]time.Time{
		{at(-5), at(-1)},   // before the data: dropped
		{at(-1), at(1.5)},  // rows 0–1
		{at(1), at(2)},     // overlaps: clipped to row 2
		{at(3.2), at(3.7)}, // between rows: dropped
		{at(8), at(20)},    // rows 8–9
	}
	want := [][2]int{{0, 1}, {2, 2}, {8, 9}}
	if d := cmp.Diff(want, nabWindowRows(s)); d != "" {
		t.Errorf("nabWindowRows (-want +got):\n%s", d)
	}
}

func TestNABEvents(t *testing.T) {
	s := nabSynth(3, 5*time.Minute)
	s.File = "realTweets/Twitter_volume_XYZ.csv"
	s.Values = []float64{2, 0.4, 3.4}
	at := func(d time.Duration) time.Time { return nabT0.Add(d) }
	for _, tc := range []struct {
		div  float64
		want []time.Time
	}{
		{1, []time.Time{at(75 * time.Second), at(225 * time.Second),
			at(10*time.Minute + 50*time.Second), at(10*time.Minute + 150*time.Second), at(10*time.Minute + 250*time.Second)}},
		{2, []time.Time{at(150 * time.Second), at(10*time.Minute + 75*time.Second), at(10*time.Minute + 225*time.Second)}},
		{0, []time.Time{at(75 * time.Second), at(225 * time.Second), // divisor ≤ 0 means 1
			at(10*time.Minute + 50*time.Second), at(10*time.Minute + 150*time.Second), at(10*time.Minute + 250*time.Second)}},
		{100, nil},
	} {
		evs := NABEvents(s, tc.div)
		var got []time.Time
		for _, e := range evs {
			got = append(got, e.Time)
			want := ctstream.Event{Time: e.Time, Account: NABAccount, Region: NABRegion, Source: NABSource,
				Name: "Twitter_volume_XYZ", Type: "AwsApiCall", Category: ctstream.Management}
			if e != want || !e.IsWriteManagement() {
				t.Errorf("NABEvents(div %g): event %+v, want %+v", tc.div, e, want)
			}
		}
		if d := cmp.Diff(tc.want, got); d != "" {
			t.Errorf("NABEvents(div %g) times (-want +got):\n%s", tc.div, d)
		}
	}
}

func TestNABDivisor(t *testing.T) {
	for _, tc := range []struct {
		step  time.Duration
		value float64
		want  float64
	}{
		{5 * time.Minute, 85, 1},
		{5 * time.Minute, 250, 1},
		{5 * time.Minute, 251, 10},
		{30 * time.Minute, 15000, 10},
		{30 * time.Minute, 15200, 100},
		{time.Minute, 0, 1},
		{time.Minute, -5, 1},
	} {
		s := nabSynth(10, tc.step)
		for i := range s.Values {
			s.Values[i] = tc.value
		}
		if got := NABDivisor(s); got != tc.want {
			t.Errorf("NABDivisor(%g per %v) = %g, want %g", tc.value, tc.step, got, tc.want)
		}
	}
	if got := NABDivisor(NABSeries{}); got != 1 {
		t.Errorf("NABDivisor(empty) = %g, want 1", got)
	}
}

func TestNABFlags(t *testing.T) {
	s := nabSynth(4, 5*time.Minute)
	s.Times[3] = s.Times[3].Add(time.Hour) // a gap before the last row
	at := func(m int) time.Time { return nabT0.Add(time.Duration(m) * time.Minute) }
	for _, tc := range []struct {
		name  string
		times []time.Time
		want  []bool
	}{
		{"none", nil, []bool{false, false, false, false}},
		{"row starts", []time.Time{at(0), at(10)}, []bool{true, false, true, false}},
		{"inside and end", []time.Time{at(4), at(5)}, []bool{true, true, false, false}},
		{"outside", []time.Time{at(-1), at(20), at(70)}, []bool{false, false, false, false}},
		{"last row", []time.Time{at(79)}, []bool{false, false, false, true}},
	} {
		if got := NABFlags(s, tc.times); !cmp.Equal(got, tc.want) {
			t.Errorf("NABFlags(%s) = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// nabStartDetector flags the first event of each window: a perfect detector.
func nabStartDetector(s NABSeries, evs []ctstream.Event) []time.Time {
	var out []time.Time
	for _, w := range s.Windows {
		for _, e := range evs {
			if !e.Time.Before(w[0]) {
				out = append(out, e.Time)
				break
			}
		}
	}
	return out
}

func TestNABRun(t *testing.T) {
	series := []NABSeries{
		nabSynth(100, 5*time.Minute, [2]int{40, 49}, [2]int{70, 79}),
		nabSynth(200, 30*time.Minute, [2]int{150, 160}),
	}
	series[1].File = "synth/taxi.csv"
	for i := range series[1].Values {
		series[1].Values[i] = 15200
	}
	std := NABProfile{Name: "standard", TP: 1, FP: 0.11, FN: 1, TN: 1}
	for _, tc := range []struct {
		name   string
		detect func(NABSeries, []ctstream.Event) []time.Time
		want   float64
	}{
		{"null", func(NABSeries, []ctstream.Event) []time.Time { return nil }, 0},
		{"perfect", nabStartDetector, 100},
		{"window ends", func(s NABSeries, _ []ctstream.Event) []time.Time {
			var out []time.Time
			for _, w := range s.Windows {
				out = append(out, w[1])
			}
			return out
		}, NABNormalize((2*nabScaledSigmoid(-0.1)+nabScaledSigmoid(-1.0/11))/nabScaledSigmoid(-1), -3, 3)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var sizes []int
			r := NABRun(series, std, func(s NABSeries, evs []ctstream.Event) []time.Time {
				sizes = append(sizes, len(evs))
				return tc.detect(s, evs)
			})
			if math.Abs(r.Score-tc.want) > 1e-9 {
				t.Errorf("NABRun(%s).Score = %.6f, want %.6f", tc.name, r.Score, tc.want)
			}
			if want := []int{1000, 30400}; !cmp.Equal(sizes, want) {
				t.Errorf("NABRun(%s): detect saw %v events, want %v", tc.name, sizes, want)
			}
			if want := []float64{1, 100}; !cmp.Equal(r.Divisors, want) {
				t.Errorf("NABRun(%s).Divisors = %v, want %v", tc.name, r.Divisors, want)
			}
			if r.Null != -3 || r.Perfect != 3 || len(r.Files) != 2 {
				t.Errorf("NABRun(%s): null %v perfect %v files %d, want -3 3 2", tc.name, r.Null, r.Perfect, len(r.Files))
			}
		})
	}
}

func TestNABWriteTable(t *testing.T) {
	series := []NABSeries{
		nabSynth(100, 5*time.Minute, [2]int{40, 49}, [2]int{70, 79}),
		nabSynth(200, 30*time.Minute, [2]int{150, 160}),
	}
	series[1].File = "synth/taxi.csv"
	std := NABProfile{Name: "standard", TP: 1, FP: 0.11, FN: 1, TN: 1}
	r := NABRun(series, std, func(s NABSeries, evs []ctstream.Event) []time.Time {
		if s.File == "synth/taxi.csv" {
			return []time.Time{s.Times[155], s.Times[180]}
		}
		return []time.Time{s.Times[20], s.Times[45]}
	})
	published := map[string]float64{"numenta": 68.85, "null": 0, "ARTime": 82.62, "bayesChangePt": 2.34}
	var buf bytes.Buffer
	if err := r.WriteTable(&buf, published); err != nil {
		t.Fatal(err)
	}
	nabGolden(t, "nab_table.golden", buf.String())
}

func nabGolden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if nabUpdate() {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if d := cmp.Diff(string(want), got); d != "" {
		t.Errorf("%s (-want +got):\n%s", name, d)
	}
}

func ExampleNABScoreFile() {
	// 100 rows, one every 5 minutes; one anomaly window over rows 40–49.
	t0 := time.Date(2015, 3, 1, 0, 0, 0, 0, time.UTC)
	s := NABSeries{File: "example.csv"}
	for i := range 100 {
		s.Times = append(s.Times, t0.Add(time.Duration(i)*5*time.Minute))
		s.Values = append(s.Values, 10)
	}
	s.Windows = [][2]time.Time{{s.Times[40], s.Times[49]}}

	flags := make([]bool, 100)
	flags[42] = true // early in the window: a true positive worth almost 1
	flags[70] = true // a false positive, far after the window: costs 0.11
	std := NABProfile{Name: "standard", TP: 1, FP: 0.11, FN: 1, TN: 1}
	f := NABScoreFile(s, flags, std)
	fmt.Printf("raw %.3f, normalised %.1f, TP %d FP %d\n", f.Score, f.Normalized(), f.TP, f.FP)
	// Output: raw 0.867, normalised 93.4, TP 1 FP 1
}

func FuzzNABDecodeSeries(f *testing.F) {
	f.Add([]byte("timestamp,value\n2015-02-26 21:42:53,104\n2015-02-26 21:47:53,100\n"))
	f.Add([]byte("timestamp,value\r\n2014-07-01 00:00:00,10844\r\n"))
	f.Add([]byte("timestamp,value\n2015-02-26 21:47:53,1\n2015-02-26 21:42:53,2\n"))
	f.Add([]byte("time,value\n"))
	f.Add([]byte("timestamp,value\nbad,1\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		times, values, err := nabDecodeSeries(bytes.NewReader(data))
		if err != nil {
			return
		}
		if len(times) != len(values) {
			t.Fatalf("%d times, %d values", len(times), len(values))
		}
		for i := 1; i < len(times); i++ {
			if !times[i].After(times[i-1]) {
				t.Fatalf("row %d not after row %d", i, i-1)
			}
		}
	})
}

func FuzzNABDecodeWindows(f *testing.F) {
	f.Add([]byte(`{"realTweets/Twitter_volume_FB.csv": [["2015-03-14 22:12:53.000000", "2015-03-17 16:02:53.000000"]]}`))
	f.Add([]byte(`{"a.csv": [["2015-03-14 22:12:53", "2015-03-14 22:12:53"], ["2015-03-01 00:00:00.5", "2015-03-02 00:00:00"]], "b.csv": []}`))
	f.Add([]byte(`{"a.csv": [["2015-03-14 22:12:53"]]}`))
	f.Add([]byte(`{"a.csv": [["2015-03-14", "x"]]}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		ws, err := nabDecodeWindows(bytes.NewReader(data))
		if err != nil {
			return
		}
		for file, list := range ws {
			for i, w := range list {
				if w[1].Before(w[0]) {
					t.Fatalf("%s window %d ends before it starts", file, i)
				}
				if i > 0 && w[0].Before(list[i-1][0]) {
					t.Fatalf("%s windows not sorted", file)
				}
			}
		}
	})
}

func FuzzNABDecodeAnomalyScores(f *testing.F) {
	f.Add([]byte("timestamp,value,anomaly_score,raw_score,label,S(t)_standard\n2015-02-26 21:42:53,104,0.0301029996659,1.0,0,0.0\n"))
	f.Add([]byte("anomaly_score\n0.5\n\n1\n"))
	f.Add([]byte("timestamp,value,anomaly_score\n2015-02-26 21:42:53,104\n"))
	f.Add([]byte("timestamp,value\n"))
	f.Add([]byte(""))
	f.Fuzz(func(t *testing.T, data []byte) {
		scores, err := nabDecodeAnomalyScores(bytes.NewReader(data))
		if err != nil {
			return
		}
		if n := strings.Count(string(data), "\n") + 1; len(scores) > n {
			t.Fatalf("%d scores from %d lines", len(scores), n)
		}
	})
}

func FuzzNABDecodeProfiles(f *testing.F) {
	f.Add([]byte(`{"standard": {"CostMatrix": {"tpWeight": 1.0, "fnWeight": 1.0, "fpWeight": 0.11, "tnWeight": 1.0}}}`))
	f.Add([]byte(`{"standard": {"CostMatrix": {"tpWeight": 1.0}}}`))
	f.Add([]byte(`{"standard": {}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		ps, err := nabDecodeProfiles(bytes.NewReader(data))
		if err != nil {
			return
		}
		for name, p := range ps {
			if p.Name != name {
				t.Fatalf("profile %q named %q", name, p.Name)
			}
		}
	})
}

func FuzzNABDecodeThresholds(f *testing.F) {
	f.Add([]byte(`{"numenta": {"standard": {"score": 46.6, "threshold": 0.5421876907348634}}}`))
	f.Add([]byte(`{"numenta": {"standard": {"threshold": "x"}}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		_, _ = nabDecodeThresholds(bytes.NewReader(data))
	})
}

// FuzzNABScoreFile checks the scorer's invariants on arbitrary flags and
// windows: the counts cover the rows after the probation, no score beats the
// perfect detector's, and false positives cost at most FP each.
func FuzzNABScoreFile(f *testing.F) {
	f.Add(uint8(100), uint8(40), uint8(10), []byte{42, 70})
	f.Add(uint8(20), uint8(1), uint8(0), []byte{1, 2, 3, 19})
	f.Add(uint8(0), uint8(0), uint8(0), []byte{})
	f.Fuzz(func(t *testing.T, n, start, length uint8, flags []byte) {
		s := nabSynth(int(n), time.Minute)
		if int(start) < int(n) {
			end := min(int(start)+int(length), int(n)-1)
			s.Windows = [][2]time.Time{{s.Times[start], s.Times[end]}, {s.Times[end], s.Times[n-1]}}
		}
		d := make([]bool, n)
		for _, b := range flags {
			if int(b) < int(n) {
				d[b] = true
			}
		}
		p := NABProfile{TP: 1, FP: 0.11, FN: 1, TN: 1}
		got := NABScoreFile(s, d, p)
		if sum := got.TP + got.TN + got.FP + got.FN; sum != int(n)-got.Probation {
			t.Fatalf("counts %+v sum to %d, want %d", got, sum, int(n)-got.Probation)
		}
		if got.Score > got.Perfect+1e-9 {
			t.Fatalf("score %v above perfect %v", got.Score, got.Perfect)
		}
		if got.Score < got.Null-p.FP*float64(got.FP)-1e-9 {
			t.Fatalf("score %v below null %v minus %d FPs", got.Score, got.Null, got.FP)
		}
	})
}

// TestNABDetail: NABDetail's parts add up to NABScoreFile's score, and name
// each flag and missed window for what it is.
func TestNABDetail(t *testing.T) {
	std := NABProfile{Name: "standard", TP: 1, FP: 0.11, FN: 1, TN: 1}
	two := nabSynth(100, 5*time.Minute, [2]int{40, 49}, [2]int{70, 79})
	for _, tc := range []struct {
		name  string
		s     NABSeries
		flags []int
		kinds string // Kind of each mark, in row order
	}{
		{"nothing", two, nil, "FN FN"},
		{"probation, FP, TP, later TP, FP after, missed", two, []int{3, 20, 42, 45, 55}, "probation FP TP TP+ FP FN"},
		{"both windows", two, []int{40, 79, 99}, "TP TP FP"},
		{"window straddling probation", nabSynth(100, time.Minute, [2]int{10, 20}), []int{12, 16}, "probation TP"},
		{"window in probation", nabSynth(100, time.Minute, [2]int{2, 9}, [2]int{40, 49}), []int{5, 20}, "probation FP FN"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			flags := nabRows(len(tc.s.Times), tc.flags...)
			marks := NABDetail(tc.s, flags, std)
			var sum float64
			var kinds []string
			for _, m := range marks {
				sum += m.Part
				kinds = append(kinds, m.Kind)
			}
			if got := strings.Join(kinds, " "); got != tc.kinds {
				t.Errorf("kinds %q, want %q", got, tc.kinds)
			}
			if want := NABScoreFile(tc.s, flags, std).Score; math.Abs(sum-want) > 1e-12 {
				t.Errorf("parts add up to %v, NABScoreFile says %v", sum, want)
			}
		})
	}
	// On a real file with flags every 97 rows.
	s := nabLoad(t)[1]
	flags := make([]bool, len(s.Times))
	for i := 0; i < len(flags); i += 97 {
		flags[i] = true
	}
	var sum float64
	for _, m := range NABDetail(s, flags, std) {
		sum += m.Part
	}
	if want := NABScoreFile(s, flags, std).Score; math.Abs(sum-want) > 1e-9 {
		t.Errorf("%s: parts add up to %v, NABScoreFile says %v", s.File, sum, want)
	}
}
