package main

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/trailsight/trailsight/baseline"
	"github.com/trailsight/trailsight/detector"
)

var bin string // the trailsight binary built for these tests

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "trailsight-e2e-")
	if err != nil {
		panic(err)
	}
	bin = filepath.Join(dir, "trailsight")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		os.Stderr.Write(out)
		panic(err)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// ts runs the binary and returns stdout, stderr and the exit code.
func ts(t *testing.T, stdin []byte, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run %v: %v", args, err)
	}
	return out.String(), errb.String(), code
}

var insightKey = regexp.MustCompile(`^AWSLogs/(\d{12})/CloudTrail-Insight/([a-z0-9-]+)/(\d{4})/(\d{2})/(\d{2})/(\d{12})_CloudTrail-Insight_([a-z0-9-]+)_(\d{8}T\d{4}Z)_([A-Za-z0-9]{16})\.json\.gz$`)

// TestGenDetectEval is the analyst's path: generate a labelled archive,
// backfill it, score the insights.
func TestGenDetectEval(t *testing.T) {
	dir := t.TempDir()
	arch, out := filepath.Join(dir, "archive"), filepath.Join(dir, "insights")
	if _, e, code := ts(t, nil, "gen", "--out", arch, "--days", "10", "--accounts", "1", "--seed", "3"); code != 0 {
		t.Fatalf("gen exit %d: %s", code, e)
	}
	sum := filepath.Join(dir, "summary.json")
	_, e, code := ts(t, nil, "--log-level", "warn", "detect", "--in", arch, "--out", out, "--summary-json", sum)
	if code != 0 {
		t.Fatalf("detect exit %d: %s", code, e)
	}
	if !strings.Contains(e, "insights") || !strings.Contains(e, "events/s") {
		t.Errorf("summary missing from stderr:\n%s", e)
	}
	var s summary
	b, err := os.ReadFile(sum)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatal(err)
	}
	if s.Files == 0 || s.Events == 0 || s.BadFiles != 0 || s.Insights == 0 {
		t.Errorf("summary = %+v", s)
	}
	// Every written file is in the CloudTrail-Insight layout, and the insights pair up.
	var keys []string
	filepath.WalkDir(out, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel(out, p)
			keys = append(keys, filepath.ToSlash(rel))
		}
		return nil
	})
	if len(keys) == 0 {
		t.Fatal("no insight files written")
	}
	for _, k := range keys {
		m := insightKey.FindStringSubmatch(k)
		if m == nil {
			t.Errorf("key %s is not in the CloudTrail-Insight layout", k)
			continue
		}
		if m[1] != m[6] || m[2] != m[7] || m[3]+m[4]+m[5] != m[8][:8] {
			t.Errorf("key %s: folder and file name disagree", k)
		}
	}
	ins, bad, err := detector.ReadInsights(out)
	if err != nil || len(bad) > 0 {
		t.Fatalf("ReadInsights: %v %v", err, bad)
	}
	pairs := map[string][]detector.State{}
	for _, in := range ins {
		pairs[in.SharedEventID] = append(pairs[in.SharedEventID], in.State)
	}
	for id, st := range pairs {
		if !slices.Equal(st, []detector.State{detector.Start, detector.End}) && !slices.Equal(st, []detector.State{detector.End, detector.Start}) {
			t.Errorf("insight %s has events %v, want one Start and one End", id, st)
		}
	}

	// Re-running writes the same keys and bytes.
	out2 := filepath.Join(dir, "insights2")
	if _, e, code := ts(t, nil, "--log-level", "warn", "detect", "--in", arch, "--out", out2); code != 0 {
		t.Fatalf("detect again: %d %s", code, e)
	}
	for _, k := range keys {
		a, _ := os.ReadFile(filepath.Join(out, k))
		b, err := os.ReadFile(filepath.Join(out2, k))
		if err != nil || !bytes.Equal(a, b) {
			t.Errorf("re-run differs at %s (%v)", k, err)
		}
	}

	// A rule muting one series: its insights are counted, not written, and
	// every other insight is written as before, byte for byte.
	var name string
	nStarts := 0
	for _, in := range ins {
		if name == "" && in.State == detector.Start {
			name = in.EventName
		}
	}
	for _, in := range ins {
		if in.State == detector.Start && in.EventName == name {
			nStarts++
		}
	}
	cfg := filepath.Join(dir, "mute.toml")
	os.WriteFile(cfg, []byte(fmt.Sprintf("[[detector.rules]]\nevent_name = %q\nmute = [\"all\"]\n", name)), 0o644)
	muted, sumMuted := filepath.Join(dir, "muted"), filepath.Join(dir, "muted.json")
	_, e, code = ts(t, nil, "--log-level", "warn", "detect", "--config", cfg, "--in", arch, "--out", muted, "--summary-json", sumMuted)
	if code != 0 {
		t.Fatalf("detect with a muting rule: exit %d: %s", code, e)
	}
	if !strings.Contains(e, fmt.Sprintf("%d more muted by [[detector.rules]]", nStarts)) {
		t.Errorf("summary does not say %d insights were muted:\n%s", nStarts, e)
	}
	mi, _, err := detector.ReadInsights(muted)
	if err != nil {
		t.Fatal(err)
	}
	var want []detector.Insight
	for _, in := range ins {
		if in.EventName != name {
			want = append(want, in)
		}
	}
	if len(mi) != len(want) || len(want) == len(ins) {
		t.Errorf("muting %s (%d insights): %d insight events written, want %d of %d", name, nStarts, len(mi), len(want), len(ins))
	}
	for i := range min(len(mi), len(want)) {
		if mi[i].EventID != want[i].EventID {
			t.Errorf("muting %s changed another insight: %s, want %s", name, mi[i].EventID, want[i].EventID)
			break
		}
	}

	// Learn the first 8 days into a model, then detect the rest warm.
	model := filepath.Join(dir, "m.tsm")
	if _, e, code := ts(t, nil, "--log-level", "warn", "baseline", "--in", arch, "--to", "2026-03-10", "--model", model); code != 0 {
		t.Fatalf("baseline exit %d: %s", code, e)
	}
	// series lists what the model learned, and which rule applies.
	stdout, e, code := ts(t, nil, "series", model, "--config", cfg, "--json")
	if code != 0 {
		t.Fatalf("series exit %d: %s", code, e)
	}
	_, entries, err := baseline.LoadFile(model)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	ruled := 0
	prev := math.Inf(1)
	for _, l := range lines {
		var r seriesRow
		if err := json.Unmarshal([]byte(l), &r); err != nil {
			t.Fatalf("series --json line %q: %v", l, err)
		}
		if (r.Rule == 0) != (r.EventName == name) {
			t.Errorf("series %s/%s: rule %d; the muting rule is for %s only", r.EventSource, r.EventName, r.Rule, name)
		}
		if r.Rule == 0 {
			ruled++
		}
		if r.Mean > prev {
			t.Errorf("series not busiest first: %v after %v", r.Mean, prev)
		}
		prev = r.Mean
	}
	if len(lines) != len(entries) || ruled == 0 {
		t.Errorf("series --json: %d rows (%d under the rule), the model has %d series", len(lines), ruled, len(entries))
	}
	stdout, e, code = ts(t, nil, "series", model, "--config", cfg, "--event-name", name, "--top", "1")
	if code != 0 || !strings.Contains(stdout, "SERIES") || !strings.Contains(stdout, "#0 mute all") ||
		!strings.Contains(stdout, fmt.Sprintf("1 of %d series shown (%d match the filter, %d of them under a rule)", len(entries), ruled, ruled)) {
		t.Errorf("series --event-name %s: exit %d\n%s%s", name, code, stdout, e)
	}
	if _, e, code := ts(t, nil, "series", model, "--event-name", "Put["); code == 0 || !strings.Contains(e, "syntax error in pattern") {
		t.Errorf("series with a bad pattern: exit %d, %s", code, e)
	}

	warm := filepath.Join(dir, "warm")
	if _, e, code := ts(t, nil, "--log-level", "warn", "detect", "--in", arch, "--from", "2026-03-10", "--model", model, "--out", warm); code != 0 {
		t.Fatalf("detect --model exit %d: %s", code, e)
	}
	if wi, _, err := detector.ReadInsights(warm); err != nil || len(wi) == 0 {
		t.Errorf("warm detect over the last 2 days wrote %d insight events (%v), want some", len(wi), err)
	}
	if _, e, code := ts(t, nil, "detect", "--in", arch, "--model", filepath.Join(arch, "labels.json")); code == 0 || !strings.Contains(e, "--model") {
		t.Errorf("detect --model with a non-model file: exit %d, %s", code, e)
	}

	stdout, e, code = ts(t, nil, "eval", "--labels", filepath.Join(arch, "labels.json"), out)
	if code != 0 {
		t.Fatalf("eval exit %d: %s", code, e)
	}
	lines = strings.Split(strings.TrimSpace(stdout), "\n")
	if last := lines[len(lines)-1]; !regexp.MustCompile(`^F1=[0-9.]+ precision=[0-9.]+ recall=[0-9.]+$`).MatchString(last) {
		t.Errorf("eval last line = %q", last)
	}
	t.Logf("eval:\n%s", stdout)
}

// TestBadInput: every kind of bad file is reported with its path and
// reason, counted, and skipped; the run goes on and exits 0.
func TestBadInput(t *testing.T) {
	dir := t.TempDir()
	good := `{"Records":[{"eventVersion":"1.08","eventTime":"2026-03-02T10:00:00Z","eventSource":"ec2.amazonaws.com","eventName":"RunInstances","awsRegion":"us-east-1","eventID":"e1","eventType":"AwsApiCall","readOnly":false,"managementEvent":true,"eventCategory":"Management","recipientAccountId":"111122223333"},
{"eventVersion":"1.08","eventSource":"ec2.amazonaws.com","eventName":"RunInstances","awsRegion":"us-east-1","eventID":"e2","recipientAccountId":"111122223333"}]}`
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte(good))
	zw.Close()
	files := map[string][]byte{
		"a-good.json":           []byte(good), // one record lacks eventTime
		"b-truncated.json.gz":   gz.Bytes()[:gz.Len()/2],
		"c-syntax.json":         []byte(`{"Records":[{"eventTime":"2026-03-02T10:00:00Z",}]}`),
		"d-not-cloudtrail.json": []byte(`{"awsAccountId":"111122223333","digestStartTime":"2026-03-02T10:00:00Z","logFiles":[]}`),
		"e-junk.gz":             {0x1f, 0x8b, 0x08, 0, 1, 2, 3},
		"f-empty.json":          {},
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	sum := filepath.Join(t.TempDir(), "s.json")
	_, e, code := ts(t, nil, "--log-format", "json", "detect", "--in", dir, "--out", t.TempDir(), "--summary-json", sum)
	if code != 0 {
		t.Fatalf("detect exit %d on bad input, want 0:\n%s", code, e)
	}
	var s summary
	b, _ := os.ReadFile(sum)
	json.Unmarshal(b, &s)
	if s.Events != 1 || s.BadRecords != 1 {
		t.Errorf("events %d, bad records %d; want 1 and 1", s.Events, s.BadRecords)
	}
	if s.BadFiles < 4 {
		t.Errorf("bad files = %d, want at least 4 (truncated, syntax, not CloudTrail, junk): %+v", s.BadFiles, s.Bad)
	}
	for _, name := range []string{"a-good.json", "b-truncated.json.gz", "c-syntax.json", "d-not-cloudtrail.json", "e-junk.gz"} {
		if !strings.Contains(e, name) {
			t.Errorf("%s is not named in the log and summary:\n%s", name, e)
		}
	}
}

func TestStdinToStdout(t *testing.T) {
	in := []byte(`{"eventVersion":"1.08","eventTime":"2026-03-02T10:00:00Z","eventSource":"iam.amazonaws.com","eventName":"CreateUser","awsRegion":"us-east-1","eventID":"x1","eventType":"AwsApiCall","readOnly":false,"recipientAccountId":"111122223333"}
{"version":"0","id":"1","detail-type":"AWS API Call via CloudTrail","source":"aws.iam","account":"111122223333","time":"2026-03-02T10:00:05Z","region":"us-east-1","resources":[],"detail":{"eventVersion":"1.08","eventTime":"2026-03-02T10:00:05Z","eventSource":"iam.amazonaws.com","eventName":"CreateUser","awsRegion":"us-east-1","eventID":"x2","eventType":"AwsApiCall","readOnly":false,"recipientAccountId":"111122223333"}}
`)
	out, e, code := ts(t, in, "--log-level", "warn", "detect", "--in", "-", "--out", "-")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, e)
	}
	if out != "" {
		t.Errorf("two events raised insights: %s", out)
	}
	if !strings.Contains(e, "2 decoded") {
		t.Errorf("summary does not count the 2 events:\n%s", e)
	}
}

func TestErrorsExitNonZero(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "bad.toml")
	os.WriteFile(cfg, []byte("[detector]\nthreshhold = 3\n"), 0o644)
	blocker := filepath.Join(dir, "file")
	os.WriteFile(blocker, []byte("x"), 0o644)
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"missing input", []string{"detect", "--in", filepath.Join(dir, "nope")}, "no such file"},
		{"unknown config key", []string{"detect", "--in", dir, "--config", cfg}, "detector.threshhold"},
		{"bad time", []string{"detect", "--in", dir, "--from", "yesterday"}, "--from"},
		{"output not writable", []string{"detect", "--in", "../../../shared/datasets/cloudtrail-samples/awsdocs-s3-user-guide", "--out", filepath.Join(blocker, "sub")}, "--out"},
		{"unsupported output", []string{"detect", "--in", dir, "--out", "ftp://host/x"}, "not a destination"},
		{"bad NATS URL", []string{"detect", "--in", dir, "--out", "nats://127.0.0.1:1/S?bogus=1"}, "bogus"},
		{"webhook without secret", []string{"detect", "--in", dir, "--out", "webhook=http://127.0.0.1:1/x"}, "TRAILSIGHT_WEBHOOK_SECRET"},
		{"unknown flag", []string{"detect", "--in", dir, "--bogus"}, "unknown flag"},
	}
	for _, tc := range tests {
		_, e, code := ts(t, nil, tc.args...)
		if code == 0 || !strings.Contains(e, tc.want) {
			t.Errorf("%s: exit %d, stderr %q; want non-zero and %q", tc.name, code, e, tc.want)
		}
	}
}

func TestHelpTeaches(t *testing.T) {
	for _, cmd := range []string{"detect", "baseline", "demo", "gen", "eval", "nab", "bench", "series"} {
		out, _, code := ts(t, nil, cmd, "--help")
		if code != 0 || !strings.Contains(out, "Usage: trailsight "+cmd) || len(out) < 400 {
			t.Errorf("%s --help: exit %d, %d bytes", cmd, code, len(out))
		}
	}
}

func TestNAB(t *testing.T) {
	const data = "../../../shared/datasets/nab"
	if _, e, code := ts(t, nil, "nab", "--data", data, "--published", "ARTime"); code == 0 || !strings.Contains(e, "add --detail") {
		t.Errorf("nab --published without --detail: exit %d, %s", code, e)
	}
	out, e, code := ts(t, nil, "nab", "--data", data, "--detail", "--published", "ARTime")
	if code != 0 {
		t.Fatalf("nab exit %d: %s", code, e)
	}
	// The table, then per file its windows and what each alarm or miss
	// adds, then ARTime's alarms on the same file: on nyc_taxi, its first
	// hit is the marathon weekend's Saturday 05:00.
	for _, want := range []string{"ARTime", "82.62", "trailsight", "nyc_taxi",
		"realTweets/Twitter_volume_UPS.csv  (first row 2015-02-26 21:42)", "window 4  2015-03-29 03:17", "  TP ", "  FP ",
		"  ARTime:\n", "    TP        row  5914  2014-11-01 05:00  day 123.2  window  0  +0.933  value 7758\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("nab table lacks %q:\n%s", want, out)
		}
	}
	t.Logf("\n%s", out)
}
