package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/rs/zerolog"

	"github.com/trailsight/trailsight/configs"
	"github.com/trailsight/trailsight/notify"
	"github.com/trailsight/trailsight/stream"
)

// source is where the service reads events from. The service calls Next,
// Position and Close from its one loop goroutine.
type source interface {
	// Next blocks until events are ready, and returns them with the func
	// that settles them: commit(nil) once a checkpoint holds them,
	// commit(err) to hand them back (commit is nil when there is nothing to
	// settle). Events come in whole units — a file for the S3 and folder
	// sources, a batch of messages for NATS — so a checkpoint taken between
	// two calls never splits one. Next returns ctx.Err() when ctx is done,
	// io.EOF at the end of a finite input (standard input). The events are
	// the caller's until the next call.
	Next(ctx context.Context) (events []stream.Event, commit func(error), err error)
	// Position is what a checkpoint records with a state that has counted
	// every event Next returned: the source opened again with it returns
	// exactly the events after them.
	Position() []byte
	Close() error
}

// openSource opens run.source of the given kind, resuming at pos (nil: a
// fresh start). close releases what it started beside the source (the
// embedded server).
func (s *service) openSource(ctx context.Context, kind, folder string, pos []byte) (src source, desc string, close func(), err error) {
	r := s.cfg.Run
	switch kind {
	case configs.SourceNATS:
		return s.openNATS(ctx, pos)
	case configs.SourceStdin:
		return newStdinSource(ctx, s.log), "standard input", func() {}, nil
	}
	from, _ := r.FromTime()
	opt := stream.PollOptions{Window: r.PollWindow.Duration, Interval: r.PollInterval.Duration, From: from,
		Workers: s.cfg.Input.Workers, Logger: s.log}
	var p *stream.Poller
	if kind == configs.SourceFolder {
		p, err = stream.NewDirPoller(folder, pos, opt)
	} else {
		bucket, prefix, perr := stream.ParseS3URL(r.Source)
		if perr != nil {
			return nil, "", nil, fmt.Errorf("run.source: %w", perr)
		}
		c, cerr := stream.NewS3Client(ctx, stream.S3ClientOptions{})
		if cerr != nil {
			return nil, "", nil, fmt.Errorf("run.source: %w", cerr)
		}
		p, err = stream.NewS3Poller(c, bucket, prefix, pos, opt)
	}
	if err != nil {
		return nil, "", nil, fmt.Errorf("run.source: %w", err)
	}
	st := p.Stats()
	s.log.Info().Str("source", p.String()).Time("through", st.Through).Int("done", st.Done).
		Dur("poll_interval", opt.Interval).Dur("poll_window", opt.Window).Msg("watching for new files")
	return &pollSource{p: p, log: s.log, m: &s.m}, p.String(), func() {}, nil
}

// openNATS reads a JetStream stream (the embedded server's by default);
// the position is the stream sequence the state has counted through.
func (s *service) openNATS(ctx context.Context, pos []byte) (source, string, func(), error) {
	srcURL, stop, err := natsSourceURL(ctx, s.cfg.Run, s.log)
	if err != nil {
		return nil, "", nil, err
	}
	src, desc, err := s.openNATSAt(ctx, srcURL, pos, nil)
	if err != nil {
		stop()
		return nil, "", nil, err
	}
	return src, desc, stop, nil
}

// natsSourceURL returns the URL of run.source's stream, starting the
// embedded server (and its stream, partitioned as run.partitions says)
// when run.source is "embedded"; stop shuts it down.
func natsSourceURL(ctx context.Context, r configs.Run, log zerolog.Logger) (srcURL string, stop func(), err error) {
	if r.Source != "embedded" {
		return r.Source, func() {}, nil
	}
	ns, url, err := notify.StartEmbeddedNATS(notify.EmbeddedOptions{Port: r.EmbeddedPort, StoreDir: filepath.Join(r.StateDir, "nats")})
	if err != nil {
		return "", nil, fmt.Errorf("embedded NATS: %w", err)
	}
	if err := ensureStream(ctx, url, embeddedStream, stream.DefaultEventsPrefix, r.Partitions); err != nil {
		ns.Shutdown()
		return "", nil, fmt.Errorf("embedded NATS: %w", err)
	}
	log.Info().Str("url", url).Str("stream", embeddedStream).Int("partitions", r.Partitions).Msg("embedded NATS server started")
	return url + "/" + embeddedStream, ns.Shutdown, nil
}

// openNATSAt reads the stream at srcURL from pos; mod, when set, changes
// the options (the consumer of a partition).
func (s *service) openNATSAt(ctx context.Context, srcURL string, pos []byte, mod func(*stream.NATSSourceOptions)) (source, string, error) {
	r := s.cfg.Run
	var seq uint64
	switch len(pos) {
	case 0:
	case 8:
		seq = binary.BigEndian.Uint64(pos)
	default:
		return nil, "", fmt.Errorf("resume from %s: a NATS position of %d bytes, want 8 (move it away to start afresh)", s.store, len(pos))
	}
	sopt, err := stream.ParseNATSURL(srcURL)
	if err != nil {
		return nil, "", fmt.Errorf("run.source: %w", err)
	}
	if mod != nil {
		mod(&sopt)
	}
	sopt.SkipThrough = seq
	sopt.Logger = s.log
	sopt.InOrder = true // after a crash, replay what the checkpoint does not hold, in order
	// Acks wait for a checkpoint: the server must not redeliver before, nor
	// stop sending because too many are unacknowledged (a checkpoint is also
	// taken when half of them are pending).
	sopt.AckWait = max(sopt.AckWait, 3*r.CheckpointInterval.Duration)
	sopt.MaxAckPending = max(sopt.MaxAckPending, maxPending)
	src, err := stream.NewNATSSource(ctx, sopt)
	if err != nil {
		return nil, "", fmt.Errorf("run.source: %w", err)
	}
	return natsSource{src}, sopt.String(), nil
}

// natsSource is a NATS JetStream stream: acks follow checkpoints.
type natsSource struct{ *stream.NATSSource }

func (n natsSource) Position() []byte { return binary.BigEndian.AppendUint64(nil, n.Delivered()) }

// pollSource is an S3 prefix or a folder, one file per Next.
type pollSource struct {
	p    *stream.Poller
	log  zerolog.Logger
	m    *serviceMetrics
	prev stream.Batch
}

func (s *pollSource) Next(ctx context.Context) ([]stream.Event, func(error), error) {
	s.prev.Release()
	b, err := s.p.Next(ctx)
	if st := s.p.Stats(); st.Polls > 0 {
		s.m.pollSecs.Set(st.LastPoll.Seconds())
	}
	if err != nil {
		return nil, nil, err
	}
	s.prev = b
	s.m.files.Inc()
	switch {
	case b.Err != nil:
		s.m.badFiles.Inc()
		s.log.Warn().Str("file", b.File.Path).Err(b.Err).Int("events_kept", len(b.Events)).Msg("bad file skipped")
	case b.Stats.BadRecords > 0:
		s.log.Warn().Str("file", b.File.Path).Int("bad_records", b.Stats.BadRecords).Str("reason", b.Stats.BadReason).Msg("bad records skipped")
	}
	if st := s.p.Stats(); !st.Delivery.IsZero() {
		s.m.sourceLag.Set(time.Since(st.Delivery).Seconds())
	}
	return b.Events, nil, nil
}

func (s *pollSource) Position() []byte { return s.p.Position() }

func (s *pollSource) Close() error { return s.p.Close() }

// stdinSource is standard input, read to its end. It has no position: what
// a crash interrupts must be fed again.
type stdinSource struct {
	chunks chan []stream.Event
	errc   chan error
	cancel context.CancelFunc
}

func newStdinSource(ctx context.Context, log zerolog.Logger) *stdinSource {
	ctx, cancel := context.WithCancel(ctx)
	s := &stdinSource{chunks: make(chan []stream.Event, 4), errc: make(chan error, 1), cancel: cancel}
	go func() {
		defer close(s.chunks)
		s.errc <- stream.ReadStream(ctx, os.Stdin, func(evs []stream.Event, st stream.DocStats) error {
			if st.BadRecords > 0 {
				log.Warn().Int("bad_records", st.BadRecords).Str("reason", st.BadReason).Msg("bad records skipped")
			}
			select {
			case s.chunks <- slices.Clone(evs):
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		})
	}()
	return s
}

func (s *stdinSource) Next(ctx context.Context) ([]stream.Event, func(error), error) {
	select {
	case evs, ok := <-s.chunks:
		if ok {
			return evs, nil, nil
		}
		if err := <-s.errc; err != nil {
			s.errc <- err
			return nil, nil, fmt.Errorf("read standard input: %w", err)
		}
		s.errc <- nil
		return nil, nil, io.EOF
	case <-ctx.Done():
		return nil, nil, ctx.Err()
	}
}

func (s *stdinSource) Position() []byte { return nil }

func (s *stdinSource) Close() error {
	s.cancel()
	return nil
}

// The checkpoint file: a header, then the detector's SaveState.
//
//	magic    "TSCK"
//	version  1 byte (checkpointVersion)
//	kind     1 byte length, then the source kind ("nats", "s3", "folder", "stdin")
//	position 4 bytes big-endian length, then the source's Position
//	dedupe   4 bytes big-endian length, then the Deduper's AppendState (from version 2)
//
// A version-1 header has no dedupe part. A file of the first format (8
// bytes of NATS stream sequence, then the state) has no magic; it is read
// as a NATS checkpoint.
const (
	checkpointMagic   = "TSCK"
	checkpointVersion = 2
	maxPositionBytes  = 1 << 30
)

// errCheckpoint is wrapped by readCheckpointHeader's errors.
var errCheckpoint = errors.New("not a checkpoint of this version")

// writeCheckpointHeader writes the header for a source of kind at pos,
// with the de-duplication state dedupe.
func writeCheckpointHeader(w io.Writer, kind string, pos, dedupe []byte) error {
	if len(kind) > 255 || len(pos) > maxPositionBytes || len(dedupe) > maxPositionBytes {
		return fmt.Errorf("checkpoint header: kind of %d bytes, position of %d, dedupe state of %d", len(kind), len(pos), len(dedupe))
	}
	b := make([]byte, 0, len(checkpointMagic)+2+len(kind)+8+len(pos)+len(dedupe))
	b = append(b, checkpointMagic...)
	b = append(b, checkpointVersion, byte(len(kind)))
	b = append(b, kind...)
	b = binary.BigEndian.AppendUint32(b, uint32(len(pos)))
	b = append(b, pos...)
	b = binary.BigEndian.AppendUint32(b, uint32(len(dedupe)))
	b = append(b, dedupe...)
	_, err := w.Write(b)
	return err
}

// readCheckpointHeader reads the header; legacy is true for a file of the
// first format, whose position (8 bytes) it returns with kind "nats".
// dedupe is nil for a header without de-duplication state.
func readCheckpointHeader(r *bufio.Reader) (kind string, pos, dedupe []byte, legacy bool, err error) {
	head, err := r.Peek(len(checkpointMagic))
	if err != nil {
		return "", nil, nil, false, fmt.Errorf("%w: %w", errCheckpoint, err)
	}
	if string(head) != checkpointMagic {
		pos = make([]byte, 8)
		if _, err := io.ReadFull(r, pos); err != nil {
			return "", nil, nil, false, fmt.Errorf("%w: %w", errCheckpoint, err)
		}
		return configs.SourceNATS, pos, nil, true, nil
	}
	r.Discard(len(checkpointMagic))
	var vk [2]byte
	if _, err := io.ReadFull(r, vk[:]); err != nil {
		return "", nil, nil, false, fmt.Errorf("%w: %w", errCheckpoint, err)
	}
	if vk[0] != 1 && vk[0] != checkpointVersion {
		return "", nil, nil, false, fmt.Errorf("%w: version %d, this trailsight writes %d", errCheckpoint, vk[0], checkpointVersion)
	}
	k := make([]byte, vk[1])
	if _, err := io.ReadFull(r, k); err != nil {
		return "", nil, nil, false, fmt.Errorf("%w: %w", errCheckpoint, err)
	}
	if pos, err = readPart(r, "position"); err != nil {
		return "", nil, nil, false, err
	}
	if vk[0] >= 2 {
		if dedupe, err = readPart(r, "dedupe state"); err != nil {
			return "", nil, nil, false, err
		}
	}
	return string(k), pos, dedupe, false, nil
}

// readPart reads a 4-byte length, then that many bytes.
func readPart(r *bufio.Reader, what string) ([]byte, error) {
	var n [4]byte
	if _, err := io.ReadFull(r, n[:]); err != nil {
		return nil, fmt.Errorf("%w: %s: %w", errCheckpoint, what, err)
	}
	size := binary.BigEndian.Uint32(n[:])
	if size > maxPositionBytes {
		return nil, fmt.Errorf("%w: %s of %d bytes", errCheckpoint, what, size)
	}
	// Copy rather than allocate size up front: a truncated file must not
	// cost its claimed size.
	var buf bytes.Buffer
	if _, err := io.CopyN(&buf, r, int64(size)); err != nil {
		return nil, fmt.Errorf("%w: %s: %w", errCheckpoint, what, err)
	}
	return buf.Bytes(), nil
}
