package stream

// Leases and checkpoints in JetStream: what lets several trailsight
// instances share the partitions of a stream, one owner per partition at a
// time, and another instance take a partition over with its state.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Errors of leases and of NATSState; callers branch on them with errors.Is.
var (
	// ErrLeaseHeld: another owner holds the lease (AcquireLease).
	ErrLeaseHeld = errors.New("stream: lease held by another owner")
	// ErrLeaseLost: the lease expired or another owner took it; whoever
	// held it must stop at once, writing nothing.
	ErrLeaseLost = errors.New("stream: lease lost")
	// ErrStateConflict: the checkpoint was written by someone else since
	// this NATSState loaded or saved it (a later owner): nothing was saved.
	ErrStateConflict = errors.New("stream: checkpoint written by another owner")
)

// OpenLeaseBucket returns the key-value bucket that holds leases of length
// ttl, creating it when missing. The bucket's TTL (its max age) is the
// lease's length: an entry that is not renewed within ttl disappears, so a
// dead owner's lease expires on the server without anyone's help. A bucket
// that exists with another TTL is an error: every instance must use the
// same length.
func OpenLeaseBucket(ctx context.Context, js jetstream.JetStream, bucket string, ttl time.Duration) (jetstream.KeyValue, error) {
	kv, err := js.KeyValue(ctx, bucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		kv, err = js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: bucket, TTL: ttl, History: 1,
			Description: "trailsight partition leases", Storage: jetstream.FileStorage})
		if errors.Is(err, jetstream.ErrBucketExists) {
			kv, err = js.KeyValue(ctx, bucket) // created meanwhile by another instance
		}
	}
	if err != nil {
		return nil, fmt.Errorf("stream: lease bucket %s: %w", bucket, err)
	}
	st, err := kv.Status(ctx)
	if err != nil {
		return nil, fmt.Errorf("stream: lease bucket %s: %w", bucket, err)
	}
	if st.TTL() != ttl {
		return nil, fmt.Errorf("stream: lease bucket %s has a TTL of %v, and the lease length is %v: give every instance the same lease length (or delete the bucket when none runs)",
			bucket, st.TTL(), ttl)
	}
	return kv, nil
}

// LeaseOwner is a name for this process as lease holder: host, pid and
// the time it started, unique enough that two processes never share it.
func LeaseOwner() string {
	h, _ := os.Hostname()
	return fmt.Sprintf("%s/%d/%d", h, os.Getpid(), time.Now().UnixNano())
}

// leaseValue is what a lease entry holds, for people and logs.
type leaseValue struct {
	Owner string    `json:"owner"`
	Since time.Time `json:"since"`
}

// Lease is one owner's hold on key in a bucket from OpenLeaseBucket. It is
// created held (AcquireLease), renewed by compare-and-set on its revision,
// and lost for good when a renewal finds another revision (someone else
// took the key after it expired) or when no renewal succeeded for long
// enough that the server may have expired it.
//
// Valid may be called from any goroutine; Renew, Keep and Release from one.
type Lease struct {
	kv     jetstream.KeyValue
	key    string
	ttl    time.Duration
	margin time.Duration
	value  []byte

	mu      sync.Mutex
	rev     uint64
	renewed time.Time // when the last successful create or renew was sent
	lostErr error
	lost    chan struct{}
}

// AcquireLease takes key for owner if no one holds it; ErrLeaseHeld (with
// the holder's name) when someone does. ttl is the bucket's TTL.
func AcquireLease(ctx context.Context, kv jetstream.KeyValue, key, owner string, ttl time.Duration) (*Lease, error) {
	val, _ := json.Marshal(leaseValue{Owner: owner, Since: time.Now().UTC()})
	sent := time.Now()
	rev, err := kv.Create(ctx, key, val)
	if errors.Is(err, jetstream.ErrKeyExists) {
		holder := "?"
		if e, gerr := kv.Get(ctx, key); gerr == nil {
			var v leaseValue
			if json.Unmarshal(e.Value(), &v) == nil {
				holder = v.Owner
			}
		}
		return nil, fmt.Errorf("%w: %s holds %s", ErrLeaseHeld, holder, key)
	}
	if err != nil {
		return nil, fmt.Errorf("stream: acquire lease %s: %w", key, err)
	}
	return &Lease{kv: kv, key: key, ttl: ttl, margin: ttl / 4, value: val,
		rev: rev, renewed: sent, lost: make(chan struct{})}, nil
}

// Revision is the revision of the lease's entry since the last renewal.
func (l *Lease) Revision() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.rev
}

// Valid reports whether the lease is certainly still held at now: not
// lost, and renewed less than ttl − ttl/4 before now. The server expires
// the entry ttl after it stored the last renewal, which is after the
// renewal was sent: the quarter is the time its holder has to stop.
func (l *Lease) Valid(now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lostErr == nil && now.Sub(l.renewed) < l.ttl-l.margin
}

// Check returns nil while Valid(now), else loses the lease (if it was not
// lost yet) and returns why, wrapping ErrLeaseLost. Call it before doing
// anything only the holder may do.
func (l *Lease) Check(now time.Time) error {
	if l.Valid(now) {
		return nil
	}
	if err := l.Err(); err != nil {
		return err
	}
	l.mu.Lock()
	late := now.Sub(l.renewed)
	l.mu.Unlock()
	return l.lose(fmt.Errorf("not renewed for %v, and it may expire after %v", late.Round(time.Millisecond), l.ttl))
}

// Lost is closed when the lease is lost.
func (l *Lease) Lost() <-chan struct{} { return l.lost }

// Err is nil while the lease is held, then why it was lost (wrapping
// ErrLeaseLost).
func (l *Lease) Err() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lostErr
}

func (l *Lease) lose(err error) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.lostErr == nil {
		l.lostErr = fmt.Errorf("%w: %s: %w", ErrLeaseLost, l.key, err)
		close(l.lost)
	}
	return l.lostErr
}

// Renew extends the lease by ttl with a compare-and-set on its revision.
// Another revision, or no entry at all, loses the lease for good
// (ErrLeaseLost). Any other failure (the server unreachable) is returned
// as is, and the lease is kept until Valid says it may have expired, when
// it is lost too.
func (l *Lease) Renew(ctx context.Context) error {
	if err := l.Err(); err != nil {
		return err
	}
	l.mu.Lock()
	rev := l.rev
	l.mu.Unlock()
	sent := time.Now()
	nrev, err := l.kv.Update(ctx, l.key, l.value, rev)
	switch {
	case err == nil:
		l.mu.Lock()
		l.rev, l.renewed = nrev, sent
		l.mu.Unlock()
		return nil
	case errors.Is(err, jetstream.ErrKeyRevisionMismatch), errors.Is(err, jetstream.ErrKeyExists), errors.Is(err, jetstream.ErrKeyNotFound):
		return l.lose(fmt.Errorf("taken over or expired (revision %d is no longer the last): %w", rev, err))
	}
	if !l.Valid(time.Now()) {
		return l.lose(fmt.Errorf("not renewed for %v: %w", time.Since(l.renewed).Round(time.Millisecond), err))
	}
	return fmt.Errorf("stream: renew lease %s: %w", l.key, err)
}

// Keep renews the lease every ttl/4 until ctx is done or the lease is
// lost, retrying failed renewals every ttl/16. onRenew, when not nil, is
// called after each attempt with its error. Keep returns the lease's Err.
func (l *Lease) Keep(ctx context.Context, onRenew func(error)) error {
	every := l.ttl / 4
	t := time.NewTimer(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return l.Err()
		case <-l.lost:
			return l.Err()
		case <-t.C:
		}
		// A renewal that cannot finish while the lease is valid is too late.
		l.mu.Lock()
		deadline := l.renewed.Add(l.ttl - l.margin)
		l.mu.Unlock()
		if d := time.Now().Add(l.margin); d.Before(deadline) {
			deadline = d
		}
		rctx, cancel := context.WithDeadline(ctx, deadline)
		err := l.Renew(rctx)
		cancel()
		if ctx.Err() != nil {
			return l.Err()
		}
		if onRenew != nil {
			onRenew(err)
		}
		switch {
		case errors.Is(err, ErrLeaseLost):
			return err
		case err != nil:
			t.Reset(max(l.ttl/16, 10*time.Millisecond))
		default:
			t.Reset(every)
		}
	}
}

// Release gives the lease up so that another owner may take it at once:
// it deletes the entry if it is still this lease's revision. A lost lease
// is left alone.
func (l *Lease) Release(ctx context.Context) error {
	if l.Err() != nil {
		return nil
	}
	rev := l.Revision()
	l.lose(errors.New("released"))
	if err := l.kv.Delete(ctx, l.key, jetstream.LastRevision(rev)); err != nil {
		return fmt.Errorf("stream: release lease %s: %w", l.key, err)
	}
	return nil
}
