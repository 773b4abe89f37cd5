package main

import (
	"bytes"
	"image/png"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/trailsight/trailsight/detector"
)

// TestDetectCharts: detect --charts on a generated archive draws one PNG
// per insight, named from the insight, of the chart's size; a re-run draws
// the same files, byte for byte.
func TestDetectCharts(t *testing.T) {
	dir := t.TempDir()
	arch, out := filepath.Join(dir, "archive"), filepath.Join(dir, "insights")
	if _, e, code := ts(t, nil, "gen", "--out", arch, "--days", "10", "--accounts", "1", "--seed", "3"); code != 0 {
		t.Fatalf("gen exit %d: %s", code, e)
	}
	charts, charts2 := filepath.Join(dir, "charts"), filepath.Join(dir, "charts2")
	_, e, code := ts(t, nil, "--log-level", "warn", "detect", "--in", arch, "--out", out, "--charts", charts)
	if code != 0 {
		t.Fatalf("detect exit %d: %s", code, e)
	}
	ins, bad, err := detector.ReadInsights(out)
	if err != nil || len(bad) > 0 {
		t.Fatalf("ReadInsights: %v %v", err, bad)
	}
	starts := map[string]time.Time{}
	var want []string
	kinds := map[string]bool{}
	for _, in := range ins {
		if in.State == detector.Start {
			starts[in.SharedEventID] = in.Time
		}
	}
	for _, in := range ins {
		if in.State == detector.End {
			want = append(want, filepath.ToSlash(chartName(&in, starts[in.SharedEventID])))
			kinds[insightKind(&in)] = true
		}
	}
	slices.Sort(want)
	if len(want) == 0 || len(kinds) < 3 {
		t.Fatalf("%d insights of kinds %v: want several kinds to draw", len(want), kinds)
	}
	if !strings.Contains(e, "charts      "+strconv.Itoa(len(want))+" PNG under "+charts) {
		t.Errorf("summary does not count %d charts:\n%s", len(want), e)
	}
	got := listFiles(t, charts)
	if !slices.Equal(got, want) {
		t.Fatalf("charts:\n%s\nwant one per insight:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	for _, f := range got {
		b, err := os.ReadFile(filepath.Join(charts, f))
		if err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(bytes.NewReader(b))
		if err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		if sz := img.Bounds().Size(); sz.X != chartW || sz.Y != chartH {
			t.Errorf("%s: %v, want %dx%d", f, sz, chartW, chartH)
		}
	}

	// The same input draws the same files: names and bytes.
	if _, e, code := ts(t, nil, "--log-level", "warn", "detect", "--in", arch, "--out", filepath.Join(dir, "insights2"), "--charts", charts2); code != 0 {
		t.Fatalf("detect again: exit %d: %s", code, e)
	}
	if got2 := listFiles(t, charts2); !slices.Equal(got2, got) {
		t.Fatalf("re-run drew %v, want %v", got2, got)
	}
	for _, f := range got {
		a, _ := os.ReadFile(filepath.Join(charts, f))
		b, _ := os.ReadFile(filepath.Join(charts2, f))
		if !bytes.Equal(a, b) {
			t.Errorf("re-run: %s differs", f)
		}
	}
}

// TestDetectChartsUnwritable: a --charts folder that cannot be made fails
// at the start, naming the flag, before any input is read.
func TestDetectChartsUnwritable(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	_, e, code := ts(t, nil, "detect", "--in", dir, "--out", filepath.Join(dir, "out"), "--charts", filepath.Join(file, "charts"))
	if code == 0 || !strings.Contains(e, "--charts") {
		t.Errorf("detect --charts under a file: exit %d, stderr:\n%s", code, e)
	}
	if _, err := os.Stat(filepath.Join(dir, "out")); err == nil {
		t.Error("outputs opened before --charts was checked")
	}
}

func TestChartName(t *testing.T) {
	start := time.Date(2026, 3, 5, 14, 12, 0, 0, time.UTC)
	tests := []struct {
		in   detector.Insight
		want string
	}{
		{detector.Insight{Account: "111122223333", Region: "us-east-1", EventSource: "ec2.amazonaws.com", EventName: "RunInstances",
			SharedEventID: "1a2b3c4d-5e6f-5a7b-8c9d-0e1f2a3b4c5d", Explanation: &detector.Explanation{Kind: "burst"}},
			"111122223333/us-east-1/2026-03-05T1412Z_ec2.RunInstances_burst_1a2b3c4d.png"},
		{detector.Insight{Account: "111122223333", Region: "eu-west-1", EventSource: "kms.amazonaws.com", EventName: "Decrypt",
			ErrorCode: "ThrottlingException", Type: detector.ApiErrorRate, SharedEventID: "0f8c58be-0000-5000-8000-000000000000"},
			"111122223333/eu-west-1/2026-03-05T1412Z_kms.Decrypt.ThrottlingException_ApiErrorRateInsight_0f8c58be.png"},
		{detector.Insight{Account: "../..", Region: "x/y", EventSource: "../evil", EventName: "a/b",
			SharedEventID: "abc", Explanation: &detector.Explanation{Kind: "gap"}},
			"-----/x-y/2026-03-05T1412Z_-.-evil.a-b_gap_abc.png"},
	}
	for _, tc := range tests {
		if got := filepath.ToSlash(chartName(&tc.in, start)); got != tc.want {
			t.Errorf("chartName(%s %s %s) = %s, want %s", tc.in.Account, tc.in.Region, tc.in.EventName, got, tc.want)
		}
	}
}

func listFiles(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			rel, _ := filepath.Rel(dir, p)
			out = append(out, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(out)
	return out
}

// TestDrawChart draws edge cases without failing: no points held, no
// explanation (--strict-aws), a drop, a series of zeros, a huge burst.
func TestDrawChart(t *testing.T) {
	end := time.Date(2026, 3, 5, 14, 0, 0, 0, time.UTC)
	start := end.Add(-3 * time.Hour)
	series := func(n int, step time.Duration, obs, exp float64) []detector.Point {
		var out []detector.Point
		for i := range n {
			at := end.Add(-time.Duration(n-i) * step)
			out = append(out, detector.Point{Time: at, Minutes: int(step / time.Minute), Observed: obs, Expected: exp, Quiet: exp / 2, Low: exp / 2, High: exp * 2})
		}
		return out
	}
	base := detector.Insight{Account: "111122223333", Region: "us-east-1", EventSource: "kinesis.amazonaws.com", EventName: "PutRecords",
		SharedEventID: "1a2b3c4d-0000-5000-8000-000000000000", State: detector.End, Time: end, Stats: detector.Statistics{InsightDuration: 180}}
	drop := base
	drop.Explanation = &detector.Explanation{Kind: "drop", Direction: "below", Observed: 540, Expected: 3600, BandLow: 3400, BandHigh: 3800, Score: 14, WindowMinutes: 180, Slot: "weekday 10:00"}
	burst := base
	burst.Explanation = &detector.Explanation{Kind: "burst", Direction: "above", Observed: 1e7, Expected: 0.0001, Score: 300, WindowMinutes: 1}
	tests := []struct {
		name string
		in   detector.Insight
		h    detector.SeriesHistory
	}{
		{"no points", base, detector.SeriesHistory{}},
		{"no explanation", base, detector.SeriesHistory{Hours: series(48, time.Hour, 60, 60), Minutes: series(120, time.Minute, 1, 1)}},
		{"drop", drop, detector.SeriesHistory{Hours: series(48, time.Hour, 180, 1200), Minutes: series(120, time.Minute, 3, 20)}},
		{"zeros", base, detector.SeriesHistory{Hours: series(48, time.Hour, 0, 0), Minutes: series(120, time.Minute, 0, 0)}},
		{"huge burst", burst, detector.SeriesHistory{Hours: series(48, time.Hour, 1e9, 0.006), Minutes: series(120, time.Minute, 1e7, 0.0001)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := drawChart(&b, &tc.in, start, &tc.h); err != nil {
				t.Fatalf("drawChart: %v", err)
			}
			if d := os.Getenv("CHART_DUMP"); d != "" {
				os.WriteFile(filepath.Join(d, tc.name+".png"), b.Bytes(), 0o644)
			}
			img, err := png.Decode(&b)
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			if sz := img.Bounds().Size(); sz.X != chartW || sz.Y != chartH {
				t.Errorf("size %v, want %dx%d", sz, chartW, chartH)
			}
		})
	}
}
