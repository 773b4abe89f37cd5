package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/trailsight/trailsight/baseline"
	"github.com/trailsight/trailsight/configs"
	"github.com/trailsight/trailsight/detector"
)

type baselineCmd struct {
	In       string `help:"History to learn from: the same sources as detect --in." required:"" placeholder:"SRC"`
	Model    string `help:"Model file to write (replaced atomically)." required:"" placeholder:"FILE"`
	Config   string `help:"TOML configuration file; its [detector] section must match the one detect will use." type:"existingfile" placeholder:"FILE"`
	From     string `help:"Only events at or after this time (RFC 3339 or YYYY-MM-DD, UTC)." placeholder:"T"`
	To       string `help:"Only events before this time (RFC 3339 or YYYY-MM-DD, UTC)." placeholder:"T"`
	Progress string `help:"Progress bar: auto, always, never." default:"auto" enum:"auto,always,never"`
}

func (c *baselineCmd) Help() string {
	return `Learns each series' normal from history — its rate per hour of day on weekdays and weekends, its
dispersion, the rhythm of its periodic jobs, its last week of hourly counts — and writes a compact,
versioned model file (gzip'd, checksummed, well under 2 KB per series). 'trailsight detect --model FILE'
then starts warm: insights from the first event, with no warm-up.

Example:
  trailsight baseline --in /data/AWSLogs --to 2026-03-01 --model jan-feb.tsm
  trailsight detect   --in /data/AWSLogs --from 2026-03-01 --model jan-feb.tsm --out insights/`
}

func (c *baselineCmd) Run(g *globals) error {
	cfg := configs.Default()
	if c.Config != "" {
		var err error
		if cfg, err = configs.Load(c.Config); err != nil {
			return err
		}
	}
	from, err := parseTime("--from", c.From)
	if err != nil {
		return err
	}
	to, err := parseTime("--to", c.To)
	if err != nil {
		return err
	}
	if c.In != "-" && !strings.HasPrefix(c.In, "s3://") {
		if _, err := os.Stat(c.In); err != nil {
			return fmt.Errorf("--in: %w", inputHint(c.In, err))
		}
	}
	var series int
	s, err := backfill(g.ctx, backfillOptions{
		In: c.In, From: from, To: to, Workers: cfg.Input.Workers, Detector: cfg.DetectorConfig(),
		DedupeWindow: cfg.Input.DedupeWindow.Duration, Log: g.log,
		Progress: c.Progress == "always" || (c.Progress == "auto" && stderrIsTerminal()),
		OnDone: func(d *detector.Detector) error {
			meta, entries := d.Snapshot()
			series = len(entries)
			if err := baseline.SaveFile(c.Model, meta, entries); err != nil {
				return fmt.Errorf("--model: %w", err)
			}
			return nil
		},
	})
	if s != nil {
		s.print(os.Stderr)
	}
	if err != nil {
		return err
	}
	st, _ := os.Stat(c.Model)
	fmt.Fprintf(os.Stderr, "wrote %s: %d series, %s\n", c.Model, series, humanBytes(st.Size()))
	return nil
}
