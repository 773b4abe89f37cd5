// Command trailsight is an Insights engine for AWS CloudTrail: it learns the
// normal per-minute rate of every API's write calls and errors, and reports
// unusual activity as CloudTrail Insights events.
//
//	trailsight demo                        # sample archive, detect, show the insights
//	trailsight detect --in DIR --out OUT   # backfill an AWSLogs/ archive
//	trailsight gen --out DIR               # labelled scenario archive
//	trailsight eval --labels L INSIGHTS    # score insights against labels
//	trailsight bench                       # detect vs the gunzip+decode floor
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/alecthomas/kong"
	"github.com/mattn/go-isatty"
	"github.com/rs/zerolog"
)

// version is set by the linker (-X main.version=…).
var version = "dev"

type cli struct {
	LogLevel  string `help:"Log level: debug, info, warn, error." default:"info" enum:"debug,info,warn,error"`
	LogFormat string `help:"Log format: auto (console on a terminal, JSON otherwise), console, json." default:"auto" enum:"auto,console,json"`

	Detect    detectCmd    `cmd:"" help:"Find unusual activity in CloudTrail logs and write CloudTrail Insights events."`
	Run       runCmd       `cmd:"" help:"Run as a service: read NATS, an S3 bucket, a folder or stdin, detect, deliver; checkpointed, restartable."`
	Baseline  baselineCmd  `cmd:"" help:"Learn each series' normal from history and write a model file for detect --model."`
	Demo      demoCmd      `cmd:"" help:"Make a small sample archive with planted anomalies, detect, and show the insights. Needs nothing installed."`
	Gen       genCmd       `cmd:"" help:"Write a labelled scenario archive in the CloudTrail S3 layout, plus labels.json."`
	Publish   publishCmd   `cmd:"" help:"Replay a CloudTrail archive into a NATS JetStream stream, one message per record (Nats-Msg-Id = eventID)."`
	Eval      evalCmd      `cmd:"" help:"Score insights against the labels of a generated archive."`
	Nab       nabCmd       `cmd:"" name:"nab" help:"Run the detector on the Numenta Anomaly Benchmark count series and score it beside the published detectors."`
	Series    seriesCmd    `cmd:"" help:"List the series a model file knows, what each learned as normal, and which [[detector.rules]] applies."`
	Bench     benchCmd     `cmd:"" help:"Time gunzip+decode alone (the floor) and the whole detect on the same archive; print the ratio."`
	BenchPass benchPassCmd `cmd:"" name:"bench-pass" hidden:"" help:"One timed pass of bench."`
	Version   versionCmd   `cmd:"" help:"Print the version."`
}

type versionCmd struct{}

func (versionCmd) Run() error { fmt.Println("trailsight", version); return nil }

// globals is what every command gets.
type globals struct {
	ctx context.Context
	log zerolog.Logger
}

func main() {
	var c cli
	k := kong.Parse(&c,
		kong.Name("trailsight"),
		kong.Description("An Insights engine for AWS CloudTrail: learns the normal rate of every API's write calls and errors, "+
			"and reports bursts, gaps, drops, limit hits and error spikes as CloudTrail Insights events.\n\n"+
			"Start with `trailsight demo`. Backfill an archive with `trailsight detect --in AWSLogs-folder --out insights/`."),
		kong.UsageOnError(),
		kong.ConfigureHelp(kong.HelpOptions{Compact: true}),
		kong.Vars{"out_help": outputHelp},
	)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	g := &globals{ctx: ctx, log: newLogger(c.LogLevel, c.LogFormat)}
	err := k.Run(g)
	if err != nil {
		name, _, _ := strings.Cut(k.Command(), " ") // "series <model>": the command, not its arguments
		g.log.Error().Err(err).Msg(name + " failed")
		fmt.Fprintln(os.Stderr, "trailsight:", err)
		os.Exit(1)
	}
}

func stderrIsTerminal() bool {
	return isatty.IsTerminal(os.Stderr.Fd()) || isatty.IsCygwinTerminal(os.Stderr.Fd())
}

func newLogger(level, format string) zerolog.Logger {
	lvl, err := zerolog.ParseLevel(level)
	if err != nil {
		lvl = zerolog.InfoLevel
	}
	var l zerolog.Logger
	if format == "console" || (format == "auto" && stderrIsTerminal()) {
		l = zerolog.New(zerolog.ConsoleWriter{Out: os.Stderr, TimeFormat: "15:04:05"})
	} else {
		l = zerolog.New(os.Stderr)
	}
	return l.Level(lvl).With().Timestamp().Logger()
}
