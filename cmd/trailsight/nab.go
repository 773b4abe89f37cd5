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
	Data    string `help:"The NAB subset: data/, labels/, config/, results/ (see shared/datasets/nab/README.md)." default:"../shared/datasets/nab" placeholder:"DIR"`
	Profile string `help:"NAB scoring profile." default:"standard" enum:"standard,reward_low_FP_rate,reward_low_FN_rate"`
	Config  string `help:"TOML configuration whose [detector] section is used." type:"existingfile" placeholder:"FILE"`
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
	dc := cfg.DetectorConfig()
	var runErr error
	r := datasets.NABRun(series, profs[c.Profile], func(s datasets.NABSeries, evs []stream.Event) []time.Time {
		starts, err := nabDetect(dc, evs)
		if err != nil && runErr == nil {
			runErr = err
		}
		return starts
	})
	if runErr != nil {
		return runErr
	}
	return r.WriteTable(os.Stdout, pub)
}

// nabDetect runs one fresh detector over a series' events and returns the
// start times of its insights.
func nabDetect(cfg detector.Config, evs []stream.Event) ([]time.Time, error) {
	det, err := detector.New(cfg)
	if err != nil {
		return nil, err
	}
	var starts []time.Time
	collect := func(ins []detector.Insight) {
		for _, in := range ins {
			if in.State == detector.Start {
				starts = append(starts, in.Time)
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
