package stream

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

func testJS(t *testing.T) jetstream.JetStream {
	t.Helper()
	nc, err := nats.Connect(startJetStream(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

// waitFor polls cond every 20 ms for up to d.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(d); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("%s: not after %v", what, d)
		}
	}
}

func TestLeaseAcquireRenewRelease(t *testing.T) {
	noLeaks(t)
	js := testJS(t)
	ctx := context.Background()
	const ttl = 2 * time.Second
	kv, err := OpenLeaseBucket(ctx, js, "leases", ttl)
	if err != nil {
		t.Fatal(err)
	}
	a, err := AcquireLease(ctx, kv, "p0", "a", ttl)
	if err != nil {
		t.Fatalf("AcquireLease(free key) = %v", err)
	}
	if _, err := AcquireLease(ctx, kv, "p0", "b", ttl); !errors.Is(err, ErrLeaseHeld) || !strings.Contains(err.Error(), "a holds p0") {
		t.Fatalf("AcquireLease(held key) = %v, want ErrLeaseHeld naming a", err)
	}
	rev := a.Revision()
	if err := a.Renew(ctx); err != nil {
		t.Fatalf("Renew() = %v", err)
	}
	if a.Revision() <= rev || !a.Valid(time.Now()) {
		t.Fatalf("after Renew: revision %d (was %d), valid %v", a.Revision(), rev, a.Valid(time.Now()))
	}
	if a.Valid(time.Now().Add(ttl)) {
		t.Error("Valid(now + ttl) = true, want false: the server may have expired it by then")
	}
	// Another key is independent.
	if _, err := AcquireLease(ctx, kv, "p1", "b", ttl); err != nil {
		t.Fatalf("AcquireLease(other key) = %v", err)
	}
	if err := a.Release(ctx); err != nil {
		t.Fatalf("Release() = %v", err)
	}
	if a.Valid(time.Now()) {
		t.Error("Valid after Release = true")
	}
	if _, err := AcquireLease(ctx, kv, "p0", "b", ttl); err != nil {
		t.Fatalf("AcquireLease after Release = %v, want it free at once", err)
	}
	if _, err := OpenLeaseBucket(ctx, js, "leases", time.Minute); err == nil || !strings.Contains(err.Error(), "same lease length") {
		t.Errorf("OpenLeaseBucket(other ttl) = %v, want an error asking for the same length", err)
	}
}

// TestLeaseCASRenew: a renewal by compare-and-set fails, and loses the
// lease for good, once the entry holds another revision.
func TestLeaseCASRenew(t *testing.T) {
	noLeaks(t)
	js := testJS(t)
	ctx := context.Background()
	const ttl = 5 * time.Second
	kv, err := OpenLeaseBucket(ctx, js, "leases", ttl)
	if err != nil {
		t.Fatal(err)
	}
	a, err := AcquireLease(ctx, kv, "p0", "a", ttl)
	if err != nil {
		t.Fatal(err)
	}
	// Someone writes the key behind a's back (as a new owner does after
	// the entry expired).
	if _, err := kv.Put(ctx, "p0", []byte(`{"owner":"b"}`)); err != nil {
		t.Fatal(err)
	}
	if err := a.Renew(ctx); !errors.Is(err, ErrLeaseLost) {
		t.Fatalf("Renew() after another write = %v, want ErrLeaseLost", err)
	}
	select {
	case <-a.Lost():
	default:
		t.Fatal("Lost() not closed after a failed CAS renewal")
	}
	if a.Valid(time.Now()) {
		t.Error("Valid() = true after the lease was lost")
	}
	if err := a.Renew(ctx); !errors.Is(err, ErrLeaseLost) {
		t.Errorf("Renew() again = %v, want ErrLeaseLost (lost for good)", err)
	}
	if err := a.Release(ctx); err != nil {
		t.Errorf("Release() of a lost lease = %v, want nil (left alone)", err)
	}
	if e, err := kv.Get(ctx, "p0"); err != nil || !bytes.Contains(e.Value(), []byte(`"b"`)) {
		t.Errorf("the new owner's entry was touched: %v", err)
	}
}

// TestLeaseExpiry: a lease that is not renewed expires on the server (the
// bucket's TTL), another owner takes it, and the first one's renewal then
// fails.
func TestLeaseExpiry(t *testing.T) {
	noLeaks(t)
	js := testJS(t)
	ctx := context.Background()
	const ttl = time.Second
	kv, err := OpenLeaseBucket(ctx, js, "leases", ttl)
	if err != nil {
		t.Fatal(err)
	}
	a, err := AcquireLease(ctx, kv, "p0", "a", ttl)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	var b *Lease
	waitFor(t, 5*time.Second, "b takes the expired lease", func() bool {
		b, err = AcquireLease(ctx, kv, "p0", "b", ttl)
		return err == nil
	})
	if took := time.Since(start); took < ttl*3/4 {
		t.Errorf("b took the lease after %v, before its TTL %v", took, ttl)
	}
	if a.Valid(time.Now()) {
		t.Error("a.Valid() = true once b holds the lease")
	}
	if err := a.Renew(ctx); !errors.Is(err, ErrLeaseLost) {
		t.Errorf("a.Renew() after expiry = %v, want ErrLeaseLost", err)
	}
	if !b.Valid(time.Now()) {
		t.Error("b.Valid() = false")
	}
}

// TestLeaseKeep: Keep renews well within the TTL (the lease outlives it
// several times), and stops at once, closing Lost, when another owner
// writes the entry.
func TestLeaseKeep(t *testing.T) {
	noLeaks(t)
	js := testJS(t)
	ctx := context.Background()
	const ttl = time.Second
	kv, err := OpenLeaseBucket(ctx, js, "leases", ttl)
	if err != nil {
		t.Fatal(err)
	}
	a, err := AcquireLease(ctx, kv, "p0", "a", ttl)
	if err != nil {
		t.Fatal(err)
	}
	renewals := make(chan error, 100)
	done := make(chan error, 1)
	go func() { done <- a.Keep(ctx, func(err error) { renewals <- err }) }()
	time.Sleep(3 * ttl)
	if _, err := AcquireLease(ctx, kv, "p0", "b", ttl); !errors.Is(err, ErrLeaseHeld) {
		t.Fatalf("AcquireLease while a keeps it, 3 TTLs later = %v, want ErrLeaseHeld", err)
	}
	if !a.Valid(time.Now()) {
		t.Fatal("a.Valid() = false while kept")
	}
	if _, err := kv.Put(ctx, "p0", []byte(`{"owner":"b"}`)); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, ErrLeaseLost) {
			t.Errorf("Keep() = %v, want ErrLeaseLost", err)
		}
	case <-time.After(2 * ttl):
		t.Fatal("Keep did not stop after another owner wrote the entry")
	}
	select {
	case <-a.Lost():
	default:
		t.Error("Lost() not closed")
	}
	ok := 0
	for len(renewals) > 0 {
		if <-renewals == nil {
			ok++
		}
	}
	if ok < 8 {
		t.Errorf("%d successful renewals in 3 TTLs, want every TTL/4 (about 12)", ok)
	}
}

// TestNATSState: a checkpoint of several MB (beyond max_payload) round
// trips; a crash between writing the object and switching the entry leaves
// the previous checkpoint; a stale writer gets ErrStateConflict and changes
// nothing.
func TestNATSState(t *testing.T) {
	noLeaks(t)
	js := testJS(t)
	ctx := context.Background()
	a, err := OpenNATSState(ctx, js, "state", "d-p0")
	if err != nil {
		t.Fatal(err)
	}
	if got, err := a.Load(ctx); err != nil || got != nil {
		t.Fatalf("Load() of nothing = %d bytes, %v; want nil, nil", len(got), err)
	}
	big := bytes.Repeat([]byte("0123456789abcdef"), 3<<20/16) // 3 MB
	if err := a.Save(ctx, big, nil); err != nil {
		t.Fatalf("Save(3 MB) = %v", err)
	}
	v2 := []byte("second")
	if err := a.Save(ctx, v2, nil); err != nil {
		t.Fatal(err)
	}
	b, err := OpenNATSState(ctx, js, "state", "d-p0")
	if err != nil {
		t.Fatal(err)
	}
	if got, err := b.Load(ctx); err != nil || !bytes.Equal(got, v2) {
		t.Fatalf("Load() = %q, %v; want %q", got, err, v2)
	}
	// A crash after the object and before the entry: an orphan object.
	obs, _ := js.ObjectStore(ctx, "state")
	if _, err := obs.PutBytes(ctx, "d-p0/orphan", []byte("half a checkpoint")); err != nil {
		t.Fatal(err)
	}
	// b takes over and saves; a, which loaded before, is stale.
	if got, err := b.Load(ctx); err != nil || !bytes.Equal(got, v2) {
		t.Fatalf("Load() with an orphan = %q, %v; want %q", got, err, v2)
	}
	if err := b.Save(ctx, []byte("third"), nil); err != nil {
		t.Fatal(err)
	}
	if err := a.Save(ctx, []byte("stale"), nil); !errors.Is(err, ErrStateConflict) {
		t.Fatalf("stale Save() = %v, want ErrStateConflict", err)
	}
	c, _ := OpenNATSState(ctx, js, "state", "d-p0")
	if got, err := c.Load(ctx); err != nil || string(got) != "third" {
		t.Fatalf("Load() after a stale Save = %q, %v; want third", got, err)
	}
	list, err := obs.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 {
		var names []string
		for _, o := range list {
			names = append(names, o.Name)
		}
		t.Errorf("objects left: %v, want only the current one", names)
	}
}
