package configs

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestExampleIsDefault(t *testing.T) {
	c, err := Load("trailsight.example.toml")
	if err != nil {
		t.Fatal(err)
	}
	d := Default()
	if c.DetectorConfig().Lateness != d.DetectorConfig().Lateness || c.Detector.Threshold != d.Detector.Threshold ||
		c.Input.DedupeWindow != d.Input.DedupeWindow || len(c.Detector.Windows) != len(d.Detector.Windows) {
		t.Errorf("example file differs from Default():\n%+v\n%+v", c, d)
	}
	if err := Default().Validate(); err != nil {
		t.Errorf("Default().Validate() = %v", err)
	}
}

func TestGood(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.good.toml")
	if len(files) == 0 {
		t.Fatal("no good fixtures")
	}
	for _, f := range files {
		if _, err := Load(f); err != nil {
			t.Errorf("Load(%s) = %v", f, err)
		}
	}
	c, _ := Load("testdata/minimal.good.toml")
	if c.Detector.Threshold != 6.5 || !c.Output.StrictAWS || c.Detector.Lateness.Duration != 15*time.Minute {
		t.Errorf("minimal.good.toml decoded to %+v", c)
	}
	if b := c.Detector.FalseAlarmBudget; math.Abs(b-math.Sqrt(10)) > 1e-9 {
		t.Errorf("threshold 6.5: false_alarm_budget %v, want √10 (derived back)", b)
	}
	c, _ = Load("testdata/budget.good.toml")
	if d := c.DetectorConfig(); d.Threshold != 6 {
		t.Errorf("false_alarm_budget 10: threshold %v, want 6", d.Threshold)
	}
	c, _ = Load("testdata/rules.good.toml")
	rules := c.DetectorConfig().Rules
	if len(rules) != 3 || rules[0].EventName != "CreateTags" || len(rules[0].Mute) != 1 ||
		rules[1].Threshold != 6 || rules[1].MinRatio != 2 || rules[2].Threshold != 10 || rules[2].Account != "9999*" {
		t.Errorf("rules.good.toml decoded to %+v", rules)
	}
	if d := c.DetectorConfig(); d.Threshold != 7 {
		t.Errorf("rules.good.toml: the [detector] threshold became %v, want 7 (rules override per series only)", d.Threshold)
	}
}

func TestBad(t *testing.T) {
	bad := []struct{ file, want string }{
		{"lateness_negative.bad.toml", "detector.lateness"},
		{"dedupe_short.bad.toml", "input.dedupe_window"},
		{"unknown_key.bad.toml", "notify.slak"},
		{"windows_zero.bad.toml", "detector.windows"},
		{"log_level.bad.toml", "log.level"},
		{"syntax.bad.toml", "line 2, column 10"},
		{"lateness_word.bad.toml", "lateness"},
		{"notify_s3_url.bad.toml", "notify.s3[0].url"},
		{"notify_slack_both.bad.toml", "notify.slack[0]"},
		{"run_source.bad.toml", "run.source"},
		{"run_source_s3.bad.toml", "run.source"},
		{"run_from.bad.toml", "run.from"},
		{"run_poll_window.bad.toml", "run.poll_window"},
		{"run_poll_interval.bad.toml", "run.poll_interval"},
		{"budget_and_threshold.bad.toml", "false_alarm_budget or threshold, not both"},
		{"budget_zero.bad.toml", "detector.false_alarm_budget 0"},
		{"rules_budget_and_threshold.bad.toml", "detector.rules[0]: set false_alarm_budget or threshold, not both"},
		{"rules_mute_kind.bad.toml", `detector.rules[0]: mute "gaps": want burst, gap, drop or all`},
		{"rules_pattern.bad.toml", `detector.rules[0]: event_name "Put["`},
		{"rules_empty.bad.toml", "detector.rules[0]: sets nothing"},
		{"rules_unknown_key.bad.toml", "detector.rules.eventName"},
	}
	files, _ := filepath.Glob("testdata/*.bad.toml")
	if len(files) != len(bad) {
		t.Errorf("%d bad fixtures, %d in the table", len(files), len(bad))
	}
	for _, tc := range bad {
		_, err := Load(filepath.Join("testdata", tc.file))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Load(%s) = %v, want an error naming %q", tc.file, err, tc.want)
		}
	}
}

// TestSourceKind: each way of writing run.source has its kind, and the
// fixtures decode to what they say.
func TestSourceKind(t *testing.T) {
	for _, tc := range []struct{ source, kind, path string }{
		{"embedded", SourceNATS, ""},
		{"nats://127.0.0.1:4222/CLOUDTRAIL", SourceNATS, ""},
		{"tls://nats.example.com:4222/CT", SourceNATS, ""},
		{"s3://trail/org", SourceS3, ""},
		{"-", SourceStdin, ""},
		{"/var/log/ct", SourceFolder, "/var/log/ct"},
		{"logs", SourceFolder, "logs"},
		{"file:///var/log/ct", SourceFolder, "/var/log/ct"},
		{"file://", SourceFolder, ""},
		{"http://x/y", "", ""},
		{"", "", ""},
	} {
		kind, path := Run{Source: tc.source}.SourceKind()
		if kind != tc.kind || path != tc.path {
			t.Errorf("SourceKind(%q) = %q, %q, want %q, %q", tc.source, kind, path, tc.kind, tc.path)
		}
	}
	c, err := Load("testdata/run_folder.good.toml")
	if err != nil {
		t.Fatal(err)
	}
	from, err := c.Run.FromTime()
	if want := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC); err != nil || !from.Equal(want) ||
		c.Run.PollInterval.Duration != 30*time.Second || c.Run.PollWindow.Duration != 2*time.Hour {
		t.Errorf("run_folder.good.toml: from %v (%v), interval %v, window %v", from, err, c.Run.PollInterval, c.Run.PollWindow)
	}
	c, _ = Load("testdata/run_s3.good.toml")
	if from, err := c.Run.FromTime(); err != nil || !from.Equal(time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)) {
		t.Errorf("run_s3.good.toml: from %v (%v)", from, err)
	}
	if d := Default().Run; d.PollInterval.Duration != time.Minute || d.PollWindow.Duration != time.Hour || d.From != "" {
		t.Errorf("Default().Run = %+v", d)
	}
}

func TestMissingFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "nope.toml"))
	if !os.IsNotExist(unwrapAll(err)) {
		t.Errorf("Load(missing) = %v, want not-exist", err)
	}
}

func unwrapAll(err error) error {
	for {
		u, ok := err.(interface{ Unwrap() error })
		if !ok {
			return err
		}
		err = u.Unwrap()
	}
}

func TestNotifyOuts(t *testing.T) {
	t.Setenv("TS_TEST_SLACK", "https://hooks.slack.com/services/T/B/x")
	c, err := Load("testdata/notify.good.toml")
	if err != nil {
		t.Fatal(err)
	}
	outs, err := c.Notify.Outs()
	if err != nil {
		t.Fatal(err)
	}
	want := []Out{{Spec: "out"}, {Spec: "s3://b/p", KMSKeyID: "alias/k"}, {Spec: "nats://127.0.0.1:4222/S"},
		{Spec: "slack=https://hooks.slack.com/services/T/B/x"}}
	if len(outs) != len(want) {
		t.Fatalf("Outs() = %+v, want %+v", outs, want)
	}
	for i := range want {
		if outs[i] != want[i] {
			t.Errorf("Outs()[%d] = %+v, want %+v", i, outs[i], want[i])
		}
	}
	t.Setenv("TS_TEST_SLACK", "")
	if _, err := c.Notify.Outs(); err == nil || !strings.Contains(err.Error(), "notify.slack[0].url_env") {
		t.Errorf("Outs() with the variable unset = %v", err)
	}
}

// TestRunPartitions: run.partitions, run.partition, run.state_store and
// run.lease_ttl; each bad value's error names its key.
func TestRunPartitions(t *testing.T) {
	for _, tc := range []struct {
		name, toml string
		want       string // "" for valid; else a part of the error
		partition  int
		auto       bool
		store      string
	}{
		{name: "default", toml: ``, store: StateFile, auto: true},
		{name: "one partition is none", toml: "partitions = 1", store: StateFile, auto: true},
		{name: "partitioned auto", toml: "partitions = 4", store: StateNATS, auto: true},
		{name: "partitioned auto string", toml: "partitions = 4\npartition = \"auto\"", store: StateNATS, auto: true},
		{name: "partitioned index", toml: "partitions = 4\npartition = 3", store: StateNATS, partition: 3},
		{name: "partitioned index string", toml: "partitions = 4\npartition = \"2\"", store: StateNATS, partition: 2},
		{name: "unpartitioned nats state", toml: "state_store = \"nats\"", store: StateNATS, auto: true},
		{name: "external", toml: "source = \"nats://127.0.0.1:4222/EV?durable=x\"\npartitions = 2\npartition = 1\nlease_ttl = \"5s\"", store: StateNATS, partition: 1},
		{name: "negative", toml: "partitions = -1", want: "run.partitions -1: want 0"},
		{name: "too many", toml: "partitions = 5000", want: "run.partitions 5000"},
		{name: "not nats", toml: "source = \"/data\"\npartitions = 2", want: "run.partitions 2: partitions are for a NATS source"},
		{name: "index out of range", toml: "partitions = 2\npartition = 2", want: "run.partition 2: want 0 to 1"},
		{name: "negative index", toml: "partitions = 2\npartition = -1", want: "run.partition \"-1\""},
		{name: "word", toml: "partitions = 2\npartition = \"first\"", want: "run.partition \"first\""},
		{name: "float", toml: "partitions = 2\npartition = 1.5", want: "run.partition 1.5"},
		{name: "partition alone", toml: "partition = 1", want: "run.partition 1: set run.partitions too"},
		{name: "file store partitioned", toml: "partitions = 2\nstate_store = \"file\"", want: "run.state_store \"file\": partitions keep their state in NATS"},
		{name: "unknown store", toml: "state_store = \"redis\"", want: "run.state_store \"redis\""},
		{name: "nats store, folder source", toml: "source = \"/data\"\nstate_store = \"nats\"", want: "run.state_store \"nats\": needs a NATS source"},
		{name: "lease too short", toml: "partitions = 2\nlease_ttl = \"100ms\"", want: "run.lease_ttl 100ms"},
		{name: "filter", toml: "source = \"nats://h:4222/EV?filter=a.b\"\npartitions = 2", want: "run.source: filter=a.b cannot be combined with run.partitions"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse("[run]\n" + tc.toml + "\n")
			if tc.want != "" {
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Errorf("Parse(%q) = %v, want an error with %q", tc.toml, err, tc.want)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse(%q) = %v", tc.toml, err)
			}
			k, auto, _ := c.Run.Partition.Index()
			if got := c.Run.StateStoreKind(); got != tc.store || k != tc.partition || auto != tc.auto {
				t.Errorf("Parse(%q): store %s, partition %d, auto %v; want %s, %d, %v", tc.toml, got, k, auto, tc.store, tc.partition, tc.auto)
			}
		})
	}
}
