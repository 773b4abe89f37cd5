package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/trailsight/trailsight/configs"
	"github.com/trailsight/trailsight/stream"
)

type publishCmd struct {
	In            string  `help:"CloudTrail logs to replay, as detect --in: a folder in the S3 layout, s3://BUCKET/PREFIX, any folder or file of CloudTrail JSON, or - for standard input." required:"" placeholder:"SRC"`
	To            string  `arg:"" name:"nats-url" help:"The JetStream stream: nats://[USER:PASSWORD@|TOKEN@]HOST:PORT/STREAM (tls:// for TLS; ?creds=FILE, ?timeout=5s)." placeholder:"nats://HOST:PORT/STREAM"`
	SubjectPrefix string  `name:"subject-prefix" help:"Subjects are <prefix>.<account>.<region>." default:"trailsight.events"`
	Speed         float64 `help:"Replay at N times real speed by event time (0: as fast as possible)." default:"0"`
	Create        bool    `help:"Create the stream if it is missing: subjects <prefix>.>, file storage, duplicate window 5m (Nats-Msg-Id)."`
	Partitions    int     `help:"The stream is split into N partitions for trailsight run (run.partitions = N): with --create, the stream is created with the subject transform that does it; without, the stream must have it." default:"0" placeholder:"N"`
	MaxPending    int     `name:"max-pending" help:"Most publishes awaiting the server's acknowledgement at once." default:"4096"`
	Workers       int     `help:"Files read ahead in parallel (0: one per CPU)." default:"0"`
	SummaryJSON   string  `name:"summary-json" help:"Also write the summary as JSON to this file." placeholder:"FILE"`
	CPUProfile    string  `name:"cpuprofile" hidden:"" help:"Write a CPU profile to this file."`
}

func (c *publishCmd) Help() string {
	return `Replays a CloudTrail archive into a NATS JetStream stream, one message per record: subject
<prefix>.<account>.<region>, payload the record's own JSON (compacted, never re-encoded), header
Nats-Msg-Id = eventID so that the server drops records it already holds (within the stream's duplicate
window): re-publishing an archive adds nothing. Files are sent in the order their names give, records
in file order. A record whose account or region comes from its file's name carries it in the
Trailsight-Account / Trailsight-Region headers. Publishes are asynchronous, at most --max-pending
awaiting acknowledgement; what the server did not acknowledge is re-sent once at the end, and the exit
status is non-zero if some still fail. Bad input files are reported and skipped, as in detect.

Examples:
  trailsight publish --in /data/AWSLogs nats://127.0.0.1:4222/EVENTS --create
  trailsight publish --in bucket-copy/ --speed 60 nats://user:pass@nats.internal:4222/EVENTS
  zcat events.json.gz | trailsight publish --in - nats://127.0.0.1:4222/EVENTS`
}

// Settings of a created stream and of the publisher.
const (
	// The events stream's Nats-Msg-Id window covers a publisher's re-sends
	// after an unacknowledged publish (publishAckTimeout). The server keeps
	// every ID of the window in memory (~130 bytes each: 2 hours at 1,000
	// events/s would hold 0.9 GB); a record re-sent later is still counted
	// once, by the service's eventID de-duplication (input.dedupe_window)
	// or as late.
	publishDuplicateWindow = 5 * time.Minute
	publishAckTimeout      = 30 * time.Second // an async publish not acknowledged by then is re-sent at the end
	publishMaxFailed       = 10000            // unacknowledged publishes kept for the final re-send; more ends the run
	publishRetries         = 3
)

// publishSummary is what a publish run did.
type publishSummary struct {
	Input         string         `json:"input"`
	Stream        string         `json:"stream"`
	Prefix        string         `json:"subjectPrefix"`
	Files         int            `json:"files"`
	Bytes         int64          `json:"bytes"`
	Skipped       map[string]int `json:"skipped,omitempty"`
	Records       int64          `json:"records"`
	Sent          int64          `json:"sent"`
	Stored        int64          `json:"stored"`
	Duplicates    int64          `json:"duplicates"`
	Failed        int64          `json:"failed"`
	BadFiles      int            `json:"badFiles"`
	BadRecords    int64          `json:"badRecords"`
	Bad           []badFile      `json:"bad,omitempty"`
	First         time.Time      `json:"first,omitzero"`
	Last          time.Time      `json:"last,omitzero"`
	Seconds       float64        `json:"seconds"`
	RecordsPerSec float64        `json:"recordsPerSecond"`
}

func (s *publishSummary) addBad(path, reason string) {
	if len(s.Bad) < maxBadListed {
		s.Bad = append(s.Bad, badFile{path, strings.TrimPrefix(reason, path+": ")})
	}
}

func (c *publishCmd) Run(g *globals) error {
	stop, err := cpuProfile(c.CPUProfile)
	if err != nil {
		return err
	}
	defer stop()
	o, err := stream.ParseNATSURL(c.To)
	if err != nil {
		return err
	}
	var errs []error
	if o.Durable != "" || o.FilterSubject != "" || o.Batch != 0 || o.AckWait != 0 {
		errs = append(errs, errors.New("durable=, filter=, batch= and ackwait= are for reading a stream, not for publish"))
	}
	if err := stream.ValidSubjectPrefix(c.SubjectPrefix); err != nil {
		errs = append(errs, fmt.Errorf("--subject-prefix: %w", err))
	}
	if c.Speed < 0 {
		errs = append(errs, fmt.Errorf("--speed %v: want 0 (as fast as possible) or more", c.Speed))
	}
	if c.Partitions < 0 || c.Partitions > configs.MaxPartitions {
		errs = append(errs, fmt.Errorf("--partitions %d: want 0 (not partitioned) to %d", c.Partitions, configs.MaxPartitions))
	}
	if c.MaxPending < 1 {
		errs = append(errs, fmt.Errorf("--max-pending %d: want 1 or more", c.MaxPending))
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if c.In != "-" && !strings.HasPrefix(c.In, "s3://") {
		if _, err := os.Stat(c.In); err != nil {
			return fmt.Errorf("--in: %w", inputHint(c.In, err))
		}
	}
	p, err := newPublisher(g.ctx, o, c.SubjectPrefix, c.Create, c.Partitions, c.MaxPending, g.log)
	if err != nil {
		return err
	}
	defer p.close()
	p.pace = newPacer(c.Speed)
	s, err := p.run(g.ctx, c.In, c.Workers)
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

// publisher sends records to one JetStream stream asynchronously.
type publisher struct {
	nc     *nats.Conn
	js     jetstream.JetStream
	stream string
	prefix string
	pace   *pacer
	log    zerolog.Logger

	sent, stored, dups atomic.Int64
	mu                 sync.Mutex
	failed             []*nats.Msg // not acknowledged: re-sent at the end
}

func newPublisher(ctx context.Context, o stream.NATSSourceOptions, prefix string, create bool, partitions, maxPending int, log zerolog.Logger) (*publisher, error) {
	timeout := o.Timeout
	if timeout <= 0 {
		timeout = stream.DefaultNATSTimeout
	}
	nc, err := stream.DialNATS(o.URL, o.User, o.Password, o.Token, o.CredsFile, timeout, log)
	if err != nil {
		return nil, err
	}
	p := &publisher{nc: nc, stream: o.Stream, prefix: prefix, log: log}
	js, err := jetstream.New(nc,
		jetstream.WithDefaultTimeout(timeout),
		jetstream.WithPublishAsyncMaxPending(maxPending),
		jetstream.WithPublishAsyncTimeout(publishAckTimeout),
		jetstream.WithPublishAsyncAckHandler(func(_ jetstream.JetStream, _ *nats.Msg, ack *jetstream.PubAck) {
			if ack.Duplicate {
				p.dups.Add(1)
			} else {
				p.stored.Add(1)
			}
		}),
		jetstream.WithPublishAsyncErrHandler(func(_ jetstream.JetStream, m *nats.Msg, err error) {
			p.mu.Lock()
			p.failed = append(p.failed, m)
			n := len(p.failed)
			p.mu.Unlock()
			if n == 1 || n%1000 == 0 {
				log.Warn().Str("subject", m.Subject).Err(err).Int("unacknowledged", n).Msg("publish not acknowledged, will re-send")
			}
		}),
	)
	if err != nil {
		nc.Close()
		return nil, err
	}
	p.js = js
	if err := p.ensureStream(ctx, create, partitions, timeout); err != nil {
		nc.Close()
		return nil, err
	}
	return p, nil
}

// eventsStreamConfig is a stream of CloudTrail records as publish and the
// embedded server create it: subjects <prefix>.>, file storage, the
// Nats-Msg-Id duplicate window, split into partitions when more than one.
func eventsStreamConfig(name, prefix string, partitions int) jetstream.StreamConfig {
	cfg := jetstream.StreamConfig{Name: name, Subjects: []string{prefix + ".>"},
		Storage: jetstream.FileStorage, Duplicates: publishDuplicateWindow}
	if partitions > 1 {
		cfg.SubjectTransform = new(stream.PartitionTransform(prefix, partitions))
	}
	return cfg
}

// ensureStream finds (or creates) the stream and checks that it takes the
// subjects <prefix>.>, split into partitions when there are more than one.
func (p *publisher) ensureStream(ctx context.Context, create bool, partitions int, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	st, err := p.js.Stream(ctx, p.stream)
	if errors.Is(err, jetstream.ErrStreamNotFound) && create {
		cfg := eventsStreamConfig(p.stream, p.prefix, partitions)
		cfg.Description = "CloudTrail records, one per message (trailsight publish)"
		st, err = p.js.CreateStream(ctx, cfg)
		if err == nil {
			p.log.Info().Str("stream", p.stream).Str("subjects", p.prefix+".>").Int("partitions", partitions).Msg("stream created")
		}
	}
	if err == nil && partitions > 1 {
		if _, perr := stream.CheckPartitions(st.CachedInfo().Config, partitions); perr != nil {
			return errors.New("--partitions: " + strings.Replace(perr.Error(), "run.partitions", "--partitions", 1))
		}
	}
	switch {
	case errors.Is(err, jetstream.ErrStreamNotFound):
		return fmt.Errorf("nats: stream %s: %w (give --create to create it)", p.stream, err)
	case err != nil:
		return fmt.Errorf("nats: stream %s: %w", p.stream, err)
	}
	name, err := p.js.StreamNameBySubject(ctx, p.prefix+".>")
	if err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
		return fmt.Errorf("nats: stream for %s.>: %w", p.prefix, err)
	}
	if name != p.stream {
		return fmt.Errorf("nats: stream %s does not take the subjects %s.>: give the --subject-prefix its subjects start with, or another stream", p.stream, p.prefix)
	}
	return nil
}

func (p *publisher) close() { p.nc.Close() }

// errStop marks an error from publishing, which ends the run (bad input
// never does).
type errStop struct{ err error }

func (e errStop) Error() string { return e.err.Error() }
func (e errStop) Unwrap() error { return e.err }

// publish sends one record. f gives the account and region the record
// lacks.
func (p *publisher) publish(ctx context.Context, f *stream.File, ev stream.Event, raw []byte) error {
	m := &nats.Msg{Header: nats.Header{}}
	if ev.Account == "" && f.Account != "" {
		ev.Account = f.Account
		m.Header.Set(stream.HeaderAccount, f.Account)
	}
	if ev.Region == "" && f.Region != "" {
		ev.Region = f.Region
		m.Header.Set(stream.HeaderRegion, f.Region)
	}
	if ev.ID != "" {
		m.Header.Set(jetstream.MsgIDHeader, ev.ID)
	}
	m.Subject = stream.EventSubject(p.prefix, &ev)
	m.Data = appendCompact(make([]byte, 0, len(raw)), raw)
	if err := p.pace.wait(ctx, ev.Time); err != nil {
		return errStop{err}
	}
	for {
		_, err := p.js.PublishMsgAsync(m, jetstream.WithExpectStream(p.stream), jetstream.WithStallWait(time.Second))
		if err == nil {
			break
		}
		if !errors.Is(err, jetstream.ErrTooManyStalledMsgs) {
			return errStop{fmt.Errorf("nats: publish %s: %w", m.Subject, err)}
		}
		if err := ctx.Err(); err != nil {
			return errStop{err}
		}
	}
	p.sent.Add(1)
	p.mu.Lock()
	n := len(p.failed)
	p.mu.Unlock()
	if n > publishMaxFailed {
		return errStop{fmt.Errorf("nats: %d publishes not acknowledged: is the server down or full?", n)}
	}
	return nil
}

// finish waits for every acknowledgement, then re-sends what was not
// acknowledged, synchronously; it returns how many still failed.
func (p *publisher) finish(ctx context.Context) (int, error) {
	select {
	case <-p.js.PublishAsyncComplete():
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	p.mu.Lock()
	failed := p.failed
	p.failed = nil
	p.mu.Unlock()
	left := 0
	for _, m := range failed {
		var err error
		for range publishRetries {
			var ack *jetstream.PubAck
			rctx, cancel := context.WithTimeout(ctx, publishAckTimeout)
			ack, err = p.js.PublishMsg(rctx, m)
			cancel()
			if err == nil {
				if ack.Duplicate {
					p.dups.Add(1)
				} else {
					p.stored.Add(1)
				}
				break
			}
			if ctx.Err() != nil {
				return left + 1, ctx.Err()
			}
		}
		if err != nil {
			left++
			p.log.Error().Str("subject", m.Subject).Str("event_id", m.Header.Get(jetstream.MsgIDHeader)).Err(err).Msg("publish failed")
		}
	}
	return left, nil
}

// run replays in (a folder, file, s3:// prefix or - ) into the stream.
func (p *publisher) run(ctx context.Context, in string, workers int) (*publishSummary, error) {
	start := time.Now()
	s := &publishSummary{Input: in, Stream: p.stream, Prefix: p.prefix}
	lastLog := start
	onRecord := func(f *stream.File, ev stream.Event, raw []byte) error {
		if s.First.IsZero() || ev.Time.Before(s.First) {
			s.First = ev.Time
		}
		if ev.Time.After(s.Last) {
			s.Last = ev.Time
		}
		if err := p.publish(ctx, f, ev, raw); err != nil {
			return err
		}
		if now := time.Now(); now.Sub(lastLog) >= 5*time.Second {
			lastLog = now
			sent := p.sent.Load()
			p.log.Info().Int64("sent", sent).Int64("stored", p.stored.Load()).Int64("duplicates", p.dups.Load()).
				Float64("records_per_second", float64(sent)/now.Sub(start).Seconds()).Msg("publishing")
		}
		return nil
	}
	var err error
	if in == "-" {
		var st stream.DocStats
		st, err = stream.ReadStreamRaw(ctx, os.Stdin, func(ev stream.Event, raw []byte) error {
			return onRecord(&stream.File{Path: "-"}, ev, raw)
		})
		s.Files, s.Bytes = 1, st.Bytes
		s.Records, s.BadRecords = int64(st.Records), int64(st.BadRecords)
		if st.BadRecords > 0 {
			s.addBad("-", st.BadReason)
		}
		if err != nil && !errors.As(err, new(errStop)) {
			err = fmt.Errorf("read standard input: %w", err)
		}
	} else {
		err = p.runFiles(ctx, in, workers, s, onRecord)
	}
	left, ferr := p.finish(ctx)
	s.Sent, s.Stored, s.Duplicates, s.Failed = p.sent.Load(), p.stored.Load(), p.dups.Load(), int64(left)
	s.Seconds = time.Since(start).Seconds()
	if s.Seconds > 0 {
		s.RecordsPerSec = float64(s.Sent) / s.Seconds
	}
	if err == nil {
		err = ferr
	}
	if err == nil && left > 0 {
		err = fmt.Errorf("nats: %d records not stored after %d tries", left, publishRetries+1)
	}
	return s, err
}

// runFiles lists the input as detect does and decodes its files in order
// with DecodeFilesRaw, which reads ahead in parallel and gives each event
// with its record's own JSON.
func (p *publisher) runFiles(ctx context.Context, in string, workers int, s *publishSummary, onRecord func(*stream.File, stream.Event, []byte) error) error {
	files, skipped, open, err := listInput(ctx, in, time.Time{}, time.Time{})
	if err != nil {
		return fmt.Errorf("list input: %w", err)
	}
	s.Files, s.Skipped = len(files), skipped
	var total int64
	for _, f := range files {
		total += f.Size
	}
	p.log.Info().Str("input", in).Int("files", len(files)).Int64("bytes", total).Any("skipped", skipped).Msg("input listed")
	if len(files) == 0 {
		p.log.Warn().Str("input", in).Msg("no CloudTrail log files found")
		return nil
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	batches := make(chan stream.Batch, 4)
	decErr := make(chan error, 1)
	go func() {
		defer close(batches)
		decErr <- stream.DecodeFilesRaw(ctx, files, open, workers, batches)
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
			p.log.Warn().Str("file", b.File.Path).Err(b.Err).Msg("bad file skipped")
		case b.Stats.BadRecords > 0:
			s.addBad(b.File.Path, fmt.Sprintf("%d bad records: %s", b.Stats.BadRecords, b.Stats.BadReason))
			p.log.Warn().Str("file", b.File.Path).Int("bad_records", b.Stats.BadRecords).Str("reason", b.Stats.BadReason).Msg("bad records skipped")
		}
		f := b.File
		for i, ev := range b.Events {
			if err := onRecord(&f, ev, b.Raw[i]); err != nil {
				loopErr = err
				cancel()
				break
			}
		}
		b.Release()
	}
	if err := <-decErr; err != nil && loopErr == nil && !errors.Is(err, context.Canceled) {
		return err
	}
	if loopErr != nil {
		return loopErr
	}
	return ctx.Err()
}

// appendCompact appends the JSON value raw (valid JSON, as DecodeRaw gives)
// to dst without the whitespace between tokens; strings, numbers and key
// order are kept byte for byte. Strings are skipped with IndexByte, so a
// compact record costs little more than a copy.
func appendCompact(dst, raw []byte) []byte {
	start := 0 // raw[start:i] is still to copy
	for i := 0; i < len(raw); {
		switch raw[i] {
		case '"':
			j := i + 1
			for {
				k := bytes.IndexByte(raw[j:], '"')
				if k < 0 {
					return append(dst, raw[start:]...) // unterminated: not JSON, kept as it is
				}
				j += k
				bs := 0 // backslashes before the quote
				for p := j - 1; p > i && raw[p] == '\\'; p-- {
					bs++
				}
				j++
				if bs%2 == 0 {
					break
				}
			}
			i = j
		case ' ', '\t', '\n', '\r':
			dst = append(dst, raw[start:i]...)
			i++
			start = i
		default:
			i++
		}
	}
	return append(dst, raw[start:]...)
}

// pacer spaces records by event time: at speed N, a record whose event time
// is d after the first record's is sent d/N after it (records older than
// one already sent go at once). Speed 0 does not wait.
type pacer struct {
	speed      float64
	first, max time.Time // event times
	start      time.Time // wall time of the first record
	now        func() time.Time
	sleep      func(context.Context, time.Duration) error
}

func newPacer(speed float64) *pacer {
	return &pacer{speed: speed, now: time.Now, sleep: func(ctx context.Context, d time.Duration) error {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}}
}

// wait returns when the record with event time t is due.
func (p *pacer) wait(ctx context.Context, t time.Time) error {
	if p == nil || p.speed <= 0 {
		return nil
	}
	if p.first.IsZero() {
		p.first, p.max, p.start = t, t, p.now()
		return nil
	}
	if !t.After(p.max) {
		return nil
	}
	p.max = t
	due := p.start.Add(time.Duration(float64(t.Sub(p.first)) / p.speed))
	if d := due.Sub(p.now()); d >= time.Millisecond {
		return p.sleep(ctx, d)
	}
	return nil
}

// print writes the human summary.
func (s *publishSummary) print(w io.Writer) {
	fmt.Fprintf(w, "\ntrailsight publish: %s → stream %s (%s.<account>.<region>)\n", s.Input, s.Stream, s.Prefix)
	fmt.Fprintf(w, "  files       %d read (%s)%s\n", s.Files, humanBytes(s.Bytes), skippedList(s.Skipped))
	fmt.Fprintf(w, "  records     %d published, %d stored, %d duplicates dropped by the server", s.Sent, s.Stored, s.Duplicates)
	if s.Failed > 0 {
		fmt.Fprintf(w, ", %d FAILED", s.Failed)
	}
	fmt.Fprintln(w)
	printSpanAndBad(w, s.First, s.Last, s.BadFiles, s.BadRecords, s.Bad)
	fmt.Fprintf(w, "  time        %.2fs, %.0f records/s\n", s.Seconds, s.RecordsPerSec)
}
