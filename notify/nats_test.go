package notify

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
	"go.uber.org/goleak"

	"github.com/trailsight/trailsight/detector"
)

// startNATS starts an embedded server for one test and stops it (and waits
// for its goroutines) at cleanup. Shutting it down earlier is allowed.
func startNATS(t *testing.T, opt EmbeddedOptions) (*server.Server, string) {
	t.Helper()
	if opt.StoreDir == "" && !opt.NoJetStream {
		opt.StoreDir = t.TempDir()
	}
	s, u, err := StartEmbeddedNATS(opt)
	if err != nil {
		t.Fatalf("StartEmbeddedNATS: %v", err)
	}
	t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	return s, u
}

func newNATS(t *testing.T, opt NATSOptions) *NATS {
	t.Helper()
	n, err := NewNATS(context.Background(), opt)
	if err != nil {
		t.Fatalf("NewNATS(%v): %v", opt, err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

// streamMsgs returns every message in a stream, in order, read over a
// connection of its own.
func streamMsgs(t *testing.T, url, stream string) []*jetstream.RawStreamMsg {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, stream)
	if err != nil {
		t.Fatalf("stream %s: %v", stream, err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out []*jetstream.RawStreamMsg
	for seq := info.State.FirstSeq; info.State.Msgs > 0 && seq <= info.State.LastSeq; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if err != nil {
			t.Fatalf("GetMsg(%d): %v", seq, err)
		}
		out = append(out, m)
	}
	if uint64(len(out)) != info.State.Msgs {
		t.Fatalf("read %d messages, stream info says %d", len(out), info.State.Msgs)
	}
	return out
}

// renderMsg is a message as golden files show it.
func renderMsg(subject string, h nats.Header, data []byte) string {
	return fmt.Sprintf("subject: %s\n%s: %s\n%s\n", subject, jetstream.MsgIDHeader, h.Get(jetstream.MsgIDHeader), data)
}

func eventIDs(ins []detector.Insight) []string {
	var ids []string
	for _, in := range ins {
		ids = append(ids, in.EventID)
	}
	return ids
}

func msgIDs(ms []*jetstream.RawStreamMsg) []string {
	var ids []string
	for _, m := range ms {
		ids = append(ids, m.Header.Get(jetstream.MsgIDHeader))
	}
	return ids
}

// TestNATSGolden: subjects, headers and payloads of a Start, an End and an
// envelope, as stored by JetStream; payloads are JSONLines' lines.
func TestNATSGolden(t *testing.T) {
	_, url := startNATS(t, EmbeddedOptions{})
	ins := fixture()
	for _, c := range []struct {
		opt     NATSOptions
		send    []detector.Insight
		goldens []string
		lines   JSONLinesOptions
	}{
		{NATSOptions{Stream: "INSIGHTS"}, ins[:2], []string{"nats-start.golden", "nats-end.golden"}, JSONLinesOptions{}},
		{NATSOptions{Stream: "ENVELOPES", Prefix: "bus.aws", Envelope: true, StrictAWS: true}, ins[1:2],
			[]string{"nats-envelope.golden"}, JSONLinesOptions{Envelope: true, StrictAWS: true}},
	} {
		c.opt.URL, c.opt.CreateStream = url, true
		n := newNATS(t, c.opt)
		if n.Stream() != c.opt.Stream {
			t.Errorf("Stream() = %q, want %q", n.Stream(), c.opt.Stream)
		}
		if err := n.Notify(context.Background(), c.send); err != nil {
			t.Fatal(err)
		}
		var lines bytes.Buffer
		if err := NewJSONLines(&lines, c.lines).Notify(context.Background(), c.send); err != nil {
			t.Fatal(err)
		}
		want := strings.Split(strings.TrimSuffix(lines.String(), "\n"), "\n")
		ms := streamMsgs(t, url, c.opt.Stream)
		if len(ms) != len(c.goldens) {
			t.Fatalf("stream %s holds %d messages, want %d", c.opt.Stream, len(ms), len(c.goldens))
		}
		for i, m := range ms {
			checkGolden(t, c.goldens[i], []byte(renderMsg(m.Subject, m.Header, m.Data)))
			if string(m.Data) != want[i] {
				t.Errorf("%s: payload differs from the JSONLines line:\n got %s\nwant %s", c.goldens[i], m.Data, want[i])
			}
			if m.Subject != n.Subject(c.send[i]) {
				t.Errorf("subject %s, Subject() says %s", m.Subject, n.Subject(c.send[i]))
			}
		}
	}
}

func TestNATSSubject(t *testing.T) {
	in := fixture()[2] // error-rate
	for _, c := range []struct {
		account, region string
		want            string
	}{
		{"123456789012", "us-east-1", "p.q.123456789012.us-east-1.ApiErrorRateInsight"},
		{"12.34", "us east*1>", "p.q.12_34.us_east_1_.ApiErrorRateInsight"},
		{"", "\teu\n", "p.q._._eu_.ApiErrorRateInsight"},
		{">", "*", "p.q._._.ApiErrorRateInsight"},
	} {
		in.Account, in.Region = c.account, c.region
		if got := natsSubject("p.q", in); got != c.want {
			t.Errorf("natsSubject(%q, %q) = %q, want %q", c.account, c.region, got, c.want)
		}
	}
	in.Type = 99
	if got := natsSubject("p", in); !strings.HasSuffix(got, "._") {
		t.Errorf("unknown type: subject %q", got)
	}
}

// TestNATSDedupe: re-sending a batch, in any order, from the same notifier
// or a new one, leaves each eventID once in the stream.
func TestNATSDedupe(t *testing.T) {
	_, url := startNATS(t, EmbeddedOptions{})
	opt := NATSOptions{URL: url, Stream: "INSIGHTS", CreateStream: true}
	n := newNATS(t, opt)
	ins := fixture()
	rev := slices.Clone(ins)
	slices.Reverse(rev)
	for _, batch := range [][]detector.Insight{ins, ins, rev} {
		if err := n.Notify(context.Background(), batch); err != nil {
			t.Fatal(err)
		}
	}
	if msgs, dup := n.Published(); msgs != 3*len(ins) || dup != 2*len(ins) {
		t.Errorf("Published() = %d, %d duplicates; want %d, %d", msgs, dup, 3*len(ins), 2*len(ins))
	}
	// A re-run: a new notifier on the existing stream.
	n2 := newNATS(t, opt)
	if err := n2.Notify(context.Background(), ins); err != nil {
		t.Fatal(err)
	}
	if _, dup := n2.Published(); dup != len(ins) {
		t.Errorf("re-run: %d duplicates, want %d", dup, len(ins))
	}
	if d := cmp.Diff(eventIDs(ins), msgIDs(streamMsgs(t, url, "INSIGHTS"))); d != "" {
		t.Errorf("stream content (-sent +stored):\n%s", d)
	}
}

// TestNATSAuto: without a stream name, JetStream is used when the server
// has a stream for the prefix, core NATS otherwise.
func TestNATSAuto(t *testing.T) {
	_, url := startNATS(t, EmbeddedOptions{})
	if n := newNATS(t, NATSOptions{URL: url}); n.Stream() != "" {
		t.Errorf("no stream yet: Stream() = %q, want core NATS", n.Stream())
	}
	newNATS(t, NATSOptions{URL: url, Stream: "S1", CreateStream: true})
	if n := newNATS(t, NATSOptions{URL: url}); n.Stream() != "S1" {
		t.Errorf("Stream() = %q, want S1", n.Stream())
	}
	if n := newNATS(t, NATSOptions{URL: url, Core: true}); n.Stream() != "" {
		t.Errorf("Core: Stream() = %q", n.Stream())
	}
	if n := newNATS(t, NATSOptions{URL: url, Prefix: "other"}); n.Stream() != "" {
		t.Errorf("other prefix: Stream() = %q, want core NATS", n.Stream())
	}
}

// TestNATSCore: core NATS delivers to a subscriber, with the eventID header;
// an insight that cannot be encoded is reported and skipped.
func TestNATSCore(t *testing.T) {
	for _, so := range []EmbeddedOptions{{NoJetStream: true}, {}} {
		t.Run(fmt.Sprintf("jetstream=%t", !so.NoJetStream), func(t *testing.T) {
			_, url := startNATS(t, so)
			sub, err := nats.Connect(url)
			if err != nil {
				t.Fatal(err)
			}
			defer sub.Close()
			ch := make(chan *nats.Msg, 64)
			if _, err := sub.ChanSubscribe(DefaultNATSPrefix+".>", ch); err != nil {
				t.Fatal(err)
			}
			if err := sub.Flush(); err != nil {
				t.Fatal(err)
			}
			n := newNATS(t, NATSOptions{URL: url, Core: !so.NoJetStream})
			if n.Stream() != "" {
				t.Fatalf("Stream() = %q, want core NATS", n.Stream())
			}
			ins := fixture()
			bad := ins[0]
			bad.Type, bad.EventID = 99, "bad-type"
			err = n.Notify(context.Background(), append([]detector.Insight{bad}, ins...))
			if err == nil || !strings.Contains(err.Error(), "bad-type") || !NATSPermanent(err) {
				t.Errorf("Notify with a bad insight = %v (permanent %t), want a permanent error naming it", err, NATSPermanent(err))
			}
			var got []string
			timeout := time.After(5 * time.Second)
			for len(got) < len(ins) {
				select {
				case m := <-ch:
					got = append(got, m.Header.Get(jetstream.MsgIDHeader))
					if i := len(got) - 1; m.Subject != n.Subject(ins[i]) {
						t.Errorf("message %d: subject %s, want %s", i, m.Subject, n.Subject(ins[i]))
					}
				case <-timeout:
					t.Fatalf("received %d of %d messages", len(got), len(ins))
				}
			}
			if d := cmp.Diff(eventIDs(ins), got); d != "" {
				t.Errorf("received (-sent +got):\n%s", d)
			}
			if msgs, _ := n.Published(); msgs != len(ins) {
				t.Errorf("Published() = %d, want %d", msgs, len(ins))
			}
		})
	}
}

func serverPort(t *testing.T, s *server.Server) int {
	t.Helper()
	return s.Addr().(*net.TCPAddr).Port
}

// manyInsights returns n distinct insights (copies of a fixture event
// with their own eventIDs).
func manyInsights(n int) []detector.Insight {
	out := make([]detector.Insight, n)
	for i := range out {
		out[i] = fixture()[i%5]
		out[i].EventID = fmt.Sprintf("%s-%05d", out[i].EventID[:8], i)
	}
	return out
}

// TestNATSServerRestart is "the destination killed mid-run loses nothing"
// at the notifier level: the server is shut down in the middle of a batch;
// Notify fails with a retryable error (not a cancellation), and fails
// within Timeout while the server is down; once the server is back (same
// port, same store), sending the batch again succeeds and the stream holds
// each event exactly once.
func TestNATSServerRestart(t *testing.T) {
	store := t.TempDir()
	s, url := startNATS(t, EmbeddedOptions{StoreDir: store})
	port := serverPort(t, s)
	const timeout = time.Second
	var logs syncBuffer
	n := newNATS(t, NATSOptions{URL: url, Stream: "INSIGHTS", CreateStream: true, Timeout: timeout, Logger: zerolog.New(&logs)})
	ins := manyInsights(600)
	ctx := context.Background()

	done := make(chan error, 1)
	go func() { done <- n.Notify(ctx, ins) }()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		if msgs, _ := n.Published(); msgs >= 50 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the batch did not start")
		}
	}
	s.Shutdown()
	s.WaitForShutdown()
	err := <-done
	if err == nil {
		t.Fatal("the batch finished before the server stopped") // ~550 publishes left; never seen
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) || errors.Is(err, ErrClosed) || NATSPermanent(err) {
		t.Errorf("Notify error %v looks like the caller's cancellation or permanent, not a retryable failure", err)
	}
	sent, _ := n.Published()
	t.Logf("killed after %d of %d: %v", sent, len(ins), err)

	start := time.Now()
	err = n.Notify(ctx, ins[:1])
	if took := time.Since(start); err == nil || took > timeout+time.Second {
		t.Errorf("Notify with the server down = %v after %v, want an error within Timeout %v", err, took, timeout)
	} else if !errors.Is(err, nats.ErrTimeout) {
		t.Errorf("Notify with the server down = %v, want nats.ErrTimeout", err)
	}

	startNATS(t, EmbeddedOptions{StoreDir: store, Port: port})
	deadline := time.Now().Add(10 * time.Second)
	for err = n.Notify(ctx, ins); err != nil; err = n.Notify(ctx, ins) {
		if time.Now().After(deadline) {
			t.Fatalf("Notify after the restart still fails: %v", err)
		}
		time.Sleep(50 * time.Millisecond) // the client reconnects every 500ms
	}
	for _, msg := range []string{`"level":"warn","url":"` + url + `","error":`, `"message":"nats disconnected"`,
		`"level":"info","url":"` + url + `","message":"nats reconnected"`} {
		if !strings.Contains(logs.String(), msg) {
			t.Errorf("log lacks %s:\n%s", msg, logs.String())
		}
	}
	got := msgIDs(streamMsgs(t, url, "INSIGHTS"))
	want := eventIDs(ins)
	slices.Sort(got)
	slices.Sort(want)
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("stream content after the restart (-sent +stored):\n%s", d)
	}
}

// TestNATSCancel: a caller's cancellation ends a Notify that waits for a
// server that is down, and says so.
func TestNATSCancel(t *testing.T) {
	s, url := startNATS(t, EmbeddedOptions{})
	n := newNATS(t, NATSOptions{URL: url, Stream: "INSIGHTS", CreateStream: true, Timeout: time.Minute})
	s.Shutdown()
	s.WaitForShutdown()
	for _, c := range []struct {
		mk   func() (context.Context, context.CancelFunc)
		want error
	}{
		{func() (context.Context, context.CancelFunc) {
			return context.WithTimeout(context.Background(), 100*time.Millisecond)
		},
			context.DeadlineExceeded},
		{func() (context.Context, context.CancelFunc) {
			ctx, cancel := context.WithCancel(context.Background())
			time.AfterFunc(100*time.Millisecond, cancel)
			return ctx, cancel
		}, context.Canceled},
	} {
		ctx, cancel := c.mk()
		start := time.Now()
		err := n.Notify(ctx, fixture())
		cancel()
		if !errors.Is(err, c.want) || time.Since(start) > 5*time.Second {
			t.Errorf("Notify = %v after %v, want %v soon", err, time.Since(start), c.want)
		}
	}
	if err := n.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if err := n.Notify(context.Background(), fixture()); !errors.Is(err, ErrClosed) {
		t.Errorf("Notify after Close = %v, want ErrClosed", err)
	}
}

func TestNewNATSErrors(t *testing.T) {
	_, url := startNATS(t, EmbeddedOptions{})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "nats://" + l.Addr().String()
	l.Close()
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	for _, c := range []struct {
		name string
		ctx  context.Context
		opt  NATSOptions
		want string
	}{
		{"no url", nil, NATSOptions{}, "url: empty"},
		{"bad prefix", nil, NATSOptions{URL: url, Prefix: "a..b"}, "empty token"},
		{"wildcard prefix", nil, NATSOptions{URL: url, Prefix: "a.>"}, "cannot hold"},
		{"bad stream", nil, NATSOptions{URL: url, Stream: "a.b"}, "stream"},
		{"core and stream", nil, NATSOptions{URL: url, Stream: "S", Core: true}, "needs JetStream"},
		{"create without stream", nil, NATSOptions{URL: url, CreateStream: true}, "needs a stream name"},
		{"two credentials", nil, NATSOptions{URL: url, Token: "t", User: "u"}, "not several"},
		{"nobody listening", nil, NATSOptions{URL: closed, Timeout: time.Second}, "connect"},
		{"stream missing", nil, NATSOptions{URL: url, Stream: "MISSING"}, "stream not found"},
		{"cancelled", cancelled, NATSOptions{URL: url}, "context canceled"},
	} {
		ctx := c.ctx
		if ctx == nil {
			ctx = context.Background()
		}
		n, err := NewNATS(ctx, c.opt)
		if err == nil {
			n.Close()
			t.Errorf("%s: NewNATS(%v): no error", c.name, c.opt)
			continue
		}
		if !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: NewNATS(%v) = %v, want an error containing %q", c.name, c.opt, err, c.want)
		}
		if perm := c.name == "stream missing"; NATSPermanent(err) != perm {
			t.Errorf("%s: NATSPermanent(%v) = %t, want %t", c.name, err, !perm, perm)
		}
	}
}

func TestNATSCredentials(t *testing.T) {
	for _, c := range []struct {
		server   EmbeddedOptions
		url      string // userinfo@ to add to the URL
		wrongURL string
	}{
		{EmbeddedOptions{User: "ts", Password: "s3cret pw"}, "ts:s3cret%20pw@", "ts:wrong@"},
		{EmbeddedOptions{Token: "tok3n"}, "tok3n@", "nope@"},
	} {
		_, url := startNATS(t, c.server)
		withCreds := func(userinfo string) NATSOptions {
			o, err := ParseNATSURL(strings.Replace(url, "nats://", "nats://"+userinfo, 1) + "/S?create=1&timeout=2s")
			if err != nil {
				t.Fatal(err)
			}
			return o
		}
		good, bad := withCreds(c.url), withCreds(c.wrongURL)
		for _, o := range []NATSOptions{good, bad} {
			for _, secret := range []string{c.server.Password, c.server.Token, "wrong", "nope"} {
				if secret != "" && (strings.Contains(o.String(), secret) || strings.Contains(fmt.Sprintf("%v %+v %#v", o, o, o), secret)) {
					t.Errorf("options print a secret: %v", o)
				}
			}
		}
		n := newNATS(t, good)
		if err := n.Notify(context.Background(), fixture()); err != nil {
			t.Errorf("Notify with credentials: %v", err)
		}
		if n, err := NewNATS(context.Background(), bad); err == nil {
			n.Close()
			t.Errorf("wrong credentials accepted")
		} else if strings.Contains(err.Error(), "wrong") || strings.Contains(err.Error(), "nope") || !NATSPermanent(err) {
			t.Errorf("wrong credentials: %v (permanent %t), want a permanent error without the secret", err, NATSPermanent(err))
		}
		if _, err := NewNATS(context.Background(), NATSOptions{URL: url}); err == nil {
			t.Errorf("no credentials accepted")
		}
	}
}

func TestParseNATSURL(t *testing.T) {
	for _, c := range []struct {
		in   string
		want NATSOptions
	}{
		{"nats://127.0.0.1:4222", NATSOptions{URL: "nats://127.0.0.1:4222"}},
		{"nats://localhost:4222/", NATSOptions{URL: "nats://localhost:4222"}},
		{"nats://h:1/INSIGHTS", NATSOptions{URL: "nats://h:1", Stream: "INSIGHTS"}},
		{"tls://h:1/IN-S_1?create=1&dupes=30m", NATSOptions{URL: "tls://h:1", Stream: "IN-S_1", CreateStream: true, DuplicateWindow: 30 * time.Minute}},
		{"nats://h:1?prefix=acme.ct&envelope=1&strict=true&timeout=3s",
			NATSOptions{URL: "nats://h:1", Prefix: "acme.ct", Envelope: true, StrictAWS: true, Timeout: 3 * time.Second}},
		{"nats://h:1?envelope&core=1", NATSOptions{URL: "nats://h:1", Envelope: true, Core: true}},
		{"nats://h:1/S?envelope=0", NATSOptions{URL: "nats://h:1", Stream: "S"}},
		{"nats://u:p%40ss@h:1", NATSOptions{URL: "nats://h:1", User: "u", Password: "p@ss"}},
		{"nats://tok@h:1", NATSOptions{URL: "nats://h:1", Token: "tok"}},
		{"nats://h:1?creds=/etc/ts.creds", NATSOptions{URL: "nats://h:1", CredsFile: "/etc/ts.creds"}},
		{"nats://[::1]:4222", NATSOptions{URL: "nats://[::1]:4222"}},
	} {
		got, err := ParseNATSURL(c.in)
		if err != nil {
			t.Errorf("ParseNATSURL(%q): %v", c.in, err)
			continue
		}
		if d := cmp.Diff(c.want.String(), got.String()); d != "" || got.Password != c.want.Password || got.Token != c.want.Token {
			t.Errorf("ParseNATSURL(%q) (-want +got):\n%s", c.in, d)
		}
	}
	for _, c := range []struct {
		in   string
		want []string // every problem is named
	}{
		{"http://h:1", []string{"scheme"}},
		{"nats:///S", []string{"host: empty"}},
		{"nats://h:99999", []string{"port"}},
		{"nats://h:1/a/b", []string{"stream"}},
		{"nats://h:1/a.b", []string{"stream"}},
		{"nats://h:1/S#frag", []string{"fragment"}},
		{"nats://h:1?prefix=a.*", []string{"prefix"}},
		{"nats://h:1?prefix=", []string{"prefix"}},
		{"nats://h:1?envelope=maybe&timeout=-1s&dupes=x&bogus=1", []string{"envelope=", "timeout=", "dupes=", "bogus: unknown key"}},
		{"nats://h:1?strict=1&strict=0", []string{"given 2 times"}},
		{"nats://h:1?creds=", []string{"creds: empty"}},
		{"nats://h:1/S?core=1", []string{"core: a stream needs JetStream"}},
		{"nats://h:1?create=1", []string{"create: needs a stream name"}},
		{"nats://u:pw@h:1?creds=/x", []string{"not several"}},
		{"nats://u:sekrit@h:1/a.b", []string{"stream"}},
		{"nats://h:1?%zz", []string{"query"}},
	} {
		_, err := ParseNATSURL(c.in)
		if err == nil {
			t.Errorf("ParseNATSURL(%q): no error", c.in)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("ParseNATSURL(%q) = %v, want it to say %q", c.in, err, w)
			}
		}
		if strings.Contains(err.Error(), "sekrit") {
			t.Errorf("ParseNATSURL(%q) = %v prints the password", c.in, err)
		}
	}
}

// TestNATSNoLeak: a server, a notifier, a publish, a close and a shutdown
// leave no goroutine behind.
func TestNATSNoLeak(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	s, url, err := StartEmbeddedNATS(EmbeddedOptions{StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { s.Shutdown(); s.WaitForShutdown() }()
	for _, opt := range []NATSOptions{{URL: url, Stream: "S", CreateStream: true}, {URL: url, Core: true}} {
		n, err := NewNATS(context.Background(), opt)
		if err != nil {
			t.Fatal(err)
		}
		if err := n.Notify(context.Background(), fixture()); err != nil {
			t.Error(err)
		}
		if err := n.Close(); err != nil {
			t.Error(err)
		}
	}
}

func TestStartEmbeddedNATSErrors(t *testing.T) {
	if _, _, err := StartEmbeddedNATS(EmbeddedOptions{}); err == nil {
		t.Error("no StoreDir: no error")
	}
	if _, _, err := StartEmbeddedNATS(EmbeddedOptions{NoJetStream: true, Token: "t", User: "u"}); err == nil {
		t.Error("token and user: no error")
	}
	s, _ := startNATS(t, EmbeddedOptions{NoJetStream: true})
	if s2, _, err := StartEmbeddedNATS(EmbeddedOptions{NoJetStream: true, Port: serverPort(t, s), ReadyTimeout: 200 * time.Millisecond}); err == nil {
		s2.Shutdown()
		t.Error("port in use: no error")
	}
}

// natsConformance is the conformance suite's NATS row: a JetStream
// notifier on its own server; the snapshot is every stored message.
func natsConformance(t *testing.T) (Notifier, func() string) {
	_, url := startNATS(t, EmbeddedOptions{})
	n := newNATS(t, NATSOptions{URL: url, Stream: "INSIGHTS", CreateStream: true})
	return n, func() string {
		var b strings.Builder
		for _, m := range streamMsgs(t, url, "INSIGHTS") {
			b.WriteString(renderMsg(m.Subject, m.Header, m.Data))
		}
		return b.String()
	}
}

// syncBuffer is a bytes.Buffer that NATS's callback goroutine may write
// while the test reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestNATSPermanent(t *testing.T) {
	enc := fmt.Errorf("x: %w: boom", errNATSEncode)
	for _, c := range []struct {
		err  error
		want bool
	}{
		{nil, false},
		{errors.New("dial tcp: connection refused"), false},
		{context.Canceled, false},
		{fmt.Errorf("publish: %w", nats.ErrTimeout), false},
		{nats.ErrConnectionClosed, false},
		{jetstream.ErrNoStreamResponse, false},
		{enc, true},
		{errors.Join(enc, nats.ErrTimeout), false}, // a retry delivers the rest
		{fmt.Errorf("nats: %w", nats.ErrMaxPayload), true},
		{fmt.Errorf("nats: %w", nats.ErrAuthorization), true},
		{fmt.Errorf("nats: %w", &jetstream.APIError{Code: 400, Description: "expected stream does not match"}), true},
		{fmt.Errorf("nats: %w", &jetstream.APIError{Code: 503, Description: "unavailable"}), false},
		{jetstream.ErrStreamNotFound, true},
	} {
		if got := NATSPermanent(c.err); got != c.want {
			t.Errorf("NATSPermanent(%v) = %t, want %t", c.err, got, c.want)
		}
	}
}

func ExampleParseNATSURL() {
	o, err := ParseNATSURL("nats://127.0.0.1:4222/INSIGHTS?create=1&envelope=1&prefix=acme.insights")
	if err != nil {
		panic(err)
	}
	fmt.Println(o.URL, o.Stream, o.CreateStream, o.Envelope, o.Prefix)
	// Output: nats://127.0.0.1:4222 INSIGHTS true true acme.insights
}

func ExampleNewNATS() {
	dir, err := os.MkdirTemp("", "nats")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	s, url, err := StartEmbeddedNATS(EmbeddedOptions{StoreDir: dir})
	if err != nil {
		panic(err)
	}
	defer func() { s.Shutdown(); s.WaitForShutdown() }()

	ctx := context.Background()
	n, err := NewNATS(ctx, NATSOptions{URL: url, Stream: "INSIGHTS", CreateStream: true})
	if err != nil {
		panic(err)
	}
	defer n.Close()
	ins := fixture()[:2]
	for range 2 { // a retry stores nothing new
		if err := n.Notify(ctx, ins); err != nil {
			panic(err)
		}
	}
	msgs, dups := n.Published()
	fmt.Println(n.Subject(ins[0]))
	fmt.Println(n.Stream(), msgs, "published,", dups, "duplicates")
	// Output:
	// trailsight.insights.123456789012.us-east-1.ApiCallRateInsight
	// INSIGHTS 4 published, 2 duplicates
}
