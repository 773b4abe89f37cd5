package main

import (
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/trailsight/trailsight/datasets"
	"github.com/trailsight/trailsight/detector"
)

type evalCmd struct {
	Labels       string        `help:"labels.json written by trailsight gen." required:"" type:"existingfile" placeholder:"FILE"`
	Insights     string        `arg:"" help:"Our insights: a folder in the CloudTrail-Insight layout (gzip'd or not), or a JSON-lines file (detect --out -)." type:"path"`
	JSON         bool          `name:"json" help:"Print the report as JSON."`
	Tolerance    time.Duration `help:"Slack around each label when matching insights." default:"15m"`
	IgnoreBefore string        `help:"Ignore insights starting before this time (RFC 3339 or YYYY-MM-DD)." placeholder:"T"`
}

func (c *evalCmd) Help() string {
	return `Pairs Start/End events by sharedEventID, matches insights to the labelled anomalies (same series and
insight type, overlapping in time within --tolerance, direction right: gaps below the baseline, the rest
above), and prints per-kind recall and precision, insights raised on decoys, the median and worst delay
from an anomaly's start to its insight's start, and a last line F1=… precision=… recall=….

Example: trailsight eval --labels /tmp/scn/labels.json /tmp/ins`
}

func (c *evalCmd) Run(g *globals) error {
	l, err := datasets.ReadLabels(c.Labels)
	if err != nil {
		return fmt.Errorf("--labels: %w", err)
	}
	ins, bad, err := detector.ReadInsights(c.Insights)
	if err != nil {
		return fmt.Errorf("read insights: %w", err)
	}
	for _, e := range bad {
		g.log.Warn().Err(e).Msg("bad insight file skipped")
	}
	before, err := parseTime("--ignore-before", c.IgnoreBefore)
	if err != nil {
		return err
	}
	r := datasets.Evaluate(l, ins, datasets.EvalOptions{Tolerance: c.Tolerance, IgnoreBefore: before})
	if c.JSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(r)
	}
	return r.WriteText(os.Stdout)
}
