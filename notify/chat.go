package notify

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/trailsight/trailsight/detector"
)

// This file holds what the chat notifiers share: the Secret type, options,
// HTTP posting with status classification, the per-webhook rate limiter,
// the readable summary of an insight, and ParseChatURL. The payload of each
// service is in slack.go, teams.go, discord.go and webhook.go.

// Secret is a string that must not be printed, such as a webhook URL (the
// URL itself is the credential) or a signing key. It formats as REDACTED
// with every fmt verb that takes a string, and encodes as "REDACTED" in
// JSON and text.
type Secret string

func (Secret) String() string   { return "REDACTED" }
func (Secret) GoString() string { return "REDACTED" }

// Format writes REDACTED whatever the verb.
func (Secret) Format(f fmt.State, _ rune) { io.WriteString(f, "REDACTED") }

// MarshalText and MarshalJSON write REDACTED.
func (Secret) MarshalText() ([]byte, error) { return []byte("REDACTED"), nil }
func (Secret) MarshalJSON() ([]byte, error) { return []byte(`"REDACTED"`), nil }

// Reveal returns the secret itself, for the code that must use it.
func (s Secret) Reveal() string { return string(s) }

// hash8 is a short, non-secret name of s.
func (s Secret) hash8() string { h := sha256.Sum256([]byte(s)); return hex.EncodeToString(h[:4]) }

// ChatOptions configures the chat notifiers (Slack, Teams, Discord and the
// generic webhook). The zero value is ready to use.
type ChatOptions struct {
	// Client sends the requests. Default: a client with a 10 s timeout
	// that does not follow redirects (a redirected webhook is reported as a
	// permanent failure).
	Client *http.Client
	// MinInterval is the least time between two messages to the webhook
	// (a token bucket of one token). 0: the service's default, 1 s for
	// Slack, Teams and Discord, none for the generic webhook; negative: no
	// limit.
	MinInterval time.Duration
	// GroupAbove: a Notify call with more insights than this sends grouped
	// messages (a summary and one line per insight) instead of one message
	// per insight. Default 5. Not used by the generic webhook, which sends
	// one request per Notify call.
	GroupAbove int
	// Now gives the webhook's X-Trailsight-Timestamp. Default time.Now.
	Now func() time.Time
}

// Chat is a chat notifier: Slack, Microsoft Teams, Discord or the generic
// webhook, made by NewSlack, NewTeams, NewDiscord or NewWebhook.
//
// Each Notify call renders its insights into messages, one per insight, or
// grouped messages when there are more than GroupAbove of them, and posts
// them in order, waiting for the rate limiter before each. Every message
// carries its eventIDs. A message that was delivered is remembered (the
// last 4096), so that re-sending the same insights, e.g. a retry after a
// failure half-way, does not post it again: Notify is idempotent per
// eventID within a process. Across processes, receivers drop duplicates by
// the eventIDs in the message.
//
// Errors: a 429 or 503 answer is a *RetryAfterError carrying the wait the
// service asked for (Retry-After header in seconds or as an HTTP date, or
// retry_after in a JSON body, seconds); other 4xx (and 3xx) answers wrap
// ErrPermanent; 5xx answers and network errors are plain, retryable
// errors. Errors never contain the webhook URL. Wrap a Chat with
// NewReliable for retries and the spool.
//
// Notify may be called from one goroutine at a time; Close may be called
// concurrently with it.
type Chat struct {
	kind   string
	url    Secret
	key    Secret // webhook signing key
	opt    ChatOptions
	client *http.Client
	owned  bool // client made here: close its idle connections on Close
	lim    *limiter
	render func([]detector.Insight, ChatOptions) ([]chatMessage, error)

	mu     sync.Mutex
	closed bool
	sent   recent
}

// chatMessage is one request to send.
type chatMessage struct {
	body   []byte
	header http.Header // extra headers, or nil
}

// newChat checks rawURL and returns a Chat of kind.
func newChat(kind string, rawURL Secret, opt ChatOptions, defInterval time.Duration,
	render func([]detector.Insight, ChatOptions) ([]chatMessage, error)) (*Chat, error) {
	if _, err := checkWebhookURL(rawURL); err != nil {
		return nil, fmt.Errorf("notify: %s: %w", kind, err)
	}
	if opt.MinInterval == 0 {
		opt.MinInterval = defInterval
	}
	if opt.GroupAbove <= 0 {
		opt.GroupAbove = 5
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	c := &Chat{kind: kind, url: rawURL, opt: opt, client: opt.Client, render: render,
		lim: newLimiter(opt.MinInterval), sent: recent{max: 4096}}
	if c.client == nil {
		c.owned = true
		c.client = &http.Client{
			Timeout:       10 * time.Second,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	return c, nil
}

// checkWebhookURL accepts https URLs, and http URLs to a loopback host
// (tests, local relays). The error never contains the URL.
func checkWebhookURL(s Secret) (*url.URL, error) {
	u, err := url.Parse(string(s))
	if err != nil || u.Host == "" {
		return nil, errors.New("webhook URL: not an absolute URL")
	}
	switch u.Scheme {
	case "https":
	case "http":
		h := u.Hostname()
		if ip := net.ParseIP(h); h != "localhost" && (ip == nil || !ip.IsLoopback()) {
			return nil, fmt.Errorf("webhook URL: http is only allowed to a loopback host, not %s; use https", h)
		}
	default:
		return nil, fmt.Errorf("webhook URL: scheme %q: want https", u.Scheme)
	}
	return u, nil
}

// Notify posts ins as described on Chat.
func (c *Chat) Notify(ctx context.Context, ins []detector.Insight) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.mu.Lock()
	closed := c.closed
	c.mu.Unlock()
	if closed {
		return ErrClosed
	}
	if len(ins) == 0 {
		return nil
	}
	msgs, err := c.render(ins, c.opt)
	if err != nil {
		return Permanent(fmt.Errorf("notify: %s: %w", c.kind, err))
	}
	for _, m := range msgs {
		k := sha256.Sum256(m.body)
		c.mu.Lock()
		done := c.sent.has(k)
		c.mu.Unlock()
		if done {
			continue
		}
		if err := c.post(ctx, m); err != nil {
			return fmt.Errorf("notify: %s: %w", c.kind, err)
		}
		c.mu.Lock()
		c.sent.add(k)
		c.mu.Unlock()
	}
	return nil
}

// post sends one message and classifies the answer.
func (c *Chat) post(ctx context.Context, m chatMessage) error {
	if err := c.lim.wait(ctx); err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, string(c.url), bytes.NewReader(m.body))
	if err != nil { // err would hold the URL
		return Permanent(errors.New("cannot make a request for the webhook URL"))
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "trailsight")
	for k, v := range m.header {
		req.Header[k] = v
	}
	if c.key != "" {
		ts := strconv.FormatInt(c.opt.Now().Unix(), 10)
		req.Header.Set(HeaderTimestamp, ts)
		req.Header.Set(HeaderSignature, Sign([]byte(c.key), ts, m.body))
	}
	resp, err := c.client.Do(req)
	if err != nil {
		if ue := (*url.Error)(nil); errors.As(err, &ue) {
			err = ue.Err // url.Error's text holds the URL
		}
		return fmt.Errorf("post: %w", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	return classify(resp.StatusCode, resp.Header, body, time.Now())
}

// classify turns an HTTP answer into nil, a *RetryAfterError, an
// ErrPermanent or a retryable error.
func classify(code int, h http.Header, body []byte, now time.Time) error {
	if code >= 200 && code < 300 {
		return nil
	}
	snippet := strings.TrimSpace(string(body))
	if len(snippet) > 200 {
		snippet = clip(snippet, 200)
	}
	err := fmt.Errorf("HTTP %d %s", code, snippet)
	switch {
	case code == http.StatusTooManyRequests || code == http.StatusServiceUnavailable:
		return &RetryAfterError{After: retryAfter(h, body, now), Err: err}
	case code >= 500:
		return err
	default: // 1xx, 3xx, other 4xx: the same request will fail again
		return Permanent(err)
	}
}

// maxRetryAfter bounds what a server may ask for.
const maxRetryAfter = time.Hour

// retryAfter returns the longer of the Retry-After header (seconds or an
// HTTP date) and a retry_after number of seconds in a JSON body (Slack and
// Discord), at most maxRetryAfter; 0 when neither is there.
func retryAfter(h http.Header, body []byte, now time.Time) time.Duration {
	var d time.Duration
	if v := strings.TrimSpace(h.Get("Retry-After")); v != "" {
		if s, err := strconv.ParseFloat(v, 64); err == nil && s > 0 && !math.IsInf(s, 0) {
			d = time.Duration(s * float64(time.Second))
		} else if t, err := http.ParseTime(v); err == nil && t.After(now) {
			d = t.Sub(now)
		}
	}
	var b struct {
		RetryAfter *float64 `json:"retry_after"`
	}
	if json.Unmarshal(body, &b) == nil && b.RetryAfter != nil && *b.RetryAfter > 0 && *b.RetryAfter < maxRetryAfter.Seconds() {
		if bd := time.Duration(*b.RetryAfter * float64(time.Second)); bd > d {
			d = bd
		}
	}
	return min(d, maxRetryAfter)
}

// Close ends the Chat; a Notify in progress finishes. Nothing is buffered.
func (c *Chat) Close() error {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	if c.owned {
		c.client.CloseIdleConnections()
	}
	return nil
}

// recent is a bounded set of message hashes, forgetting the oldest.
type recent struct {
	max  int
	set  map[[32]byte]bool
	ring [][32]byte
}

func (r *recent) has(k [32]byte) bool { return r.set[k] }

func (r *recent) add(k [32]byte) {
	if r.set == nil {
		r.set = map[[32]byte]bool{}
	}
	if r.set[k] {
		return
	}
	if len(r.ring) >= r.max {
		delete(r.set, r.ring[0])
		r.ring = r.ring[1:]
	}
	r.set[k] = true
	r.ring = append(r.ring, k)
}

// limiter is a token bucket holding at most one token, refilled every
// `every`: messages are at least `every` apart. every ≤ 0: no limit.
type limiter struct {
	every time.Duration
	mu    sync.Mutex
	next  time.Time // when the next token is available
}

func newLimiter(every time.Duration) *limiter { return &limiter{every: every} }

// wait blocks until a token is available, or returns ctx.Err().
func (l *limiter) wait(ctx context.Context) error {
	if l.every <= 0 {
		return ctx.Err()
	}
	l.mu.Lock()
	now := time.Now()
	at := l.next
	if at.Before(now) {
		at = now
	}
	l.next = at.Add(l.every) // reserve the token
	l.mu.Unlock()
	d := at.Sub(now)
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		l.mu.Lock()
		if l.next.Equal(at.Add(l.every)) { // give the token back if no one came after
			l.next = at
		}
		l.mu.Unlock()
		return ctx.Err()
	}
}

// ---- the readable summary ----

// summary is what every chat message says about one insight.
type summary struct {
	start          bool
	kind           string // "burst", "gap", "error spike", "limit hit", "drop"
	title          string // "Burst: CompleteLifecycleAction (autoscaling) in 123456789012 us-east-1"
	api            string // "autoscaling.amazonaws.com CompleteLifecycleAction"
	source, name   string
	account        string
	region         string
	typ            string // "ApiErrorRateInsight (NoSuchEntityException)"
	kindLong       string // "burst, above normal"
	howFar         string // "5 calls in 1 min vs 0.01 expected (×500), score 9.5"
	since          string // "2024-07-10 01:42 UTC"
	duration       string // "ongoing" or "8 min"
	resolved       string // End only: "resolved after 8 min, mean 2.38/min (baseline <0.001/min)"
	who, agents    []string
	eventID        string
	sharedEventID  string
	time           time.Time
	severity       int // 0 resolved, 1 warning (gap, drop), 2 alert
	headline, line string
}

const timeLayout = "2006-01-02 15:04 UTC"

func describe(in detector.Insight) summary {
	s := summary{
		start: in.State == detector.Start, source: in.EventSource, name: in.EventName,
		api: in.EventSource + " " + in.EventName, account: in.Account, region: in.Region,
		eventID: in.EventID, sharedEventID: in.SharedEventID, time: in.Time.UTC(),
	}
	unit := "calls"
	typ := "ApiCallRateInsight"
	if in.Type == detector.ApiErrorRate {
		unit, typ = "errors", "ApiErrorRateInsight"
	}
	s.typ = typ
	if in.ErrorCode != "" {
		s.typ += " (" + in.ErrorCode + ")"
	}
	ex := in.Explanation
	switch {
	case ex != nil && ex.Kind == "gap":
		s.kind = "gap"
	case ex != nil && ex.Kind == "errorSpike":
		s.kind = "error spike"
	case ex != nil && ex.Kind == "limit":
		s.kind = "limit hit"
	case ex != nil && ex.Kind != "":
		s.kind = ex.Kind
	case in.Type == detector.ApiErrorRate:
		s.kind = "error spike"
	case in.Stats.InsightAverage < in.Stats.BaselineAverage:
		s.kind = "drop"
	default:
		s.kind = "burst"
	}
	s.kindLong = s.kind
	if ex != nil && ex.Direction != "" {
		s.kindLong += ", " + ex.Direction + " normal"
	}
	start := s.time
	if !s.start {
		start = s.time.Add(-time.Duration(in.Stats.InsightDuration) * time.Minute)
	}
	s.since = start.Format(timeLayout)
	what := in.EventName
	if in.ErrorCode != "" {
		what += " " + in.ErrorCode
	}
	where := in.Account + " " + in.Region
	switch {
	case s.start && (s.kind == "gap" || s.kind == "drop"):
		s.severity = 1
	case s.start:
		s.severity = 2
	}
	if ex != nil && ex.WindowMinutes > 0 {
		s.howFar = fmt.Sprintf("%s %s in %d min vs %s expected (%s)", num(ex.Observed), unit, ex.WindowMinutes, num(ex.Expected), ratio(ex.Observed, ex.Expected))
		if ex.Score > 0 {
			s.howFar += ", score " + num(ex.Score)
		}
		if ex.SilentMinutes > 0 {
			s.howFar += fmt.Sprintf("; silent for %d min", ex.SilentMinutes)
		}
		if ex.PeriodMinutes > 0 {
			s.howFar += fmt.Sprintf(", usually every %d min", ex.PeriodMinutes)
		}
	} else {
		s.howFar = fmt.Sprintf("%s %s/min vs %s/min baseline (%s)", num(in.Stats.InsightAverage), unit, num(in.Stats.BaselineAverage),
			ratio(in.Stats.InsightAverage, in.Stats.BaselineAverage))
	}
	if s.start {
		s.duration = "ongoing"
		s.title = fmt.Sprintf("%s: %s in %s", upperFirst(s.kind), what, where)
		s.headline = s.title + " — " + s.howFar
		s.line = fmt.Sprintf("%s %s (%s) in %s — %s, since %s", upperFirst(s.kind), what, shortSource(in.EventSource), where, s.howFar, start.Format("15:04 UTC"))
	} else {
		s.duration = fmt.Sprintf("%d min", in.Stats.InsightDuration)
		s.resolved = fmt.Sprintf("resolved after %d min, mean %s %s/min (baseline %s/min)", in.Stats.InsightDuration,
			num(in.Stats.InsightAverage), unit, num(in.Stats.BaselineAverage))
		s.title = fmt.Sprintf("Resolved: %s of %s in %s", s.kind, what, where)
		s.headline = fmt.Sprintf("%s (started %s) %s", s.title, s.since, s.resolved)
		s.line = fmt.Sprintf("Resolved %s %s (%s) in %s — %s", s.kind, what, shortSource(in.EventSource), where, s.resolved)
	}
	for _, a := range in.Attributions {
		var dst *[]string
		switch a.Attribute {
		case "userIdentityArn":
			dst = &s.who
		case "userAgent":
			dst = &s.agents
		default:
			continue
		}
		for _, v := range a.Insight {
			*dst = append(*dst, fmt.Sprintf("%s (%s/min)", v.Value, num(v.Average)))
		}
		if len(a.Insight) == 0 { // a gap: say who usually calls
			for _, v := range a.Baseline {
				*dst = append(*dst, fmt.Sprintf("usually %s (%s/min)", v.Value, num(v.Average)))
			}
		}
	}
	return s
}

// shortSource is "autoscaling" for "autoscaling.amazonaws.com".
func shortSource(src string) string { return strings.TrimSuffix(src, ".amazonaws.com") }

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// num formats a rate or count with about three significant digits.
func num(v float64) string {
	switch {
	case math.IsNaN(v) || math.IsInf(v, 0):
		return "?"
	case v == 0:
		return "0"
	case math.Abs(v) < 0.001:
		return "<0.001"
	}
	g, _ := strconv.ParseFloat(strconv.FormatFloat(v, 'g', 3, 64), 64)
	return strconv.FormatFloat(g, 'f', -1, 64)
}

// ratio says how far observed is from expected.
func ratio(observed, expected float64) string {
	switch {
	case expected <= 0 && observed <= 0:
		return "as expected"
	case expected <= 0:
		return "none expected"
	case observed <= 0:
		return "none seen"
	case observed >= expected:
		return "×" + num(observed/expected)
	}
	return num(100*observed/expected) + "% of expected"
}

// clip shortens s to at most n runes, ending with "…" when cut.
func clip(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

// batchKey identifies a set of insights: the eventID of a single one, or a
// SHA-256 of the sorted eventIDs.
func batchKey(ins []detector.Insight) string {
	if len(ins) == 1 {
		return ins[0].EventID
	}
	ids := make([]string, len(ins))
	for i, in := range ins {
		ids[i] = in.EventID
	}
	slices.Sort(ids)
	h := sha256.Sum256([]byte(strings.Join(ids, "\n")))
	return hex.EncodeToString(h[:])
}

// chunks splits ins into runs of at most n.
func chunks(ins []detector.Insight, n int) [][]detector.Insight {
	var out [][]detector.Insight
	for len(ins) > n {
		out = append(out, ins[:n])
		ins = ins[n:]
	}
	return append(out, ins)
}

// groupTitle is the summary header of a grouped message.
func groupTitle(all []detector.Insight, part, parts int) string {
	starts := 0
	for _, in := range all {
		if in.State == detector.Start {
			starts++
		}
	}
	t := fmt.Sprintf("%d CloudTrail insights: %d started, %d resolved", len(all), starts, len(all)-starts)
	if parts > 1 {
		t += fmt.Sprintf(" (%d/%d)", part+1, parts)
	}
	return t
}

// marshal encodes v without HTML escaping.
func marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// ---- --out values ----

// EnvWebhookSecret names the environment variable that holds the signing
// key of a `webhook=URL` output.
const EnvWebhookSecret = "TRAILSIGHT_WEBHOOK_SECRET"

// ParseChatURL parses a chat --out value:
//
//	slack=https://hooks.slack.com/services/…
//	teams=https://….logic.azure.com/workflows/…   (a Teams Workflows webhook)
//	discord=https://discord.com/api/webhooks/…
//	webhook=https://example.com/trailsight        (signed with $TRAILSIGHT_WEBHOOK_SECRET)
//
// The signing key of a generic webhook comes only from the environment
// variable TRAILSIGHT_WEBHOOK_SECRET, never from the command line, where
// other users of the machine could read it; it must be set. URLs must be
// https (http only to a loopback host). It returns ok=false and no error
// when spec is not a chat value (no such prefix), so that callers can try
// other parsers. The Named's name is the kind, the host and a short hash
// of the URL (e.g. "slack hooks.slack.com 1a2b3c4d"), never the URL, which
// is a credential. The notifiers use the default ChatOptions; wrap them
// with NewReliable.
func ParseChatURL(spec string) (Named, bool, error) {
	kind, raw, found := strings.Cut(spec, "=")
	if !found {
		return Named{}, false, nil
	}
	u := Secret(raw)
	var (
		c   *Chat
		err error
	)
	switch kind {
	case "slack":
		c, err = NewSlack(u, ChatOptions{})
	case "teams":
		c, err = NewTeams(u, ChatOptions{})
	case "discord":
		c, err = NewDiscord(u, ChatOptions{})
	case "webhook":
		key := os.Getenv(EnvWebhookSecret)
		if key == "" {
			return Named{}, true, fmt.Errorf("notify: --out webhook=…: set %s to the signing key", EnvWebhookSecret)
		}
		c, err = NewWebhook(u, Secret(key), ChatOptions{})
	default:
		return Named{}, false, nil
	}
	if err != nil {
		return Named{}, true, fmt.Errorf("--out %s=…: %w", kind, err)
	}
	pu, _ := url.Parse(raw) // checked by the constructor
	return Named{Name: kind + " " + pu.Hostname() + " " + u.hash8(), Notifier: c}, true, nil
}
