package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/rs/zerolog"

	"github.com/trailsight/trailsight/baseline"
	"github.com/trailsight/trailsight/configs"
	"github.com/trailsight/trailsight/detector"
	"github.com/trailsight/trailsight/stream"
)

type runCmd struct {
	Config    string        `help:"TOML configuration (see configs/trailsight.example.toml, sections [run] and [notify])." required:"" type:"existingfile" placeholder:"FILE"`
	Check     bool          `help:"Validate the configuration and exit."`
	Out       []string      `help:"More destinations, as for detect --out (added to [notify])." placeholder:"DST" sep:"none"`
	UntilIdle time.Duration `name:"until-idle" help:"Exit once no event has arrived for this long: flush the detector as at the end of an input, checkpoint, exit. For replays and tests; 0 runs until SIGTERM." default:"0"`
}

func (c *runCmd) Help() string {
	return `Runs trailsight as a service: reads CloudTrail events from run.source, detects, and delivers
insights to the [notify] destinations and --out. run.source is one of:
  "embedded" (default)   the real NATS server embedded in process, stream CLOUDTRAIL, fed by
                         'trailsight publish'; nats://HOST:PORT/STREAM for an external JetStream stream
                         (durable consumer)
  s3://BUCKET/PREFIX     the trail's bucket, listed every run.poll_interval (credentials, region and
                         endpoint from the environment, as for the AWS CLI)
  /a/folder, file://…    a folder in the AWSLogs/ layout (or of CloudTrail JSON files), listed the same way
  -                      standard input until its end: flush, checkpoint, exit 0 (cannot resume)
S3 and folder sources read each new file once, whole, in delivery order; every listing covers the
trailing run.poll_window again for files that land late. Without a checkpoint they start at run.from
(default now − poll_window): a past date backfills the archive, then keeps watching.

State — the detector's models, recent minutes and open insights, and the source's position — is
checkpointed atomically into run.state_dir every run.checkpoint_interval and on shutdown, between whole
files; NATS messages are acknowledged only once a checkpoint holds them. After a crash the service resumes
from the checkpoint and re-reads exactly what it lacks: insight IDs and S3 keys are derived from content and
NATS outputs carry Nats-Msg-Id, so nothing is lost and nothing is duplicated downstream.

Growing past one machine: with run.partitions = N (a NATS source whose stream the server splits by
account and region: 'trailsight publish --create --partitions N' makes one) each instance serves one
partition — run.partition, or "auto": the first free — with its own consumer and detector, and keeps the
checkpoint in JetStream (run.state_store = "nats") behind a lease of run.lease_ttl. An instance whose
partition is taken waits (/healthz: "waiting") and takes over when the owner stops or its lease expires,
resuming from the checkpoint; one that loses its lease stops processing it at once, writing nothing.

/metrics (Prometheus) and /healthz listen on run.listen. SIGTERM or Ctrl-C: stop reading, deliver,
checkpoint, exit within run.shutdown_grace.

Examples:
  trailsight run --config trailsight.toml &
  trailsight publish --in /data/AWSLogs nats://127.0.0.1:4222/CLOUDTRAIL
  # with [run] source = "s3://my-trail-bucket/org" and from = "2026-01-01": backfill, then watch
  trailsight run --config trailsight.toml
  zcat export.json.gz | trailsight run --config stdin.toml   # [run] source = "-"
  # three machines, [run] partitions = 3, partition = "auto", source = nats://nats.internal:4222/CLOUDTRAIL
  trailsight publish --in /data/AWSLogs --create --partitions 3 nats://nats.internal:4222/CLOUDTRAIL
  trailsight run --config partitioned.toml`
}

// embeddedStream is the stream the embedded server holds for CloudTrail events.
const embeddedStream = "CLOUDTRAIL"

// maxPending bounds the messages read and not yet acknowledged (held until
// a checkpoint); a checkpoint is taken when half of it is reached.
const maxPending = 200_000

func (c *runCmd) Run(g *globals) error {
	cfg, err := configs.Load(c.Config)
	if err != nil {
		return err
	}
	if _, err := cfg.Notify.Outs(); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	if c.Check {
		fmt.Printf("%s: ok\n", c.Config)
		return nil
	}
	return runService(g.ctx, cfg, c.Out, c.UntilIdle, g.log)
}

// service is one running trailsight run.
type service struct {
	cfg   configs.Config
	log   zerolog.Logger
	det   *detector.Detector
	dd    *stream.Deduper
	outs  *outputs
	chs   *charts // output.charts: a PNG of each insight as it ends; nil when off
	src   source
	kind  string     // the source's kind, configs.SourceNATS…
	store stateStore // the checkpoint: header with the source position, then detector state
	h     *health
	// fence, when set, is checked before anything only the owner of the
	// source may do (deliver, checkpoint, flush): an error stops the
	// service at once, writing nothing.
	fence func() error

	m          serviceMetrics
	pending    []func(error)
	nPending   int  // events behind pending
	dirty      bool // events read since the last checkpoint
	idleFrom   time.Time
	lastGauges time.Time // when gauges last read the detector's statistics
	lateSeen   int64     // late events already added to the late counter
	mutedSeen  int64     // muted insights already added to the muted counter
}

type serviceMetrics struct {
	events, insights, checkpoints, late, muted, files, badFiles, duplicates, charts, chartsFailed prometheus.Counter
	series, open, lagSeconds, watermark, ckSecs, pollSecs, sourceLag                              prometheus.Gauge
}

// newCounter registers trailsight_<name> in reg.
func newCounter(reg prometheus.Registerer, name, help string) prometheus.Counter {
	c := prometheus.NewCounter(prometheus.CounterOpts{Namespace: "trailsight", Name: name, Help: help})
	reg.MustRegister(c)
	return c
}

// newGauge registers trailsight_<name> in reg.
func newGauge(reg prometheus.Registerer, name, help string) prometheus.Gauge {
	g := prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "trailsight", Name: name, Help: help})
	reg.MustRegister(g)
	return g
}

func newServiceMetrics(reg prometheus.Registerer) serviceMetrics {
	f := func(name, help string) prometheus.Counter { return newCounter(reg, name, help) }
	gauge := func(name, help string) prometheus.Gauge { return newGauge(reg, name, help) }
	return serviceMetrics{
		events:       f("events_total", "CloudTrail events read from the source."),
		late:         f("late_events_total", "Events whose minute was already closed (dropped)."),
		insights:     f("insight_events_total", "Insights events (Start and End) produced."),
		muted:        f("insights_muted_total", "Insights detected on series whose [[detector.rules]] mute their kind (not sent)."),
		charts:       f("charts_total", "PNG charts of insights written to output.charts."),
		chartsFailed: f("charts_failed_total", "Charts of insights that could not be drawn or written (logged; the insight itself is delivered)."),
		checkpoints:  f("checkpoints_total", "Checkpoints written."),
		series:       gauge("series", "Series the detector knows."),
		open:         gauge("open_insights", "Insights started and not yet ended."),
		lagSeconds:   gauge("watermark_lag_seconds", "Wall clock minus the detector's watermark."),
		watermark:    gauge("watermark_timestamp_seconds", "The detector's watermark (event time, Unix seconds): every minute before it is closed."),
		ckSecs:       gauge("checkpoint_seconds", "Time the last checkpoint took."),
		files:        f("source_files_total", "Files read from an S3 or folder source, bad ones included."),
		duplicates:   f("duplicate_events_total", "Records dropped because their eventID was already read (input.dedupe_window, kept across restarts)."),
		badFiles:     f("bad_files_total", "Files of an S3 or folder source that could not be read or decoded whole (skipped)."),
		pollSecs:     gauge("poll_seconds", "Time the last listing of an S3 or folder source took."),
		sourceLag:    gauge("source_lag_seconds", "Wall clock minus the delivery time of the newest file read (S3 and folder sources)."),
	}
}

func runService(ctx context.Context, cfg configs.Config, extra []string, untilIdle time.Duration, log zerolog.Logger) error {
	r := cfg.Run
	if err := os.MkdirAll(r.StateDir, 0o755); err != nil {
		return fmt.Errorf("run.state_dir: %w", err)
	}
	kind, folder := r.SourceKind()
	if kind == "" {
		return fmt.Errorf("run.source %q: not a source", r.Source)
	}
	if r.StateStoreKind() == configs.StateNATS {
		return runShared(ctx, cfg, extra, untilIdle, log)
	}
	reg := prometheus.NewRegistry()
	s := &service{cfg: cfg, log: log, dd: stream.NewDeduper(cfg.Input.DedupeWindow.Duration), kind: kind,
		store: fileStore(filepath.Join(r.StateDir, "detector.state")), h: &health{}, m: newServiceMetrics(reg)}
	var pos []byte
	var err error
	if s.det, pos, err = s.loadDetector(); err != nil {
		return err
	}
	src, desc, stopSrc, err := s.openSource(ctx, kind, folder, pos)
	if err != nil {
		return err
	}
	defer stopSrc()
	defer src.Close()
	s.src = src
	if s.chs, err = openServiceCharts(cfg, log, s.m); err != nil {
		return err
	}
	defer s.chs.close()
	if s.outs, err = openServiceOutputs(ctx, cfg, extra, log, reg); err != nil {
		return err
	}
	if r.Listen != "" {
		stop, err := s.h.serveHTTP(r.Listen, reg, log)
		if err != nil {
			s.outs.Close()
			return err
		}
		defer stop()
	}
	log.Info().Str("source", desc).Str("kind", kind).Strs("outputs", s.outs.names).Str("state", s.store.String()).Msg("trailsight run started")

	ended, runErr := s.loop(ctx, src, untilIdle)

	// Shutdown: deliver what is pending, checkpoint, ack, within the grace period.
	sctx, cancel := context.WithTimeout(context.Background(), r.ShutdownGrace.Duration)
	defer cancel()
	runErr = s.stop(sctx, ended, untilIdle, runErr)
	ferr := s.outs.finish(sctx)
	if ferr != nil {
		log.Warn().Err(ferr).Msg("some insights wait in the spool")
	}
	log.Info().Err(runErr).Msg("trailsight run stopped")
	return runErr
}

// openServiceCharts starts drawing charts into output.charts, counted in
// m; nil when it is not set.
func openServiceCharts(cfg configs.Config, log zerolog.Logger, m serviceMetrics) (*charts, error) {
	if cfg.Output.Charts == "" {
		return nil, nil
	}
	ch, err := newCharts("output.charts", cfg.Output.Charts, log)
	if err != nil {
		return nil, err
	}
	ch.onDone = func(ok bool) {
		if ok {
			m.charts.Inc()
		} else {
			m.chartsFailed.Inc()
		}
	}
	return ch, nil
}

// openServiceOutputs opens the [notify] destinations and the --out ones,
// and starts their delivery.
func openServiceOutputs(ctx context.Context, cfg configs.Config, extra []string, log zerolog.Logger, reg prometheus.Registerer) (*outputs, error) {
	var specs []configs.Out
	for _, o := range extra {
		specs = append(specs, configs.Out{Spec: o})
	}
	more, _ := cfg.Notify.Outs()
	specs = append(specs, more...)
	if len(specs) == 0 {
		log.Warn().Msg("no destination configured: insights go to standard output")
		specs = []configs.Out{{Spec: "-"}}
	}
	spool := cfg.Notify.Spool
	if spool == "" {
		spool = filepath.Join(cfg.Run.StateDir, "spool")
	}
	outs, err := openOutputs(ctx, specs, cfg.Output.StrictAWS, false, spool, log, reg)
	if err != nil {
		return nil, err
	}
	for _, rel := range outs.reliable {
		rel.Start(ctx)
	}
	return outs, nil
}

// stop ends a loop that returned (ended, runErr): unless it failed or the
// fence forbids it, it delivers the flushed insights (at the end of a
// finite input or --until-idle) and checkpoints; otherwise it hands the
// unsettled events back. ctx bounds the delivery.
func (s *service) stop(ctx context.Context, ended bool, untilIdle time.Duration, runErr error) error {
	if runErr == nil && s.fence != nil {
		runErr = s.fence()
	}
	if runErr == nil && (untilIdle > 0 || ended) {
		runErr = s.deliver(ctx, s.det.Flush())
	}
	if runErr == nil {
		runErr = s.checkpoint()
	}
	if runErr != nil {
		s.nakAll(runErr)
	}
	return runErr
}

// loop reads, detects and delivers until ctx ends, the source has been
// idle for untilIdle, a finite source ends (ended true), or an error stops
// the service.
func (s *service) loop(ctx context.Context, src source, untilIdle time.Duration) (ended bool, err error) {
	every := s.cfg.Run.CheckpointInterval.Duration
	s.idleFrom = time.Now()
	lastCk := time.Now()
	for {
		nctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		evs, ack, err := src.Next(nctx)
		cancel()
		if err == nil {
			// Count what Next returned even when ctx ended meanwhile: the
			// position the next checkpoint records holds it.
			s.dirty = true
			if ack != nil {
				s.pending = append(s.pending, ack)
				s.nPending += len(evs)
			}
			s.idleFrom = time.Now()
			for i := range evs {
				if !s.dd.Seen(&evs[i]) {
					s.det.Add(&evs[i])
				} else {
					s.m.duplicates.Inc()
				}
			}
			s.m.events.Add(float64(len(evs)))
		}
		switch {
		case errors.Is(err, io.EOF):
			s.log.Info().Msg("input ended: flushing and stopping")
			return true, nil
		case ctx.Err() != nil:
			return false, nil
		case err != nil && !errors.Is(err, context.DeadlineExceeded):
			return false, fmt.Errorf("source: %w", err)
		}
		if s.fence != nil {
			if err := s.fence(); err != nil {
				return false, err
			}
		}
		if err := s.deliver(ctx, s.det.Advance()); err != nil {
			return false, err
		}
		if time.Since(s.lastGauges) >= time.Second {
			s.gauges()
		}
		if s.dirty && (time.Since(lastCk) >= every || s.nPending >= maxPending/2) {
			if err := s.checkpoint(); err != nil {
				return false, err
			}
			lastCk = time.Now()
		}
		if untilIdle > 0 && time.Since(s.idleFrom) >= untilIdle {
			s.log.Info().Dur("idle", untilIdle).Msg("source idle: flushing and stopping")
			return false, nil
		}
	}
}

// deliver hands insights to the outputs; they are delivered or spooled when
// it returns nil.
func (s *service) deliver(ctx context.Context, ins []detector.Insight) error {
	if len(ins) == 0 {
		return nil
	}
	s.m.insights.Add(float64(len(ins)))
	s.chs.add(s.det, ins) // now: History is the detector's until the next Add
	for _, in := range ins {
		ev := s.log.Info()
		if in.State == detector.End {
			ev = s.log.Debug()
		}
		ev.Str("state", in.State.String()).Str("account", in.Account).Str("region", in.Region).
			Str("event_source", in.EventSource).Str("event_name", in.EventName).Str("insight_type", in.Type.String()).
			Time("event_time", in.Time).Str("shared_event_id", in.SharedEventID).Msg("insight")
	}
	if err := s.outs.Notify(ctx, ins); err != nil {
		return fmt.Errorf("deliver %d insight events: %w", len(ins), err)
	}
	return nil
}

// checkpoint writes the source's position and the detector's state
// atomically, then acknowledges the events they hold.
func (s *service) checkpoint() error {
	t := time.Now()
	err := s.store.save(func(w io.Writer) error {
		// Where the source is: after a crash it re-reads what the state does
		// not hold, and skips what it does, whatever was acked.
		if err := writeCheckpointHeader(w, s.kind, s.src.Position(), s.dd.AppendState(nil)); err != nil {
			return err
		}
		return s.det.SaveState(w)
	})
	s.h.checkpointed(err)
	if err != nil {
		return fmt.Errorf("checkpoint %s: %w", s.store, err)
	}
	for _, ack := range s.pending {
		ack(nil)
	}
	s.pending, s.nPending, s.dirty = s.pending[:0], 0, false
	s.m.checkpoints.Inc()
	s.m.ckSecs.Set(time.Since(t).Seconds())
	st := s.gauges()
	s.log.Debug().Dur("took", time.Since(t)).Int("series", st.Series).Msg("checkpoint written")
	return nil
}

// stateStore is where the service's checkpoint lives. Its methods are
// called from the service's loop goroutine.
type stateStore interface {
	// load returns the checkpoint to read and close; nil when there is
	// none.
	load() (io.ReadCloser, error)
	// save replaces the checkpoint with what write writes, atomically: a
	// later load returns this one or, after a failure at any point, the
	// previous one, whole.
	save(write func(io.Writer) error) error
	String() string
}

// fileStore is a checkpoint file: written beside, synced, renamed over.
type fileStore string

func (f fileStore) String() string { return string(f) }

func (f fileStore) load() (io.ReadCloser, error) {
	r, err := os.Open(string(f))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	return r, err
}

func (f fileStore) save(write func(io.Writer) error) error {
	path := string(f)
	tmp, err := os.CreateTemp(filepath.Dir(path), ".state-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	bw := bufio.NewWriterSize(tmp, 1<<20)
	err = write(bw)
	if err == nil {
		err = bw.Flush()
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err == nil {
		if d, derr := os.Open(filepath.Dir(path)); derr == nil {
			d.Sync()
			d.Close()
		}
	}
	return err
}

// gauges sets the metrics read from the detector's statistics: series,
// open insights, late events, the event-time watermark and its lag.
func (s *service) gauges() detector.Stats {
	st := s.det.Stats()
	s.lastGauges = time.Now()
	s.m.series.Set(float64(st.Series))
	s.m.open.Set(float64(st.Open))
	if d := st.Late - s.lateSeen; d > 0 {
		s.m.late.Add(float64(d))
	}
	s.lateSeen = st.Late
	if d := st.Muted - s.mutedSeen; d > 0 {
		s.m.muted.Add(float64(d))
	}
	s.mutedSeen = st.Muted
	if !st.Watermark.IsZero() {
		s.m.watermark.Set(float64(st.Watermark.Unix()))
		s.m.lagSeconds.Set(time.Since(st.Watermark).Seconds())
	}
	return st
}

func (s *service) nakAll(err error) {
	for _, ack := range s.pending {
		ack(err)
	}
	s.pending = nil
}

// loadDetector resumes from the checkpoint — the detector and the
// source's position — or starts fresh (warm when run.model is set; pos
// nil).
func (s *service) loadDetector() (*detector.Detector, []byte, error) {
	dc := s.cfg.DetectorConfig()
	f, err := s.store.load()
	switch {
	case err == nil && f != nil:
		defer f.Close()
		afresh := "move it away to start afresh"
		if s.cfg.Run.StateStoreKind() == configs.StateNATS {
			afresh = "delete it to start afresh"
		}
		br := bufio.NewReaderSize(f, 1<<20)
		kind, pos, dedupe, legacy, err := readCheckpointHeader(br)
		if err != nil {
			return nil, nil, fmt.Errorf("resume from %s: %w (%s)", s.store, err, afresh)
		}
		if kind != s.kind {
			return nil, nil, fmt.Errorf("resume from %s: a checkpoint of a %s source, and run.source is a %s source (%s, or give run.state_dir another folder)",
				s.store, kind, s.kind, afresh)
		}
		d, err := detector.RestoreState(dc, br)
		if err != nil {
			return nil, nil, fmt.Errorf("resume from %s: %w (%s)", s.store, err, afresh)
		}
		if pos == nil {
			pos = []byte{}
		}
		if dedupe != nil {
			if err := s.dd.RestoreState(dedupe); err != nil {
				// Only duplicates straddling the restart could now count
				// twice: not a reason to refuse the state.
				s.log.Warn().Err(err).Str("state", s.store.String()).Msg("de-duplication state not restored: starting it empty")
			}
		}
		if ch := d.ConfigChanges(); ch != "" {
			s.log.Warn().Str("state", s.store.String()).Str("changes", ch).Msg("resumed with other detector settings than the checkpoint's: the new ones apply from now on")
		}
		st := d.Stats()
		s.log.Info().Str("state", s.store.String()).Str("kind", kind).Bool("first_format", legacy).Int("position_bytes", len(pos)).
			Int("series", st.Series).Int("open", st.Open).Time("watermark", st.Watermark).Msg("resumed from checkpoint")
		return d, pos, nil
	case err != nil:
		return nil, nil, fmt.Errorf("resume: %w", err)
	}
	d, err := detector.New(dc)
	if err != nil {
		return nil, nil, err
	}
	if m := s.cfg.Run.Model; m != "" {
		meta, entries, err := baseline.LoadFile(m)
		if err != nil {
			return nil, nil, fmt.Errorf("run.model: %w", err)
		}
		if err := d.LoadModels(meta, entries); err != nil {
			return nil, nil, err
		}
	}
	return d, nil, nil
}

// health is what /healthz reports. Its methods may be called from any
// goroutine.
type health struct {
	mu     sync.Mutex
	lastCk time.Time
	ckErr  error
	// Of a partitioned service (state in NATS); partition < 0 for none.
	shared    bool
	partition int
	lease     string // "held", "waiting"
	holder    string // who holds the lease this one waits for
}

func (h *health) checkpointed(err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.ckErr = err
	if err == nil {
		h.lastCk = time.Now()
	}
}

// serveHTTP serves /metrics and /healthz until the returned stop is called.
func (h *health) serveHTTP(addr string, reg *prometheus.Registry, log zerolog.Logger) (func(), error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("run.listen: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		h.mu.Lock()
		last, ckErr := h.lastCk, h.ckErr
		status := map[string]any{"status": "ok", "lastCheckpoint": last}
		if h.shared {
			status["lease"] = h.lease
			if h.partition >= 0 {
				status["partition"] = h.partition
			}
			if h.lease == "waiting" {
				status["status"], status["heldBy"] = "waiting", h.holder
			}
		}
		h.mu.Unlock()
		code := http.StatusOK
		if ckErr != nil {
			status["status"], status["error"] = "failing", ckErr.Error()
			code = http.StatusServiceUnavailable
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		json.NewEncoder(w).Encode(status)
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	log.Info().Str("addr", ln.Addr().String()).Msg("serving /metrics and /healthz")
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	}, nil
}

// ensureStream creates the embedded server's CloudTrail stream if missing,
// taking prefix.>, split into partitions (stream.PartitionTransform) when
// there are more than one. A stream that exists is given the transform
// only while it is empty: messages published before are not partitioned.
func ensureStream(ctx context.Context, url, name, prefix string, partitions int) error {
	nc, err := nats.Connect(url, nats.Timeout(5*time.Second))
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	cfg := eventsStreamConfig(name, prefix, partitions)
	if partitions > 1 {
		if st, err := js.Stream(ctx, name); err == nil {
			info := st.CachedInfo()
			if _, perr := stream.CheckPartitions(info.Config, partitions); perr != nil && info.State.Msgs > 0 {
				return fmt.Errorf("%w: it already holds %d messages published otherwise (run.partitions must stay what it was for this run.state_dir)", perr, info.State.Msgs)
			}
		}
	}
	_, err = js.CreateOrUpdateStream(ctx, cfg)
	if err != nil && !strings.Contains(err.Error(), "already in use") {
		return fmt.Errorf("create stream %s: %w", name, err)
	}
	return nil
}
