package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/trailsight/trailsight/baseline"
	"github.com/trailsight/trailsight/detector"
	"github.com/trailsight/trailsight/notify"
	"github.com/trailsight/trailsight/stream"
)

// backfillOptions configure one pass of source → decode → dedupe → detector → notifier.
type backfillOptions struct {
	In           string // folder, file, or "-" for standard input
	From, To     time.Time
	Workers      int
	Detector     detector.Config
	DedupeWindow time.Duration
	Notifier     notify.Notifier // nil: insights are only counted
	Progress     bool
	Log          zerolog.Logger
	// OnInsights, when set, sees every batch of insights after it was delivered.
	OnInsights func([]detector.Insight)
	// Model, when set, starts the detector warm from saved models.
	Model *savedModel
	// OnDone, when set, gets the detector after the input is exhausted
	// (e.g. to save its models).
	OnDone func(*detector.Detector) error
	// Charts, when set, draws a chart of each insight as its End arrives;
	// backfill closes it and counts what it wrote in the summary.
	Charts *charts
}

// savedModel is a model file's content.
type savedModel struct {
	Meta    baseline.Meta
	Entries []baseline.Entry
}

// maxBadListed bounds the bad files named in a summary (all are counted and logged).
const maxBadListed = 10

// badFile is an input file that could not be read, or held bad records.
type badFile struct {
	Path   string `json:"path"`
	Reason string `json:"reason"`
}

// summary is what a backfill did; printed at the end and available as JSON.
type summary struct {
	Input          string         `json:"input"`
	Files          int            `json:"files"`
	Bytes          int64          `json:"bytes"`
	Skipped        map[string]int `json:"skipped,omitempty"`
	Records        int64          `json:"records"`
	Events         int64          `json:"events"`
	Counted        int64          `json:"counted"`
	Duplicates     int64          `json:"duplicates"`
	Late           int64          `json:"late"`
	OutOfRange     int64          `json:"outOfRange"`
	BadFiles       int            `json:"badFiles"`
	BadRecords     int64          `json:"badRecords"`
	Bad            []badFile      `json:"bad,omitempty"`
	Series         int            `json:"series"`
	Starts         map[string]int `json:"starts"`
	Insights       int            `json:"insightEvents"`
	Muted          int64          `json:"muted"`                  // insights detected on series a [[detector.rules]] mutes, not written
	Charts         int            `json:"charts,omitempty"`       // PNG charts written (--charts)
	ChartsFailed   int            `json:"chartsFailed,omitempty"` // charts that could not be drawn or written (logged)
	ChartsDir      string         `json:"chartsDir,omitempty"`
	SeriesDays     float64        `json:"seriesDays"` // series × days of event time they were watched
	PerKSeriesDays float64        `json:"insightsPer1000SeriesDays"`
	Budget         float64        `json:"falseAlarmBudget"` // the detector's, per 1,000 series-days of normal traffic
	First          time.Time      `json:"first,omitzero"`
	Last           time.Time      `json:"last,omitzero"`
	Seconds        float64        `json:"seconds"`
	EventsPerSec   float64        `json:"eventsPerSecond"`
}

func (s *summary) addBad(path, reason string) {
	reason = strings.TrimPrefix(reason, path+": ")
	if len(s.Bad) < maxBadListed {
		s.Bad = append(s.Bad, badFile{path, reason})
	}
}

// backfill runs the whole pipeline once over a finite input.
func backfill(ctx context.Context, o backfillOptions) (*summary, error) {
	start := time.Now()
	s := &summary{Input: o.In, Starts: map[string]int{}, Budget: detector.BudgetForThreshold(o.Detector.Threshold)}
	if o.Charts != nil {
		s.ChartsDir = o.Charts.dir
		defer func() { s.Charts, s.ChartsFailed = o.Charts.close() }()
	}
	det, err := detector.New(o.Detector)
	if err != nil {
		return nil, err
	}
	if o.Model != nil {
		if err := det.LoadModels(o.Model.Meta, o.Model.Entries); err != nil {
			return nil, err
		}
	}
	dd := stream.NewDeduper(o.DedupeWindow)
	feed := func(evs []stream.Event) {
		for i := range evs {
			ev := &evs[i]
			s.Events++
			if (!o.From.IsZero() && ev.Time.Before(o.From)) || (!o.To.IsZero() && !ev.Time.Before(o.To)) {
				s.OutOfRange++
				continue
			}
			if dd.Seen(ev) {
				continue
			}
			if s.First.IsZero() || ev.Time.Before(s.First) {
				s.First = ev.Time
			}
			if ev.Time.After(s.Last) {
				s.Last = ev.Time
			}
			det.Add(ev)
		}
	}
	deliver := func(ins []detector.Insight) error {
		if len(ins) == 0 {
			return nil
		}
		s.Insights += len(ins)
		if o.Notifier != nil {
			if err := o.Notifier.Notify(ctx, ins); err != nil {
				return fmt.Errorf("deliver %d insight events: %w", len(ins), err)
			}
		}
		if o.OnInsights != nil {
			o.OnInsights(ins)
		}
		if o.Charts != nil {
			o.Charts.add(det, ins) // now: History is the detector's until the next Add
		}
		return nil
	}

	if o.In == "-" {
		err = stream.ReadStream(ctx, os.Stdin, func(evs []stream.Event, st stream.DocStats) error {
			s.Records += int64(st.Records)
			s.BadRecords += int64(st.BadRecords)
			if st.BadRecords > 0 && st.BadReason != "" {
				s.addBad("-", st.BadReason)
			}
			feed(evs)
			return deliver(det.Advance())
		})
		if err != nil {
			return s, fmt.Errorf("read standard input: %w", err)
		}
	} else if err := runFiles(ctx, o, s, feed, func() error { return deliver(det.Advance()) }); err != nil {
		return s, err
	}
	if err := deliver(det.Flush()); err != nil {
		return s, err
	}
	if o.OnDone != nil {
		if err := o.OnDone(det); err != nil {
			return s, err
		}
	}
	st := det.Stats()
	s.Counted, s.Late, s.Series, s.Muted = st.Counted, st.Late, st.Series, st.Muted
	s.Duplicates = dd.Dropped()
	for k, v := range st.Starts {
		s.Starts[k] = v
	}
	if !s.First.IsZero() {
		s.SeriesDays = float64(s.Series) * s.Last.Sub(s.First).Hours() / 24
	}
	if s.SeriesDays > 0 {
		total := 0
		for _, v := range s.Starts {
			total += v
		}
		s.PerKSeriesDays = float64(total) / s.SeriesDays * 1000
	}
	s.Seconds = time.Since(start).Seconds()
	if s.Seconds > 0 {
		s.EventsPerSec = float64(s.Events) / s.Seconds
	}
	return s, nil
}

func runFiles(ctx context.Context, o backfillOptions, s *summary, feed func([]stream.Event), advance func() error) error {
	files, skipped, open, err := listInput(ctx, o.In, o.From, o.To)
	if err != nil {
		return fmt.Errorf("list input: %w", err)
	}
	s.Files, s.Skipped = len(files), skipped
	var total int64
	for _, f := range files {
		total += f.Size
	}
	o.Log.Info().Str("input", o.In).Int("files", len(files)).Int64("bytes", total).Any("skipped", skipped).Msg("input listed")
	if len(files) == 0 {
		o.Log.Warn().Str("input", o.In).Msg("no CloudTrail log files found")
	}
	var prog *progress
	var events atomic.Int64
	if o.Progress && len(files) > 0 {
		prog = newProgress(total, &events)
		defer prog.Wait()
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	batches := make(chan stream.Batch, 2*max(o.Workers, runtime.GOMAXPROCS(0)))
	decErr := make(chan error, 1)
	go func() {
		defer close(batches)
		decErr <- stream.DecodeFiles(ctx, files, open, o.Workers, batches)
	}()
	var loopErr error
	for b := range batches {
		if loopErr != nil {
			b.Release()
			continue // drain so the decoder can stop
		}
		s.Bytes += b.File.Size
		s.Records += int64(b.Stats.Records)
		s.BadRecords += int64(b.Stats.BadRecords)
		switch {
		case b.Err != nil:
			s.BadFiles++
			s.addBad(b.File.Path, b.Err.Error())
			o.Log.Warn().Str("file", b.File.Path).Err(b.Err).Int("events_kept", len(b.Events)).Msg("bad file skipped")
		case b.Stats.BadRecords > 0:
			s.addBad(b.File.Path, fmt.Sprintf("%d bad records: %s", b.Stats.BadRecords, b.Stats.BadReason))
			o.Log.Warn().Str("file", b.File.Path).Int("bad_records", b.Stats.BadRecords).Str("reason", b.Stats.BadReason).Msg("bad records skipped")
		}
		feed(b.Events)
		events.Add(int64(len(b.Events)))
		b.Release()
		if prog != nil {
			prog.Done(b.File.Size)
		}
		if err := advance(); err != nil {
			loopErr = err
			cancel()
		}
	}
	if err := <-decErr; err != nil && loopErr == nil && !errors.Is(err, context.Canceled) {
		return err
	}
	if loopErr != nil {
		return loopErr
	}
	return ctx.Err()
}

// listInput lists the files of a folder or an s3://bucket/prefix, in time
// order, and returns how to open them.
func listInput(ctx context.Context, in string, from, to time.Time) ([]stream.File, map[string]int, func(stream.File) (io.ReadCloser, error), error) {
	if !strings.HasPrefix(in, "s3://") {
		files, skipped, err := stream.ListDir(in, from, to)
		return files, skipped, stream.OpenFile, err
	}
	bucket, prefix, err := stream.ParseS3URL(in)
	if err != nil {
		return nil, nil, nil, err
	}
	c, err := stream.NewS3Client(ctx, stream.S3ClientOptions{})
	if err != nil {
		return nil, nil, nil, err
	}
	files, skipped, err := stream.ListS3(ctx, c, bucket, prefix, from, to)
	return files, skipped, stream.S3Opener(c, bucket), err
}

// print writes the human summary.
func (s *summary) print(w io.Writer) {
	fmt.Fprintf(w, "\ntrailsight detect: %s\n", s.Input)
	fmt.Fprintf(w, "  files       %d read (%s)%s\n", s.Files, humanBytes(s.Bytes), skippedList(s.Skipped))
	fmt.Fprintf(w, "  events      %d decoded, %d counted in series, %d duplicates dropped, %d late dropped",
		s.Events, s.Counted, s.Duplicates, s.Late)
	if s.OutOfRange > 0 {
		fmt.Fprintf(w, ", %d outside --from/--to", s.OutOfRange)
	}
	fmt.Fprintln(w)
	printSpanAndBad(w, s.First, s.Last, s.BadFiles, s.BadRecords, s.Bad)
	fmt.Fprintf(w, "  series      %d\n", s.Series)
	kinds := make([]string, 0, len(s.Starts))
	total := 0
	for k, v := range s.Starts {
		kinds = append(kinds, fmt.Sprintf("%s %d", k, v))
		total += v
	}
	slices.Sort(kinds)
	byKind := ""
	if len(kinds) > 0 {
		byKind = " (" + strings.Join(kinds, ", ") + ")"
	}
	muted := ""
	if s.Muted > 0 {
		muted = fmt.Sprintf("; %d more muted by [[detector.rules]], not written", s.Muted)
	}
	fmt.Fprintf(w, "  insights    %d%s, %d Start/End events; %.2f per 1,000 series-days (false-alarm budget on normal traffic: %.3g)%s\n",
		total, byKind, s.Insights, s.PerKSeriesDays, s.Budget, muted)
	if s.ChartsDir != "" {
		failed := ""
		if s.ChartsFailed > 0 {
			failed = fmt.Sprintf(", %d failed (see the log)", s.ChartsFailed)
		}
		fmt.Fprintf(w, "  charts      %d PNG under %s%s\n", s.Charts, s.ChartsDir, failed)
	}
	fmt.Fprintf(w, "  time        %.2fs, %.0f events/s\n", s.Seconds, s.EventsPerSec)
}

// printSpanAndBad writes the summary lines detect and publish share: the
// span of event time read, and the bad input with the files named.
func printSpanAndBad(w io.Writer, first, last time.Time, badFiles int, badRecords int64, bad []badFile) {
	if !first.IsZero() {
		fmt.Fprintf(w, "  span        %s … %s\n", first.Format(time.RFC3339), last.Format(time.RFC3339))
	}
	fmt.Fprintf(w, "  bad input   %d files, %d records\n", badFiles, badRecords)
	for _, b := range bad {
		fmt.Fprintf(w, "              %s: %s\n", b.Path, b.Reason)
	}
	if badFiles > len(bad) {
		fmt.Fprintf(w, "              … and more (all are in the log)\n")
	}
}

// skippedList is ", skipped: a 1, b 2" for a summary line, or "".
func skippedList(skipped map[string]int) string {
	if len(skipped) == 0 {
		return ""
	}
	keys := make([]string, 0, len(skipped))
	for k := range skipped {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s %d", k, skipped[k])
	}
	return ", skipped: " + strings.Join(parts, ", ")
}

func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
