package stream

import (
	"hash/maphash"
	"time"
)

// DefaultDedupeWindow is the event-time window of NewDeduper(0): twice the
// detector's default lateness, past which a record is late whether or not
// it is a duplicate.
const DefaultDedupeWindow = 30 * time.Minute

// Deduper drops records whose eventID was already seen, with memory bounded
// by an event-time window: IDs of events older than the newest event time
// seen minus the window are forgotten. IDs are kept as 64-bit hashes (a
// false duplicate needs a collision among the IDs of one bucket: about
// n²/2⁶⁵, negligible), in buckets of window/12 of event time. A duplicate
// record carries the same eventTime as the original, so only its own bucket
// is searched. Not safe for concurrent use.
type Deduper struct {
	window  time.Duration
	width   int64 // bucket width in seconds
	seed    maphash.Seed
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
		seed:    maphash.MakeSeed(),
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
	h := maphash.String(d.seed, e.ID)
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

func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}
