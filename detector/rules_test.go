package detector

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/trailsight/trailsight/baseline"
	"github.com/trailsight/trailsight/stream"
)

func TestRuleMatches(t *testing.T) {
	calls := baseline.Key{Account: "111122223333", Region: "eu-west-1", Source: "s3.amazonaws.com", Name: "PutBucketPolicy", Measure: baseline.Calls}
	errs := baseline.Key{Account: "111122223333", Region: "eu-west-1", Source: "ec2.amazonaws.com", Name: "RunInstances", Measure: baseline.Errors, ErrorCode: "Client.RequestLimitExceeded"}
	tests := []struct {
		name string
		rule Rule
		key  baseline.Key
		want bool
	}{
		{"no pattern matches everything", Rule{}, calls, true},
		{"exact account", Rule{Account: "111122223333"}, calls, true},
		{"other account", Rule{Account: "444455556666"}, calls, false},
		{"event name prefix", Rule{EventName: "PutBucket*"}, calls, true},
		{"region class", Rule{Region: "eu-*-[0-9]"}, calls, true},
		{"all patterns must match", Rule{EventSource: "s3.amazonaws.com", EventName: "Delete*"}, calls, false},
		{"insight type: calls", Rule{InsightType: "ApiCallRateInsight"}, calls, true},
		{"insight type: errors only", Rule{InsightType: "ApiErrorRateInsight"}, calls, false},
		{"error code on an error series", Rule{ErrorCode: "*RequestLimitExceeded"}, errs, true},
		{"\"*\" matches the empty error code of a call-rate series", Rule{ErrorCode: "*"}, calls, true},
		{"a non-empty error code pattern needs one", Rule{ErrorCode: "?*"}, calls, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.rule.Matches(tc.key); got != tc.want {
				t.Errorf("%+v matches %s = %v, want %v", tc.rule, tc.key, got, tc.want)
			}
		})
	}
}

func TestRuleValidate(t *testing.T) {
	tests := []struct {
		name string
		rule Rule
		want []string // each must appear in the error; none: valid
	}{
		{"mute", Rule{EventName: "Put*", Mute: []string{"gap", "drop"}}, nil},
		{"threshold override", Rule{Account: "1*", Threshold: 9}, nil},
		{"sets nothing", Rule{EventName: "Put*"}, []string{"rules[0]: sets nothing"}},
		{"bad pattern", Rule{EventName: "Put[", Mute: []string{"all"}}, []string{"rules[0]: event_name \"Put[\": syntax error in pattern"}},
		{"unknown kind", Rule{Mute: []string{"bursts"}}, []string{"rules[0]: mute \"bursts\": want burst, gap, drop or all"}},
		{"insight type typo", Rule{InsightType: "ApiCallInsight", Mute: []string{"all"}}, []string{"insight_type \"ApiCallInsight\": matches neither ApiCallRateInsight nor ApiErrorRateInsight"}},
		{"bad overrides", Rule{Threshold: -1, MinCount: -2, MinRatio: 0.5, GapFactor: 0.9}, []string{"threshold -1", "min_count -2", "min_ratio 0.5", "gap_factor 0.9"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.Rules = []Rule{tc.rule}
			err := cfg.Validate()
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate: nil, want %q", tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Validate: %v\nwant it to say %q", err, w)
				}
			}
		})
	}
}

// ruleTraffic: two series of the same account, each 2 calls a minute with a
// 20-a-minute burst on day 2 from 10:00 to 10:20.
func ruleTraffic() []stream.Event {
	burst := func(i int) float64 {
		if i >= minute(2, 10, 0) && i < minute(2, 10, 20) {
			return 20
		}
		return 2
	}
	return synth(3, 7, traffic{name: "RunInstances", rate: burst}, traffic{name: "CreateTags", rate: burst})
}

func startsOf(ins []Insight) []string {
	var out []string
	for _, in := range ins {
		if in.State == Start {
			out = append(out, in.EventName)
		}
	}
	return out
}

func runWith(t *testing.T, cfg Config, evs []stream.Event) ([]Insight, *Detector) {
	t.Helper()
	d, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var out []Insight
	for i := range evs {
		d.Add(&evs[i])
	}
	out = append(out, d.Advance()...)
	out = append(out, d.Flush()...)
	return out, d
}

func TestRules(t *testing.T) {
	evs := ruleTraffic()
	tests := []struct {
		name      string
		rules     []Rule
		want      []string // Starts' event names
		wantMuted int64
	}{
		{"no rule: both bursts", nil, []string{"CreateTags", "RunInstances"}, 0},
		{"muted bursts are detected, counted, not emitted", []Rule{{EventName: "Run*", Mute: []string{"burst"}}}, []string{"CreateTags"}, 1},
		{"muting gaps leaves bursts", []Rule{{EventName: "Run*", Mute: []string{"gap", "drop"}}}, []string{"CreateTags", "RunInstances"}, 0},
		{"a higher threshold for one series", []Rule{{EventName: "CreateTags", Threshold: 200}}, []string{"RunInstances"}, 0},
		{"a higher min_ratio for one series", []Rule{{EventName: "CreateTags", MinRatio: 50}}, []string{"RunInstances"}, 0},
		{"the first matching rule wins", []Rule{{EventName: "CreateTags", Threshold: 7.5}, {Mute: []string{"all"}}}, []string{"CreateTags"}, 1},
		{"another account's rule applies to nothing", []Rule{{Account: "999999999999", Mute: []string{"all"}}}, []string{"CreateTags", "RunInstances"}, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.Rules = tc.rules
			out, d := runWith(t, cfg, evs)
			got := startsOf(out)
			if strings.Join(got, " ") != strings.Join(tc.want, " ") {
				t.Errorf("Starts %v, want %v", got, tc.want)
			}
			if n := len(out); n != 2*len(got) {
				t.Errorf("%d insights for %d Starts: every End must have its Start", n, len(got))
			}
			if m := d.Stats().Muted; m != tc.wantMuted {
				t.Errorf("Stats().Muted = %d, want %d", m, tc.wantMuted)
			}
		})
	}
}

// TestRulesMutedAcrossRestart: an insight open and muted when the state is
// saved stays muted after a restore (no End without a Start), and the
// count of muted insights survives.
func TestRulesMutedAcrossRestart(t *testing.T) {
	evs := ruleTraffic()
	cfg := DefaultConfig()
	cfg.Rules = []Rule{{EventName: "Run*", Mute: []string{"burst"}}}
	cut := 0
	for cut < len(evs) && evs[cut].Time.Before(t0.Add(time.Duration(minute(2, 10, 12))*time.Minute)) {
		cut++
	}
	d, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var out []Insight
	for i := range evs[:cut] {
		d.Add(&evs[i])
	}
	out = append(out, d.Advance()...)
	if d.Stats().Muted != 1 || d.Stats().Open != 2 {
		t.Fatalf("before the cut: %d muted, %d open; want 1 and 2 (both bursts still open)", d.Stats().Muted, d.Stats().Open)
	}
	var buf bytes.Buffer
	if err := d.SaveState(&buf); err != nil {
		t.Fatal(err)
	}
	r, err := RestoreState(cfg, &buf)
	if err != nil {
		t.Fatal(err)
	}
	for i := range evs[cut:] {
		r.Add(&evs[cut+i])
	}
	out = append(out, r.Advance()...)
	out = append(out, r.Flush()...)
	if got := startsOf(out); strings.Join(got, " ") != "CreateTags" || len(out) != 2 {
		t.Errorf("insights %d, Starts %v; want CreateTags's Start and End only", len(out), got)
	}
	if m := r.Stats().Muted; m != 1 {
		t.Errorf("restored Stats().Muted = %d, want 1", m)
	}
}

// TestRulesConfigChange: rules are decisions, not state: a state saved
// without them is restored with them, and says so.
func TestRulesConfigChange(t *testing.T) {
	d, err := New(DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	evs := ruleTraffic()[:1000]
	for i := range evs {
		d.Add(&evs[i])
	}
	var buf bytes.Buffer
	if err := d.SaveState(&buf); err != nil {
		t.Fatal(err)
	}
	saved := buf.Bytes()
	r, err := RestoreState(DefaultConfig(), bytes.NewReader(saved))
	if err != nil || r.ConfigChanges() != "" {
		t.Fatalf("same config: err %v, changes %q", err, r.ConfigChanges())
	}
	cfg := DefaultConfig()
	cfg.Rules = []Rule{{EventName: "Run*", Mute: []string{"gap"}}}
	r, err = RestoreState(cfg, bytes.NewReader(saved))
	if err != nil {
		t.Fatal(err)
	}
	if ch := r.ConfigChanges(); !strings.Contains(ch, "Rules is new") {
		t.Errorf("ConfigChanges() = %q, want it to name Rules", ch)
	}
	if p := r.series[r.ids[baseline.Key{Account: "111122223333", Region: "us-east-1", Source: "ec2.amazonaws.com", Name: "RunInstances", Measure: baseline.Calls}]].p; p.mute != muteGap {
		t.Errorf("restored RunInstances series: mute bits %b, want the rule's (gap)", p.mute)
	}
}
