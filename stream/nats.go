package stream

// NATS JetStream as a source of CloudTrail records, and what a publisher
// needs to feed it: DecodeRaw (each record's original bytes beside its
// Event), EventSubject and the account/region headers.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
)

// ---- raw records ----

// rawSpan locates one kept record in the decoded document: data[start:end],
// or own when the record is not a slice of it (the CloudTrailEvent string
// of lookup-events output, unescaped).
type rawSpan struct {
	start, end int
	own        []byte
}

// DecodeRaw decodes data exactly as Decode does (same shapes, same Events,
// same DocStats and errors) and calls fn with each kept record's Event and
// its raw JSON, in document order: the record object itself for a
// {"Records":[…]} document, JSON lines or an array of records; the whole
// envelope for an EventBridge envelope (its account and region may be what
// the record lacks); the unescaped CloudTrailEvent string for
// `aws cloudtrail lookup-events` output. Decoding raw alone with Decode
// gives back ev. raw is the original bytes, whitespace included (a
// pretty-printed document gives indented records): it is not re-encoded.
//
// raw aliases data (or the Decoder's gunzip buffer) and is valid only
// during fn; ev is a value. Records are handed to fn one top-level value
// (line, document) at a time, after the value has been scanned whole: on a
// syntax error, the records of the value holding it are not handed over,
// as Decode drops them. An error from fn stops DecodeRaw, which returns it
// with the stats so far. fn must not use d.
//
// DecodeRaw is slower than Decode (a bare record or envelope is scanned
// twice); use it only where the original bytes are needed.
func (d *Decoder) DecodeRaw(data []byte, fn func(ev Event, raw []byte) error) (st DocStats, err error) {
	if len(data) >= 2 && data[0] == 0x1f && data[1] == 0x8b {
		data, err = d.gunzip(data)
		if err != nil {
			return DocStats{}, err
		}
		defer d.dropBigBuffer()
	}
	d.data, d.pos, d.out = data, 0, nil
	d.stats = DocStats{Bytes: int64(len(data))}
	markStats := d.stats
	values, nonCT, sawCT := 0, 0, false
	defer func() {
		if r := recover(); r != nil {
			sp, ok := r.(syntaxPanic)
			if !ok {
				panic(r)
			}
			st, err = markStats, sp.err
		}
		d.data, d.out = nil, nil
	}()
	if bytes.HasPrefix(data, []byte("\xef\xbb\xbf")) {
		d.pos = 3
	}
	var spans []rawSpan
	for {
		d.pos = d.ws(d.pos)
		if d.pos >= len(d.data) {
			break
		}
		values++
		d.out, spans = d.out[:0], spans[:0]
		switch d.data[d.pos] {
		case '{':
			if d.rawObject(&spans) {
				sawCT = true
			} else {
				nonCT++
			}
		case '[':
			ct, non := d.rawArray(&spans)
			sawCT = sawCT || ct
			nonCT += non
		default:
			d.skip()
			nonCT++
		}
		markStats = d.stats
		if len(spans) != len(d.out) {
			panic("stream: DecodeRaw: records and events out of step")
		}
		for i, ev := range d.out {
			raw := spans[i].own
			if raw == nil {
				raw = data[spans[i].start:spans[i].end:spans[i].end]
			}
			if err := fn(ev, raw); err != nil {
				return d.stats, err
			}
		}
	}
	if !sawCT {
		if values == 0 {
			return DocStats{Bytes: d.stats.Bytes}, fmt.Errorf("stream: empty document: %w", ErrNotCloudTrail)
		}
		return DocStats{Bytes: d.stats.Bytes}, fmt.Errorf("stream: %d JSON value(s) without CloudTrail records: %w", values, ErrNotCloudTrail)
	}
	for range nonCT {
		d.stats.Records++
		d.bad("not a CloudTrail record")
	}
	return d.stats, nil
}

// rawObject is topObject with the span of each kept record. A container's
// records are decoded in one pass; anything else (an envelope, a bare
// record) is found not to be a container and then decoded by topObject.
func (d *Decoder) rawObject(spans *[]rawSpan) bool {
	start := d.pos
	d.scratch = d.scratch[:0]
	container := false
	if !d.enter() {
		return false
	}
	for more := true; more; more = d.next() {
		switch string(d.member()) {
		case "Records", "Events":
			switch d.at(d.pos) {
			case '[':
				container = true
				d.rawRecords(spans)
			case 'n':
				container = true
				d.skip()
			default:
				d.skip()
			}
		default:
			d.skip()
		}
	}
	if container {
		return true
	}
	d.pos = start
	n := len(d.out)
	ct := d.topObject()
	if len(d.out) > n {
		*spans = append(*spans, rawSpan{start: start, end: d.pos})
	}
	return ct
}

// rawRecords is records with the span of each kept record.
func (d *Decoder) rawRecords(spans *[]rawSpan) {
	r := &d.det
	d.each(func() {
		d.stats.Records++
		start := d.pos
		if d.at(start) != '{' {
			d.skip()
			d.bad("record is not an object")
			return
		}
		d.scratch = d.scratch[:0]
		d.sub = d.sub[:0]
		r.reset()
		d.record(r, true)
		n := len(d.out)
		d.emit(r)
		if len(d.out) > n {
			sp := rawSpan{start: start, end: d.pos}
			if inner := bytes.TrimSpace(d.sub); len(inner) > 0 && inner[0] == '{' {
				sp.own = bytes.Clone(inner) // the record is the CloudTrailEvent string
			}
			*spans = append(*spans, sp)
		}
	})
}

// rawArray is topArray with the span of each kept record.
func (d *Decoder) rawArray(spans *[]rawSpan) (ct bool, nonCT int) {
	return d.array(func() bool { return d.rawObject(spans) })
}

// ---- subjects and headers ----

// Headers a publisher sets on a record message when the record itself
// lacks its account or region and the log file's name gave them (as
// DecodeFiles fills them in); NATSSource fills empty Account and Region
// from them.
const (
	HeaderAccount = "Trailsight-Account"
	HeaderRegion  = "Trailsight-Region"
)

// DefaultEventsPrefix is the default subject prefix of record messages.
const DefaultEventsPrefix = "trailsight.events"

// EventSubject returns the subject of a record message,
// <prefix>.<account>.<region>, each a SubjectToken.
func EventSubject(prefix string, ev *Event) string {
	return prefix + "." + SubjectToken(ev.Account) + "." + SubjectToken(ev.Region)
}

// SubjectToken makes s one NATS subject token: '.', '*', '>', spaces and
// control characters become '_'; an empty s becomes "_".
func SubjectToken(s string) string {
	if s == "" {
		return "_"
	}
	return strings.Map(func(r rune) rune {
		if r == '.' || r == '*' || r == '>' || badSubjectRune(r) {
			return '_'
		}
		return r
	}, s)
}

func badSubjectRune(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }

// ValidSubjectPrefix reports why p cannot prefix subjects: an empty token,
// or one holding '*', '>' or spaces.
func ValidSubjectPrefix(p string) error {
	for _, tok := range strings.Split(p, ".") {
		if tok == "" {
			return fmt.Errorf("%q has an empty token", p)
		}
		if strings.ContainsAny(tok, "*>") || strings.IndexFunc(tok, badSubjectRune) >= 0 {
			return fmt.Errorf("%q: tokens cannot hold '*', '>' or spaces", p)
		}
	}
	return nil
}

// ValidStreamName reports whether s can name a JetStream stream or consumer
// as trailsight writes them: letters, digits, '-' and '_'.
func ValidStreamName(s string) bool {
	for _, r := range s {
		if !(r == '-' || r == '_' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			return false
		}
	}
	return s != "" && len(s) <= 255
}

// ---- connection ----

// Defaults of NATSSourceOptions.
const (
	DefaultNATSDurable   = "trailsight"
	DefaultNATSBatch     = 256
	DefaultNATSAckWait   = time.Minute
	DefaultNATSFetchWait = time.Second
	DefaultNATSTimeout   = 5 * time.Second
)

// NATSSourceOptions configures a NATSSource. URL and Stream are required.
// Print it freely: String redacts the secrets.
type NATSSourceOptions struct {
	// URL of one server, nats://host:port (or tls://), without credentials.
	URL string
	// Stream is the JetStream stream to read.
	Stream string
	// Durable is the consumer's name; default DefaultNATSDurable. It
	// keeps its place in the stream across restarts.
	Durable string
	// FilterSubject restricts the consumer to matching subjects, e.g.
	// trailsight.events.123456789012.>; empty: the whole stream.
	FilterSubject string
	// Credentials: User and Password, or Token, or CredsFile (a .creds
	// file with a user JWT and NKey seed). At most one kind.
	User, Password, Token string
	CredsFile             string
	// SkipThrough: messages whose stream sequence is at most this are
	// acknowledged without being returned — the caller resumes from a state
	// that already counts them (see Delivered).
	SkipThrough uint64
	// InOrder: when the consumer has messages handed out and never acked
	// (an earlier process died), restart it at its ack floor so they come
	// back first and in stream order, not after AckWait behind newer ones.
	// For a single consumer whose acks follow stream order (trailsight run).
	InOrder bool
	// Batch is the most messages Next returns at once; default
	// DefaultNATSBatch.
	Batch int
	// MaxAckPending bounds the messages handed out and not yet acked;
	// default 8×Batch. When reached, the server sends no more.
	MaxAckPending int
	// AckWait is how long the server waits for an ack before it redelivers
	// a message; default DefaultNATSAckWait.
	AckWait time.Duration
	// FetchWait is the longest one pull request waits for a first message;
	// default DefaultNATSFetchWait. Next keeps pulling until ctx is done.
	FetchWait time.Duration
	// Timeout bounds connecting and each JetStream request; default
	// DefaultNATSTimeout.
	Timeout time.Duration
	// Logger receives connection events and bad messages. The zero value
	// logs nothing.
	Logger zerolog.Logger
}

// String describes o with its secrets redacted.
func (o NATSSourceOptions) String() string {
	return fmt.Sprintf("{URL:%s Stream:%s Durable:%s FilterSubject:%s User:%s Password:%s Token:%s CredsFile:%s "+
		"Batch:%d MaxAckPending:%d AckWait:%v FetchWait:%v Timeout:%v}",
		RedactURL(o.URL), o.Stream, o.Durable, o.FilterSubject, o.User, redact(o.Password), redact(o.Token), o.CredsFile,
		o.Batch, o.MaxAckPending, o.AckWait, o.FetchWait, o.Timeout)
}

// GoString is String, for %#v.
func (o NATSSourceOptions) GoString() string { return o.String() }

func redact(s string) string {
	if s == "" {
		return ""
	}
	return "REDACTED"
}

// RedactURL returns u with any user information replaced by REDACTED.
func RedactURL(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return "nats-url-unparsable"
	}
	if p.User != nil {
		p.User = url.User("REDACTED")
	}
	return p.String()
}

func (o NATSSourceOptions) withDefaults() (NATSSourceOptions, error) {
	o.Durable = cmpOr(o.Durable, DefaultNATSDurable)
	if o.Batch <= 0 {
		o.Batch = DefaultNATSBatch
	}
	if o.MaxAckPending <= 0 {
		o.MaxAckPending = 8 * o.Batch
	}
	if o.AckWait <= 0 {
		o.AckWait = DefaultNATSAckWait
	}
	if o.FetchWait <= 0 {
		o.FetchWait = DefaultNATSFetchWait
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultNATSTimeout
	}
	var errs []error
	if o.URL == "" {
		errs = append(errs, errors.New("url: empty"))
	}
	if !ValidStreamName(o.Stream) {
		errs = append(errs, fmt.Errorf("stream %q: must be letters, digits, '-' or '_'", o.Stream))
	}
	if !ValidStreamName(o.Durable) {
		errs = append(errs, fmt.Errorf("durable %q: must be letters, digits, '-' or '_'", o.Durable))
	}
	if o.FilterSubject != "" && strings.IndexFunc(o.FilterSubject, badSubjectRune) >= 0 {
		errs = append(errs, fmt.Errorf("filter subject %q: no spaces", o.FilterSubject))
	}
	if o.MaxAckPending < o.Batch {
		errs = append(errs, fmt.Errorf("max ack pending %d: less than the batch %d", o.MaxAckPending, o.Batch))
	}
	if err := checkCredentials(o.User, o.Password, o.Token, o.CredsFile); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return o, fmt.Errorf("stream: nats options: %w", err)
	}
	return o, nil
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func checkCredentials(user, password, token, creds string) error {
	kinds := 0
	if user != "" || password != "" {
		kinds++
	}
	if token != "" {
		kinds++
	}
	if creds != "" {
		kinds++
	}
	if kinds > 1 {
		return errors.New("credentials: give user/password, token or creds file, not several")
	}
	return nil
}

// DialNATS connects to one NATS server with at most one kind of
// credentials (user and password, token, or a .creds file), reconnecting
// for ever in the background and logging disconnections to log. Connecting
// is bounded by timeout. The URL may not carry credentials: pass them.
func DialNATS(rawURL, user, password, token, credsFile string, timeout time.Duration, log zerolog.Logger) (*nats.Conn, error) {
	if err := checkCredentials(user, password, token, credsFile); err != nil {
		return nil, fmt.Errorf("stream: nats: %w", err)
	}
	if timeout <= 0 {
		timeout = DefaultNATSTimeout
	}
	where := RedactURL(rawURL)
	opts := []nats.Option{
		nats.Name("trailsight"),
		nats.Timeout(timeout),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(500 * time.Millisecond),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				log.Warn().Str("url", where).AnErr("error", err).Msg("nats disconnected")
			}
		}),
		nats.ReconnectHandler(func(*nats.Conn) {
			log.Info().Str("url", where).Msg("nats reconnected")
		}),
	}
	switch {
	case user != "" || password != "":
		opts = append(opts, nats.UserInfo(user, password))
	case token != "":
		opts = append(opts, nats.Token(token))
	case credsFile != "":
		opts = append(opts, nats.UserCredentials(credsFile))
	}
	nc, err := nats.Connect(rawURL, opts...)
	if err != nil {
		return nil, fmt.Errorf("stream: nats: connect %s: %w", where, err)
	}
	return nc, nil
}

// NATSURL is the part every NATS URL trailsight takes has in common:
// nats://[USER:PASSWORD@|TOKEN@]HOST:PORT[/STREAM][?QUERY] (or tls://).
type NATSURL struct {
	Server                string // scheme and host only: no credentials, no path
	User, Password, Token string
	Stream                string // the path, "" when absent
	Query                 url.Values
	Errs                  []error // every problem found, each naming its part
}

// SplitNATSURL parses s into its common parts, collecting problems with the
// host, port, stream name, fragment and query in Errs; the caller checks
// its own query keys and adds to them. It returns an error only when s
// cannot be a NATS URL at all (syntax, scheme); errors never show
// credentials.
func SplitNATSURL(s string) (NATSURL, error) {
	var nu NATSURL
	u, err := url.Parse(s)
	if err != nil {
		return nu, fmt.Errorf("nats url: %w", errors.Unwrap(err))
	}
	if u.Scheme != "nats" && u.Scheme != "tls" {
		return nu, fmt.Errorf("nats url %s: scheme %q, want nats or tls", RedactURL(s), u.Scheme)
	}
	if u.Hostname() == "" {
		nu.Errs = append(nu.Errs, errors.New("host: empty"))
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			nu.Errs = append(nu.Errs, fmt.Errorf("port %q: not a port number", p))
		}
	}
	nu.Server = (&url.URL{Scheme: u.Scheme, Host: u.Host}).String()
	if u.User != nil {
		if pw, ok := u.User.Password(); ok {
			nu.User, nu.Password = u.User.Username(), pw
		} else {
			nu.Token = u.User.Username()
		}
	}
	if nu.Stream = strings.Trim(u.Path, "/"); nu.Stream != "" && !ValidStreamName(nu.Stream) {
		nu.Errs = append(nu.Errs, fmt.Errorf("stream %q: must be one path segment of letters, digits, '-' or '_'", nu.Stream))
	}
	if u.Fragment != "" {
		nu.Errs = append(nu.Errs, fmt.Errorf("fragment #%s: not allowed", u.Fragment))
	}
	if nu.Query, err = url.ParseQuery(u.RawQuery); err != nil {
		nu.Errs = append(nu.Errs, fmt.Errorf("query: %w", err))
	}
	return nu, nil
}

// ParseNATSURL parses the value of `--in nats://…` (and of the publish
// command's destination):
//
//	nats://[USER:PASSWORD@|TOKEN@]HOST:PORT/STREAM[?KEY=VALUE&…]
//
// STREAM, the path, is required. tls:// is accepted for TLS. Keys:
//
//	durable=NAME    consumer name (default trailsight)
//	filter=SUBJECT  only these subjects (default the whole stream)
//	batch=N         most messages per Next (default 256)
//	ackwait=1m      redelivery delay of unacked messages
//	timeout=5s      connect and request timeout
//	creds=FILE      NATS credentials file
//
// Credentials in the URL move to User/Password or Token; the URL kept
// holds none. Every problem is reported, each naming its key.
func ParseNATSURL(s string) (NATSSourceOptions, error) {
	var o NATSSourceOptions
	nu, err := SplitNATSURL(s)
	if err != nil {
		return o, fmt.Errorf("stream: %w", err)
	}
	o.URL, o.User, o.Password, o.Token, o.Stream = nu.Server, nu.User, nu.Password, nu.Token, nu.Stream
	errs, q := nu.Errs, nu.Query
	if o.Stream == "" {
		errs = append(errs, errors.New("stream: missing (nats://HOST:PORT/STREAM)"))
	}
	duration := func(key string, dst *time.Duration) {
		d, err := time.ParseDuration(q.Get(key))
		if err != nil || d <= 0 {
			errs = append(errs, fmt.Errorf("%s=%q: not a positive duration", key, q.Get(key)))
		}
		*dst = d
	}
	for key, vs := range q {
		if len(vs) > 1 {
			errs = append(errs, fmt.Errorf("%s: given %d times", key, len(vs)))
		}
		v := q.Get(key)
		switch key {
		case "durable":
			o.Durable = v
			if !ValidStreamName(v) {
				errs = append(errs, fmt.Errorf("durable=%q: must be letters, digits, '-' or '_'", v))
			}
		case "filter":
			o.FilterSubject = v
			if v == "" || strings.IndexFunc(v, badSubjectRune) >= 0 {
				errs = append(errs, fmt.Errorf("filter=%q: not a subject", v))
			}
		case "batch":
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 {
				errs = append(errs, fmt.Errorf("batch=%q: not a positive number", v))
			}
			o.Batch = n
		case "ackwait":
			duration(key, &o.AckWait)
		case "timeout":
			duration(key, &o.Timeout)
		case "creds":
			o.CredsFile = v
			if v == "" {
				errs = append(errs, errors.New("creds: empty"))
			}
		default:
			errs = append(errs, fmt.Errorf("%s: unknown key", key))
		}
	}
	if err := checkCredentials(o.User, o.Password, o.Token, o.CredsFile); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		slices.SortFunc(errs, func(a, b error) int { return strings.Compare(a.Error(), b.Error()) })
		return NATSSourceOptions{}, fmt.Errorf("stream: nats url %s: %w", RedactURL(s), errors.Join(errs...))
	}
	return o, nil
}

// ---- source ----

// ErrSourceClosed is returned by Next after Close.
var ErrSourceClosed = errors.New("stream: source closed")

// NATSStats counts what a NATSSource did.
type NATSStats struct {
	Messages    int64 // messages received, redeliveries included
	Redelivered int64 // of which delivered before
	Events      int64 // events returned by Next
	BadMessages int64 // messages that were not CloudTrail JSON: logged and terminated
	BadRecords  int64 // records not kept inside good messages
	Acked       int64 // messages acked by ack(nil)
	Naked       int64 // messages handed back by ack(err) or Close, for redelivery
	AckErrors   int64 // acks the server did not confirm (the messages come back after AckWait)
	Skipped     int64 // messages at or before SkipThrough, acked without being decoded
}

// NATSSource reads CloudTrail records from a JetStream stream through a
// durable pull consumer (explicit acks, AckWait, MaxAckPending bounded),
// in the benthos style: Next returns a batch of Events and an ack func;
// the messages are acked when the caller has counted the events, and
// redelivered if it asks so or never answers.
//
// A message is a record, an EventBridge envelope or a {"Records":[…]}
// document, gzip'd or not: anything Decoder.Decode reads. A message that
// cannot be decoded is counted, logged and terminated (never redelivered);
// it never blocks the stream. Empty Account and Region are filled from the
// HeaderAccount and HeaderRegion headers.
//
// Next must be called from one goroutine at a time. Ack funcs, Stats,
// Position and Close may be called from any goroutine.
type NATSSource struct {
	opt  NATSSourceOptions
	log  zerolog.Logger
	nc   *nats.Conn
	cons jetstream.Consumer
	dec  *Decoder // used by Next only

	mu        sync.Mutex
	closed    bool
	pending   map[uint64][]string // ack subjects of the batches handed out, not yet acked, by id
	nextID    uint64
	position  uint64
	delivered uint64 // stream sequence of the last message Next handed out
	stats     NATSStats
}

// NewNATSSource connects, and creates the durable consumer on the stream
// or updates its configuration. It fails when the server cannot be reached
// within Timeout or the stream does not exist. ctx bounds the JetStream
// requests after connecting.
func NewNATSSource(ctx context.Context, opt NATSSourceOptions) (*NATSSource, error) {
	opt, err := opt.withDefaults()
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	nc, err := DialNATS(opt.URL, opt.User, opt.Password, opt.Token, opt.CredsFile, opt.Timeout, opt.Logger)
	if err != nil {
		return nil, err
	}
	fail := func(err error) (*NATSSource, error) {
		nc.Close()
		return nil, fmt.Errorf("stream: nats %s stream %s: %w", RedactURL(opt.URL), opt.Stream, err)
	}
	js, err := jetstream.New(nc, jetstream.WithDefaultTimeout(opt.Timeout))
	if err != nil {
		return fail(err)
	}
	rctx, cancel := context.WithTimeout(ctx, opt.Timeout)
	defer cancel()
	ccfg := jetstream.ConsumerConfig{
		Durable:       opt.Durable,
		Description:   "trailsight CloudTrail events",
		DeliverPolicy: jetstream.DeliverAllPolicy,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       opt.AckWait,
		MaxAckPending: opt.MaxAckPending,
		FilterSubject: opt.FilterSubject,
	}
	if c, err := js.Consumer(rctx, opt.Stream, opt.Durable); err == nil {
		if info, err := c.Info(rctx); err == nil {
			switch {
			case opt.InOrder && info.NumAckPending > 0:
				// Messages handed out and never acked (the process died)
				// would come back after AckWait, behind newer ones. Start
				// the consumer again at its ack floor instead, so that they
				// come first, in stream order.
				if err := js.DeleteConsumer(rctx, opt.Stream, opt.Durable); err != nil {
					return fail(fmt.Errorf("consumer %s: restart at the ack floor: %w", opt.Durable, err))
				}
				ccfg.DeliverPolicy = jetstream.DeliverByStartSequencePolicy
				ccfg.OptStartSeq = info.AckFloor.Stream + 1
				opt.Logger.Info().Uint64("from_seq", ccfg.OptStartSeq).Int("unacked", info.NumAckPending).Msg("consumer restarted at its ack floor")
			default:
				// Where a durable consumer started cannot be updated, and
				// no longer matters: it goes on from its ack floor. One
				// restarted at its ack floor keeps that start.
				ccfg.DeliverPolicy, ccfg.OptStartSeq, ccfg.OptStartTime = info.Config.DeliverPolicy, info.Config.OptStartSeq, info.Config.OptStartTime
			}
		}
	}
	cons, err := js.CreateOrUpdateConsumer(rctx, opt.Stream, ccfg)
	if err != nil {
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			err = fmt.Errorf("%w (publish to it first, e.g. trailsight publish --create)", err)
		}
		return fail(fmt.Errorf("consumer %s: %w", opt.Durable, err))
	}
	s := &NATSSource{opt: opt, log: opt.Logger, nc: nc, cons: cons, dec: NewDecoder(), pending: map[uint64][]string{}}
	if info := cons.CachedInfo(); info != nil {
		s.position = info.AckFloor.Stream
	}
	return s, nil
}

// Next blocks until events are ready or ctx is done, and returns up to
// Batch messages' events (in stream order) with the func that settles
// them: ack(nil) acks every message of the batch, once the caller has
// counted the events (it waits for the server to confirm the last ack, up
// to Timeout); ack(err) hands them back for redelivery at once. Calling ack
// again does nothing. Unacked messages are redelivered after AckWait, or at
// once after Close. The events are the caller's.
//
// Next returns ctx.Err() when ctx is done, ErrSourceClosed after Close,
// and an error when the consumer is gone or the connection closed. While
// the server is unreachable it keeps trying (the connection reconnects by
// itself). A NATS stream never ends: Next never returns io.EOF.
func (s *NATSSource) Next(ctx context.Context) (events []Event, ack func(error), err error) {
	for {
		if err := ctx.Err(); err != nil {
			return nil, nil, err
		}
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < 50*time.Millisecond {
			// Too little time left for a pull request: the client refuses it.
			return nil, nil, context.DeadlineExceeded
		}
		if s.isClosed() {
			return nil, nil, ErrSourceClosed
		}
		msgs, err := s.fetch(ctx)
		if err != nil {
			if s.isClosed() {
				return nil, nil, ErrSourceClosed
			}
			if ctx.Err() != nil {
				return nil, nil, ctx.Err()
			}
			if errors.Is(err, jetstream.ErrConsumerDeleted) || errors.Is(err, jetstream.ErrConsumerNotFound) ||
				errors.Is(err, nats.ErrConnectionClosed) || errors.Is(err, jetstream.ErrConnectionClosed) {
				return nil, nil, fmt.Errorf("stream: nats consumer %s: %w", s.opt.Durable, err)
			}
			s.log.Warn().Str("stream", s.opt.Stream).Str("durable", s.opt.Durable).Err(err).Msg("nats fetch failed")
			if err := sleepCtx(ctx, s.opt.FetchWait); err != nil {
				return nil, nil, err
			}
			continue
		}
		if len(msgs) == 0 {
			continue
		}
		events, keep, last := s.decode(msgs)
		if last > 0 {
			s.mu.Lock()
			s.delivered = max(s.delivered, last)
			s.mu.Unlock()
		}
		if len(events) == 0 {
			// Nothing to count: settle the good messages now.
			if !s.noPending() {
				last = 0 // earlier batches are not settled yet
			}
			s.settle(replies(keep), nil, last)
			continue
		}
		return events, s.ackFunc(keep, last), nil
	}
}

// fetch waits up to FetchWait for a first message and takes the ones
// already available after it, up to Batch.
func (s *NATSSource) fetch(ctx context.Context) ([]jetstream.Msg, error) {
	msgs, err := s.collect(ctx, func() (jetstream.MessageBatch, error) { return s.cons.FetchNoWait(s.opt.Batch) })
	if err != nil || len(msgs) > 0 {
		return msgs, err
	}
	fctx, cancel := context.WithTimeout(ctx, s.opt.FetchWait)
	defer cancel()
	msgs, err = s.collect(ctx, func() (jetstream.MessageBatch, error) {
		return s.cons.Fetch(1, jetstream.FetchContext(fctx))
	})
	if err != nil || len(msgs) == 0 || s.opt.Batch == 1 {
		return msgs, err
	}
	more, err := s.collect(ctx, func() (jetstream.MessageBatch, error) { return s.cons.FetchNoWait(s.opt.Batch - 1) })
	return append(msgs, more...), err
}

// collect runs one pull request and gathers its messages. When ctx is done
// meanwhile, what arrived is handed back (Nak) and ctx.Err() returned.
func (s *NATSSource) collect(ctx context.Context, pull func() (jetstream.MessageBatch, error)) ([]jetstream.Msg, error) {
	b, err := pull()
	if err != nil {
		return nil, err
	}
	var msgs []jetstream.Msg
	for m := range b.Messages() {
		msgs = append(msgs, m)
	}
	if ctx.Err() != nil {
		for _, m := range msgs {
			_ = m.Nak()
		}
		s.count(func(st *NATSStats) { st.Naked += int64(len(msgs)) })
		return nil, ctx.Err()
	}
	if err := b.Error(); err != nil && !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, nats.ErrTimeout) {
		return msgs, err
	}
	return msgs, nil
}

// decode decodes msgs; it terminates the bad ones and returns the events,
// the messages to ack and the last stream sequence of msgs.
func (s *NATSSource) decode(msgs []jetstream.Msg) (events []Event, keep []jetstream.Msg, last uint64) {
	var st NATSStats
	for _, m := range msgs {
		st.Messages++
		md, _ := m.Metadata()
		var seq uint64
		if md != nil {
			seq = md.Sequence.Stream
			last = max(last, seq)
			if md.NumDelivered > 1 {
				st.Redelivered++
			}
		}
		if seq != 0 && seq <= s.opt.SkipThrough {
			// Already counted in the state the caller resumed from:
			// settle it with the batch, but do not count it again.
			st.Skipped++
			keep = append(keep, m)
			continue
		}
		n := len(events)
		var ds DocStats
		var err error
		events, ds, err = s.dec.Decode(m.Data(), events)
		if err != nil {
			events = events[:n]
			st.BadMessages++
			s.log.Warn().Str("stream", s.opt.Stream).Uint64("stream_seq", seq).Str("subject", m.Subject()).
				Int("bytes", len(m.Data())).Err(err).Msg("bad message skipped")
			if terr := m.Term(); terr != nil {
				s.log.Warn().Uint64("stream_seq", seq).Err(terr).Msg("nats term failed")
			}
			continue
		}
		if ds.BadRecords > 0 {
			st.BadRecords += int64(ds.BadRecords)
			s.log.Warn().Str("stream", s.opt.Stream).Uint64("stream_seq", seq).Int("bad_records", ds.BadRecords).
				Str("reason", ds.BadReason).Msg("bad records skipped")
		}
		if h := m.Headers(); len(h) > 0 {
			acct, region := h.Get(HeaderAccount), h.Get(HeaderRegion)
			for i := n; i < len(events); i++ {
				if e := &events[i]; e.Account == "" {
					e.Account = acct
				}
				if e := &events[i]; e.Region == "" {
					e.Region = region
				}
			}
		}
		keep = append(keep, m)
	}
	st.Events = int64(len(events))
	s.count(func(c *NATSStats) {
		c.Messages += st.Messages
		c.Redelivered += st.Redelivered
		c.Events += st.Events
		c.BadMessages += st.BadMessages
		c.BadRecords += st.BadRecords
		c.Skipped += st.Skipped
	})
	return events, keep, last
}

// replies returns the ack subjects of msgs: all a later ack needs. Holding
// them instead of the messages lets the payloads go as soon as they are
// decoded (a checkpoint may hold hundreds of thousands of messages).
func replies(msgs []jetstream.Msg) []string {
	out := make([]string, len(msgs))
	for i, m := range msgs {
		out[i] = m.Reply()
	}
	return out
}

// The JetStream acknowledgement bodies (the protocol's, as jetstream.Msg
// sends them).
var (
	ackBody = []byte("+ACK")
	nakBody = []byte("-NAK")
)

func (s *NATSSource) ackFunc(keep []jetstream.Msg, last uint64) func(error) {
	msgs := replies(keep)
	s.mu.Lock()
	s.nextID++
	id := s.nextID
	s.pending[id] = msgs
	s.mu.Unlock()
	var once sync.Once
	return func(err error) {
		once.Do(func() {
			s.mu.Lock()
			_, ok := s.pending[id]
			delete(s.pending, id)
			s.mu.Unlock()
			if ok { // not settled by Close
				s.settle(msgs, err, last)
			}
		})
	}
}

// settle acks the messages whose ack subjects are msgs (err nil) and moves
// the position to last, or hands them back.
func (s *NATSSource) settle(msgs []string, err error, last uint64) {
	if err != nil {
		for _, m := range msgs {
			_ = s.nc.Publish(m, nakBody)
		}
		s.count(func(st *NATSStats) { st.Naked += int64(len(msgs)) })
		return
	}
	var failed int64
	if len(msgs) > 0 {
		for _, m := range msgs[:len(msgs)-1] {
			if s.nc.Publish(m, ackBody) != nil {
				failed++
			}
		}
		// The server handles a connection's acks in order: once the last
		// is confirmed, all are.
		ctx, cancel := context.WithTimeout(context.Background(), s.opt.Timeout)
		defer cancel()
		if _, err := s.nc.RequestWithContext(ctx, msgs[len(msgs)-1], ackBody); err != nil {
			failed++
			s.log.Warn().Str("stream", s.opt.Stream).Str("durable", s.opt.Durable).Err(err).Msg("nats ack not confirmed")
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stats.Acked += int64(len(msgs)) - failed
	s.stats.AckErrors += failed
	if failed == 0 && last > s.position {
		s.position = last
	}
}

// noPending reports whether no batch handed out awaits its ack.
func (s *NATSSource) noPending() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.pending) == 0
}

func (s *NATSSource) count(f func(*NATSStats)) {
	s.mu.Lock()
	f(&s.stats)
	s.mu.Unlock()
}

func (s *NATSSource) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// Stats returns the counts so far.
func (s *NATSSource) Stats() NATSStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
}

// Delivered returns the stream sequence of the last message whose events
// Next returned (or skipped): a state that has counted everything Next
// returned so far resumes with SkipThrough = Delivered().
func (s *NATSSource) Delivered() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.delivered
}

// Position returns the stream sequence of the last message acked (the
// consumer's ack floor when the source started, 0 for a new consumer).
// When batches are acked in the order Next returned them, every message at
// or before it has been handled: a checkpoint can record it.
func (s *NATSSource) Position() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.position
}

// Close hands the batches still unacked back for redelivery (a restarted
// source gets them at once), and closes the connection. Their ack funcs
// then do nothing. Next returns ErrSourceClosed. Close is idempotent.
func (s *NATSSource) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	pending := s.pending
	s.pending = map[uint64][]string{}
	s.mu.Unlock()
	var n int64
	for _, msgs := range pending {
		for _, m := range msgs {
			_ = s.nc.Publish(m, nakBody)
			n++
		}
	}
	s.count(func(st *NATSStats) { st.Naked += n })
	err := s.nc.FlushTimeout(s.opt.Timeout)
	s.nc.Close()
	if err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
		return fmt.Errorf("stream: nats close: flush: %w", err)
	}
	return nil
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// ReadStreamRaw is ReadStream for publishers: it frames r as ReadStream
// does (gzip sniffed; JSON lines, envelopes, {"Records":…} documents one
// after another) and calls fn with each kept record's Event and raw JSON,
// as DecodeRaw does. A bad document is counted in the returned stats
// (Records, BadRecords, BadReason, Bytes), never fatal. It returns at the
// end of r, when fn fails (its error), when ctx is done (checked between
// documents; a blocked Read is not interrupted), or on a read error.
func ReadStreamRaw(ctx context.Context, r io.Reader, fn func(ev Event, raw []byte) error) (DocStats, error) {
	dec := NewDecoder()
	var total DocStats
	var stop error
	readErr := frameStream(r, DefaultMaxSize, func(doc []byte) bool {
		if stop = ctx.Err(); stop != nil {
			return false
		}
		var st DocStats
		var err error
		if doc == nil {
			err = fmt.Errorf("stream: document of more than %d bytes: %w", DefaultMaxSize, ErrTooLarge)
		} else {
			st, err = dec.DecodeRaw(doc, func(ev Event, raw []byte) error {
				if ferr := fn(ev, raw); ferr != nil {
					stop = ferr
					return ferr
				}
				return nil
			})
		}
		if stop != nil {
			return false
		}
		total.Records += st.Records
		total.BadRecords += st.BadRecords
		total.Bytes += st.Bytes
		if total.BadReason == "" {
			total.BadReason = st.BadReason
		}
		if err != nil {
			total.Records++
			total.BadRecords++
			if total.BadReason == "" {
				total.BadReason = err.Error()
			}
		}
		return true
	})
	if stop != nil {
		return total, stop
	}
	if readErr != nil {
		return total, fmt.Errorf("stream: read: %w", readErr)
	}
	return total, nil
}
