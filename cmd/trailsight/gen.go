package main

import (
	"fmt"
	"os"
	"time"

	"github.com/trailsight/trailsight/datasets"
)

type genCmd struct {
	Out        string  `help:"Folder to write the archive (AWSLogs/…) and labels.json into." required:"" placeholder:"DIR"`
	Days       int     `help:"Length of the archive in days. Anomalies are planted after the first 7 days, which the detector needs to learn." default:"14"`
	Seed       int64   `help:"Seed: the same seed writes the same bytes." default:"1"`
	Scale      float64 `help:"Multiplies every rate." default:"1"`
	Accounts   int     `help:"Number of accounts." default:"2"`
	Start      string  `help:"First day (YYYY-MM-DD, UTC); default 2026-03-02, a Monday." placeholder:"DAY"`
	Background bool    `name:"background-only" help:"Normal traffic only (recurring patterns kept, nothing planted): every insight on it is a false one."`
}

func (c *genCmd) Help() string {
	return `Writes a CloudTrail archive in the real S3 layout — gzip'd {"Records":[…]} files every 5 minutes per
account and region, named like AWS's, records shuffled and delivered late, an occasional duplicate file —
with realistic background traffic (business hours, weekends, periodic jobs, read-only and data events,
background errors), planted anomalies (bursts, gaps, limit hits, error spikes) and decoys that must not
be reported. labels.json lists each planted anomaly and decoy; score with 'trailsight eval'.

Example: trailsight gen --out /tmp/scn && trailsight detect --in /tmp/scn --out /tmp/ins &&
         trailsight eval --labels /tmp/scn/labels.json /tmp/ins`
}

func (c *genCmd) Run(g *globals) error {
	opts := datasets.GenOptions{Out: c.Out, Days: c.Days, Seed: c.Seed, Scale: c.Scale, Accounts: c.Accounts, Background: c.Background}
	if c.Start != "" {
		t, err := time.Parse("2006-01-02", c.Start)
		if err != nil {
			return fmt.Errorf("--start %q: want YYYY-MM-DD", c.Start)
		}
		opts.Start = t
	}
	t := time.Now()
	l, st, err := datasets.Generate(g.ctx, opts)
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "wrote %s: %d events in %d files (%d duplicate deliveries), %s gzip'd, %d labels, in %.1fs\n",
		c.Out, st.Events, st.Files, st.DuplicateFiles, humanBytes(st.Bytes), len(l.Labels), time.Since(t).Seconds())
	return nil
}
