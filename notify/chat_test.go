package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"

	"github.com/trailsight/trailsight/detector"
)

// checkLeaks fails t if goroutines started during the test outlive it
// (checked after every cleanup registered later, servers included).
func checkLeaks(t *testing.T) {
	opt := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, opt) })
}

// answer is what hook answers to one request.
type answer struct {
	code   int
	header map[string]string
	body   string
}

// hook is a local webhook receiver (127.0.0.1) that validates every payload
// against the service's documented schema, records the valid ones, and
// answers with the scripted answers first, then 200.
type hook struct {
	t        *testing.T
	srv      *httptest.Server
	validate func(r *http.Request, body []byte) error

	mu      sync.Mutex
	script  []answer
	bodies  [][]byte
	headers []http.Header
	invalid []error
}

func newHook(t *testing.T, validate func(*http.Request, []byte) error, script ...answer) *hook {
	h := &hook{t: t, validate: validate, script: script}
	h.srv = httptest.NewServer(http.HandlerFunc(h.serve))
	t.Cleanup(func() {
		h.srv.Close()
		h.mu.Lock()
		defer h.mu.Unlock()
		for _, err := range h.invalid {
			t.Errorf("invalid payload: %v", err)
		}
	})
	return h
}

func (h *hook) url() Secret { return Secret(h.srv.URL + "/services/T000/B000/secretpart") }

func (h *hook) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	h.mu.Lock()
	defer h.mu.Unlock()
	if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" {
		h.invalid = append(h.invalid, fmt.Errorf("%s with Content-Type %q", r.Method, r.Header.Get("Content-Type")))
	}
	if len(h.script) > 0 && h.script[0].code == 0 { // pass through
		h.script = h.script[1:]
	} else if len(h.script) > 0 {
		a := h.script[0]
		h.script = h.script[1:]
		for k, v := range a.header {
			w.Header().Set(k, v)
		}
		w.WriteHeader(a.code)
		io.WriteString(w, a.body)
		return
	}
	if err := h.validate(r, body); err != nil {
		h.invalid = append(h.invalid, fmt.Errorf("%w\n%s", err, body))
		w.WriteHeader(http.StatusBadRequest)
		io.WriteString(w, "invalid_payload")
		return
	}
	h.bodies = append(h.bodies, body)
	h.headers = append(h.headers, r.Header.Clone())
	w.WriteHeader(http.StatusOK)
	io.WriteString(w, "ok")
}

func (h *hook) received() [][]byte {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.bodies)
}

// snapshot is the set of distinct bodies received, for the conformance
// test.
func (h *hook) snapshot() string {
	var s []string
	for _, b := range h.received() {
		s = append(s, string(b))
	}
	slices.Sort(s)
	return strings.Join(slices.Compact(s), "\n")
}

// chatKinds are the chat notifiers under test, each with its validator.
var chatKinds = []struct {
	name     string
	new      func(url Secret, opt ChatOptions) (*Chat, error)
	validate func(*http.Request, []byte) error
}{
	{"slack", NewSlack, validateSlack},
	{"teams", NewTeams, validateTeams},
	{"discord", NewDiscord, validateDiscord},
	{"webhook", func(u Secret, opt ChatOptions) (*Chat, error) { return NewWebhook(u, testKey, opt) }, validateWebhook},
}

const testKey = Secret("test-signing-key")

// testNow is the clock of the webhook's timestamps in tests.
var testNow = time.Date(2024, 7, 10, 1, 43, 0, 0, time.UTC)

func testChatOptions() ChatOptions {
	return ChatOptions{MinInterval: -1, Now: func() time.Time { return testNow }}
}

// newTestChat returns the notifier of kind k posting to a new hook.
func newTestChat(t *testing.T, k int, script ...answer) (*Chat, *hook) {
	t.Helper()
	h := newHook(t, chatKinds[k].validate, script...)
	c, err := chatKinds[k].new(h.url(), testChatOptions())
	if err != nil {
		t.Fatal(err)
	}
	return c, h
}

// gapInsight is the Start of a gap: a job every 15 minutes went silent.
func gapInsight() detector.Insight {
	start := time.Date(2024, 7, 10, 3, 0, 0, 0, time.UTC)
	shared := detector.SharedEventID("123456789012", "us-east-1", "ec2.amazonaws.com", "CreateSnapshot", detector.ApiCallRate, "", start)
	return detector.Insight{
		EventVersion: "1.08", Time: start, Region: "us-east-1", Account: "123456789012",
		EventID: detector.EventID(shared, detector.Start), SharedEventID: shared, State: detector.Start,
		EventSource: "ec2.amazonaws.com", EventName: "CreateSnapshot", Type: detector.ApiCallRate, Category: "Management",
		Stats: detector.Statistics{BaselineAverage: 0.0667, InsightAverage: 0, InsightDuration: 1, BaselineDuration: 10080},
		Attributions: []detector.Attribution{
			{Attribute: "userIdentityArn", Baseline: []detector.AttrValue{{Value: "arn:aws:sts::123456789012:assumed-role/Backup/lambda", Average: 0.0667}}},
		},
		Explanation: &detector.Explanation{Kind: "gap", Direction: "below", Observed: 0, Expected: 4, BandLow: 2, BandHigh: 6,
			Score: 6.1, WindowMinutes: 60, PeriodMinutes: 15, SilentMinutes: 60, Slot: "weekday 03:00"},
	}
}

// chatInsights returns n distinct Starts and Ends across APIs.
func chatInsights(n int) []detector.Insight {
	var out []detector.Insight
	base := time.Date(2024, 7, 10, 2, 0, 0, 0, time.UTC)
	for i := range n {
		start := base.Add(time.Duration(i) * time.Minute)
		name := fmt.Sprintf("PutObject%02d", i)
		shared := detector.SharedEventID("123456789012", "us-east-1", "s3.amazonaws.com", name, detector.ApiCallRate, "", start)
		in := detector.Insight{
			EventVersion: "1.08", Time: start, Region: "us-east-1", Account: "123456789012",
			EventID: detector.EventID(shared, detector.Start), SharedEventID: shared, State: detector.Start,
			EventSource: "s3.amazonaws.com", EventName: name, Type: detector.ApiCallRate, Category: "Management",
			Stats: detector.Statistics{BaselineAverage: 1.5, InsightAverage: float64(20 + i), InsightDuration: 1, BaselineDuration: 10080},
		}
		if i%4 == 3 {
			in.State, in.EventID = detector.End, detector.EventID(shared, detector.End)
			in.Stats.InsightDuration = 6
		}
		out = append(out, in)
	}
	return out
}

var chatCases = []struct {
	name string
	ins  func() []detector.Insight
}{
	{"start", func() []detector.Insight { return fixture()[:1] }},
	{"end", func() []detector.Insight { return fixture()[1:2] }},
	{"gap", func() []detector.Insight { return []detector.Insight{gapInsight()} }},
	{"error-rate", func() []detector.Insight { return fixture()[2:3] }},
	{"grouped", func() []detector.Insight { return append(append(fixture(), gapInsight()), chatInsights(2)...) }},
}

// TestChatGolden: the payloads of each notifier for a Start, an End, a gap,
// an error-rate insight and a grouped batch, validated by the receiver and
// kept in testdata/chat-<kind>-<case>.golden (indented; the webhook's
// golden starts with its headers).
func TestChatGolden(t *testing.T) {
	for k, kind := range chatKinds {
		for _, c := range chatCases {
			t.Run(kind.name+"/"+c.name, func(t *testing.T) {
				n, h := newTestChat(t, k)
				ins := c.ins()
				if err := n.Notify(context.Background(), ins); err != nil {
					t.Fatal(err)
				}
				var got bytes.Buffer
				for i, b := range h.received() {
					if kind.name == "webhook" {
						for _, name := range []string{HeaderIdempotencyKey, HeaderSignature, HeaderTimestamp} {
							fmt.Fprintf(&got, "%s: %s\n", name, h.headers[i].Get(name))
						}
					}
					if err := json.Indent(&got, b, "", "  "); err != nil {
						t.Fatal(err)
					}
					got.WriteByte('\n')
				}
				checkGolden(t, "chat-"+kind.name+"-"+c.name+".golden", got.Bytes())
				for _, in := range ins {
					if !strings.Contains(got.String(), in.EventID) {
						t.Errorf("payload does not carry eventID %s", in.EventID)
					}
				}
				n.Close()
			})
		}
	}
}

// TestChatFlood: 50 insights at once make a few grouped messages that
// mention every insight.
func TestChatFlood(t *testing.T) {
	ins := chatInsights(50)
	for k, kind := range chatKinds {
		t.Run(kind.name, func(t *testing.T) {
			n, h := newTestChat(t, k)
			defer n.Close()
			if err := n.Notify(context.Background(), ins); err != nil {
				t.Fatal(err)
			}
			got := h.received()
			if len(got) == 0 || len(got) > 3 {
				t.Errorf("%d messages for 50 insights, want 1 to 3", len(got))
			}
			all := string(bytes.Join(got, nil))
			for _, in := range ins {
				if !strings.Contains(all, in.EventID) || !strings.Contains(all, in.EventName) {
					t.Errorf("insight %s (%s) not mentioned", in.EventID, in.EventName)
				}
			}
		})
	}
}

// TestChatStatus: how answers are classified, for every notifier; errors
// never show the URL.
func TestChatStatus(t *testing.T) {
	date := time.Now().Add(90 * time.Second).UTC().Format(http.TimeFormat)
	for _, c := range []struct {
		name      string
		answer    answer
		permanent bool
		after     time.Duration // -1: not a RetryAfterError
	}{
		{"429 seconds", answer{code: 429, header: map[string]string{"Retry-After": "7"}}, false, 7 * time.Second},
		{"429 body", answer{code: 429, header: map[string]string{"Content-Type": "application/json"}, body: `{"message":"You are being rate limited.","retry_after":2.5,"global":false}`}, false, 2500 * time.Millisecond},
		{"429 bare", answer{code: 429}, false, 0},
		{"503 date", answer{code: 503, header: map[string]string{"Retry-After": date}}, false, 90 * time.Second},
		{"500", answer{code: 500, body: "oops"}, false, -1},
		{"502", answer{code: 502}, false, -1},
		{"400", answer{code: 400, body: "invalid_blocks"}, true, -1},
		{"404", answer{code: 404, body: "no_service"}, true, -1},
		{"403", answer{code: 403, body: "action_prohibited"}, true, -1},
		{"301", answer{code: 301, header: map[string]string{"Location": "http://127.0.0.1:1/x"}}, true, -1},
	} {
		for k, kind := range chatKinds {
			t.Run(c.name+"/"+kind.name, func(t *testing.T) {
				n, h := newTestChat(t, k, c.answer)
				defer n.Close()
				err := n.Notify(context.Background(), fixture()[:1])
				if err == nil {
					t.Fatal("no error")
				}
				if errors.Is(err, ErrPermanent) != c.permanent {
					t.Errorf("Notify = %v; permanent %v, want %v", err, errors.Is(err, ErrPermanent), c.permanent)
				}
				var ra *RetryAfterError
				switch {
				case c.after < 0 && errors.As(err, &ra):
					t.Errorf("Notify = %v: a RetryAfterError", err)
				case c.after >= 0 && !errors.As(err, &ra):
					t.Errorf("Notify = %v: want a RetryAfterError", err)
				case c.after >= 0 && (ra.After < c.after-2*time.Second || ra.After > c.after):
					t.Errorf("Retry-After = %v, want %v", ra.After, c.after)
				}
				if strings.Contains(err.Error(), "secretpart") || strings.Contains(err.Error(), h.srv.URL) {
					t.Errorf("error shows the URL: %v", err)
				}
				// The retry goes through.
				if err := n.Notify(context.Background(), fixture()[:1]); err != nil || len(h.received()) != 1 {
					t.Errorf("retry: %v, %d received", err, len(h.received()))
				}
			})
		}
	}
	t.Run("network error", func(t *testing.T) {
		checkLeaks(t)
		srv := httptest.NewServer(http.NotFoundHandler())
		u := Secret(srv.URL + "/hooks/secretpart")
		srv.Close()
		n, err := NewSlack(u, testChatOptions())
		if err != nil {
			t.Fatal(err)
		}
		err = n.Notify(context.Background(), fixture()[:1])
		var ra *RetryAfterError
		if err == nil || errors.Is(err, ErrPermanent) || errors.As(err, &ra) || strings.Contains(err.Error(), "secretpart") {
			t.Errorf("Notify to a closed port = %v, want a plain retryable error without the URL", err)
		}
		n.Close()
	})
}

// TestChatPartialResend: when the second of three messages fails, a
// re-send posts only what was not delivered.
func TestChatPartialResend(t *testing.T) {
	n, h := newTestChat(t, 0, answer{}, answer{code: 500})
	defer n.Close()
	ins := fixture()[:3]
	if err := n.Notify(context.Background(), ins); err == nil {
		t.Fatal("no error from the failed message")
	}
	if got := len(h.received()); got != 1 {
		t.Fatalf("%d messages received before the failure, want 1", got)
	}
	if err := n.Notify(context.Background(), ins); err != nil {
		t.Fatal(err)
	}
	if got := len(h.received()); got != 3 {
		t.Errorf("%d messages received in all, want 3 (no duplicate)", got)
	}
}

// TestChatReliable: a chat notifier behind Reliable rides out a 429 and a
// 500 and delivers once.
func TestChatReliable(t *testing.T) {
	checkLeaks(t)
	h := newHook(t, validateDiscord,
		answer{code: 429, body: `{"retry_after":0.05,"global":false}`}, answer{code: 500})
	d, err := NewDiscord(h.url(), testChatOptions())
	if err != nil {
		t.Fatal(err)
	}
	r := NewReliable(Named{"discord", d}, ReliableOptions{Base: time.Millisecond, Max: time.Second, SpoolDir: t.TempDir()})
	if err := r.Notify(context.Background(), fixture()[:1]); err != nil {
		t.Fatal(err)
	}
	if s := r.Stats(); len(h.received()) != 1 || s.Delivered != 1 || s.Retried != 2 || s.Spooled != 0 {
		t.Errorf("received %d, Stats %+v; want 1 delivered after 2 retries", len(h.received()), s)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestLimiter: messages to one webhook are at least MinInterval apart.
func TestLimiter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newLimiter(time.Second)
		ctx := context.Background()
		start := time.Now()
		for range 5 {
			if err := l.wait(ctx); err != nil {
				t.Fatal(err)
			}
		}
		if d := time.Since(start); d != 4*time.Second {
			t.Errorf("5 messages took %v, want 4s", d)
		}
		time.Sleep(10 * time.Second) // idle: one token, not ten
		start = time.Now()
		l.wait(ctx)
		l.wait(ctx)
		if d := time.Since(start); d != time.Second {
			t.Errorf("after idling, 2 messages took %v, want 1s", d)
		}
		cctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
		defer cancel()
		if err := l.wait(cctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("wait past the deadline = %v", err)
		}
		start = time.Now()
		l.wait(ctx) // the cancelled wait gave its token back
		if d := time.Since(start); d != 900*time.Millisecond {
			t.Errorf("wait after a cancelled one took %v, want 900ms", d)
		}
	})
}

func TestSecret(t *testing.T) {
	s := Secret("https://hooks.slack.com/services/T0/B0/XXXX")
	v := struct {
		URL Secret
		N   int
	}{s, 1}
	for _, got := range []string{
		fmt.Sprint(s), fmt.Sprintf("%s %v %q %x %+v %#v %d", s, s, s, s, s, s, s), fmt.Sprintf("%+v %#v", v, v), s.String(),
	} {
		if strings.Contains(got, "hooks") || strings.Contains(got, "XXXX") {
			t.Errorf("printed the secret: %s", got)
		}
	}
	b, _ := json.Marshal(v)
	if strings.Contains(string(b), "XXXX") {
		t.Errorf("JSON holds the secret: %s", b)
	}
	if s.Reveal() != "https://hooks.slack.com/services/T0/B0/XXXX" {
		t.Error("Reveal")
	}
}

func TestParseChatURL(t *testing.T) {
	t.Setenv(EnvWebhookSecret, "k")
	for _, c := range []struct {
		spec     string
		ok       bool
		wantErr  string
		wantName string
	}{
		{"slack=https://hooks.slack.com/services/T0/B0/XXXX", true, "", "slack hooks.slack.com "},
		{"teams=https://prod-1.westeurope.logic.azure.com/workflows/abc/triggers/manual/paths/invoke?sig=XXXX", true, "", "teams prod-1.westeurope.logic.azure.com "},
		{"discord=https://discord.com/api/webhooks/1/XXXX", true, "", "discord discord.com "},
		{"webhook=https://example.com/hook", true, "", "webhook example.com "},
		{"webhook=http://127.0.0.1:8080/hook", true, "", "webhook 127.0.0.1 "},
		{"slack=http://hooks.slack.com/services/XXXX", true, "https", ""},
		{"slack=ftp://x/XXXX", true, "scheme", ""},
		{"discord=not a url XXXX", true, "absolute", ""},
		{"out/", false, "", ""},
		{"s3://bucket/prefix", false, "", ""},
		{"nats=nats://127.0.0.1", false, "", ""},
		{"-", false, "", ""},
	} {
		n, ok, err := ParseChatURL(c.spec)
		if ok != c.ok || (err == nil) != (c.wantErr == "") || (err != nil && !strings.Contains(err.Error(), c.wantErr)) {
			t.Errorf("ParseChatURL(%q) = ok %v, err %v; want ok %v, error containing %q", c.spec, ok, err, c.ok, c.wantErr)
			continue
		}
		if err != nil && strings.Contains(err.Error(), "XXXX") {
			t.Errorf("ParseChatURL(%q): error shows the URL: %v", c.spec, err)
		}
		if c.wantName != "" {
			if !strings.HasPrefix(n.Name, c.wantName) || strings.Contains(n.Name, "XXXX") || len(n.Name) != len(c.wantName)+8 {
				t.Errorf("ParseChatURL(%q).Name = %q, want %q + 8 hex", c.spec, n.Name, c.wantName)
			}
			n.Close()
		}
	}
	t.Setenv(EnvWebhookSecret, "")
	if _, ok, err := ParseChatURL("webhook=https://example.com/hook"); !ok || err == nil || !strings.Contains(err.Error(), EnvWebhookSecret) {
		t.Errorf("webhook without a key: ok %v, err %v; want an error naming %s", ok, err, EnvWebhookSecret)
	}
}

func TestDescribeNumbers(t *testing.T) {
	for _, c := range []struct {
		v    float64
		want string
	}{{0, "0"}, {0.0000982, "<0.001"}, {0.0123, "0.0123"}, {2.375, "2.38"}, {5, "5"}, {12345, "12300"}, {-3, "-3"}} {
		if got := num(c.v); got != c.want {
			t.Errorf("num(%v) = %q, want %q", c.v, got, c.want)
		}
	}
	for _, c := range []struct {
		o, e float64
		want string
	}{{5, 0.01, "×500"}, {0, 4, "none seen"}, {1, 4, "25% of expected"}, {3, 0, "none expected"}, {0, 0, "as expected"}} {
		if got := ratio(c.o, c.e); got != c.want {
			t.Errorf("ratio(%v, %v) = %q, want %q", c.o, c.e, got, c.want)
		}
	}
}

// chatUnder returns chat notifier k posting to a new hook and the hook's
// snapshot, for TestConformance.
func chatUnder(t *testing.T, k int) (Notifier, func() string) {
	n, h := newTestChat(t, k)
	return n, h.snapshot
}
