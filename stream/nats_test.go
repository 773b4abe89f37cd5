package stream

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	gocmp "github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/goleak"
)

// ---- DecodeRaw ----

// rawDocs returns documents in every shape Decode reads, odd records
// included.
func rawDocs(t *testing.T) map[string][]byte {
	docs := map[string][]byte{}
	for _, path := range sampleFiles(t) {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		docs[path] = b
	}
	r := rand.New(rand.NewPCG(3, 4))
	t0 := time.Date(2024, 3, 4, 5, 0, 0, 0, time.UTC)
	for i := range 120 {
		recs := make([]any, 1+r.IntN(6))
		for j := range recs {
			rec := genRecord(r, t0.Add(time.Duration(r.IntN(7200))*time.Second))
			mutateRecord(r, rec)
			recs[j] = rec
		}
		var doc []byte
		switch i % 6 {
		case 0:
			doc, _ = json.MarshalIndent(map[string]any{"Records": recs}, "", "  ")
		case 1:
			doc, _ = json.Marshal(map[string]any{"Records": append(recs, "not an object"), "digest": 1})
		case 2:
			for _, rec := range recs {
				b, _ := json.Marshal(rec)
				doc = append(append(doc, b...), '\n')
			}
		case 3:
			for _, rec := range recs {
				b, _ := json.Marshal(map[string]any{"detail-type": "AWS API Call via CloudTrail", "account": "999988887777",
					"region": "sa-east-1", "detail": rec})
				doc = append(append(doc, b...), '\n')
			}
		case 4:
			doc, _ = json.MarshalIndent(append(recs, map[string]any{"Records": recs[:1]}, 7), "", "\t")
		case 5:
			events := make([]any, len(recs))
			for j, rec := range recs {
				b, _ := json.Marshal(rec)
				events[j] = map[string]any{"EventId": "x", "EventName": "y", "CloudTrailEvent": string(b)}
			}
			doc, _ = json.Marshal(map[string]any{"Events": events})
		}
		if i%5 == 0 {
			doc = gzipBytes(t, doc)
		}
		docs[fmt.Sprintf("random %d", i)] = doc
	}
	return docs
}

// TestDecodeRawMatchesDecode: DecodeRaw gives Decode's events, stats and
// errors, and each raw record decodes alone to its event.
func TestDecodeRawMatchesDecode(t *testing.T) {
	d, single := NewDecoder(), NewDecoder()
	total := 0
	for name, doc := range rawDocs(t) {
		want, wantSt, wantErr := d.Decode(doc, nil)
		var got []Event
		gotSt, gotErr := d.DecodeRaw(doc, func(ev Event, raw []byte) error {
			got = append(got, ev)
			alone, st, err := single.Decode(raw, nil)
			if err != nil || len(alone) != 1 || st.BadRecords != 0 {
				t.Errorf("%s: raw record %.200s decodes alone to %d events, %+v, %v", name, raw, len(alone), st, err)
			} else if diff := gocmp.Diff(ev, alone[0]); diff != "" {
				t.Errorf("%s: raw record decodes alone to another event (-DecodeRaw +alone):\n%s", name, diff)
			}
			return nil
		})
		if fmt.Sprint(gotErr) != fmt.Sprint(wantErr) {
			t.Errorf("%s: DecodeRaw err = %v, Decode err = %v", name, gotErr, wantErr)
		}
		if gotSt != wantSt {
			t.Errorf("%s: DecodeRaw stats %+v, Decode %+v", name, gotSt, wantSt)
		}
		if diff := gocmp.Diff(want, got, cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("%s: events (-Decode +DecodeRaw):\n%s", name, diff)
		}
		total += len(got)
	}
	if total < 300 {
		t.Errorf("only %d events compared", total)
	}
}

func TestDecodeRawStops(t *testing.T) {
	rec := func(id string) string {
		return `{"eventTime":"2024-01-02T03:04:05Z","eventSource":"s","eventName":"n","eventID":"` + id + `"}`
	}
	d := NewDecoder()
	var syntax *SyntaxError
	tests := []struct {
		name    string
		doc     string
		stopAt  int // fn fails on this call (1-based); 0 never
		wantIDs []string
		wantErr func(error) bool
	}{
		{"lines then a syntax error", rec("a") + "\n" + rec("b") + "\n" + `{"eventTime":` + "\n" + rec("c"), 0,
			[]string{"a", "b"}, func(err error) bool { return errors.As(err, &syntax) }},
		{"error inside a Records document drops it whole", `{"Records":[` + rec("a") + `,` + rec("b") + `,}`, 0,
			nil, func(err error) bool { return errors.As(err, &syntax) }},
		{"fn fails", rec("a") + "\n" + rec("b") + "\n" + rec("c"), 2,
			[]string{"a", "b"}, func(err error) bool { return err != nil && err.Error() == "stop" }},
		{"not CloudTrail", `{"digest":1}`, 0, nil, func(err error) bool { return errors.Is(err, ErrNotCloudTrail) }},
		{"pretty raw kept as it is", "{\"Records\": [\n  " + strings.ReplaceAll(rec("a"), ",", ",\n    ") + "\n]}", 0,
			[]string{"a"}, func(err error) bool { return err == nil }},
	}
	for _, tc := range tests {
		var ids []string
		_, err := d.DecodeRaw([]byte(tc.doc), func(ev Event, raw []byte) error {
			ids = append(ids, ev.ID)
			if !json.Valid(raw) || !bytes.Contains([]byte(tc.doc), raw) {
				t.Errorf("%s: raw %q is not a slice of the document", tc.name, raw)
			}
			if len(ids) == tc.stopAt {
				return errors.New("stop")
			}
			return nil
		})
		if !tc.wantErr(err) {
			t.Errorf("%s: err = %v", tc.name, err)
		}
		if !slices.Equal(ids, tc.wantIDs) {
			t.Errorf("%s: fn saw %v, want %v", tc.name, ids, tc.wantIDs)
		}
	}
}

func TestReadStreamRaw(t *testing.T) {
	rec := `{"eventTime":"2024-01-02T03:04:05Z","eventSource":"s","eventName":"n","eventID":"%d"}`
	var in bytes.Buffer
	fmt.Fprintf(&in, rec+"\n", 1)
	fmt.Fprintf(&in, `{"Records":[`+rec+`,`+rec+`]}`+"\n", 2, 3)
	in.WriteString("{broken\n")
	fmt.Fprintf(&in, rec+"\n", 4)
	for _, gz := range []bool{false, true} {
		data := in.Bytes()
		if gz {
			data = gzipBytes(t, data)
		}
		var ids []string
		st, err := ReadStreamRaw(context.Background(), bytes.NewReader(data), func(ev Event, raw []byte) error {
			ids = append(ids, ev.ID)
			return nil
		})
		if err != nil || !slices.Equal(ids, []string{"1", "2", "3", "4"}) || st.Records != 5 || st.BadRecords != 1 {
			t.Errorf("gzip=%v: ids %v, stats %+v, err %v", gz, ids, st, err)
		}
	}
}

// ---- options, URL, subjects ----

func TestParseNATSURL(t *testing.T) {
	tests := []struct {
		in      string
		want    NATSSourceOptions
		wantErr []string // substrings, each naming a key
	}{
		{in: "nats://127.0.0.1:4222/EVENTS", want: NATSSourceOptions{URL: "nats://127.0.0.1:4222", Stream: "EVENTS"}},
		{in: "tls://u:p%40ss@nats.example:4222/EV?durable=svc&filter=trailsight.events.1.%3E&batch=50&ackwait=30s&timeout=2s",
			want: NATSSourceOptions{URL: "tls://nats.example:4222", Stream: "EV", User: "u", Password: "p@ss", Durable: "svc",
				FilterSubject: "trailsight.events.1.>", Batch: 50, AckWait: 30 * time.Second, Timeout: 2 * time.Second}},
		{in: "nats://tok@h:1/S?creds=/x.creds", wantErr: []string{"credentials"}},
		{in: "nats://h:4222", wantErr: []string{"stream: missing"}},
		{in: "nats://h:99999/a.b?batch=0&nope=1&ackwait=x", wantErr: []string{"port", "stream \"a.b\"", "batch=", "nope: unknown key", "ackwait="}},
		{in: "http://h/S", wantErr: []string{"scheme"}},
	}
	for _, tc := range tests {
		got, err := ParseNATSURL(tc.in)
		if len(tc.wantErr) > 0 {
			for _, w := range tc.wantErr {
				if err == nil || !strings.Contains(err.Error(), w) {
					t.Errorf("ParseNATSURL(%q) err = %v, want it to name %q", tc.in, err, w)
				}
			}
			if err != nil && (strings.Contains(err.Error(), "p%40ss") || strings.Contains(err.Error(), "tok@")) {
				t.Errorf("ParseNATSURL(%q) err shows a secret: %v", tc.in, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseNATSURL(%q): %v", tc.in, err)
			continue
		}
		if diff := gocmp.Diff(tc.want, got, cmpopts.IgnoreFields(NATSSourceOptions{}, "Logger")); diff != "" {
			t.Errorf("ParseNATSURL(%q) (-want +got):\n%s", tc.in, diff)
		}
	}
}

func TestNATSSourceOptionsRedacted(t *testing.T) {
	o := NATSSourceOptions{URL: "nats://u:hunter2@h:1", Stream: "S", User: "u", Password: "hunter2", Token: "t0ken"}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s"} {
		if s := fmt.Sprintf(verb, o); strings.Contains(s, "hunter2") || strings.Contains(s, "t0ken") {
			t.Errorf("Sprintf(%s) shows a secret: %s", verb, s)
		}
	}
}

func TestEventSubject(t *testing.T) {
	tests := []struct {
		acct, region, want string
	}{
		{"123456789012", "us-east-1", "trailsight.events.123456789012.us-east-1"},
		{"", "", "trailsight.events._._"},
		{"a.b", "x *>\ty", "trailsight.events.a_b.x____y"},
	}
	for _, tc := range tests {
		if got := EventSubject(DefaultEventsPrefix, &Event{Account: tc.acct, Region: tc.region}); got != tc.want {
			t.Errorf("EventSubject(%q, %q) = %q, want %q", tc.acct, tc.region, got, tc.want)
		}
	}
	if ValidSubjectPrefix("a..b") == nil || ValidSubjectPrefix("a.>") == nil || ValidSubjectPrefix("trailsight.events") != nil {
		t.Error("ValidSubjectPrefix accepts a bad prefix or rejects a good one")
	}
}

// ---- the source, against a real server ----

// noLeaks checks, after every cleanup of t (servers shut down), that the
// test left no goroutine behind.
func noLeaks(t *testing.T) {
	before := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, before) })
}

// startJetStream starts nats-server with JetStream in this process, on a
// free port of 127.0.0.1 (stream must not import notify, which has the
// same helper).
func startJetStream(t *testing.T) string {
	t.Helper()
	s, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: server.RANDOM_PORT, NoLog: true, NoSigs: true,
		JetStream: true, StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		s.Shutdown()
		t.Fatal("nats-server not ready")
	}
	t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	return s.ClientURL()
}

// natsArchive writes a small trail archive under a temporary folder: the
// S3 test archive, plus records without account and region (the file name
// gives them), pretty records and envelopes.
func natsArchive(t *testing.T) string {
	root := t.TempDir()
	files := s3Archive(t, 20)
	dir := "AWSLogs/111122223333/CloudTrail/ap-south-1/2024/03/06/"
	files[dir+"111122223333_CloudTrail_ap-south-1_20240306T0000Z_noAccountNoRegn.json"] = []byte(
		`{"eventTime":"2024-03-06T00:00:01Z","eventSource":"s3.amazonaws.com","eventName":"PutObject","eventID":"bare-1","readOnly":false}` + "\n" +
			`{"eventTime":"2024-03-06T00:00:02Z","eventSource":"s3.amazonaws.com","eventName":"PutObject","eventID":"bare-2","readOnly":false}` + "\n")
	files[dir+"111122223333_CloudTrail_ap-south-1_20240306T0005Z_prettyAndEnvelop.json"] = []byte(
		"{\"Records\": [\n  {\n    \"eventTime\": \"2024-03-06T00:04:00Z\",\n    \"eventSource\": \"iam.amazonaws.com\",\n" +
			"    \"eventName\": \"CreateRole\",\n    \"eventID\": \"pretty-1\",\n    \"awsRegion\": \"us-east-1\"\n  }\n]}\n" +
			`{"detail-type":"AWS API Call via CloudTrail","account":"777788889999","region":"eu-north-1","detail":{"eventTime":"2024-03-06T00:04:30Z","eventSource":"kms.amazonaws.com","eventName":"Decrypt","eventID":"env-1"}}` + "\n")
	for k, b := range files {
		p := filepath.Join(root, filepath.FromSlash(k))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// publishRaw publishes every record of the archive at root as the publish
// command does (one message per record, its raw bytes, Nats-Msg-Id =
// eventID, account and region headers when the file gave them), and
// returns the events ListDir+DecodeFiles give, and the duplicates the
// server reported.
func publishRaw(t *testing.T, js jetstream.JetStream, root string) (want []Event, dups int) {
	t.Helper()
	files, _, err := ListDir(root, time.Time{}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	want, _ = decodeAll(t, files, OpenFile, 2)
	d := NewDecoder()
	ctx := context.Background()
	for _, f := range files {
		data, err := os.ReadFile(f.Path)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = d.DecodeRaw(data, func(ev Event, raw []byte) error {
			m := nats.NewMsg("")
			if ev.Account == "" && f.Account != "" {
				ev.Account = f.Account
				m.Header.Set(HeaderAccount, f.Account)
			}
			if ev.Region == "" && f.Region != "" {
				ev.Region = f.Region
				m.Header.Set(HeaderRegion, f.Region)
			}
			m.Subject = EventSubject(DefaultEventsPrefix, &ev)
			m.Data = bytes.Clone(raw)
			if ev.ID != "" {
				m.Header.Set(jetstream.MsgIDHeader, ev.ID)
			}
			ack, err := js.PublishMsg(ctx, m)
			if err != nil {
				t.Fatalf("publish %s: %v", ev.ID, err)
			}
			if ack.Duplicate {
				dups++
			}
			return nil
		})
	}
	return want, dups
}

func newEventsStream(t *testing.T, url string) (*nats.Conn, jetstream.JetStream) {
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
	_, err = js.CreateStream(context.Background(), jetstream.StreamConfig{Name: "EVENTS", Subjects: []string{DefaultEventsPrefix + ".>"},
		Storage: jetstream.FileStorage, Duplicates: 2 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	return nc, js
}

func streamMsgs(t *testing.T, js jetstream.JetStream) (msgs, lastSeq uint64) {
	t.Helper()
	s, err := js.Stream(context.Background(), "EVENTS")
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs, info.State.LastSeq
}

func newSource(t *testing.T, url string, mod func(*NATSSourceOptions)) *NATSSource {
	t.Helper()
	o := NATSSourceOptions{URL: url, Stream: "EVENTS", Batch: 64, FetchWait: 200 * time.Millisecond}
	if mod != nil {
		mod(&o)
	}
	s, err := NewNATSSource(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// drain reads src until it has n events (acking each batch) or 10 s pass.
func drain(t *testing.T, src *NATSSource, n int) []Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var got []Event
	for len(got) < n {
		evs, ack, err := src.Next(ctx)
		if err != nil {
			t.Fatalf("Next after %d of %d events: %v", len(got), n, err)
		}
		got = append(got, evs...)
		ack(nil)
	}
	return got
}

func sortEvents(evs []Event) {
	slices.SortFunc(evs, func(a, b Event) int { return cmp.Or(strings.Compare(a.ID, b.ID), a.Time.Compare(b.Time)) })
}

// assertQuiet checks that src has nothing to deliver.
func assertQuiet(t *testing.T, src *NATSSource) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 400*time.Millisecond)
	defer cancel()
	evs, _, err := src.Next(ctx)
	if !errors.Is(err, context.DeadlineExceeded) || len(evs) > 0 {
		t.Errorf("Next = %d events, %v; want nothing (context.DeadlineExceeded)", len(evs), err)
	}
}

// TestNATSSourceRoundTrip: an archive published record by record comes out
// of the source as exactly the events ListDir+DecodeFiles give; publishing
// it again adds nothing; a batch not acked before Close is redelivered to
// the next source on the same durable, acked ones never are; a message
// that is not JSON is counted and skipped.
func TestNATSSourceRoundTrip(t *testing.T) {
	noLeaks(t)
	url := startJetStream(t)
	nc, js := newEventsStream(t, url)
	root := natsArchive(t)

	want, dups := publishRaw(t, js, root)
	if dups != 0 || len(want) < 900 {
		t.Fatalf("first publish: %d events, %d duplicates", len(want), dups)
	}
	n, _ := streamMsgs(t, js)
	if int(n) != len(want) {
		t.Fatalf("stream holds %d messages, want %d", n, len(want))
	}
	if _, dups = publishRaw(t, js, root); dups != len(want) {
		t.Errorf("re-publish: %d duplicates, want %d", dups, len(want))
	}
	if n2, _ := streamMsgs(t, js); n2 != n {
		t.Errorf("re-publish: stream holds %d messages, want %d", n2, n)
	}
	if _, err := js.Publish(context.Background(), DefaultEventsPrefix+".x.y", []byte("not json {")); err != nil {
		t.Fatal(err)
	}
	_, lastSeq := streamMsgs(t, js)

	// A first consumer takes a batch and stops without acking it.
	a := newSource(t, url, nil)
	first, _, err := a.Next(context.Background())
	if err != nil || len(first) == 0 {
		t.Fatalf("first Next: %d events, %v", len(first), err)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if st := a.Stats(); st.Naked != int64(len(first)) || st.Acked != 0 {
		t.Errorf("after Close: stats %+v, want %d naked", st, len(first))
	}
	if _, _, err := a.Next(context.Background()); !errors.Is(err, ErrSourceClosed) {
		t.Errorf("Next after Close: %v, want ErrSourceClosed", err)
	}

	// The next one gets it again, then everything else, once.
	b := newSource(t, url, nil)
	got := drain(t, b, len(want))
	assertQuiet(t, b)
	sortEvents(got)
	sortEvents(want)
	if diff := gocmp.Diff(want, got); diff != "" {
		t.Errorf("source events (-ListDir+DecodeFiles +NATS):\n%s", diff)
	}
	st := b.Stats()
	if st.BadMessages != 1 || st.Redelivered != int64(len(first)) || st.Events != int64(len(want)) || st.Acked != int64(len(want)) {
		t.Errorf("stats %+v: want 1 bad message, %d redelivered, %d events and acks", st, len(first), len(want))
	}
	if b.Position() != lastSeq {
		t.Errorf("Position() = %d, want %d", b.Position(), lastSeq)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}

	// Acked messages are never redelivered; the position survives.
	c := newSource(t, url, nil)
	assertQuiet(t, c)
	if c.Position() != lastSeq {
		t.Errorf("restarted Position() = %d, want %d", c.Position(), lastSeq)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	nc.Close()
}

// TestNATSSourceCrash: a consumer that dies without acking (no Close) has
// its batch redelivered after AckWait; ack(err) redelivers at once.
func TestNATSSourceCrash(t *testing.T) {
	noLeaks(t)
	url := startJetStream(t)
	nc, js := newEventsStream(t, url)
	for i := range 30 {
		rec := fmt.Sprintf(`{"eventTime":"2024-01-02T03:04:%02dZ","eventSource":"s","eventName":"n","eventID":"id-%02d","recipientAccountId":"1","awsRegion":"r"}`, i, i)
		if _, err := js.Publish(context.Background(), DefaultEventsPrefix+".1.r", []byte(rec)); err != nil {
			t.Fatal(err)
		}
	}
	short := func(o *NATSSourceOptions) { o.AckWait = time.Second; o.Batch = 10 }
	a := newSource(t, url, short)
	first, _, err := a.Next(context.Background())
	if err != nil || len(first) != 10 {
		t.Fatalf("first Next: %d events, %v", len(first), err)
	}
	a.nc.Close() // dies: no Nak

	b := newSource(t, url, short)
	evs, ack, err := b.Next(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	ack(errors.New("cannot count now")) // handed back at once
	again := drain(t, b, 30)
	if st := b.Stats(); st.Naked != int64(len(evs)) || st.Redelivered < int64(len(first)+len(evs)) {
		t.Errorf("stats %+v: want %d naked, at least %d redelivered", st, len(evs), len(first)+len(evs))
	}
	ids := map[string]int{}
	for _, e := range again {
		ids[e.ID]++
	}
	if len(ids) != 30 || len(again) != 30 {
		t.Errorf("after redelivery: %d events, %d distinct; want 30 once each", len(again), len(ids))
	}
	assertQuiet(t, b)
	_ = a.Close()
	_ = b.Close()
	nc.Close()
}

// TestNATSSourceRestartsAgain: a consumer restarted at its ack floor
// (InOrder, after a crash) starts by sequence; starting again with nothing
// pending keeps that start instead of failing to update it.
func TestNATSSourceRestartsAgain(t *testing.T) {
	url := startJetStream(t)
	nc, js := newEventsStream(t, url)
	defer nc.Close()
	for i := range 20 {
		rec := fmt.Sprintf(`{"eventTime":"2024-01-02T03:04:%02dZ","eventSource":"s","eventName":"n","eventID":"id-%02d","recipientAccountId":"1","awsRegion":"r"}`, i, i)
		if _, err := js.Publish(context.Background(), DefaultEventsPrefix+".1.r", []byte(rec)); err != nil {
			t.Fatal(err)
		}
	}
	inOrder := func(o *NATSSourceOptions) { o.InOrder = true; o.Batch = 10 }
	a := newSource(t, url, inOrder)
	if evs, _, err := a.Next(context.Background()); err != nil || len(evs) == 0 {
		t.Fatalf("first Next: %d events, %v", len(evs), err)
	}
	a.nc.Close() // dies with its batch unacked

	b := newSource(t, url, inOrder) // restarted at the ack floor
	drain(t, b, 20)
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	c := newSource(t, url, inOrder) // nothing pending: the consumer as it is
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if evs, _, err := c.Next(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("third start: %d events, %v; want none", len(evs), err)
	}
	_ = c.Close()
}

func TestNewNATSSourceErrors(t *testing.T) {
	url := startJetStream(t)
	if _, err := NewNATSSource(context.Background(), NATSSourceOptions{URL: url, Stream: "MISSING", Timeout: 2 * time.Second}); err == nil ||
		!errors.Is(err, jetstream.ErrStreamNotFound) {
		t.Errorf("missing stream: err = %v, want ErrStreamNotFound", err)
	}
	if _, err := NewNATSSource(context.Background(), NATSSourceOptions{Stream: "bad.name", Batch: 10, MaxAckPending: 5}); err == nil ||
		!strings.Contains(err.Error(), "url") || !strings.Contains(err.Error(), "stream") || !strings.Contains(err.Error(), "max ack pending") {
		t.Errorf("bad options: err = %v, want every problem named", err)
	}
}
