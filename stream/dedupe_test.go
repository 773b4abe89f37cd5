package stream

import (
	"fmt"
	"testing"
	"time"
)

func TestDeduper(t *testing.T) {
	t0 := time.Date(2024, 1, 2, 3, 0, 0, 0, time.UTC)
	ev := func(id string, min int) *Event { return &Event{ID: id, Time: t0.Add(time.Duration(min) * time.Minute)} }
	d := NewDeduper(0)
	steps := []struct {
		e    *Event
		seen bool
	}{
		{ev("a", 0), false},
		{ev("b", 0), false},
		{ev("a", 0), true},
		{ev("", 0), false},
		{ev("", 0), false}, // no ID: never a duplicate
		{ev("c", 20), false},
		{ev("a", 0), true}, // still within 30 minutes of the newest
		{ev("d", 200), false},
		{ev("a", 0), false}, // older than the window: forgotten
		{ev("d", 200), true},
	}
	for i, s := range steps {
		if got := d.Seen(s.e); got != s.seen {
			t.Errorf("step %d: Seen(%s @%v) = %v, want %v", i, s.e.ID, s.e.Time, got, s.seen)
		}
	}
	if d.Dropped() != 3 {
		t.Errorf("Dropped() = %d, want 3", d.Dropped())
	}
}

// TestDeduperBounded: over a long run the IDs held stay bounded by the
// window, and duplicates within it are all dropped.
func TestDeduperBounded(t *testing.T) {
	d := NewDeduper(time.Hour)
	t0 := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	const perMinute = 50
	maxLen := 0
	for m := range 30 * 24 * 60 / 10 { // 3 days, a record every 12 s
		ts := t0.Add(time.Duration(m) * time.Minute)
		for k := range perMinute / 10 {
			e := Event{ID: fmt.Sprintf("%d-%d", m, k), Time: ts}
			if d.Seen(&e) {
				t.Fatalf("fresh ID %s seen", e.ID)
			}
			// A duplicate delivered later (30 min of event time later).
			if m >= 30 {
				old := Event{ID: fmt.Sprintf("%d-%d", m-30, k), Time: ts.Add(-30 * time.Minute)}
				if !d.Seen(&old) {
					t.Fatalf("duplicate %s not seen", old.ID)
				}
			}
		}
		maxLen = max(maxLen, d.Len())
	}
	// One hour plus one bucket (5 min) at 5 IDs per minute.
	if limit := 5 * (60 + 2*5); maxLen > limit {
		t.Errorf("held up to %d IDs, want <= %d", maxLen, limit)
	}
}
