package detector

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/trailsight/trailsight/stream"
)

// TestCounts: counts hold every value exactly at the narrowest width that
// fits the largest one, widening as values grow, whichever way they are
// built.
func TestCounts(t *testing.T) {
	tests := []struct {
		name      string
		vs        []uint32
		wantShift uint8
	}{
		{"zeros", []uint32{0, 0, 0, 0}, 0},
		{"bytes", []uint32{0, 1, 255, 7}, 0},
		{"one past a byte", []uint32{256, 0, 3, 255}, 1},
		{"uint16", []uint32{65535, 1, 0, 2}, 1},
		{"one past uint16", []uint32{65536, 1, 65535, 2}, 2},
		{"uint32", []uint32{1<<32 - 1, 0, 1 << 31, 9}, 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			grown := newCounts(len(tc.vs))
			for i, v := range tc.vs {
				grown.set(i, v)
			}
			for _, c := range []counts{grown, countsOf(tc.vs)} {
				if c.shift != tc.wantShift || c.len() != len(tc.vs) || len(c.b) != len(tc.vs)<<tc.wantShift {
					t.Errorf("shift %d, len %d, %d bytes; want shift %d, len %d", c.shift, c.len(), len(c.b), tc.wantShift, len(tc.vs))
				}
				var got []uint32
				for i := range c.len() {
					got = append(got, c.get(i))
				}
				if !slices.Equal(got, tc.vs) {
					t.Errorf("holds %v, want %v", got, tc.vs)
				}
			}
		})
	}
	var none counts
	if none.ok() || none.len() != 0 || none.get(5) != 0 {
		t.Error("the zero counts must hold nothing and read 0")
	}
}

// TestNamesSweep: a swept value's ID is reused, values still marked keep
// theirs, and a value interned again after its sweep gets an ID back.
func TestNamesSweep(t *testing.T) {
	n := newNames()
	a, b, c := n.id("a"), n.id("b"), n.id("c")
	if n.id("") != 0 || n.id("a") != a || a == b || b == c {
		t.Fatalf("ids %d %d %d", a, b, c)
	}
	n.sweep(func(mark func(uint32)) { mark(a); mark(c) })
	if n.str(a) != "a" || n.str(c) != "c" || n.id("a") != a {
		t.Errorf("a marked value lost its ID")
	}
	if _, ok := n.ids["b"]; ok {
		t.Errorf("b was not swept")
	}
	if d := n.id("d"); d != b || n.str(d) != "d" {
		t.Errorf("d got ID %d (%q), want the swept %d", d, n.str(d), b)
	}
	if e := n.id("b"); e == b || n.str(e) != "b" {
		t.Errorf("b interned again got ID %d (%q)", e, n.str(e))
	}
}

// TestNamesBounded: contributors that rotate every hour (session names)
// do not pile up in the detector's names.
func TestNamesBounded(t *testing.T) {
	d, err := New(DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	const hours = 240
	for m := range hours * 60 {
		ev := stream.Event{Time: t0.Add(time.Duration(m) * time.Minute), Account: "111122223333", Region: "us-east-1",
			Source: "ec2.amazonaws.com", Name: "CreateTags", Type: "AwsApiCall", Category: stream.Management,
			UserArn: fmt.Sprintf("arn:aws:sts::111122223333:assumed-role/r/session-%d", m/60), UserAgent: "aws-cli/2"}
		d.Add(&ev)
	}
	// Live: up to topAttrs remembered ARNs, the agent, the error code, the
	// pending minutes' ARNs; the table is swept when it doubles.
	if n := len(d.names.ids); n > 2*64+topAttrs+8 {
		t.Errorf("%d names after %d hourly sessions", n, hours)
	}
}
