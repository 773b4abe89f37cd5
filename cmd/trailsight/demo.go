package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/rs/zerolog"

	"github.com/trailsight/trailsight/configs"
	"github.com/trailsight/trailsight/datasets"
	"github.com/trailsight/trailsight/detector"
	"github.com/trailsight/trailsight/notify"
)

type demoCmd struct {
	Keep string `help:"Keep the archive and the insights in this folder instead of a temporary one." placeholder:"DIR"`
	Seed int64  `help:"Seed of the sample archive." default:"1"`
}

func (c *demoCmd) Help() string {
	return `Makes a two-week, two-account sample archive with planted anomalies, runs detect on it, and prints
the insights it found. Nothing to install or configure. The files stay in --keep DIR if given:
DIR/archive (the input, AWSLogs/ layout), DIR/insights (CloudTrail-Insight layout), DIR/archive/labels.json,
and DIR/charts, a PNG chart of each insight (see detect --charts).`
}

func (c *demoCmd) Run(g *globals) error {
	dir := c.Keep
	if dir == "" {
		tmp, err := os.MkdirTemp("", "trailsight-demo-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		dir = tmp
	}
	archive, out := filepath.Join(dir, "archive"), filepath.Join(dir, "insights")
	fmt.Printf("1. Generating a 14-day, 2-account CloudTrail archive in %s …\n", archive)
	labels, st, err := datasets.Generate(g.ctx, datasets.GenOptions{Out: archive, Days: 14, Accounts: 2, Seed: c.Seed, Scale: 1})
	if err != nil {
		return fmt.Errorf("generate: %w", err)
	}
	fmt.Printf("   %d events in %d files; %d planted anomalies and decoys (labels.json)\n", st.Events, st.Files, len(labels.Labels))
	if c.Keep != "" {
		fmt.Printf("2. Detecting: trailsight detect --in %s --out %s --charts %s\n", archive, out, filepath.Join(dir, "charts"))
	} else {
		fmt.Printf("2. Detecting: trailsight detect --in %s --out %s\n", archive, out)
	}
	f, err := notify.NewFolder(out, notify.FolderOptions{})
	if err != nil {
		return err
	}
	var ch *charts
	if c.Keep != "" {
		if ch, err = newCharts("--keep", filepath.Join(dir, "charts"), g.log); err != nil {
			f.Close()
			return err
		}
	}
	var all []detector.Insight
	cfg := configs.Default()
	s, err := backfill(g.ctx, backfillOptions{
		In: archive, Detector: cfg.DetectorConfig(), DedupeWindow: cfg.Input.DedupeWindow.Duration,
		Notifier: f, Log: g.log.Level(maxLevel(g)), Progress: stderrIsTerminal(), Charts: ch,
		OnInsights: func(ins []detector.Insight) { all = append(all, ins...) },
	})
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	s.print(os.Stdout)
	files, _ := f.Written()
	fmt.Printf("\n3. %d insights, written as %d CloudTrail-Insight files under %s:\n\n", len(all)/2, files, out)
	printInsights(os.Stdout, all)
	if c.Keep != "" {
		fmt.Printf("\nA chart of each insight is under %s.\n", filepath.Join(dir, "charts"))
		fmt.Println("Next: trailsight eval --labels", filepath.Join(archive, "labels.json"), out)
	} else {
		fmt.Println("\nThe files were in a temporary folder, now removed: run `trailsight demo --keep DIR` to keep them,\nthen score the insights with `trailsight eval --labels DIR/archive/labels.json DIR/insights`.")
	}
	return nil
}

func maxLevel(g *globals) zerolog.Level { return max(g.log.GetLevel(), zerolog.WarnLevel) }

// printInsights writes one line per insight: its span, series, kind and how far from normal.
func printInsights(w io.Writer, all []detector.Insight) {
	ends := map[string]detector.Insight{}
	var starts []detector.Insight
	for _, in := range all {
		if in.State == detector.End {
			ends[in.SharedEventID] = in
		} else {
			starts = append(starts, in)
		}
	}
	slices.SortFunc(starts, func(a, b detector.Insight) int { return a.Time.Compare(b.Time) })
	tw := tabwriter.NewWriter(w, 2, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "START (UTC)\tMIN\tACCOUNT\tREGION\tAPI\tKIND\tOBSERVED vs EXPECTED\tTOP IDENTITY")
	for _, s := range starts {
		e, ok := ends[s.SharedEventID]
		dur := "open"
		if ok {
			dur = fmt.Sprint(e.Stats.InsightDuration)
		}
		api := strings.TrimSuffix(s.EventSource, ".amazonaws.com") + ":" + s.EventName
		if s.ErrorCode != "" {
			api += " [" + s.ErrorCode + "]"
		}
		kind, obs := s.Type.String(), ""
		if x := s.Explanation; x != nil {
			kind = x.Kind
			obs = fmt.Sprintf("%g vs %.3g in %d min", x.Observed, x.Expected, x.WindowMinutes)
			if x.Kind == "gap" {
				obs = fmt.Sprintf("silent %d min (expected %.3g)", x.SilentMinutes, x.Expected)
				if x.PeriodMinutes > 0 {
					obs = fmt.Sprintf("silent %d min, job every %d min", x.SilentMinutes, x.PeriodMinutes)
				}
			}
		}
		who := ""
		for _, a := range s.Attributions {
			if a.Attribute == "userIdentityArn" && len(a.Insight) > 0 {
				who = a.Insight[0].Value
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", s.Time.Format(time.DateTime[:16]), dur, s.Account, s.Region, api, kind, obs, who)
	}
	tw.Flush()
}
