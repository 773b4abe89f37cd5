package stream

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

// DefaultDedupeWindow is the event-time window of NewDeduper(0): twice the
// detector's default lateness, past which a record is late whether or not
// it is a duplicate.
const DefaultDedupeWindow = 30 * time.Minute

// Deduper drops records whose eventID was already seen, with memory bounded
// by an event-time window: IDs of events older than the newest event time
// seen minus the window are forgotten. IDs are kept as 64-bit FNV-1a hashes
// (a false duplicate needs a collision among the IDs of one bucket: about
// n²/2⁶⁵, negligible; the hash is fixed so that AppendState and
// RestoreState carry it across processes), in buckets of window/12 of event
// time. A duplicate
// record carries the same eventTime as the original, so only its own bucket
// is searched. Not safe for concurrent use.
type Deduper struct {
	window  time.Duration
	width   int64 // bucket width in seconds
	buckets map[int64]map[uint64]struct{}
	newest  int64 // newest bucket index seen
	started bool
	dropped int64
	stored  int
}

// NewDeduper returns a Deduper keeping IDs for window of event time
// (DefaultDedupeWindow when window <= 0).
func NewDeduper(window time.Duration) *Deduper {
	if window <= 0 {
		window = DefaultDedupeWindow
	}
	width := int64(window / 12 / time.Second)
	if width < 1 {
		width = 1
	}
	return &Deduper{
		window:  window,
		width:   width,
		buckets: map[int64]map[uint64]struct{}{},
	}
}

// Seen reports whether e's eventID was already seen within the window, and
// records it otherwise. Events without an eventID are never duplicates.
// Events older than the window (relative to the newest seen) are not
// recorded and reported as not seen: the detector treats them as late.
func (d *Deduper) Seen(e *Event) bool {
	if e.ID == "" {
		return false
	}
	b := floorDiv(e.Time.Unix(), d.width)
	span := int64(d.window/time.Second)/d.width + 1 // buckets kept behind the newest
	if !d.started || b > d.newest {
		d.started = true
		d.newest = b
		d.evict(b - span)
	} else if b <= d.newest-span {
		return false
	}
	h := fnv1a(e.ID)
	m := d.buckets[b]
	if m == nil {
		m = make(map[uint64]struct{}, 64)
		d.buckets[b] = m
	} else if _, ok := m[h]; ok {
		d.dropped++
		return true
	}
	m[h] = struct{}{}
	d.stored++
	return false
}

func (d *Deduper) evict(cutoff int64) {
	for k, m := range d.buckets {
		if k <= cutoff {
			d.stored -= len(m)
			delete(d.buckets, k)
		}
	}
}

// Dropped returns the number of duplicates Seen reported.
func (d *Deduper) Dropped() int64 { return d.dropped }

// Len returns the number of IDs held.
func (d *Deduper) Len() int { return d.stored }

// fnv1a is the 64-bit FNV-1a hash of s.
func fnv1a(s string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return h
}

// dedupeStateVersion is the first byte of AppendState's encoding.
const dedupeStateVersion = 1

// ErrDedupeWindowChanged is returned by RestoreState for a state saved with
// another window: its buckets do not line up; start with an empty Deduper.
var ErrDedupeWindowChanged = errors.New("stream: dedupe state of another window")

// AppendState appends the IDs d holds, so that a restarted process drops
// the duplicates of what it read before (a checkpoint holds it beside the
// detector's state): version, bucket width, newest bucket, then per bucket
// its index and its hashes. About 8 bytes per ID.
func (d *Deduper) AppendState(b []byte) []byte {
	b = append(b, dedupeStateVersion)
	b = binary.AppendUvarint(b, uint64(d.width))
	started := byte(0)
	if d.started {
		started = 1
	}
	b = append(b, started)
	b = binary.AppendVarint(b, d.newest)
	b = binary.AppendUvarint(b, uint64(len(d.buckets)))
	for k, m := range d.buckets {
		b = binary.AppendVarint(b, k)
		b = binary.AppendUvarint(b, uint64(len(m)))
		for h := range m {
			b = binary.LittleEndian.AppendUint64(b, h)
		}
	}
	return b
}

// RestoreState replaces what d holds with a state AppendState wrote. It
// returns ErrDedupeWindowChanged for a state of another window, and an
// error for a damaged one; d is then left empty.
func (d *Deduper) RestoreState(data []byte) error {
	d.clear()
	if err := d.restore(data); err != nil {
		d.clear()
		return err
	}
	return nil
}

func (d *Deduper) clear() {
	d.buckets, d.started, d.newest, d.stored = map[int64]map[uint64]struct{}{}, false, 0, 0
}

func (d *Deduper) restore(data []byte) error {
	bad := func(what string) error { return fmt.Errorf("stream: dedupe state: %s", what) }
	if len(data) < 1 || data[0] != dedupeStateVersion {
		return bad("unknown version")
	}
	data = data[1:]
	width, n := binary.Uvarint(data)
	if n <= 0 {
		return bad("width")
	}
	data = data[n:]
	if int64(width) != d.width {
		return fmt.Errorf("%w: buckets of %ds, this window makes %ds", ErrDedupeWindowChanged, width, d.width)
	}
	if len(data) < 1 || data[0] > 1 {
		return bad("started")
	}
	d.started = data[0] == 1
	data = data[1:]
	if d.newest, n = binary.Varint(data); n <= 0 {
		return bad("newest")
	}
	data = data[n:]
	nb, n := binary.Uvarint(data)
	if n <= 0 || nb > uint64(len(data)) {
		return bad("bucket count")
	}
	data = data[n:]
	for range nb {
		k, n := binary.Varint(data)
		if n <= 0 {
			return bad("bucket")
		}
		data = data[n:]
		c, n := binary.Uvarint(data)
		if n <= 0 || c > uint64(len(data)-n)/8 {
			return bad("bucket size")
		}
		data = data[n:]
		if _, dup := d.buckets[k]; dup {
			return bad("bucket twice")
		}
		m := make(map[uint64]struct{}, c)
		for i := range c {
			m[binary.LittleEndian.Uint64(data[8*i:])] = struct{}{}
		}
		data = data[8*c:]
		d.buckets[k] = m
		d.stored += len(m)
	}
	if len(data) != 0 {
		return bad("trailing bytes")
	}
	return nil
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}
