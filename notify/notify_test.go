package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/klauspost/compress/gzip"

	"github.com/trailsight/trailsight/detector"
	"github.com/trailsight/trailsight/internal/s3test"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

const samplesDir = "../../shared/datasets/cloudtrail-samples"

// fixture returns a small fixed set of insights: a call-rate insight
// (Start 01:42, End 01:50) with an explanation and an error-rate insight
// (Start 01:42, End 01:44) in one account and region, and a call-rate Start
// in another region.
func fixture() []detector.Insight {
	at := func(hhmm string) time.Time {
		t, err := time.Parse("2006-01-02 15:04", "2024-07-10 "+hhmm)
		if err != nil {
			panic(err)
		}
		return t
	}
	mk := func(account, region, source, name string, typ detector.InsightType, code string, start, end time.Time, base, first, mean float64) []detector.Insight {
		shared := detector.SharedEventID(account, region, source, name, typ, code, start)
		s := detector.Insight{
			EventVersion: "1.08", Time: start, Region: region, Account: account,
			EventID: detector.EventID(shared, detector.Start), SharedEventID: shared,
			State: detector.Start, EventSource: source, EventName: name, Type: typ, ErrorCode: code, Category: "Management",
			Stats: detector.Statistics{BaselineAverage: base, InsightAverage: first, InsightDuration: int(end.Sub(start).Minutes()), BaselineDuration: 10080},
			Attributions: []detector.Attribution{
				{Attribute: "userIdentityArn", Insight: []detector.AttrValue{{Value: "arn:aws:sts::" + account + ":assumed-role/Deploy/ci", Average: first}},
					Baseline: []detector.AttrValue{{Value: "arn:aws:sts::" + account + ":assumed-role/Deploy/ci", Average: base}}},
				{Attribute: "userAgent", Insight: []detector.AttrValue{{Value: "aws-cli/2.15.0", Average: first}}},
			},
		}
		e := s
		e.State, e.EventID, e.Time = detector.End, detector.EventID(shared, detector.End), end
		e.Stats.InsightAverage = mean
		return []detector.Insight{s, e}
	}
	out := mk("123456789012", "us-east-1", "autoscaling.amazonaws.com", "CompleteLifecycleAction", detector.ApiCallRate, "",
		at("01:42"), at("01:50"), 0.0000982222, 5, 2.375)
	for i := range out {
		out[i].Explanation = &detector.Explanation{Kind: "burst", Direction: "above", Observed: 5, Expected: 0.01,
			BandHigh: 1, Score: 9.5, WindowMinutes: 1, Slot: "weekday 01:00"}
	}
	out = append(out, mk("123456789012", "us-east-1", "iam.amazonaws.com", "GetRolePolicy", detector.ApiErrorRate, "NoSuchEntityException",
		at("01:42"), at("01:44"), 0.2, 30, 21)...)
	out = append(out, mk("123456789012", "eu-west-1", "ec2.amazonaws.com", "RunInstances", detector.ApiCallRate, "",
		at("01:42"), at("01:47"), 0.5, 40, 12)[:1]...)
	return out
}

func checkGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if d := cmp.Diff(string(want), string(got)); d != "" {
		t.Errorf("%s (-want +got):\n%s", path, d)
	}
}

// tree returns every regular file under dir, keyed by slash path, with its
// raw bytes.
func tree(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		out[filepath.ToSlash(rel)] = b
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func gunzip(t *testing.T, b []byte) []byte {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	out, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// dump renders a folder for golden files: each key, then its gunzipped body.
func dump(t *testing.T, files map[string][]byte) []byte {
	t.Helper()
	keys := make([]string, 0, len(files))
	for k := range files {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b bytes.Buffer
	for _, k := range keys {
		b.WriteString("== " + k + "\n")
		b.Write(gunzip(t, files[k]))
		b.WriteString("\n")
	}
	return b.Bytes()
}

func writeFolder(t *testing.T, dir string, opt FolderOptions, ins []detector.Insight) *Folder {
	t.Helper()
	f, err := NewFolder(dir, opt)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Notify(context.Background(), ins); err != nil {
		t.Fatalf("Notify: %v", err)
	}
	if err := f.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	return f
}

func TestFolderGolden(t *testing.T) {
	for _, c := range []struct {
		golden string
		opt    FolderOptions
	}{
		{"folder.golden", FolderOptions{}},
		{"folder-strict-org.golden", FolderOptions{StrictAWS: true, Prefix: "trail/prefix", OrgID: "o-fxozgwu6rc"}},
	} {
		t.Run(c.golden, func(t *testing.T) {
			dir := t.TempDir()
			f := writeFolder(t, dir, c.opt, fixture())
			files := tree(t, dir)
			got := dump(t, files)
			checkGolden(t, c.golden, got)
			keys := f.Keys()
			sort.Strings(keys)
			if d := cmp.Diff(slices.Sorted(mapKeys(files)), keys); d != "" {
				t.Errorf("Keys() vs files on disk (-disk +Keys):\n%s", d)
			}
			if n, ev := f.Written(); n != len(files) || ev != len(fixture()) {
				t.Errorf("Written() = %d files, %d events; want %d, %d", n, ev, len(files), len(fixture()))
			}
			if c.opt.StrictAWS && bytes.Contains(got, []byte("explanation")) {
				t.Error("StrictAWS: files hold an explanation")
			}
		})
	}
}

func mapKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// TestFolderRerun: the same insights, in any order, sent once or twice,
// give the same keys and the same bytes.
func TestFolderRerun(t *testing.T) {
	ins := fixture()
	a := tree(t, func() string { d := t.TempDir(); writeFolder(t, d, FolderOptions{}, ins); return d }())

	rev := slices.Clone(ins)
	slices.Reverse(rev)
	dir := t.TempDir()
	f, err := NewFolder(dir, FolderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := f.Notify(context.Background(), append(rev, rev[0])); err != nil { // with a duplicate too
			t.Fatal(err)
		}
	}
	b := tree(t, dir)
	if d := cmp.Diff(a, b); d != "" {
		t.Errorf("re-run differs (-first +second):\n%s", d)
	}
	if n, _ := f.Written(); n != 2*len(b) || len(f.Keys()) != len(b) {
		t.Errorf("Written() files = %d, Keys() = %d; want %d, %d", n, len(f.Keys()), 2*len(b), len(b))
	}
}

// TestFolderStartEndSplit: a Start and its End at different minutes land in
// different files, each named by its own minute.
func TestFolderStartEndSplit(t *testing.T) {
	ins := fixture()[:2] // call-rate Start 01:42, End 01:50
	dir := t.TempDir()
	f := writeFolder(t, dir, FolderOptions{}, ins)
	keys := f.Keys()
	sort.Strings(keys)
	if len(keys) != 2 || !strings.Contains(keys[0], "_20240710T0142Z_") || !strings.Contains(keys[1], "_20240710T0150Z_") {
		t.Fatalf("keys = %q, want one file at 0142 and one at 0150", keys)
	}
	for i, k := range keys {
		got, _, err := detector.ReadInsights(filepath.Join(dir, filepath.FromSlash(k)))
		if err != nil || len(got) != 1 || got[0].EventID != ins[i].EventID {
			t.Errorf("detector.ReadInsights(%s) = %d insights, %v; want only %s", k, len(got), err, ins[i].State)
		}
	}
}

// insightKey is the pattern of a real CloudTrail-Insight key, generalised
// from the one in s3-keys-observed.txt: bucket and prefix, AWSLogs, an
// optional organisation ID, account, region, date, file name.
var insightKey = regexp.MustCompile(`^(?:.+/)?AWSLogs/(?:o-[a-z0-9]+/)?([0-9]{12})/CloudTrail-Insight/([a-z0-9-]+)/([0-9]{4})/([0-9]{2})/([0-9]{2})/` +
	`([0-9]{12})_CloudTrail-Insight_([a-z0-9-]+)_([0-9]{4})([0-9]{2})([0-9]{2})T[0-9]{4}Z_[A-Za-z0-9]{16}\.json\.gz$`)

func checkInsightKey(t *testing.T, key string) {
	t.Helper()
	m := insightKey.FindStringSubmatch(key)
	if m == nil {
		t.Errorf("key %q does not match the CloudTrail-Insight pattern", key)
		return
	}
	// account, region and date are each written twice; they must agree.
	if m[1] != m[6] || m[2] != m[7] || m[3] != m[8] || m[4] != m[9] || m[5] != m[10] {
		t.Errorf("key %q: folder and file name disagree: %q", key, m[1:])
	}
}

func TestFolderKeyPattern(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(samplesDir, "s3-keys-observed.txt"))
	if err != nil {
		t.Fatal(err)
	}
	var real []string
	for _, line := range strings.Split(string(raw), "\n") {
		if !strings.HasPrefix(line, "#") && strings.Contains(line, "/CloudTrail-Insight/") {
			real = append(real, line)
		}
	}
	if len(real) == 0 {
		t.Fatal("no CloudTrail-Insight key in s3-keys-observed.txt")
	}
	for _, k := range real {
		checkInsightKey(t, k)
	}
	for _, opt := range []FolderOptions{{}, {Prefix: "p/q"}, {OrgID: "o-abc123"}} {
		for _, k := range writeFolder(t, t.TempDir(), opt, fixture()).Keys() {
			checkInsightKey(t, k)
		}
	}
}

func TestFolderRejects(t *testing.T) {
	for _, opt := range []FolderOptions{{Prefix: "/abs"}, {Prefix: "../up"}, {Prefix: "a/../../b"}, {OrgID: "O-ABC"}} {
		if _, err := NewFolder(t.TempDir(), opt); err == nil {
			t.Errorf("NewFolder(%+v): no error", opt)
		}
	}
	dir := t.TempDir()
	f, err := NewFolder(filepath.Join(dir, "out"), FolderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	bad := fixture()[:3]
	bad[0].Account = "../../x"
	bad[1].Region = "us-east-1/../../.."
	err = f.Notify(context.Background(), bad)
	if err == nil || !strings.Contains(err.Error(), "cannot be part of a key") {
		t.Errorf("Notify with a bad account: err = %v", err)
	}
	if _, ev := f.Written(); ev != 1 {
		t.Errorf("Written events = %d, want the 1 good insight", ev)
	}
	if _, err := os.Stat(filepath.Join(dir, "x")); err == nil {
		t.Error("wrote outside the folder")
	}
}

func TestJSONLinesGolden(t *testing.T) {
	for _, c := range []struct {
		golden string
		opt    JSONLinesOptions
	}{
		{"jsonlines.golden", JSONLinesOptions{}},
		{"envelope.golden", JSONLinesOptions{Envelope: true}},
		{"envelope-strict.golden", JSONLinesOptions{Envelope: true, StrictAWS: true}},
	} {
		t.Run(c.golden, func(t *testing.T) {
			var buf bytes.Buffer
			j := NewJSONLines(&buf, c.opt)
			if err := j.Notify(context.Background(), fixture()); err != nil {
				t.Fatal(err)
			}
			if err := j.Close(); err != nil {
				t.Fatal(err)
			}
			checkGolden(t, c.golden, buf.Bytes())
			ins, err := detector.ParseInsights(buf.Bytes())
			if err != nil {
				t.Fatalf("ParseInsights of our own output: %v", err)
			}
			want := fixture()
			if c.opt.StrictAWS {
				for i := range want {
					want[i].Explanation = nil
				}
			}
			if d := cmp.Diff(want, ins); d != "" {
				t.Errorf("read back (-want +got):\n%s", d)
			}
		})
	}
}

// TestEnvelopeShape: our envelope has the keys, key order and value types
// of the envelopes in derived/eventbridge-envelopes.jsonl.
func TestEnvelopeShape(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(samplesDir, "derived/eventbridge-envelopes.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	var ref string
	for _, line := range strings.Split(string(raw), "\n") {
		if strings.Contains(line, `"AWS Insight via CloudTrail"`) {
			ref = line
			break
		}
	}
	var buf bytes.Buffer
	if err := NewJSONLines(&buf, JSONLinesOptions{Envelope: true}).Notify(context.Background(), fixture()[:1]); err != nil {
		t.Fatal(err)
	}
	topKeys := func(s string) []string {
		dec := json.NewDecoder(strings.NewReader(s))
		var keys []string
		depth := 0
		expectKey := false
		for {
			tok, err := dec.Token()
			if err != nil {
				return keys
			}
			switch v := tok.(type) {
			case json.Delim:
				if v == '{' || v == '[' {
					depth++
				} else {
					depth--
				}
				expectKey = depth == 1
				continue
			case string:
				if depth == 1 && expectKey {
					keys = append(keys, v)
					expectKey = false
					continue
				}
			}
			expectKey = depth == 1
		}
	}
	if d := cmp.Diff(topKeys(ref), topKeys(buf.String())); d != "" {
		t.Errorf("envelope keys (-derived +ours):\n%s", d)
	}
}

func TestReadInsightsRoundTrip(t *testing.T) {
	dir := t.TempDir()
	writeFolder(t, dir, FolderOptions{Prefix: "x"}, fixture())
	// Siblings AWS writes next to insights, and our temporary files, are skipped.
	for name, body := range map[string]string{
		"x/AWSLogs/123456789012/CloudTrail/us-east-1/2024/07/10/a.json":        `{"Records":[{"eventType":"AwsApiCall"}]}`,
		"x/AWSLogs/123456789012/CloudTrail-Digest/us-east-1/2024/07/10/d.json": `{"awsAccountId":"123456789012"}`,
		"x/AWSLogs/123456789012/CloudTrail-Insight/.trailsight-1.tmp":          `partial`,
		"x/AWSLogs/123456789012/CloudTrail-Insight/README.txt":                 `not json`,
	} {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, errs, err := detector.ReadInsights(dir)
	if err != nil || len(errs) > 0 {
		t.Fatalf("ReadInsights: %v %v", err, errs)
	}
	byID := func(a, b detector.Insight) int { return strings.Compare(a.EventID, b.EventID) }
	want := fixture()
	slices.SortFunc(want, byID)
	slices.SortFunc(got, byID)
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("ReadInsights (-written +read):\n%s", d)
	}
}

func TestReadInsightsErrors(t *testing.T) {
	if _, _, err := detector.ReadInsights(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Error("detector.ReadInsights(missing path): no error")
	}
	dir := t.TempDir()
	writeFolder(t, dir, FolderOptions{}, fixture()[:1])
	if err := os.WriteFile(filepath.Join(dir, "bad.json.gz"), []byte{0x1f, 0x8b, 1, 2, 3}, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "api.jsonl"), []byte(`{"eventType":"AwsApiCall"}`+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	got, errs, err := detector.ReadInsights(dir)
	if err != nil || len(got) != 1 || len(errs) != 2 {
		t.Fatalf("ReadInsights = %d insights, errs %v, err %v; want 1 insight and 2 file errors", len(got), errs, err)
	}
	for _, e := range errs {
		if !strings.Contains(e.Error(), dir) {
			t.Errorf("error %q does not name the file", e)
		}
	}
}

type failing struct{ err error }

func (f failing) Notify(context.Context, []detector.Insight) error { return f.err }
func (f failing) Close() error                                     { return f.err }

func TestMultiErrors(t *testing.T) {
	boom := errors.New("boom")
	var buf bytes.Buffer
	m := NewMulti(Named{"bad", failing{boom}}, Named{"stdout", NewJSONLines(&buf, JSONLinesOptions{})})
	err := m.Notify(context.Background(), fixture())
	if !errors.Is(err, boom) || !strings.Contains(err.Error(), "bad: boom") {
		t.Errorf("Notify = %v, want boom wrapped with the name", err)
	}
	if strings.Count(buf.String(), "\n") != len(fixture()) {
		t.Error("a failing notifier stopped the others")
	}
	if err := m.Close(); !errors.Is(err, boom) || !strings.Contains(err.Error(), "bad: close: boom") {
		t.Errorf("Close = %v", err)
	}
}

// TestConformance runs every notifier through what the Notifier contract
// promises: an idempotent re-send, a cancelled context, no retention of the
// slice, Close flushing, Notify after Close. Future notifiers (S3, NATS,
// chat) add a row with a snapshot of what they delivered.
func TestConformance(t *testing.T) {
	type under struct {
		n Notifier
		// snapshot returns what has been delivered so far, normalised so
		// that a re-send of the same events is expected to leave it equal
		// (JSON lines: the set of distinct lines).
		snapshot func() string
	}
	distinctLines := func(b *bytes.Buffer) func() string {
		return func() string {
			lines := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
			slices.Sort(lines)
			return strings.Join(slices.Compact(lines), "\n")
		}
	}
	folder := func(t *testing.T, opt FolderOptions) under {
		dir := t.TempDir()
		f, err := NewFolder(dir, opt)
		if err != nil {
			t.Fatal(err)
		}
		return under{f, func() string { return string(dump(t, tree(t, dir))) }}
	}
	lines := func(opt JSONLinesOptions) func(*testing.T) under {
		return func(t *testing.T) under {
			var buf bytes.Buffer
			return under{NewJSONLines(&buf, opt), distinctLines(&buf)}
		}
	}
	for _, c := range []struct {
		name string
		new  func(*testing.T) under
	}{
		{"folder", func(t *testing.T) under { return folder(t, FolderOptions{}) }},
		{"folder strict", func(t *testing.T) under { return folder(t, FolderOptions{StrictAWS: true}) }},
		{"s3", func(t *testing.T) under {
			srv := s3test.Start(t)
			srv.CreateBucket("insights")
			n, err := NewS3(context.Background(), S3Options{Bucket: "insights", Client: s3Conn(srv)})
			if err != nil {
				t.Fatal(err)
			}
			return under{n, func() string { return string(dump(t, srv.Objects("insights", ""))) }}
		}},
		{"jsonlines", lines(JSONLinesOptions{})},
		{"jsonlines envelope", lines(JSONLinesOptions{Envelope: true})},
		{"nats jetstream", func(t *testing.T) under { n, snap := natsConformance(t); return under{n, snap} }},
		{"slack", func(t *testing.T) under { n, s := chatUnder(t, 0); return under{n, s} }},
		{"teams", func(t *testing.T) under { n, s := chatUnder(t, 1); return under{n, s} }},
		{"discord", func(t *testing.T) under { n, s := chatUnder(t, 2); return under{n, s} }},
		{"webhook", func(t *testing.T) under { n, s := chatUnder(t, 3); return under{n, s} }},
		{"reliable folder", func(t *testing.T) under {
			f := folder(t, FolderOptions{})
			return under{NewReliable(Named{"folder", f.n}, ReliableOptions{SpoolDir: t.TempDir()}), f.snapshot}
		}},
		{"reliable slack", func(t *testing.T) under {
			n, s := chatUnder(t, 0)
			return under{NewReliable(Named{"slack", n}, ReliableOptions{SpoolDir: t.TempDir()}), s}
		}},
		{"multi", func(t *testing.T) under {
			a, b := folder(t, FolderOptions{}), lines(JSONLinesOptions{})(t)
			return under{NewMulti(Named{"folder", a.n}, Named{"stdout", b.n}),
				func() string { return a.snapshot() + "\n--\n" + b.snapshot() }}
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctx := context.Background()
			t.Run("idempotent re-send", func(t *testing.T) {
				u := c.new(t)
				if err := u.n.Notify(ctx, fixture()); err != nil {
					t.Fatal(err)
				}
				first := u.snapshot()
				if first == "" || first == "\n--\n" {
					t.Fatal("nothing delivered")
				}
				if err := u.n.Notify(ctx, fixture()); err != nil {
					t.Fatal(err)
				}
				if d := cmp.Diff(first, u.snapshot()); d != "" {
					t.Errorf("re-send changed the output (-first +second):\n%s", d)
				}
			})
			t.Run("cancelled context", func(t *testing.T) {
				u := c.new(t)
				cctx, cancel := context.WithCancel(ctx)
				cancel()
				err := u.n.Notify(cctx, fixture())
				if !errors.Is(err, context.Canceled) {
					t.Errorf("Notify(cancelled ctx) = %v, want context.Canceled", err)
				}
				dctx, cancel2 := context.WithDeadline(ctx, time.Unix(0, 0))
				defer cancel2()
				if err := u.n.Notify(dctx, fixture()); !errors.Is(err, context.DeadlineExceeded) {
					t.Errorf("Notify(expired ctx) = %v, want context.DeadlineExceeded", err)
				}
			})
			t.Run("no retention", func(t *testing.T) {
				u := c.new(t)
				ins := fixture()
				if err := u.n.Notify(ctx, ins); err != nil {
					t.Fatal(err)
				}
				before := u.snapshot()
				for i := range ins {
					ins[i].EventName = "Mutated"
					ins[i].Attributions[0].Insight[0].Value = "mutated"
				}
				if err := u.n.Close(); err != nil {
					t.Fatal(err)
				}
				if d := cmp.Diff(before, u.snapshot()); d != "" {
					t.Errorf("output changed after the caller reused its slice (-before +after):\n%s", d)
				}
			})
			t.Run("close flushes", func(t *testing.T) {
				u := c.new(t)
				if err := u.n.Notify(ctx, fixture()); err != nil {
					t.Fatal(err)
				}
				if err := u.n.Close(); err != nil {
					t.Fatalf("Close: %v", err)
				}
				if !strings.Contains(u.snapshot(), fixture()[0].EventID) {
					t.Error("after Close, the events are not all delivered")
				}
				if err := u.n.Notify(ctx, fixture()); !errors.Is(err, ErrClosed) {
					t.Errorf("Notify after Close = %v, want ErrClosed", err)
				}
			})
		})
	}
}
