package main

import (
	"cmp"
	"encoding/json"
	"fmt"
	"os"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/trailsight/trailsight/baseline"
	"github.com/trailsight/trailsight/configs"
)

type detectCmd struct {
	In          string   `help:"CloudTrail logs to read: a folder in the S3 layout (AWSLogs/<account>/CloudTrail/<region>/YYYY/MM/DD/…, organisation trails too, any prefix before AWSLogs), s3://BUCKET/PREFIX in the same layout (listed by date prefix; --from/--to list only the days needed), any folder or file of CloudTrail JSON (gzip or not; {\"Records\":[…]}, JSON lines, EventBridge envelopes), or - for standard input." required:"" placeholder:"SRC"`
	Out         []string `help:"${out_help}" placeholder:"DST" sep:"none"`
	Spool       string   `help:"Folder where insights wait when a network destination is down; the next run re-sends them." placeholder:"DIR"`
	Config      string   `help:"TOML configuration file (see configs/trailsight.example.toml); flags override it." type:"existingfile" placeholder:"FILE"`
	Model       string   `help:"Start warm from a model file written by 'trailsight baseline': insights from the first event on, no warm-up." type:"existingfile" placeholder:"FILE"`
	From        string   `help:"Only events at or after this time (RFC 3339 or YYYY-MM-DD, UTC)." placeholder:"T"`
	To          string   `help:"Only events before this time (RFC 3339 or YYYY-MM-DD, UTC)." placeholder:"T"`
	Workers     int      `help:"Files decoded in parallel (0: one per CPU)." default:"-1"`
	StrictAWS   bool     `name:"strict-aws" help:"Leave trailsight's explanation out of written insights: exactly the fields CloudTrail writes."`
	Envelope    bool     `help:"With --out -, wrap each event in an EventBridge envelope (detail-type \"AWS Insight via CloudTrail\")."`
	Progress    string   `help:"Progress bar: auto (when standard error is a terminal), always, never." default:"auto" enum:"auto,always,never"`
	SummaryJSON string   `name:"summary-json" help:"Also write the summary as JSON to this file." placeholder:"FILE"`
	Charts      string   `help:"Draw a PNG chart of each insight in this folder as it ends: the series' calls over the 48 hours and the last 2 hours before the end, against the expected rate and its band, the insight shaded; ACCOUNT/REGION/START_API_KIND_ID.png." placeholder:"DIR"`
	CPUProfile  string   `name:"cpuprofile" hidden:"" help:"Write a CPU profile to this file."`
}

func (c *detectCmd) Help() string {
	return `Reads CloudTrail logs, learns each API's normal rate of write calls and of errors, and writes
CloudTrail Insights events (a Start and an End per insight, sharing sharedEventID) for bursts, gaps,
drops, limit hits and error spikes. Files are read in the time order their names give, decoded in parallel,
and duplicates (same eventID) dropped. A bad file is reported and skipped, never fatal: the summary
counts and names them. Exit status is 0 then; non-zero for bad flags, an unreadable configuration or
an output that cannot be written.

Without --model the detector starts cold: nothing is reported in the first 24 hours while it learns,
and a weekly pattern (a Thursday report, Monday mornings) looks new the first time it shows. With
older history at hand, learn it first and start warm:

  trailsight baseline --in /data/AWSLogs --to 2026-03-01 --model history.tsm
  trailsight detect   --in /data/AWSLogs --from 2026-03-01 --model history.tsm --out insights/

or, in one pass over an archive, report only after its first week: warmup = "168h" in [detector].

Examples:
  trailsight detect --in /data/AWSLogs --out insights/
  trailsight detect --in /data/AWSLogs --out insights/ --charts charts/   # and a PNG per insight
  trailsight detect --in bucket-copy/ --from 2026-01-01 --to 2026-02-01 --out - | jq .
  zcat file.json.gz | trailsight detect --in - --out -`
}

func (c *detectCmd) Run(g *globals) error {
	stop, err := cpuProfile(c.CPUProfile)
	if err != nil {
		return err
	}
	defer stop()
	cfg := configs.Default()
	if c.Config != "" {
		if cfg, err = configs.Load(c.Config); err != nil {
			return err
		}
	}
	if c.Workers >= 0 {
		cfg.Input.Workers = c.Workers
	}
	if c.StrictAWS {
		cfg.Output.StrictAWS = true
	}
	from, err := parseTime("--from", c.From)
	if err != nil {
		return err
	}
	to, err := parseTime("--to", c.To)
	if err != nil {
		return err
	}
	if !from.IsZero() && !to.IsZero() && !to.After(from) {
		return fmt.Errorf("--to %s is not after --from %s", c.To, c.From)
	}
	if c.In != "-" && !strings.HasPrefix(c.In, "s3://") {
		if _, err := os.Stat(c.In); err != nil {
			return fmt.Errorf("--in: %w", inputHint(c.In, err))
		}
	}
	var model *savedModel
	if c.Model != "" {
		meta, entries, err := baseline.LoadFile(c.Model)
		if err != nil {
			return fmt.Errorf("--model: %w", err)
		}
		model = &savedModel{meta, entries}
		g.log.Info().Str("model", c.Model).Int("series", len(entries)).Time("from", meta.From).Time("to", meta.To).Msg("model loaded")
	}
	var outs []configs.Out
	for _, o := range c.Out {
		outs = append(outs, configs.Out{Spec: o})
	}
	more, err := cfg.Notify.Outs()
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	outs = append(outs, more...)
	if len(outs) == 0 {
		outs = []configs.Out{{Spec: "-"}}
	}
	var ch *charts
	dir, setting := c.Charts, "--charts"
	if dir == "" {
		dir, setting = cfg.Output.Charts, "output.charts"
	}
	if dir != "" {
		if ch, err = newCharts(setting, dir, g.log); err != nil {
			return err
		}
	}
	spool := cmp.Or(c.Spool, cfg.Notify.Spool, defaultSpool())
	n, err := openOutputs(g.ctx, outs, cfg.Output.StrictAWS, c.Envelope, spool, g.log, nil)
	if err != nil {
		if ch != nil {
			ch.close()
		}
		return err
	}
	s, err := backfill(g.ctx, backfillOptions{
		Charts: ch,
		In:     c.In, From: from, To: to, Workers: cfg.Input.Workers, Detector: cfg.DetectorConfig(),
		DedupeWindow: cfg.Input.DedupeWindow.Duration, Notifier: n, Log: g.log, Model: model,
		Progress: c.Progress == "always" || (c.Progress == "auto" && stderrIsTerminal()),
	})
	if cerr := n.finish(g.ctx); err == nil && cerr != nil {
		err = fmt.Errorf("outputs: %w", cerr)
	}
	if s != nil {
		s.print(os.Stderr)
		if c.SummaryJSON != "" {
			b, _ := json.MarshalIndent(s, "", "  ")
			if werr := os.WriteFile(c.SummaryJSON, append(b, '\n'), 0o644); werr != nil && err == nil {
				err = fmt.Errorf("--summary-json: %w", werr)
			}
		}
	}
	return err
}

func inputHint(in string, err error) error {
	if strings.Contains(in, "://") {
		return fmt.Errorf("%s: inputs are folders, files, s3://BUCKET/PREFIX and - (NATS input comes with the service)", in)
	}
	return err
}

// parseTime accepts RFC 3339 or a bare UTC date.
func parseTime(flag, s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	for _, layout := range []string{time.RFC3339, "2006-01-02T15:04", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("%s %q: want RFC 3339 (2026-01-02T15:04:05Z) or a date (2026-01-02)", flag, s)
}

// cpuProfile starts a CPU profile into path (--cpuprofile; nothing when
// path is empty); stop ends it.
func cpuProfile(path string) (stop func(), err error) {
	if path == "" {
		return func() {}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("--cpuprofile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("--cpuprofile: %w", err)
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}
