package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/trailsight/trailsight/notify"
	"github.com/trailsight/trailsight/stream"
)

// startJetStream starts the embedded NATS server with JetStream.
func startJetStream(t *testing.T) string {
	t.Helper()
	ns, url, err := notify.StartEmbeddedNATS(notify.EmbeddedOptions{StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	return url
}

func jsClient(t *testing.T, url string) jetstream.JetStream {
	t.Helper()
	nc, err := nats.Connect(url)
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

func streamState(t *testing.T, js jetstream.JetStream, name string) jetstream.StreamState {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return info.State
}

// runPublish runs the binary's publish and returns its summary.
func runPublish(t *testing.T, stdin []byte, args ...string) (publishSummary, string) {
	t.Helper()
	sum := filepath.Join(t.TempDir(), "summary.json")
	_, stderr, code := ts(t, stdin, append([]string{"--log-level", "warn", "publish", "--summary-json", sum}, args...)...)
	if code != 0 {
		t.Fatalf("publish %v: exit %d\n%s", args, code, stderr)
	}
	var s publishSummary
	b, err := os.ReadFile(sum)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatal(err)
	}
	return s, stderr
}

// TestPublishArchive: a generated archive published record by record holds
// each record once (the generator delivers some files twice), as its own
// compact JSON on <prefix>.<account>.<region>; publishing it again stores
// nothing; and the NATS source reads back exactly the events detect would.
func TestPublishArchive(t *testing.T) {
	dir := t.TempDir()
	arch := filepath.Join(dir, "archive")
	if _, e, code := ts(t, nil, "gen", "--out", arch, "--days", "1", "--accounts", "1", "--seed", "3", "--background-only"); code != 0 {
		t.Fatalf("gen exit %d: %s", code, e)
	}
	// One file delivered twice, as S3 sometimes does.
	files, _, err := stream.ListDir(arch, time.Time{}, time.Time{})
	if err != nil || len(files) < 10 {
		t.Fatalf("%d files, %v", len(files), err)
	}
	again := files[len(files)/2].Path
	b, err := os.ReadFile(again)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(strings.TrimSuffix(again, ".json.gz")+"Z9.json.gz", b, 0o644); err != nil {
		t.Fatal(err)
	}
	// What detect reads: every event, and each eventID once.
	if files, _, err = stream.ListDir(arch, time.Time{}, time.Time{}); err != nil {
		t.Fatal(err)
	}
	batches := make(chan stream.Batch, len(files))
	if err := stream.DecodeFiles(context.Background(), files, stream.OpenFile, 0, batches); err != nil {
		t.Fatal(err)
	}
	close(batches)
	byID := map[string]stream.Event{}
	total := 0
	for b := range batches {
		total += len(b.Events)
		for _, ev := range b.Events {
			byID[ev.ID] = ev
		}
	}
	if total == len(byID) {
		t.Fatalf("the archive has no duplicate delivery (%d events): the test needs one", total)
	}

	url := startJetStream(t)
	js := jsClient(t, url)
	s, stderr := runPublish(t, nil, "--in", arch, url+"/EVENTS", "--create")
	if !strings.Contains(stderr, "records/s") || !strings.Contains(stderr, "duplicates dropped by the server") {
		t.Errorf("summary missing from stderr:\n%s", stderr)
	}
	if s.Sent != int64(total) || s.Stored != int64(len(byID)) || s.Duplicates != s.Sent-s.Stored || s.BadFiles != 0 || s.Failed != 0 {
		t.Errorf("summary %+v: want %d sent, %d stored", s, total, len(byID))
	}
	t.Logf("published %d records in %.2fs: %.0f records/s", s.Sent, s.Seconds, s.RecordsPerSec)
	st := streamState(t, js, "EVENTS")
	if st.Msgs != uint64(len(byID)) {
		t.Errorf("stream holds %d messages, want %d", st.Msgs, len(byID))
	}

	// Messages are the records' own JSON, compact, on their subject.
	ctx := context.Background()
	str, _ := js.Stream(ctx, "EVENTS")
	for seq := uint64(1); seq <= 20; seq++ {
		m, err := str.GetMsg(ctx, seq)
		if err != nil {
			t.Fatal(err)
		}
		var compact bytes.Buffer
		if err := json.Compact(&compact, m.Data); err != nil || !bytes.Equal(compact.Bytes(), m.Data) {
			t.Errorf("message %d is not compact JSON: %v\n%s", seq, err, m.Data)
		}
		evs, _, err := stream.NewDecoder().Decode(m.Data, nil)
		if err != nil || len(evs) != 1 {
			t.Fatalf("message %d: %d events, %v", seq, len(evs), err)
		}
		want := byID[evs[0].ID]
		if m.Subject != stream.EventSubject("trailsight.events", &want) || m.Header.Get(jetstream.MsgIDHeader) != want.ID {
			t.Errorf("message %d: subject %s, id %s; want %s, %s", seq, m.Subject, m.Header.Get(jetstream.MsgIDHeader),
				stream.EventSubject("trailsight.events", &want), want.ID)
		}
	}

	// Again: the server drops every record.
	s2, _ := runPublish(t, nil, "--in", arch, url+"/EVENTS")
	if s2.Stored != 0 || s2.Duplicates != int64(total) {
		t.Errorf("re-publish summary %+v: want 0 stored, %d duplicates", s2, total)
	}
	if st2 := streamState(t, js, "EVENTS"); st2.Msgs != st.Msgs {
		t.Errorf("re-publish: stream holds %d messages, want %d", st2.Msgs, st.Msgs)
	}

	// The service's source reads back what detect reads.
	src, err := stream.NewNATSSource(ctx, stream.NATSSourceOptions{URL: url, Stream: "EVENTS", Batch: 1000})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	rctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	seen := map[string]bool{}
	for len(seen) < len(byID) {
		evs, ack, err := src.Next(rctx)
		if err != nil {
			t.Fatalf("Next after %d events: %v", len(seen), err)
		}
		for _, ev := range evs {
			if d := cmp.Diff(byID[ev.ID], ev); d != "" {
				t.Fatalf("event %s (-detect +NATS):\n%s", ev.ID, d)
			}
			if seen[ev.ID] {
				t.Fatalf("event %s read twice", ev.ID)
			}
			seen[ev.ID] = true
		}
		ack(nil)
	}
	if src.Position() != st.LastSeq {
		t.Errorf("Position() = %d, want %d", src.Position(), st.LastSeq)
	}
}

// TestPublishStdinSpeed: records from standard input, paced at 60× by
// event time (60 s of events take about a second), those without account
// and region on <prefix>._._.
func TestPublishStdinSpeed(t *testing.T) {
	url := startJetStream(t)
	js := jsClient(t, url)
	var in bytes.Buffer
	for i, sec := range []int{0, 30, 10, 60} {
		fmt.Fprintf(&in, `{"eventTime": "2026-03-02T10:%02d:%02dZ", "eventSource": "s3.amazonaws.com", "eventName": "PutObject", "eventID": "e%d"}`+"\n",
			sec/60, sec%60, i)
	}
	s, _ := runPublish(t, in.Bytes(), "--in", "-", "--speed", "60", "--subject-prefix", "ct.raw", url+"/RAW", "--create")
	if s.Stored != 4 || s.Records != 4 {
		t.Errorf("summary %+v: want 4 records stored", s)
	}
	// 60 s of event time at 60×: one second; loose bounds for a busy machine.
	if s.Seconds < 0.9 || s.Seconds > 20 {
		t.Errorf("took %.2fs, want about 1s", s.Seconds)
	}
	if st := streamState(t, js, "RAW"); st.Msgs != 4 || st.NumSubjects != 1 {
		t.Errorf("stream state %+v: want 4 messages on one subject", st)
	}
	str, _ := js.Stream(context.Background(), "RAW")
	m, err := str.GetMsg(context.Background(), 1)
	if err != nil {
		t.Fatal(err)
	}
	if m.Subject != "ct.raw._._" || strings.Contains(string(m.Data), " ") {
		t.Errorf("message on %s: %s", m.Subject, m.Data)
	}
}

func TestPublishRefuses(t *testing.T) {
	url := startJetStream(t)
	arch := t.TempDir()
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"--in", arch, url + "/MISSING"}, "--create"},
		{[]string{"--in", arch, url}, "stream: missing"},
		{[]string{"--in", arch, url + "/S?durable=x"}, "not for publish"},
		{[]string{"--in", arch, "--speed", "-1", url + "/S"}, "--speed"},
		{[]string{"--in", arch, "--subject-prefix", "a..b", url + "/S"}, "--subject-prefix"},
		{[]string{"--in", filepath.Join(arch, "nope"), url + "/S"}, "no such file"},
	}
	for _, tc := range tests {
		_, stderr, code := ts(t, nil, append([]string{"--log-level", "error", "publish"}, tc.args...)...)
		if code == 0 || !strings.Contains(stderr, tc.want) {
			t.Errorf("publish %v: exit %d, want non-zero naming %q:\n%s", tc.args, code, tc.want, stderr)
		}
	}
	// A stream whose subjects are not <prefix>.> is refused, not filled with errors.
	js := jsClient(t, url)
	if _, err := js.CreateStream(context.Background(), jetstream.StreamConfig{Name: "OTHER", Subjects: []string{"other.>"}}); err != nil {
		t.Fatal(err)
	}
	if _, stderr, code := ts(t, nil, "--log-level", "error", "publish", "--in", arch, url+"/OTHER"); code == 0 || !strings.Contains(stderr, "does not take the subjects") {
		t.Errorf("publish to a stream of other subjects: exit %d:\n%s", code, stderr)
	}
}

// TestPacer checks the schedule by event-time arithmetic on a fake clock.
func TestPacer(t *testing.T) {
	t0 := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		speed  float64
		offs   []time.Duration // event times after t0, in send order
		sleeps []time.Duration
	}{
		{0, []time.Duration{0, time.Hour}, nil},
		{10, []time.Duration{0, 10 * time.Second, 5 * time.Second, 60 * time.Second}, []time.Duration{time.Second, 5 * time.Second}},
		{1, []time.Duration{time.Minute, 0, 2 * time.Minute}, []time.Duration{time.Minute}}, // older records go at once
		{1000, []time.Duration{0, 500 * time.Microsecond, 2 * time.Second}, []time.Duration{2 * time.Millisecond}},
	}
	for _, tc := range tests {
		now := t0 // the wall clock, advanced only by sleeping
		var slept []time.Duration
		p := newPacer(tc.speed)
		p.now = func() time.Time { return now }
		p.sleep = func(_ context.Context, d time.Duration) error { slept = append(slept, d); now = now.Add(d); return nil }
		for _, off := range tc.offs {
			if err := p.wait(context.Background(), t0.Add(off)); err != nil {
				t.Fatal(err)
			}
		}
		if !cmp.Equal(slept, tc.sleeps) {
			t.Errorf("speed %v, events at %v: slept %v, want %v", tc.speed, tc.offs, slept, tc.sleeps)
		}
	}
}

func TestAppendCompact(t *testing.T) {
	for _, in := range []string{
		`{"a":1}`,
		"{\n  \"a\" : [ 1 , 2.5e3 , true , null ],\n\t\"b\": \"x y\\\" z\\\\\", \"c\" :{ } }\r\n",
		`{"s":"\\\\","t":" \" ","u":"\u00e9 ☃"}`,
		` [ "a\\" , "b" ] `,
	} {
		var want bytes.Buffer
		if err := json.Compact(&want, []byte(in)); err != nil {
			t.Fatalf("%q: %v", in, err)
		}
		if got := appendCompact(nil, []byte(in)); string(got) != want.String() {
			t.Errorf("appendCompact(%q) = %q, want %q", in, got, want.String())
		}
	}
}
