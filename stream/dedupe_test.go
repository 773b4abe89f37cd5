package stream

import (
	"errors"
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

// TestDeduperState: a Deduper restored from another's state drops the
// duplicates of what the first one saw, and nothing else.
func TestDeduperState(t *testing.T) {
	t0 := time.Date(2024, 1, 2, 3, 0, 0, 0, time.UTC)
	ev := func(id string, min int) *Event { return &Event{ID: id, Time: t0.Add(time.Duration(min) * time.Minute)} }
	a := NewDeduper(0)
	for i := range 500 {
		a.Seen(ev(fmt.Sprint("id-", i), i/20))
	}
	state := a.AppendState(nil)

	b := NewDeduper(0)
	if err := b.RestoreState(state); err != nil {
		t.Fatal(err)
	}
	if b.Len() != a.Len() {
		t.Errorf("restored %d IDs, saved %d", b.Len(), a.Len())
	}
	tests := []struct {
		e    *Event
		seen bool
	}{
		{ev("id-499", 24), true},
		{ev("id-250", 12), true},
		{ev("id-250", 13), false}, // another bucket: another event
		{ev("new", 24), false},
		{ev("new", 24), true},
	}
	for i, tc := range tests {
		if got := b.Seen(tc.e); got != tc.seen {
			t.Errorf("step %d: Seen(%s) = %v, want %v", i, tc.e.ID, got, tc.seen)
		}
	}
	again := NewDeduper(0)
	if err := again.RestoreState(b.AppendState(nil)); err != nil || again.Len() != a.Len()+2 {
		t.Errorf("saved again after 2 new IDs: %v, %d IDs, want %d", err, again.Len(), a.Len()+2)
	}

	// Another window: refused, and the Deduper is empty.
	c := NewDeduper(time.Hour)
	if err := c.RestoreState(state); !errors.Is(err, ErrDedupeWindowChanged) || c.Len() != 0 {
		t.Errorf("RestoreState with another window = %v, %d IDs; want ErrDedupeWindowChanged, 0", err, c.Len())
	}
	// Damage is an error, never a panic or a half-restored Deduper.
	for _, cut := range []int{0, 1, 3, len(state) / 2, len(state) - 1} {
		d := NewDeduper(0)
		if err := d.RestoreState(state[:cut]); err == nil || d.Len() != 0 {
			t.Errorf("RestoreState(first %d bytes) = %v, %d IDs", cut, err, d.Len())
		}
	}
}

// FuzzDeduperState: RestoreState never panics; what it accepts it writes
// back to the same IDs.
func FuzzDeduperState(f *testing.F) {
	d := NewDeduper(0)
	d.Seen(&Event{ID: "a", Time: time.Unix(1e9, 0)})
	d.Seen(&Event{ID: "b", Time: time.Unix(1e9+3600, 0)})
	f.Add(d.AppendState(nil))
	f.Add([]byte{1})
	f.Fuzz(func(t *testing.T, data []byte) {
		d := NewDeduper(0)
		if err := d.RestoreState(data); err != nil {
			return
		}
		e := NewDeduper(0)
		if err := e.RestoreState(d.AppendState(nil)); err != nil || e.Len() != d.Len() {
			t.Fatalf("round trip: %v, %d IDs, want %d", err, e.Len(), d.Len())
		}
	})
}
