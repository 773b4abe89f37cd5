package main

// The service with its state in NATS: one partition of the stream (or the
// whole stream), held by a lease, so that another instance can take it
// over ("Growing past one machine" in DESIGN.md).

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/trailsight/trailsight/configs"
	"github.com/trailsight/trailsight/stream"
)

// The JetStream buckets of a service with state_store = "nats": leases (a
// key-value bucket whose TTL is run.lease_ttl) and checkpoints (a key-value
// bucket naming objects of the object store of the same name).
const (
	leaseBucket = "trailsight_leases"
	stateBucket = "trailsight_state"
)

// leaseMetrics count what the lease of a shared service does.
type leaseMetrics struct {
	owned, partition         prometheus.Gauge
	renewals, failures, lost prometheus.Counter
	takeovers                prometheus.Counter
}

func newLeaseMetrics(reg prometheus.Registerer) leaseMetrics {
	c := func(name, help string) prometheus.Counter { return newCounter(reg, name, help) }
	g := func(name, help string) prometheus.Gauge { return newGauge(reg, name, help) }
	m := leaseMetrics{
		owned:     g("partition_owned", "1 while this instance holds the lease of its partition (or of the whole stream) and processes it, 0 while it waits."),
		partition: g("partition", "The partition this instance processes; -1 while it waits for a lease."),
		renewals:  c("lease_renewals_total", "Lease renewals that succeeded."),
		failures:  c("lease_renewal_failures_total", "Lease renewals that failed (retried until the lease may have expired)."),
		lost:      c("leases_lost_total", "Leases lost while processing (expired or taken over): processing stopped at once, without writing state."),
		takeovers: c("lease_acquisitions_total", "Leases taken, at start or after waiting for another instance's to expire."),
	}
	m.partition.Set(-1)
	return m
}

// sharedTarget is what one lease covers: a partition's consumer and
// checkpoint, or the whole stream's.
type sharedTarget struct {
	partition int    // -1: the whole stream
	key       string // of the lease and of the checkpoint
	durable   string
	filter    string
}

// runShared runs the service with state_store = "nats": it waits for the
// lease of its partition (run.partition, or the first free one), resumes
// from the checkpoint in NATS, and processes until it stops, or loses the
// lease — then it stops processing at once, writing nothing, and waits
// again.
func runShared(ctx context.Context, cfg configs.Config, extra []string, untilIdle time.Duration, log zerolog.Logger) error {
	r := cfg.Run
	reg := prometheus.NewRegistry()
	m, lm := newServiceMetrics(reg), newLeaseMetrics(reg)
	h := &health{shared: true, partition: -1, lease: "waiting"}
	srcURL, stopServer, err := natsSourceURL(ctx, r, log)
	if err != nil {
		return err
	}
	defer stopServer()
	sopt, err := stream.ParseNATSURL(srcURL)
	if err != nil {
		return fmt.Errorf("run.source: %w", err)
	}
	timeout := cmp.Or(sopt.Timeout, stream.DefaultNATSTimeout)
	nc, err := stream.DialNATS(sopt.URL, sopt.User, sopt.Password, sopt.Token, sopt.CredsFile, timeout, log)
	if err != nil {
		return fmt.Errorf("run.source: %w", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc, jetstream.WithDefaultTimeout(timeout))
	if err != nil {
		return fmt.Errorf("run.source: %w", err)
	}
	targets, err := sharedTargets(ctx, js, r, sopt)
	if err != nil {
		return err
	}
	leases, err := stream.OpenLeaseBucket(ctx, js, leaseBucket, r.LeaseTTL.Duration)
	if err != nil {
		return fmt.Errorf("run.lease_ttl: %w", err)
	}
	chs, err := openServiceCharts(cfg, log, m)
	if err != nil {
		return err
	}
	defer chs.close()
	outs, err := openServiceOutputs(ctx, cfg, extra, log, reg)
	if err != nil {
		return err
	}
	if r.Listen != "" {
		stop, err := h.serveHTTP(r.Listen, reg, log)
		if err != nil {
			outs.Close()
			return err
		}
		defer stop()
	}
	owner := stream.LeaseOwner()
	log.Info().Str("source", sopt.String()).Int("partitions", r.Partitions).Str("partition", string(r.Partition)).
		Str("owner", owner).Dur("lease_ttl", r.LeaseTTL.Duration).Strs("outputs", outs.names).Msg("trailsight run started: waiting for a lease")
	var runErr error
	for {
		t, lease, err := waitLease(ctx, leases, targets, owner, r.LeaseTTL.Duration, h, log)
		if err != nil {
			if ctx.Err() == nil {
				runErr = err
			}
			break
		}
		lm.takeovers.Inc()
		sh := &shared{cfg: cfg, log: log.With().Int("partition", t.partition).Logger(), js: js, srcURL: srcURL,
			t: t, lease: lease, h: h, m: m, lm: lm, outs: outs, chs: chs, timeout: timeout}
		runErr = sh.run(ctx, untilIdle)
		if errors.Is(runErr, stream.ErrLeaseLost) && ctx.Err() == nil {
			lm.lost.Inc()
			h.mu.Lock()
			h.ckErr = nil // the checkpoint refused for the lost lease is not a failure of this instance
			h.mu.Unlock()
			log.Warn().Int("partition", t.partition).Err(runErr).Msg("lease lost: stopped processing without writing state; waiting for a lease again")
			runErr = nil
			continue
		}
		break
	}
	sctx, cancel := context.WithTimeout(context.Background(), r.ShutdownGrace.Duration)
	defer cancel()
	if ferr := outs.finish(sctx); ferr != nil {
		log.Warn().Err(ferr).Msg("some insights wait in the spool")
	}
	log.Info().Err(runErr).Msg("trailsight run stopped")
	return runErr
}

// sharedTargets checks the stream and returns what this instance may
// serve: partition run.partition, or every partition for "auto"; the
// whole stream when it is not partitioned.
func sharedTargets(ctx context.Context, js jetstream.JetStream, r configs.Run, sopt stream.NATSSourceOptions) ([]sharedTarget, error) {
	durable := cmp.Or(sopt.Durable, stream.DefaultNATSDurable)
	base := sopt.Stream + "." + durable
	if !r.Partitioned() {
		return []sharedTarget{{partition: -1, key: base, durable: durable, filter: sopt.FilterSubject}}, nil
	}
	st, err := js.Stream(ctx, sopt.Stream)
	if err != nil {
		return nil, fmt.Errorf("run.source: stream %s: %w", sopt.Stream, err)
	}
	prefix, err := stream.CheckPartitions(st.CachedInfo().Config, r.Partitions)
	if err != nil {
		return nil, fmt.Errorf("run.partitions: %w", err)
	}
	k, auto, _ := r.Partition.Index()
	var ts []sharedTarget
	for i := range r.Partitions {
		if auto || i == k {
			ts = append(ts, sharedTarget{partition: i, key: fmt.Sprintf("%s.p%d-of-%d", base, i, r.Partitions),
				durable: durable + "-p" + strconv.Itoa(i), filter: stream.PartitionSubject(prefix, i)})
		}
	}
	return ts, nil
}

// waitLease takes the lease of the first target whose lease is free,
// trying them all again every lease_ttl/10 (at most a second) until one is.
func waitLease(ctx context.Context, kv jetstream.KeyValue, ts []sharedTarget, owner string, ttl time.Duration, h *health, log zerolog.Logger) (sharedTarget, *stream.Lease, error) {
	poll := min(max(ttl/10, 50*time.Millisecond), time.Second)
	said := ""
	for {
		var held []string
		for _, t := range ts {
			rctx, cancel := context.WithTimeout(ctx, ttl)
			l, err := stream.AcquireLease(rctx, kv, t.key, owner, ttl)
			cancel()
			if err == nil {
				h.mu.Lock()
				h.lease, h.partition, h.holder = "held", t.partition, ""
				h.mu.Unlock()
				log.Info().Int("partition", t.partition).Str("lease", t.key).Msg("lease taken")
				return t, l, nil
			}
			if ctx.Err() != nil {
				return sharedTarget{}, nil, ctx.Err()
			}
			if !errors.Is(err, stream.ErrLeaseHeld) {
				log.Warn().Str("lease", t.key).Err(err).Msg("lease not taken")
			}
			held = append(held, strings.TrimPrefix(err.Error(), stream.ErrLeaseHeld.Error()+": "))
		}
		if msg := strings.Join(held, "; "); msg != said {
			log.Info().Str("held", msg).Dur("lease_ttl", ttl).Msg("waiting for a lease: another instance holds it")
			said = msg
			h.mu.Lock()
			h.lease, h.partition, h.holder = "waiting", -1, msg
			h.mu.Unlock()
		}
		t := time.NewTimer(poll)
		select {
		case <-ctx.Done():
			t.Stop()
			return sharedTarget{}, nil, ctx.Err()
		case <-t.C:
		}
	}
}

// shared is one tenure of a lease: from taking it to stopping or losing
// it.
type shared struct {
	cfg     configs.Config
	log     zerolog.Logger
	js      jetstream.JetStream
	srcURL  string
	t       sharedTarget
	lease   *stream.Lease
	h       *health
	m       serviceMetrics
	lm      leaseMetrics
	outs    *outputs
	chs     *charts
	timeout time.Duration
}

// run resumes from the target's checkpoint and processes until ctx ends,
// the input is idle (untilIdle), an error, or the lease is lost (an error
// wrapping stream.ErrLeaseLost; nothing written after it). It releases a
// lease it still holds.
func (sh *shared) run(ctx context.Context, untilIdle time.Duration) error {
	// pctx ends the processing: on SIGTERM, or at once when the lease is
	// lost. The lease is kept until the tenure is over, shutdown included
	// (its last checkpoint needs it).
	pctx, cancel := context.WithCancel(ctx)
	defer cancel()
	kctx, stopKeeping := context.WithCancel(context.Background())
	kept := make(chan struct{})
	go func() {
		defer close(kept)
		sh.lease.Keep(kctx, func(err error) {
			if err == nil {
				sh.lm.renewals.Inc()
				return
			}
			sh.lm.failures.Inc()
			sh.log.Warn().Str("lease", sh.t.key).Err(err).Msg("lease renewal failed")
		})
		cancel() // lost (or the tenure is over): stop processing at once
	}()
	defer func() {
		stopKeeping()
		<-kept
		sh.lm.owned.Set(0)
		sh.lm.partition.Set(-1)
		rctx, rcancel := context.WithTimeout(context.Background(), sh.timeout)
		defer rcancel()
		if err := sh.lease.Release(rctx); err != nil {
			sh.log.Warn().Err(err).Msg("lease not released: another instance takes over once it expires")
		}
	}()
	err := sh.tenure(pctx, untilIdle)
	if lerr := sh.lease.Err(); lerr != nil && !errors.Is(err, stream.ErrLeaseLost) {
		err = errors.Join(lerr, err)
	}
	return err
}

func (sh *shared) tenure(ctx context.Context, untilIdle time.Duration) error {
	r := sh.cfg.Run
	lctx, cancel := context.WithTimeout(ctx, 4*sh.timeout)
	st, err := stream.OpenNATSState(lctx, sh.js, stateBucket, sh.t.key)
	cancel()
	if err != nil {
		return fmt.Errorf("run.state_store: %w", err)
	}
	store := &natsStore{st: st, lease: sh.lease, timeout: 4 * sh.timeout}
	s := &service{cfg: sh.cfg, log: sh.log, dd: stream.NewDeduper(sh.cfg.Input.DedupeWindow.Duration), kind: configs.SourceNATS,
		store: store, h: sh.h, m: sh.m, outs: sh.outs, chs: sh.chs, fence: func() error { return sh.lease.Check(time.Now()) }}
	var pos []byte
	if s.det, pos, err = s.loadDetector(); err != nil {
		return err
	}
	src, desc, err := s.openNATSAt(ctx, sh.srcURL, pos, func(o *stream.NATSSourceOptions) {
		o.Durable, o.FilterSubject = sh.t.durable, sh.t.filter
	})
	if err != nil {
		return err
	}
	defer src.Close()
	s.src = src
	sh.lm.owned.Set(1)
	sh.lm.partition.Set(float64(sh.t.partition))
	sh.log.Info().Str("source", desc).Str("state", store.String()).Str("lease", sh.t.key).Msg("processing")

	ended, runErr := s.loop(ctx, src, untilIdle)
	sctx, scancel := context.WithTimeout(context.Background(), r.ShutdownGrace.Duration)
	defer scancel()
	return s.stop(sctx, ended, untilIdle, runErr)
}

// natsStore is the checkpoint in NATS, written only while the lease is
// held.
type natsStore struct {
	st      *stream.NATSState
	lease   *stream.Lease
	timeout time.Duration
}

func (n *natsStore) String() string { return n.st.String() }

func (n *natsStore) load() (io.ReadCloser, error) {
	ctx, cancel := context.WithTimeout(context.Background(), n.timeout)
	defer cancel()
	b, err := n.st.Load(ctx)
	if err != nil || b == nil {
		return nil, err
	}
	return io.NopCloser(bytes.NewReader(b)), nil
}

func (n *natsStore) save(write func(io.Writer) error) error {
	var buf bytes.Buffer
	if err := write(&buf); err != nil {
		return err
	}
	check := func() error { return n.lease.Check(time.Now()) }
	if err := check(); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), n.timeout)
	defer cancel()
	err := n.st.Save(ctx, buf.Bytes(), check)
	if errors.Is(err, stream.ErrStateConflict) {
		// A later owner wrote it: this one is no longer the owner, whatever
		// its lease says.
		return fmt.Errorf("%w: %w", stream.ErrLeaseLost, err)
	}
	return err
}
