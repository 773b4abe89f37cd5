package main

import (
	"fmt"
	"os"
	"time"

	"github.com/trailsight/trailsight/configs"
	"github.com/trailsight/trailsight/datasets"
	"github.com/trailsight/trailsight/detector"
	"github.com/trailsight/trailsight/stream"
)

type nabCmd struct {
	Data      string `help:"The NAB subset: data/, labels/, config/, results/ (see shared/datasets/nab/README.md)." default:"../shared/datasets/nab" placeholder:"DIR"`
	Profile   string `help:"NAB scoring profile." default:"standard" enum:"standard,reward_low_FP_rate,reward_low_FN_rate"`
	Config    string `help:"TOML configuration whose [detector] section is used." type:"existingfile" placeholder:"FILE"`
	Detail    bool   `help:"After the table, list per file its windows, every alarm and missed window, and what each adds to the raw score."`
	Published string `help:"With --detail, also list per file the alarms of this published detector (a folder of results/, e.g. ARTime), scored the same way, with the value at each." placeholder:"NAME"`
}

func (c *nabCmd) Help() string {
	return `Runs trailsight's detector on the Numenta Anomaly Benchmark's count series (realTweets: tweets per
5 minutes; nyc_taxi: passengers per 30 minutes, divided by 100), each count turned into that many
API calls spread over its interval, with a fresh detector per file. Each insight Start is an alarm at
the row holding its start. Scored with NAB's own rules (written in Go, checked against NAB's
published numbers), normalised on these 11 files (null detector 0, perfect 100), and printed beside
every published detector scored the same way.`
}

func (c *nabCmd) Run(g *globals) error {
	cfg := configs.Default()
	if c.Config != "" {
		var err error
		if cfg, err = configs.Load(c.Config); err != nil {
			return err
		}
	}
	series, err := datasets.NABLoad(c.Data)
	if err != nil {
		return fmt.Errorf("--data: %w", err)
	}
	profs, err := datasets.NABProfiles(c.Data)
	if err != nil {
		return err
	}
	pub, err := datasets.NABPublishedScores(c.Data)
	if err != nil {
		return err
	}
	var pubFlags map[string][]bool
	if c.Published != "" {
		if !c.Detail {
			return fmt.Errorf("--published %s: lists alarms beside --detail's; add --detail", c.Published)
		}
		if pubFlags, err = datasets.NABPublishedDetections(c.Data, c.Published); err != nil {
			return fmt.Errorf("--published %s: %w", c.Published, err)
		}
	}
	dc := cfg.DetectorConfig()
	var runErr error
	alarms := map[string][]detector.Insight{}
	r := datasets.NABRun(series, profs[c.Profile], func(s datasets.NABSeries, evs []stream.Event) []time.Time {
		starts, err := nabDetect(dc, evs)
		if err != nil && runErr == nil {
			runErr = err
		}
		alarms[s.File] = starts
		return startTimes(starts)
	})
	if runErr != nil {
		return runErr
	}
	if err := r.WriteTable(os.Stdout, pub); err != nil {
		return err
	}
	if c.Detail {
		for _, s := range series {
			nabWriteDetail(s, alarms[s.File], profs[c.Profile])
			if pubFlags != nil {
				nabWritePublished(s, c.Published, pubFlags[s.File], profs[c.Profile])
			}
		}
	}
	return nil
}

// nabWriteDetail prints one file's windows and alarms with what each adds
// to its raw score.
func nabWriteDetail(s datasets.NABSeries, alarms []detector.Insight, p datasets.NABProfile) {
	const layout = "2006-01-02 15:04"
	first := s.Times[0]
	fmt.Printf("\n%s  (first row %s)\n", s.File, first.Format(layout))
	for k, w := range s.Windows {
		fmt.Printf("  window %d  %s … %s  (starts day %.1f)\n", k, w[0].Format(layout), w[1].Format(layout), w[0].Sub(first).Hours()/24)
	}
	for _, m := range datasets.NABDetail(s, datasets.NABFlags(s, startTimes(alarms)), p) {
		why := ""
		for _, in := range alarms {
			if e := in.Explanation; e != nil && !in.Time.Before(m.Time) && in.Time.Sub(m.Time) < s.Times[1].Sub(s.Times[0]) {
				why = fmt.Sprintf("  %g in %d min, expected %g (×%.1f), score %g", e.Observed, e.WindowMinutes, e.Expected, e.Observed/max(e.Expected, 1e-9), e.Score)
				break
			}
		}
		fmt.Printf("  %-9s row %5d  %s  day %5.1f  window %2d  %+.3f%s\n", m.Kind, m.Row, m.Time.Format(layout), m.Time.Sub(first).Hours()/24, m.Window, m.Part, why)
	}
}

// nabWritePublished prints a published detector's alarms on one file, as
// nabWriteDetail prints ours, with the series' value at each flagged row.
func nabWritePublished(s datasets.NABSeries, name string, flags []bool, p datasets.NABProfile) {
	first := s.Times[0]
	fmt.Printf("  %s:\n", name)
	for _, m := range datasets.NABDetail(s, flags, p) {
		value := ""
		if m.Kind != "FN" {
			value = fmt.Sprintf("  value %g", s.Values[m.Row])
		}
		fmt.Printf("    %-9s row %5d  %s  day %5.1f  window %2d  %+.3f%s\n", m.Kind, m.Row, m.Time.Format("2006-01-02 15:04"), m.Time.Sub(first).Hours()/24, m.Window, m.Part, value)
	}
}

// startTimes returns the times of insight Starts: NAB's alarms.
func startTimes(starts []detector.Insight) []time.Time {
	times := make([]time.Time, len(starts))
	for i, in := range starts {
		times[i] = in.Time
	}
	return times
}

// nabDetect runs one fresh detector over a series' events and returns its
// insights' Starts.
func nabDetect(cfg detector.Config, evs []stream.Event) ([]detector.Insight, error) {
	det, err := detector.New(cfg)
	if err != nil {
		return nil, err
	}
	var starts []detector.Insight
	collect := func(ins []detector.Insight) {
		for _, in := range ins {
			if in.State == detector.Start {
				starts = append(starts, in)
			}
		}
	}
	for i := range evs {
		det.Add(&evs[i])
		if i%4096 == 0 {
			collect(det.Advance())
		}
	}
	collect(det.Advance())
	collect(det.Flush())
	return starts, nil
}
