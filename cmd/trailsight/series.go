package main

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/trailsight/trailsight/baseline"
	"github.com/trailsight/trailsight/configs"
	"github.com/trailsight/trailsight/detector"
)

type seriesCmd struct {
	Model       string `arg:"" help:"Model file written by trailsight baseline." placeholder:"MODEL" type:"existingfile"`
	Config      string `help:"TOML configuration whose [[detector.rules]] are shown beside the series they apply to." type:"existingfile" placeholder:"FILE"`
	Account     string `help:"Only series whose account matches this shell pattern (*, ?, [a-z])." placeholder:"PATTERN"`
	Region      string `help:"Only series whose region matches this pattern." placeholder:"PATTERN"`
	EventSource string `name:"event-source" help:"Only series whose event source matches this pattern." placeholder:"PATTERN"`
	EventName   string `name:"event-name" help:"Only series whose event name matches this pattern." placeholder:"PATTERN"`
	ErrorCode   string `name:"error-code" help:"Only series whose error code matches this pattern." placeholder:"PATTERN"`
	InsightType string `name:"insight-type" help:"Only ApiCallRateInsight or ApiErrorRateInsight series (a pattern)." placeholder:"PATTERN"`
	Top         int    `help:"Only the N busiest series (0: all)." default:"0" placeholder:"N"`
	JSON        bool   `name:"json" help:"One JSON object per series instead of the table."`
}

func (c *seriesCmd) Help() string {
	return `Lists the series a model file knows, busiest first, with what trailsight learned as their normal:
calls per minute on average and in their busiest hour, the rhythm of a periodic job, how noisy they
are, the longest silence seen; and, with --config, which [[detector.rules]] applies to each. Use it to
see what trailsight expects before writing rules, and to check that a rule matches what it should.

Example:
  trailsight baseline --in /data/AWSLogs --model m.tsm
  trailsight series m.tsm --event-source 'ec2.*' --top 20
  trailsight series m.tsm --config trailsight.toml --event-name 'CreateTags'`
}

// seriesRow is one series as `trailsight series` shows it.
type seriesRow struct {
	Account      string  `json:"account"`
	Region       string  `json:"region"`
	EventSource  string  `json:"eventSource"`
	EventName    string  `json:"eventName"`
	ErrorCode    string  `json:"errorCode,omitempty"`
	InsightType  string  `json:"insightType"`
	Hours        uint32  `json:"hoursObserved"`
	Mean         float64 `json:"meanPerMinute"`
	BusiestSlot  string  `json:"busiestSlot"`
	Busiest      float64 `json:"busiestPerMinute"`
	JobPeriod    float64 `json:"jobPeriodMinutes,omitempty"`
	Dispersion   float64 `json:"dispersion"`
	Noise        float64 `json:"noise"`
	LongestQuiet uint32  `json:"longestSilenceMinutes"`
	Rule         int     `json:"rule"` // index in [[detector.rules]], -1 for none
}

func (c *seriesCmd) Run(g *globals) error {
	dc := configs.Default().DetectorConfig()
	if c.Config != "" {
		cfg, err := configs.Load(c.Config)
		if err != nil {
			return err
		}
		dc = cfg.DetectorConfig()
	}
	filter := detector.Rule{Account: c.Account, Region: c.Region, EventSource: c.EventSource, EventName: c.EventName,
		ErrorCode: c.ErrorCode, InsightType: c.InsightType}
	if err := filter.ValidatePatterns(); err != nil {
		return fmt.Errorf("filter: %w", err)
	}
	meta, entries, err := baseline.LoadFile(c.Model)
	if err != nil {
		return fmt.Errorf("--model: %w", err)
	}
	var rows []seriesRow
	for i := range entries {
		if e := &entries[i]; filter.Matches(e.Key) {
			rows = append(rows, newSeriesRow(e, dc.RuleFor(e.Key)))
		}
	}
	slices.SortFunc(rows, func(a, b seriesRow) int {
		return cmp.Or(cmp.Compare(b.Mean, a.Mean), cmp.Compare(a.Account, b.Account), cmp.Compare(a.Region, b.Region),
			cmp.Compare(a.EventSource, b.EventSource), cmp.Compare(a.EventName, b.EventName), cmp.Compare(a.ErrorCode, b.ErrorCode))
	})
	shown := rows
	if c.Top > 0 && len(shown) > c.Top {
		shown = shown[:c.Top]
	}
	if c.JSON {
		enc := json.NewEncoder(os.Stdout)
		for _, r := range shown {
			if err := enc.Encode(r); err != nil {
				return err
			}
		}
		return nil
	}
	writeSeriesTable(os.Stdout, shown, dc.Rules)
	ruled := 0
	for _, r := range rows {
		if r.Rule >= 0 {
			ruled++
		}
	}
	fmt.Fprintf(os.Stdout, "\n%d of %d series shown (%d match the filter, %d of them under a rule); model learned %s … %s\n",
		len(shown), len(entries), len(rows), ruled, meta.From.Format(time.RFC3339), meta.To.Format(time.RFC3339))
	return nil
}

func newSeriesRow(e *baseline.Entry, rule int) seriesRow {
	k, m := e.Key, &e.Model
	r := seriesRow{Account: k.Account, Region: k.Region, EventSource: k.Source, EventName: k.Name, ErrorCode: k.ErrorCode,
		InsightType: detector.ApiCallRate.String(), Hours: m.Hours, Mean: float64(m.Mean),
		Dispersion: round3(m.Dispersion()), Noise: round3(m.NoiseVar()), LongestQuiet: m.GapMax, Rule: rule}
	if k.Measure == baseline.Errors {
		r.InsightType = detector.ApiErrorRate.String()
	}
	// The busiest slot: a Monday's hours for weekdays, a Sunday's for the
	// weekend (2026-03-02 was a Monday).
	monday := time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC).Unix() / 60
	for slot := range baseline.Slots {
		minute := monday + int64(slot%24)*60
		if slot >= 24 {
			minute -= 24 * 60
		}
		if x := m.Expected(minute); x > r.Busiest {
			r.Busiest, r.BusiestSlot = x, baseline.SlotName(slot)
		}
	}
	r.Mean, r.Busiest = round3(r.Mean), round3(r.Busiest)
	if p, _, ok := m.Periodic(); ok {
		r.JobPeriod = math.Round(p)
	}
	return r
}

func writeSeriesTable(w io.Writer, rows []seriesRow, rules []detector.Rule) {
	tw := tabwriter.NewWriter(w, 2, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "SERIES\tTYPE\tHOURS\tMEAN/MIN\tBUSIEST\tJOB\tDISP\tNOISE\tLONGEST SILENCE\tRULE")
	for _, r := range rows {
		name := strings.Join([]string{r.Account, r.Region, r.EventSource, r.EventName}, " ")
		typ := "calls"
		if r.ErrorCode != "" {
			name += " " + r.ErrorCode
			typ = "errors"
		}
		job := "-"
		if r.JobPeriod > 0 {
			job = "every " + minutesText(r.JobPeriod)
		}
		busy := "-"
		if r.BusiestSlot != "" {
			busy = fmt.Sprintf("%.3g/min %s", r.Busiest, r.BusiestSlot)
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%.3g\t%s\t%s\t%.3g\t%.3g\t%s\t%s\n", name, typ, r.Hours, r.Mean, busy, job,
			r.Dispersion, r.Noise, minutesText(float64(r.LongestQuiet)), ruleText(r.Rule, rules))
	}
	tw.Flush()
}

// ruleText names rule i and what it does: "#0 mute burst", "#1 threshold 6".
func ruleText(i int, rules []detector.Rule) string {
	if i < 0 {
		return "-"
	}
	r := rules[i]
	parts := []string{fmt.Sprintf("#%d", i)}
	if len(r.Mute) > 0 {
		parts = append(parts, "mute "+strings.Join(r.Mute, ","))
	}
	for _, o := range []struct {
		name string
		v    float64
	}{{"threshold", r.Threshold}, {"min_count", float64(r.MinCount)}, {"min_ratio", r.MinRatio}, {"gap_factor", r.GapFactor}} {
		if o.v != 0 {
			parts = append(parts, fmt.Sprintf("%s %.3g", o.name, o.v))
		}
	}
	return strings.Join(parts, " ")
}

// minutesText is a duration in minutes for people: "45m", "6h", "2d3h".
func minutesText(m float64) string {
	d := time.Duration(math.Round(m)) * time.Minute
	switch {
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 24*time.Hour:
		if d%time.Hour == 0 {
			return fmt.Sprintf("%dh", int(d.Hours()))
		}
		return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
	}
	days, hours := int(d.Hours())/24, int(d.Hours())%24
	if hours == 0 {
		return fmt.Sprintf("%dd", days)
	}
	return fmt.Sprintf("%dd%dh", days, hours)
}

func round3(x float64) float64 { return math.Round(x*1000) / 1000 }
