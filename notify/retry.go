package notify

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/trailsight/trailsight/detector"
)

// ErrPermanent marks a failure that a retry cannot fix, such as a webhook
// answering 400 or 404. Notifiers wrap it (fmt.Errorf("…: %w", ErrPermanent)
// or Permanent(err)); Reliable does not retry such a failure but spools the
// batch at once and logs an error, so that nothing is lost while a human
// fixes the cause.
var ErrPermanent = errors.New("notify: permanent failure")

// Permanent returns err marked as permanent: errors.Is(Permanent(err),
// ErrPermanent) and errors.Is(Permanent(err), err) both hold.
func Permanent(err error) error {
	if err == nil || errors.Is(err, ErrPermanent) {
		return err
	}
	return fmt.Errorf("%w: %w", ErrPermanent, err)
}

// RetryAfterError is a failure after which the destination asked to wait
// (HTTP 429 or 503 with Retry-After, or retry_after in the body). After is
// 0 when the destination said nothing about how long.
type RetryAfterError struct {
	After time.Duration
	Err   error
}

func (e *RetryAfterError) Error() string {
	if e.After > 0 {
		return fmt.Sprintf("%v (retry after %v)", e.Err, e.After)
	}
	return e.Err.Error()
}

func (e *RetryAfterError) Unwrap() error { return e.Err }

// ReliableOptions configures a Reliable. The zero value retries with the
// defaults and, without SpoolDir, has no spool.
type ReliableOptions struct {
	// SpoolDir is the folder of batches that could not be delivered; one
	// folder per notifier (two Reliables must not share one). It is
	// created on the first spooled batch. Empty: no spool; a batch that
	// still fails after the retries is reported by Notify's error.
	SpoolDir string
	// Base and Max bound the back-off: before retry n (n = 1, 2, …)
	// Reliable waits a uniformly random time in [0, min(Max, Base·2^(n-1)))
	// ("full jitter"), or the Retry-After the notifier reported when that is
	// longer. Defaults 500ms and 30s.
	Base, Max time.Duration
	// Attempts is the number of tries of each batch in Notify, the first
	// included. Default 6.
	Attempts int
	// Interval is how often the loop started by Start re-sends the spool.
	// Default 1 minute.
	Interval time.Duration
	// Registerer receives the trailsight_notify_* metrics; nil registers
	// nothing. Several Reliables may share one Registerer: their series are
	// told apart by the notifier label.
	Registerer prometheus.Registerer
	// Logger receives retries, spooling and permanent failures; the zero
	// Logger discards them.
	Logger zerolog.Logger
}

// ReliableStats counts what a Reliable did since it was made.
type ReliableStats struct {
	Delivered    int64 // insight events delivered, directly or from the spool
	Retried      int64 // sends repeated after a failure, re-sends from the spool included
	Spooled      int64 // insight events written to the spool
	Failed       int64 // failed sends (each attempt) and failed spool writes
	SpoolBatches int   // batches in the spool now
}

// Reliable wraps a notifier with retries and a disk spool, so that an
// insight is either delivered or written to disk and delivered later:
//
//   - Notify tries the inner notifier up to Attempts times with exponential
//     back-off and full jitter, honouring a Retry-After (RetryAfterError).
//     A permanent failure (ErrPermanent) is not retried. What still fails
//     is written to the spool and Notify returns nil: the batch is safe.
//   - Flush re-sends the spooled batches, oldest first, deleting each one
//     delivered; Recover does the same for what a previous process left;
//     Start runs Flush every Interval in the background until Close.
//
// Notify returns an error only when a batch was neither delivered nor
// spooled (no SpoolDir, or the disk failed), or when ctx ended first
// (ctx.Err(), wrapped; a batch that had already failed once is spooled
// first). Re-sending a spooled batch may deliver some events twice (a batch
// that failed half-way): the inner notifier must be idempotent per eventID,
// as every Notifier is.
//
// Notify may be called from one goroutine at a time; Flush, Recover, Stats
// and the background loop may run concurrently with it (calls to the inner
// notifier are serialised). Close stops the loop, interrupts a back-off in
// progress (the batch is spooled) and closes the inner notifier.
type Reliable struct {
	name  string
	inner Notifier
	opt   ReliableOptions
	spool spool
	log   zerolog.Logger

	delivered, retried, spooled, failed prometheus.Counter
	spoolGauge                          prometheus.Gauge
	nDelivered, nRetried, nSpooled      atomic.Int64
	nFailed                             atomic.Int64
	nBatches                            atomic.Int64

	sendMu  sync.Mutex // serialises calls to inner
	flushMu sync.Mutex // one Flush at a time

	mu        sync.Mutex
	closed    bool
	closing   chan struct{} // closed by Close
	notBefore time.Time     // the destination asked not to be called before
	stop      context.CancelFunc
	loopDone  chan struct{}
}

// NewReliable returns n wrapped with retries and a spool as opt says.
func NewReliable(n Named, opt ReliableOptions) *Reliable {
	if opt.Base <= 0 {
		opt.Base = 500 * time.Millisecond
	}
	if opt.Max <= 0 {
		opt.Max = 30 * time.Second
	}
	if opt.Max < opt.Base {
		opt.Max = opt.Base
	}
	if opt.Attempts <= 0 {
		opt.Attempts = 6
	}
	if opt.Interval <= 0 {
		opt.Interval = time.Minute
	}
	m := newMetrics(opt.Registerer)
	r := &Reliable{
		name: n.Name, inner: n.Notifier, opt: opt, spool: spool{opt.SpoolDir},
		log:        opt.Logger.With().Str("notifier", n.Name).Logger(),
		delivered:  m.delivered.WithLabelValues(n.Name),
		retried:    m.retried.WithLabelValues(n.Name),
		spooled:    m.spooled.WithLabelValues(n.Name),
		failed:     m.failed.WithLabelValues(n.Name),
		spoolGauge: m.spool.WithLabelValues(n.Name),
		closing:    make(chan struct{}),
	}
	r.countSpool()
	return r
}

// Notify delivers ins through the inner notifier, retrying and spooling as
// described on Reliable. While the spool holds batches, a failed batch is
// tried once and spooled without back-off.
func (r *Reliable) Notify(ctx context.Context, ins []detector.Insight) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	r.mu.Lock()
	closed := r.closed
	r.mu.Unlock()
	if closed {
		return ErrClosed
	}
	if len(ins) == 0 {
		return nil
	}
	var err error
	// While earlier batches wait in the spool the destination is known to be
	// down: one try, then the spool, so that a long backfill is not held up
	// by back-off on every batch. Flush and the Start loop bring it back.
	attempts := r.opt.Attempts
	if r.nBatches.Load() > 0 {
		attempts = 1
	}
	attempt := 1
	for ; ; attempt++ {
		if err = r.send(ctx, ins); err == nil {
			r.addDelivered(len(ins))
			return nil
		}
		if ctx.Err() != nil || errors.Is(err, ErrPermanent) || attempt >= attempts {
			break
		}
		wait := r.backoff(attempt)
		if ra := (*RetryAfterError)(nil); errors.As(err, &ra) && ra.After > wait {
			if ra.After > r.opt.Max {
				// Too long to block the pipeline: spool now, and let
				// Flush wait for the destination.
				r.waitUntil(time.Now().Add(ra.After))
				break
			}
			wait = ra.After
		}
		r.log.Warn().Err(err).Int("attempt", attempt).Dur("wait", wait).Msg("notify failed, retrying")
		if !r.sleep(ctx, wait) {
			break
		}
		r.retried.Inc()
		r.nRetried.Add(1)
	}
	if errors.Is(err, ErrPermanent) {
		r.log.Error().Err(err).Int("events", len(ins)).Msg("notify failed permanently, not retrying")
	}
	if r.opt.SpoolDir == "" {
		if cerr := ctx.Err(); cerr != nil {
			return fmt.Errorf("notify: %s: %w (last error: %v)", r.name, cerr, err)
		}
		return fmt.Errorf("notify: %s: not delivered after %d attempts: %w", r.name, attempt, err)
	}
	name, serr := r.spool.put(ins)
	if serr != nil {
		r.failed.Inc()
		r.nFailed.Add(1)
		r.log.Error().Err(serr).AnErr("send_error", err).Int("events", len(ins)).Msg("spool write failed, events not delivered")
		return fmt.Errorf("notify: %s: not delivered (%w) and not spooled: %w", r.name, err, serr)
	}
	r.spooled.Add(float64(len(ins)))
	r.nSpooled.Add(int64(len(ins)))
	r.countSpool()
	r.log.Warn().Err(err).Int("events", len(ins)).Str("batch", name).Msg("notify failed, batch spooled")
	if cerr := ctx.Err(); cerr != nil {
		return fmt.Errorf("notify: %s: batch spooled: %w", r.name, cerr)
	}
	return nil
}

// send makes one call to the inner notifier, counting a failure.
func (r *Reliable) send(ctx context.Context, ins []detector.Insight) error {
	r.sendMu.Lock()
	err := r.inner.Notify(ctx, ins)
	r.sendMu.Unlock()
	if err != nil {
		r.failed.Inc()
		r.nFailed.Add(1)
	}
	return err
}

func (r *Reliable) addDelivered(n int) {
	r.delivered.Add(float64(n))
	r.nDelivered.Add(int64(n))
}

// backoff returns the full-jitter wait before retry n (n ≥ 1).
func (r *Reliable) backoff(n int) time.Duration {
	ceil := r.opt.Max
	if n < 63 {
		if d := r.opt.Base << (n - 1); d > 0 && d < ceil {
			ceil = d
		}
	}
	return rand.N(ceil)
}

// sleep waits d; it returns false when ctx ends or Close is called first.
func (r *Reliable) sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
	case <-r.closing:
	}
	return false
}

func (r *Reliable) waitUntil(t time.Time) {
	r.mu.Lock()
	if t.After(r.notBefore) {
		r.notBefore = t
	}
	r.mu.Unlock()
}

// countSpool refreshes the spool size.
func (r *Reliable) countSpool() {
	if r.opt.SpoolDir == "" {
		return
	}
	names, err := r.spool.list()
	if err != nil {
		r.log.Error().Err(err).Msg("cannot list the spool")
		return
	}
	r.nBatches.Store(int64(len(names)))
	r.spoolGauge.Set(float64(len(names)))
}

// ErrWait is wrapped in the RetryAfterError that Flush returns while the
// destination's Retry-After has not passed.
var ErrWait = errors.New("notify: destination asked to wait")

// Flush re-sends the spooled batches, oldest first, deleting each one once
// delivered. It stops at the first batch that fails with a retryable error
// (the destination is still down; order is kept) and returns that error; a
// batch that fails permanently stays in the spool and Flush goes on with
// the next one. A batch that cannot be read back is renamed *.corrupt and
// reported. While a Retry-After the destination gave has not passed,
// Flush sends nothing and returns a *RetryAfterError wrapping ErrWait.
func (r *Reliable) Flush(ctx context.Context) error {
	if r.opt.SpoolDir == "" {
		return nil
	}
	r.flushMu.Lock()
	defer r.flushMu.Unlock()
	defer r.countSpool()
	r.mu.Lock()
	wait := time.Until(r.notBefore)
	r.mu.Unlock()
	if wait > 0 {
		return &RetryAfterError{After: wait, Err: ErrWait}
	}
	names, err := r.spool.list()
	if err != nil {
		return fmt.Errorf("notify: %s: %w", r.name, err)
	}
	var errs []error
	for _, name := range names {
		if err := ctx.Err(); err != nil {
			return errors.Join(append(errs, err)...)
		}
		ins, err := r.spool.read(name)
		if err != nil {
			r.failed.Inc()
			r.nFailed.Add(1)
			r.log.Error().Err(err).Str("batch", name).Msg("spooled batch unreadable, renamed .corrupt")
			if qerr := r.spool.quarantine(name); qerr != nil {
				err = errors.Join(err, qerr)
			}
			errs = append(errs, fmt.Errorf("notify: %s: %w", r.name, err))
			continue
		}
		r.retried.Inc()
		r.nRetried.Add(1)
		err = r.send(ctx, ins)
		if err == nil {
			r.addDelivered(len(ins))
			if err := r.spool.remove(name); err != nil {
				errs = append(errs, fmt.Errorf("notify: %s: %w", r.name, err))
			}
			r.log.Info().Str("batch", name).Int("events", len(ins)).Msg("spooled batch delivered")
			continue
		}
		if errors.Is(err, ErrPermanent) {
			r.log.Error().Err(err).Str("batch", name).Msg("spooled batch failed permanently, kept")
			errs = append(errs, fmt.Errorf("notify: %s: batch %s: %w", r.name, name, err))
			continue
		}
		if ra := (*RetryAfterError)(nil); errors.As(err, &ra) && ra.After > 0 {
			r.waitUntil(time.Now().Add(ra.After))
		}
		return errors.Join(append(errs, fmt.Errorf("notify: %s: batch %s: %w", r.name, name, err))...)
	}
	return errors.Join(errs...)
}

// Recover re-sends what a previous process left in the spool (Flush, after
// removing temporary files that an interrupted write left). Call it once at
// start-up, before Notify.
func (r *Reliable) Recover(ctx context.Context) error {
	if r.opt.SpoolDir == "" {
		return nil
	}
	r.spool.cleanTemp()
	r.countSpool()
	if n := r.nBatches.Load(); n > 0 {
		r.log.Info().Int64("batches", n).Msg("re-sending batches spooled by a previous run")
	}
	return r.Flush(ctx)
}

// Start runs Flush every Interval in a goroutine until ctx ends or Close is
// called. Failures are logged and counted; the next tick tries again.
// Calling Start again, or after Close, does nothing.
func (r *Reliable) Start(ctx context.Context) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed || r.loopDone != nil || r.opt.SpoolDir == "" {
		return
	}
	ctx, r.stop = context.WithCancel(ctx)
	r.loopDone = make(chan struct{})
	go func(done chan<- struct{}) {
		defer close(done)
		t := time.NewTicker(r.opt.Interval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			if r.nBatches.Load() == 0 {
				continue
			}
			if err := r.Flush(ctx); err != nil && !errors.Is(err, ErrWait) && ctx.Err() == nil {
				r.log.Warn().Err(err).Msg("spool re-send failed")
			}
		}
	}(r.loopDone)
}

// Stats returns the counts so far.
func (r *Reliable) Stats() ReliableStats {
	return ReliableStats{
		Delivered:    r.nDelivered.Load(),
		Retried:      r.nRetried.Load(),
		Spooled:      r.nSpooled.Load(),
		Failed:       r.nFailed.Load(),
		SpoolBatches: int(r.nBatches.Load()),
	}
}

// Close stops the background loop and any back-off in progress, then
// closes the inner notifier. Spooled batches stay on disk for the next
// process (Recover). Close may be called more than once.
func (r *Reliable) Close() error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	close(r.closing)
	stop, done := r.stop, r.loopDone
	r.mu.Unlock()
	if stop != nil {
		stop()
		<-done
	}
	r.sendMu.Lock()
	defer r.sendMu.Unlock()
	if err := r.inner.Close(); err != nil {
		return fmt.Errorf("notify: %s: close: %w", r.name, err)
	}
	return nil
}
