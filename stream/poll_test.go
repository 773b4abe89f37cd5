package stream

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// pollDay is the day the poll scenarios happen on.
var pollDay = time.Date(2026, 3, 3, 0, 0, 0, 0, time.UTC)

// pollStep is one moment of a scenario: the wall clock, the files that
// have landed by then, and the files the poller must return, in order.
type pollStep struct {
	now     string   // "HH:MM" on pollDay, or "DDTHH:MM" in March 2026
	add     []string // file specs, see writeSpec
	remove  []string // keys of files deleted before the listing
	take    int      // return at most this many files of the listing (0: all), then…
	restart bool     // …restart from Position() after this step
	want    []string // specs returned
	through string   // Stats().Through after the step ("" not checked)
	done    *int     // Stats().Done after the step (nil: not checked)
}

func n(i int) *int { return &i }

// specTime parses "HH:MM" (on pollDay) or "DDTHH:MM".
func specTime(t *testing.T, s string) time.Time {
	t.Helper()
	day := pollDay
	if d, rest, ok := strings.Cut(s, "T"); ok {
		var dd int
		fmt.Sscanf(d, "%d", &dd)
		day, s = time.Date(2026, 3, dd, 0, 0, 0, 0, time.UTC), rest
	}
	hm, err := time.Parse("15:04", s)
	if err != nil {
		t.Fatalf("spec time %q: %v", s, err)
	}
	return day.Add(time.Duration(hm.Hour())*time.Hour + time.Duration(hm.Minute())*time.Minute)
}

// writeSpec writes the file a spec names into root and returns its key:
//
//	"HH:MM" / "DDTHH:MM"  a CloudTrail file with that delivery time, one record
//	"bad:HH:MM"           the same name, not JSON, last changed long ago
//	"writing:HH:MM"       not JSON yet, changed 30s ago (being written)
//	"new:HH:MM"           a good file, written just now
//	"fix:HH:MM"           rewrites it whole and good
//	"x/y.json"            a file of a flat folder (no time in its name)
//	"day:x.json"          a file without an AWS name in pollDay's date folder
func writeSpec(t *testing.T, root, spec string, now time.Time) string {
	t.Helper()
	kind, rest, _ := strings.Cut(spec, ":")
	var key string
	var body []byte
	var mtime = now.Add(-10 * time.Minute)
	at := pollDay
	switch kind {
	case "bad", "writing", "fix", "new":
		at = specTime(t, rest)
	case "day":
		key = "AWSLogs/111122223333/CloudTrail/eu-west-1/2026/03/03/" + rest
	default:
		if strings.Contains(spec, ".json") {
			key = spec
		} else {
			at = specTime(t, spec)
		}
	}
	if key == "" {
		key = fmt.Sprintf("AWSLogs/111122223333/CloudTrail/eu-west-1/%s/111122223333_CloudTrail_eu-west-1_%s_u.json.gz",
			at.Format("2006/01/02"), at.Format("20060102T1504Z"))
	}
	rec := fmt.Sprintf(`{"Records":[{"eventTime":%q,"eventSource":"s3.amazonaws.com","eventName":"PutObject","eventID":%q,"awsRegion":"eu-west-1","recipientAccountId":"111122223333"}]}`,
		at.Add(-time.Minute).Format(time.RFC3339), spec)
	switch kind {
	case "bad":
		body = []byte("not json")
	case "writing":
		body, mtime = []byte(`{"Records":[{"eventTi`), now.Add(-30*time.Second)
	case "new":
		body, mtime = []byte(rec), now
	default:
		body = []byte(rec)
	}
	if strings.HasSuffix(key, ".gz") && kind != "bad" && kind != "writing" {
		var b bytes.Buffer
		b.Write(gzipBytes(t, body))
		body = b.Bytes()
	}
	path := filepath.Join(root, filepath.FromSlash(key))
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, body, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(path, mtime, mtime); err != nil {
		t.Fatal(err)
	}
	return key
}

// TestPollCursor: the poller returns each file once, in delivery order,
// finds files landing late or out of key order inside the window, skips
// what landed later than the window or before From, resumes from its
// position, and keeps its done set to the window.
func TestPollCursor(t *testing.T) {
	cases := []struct {
		name   string
		window time.Duration
		from   string
		steps  []pollStep
	}{
		{name: "in order", steps: []pollStep{
			{now: "10:10", add: []string{"10:05", "10:00"}, want: []string{"10:00", "10:05"}, through: "09:10", done: n(2)},
			{now: "10:15", add: []string{"10:10"}, want: []string{"10:10"}, done: n(3)},
			{now: "10:20", want: nil, done: n(3)},
		}},
		{name: "late and out of key order inside the window", steps: []pollStep{
			{now: "10:30", add: []string{"10:00", "10:20"}, want: []string{"10:00", "10:20"}},
			{now: "10:40", add: []string{"10:10", "10:35"}, want: []string{"10:10", "10:35"}},
		}},
		{name: "later than the window is not read", steps: []pollStep{
			{now: "10:00", add: []string{"09:55"}, want: []string{"09:55"}, through: "09:00", done: n(1)},
			{now: "12:00", add: []string{"10:30"}, want: []string{"10:30"}, through: "11:00", done: n(0)},
			{now: "12:10", add: []string{"10:45", "12:05"}, want: []string{"12:05"}, through: "11:10", done: n(1)},
		}},
		{name: "from", from: "10:00", steps: []pollStep{
			{now: "10:10", add: []string{"09:55", "10:00", "10:05"}, want: []string{"10:00", "10:05"}, through: "10:00"},
		}},
		{name: "backfill then watch: the cursor follows the oldest file not yet read", from: "01T00:00", steps: []pollStep{
			{now: "10:00", add: []string{"01T10:00", "02T10:00", "03T09:30"}, take: 2, want: []string{"01T10:00", "02T10:00"}, through: "03T09:00", done: n(0)},
			{now: "10:01", want: []string{"03T09:30"}, through: "09:01", done: n(1)},
		}},
		{name: "restart between two files of a listing", steps: []pollStep{
			{now: "10:20", add: []string{"10:00", "10:05", "10:10"}, take: 1, restart: true, want: []string{"10:00"}},
			{now: "10:21", add: []string{"10:15"}, want: []string{"10:05", "10:10", "10:15"}, restart: true},
			{now: "10:22", want: nil},
		}},
		{name: "restart after the window moved on", steps: []pollStep{
			{now: "10:00", add: []string{"09:30", "09:50"}, want: []string{"09:30", "09:50"}, restart: true},
			{now: "11:40", add: []string{"10:50", "11:35"}, want: []string{"10:50", "11:35"}, through: "10:40", done: n(2), restart: true},
			{now: "11:45", add: []string{"10:30"}, want: nil},
		}},
		{name: "crossing midnight", steps: []pollStep{
			{now: "23:58", add: []string{"23:55"}, want: []string{"23:55"}},
			{now: "04T00:10", add: []string{"04T00:05", "23:59"}, want: []string{"23:59", "04T00:05"}},
		}},
		{name: "flat folder: done by path while the file is there", steps: []pollStep{
			{now: "10:00", add: []string{"a.json", "b/c.json"}, want: []string{"a.json", "b/c.json"}, restart: true, done: n(2)},
			{now: "23:00", add: []string{"d.json"}, want: []string{"d.json"}, done: n(3)},
			// Files deleted (rotated away) leave the done set, so it holds
			// at most what the folder holds; the others stay done.
			{now: "23:10", remove: []string{"a.json", "b/c.json"}, want: nil, done: n(1), restart: true},
			{now: "23:20", add: []string{"e.json"}, want: []string{"e.json"}, done: n(2)},
		}},
		{name: "date folder without AWS names: done until its day is past the window", steps: []pollStep{
			{now: "10:00", add: []string{"day:x.json"}, want: []string{"day:x.json"}, done: n(1)},
			{now: "23:59", want: nil, done: n(1)},
			{now: "04T02:00", add: []string{"day:y.json"}, want: []string{"day:y.json"}, through: "04T01:00", done: n(0)},
			{now: "04T03:00", add: []string{"day:z.json"}, want: nil, through: "04T02:00", done: n(0)},
		}},
		{name: "a bad file is returned once", steps: []pollStep{
			{now: "10:10", add: []string{"bad:10:00", "10:05"}, want: []string{"bad:10:00", "10:05"}},
			{now: "10:15", want: nil},
		}},
		{name: "a file written just now waits for the next listing", steps: []pollStep{
			{now: "10:10", add: []string{"new:10:00", "10:05"}, want: []string{"10:05"}, through: "09:10"},
			{now: "10:11", want: []string{"new:10:00"}},
		}},
		{name: "a file being written waits, and the files after it", steps: []pollStep{
			{now: "10:10", add: []string{"writing:10:00", "10:05"}, want: nil, through: "09:10"},
			{now: "10:11", add: []string{"fix:10:00"}, want: []string{"fix:10:00", "10:05"}},
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			var now time.Time
			opt := PollOptions{Window: tc.window, Interval: time.Nanosecond, Now: func() time.Time { return now }}
			if opt.Window == 0 {
				opt.Window = time.Hour
			}
			if tc.from != "" {
				opt.From = specTime(t, tc.from)
			}
			var p *Poller
			label := map[string]string{} // key → spec
			for i, st := range tc.steps {
				now = specTime(t, st.now)
				if p == nil {
					var err error
					if p, err = NewDirPoller(root, nil, opt); err != nil {
						t.Fatal(err)
					}
				}
				for _, key := range st.remove {
					if err := os.Remove(filepath.Join(root, filepath.FromSlash(key))); err != nil {
						t.Fatal(err)
					}
				}
				for _, spec := range st.add {
					label[writeSpec(t, root, spec, now)] = spec
				}
				got := drainPoll(t, p, st.take)
				var gotSpecs []string
				for _, k := range got {
					gotSpecs = append(gotSpecs, label[k])
				}
				if d := cmp.Diff(st.want, gotSpecs); d != "" {
					t.Errorf("step %d (%s): files (-want +got):\n%s", i, st.now, d)
				}
				s := p.Stats()
				if st.through != "" && !s.Through.Equal(specTime(t, st.through)) {
					t.Errorf("step %d: Through = %v, want %v", i, s.Through, specTime(t, st.through))
				}
				if st.done != nil && s.Done != *st.done {
					t.Errorf("step %d: Done = %d, want %d", i, s.Done, *st.done)
				}
				if st.restart || st.take > 0 {
					pos := p.Position()
					p.Close()
					var err error
					if p, err = NewDirPoller(root, pos, opt); err != nil {
						t.Fatalf("step %d: restart: %v", i, err)
					}
				}
			}
			p.Close()
		})
	}
}

// drainPoll makes one listing and returns the keys of the files the
// poller returns from it (at most take when take > 0).
func drainPoll(t *testing.T, p *Poller, take int) []string {
	t.Helper()
	ctx := context.Background()
	if err := p.poll(ctx); err != nil {
		t.Fatal(err)
	}
	var keys []string
	for take == 0 || len(keys) < take {
		b, ok, err := p.next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			break
		}
		keys = append(keys, p.store.key(b.File))
		if strings.HasPrefix(filepath.Base(b.File.Path), "111122223333") && !strings.Contains(b.File.Path, "bad") && b.Err == nil && len(b.Events) != 1 {
			t.Errorf("%s: %d events", b.File.Path, len(b.Events))
		}
	}
	return keys
}

// TestPollNext: Next polls by itself every Interval and ends with ctx.
func TestPollNext(t *testing.T) {
	root := t.TempDir()
	now := pollDay.Add(10 * time.Hour)
	writeSpec(t, root, "09:55", now)
	p, err := NewDirPoller(root, nil, PollOptions{Interval: 10 * time.Millisecond, Now: func() time.Time { return now }, From: pollDay})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	b, err := p.Next(ctx)
	if err != nil || len(b.Events) != 1 {
		t.Fatalf("Next = %d events, %v", len(b.Events), err)
	}
	writeSpec(t, root, "09:58", now)
	if b, err = p.Next(ctx); err != nil || !strings.Contains(b.File.Path, "0958Z") {
		t.Fatalf("Next = %s, %v; want the file that landed", b.File.Path, err)
	}
	short, cancel2 := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel2()
	if _, err := p.Next(short); err != context.DeadlineExceeded {
		t.Errorf("Next with nothing new = %v, want DeadlineExceeded", err)
	}
	if st := p.Stats(); st.Polls < 3 || st.Files != 2 {
		t.Errorf("Stats = %+v", st)
	}
	if _, err := NewDirPoller(filepath.Join(root, "nope"), nil, PollOptions{}); err == nil {
		t.Error("NewDirPoller(missing folder) = nil error")
	}
}

func TestPollPositionRoundTrip(t *testing.T) {
	through := time.Date(2026, 3, 3, 10, 0, 0, 0, time.UTC)
	done := map[string]time.Time{"AWSLogs/a.json.gz": through.Add(5 * time.Minute), "flat.json": {}}
	b := EncodePollPosition(through, done)
	gotThrough, gotDone, err := DecodePollPosition(b)
	if err != nil || !gotThrough.Equal(through) || !cmp.Equal(gotDone, done) {
		t.Errorf("DecodePollPosition(EncodePollPosition(…)) = %v %v %v", gotThrough, gotDone, err)
	}
	for _, bad := range [][]byte{nil, {9}, b[:len(b)-1], append(append([]byte{}, b...), 0)} {
		if _, _, err := DecodePollPosition(bad); err == nil {
			t.Errorf("DecodePollPosition(%q) = nil error", bad)
		}
	}
}

func FuzzDecodePollPosition(f *testing.F) {
	f.Add(EncodePollPosition(time.Unix(1772531400, 0), map[string]time.Time{"a": time.Unix(1772531700, 0), "b/c.json": {}}))
	f.Add([]byte{1, 0, 0})
	f.Add([]byte{1, 2, 200, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		through, done, err := DecodePollPosition(b)
		if err != nil {
			return
		}
		again := EncodePollPosition(through, done)
		t2, d2, err := DecodePollPosition(again)
		if err != nil || !t2.Equal(through) || len(d2) != len(done) {
			t.Fatalf("re-decoding %q: %v", again, err)
		}
	})
}
