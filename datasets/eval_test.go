package datasets

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"

	"github.com/trailsight/trailsight/detector"
)

var t0 = time.Date(2026, 3, 10, 10, 0, 0, 0, time.UTC)

func at(min int) time.Time { return t0.Add(time.Duration(min) * time.Minute) }

// ins builds a Start/End pair on a series. dir is "" (no explanation),
// "above" or "below"; base and avg are the Start statistics.
func ins(id, name string, typ detector.InsightType, code string, start, end int, dir string, base, avg float64) []detector.Insight {
	mk := func(s detector.State, t time.Time) detector.Insight {
		in := detector.Insight{EventVersion: "1.08", Time: t, Region: "us-east-1", Account: "111122223333",
			EventID: id + "-" + s.String(), SharedEventID: id, State: s, EventSource: "ec2.amazonaws.com",
			EventName: name, Type: typ, ErrorCode: code, Category: "Management",
			Stats: detector.Statistics{BaselineAverage: base, InsightAverage: avg, InsightDuration: end - start, BaselineDuration: 10080}}
		if dir != "" {
			in.Explanation = &detector.Explanation{Kind: "burst", Direction: dir}
		}
		return in
	}
	return []detector.Insight{mk(detector.Start, at(start)), mk(detector.End, at(end))}
}

func lbl(kind, name, code string, start, end int) Label {
	decoy, _ := kindIsDecoy(kind)
	typ := "ApiCallRateInsight"
	if code != "" {
		typ = "ApiErrorRateInsight"
	}
	return Label{Kind: kind, InsightType: typ, Account: "111122223333", Region: "us-east-1",
		EventSource: "ec2.amazonaws.com", EventName: name, ErrorCode: code, Start: at(start), End: at(end), Decoy: decoy}
}

func cat(xs ...[]detector.Insight) []detector.Insight {
	var out []detector.Insight
	for _, x := range xs {
		out = append(out, x...)
	}
	return out
}

func TestEvaluate(t *testing.T) {
	const rate, errRate = detector.ApiCallRate, detector.ApiErrorRate
	tests := []struct {
		name      string
		labels    []Label
		insights  []detector.Insight
		tol       time.Duration
		want      Report // only the counting fields are compared
		wantWhy   []string
		wantDelay [2]float64 // median, worst
	}{
		{
			name:      "true positive",
			labels:    []Label{lbl(KindBurst, "CreateTags", "", 0, 10)},
			insights:  ins("a", "CreateTags", rate, "", 2, 8, "above", 1, 20),
			want:      Report{Labels: 1, Detected: 1, Insights: 1, True: 1, Precision: 1, Recall: 1, F1: 1},
			wantDelay: [2]float64{2, 2},
		},
		{
			name:     "false positive on an unlabelled series",
			labels:   []Label{lbl(KindBurst, "CreateTags", "", 0, 10)},
			insights: ins("a", "RunInstances", rate, "", 2, 8, "above", 1, 20),
			want:     Report{Labels: 1, Insights: 1, False: 1},
			wantWhy:  []string{"no label"},
		},
		{
			name:     "decoy hit",
			labels:   []Label{lbl(KindBurst, "CreateTags", "", 0, 10), lbl(KindDecoyReadBurst, "DescribeInstances", "", 100, 110)},
			insights: cat(ins("a", "CreateTags", rate, "", 0, 5, "above", 1, 20), ins("b", "DescribeInstances", rate, "", 101, 104, "above", 1, 50)),
			want:     Report{Labels: 1, Detected: 1, Insights: 2, True: 1, False: 1, Precision: 0.5, Recall: 1, F1: 2.0 / 3},
			wantWhy:  []string{KindDecoyReadBurst},
		},
		{
			name:     "wrong direction",
			labels:   []Label{lbl(KindGap, "CreateSnapshot", "", 0, 120)},
			insights: ins("a", "CreateSnapshot", rate, "", 30, 60, "above", 3, 9),
			want:     Report{Labels: 1, Insights: 1, False: 1, WrongDirection: 1},
			wantWhy:  []string{"wrong direction"},
		},
		{
			name:      "direction from statistics",
			labels:    []Label{lbl(KindGap, "CreateSnapshot", "", 0, 120)},
			insights:  ins("a", "CreateSnapshot", rate, "", 65, 120, "", 3, 0),
			want:      Report{Labels: 1, Detected: 1, Insights: 1, True: 1, Precision: 1, Recall: 1, F1: 1},
			wantDelay: [2]float64{65, 65},
		},
		{
			name:      "within tolerance",
			labels:    []Label{lbl(KindBurst, "CreateTags", "", 0, 10)},
			insights:  ins("a", "CreateTags", rate, "", 20, 25, "above", 1, 20),
			want:      Report{Labels: 1, Detected: 1, Insights: 1, True: 1, Precision: 1, Recall: 1, F1: 1},
			wantDelay: [2]float64{20, 20},
		},
		{
			name:     "outside a tight tolerance",
			labels:   []Label{lbl(KindBurst, "CreateTags", "", 0, 10)},
			insights: ins("a", "CreateTags", rate, "", 20, 25, "above", 1, 20),
			tol:      5 * time.Minute,
			want:     Report{Labels: 1, Insights: 1, False: 1},
			wantWhy:  []string{"no label"},
		},
		{
			name:     "error code must match",
			labels:   []Label{lbl(KindLimit, "DescribeInstances", "RequestLimitExceeded", 0, 30)},
			insights: ins("a", "DescribeInstances", errRate, "Client.UnauthorizedOperation", 3, 10, "above", 0, 5),
			want:     Report{Labels: 1, Insights: 1, False: 1},
			wantWhy:  []string{"no label"},
		},
		{
			name: "delays: earliest insight per label, median and worst over labels",
			labels: []Label{lbl(KindBurst, "CreateTags", "", 0, 10), lbl(KindLimit, "DescribeInstances", "RequestLimitExceeded", 100, 130),
				lbl(KindError, "DescribeVolumes", "Client.UnauthorizedOperation", 200, 220)},
			insights: cat(ins("a", "CreateTags", rate, "", 4, 6, "above", 1, 9), ins("b", "CreateTags", rate, "", 1, 3, "above", 1, 9),
				ins("c", "DescribeInstances", errRate, "RequestLimitExceeded", 103, 120, "above", 0, 9),
				ins("d", "DescribeVolumes", errRate, "Client.UnauthorizedOperation", 210, 215, "above", 0, 9)),
			want:      Report{Labels: 3, Detected: 3, Insights: 4, True: 4, Precision: 1, Recall: 1, F1: 1},
			wantDelay: [2]float64{3, 10},
		},
		{
			name:      "duplicate deliveries and a lone Start count once",
			labels:    []Label{lbl(KindBurst, "CreateTags", "", 0, 10)},
			insights:  cat(ins("a", "CreateTags", rate, "", 2, 8, "above", 1, 20), ins("a", "CreateTags", rate, "", 2, 8, "above", 1, 20), ins("b", "CreateTags", rate, "", 5, 8, "above", 1, 20)[:1]),
			want:      Report{Labels: 1, Detected: 1, Insights: 2, True: 2, Precision: 1, Recall: 1, F1: 1, Unpaired: 1},
			wantDelay: [2]float64{2, 2},
		},
		{
			name:     "holiday decoy matches any series going below",
			labels:   []Label{{Kind: KindDecoyHoliday, Account: "111122223333", Region: "us-east-1", Start: at(-600), End: at(840), Decoy: true}},
			insights: ins("a", "CreateTags", rate, "", 60, 90, "below", 1, 0),
			want:     Report{Insights: 1, False: 1},
			wantWhy:  []string{KindDecoyHoliday},
		},
		{
			name:     "the first occurrence of a recurring pattern is not scored; a gap on it is",
			labels:   []Label{lbl(KindUnseen, "StartQueryExecution", "", 0, 180), lbl(KindBurst, "CreateTags", "", 0, 10)},
			insights: cat(ins("a", "StartQueryExecution", rate, "", 4, 170, "above", 1, 4), ins("b", "StartQueryExecution", rate, "", 100, 130, "below", 1, 0)),
			want:     Report{Labels: 1, Insights: 1, False: 1, Excused: 1},
			wantWhy:  []string{"no label"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := Evaluate(Labels{Labels: tc.labels}, tc.insights, EvalOptions{Tolerance: tc.tol})
			counts := Report{Labels: got.Labels, Detected: got.Detected, Insights: got.Insights, True: got.True, False: got.False,
				Precision: got.Precision, Recall: got.Recall, F1: got.F1, WrongDirection: got.WrongDirection, Unpaired: got.Unpaired,
				Excused: got.Excused}
			want := tc.want
			if counts.Precision-want.Precision > 1e-9 || want.Precision-counts.Precision > 1e-9 || counts.F1-want.F1 > 1e-9 || want.F1-counts.F1 > 1e-9 {
				t.Errorf("precision, F1 = %v, %v, want %v, %v", counts.Precision, counts.F1, want.Precision, want.F1)
			}
			counts.Precision, counts.F1, want.Precision, want.F1 = 0, 0, 0, 0
			if !equalReports(counts, want) {
				t.Errorf("Evaluate = %+v, want %+v", counts, want)
			}
			var why []string
			for _, f := range got.FalseInsights {
				why = append(why, f.Why)
			}
			if strings.Join(why, ",") != strings.Join(tc.wantWhy, ",") {
				t.Errorf("false insights why = %q, want %q", why, tc.wantWhy)
			}
			if got.MedianDelayMinutes != tc.wantDelay[0] || got.WorstDelayMinutes != tc.wantDelay[1] {
				t.Errorf("delay median, worst = %v, %v, want %v", got.MedianDelayMinutes, got.WorstDelayMinutes, tc.wantDelay)
			}
			var buf bytes.Buffer
			if err := got.WriteText(&buf); err != nil {
				t.Fatal(err)
			}
			lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
			if last := lines[len(lines)-1]; !strings.HasPrefix(last, "F1=") || !strings.Contains(last, " precision=") || !strings.Contains(last, " recall=") {
				t.Errorf("last line %q, want F1=… precision=… recall=…", last)
			}
			if _, err := json.Marshal(got); err != nil {
				t.Errorf("json.Marshal(report): %v", err)
			}
		})
	}
}

func equalReports(a, b Report) bool {
	return a.Labels == b.Labels && a.Detected == b.Detected && a.Insights == b.Insights && a.True == b.True &&
		a.False == b.False && a.Recall == b.Recall && a.WrongDirection == b.WrongDirection && a.Unpaired == b.Unpaired &&
		a.Excused == b.Excused
}

func TestEvaluatePerKindAndDecoys(t *testing.T) {
	labels := Labels{Labels: []Label{
		lbl(KindBurst, "CreateTags", "", 0, 10),
		lbl(KindGap, "CreateSnapshot", "", 0, 120),
		lbl(KindDecoyDeploy, "UpdateService", "", 300, 310),
		lbl(KindDecoyDeploy, "UpdateService", "", 1740, 1750),
	}}
	got := Evaluate(labels, cat(
		ins("a", "CreateTags", detector.ApiCallRate, "", 1, 5, "above", 1, 20),
		ins("b", "UpdateService", detector.ApiCallRate, "", 301, 305, "above", 1, 4),
		ins("c", "CreateSnapshot", detector.ApiCallRate, "", 500, 560, "below", 3, 0),
	), EvalOptions{})
	if k := got.Kinds[0]; k.Kind != KindBurst || k.Labels != 1 || k.Detected != 1 || k.Insights != 2 || k.True != 1 {
		t.Errorf("burst kind = %+v, want 1 label detected, 2 insights (1 true, 1 on the deploy decoy)", k)
	}
	if k := got.Kinds[1]; k.Kind != KindGap || k.Labels != 1 || k.Detected != 0 || k.Insights != 1 || k.True != 0 {
		t.Errorf("gap kind = %+v, want 1 label missed, 1 false insight", k)
	}
	if len(got.Decoys) != 1 || got.Decoys[0] != (DecoyReport{Kind: KindDecoyDeploy, Labels: 2, Hit: 1, FalseInsights: 1}) {
		t.Errorf("decoys = %+v", got.Decoys)
	}
	if len(got.Missed) != 1 || got.Missed[0].Kind != KindGap {
		t.Errorf("missed = %+v, want the gap", got.Missed)
	}
	got = Evaluate(labels, ins("a", "CreateTags", detector.ApiCallRate, "", 1, 5, "above", 1, 20), EvalOptions{IgnoreBefore: at(2)})
	if got.Insights != 0 {
		t.Errorf("IgnoreBefore kept %d insights", got.Insights)
	}
}

func TestEvaluateJobGapDelay(t *testing.T) {
	job := func(name string, start, period int) Label {
		l := lbl(KindGap, name, "", start, start+4*period)
		l.PeriodMinutes = period
		return l
	}
	labels := Labels{Labels: []Label{
		job("CreateSnapshot", 0, 60),                // reported 90 min after the first missed run: 1.5 periods
		job("PutMetricData", 1000, 15),              // reported 45 min after: 3 periods, too late
		job("StartBuild", 3000, 360),                // missed: not within
		lbl(KindGap, "SendMessage", "", 5000, 5100), // a steady flow: no period, not counted
	}}
	got := Evaluate(labels, cat(
		ins("a", "CreateSnapshot", detector.ApiCallRate, "", 90, 200, "below", 3, 0),
		ins("b", "PutMetricData", detector.ApiCallRate, "", 1045, 1050, "below", 3, 0),
		ins("c", "SendMessage", detector.ApiCallRate, "", 5010, 5100, "below", 3, 0),
	), EvalOptions{})
	if got.PeriodicGaps != 3 || got.GapsWithin2Periods != 1 || got.WorstGapDelayPeriods != 3 {
		t.Errorf("periodic gaps %d, within 2 periods %d, worst %v periods; want 3, 1, 3",
			got.PeriodicGaps, got.GapsWithin2Periods, got.WorstGapDelayPeriods)
	}
	var b strings.Builder
	if err := got.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	if want := "job gaps reported within 2 periods of the first missed run: 1 of 3 (worst 3.00 periods)"; !strings.Contains(b.String(), want) {
		t.Errorf("report lacks %q:\n%s", want, b.String())
	}
}

func TestLoadInsights(t *testing.T) {
	dir := t.TempDir()
	all := cat(ins("a", "CreateTags", detector.ApiCallRate, "", 1, 5, "above", 1, 20), ins("b", "DescribeInstances", detector.ApiErrorRate, "RequestLimitExceeded", 8, 9, "above", 0, 3))
	records, err := json.Marshal(map[string]any{"Records": all[:2]})
	if err != nil {
		t.Fatal(err)
	}
	sub := filepath.Join(dir, "AWSLogs", "111122223333", "CloudTrail-Insight", "us-east-1", "2026", "03", "10")
	if err := os.MkdirAll(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(records)
	zw.Close()
	write := func(path string, data []byte) {
		t.Helper()
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Join(sub, "111122223333_CloudTrail-Insight_us-east-1_20260310T1005Z_abcdefghijklmnop.json.gz"), gz.Bytes())
	var lines []byte
	for _, in := range all[2:] {
		b, err := json.Marshal(in)
		if err != nil {
			t.Fatal(err)
		}
		lines = append(append(lines, b...), '\n')
	}
	write(filepath.Join(dir, "more.jsonl"), lines)
	write(filepath.Join(dir, "broken.json"), []byte(`{"Records":[{"eventType":`))
	write(filepath.Join(dir, "notes.txt"), []byte("not insights"))

	got, errs, err := detector.ReadInsights(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 4 {
		t.Errorf("detector.ReadInsights(dir) = %d insights, want 4", len(got))
	}
	if len(errs) != 1 || !strings.Contains(errs[0].Error(), "broken.json") {
		t.Errorf("detector.ReadInsights(dir) errors = %v, want one naming broken.json", errs)
	}
	r := Evaluate(Labels{Labels: []Label{lbl(KindBurst, "CreateTags", "", 0, 10)}}, got, EvalOptions{})
	if r.Insights != 2 || r.True != 1 {
		t.Errorf("Evaluate(loaded) = %d insights, %d true; want 2, 1", r.Insights, r.True)
	}
	got, errs, err = detector.ReadInsights(filepath.Join(dir, "more.jsonl"))
	if err != nil || len(errs) != 0 || len(got) != 2 {
		t.Errorf("detector.ReadInsights(file) = %d, %v, %v; want 2 insights", len(got), errs, err)
	}
	if _, _, err := detector.ReadInsights(filepath.Join(dir, "absent")); err == nil {
		t.Error("detector.ReadInsights(absent) succeeded")
	}
}
