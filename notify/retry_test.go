package notify

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"

	"github.com/trailsight/trailsight/detector"
)

// fakeInner is a Notifier whose answers the test scripts: errs are returned
// by successive calls, then down (nil: success).
type fakeInner struct {
	mu     sync.Mutex
	errs   []error
	down   error
	calls  []time.Time
	got    [][]detector.Insight
	closed bool
}

func (f *fakeInner) Notify(ctx context.Context, ins []detector.Insight) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, time.Now())
	if err := ctx.Err(); err != nil {
		return err
	}
	var err error
	if len(f.errs) > 0 {
		err, f.errs = f.errs[0], f.errs[1:]
	} else {
		err = f.down
	}
	if err == nil {
		f.got = append(f.got, slices.Clone(ins))
	}
	return err
}

func (f *fakeInner) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = true
	return nil
}

func (f *fakeInner) setDown(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.down = err
}

func (f *fakeInner) delivered() [][]detector.Insight {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.got)
}

func (f *fakeInner) nCalls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.calls)
}

var errDown = errors.New("connection refused")

func sortedByID(ins []detector.Insight) []detector.Insight {
	ins = slices.Clone(ins)
	slices.SortFunc(ins, func(a, b detector.Insight) int { return strings.Compare(a.EventID, b.EventID) })
	return ins
}

func spoolFiles(t *testing.T, dir string) []string {
	t.Helper()
	names, err := spool{dir}.list()
	if err != nil {
		t.Fatal(err)
	}
	return names
}

func TestReliableRetries(t *testing.T) {
	perm := Permanent(errors.New("HTTP 404 no_service"))
	for _, c := range []struct {
		name      string
		errs      []error
		down      error
		opt       ReliableOptions
		wantCalls int
		want      ReliableStats
		minWait   time.Duration // least time between the first and last call
		maxWait   time.Duration
	}{
		{name: "ok at once", wantCalls: 1, want: ReliableStats{Delivered: 5}},
		{name: "fails twice", errs: []error{errDown, errDown}, wantCalls: 3,
			want: ReliableStats{Delivered: 5, Retried: 2, Failed: 2}, maxWait: 500*time.Millisecond + time.Second},
		{name: "retry-after", errs: []error{&RetryAfterError{After: 7 * time.Second, Err: errDown}}, wantCalls: 2,
			want: ReliableStats{Delivered: 5, Retried: 1, Failed: 1}, minWait: 7 * time.Second, maxWait: 7 * time.Second},
		{name: "retry-after shorter than the back-off", opt: ReliableOptions{Base: 10 * time.Second},
			errs: []error{&RetryAfterError{After: 0, Err: errDown}}, wantCalls: 2,
			want: ReliableStats{Delivered: 5, Retried: 1, Failed: 1}, maxWait: 10 * time.Second},
		{name: "down: spooled after the attempts", down: errDown, wantCalls: 6,
			want: ReliableStats{Retried: 5, Failed: 6, Spooled: 5, SpoolBatches: 1},
			// full jitter below 0.5+1+2+4+8 s
			maxWait: 15500 * time.Millisecond},
		{name: "attempts and max", down: errDown, opt: ReliableOptions{Attempts: 4, Base: time.Second, Max: 2 * time.Second}, wantCalls: 4,
			want: ReliableStats{Retried: 3, Failed: 4, Spooled: 5, SpoolBatches: 1}, maxWait: 5 * time.Second},
		{name: "permanent: spooled at once", errs: []error{perm}, wantCalls: 1,
			want: ReliableStats{Failed: 1, Spooled: 5, SpoolBatches: 1}},
		{name: "retry-after beyond max: spooled at once", errs: []error{&RetryAfterError{After: time.Hour, Err: errDown}}, wantCalls: 1,
			want: ReliableStats{Failed: 1, Spooled: 5, SpoolBatches: 1}},
	} {
		t.Run(c.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				in := &fakeInner{errs: c.errs, down: c.down}
				opt := c.opt
				opt.SpoolDir = t.TempDir()
				r := NewReliable(Named{"fake", in}, opt)
				if err := r.Notify(context.Background(), fixture()); err != nil {
					t.Fatalf("Notify = %v, want nil (delivered or spooled)", err)
				}
				if got := in.nCalls(); got != c.wantCalls {
					t.Errorf("inner calls = %d, want %d", got, c.wantCalls)
				}
				if d := cmp.Diff(c.want, r.Stats()); d != "" {
					t.Errorf("Stats (-want +got):\n%s", d)
				}
				wait := in.calls[len(in.calls)-1].Sub(in.calls[0])
				if wait < c.minWait || wait > c.maxWait {
					t.Errorf("time from first to last call = %v, want in [%v, %v]", wait, c.minWait, c.maxWait)
				}
				if n := len(spoolFiles(t, opt.SpoolDir)); n != c.want.SpoolBatches {
					t.Errorf("spool files = %d, want %d", n, c.want.SpoolBatches)
				}
				if err := r.Close(); err != nil || !in.closed {
					t.Errorf("Close = %v, inner closed %v", err, in.closed)
				}
			})
		})
	}
}

// TestReliableRetryAfterHonouredByFlush: a Retry-After longer than Max
// spools the batch; Flush sends nothing until it has passed.
func TestReliableRetryAfterHonouredByFlush(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		in := &fakeInner{errs: []error{&RetryAfterError{After: 5 * time.Minute, Err: errDown}}}
		r := NewReliable(Named{"fake", in}, ReliableOptions{SpoolDir: t.TempDir()})
		defer r.Close()
		ctx := context.Background()
		if err := r.Notify(ctx, fixture()); err != nil {
			t.Fatal(err)
		}
		time.Sleep(4 * time.Minute)
		err := r.Flush(ctx)
		var ra *RetryAfterError
		if !errors.As(err, &ra) || !errors.Is(err, ErrWait) || ra.After != time.Minute {
			t.Fatalf("Flush before Retry-After = %v, want a RetryAfterError of 1m wrapping ErrWait", err)
		}
		if in.nCalls() != 1 {
			t.Fatalf("Flush called the notifier before Retry-After passed")
		}
		time.Sleep(time.Minute)
		if err := r.Flush(ctx); err != nil {
			t.Fatalf("Flush after Retry-After = %v", err)
		}
		if got := in.delivered(); len(got) != 1 || len(got[0]) != len(fixture()) {
			t.Errorf("delivered %d batches, want the spooled one", len(got))
		}
		if s := r.Stats(); s.SpoolBatches != 0 || s.Delivered != int64(len(fixture())) {
			t.Errorf("Stats = %+v", s)
		}
	})
}

// TestReliableDownThenUp: batches spooled while the destination is down
// are re-sent oldest first by Flush once it is up, and deleted.
func TestReliableDownThenUp(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		in := &fakeInner{down: errDown}
		dir := t.TempDir()
		r := NewReliable(Named{"fake", in}, ReliableOptions{SpoolDir: dir, Attempts: 1})
		defer r.Close()
		ctx := context.Background()
		f := fixture()
		batches := [][]detector.Insight{f[4:5], f[2:4], f[0:2]} // eventTime 01:42, 01:42/01:44, 01:42/01:50
		batches[0][0].Time = batches[0][0].Time.Add(time.Hour)  // the newest batch is sent first
		for _, b := range batches {
			if err := r.Notify(ctx, b); err != nil {
				t.Fatal(err)
			}
		}
		if n := len(spoolFiles(t, dir)); n != 3 || r.Stats().SpoolBatches != 3 {
			t.Fatalf("spool has %d files, Stats %+v; want 3", n, r.Stats())
		}
		if err := r.Flush(ctx); !errors.Is(err, errDown) {
			t.Fatalf("Flush while down = %v, want errDown", err)
		}
		if n := in.nCalls(); n != 4 {
			t.Errorf("Flush while down made %d calls in all, want 3 + 1 (it stops at the first failure)", n)
		}
		in.setDown(nil)
		if err := r.Flush(ctx); err != nil {
			t.Fatalf("Flush when up = %v", err)
		}
		got := in.delivered()
		if len(got) != 3 {
			t.Fatalf("delivered %d batches, want 3", len(got))
		}
		// Oldest first: the two 01:42 batches (in name order), then the 02:42 one.
		if !got[2][0].Time.Equal(batches[0][0].Time) {
			t.Errorf("last batch delivered starts at %v, want the newest, %v", got[2][0].Time, batches[0][0].Time)
		}
		if n := len(spoolFiles(t, dir)); n != 0 {
			t.Errorf("spool still has %d files", n)
		}
		if s := r.Stats(); s.Delivered != 5 || s.SpoolBatches != 0 || s.Spooled != 5 {
			t.Errorf("Stats = %+v", s)
		}
	})
}

// TestReliableLoop: Start re-sends the spool every Interval until Close.
func TestReliableLoop(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		in := &fakeInner{down: errDown}
		r := NewReliable(Named{"fake", in}, ReliableOptions{SpoolDir: t.TempDir(), Attempts: 2, Interval: time.Minute})
		ctx := context.Background()
		r.Start(ctx)
		r.Start(ctx) // a second Start does nothing
		if err := r.Notify(ctx, fixture()); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Minute + time.Second)
		synctest.Wait()
		if len(in.delivered()) != 0 || r.Stats().SpoolBatches != 1 {
			t.Fatal("delivered while down")
		}
		in.setDown(nil)
		time.Sleep(time.Minute)
		synctest.Wait()
		if got := in.delivered(); len(got) != 1 || r.Stats().SpoolBatches != 0 {
			t.Fatalf("after the destination came back: %d batches delivered, stats %+v", len(got), r.Stats())
		}
		if err := r.Close(); err != nil {
			t.Fatal(err)
		}
		if err := r.Notify(ctx, fixture()); !errors.Is(err, ErrClosed) {
			t.Errorf("Notify after Close = %v, want ErrClosed", err)
		}
	})
}

// TestReliableRestart: a batch spooled by one process is delivered exactly
// once by the next one, which Recovers it. Spooling the same insights
// again, in another order, does not add a second batch.
func TestReliableRestart(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	dir := t.TempDir()
	ctx := context.Background()
	r1 := NewReliable(Named{"slack", &fakeInner{down: errDown}}, ReliableOptions{SpoolDir: dir, Attempts: 1})
	if err := r1.Notify(ctx, fixture()); err != nil {
		t.Fatal(err)
	}
	rev := fixture()
	slices.Reverse(rev)
	if err := r1.Notify(ctx, append(rev, rev[0])); err != nil {
		t.Fatal(err)
	}
	if err := r1.Close(); err != nil {
		t.Fatal(err)
	}
	if n := len(spoolFiles(t, dir)); n != 1 {
		t.Fatalf("spool has %d batches after spooling the same insights twice, want 1", n)
	}
	// A write the crash interrupted.
	if err := os.WriteFile(filepath.Join(dir, ".trailsight-123.tmp"), []byte("partial"), 0o644); err != nil {
		t.Fatal(err)
	}

	up := &fakeInner{}
	r2 := NewReliable(Named{"slack", up}, ReliableOptions{SpoolDir: dir})
	if s := r2.Stats(); s.SpoolBatches != 1 {
		t.Errorf("new Reliable: SpoolBatches = %d, want 1", s.SpoolBatches)
	}
	if err := r2.Recover(ctx); err != nil {
		t.Fatalf("Recover = %v", err)
	}
	if err := r2.Recover(ctx); err != nil {
		t.Fatalf("second Recover = %v", err)
	}
	got := up.delivered()
	if len(got) != 1 {
		t.Fatalf("delivered %d batches, want exactly 1", len(got))
	}
	if d := cmp.Diff(sortedByID(fixture()), sortedByID(got[0])); d != "" {
		t.Errorf("recovered batch (-spooled +delivered):\n%s", d)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("spool folder not empty after Recover: %v", ents)
	}
	if err := r2.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestReliableCorruptBatch: an unreadable batch is set aside as *.corrupt
// and reported; the others are delivered.
func TestReliableCorruptBatch(t *testing.T) {
	dir := t.TempDir()
	if _, err := (spool{dir}).put(fixture()[:2]); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "00000000T000000Z-0000000000000000.jsonl"), []byte("{not json\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	in := &fakeInner{}
	r := NewReliable(Named{"fake", in}, ReliableOptions{SpoolDir: dir})
	defer r.Close()
	err := r.Flush(context.Background())
	if err == nil || !strings.Contains(err.Error(), "00000000T000000Z") {
		t.Errorf("Flush = %v, want an error naming the corrupt batch", err)
	}
	if len(in.delivered()) != 1 {
		t.Errorf("the good batch was not delivered")
	}
	if _, err := os.Stat(filepath.Join(dir, "00000000T000000Z-0000000000000000.jsonl.corrupt")); err != nil {
		t.Errorf("corrupt batch not kept as .corrupt: %v", err)
	}
	if s := r.Stats(); s.SpoolBatches != 0 || s.Failed != 1 || s.Delivered != 2 {
		t.Errorf("Stats = %+v", s)
	}
}

// TestReliablePermanentInSpool: Flush keeps a batch that fails permanently
// and goes on with the next.
func TestReliablePermanentInSpool(t *testing.T) {
	dir := t.TempDir()
	sp := spool{dir}
	for _, b := range [][]detector.Insight{fixture()[:1], fixture()[2:3]} {
		if _, err := sp.put(b); err != nil {
			t.Fatal(err)
		}
	}
	in := &fakeInner{errs: []error{Permanent(errors.New("HTTP 400 invalid_blocks"))}}
	r := NewReliable(Named{"fake", in}, ReliableOptions{SpoolDir: dir})
	defer r.Close()
	if err := r.Flush(context.Background()); !errors.Is(err, ErrPermanent) {
		t.Errorf("Flush = %v, want ErrPermanent", err)
	}
	if len(in.delivered()) != 1 || len(spoolFiles(t, dir)) != 1 {
		t.Errorf("delivered %d, kept %d; want 1 and 1", len(in.delivered()), len(spoolFiles(t, dir)))
	}
}

func TestReliableNoSpool(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		in := &fakeInner{down: errDown}
		r := NewReliable(Named{"fake", in}, ReliableOptions{Attempts: 3})
		defer r.Close()
		err := r.Notify(context.Background(), fixture())
		if !errors.Is(err, errDown) || !strings.Contains(err.Error(), "fake") {
			t.Errorf("Notify without a spool = %v, want errDown named", err)
		}
		if err := r.Flush(context.Background()); err != nil {
			t.Errorf("Flush without a spool = %v", err)
		}
	})
}

// TestReliableCancelAndClose: ctx ending or Close during a back-off stops
// the retries; the batch is spooled either way.
func TestReliableCancelAndClose(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		in := &fakeInner{down: errDown}
		dir := t.TempDir()
		r := NewReliable(Named{"fake", in}, ReliableOptions{SpoolDir: dir, Base: time.Hour, Max: time.Hour})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error)
		go func() { done <- r.Notify(ctx, fixture()[:1]) }()
		synctest.Wait() // in the back-off
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("Notify cancelled in back-off = %v, want context.Canceled", err)
		}
		go func() { done <- r.Notify(context.Background(), fixture()[2:3]) }()
		synctest.Wait()
		if err := r.Close(); err != nil {
			t.Fatal(err)
		}
		if err := <-done; err != nil {
			t.Errorf("Notify interrupted by Close = %v, want nil (spooled)", err)
		}
		if n := len(spoolFiles(t, dir)); n != 2 {
			t.Errorf("spool has %d batches, want 2", n)
		}
	})
}

func TestReliableMetrics(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		reg := prometheus.NewRegistry()
		a := NewReliable(Named{"a", &fakeInner{errs: []error{errDown}}}, ReliableOptions{Registerer: reg, SpoolDir: t.TempDir()})
		b := NewReliable(Named{"b", &fakeInner{down: errDown}}, ReliableOptions{Registerer: reg, SpoolDir: t.TempDir(), Attempts: 1})
		defer a.Close()
		defer b.Close()
		for _, r := range []*Reliable{a, b} {
			if err := r.Notify(context.Background(), fixture()); err != nil {
				t.Fatal(err)
			}
		}
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]float64{}
		for _, mf := range mfs {
			for _, m := range mf.GetMetric() {
				v := m.GetCounter().GetValue() + m.GetGauge().GetValue()
				got[mf.GetName()+"{"+m.GetLabel()[0].GetValue()+"}"] = v
			}
		}
		want := map[string]float64{
			"trailsight_notify_delivered_total{a}": 5, "trailsight_notify_delivered_total{b}": 0,
			"trailsight_notify_retried_total{a}": 1, "trailsight_notify_retried_total{b}": 0,
			"trailsight_notify_spooled_total{a}": 0, "trailsight_notify_spooled_total{b}": 5,
			"trailsight_notify_failed_total{a}": 1, "trailsight_notify_failed_total{b}": 1,
			"trailsight_notify_spool_batches{a}": 0, "trailsight_notify_spool_batches{b}": 1,
		}
		if d := cmp.Diff(want, got); d != "" {
			t.Errorf("metrics (-want +got):\n%s", d)
		}
	})
}

func TestPermanent(t *testing.T) {
	base := errors.New("HTTP 404")
	p := Permanent(base)
	if !errors.Is(p, ErrPermanent) || !errors.Is(p, base) || Permanent(p) != p || Permanent(nil) != nil {
		t.Errorf("Permanent(%v) = %v: want both wrapped, idempotent, nil for nil", base, p)
	}
	ra := error(&RetryAfterError{After: 2 * time.Second, Err: base})
	if !errors.Is(ra, base) || !strings.Contains(ra.Error(), "2s") {
		t.Errorf("RetryAfterError = %v", ra)
	}
}
