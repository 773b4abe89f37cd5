package notify

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/trailsight/trailsight/detector"
	"github.com/trailsight/trailsight/stream"
)

// Defaults of NATSOptions.
const (
	DefaultNATSPrefix          = "trailsight.insights"
	DefaultNATSTimeout         = 5 * time.Second
	DefaultNATSDuplicateWindow = 2 * time.Hour
)

// NATSOptions configures a NATS notifier. Only URL is required.
type NATSOptions struct {
	// URL of one server, nats://host:port (or tls://), without credentials.
	URL string
	// Prefix of the subjects; default DefaultNATSPrefix. Its tokens are
	// dot-separated, non-empty, without '*', '>' or spaces.
	Prefix string
	// Stream is the JetStream stream to publish to. Empty: JetStream with
	// the stream the server has for <Prefix>.> if there is one, core NATS
	// otherwise (or always, with Core).
	Stream string
	// Core publishes with core NATS even when the server has JetStream.
	Core bool
	// CreateStream creates Stream when it is missing: subjects <Prefix>.>,
	// file storage, DuplicateWindow. An existing stream is never changed.
	CreateStream bool
	// DuplicateWindow of a created stream; default DefaultNATSDuplicateWindow.
	DuplicateWindow time.Duration
	// Envelope and StrictAWS shape the payload as JSONLinesOptions does.
	Envelope  bool
	StrictAWS bool
	// Credentials: User and Password, or Token, or CredsFile (a .creds
	// file with a user JWT and NKey seed). At most one kind.
	User, Password, Token string
	CredsFile             string
	// Timeout bounds connecting, each publish and its acknowledgement (or,
	// for core NATS, the final flush); default DefaultNATSTimeout.
	Timeout time.Duration
	// Logger receives connection events (disconnected, reconnected). The
	// zero value logs nothing.
	Logger zerolog.Logger
}

// String describes o with its secrets redacted, so that options can be
// printed or logged.
func (o NATSOptions) String() string {
	redact := func(s string) string {
		if s == "" {
			return ""
		}
		return "REDACTED"
	}
	return fmt.Sprintf("{URL:%s Prefix:%s Stream:%s Core:%t CreateStream:%t DuplicateWindow:%v Envelope:%t StrictAWS:%t "+
		"User:%s Password:%s Token:%s CredsFile:%s Timeout:%v}",
		stream.RedactURL(o.URL), o.Prefix, o.Stream, o.Core, o.CreateStream, o.DuplicateWindow, o.Envelope, o.StrictAWS,
		o.User, redact(o.Password), redact(o.Token), o.CredsFile, o.Timeout)
}

// GoString is String, for %#v.
func (o NATSOptions) GoString() string { return o.String() }

func (o NATSOptions) withDefaults() (NATSOptions, error) {
	if o.Prefix == "" {
		o.Prefix = DefaultNATSPrefix
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultNATSTimeout
	}
	if o.DuplicateWindow <= 0 {
		o.DuplicateWindow = DefaultNATSDuplicateWindow
	}
	var errs []error
	if o.URL == "" {
		errs = append(errs, errors.New("url: empty"))
	}
	if err := stream.ValidSubjectPrefix(o.Prefix); err != nil {
		errs = append(errs, fmt.Errorf("prefix: %w", err))
	}
	if o.Stream != "" && !stream.ValidStreamName(o.Stream) {
		errs = append(errs, fmt.Errorf("stream %q: must be letters, digits, '-' or '_'", o.Stream))
	}
	if o.Core && o.Stream != "" {
		errs = append(errs, errors.New("core: a stream needs JetStream"))
	}
	if o.CreateStream && o.Stream == "" {
		errs = append(errs, errors.New("create: needs a stream name"))
	}
	kinds := 0
	if o.User != "" || o.Password != "" {
		kinds++
	}
	if o.Token != "" {
		kinds++
	}
	if o.CredsFile != "" {
		kinds++
	}
	if kinds > 1 {
		errs = append(errs, errors.New("credentials: give user/password, token or creds file, not several"))
	}
	if err := errors.Join(errs...); err != nil {
		return o, fmt.Errorf("notify: nats options: %w", err)
	}
	return o, nil
}

// NATS publishes insight events to NATS, one message per event:
//
//	subject  <prefix>.<account>.<region>.<insightType>
//	         e.g. trailsight.insights.123456789012.us-east-1.ApiCallRateInsight
//	header   Nats-Msg-Id: <eventID>
//	payload  the event as AWS writes it (detector.Insight.MarshalJSON), or
//	         with Envelope the EventBridge-style envelope of JSONLines
//
// Account, region and type are subject tokens with '.', '*', '>' and spaces
// replaced by '_'. With JetStream, each publish waits for the stream's
// acknowledgement, and the server drops a message whose Nats-Msg-Id it has
// stored within the stream's duplicate window: re-sending the same events
// (a retry, a re-run) stores each event once. With core NATS, Notify
// publishes and flushes; there is no acknowledgement and no de-duplication
// (subscribers drop repeated eventIDs), and events published while the
// connection is down are buffered and sent on reconnection, so a retry
// after an error may deliver an event twice.
//
// The connection reconnects for ever in the background. While it is down,
// Notify returns an error within Timeout: retry it (or spool). Errors that
// retrying cannot fix are reported by NATSPermanent. Notify may be
// called from one goroutine at a time; Published and Stream may be called
// concurrently with it.
type NATS struct {
	opt    NATSOptions
	nc     *nats.Conn
	js     jetstream.JetStream // nil: core NATS
	stream string
	shape  *JSONLines // payload encoder, never written to

	mu         sync.Mutex // held by Notify and Close
	closed     bool
	published  atomic.Int64
	duplicates atomic.Int64
}

// NewNATS connects to opt.URL and, unless core NATS is used, finds (or
// creates, with CreateStream) the JetStream stream. It fails when the
// server cannot be reached within Timeout or the stream is missing: a
// notifier that cannot deliver should stop a run at its start. Connecting
// is bounded by Timeout; ctx bounds the JetStream look-ups after it.
func NewNATS(ctx context.Context, opt NATSOptions) (*NATS, error) {
	opt, err := opt.withDefaults()
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	where := stream.RedactURL(opt.URL)
	log := opt.Logger
	nopts := []nats.Option{
		nats.Name("trailsight"),
		nats.Timeout(opt.Timeout),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(500 * time.Millisecond),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			log.Warn().Str("url", where).AnErr("error", err).Msg("nats disconnected")
		}),
		nats.ReconnectHandler(func(*nats.Conn) {
			log.Info().Str("url", where).Msg("nats reconnected")
		}),
	}
	switch {
	case opt.User != "" || opt.Password != "":
		nopts = append(nopts, nats.UserInfo(opt.User, opt.Password))
	case opt.Token != "":
		nopts = append(nopts, nats.Token(opt.Token))
	case opt.CredsFile != "":
		nopts = append(nopts, nats.UserCredentials(opt.CredsFile))
	}
	nc, err := nats.Connect(opt.URL, nopts...)
	if err != nil {
		return nil, fmt.Errorf("notify: nats: connect %s: %w", where, err)
	}
	n := &NATS{opt: opt, nc: nc, shape: NewJSONLines(nil, JSONLinesOptions{Envelope: opt.Envelope, StrictAWS: opt.StrictAWS})}
	if err := n.setup(ctx); err != nil {
		nc.Close()
		return nil, fmt.Errorf("notify: nats %s: %w", where, err)
	}
	return n, nil
}

// setup chooses between JetStream and core NATS and finds the stream.
func (n *NATS) setup(ctx context.Context) error {
	if n.opt.Core {
		return nil
	}
	js, err := jetstream.New(n.nc)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeoutCause(ctx, n.opt.Timeout, nats.ErrTimeout)
	defer cancel()
	fail := func(what string, err error) error {
		if cerr := context.Cause(ctx); cerr != nil {
			err = cerr
		}
		return fmt.Errorf("%s: %w", what, err)
	}
	if n.opt.Stream == "" {
		name, err := js.StreamNameBySubject(ctx, n.opt.Prefix+".>")
		switch {
		case errors.Is(err, jetstream.ErrStreamNotFound), errors.Is(err, jetstream.ErrJetStreamNotEnabled),
			errors.Is(err, jetstream.ErrJetStreamNotEnabledForAccount), errors.Is(err, nats.ErrNoResponders):
			return nil // core NATS
		case err != nil:
			return fail("look up the stream for "+n.opt.Prefix+".>", err)
		}
		n.js, n.stream = js, name
		return nil
	}
	_, err = js.Stream(ctx, n.opt.Stream)
	if errors.Is(err, jetstream.ErrStreamNotFound) && n.opt.CreateStream {
		_, err = js.CreateStream(ctx, jetstream.StreamConfig{
			Name:        n.opt.Stream,
			Description: "trailsight insight events",
			Subjects:    []string{n.opt.Prefix + ".>"},
			Storage:     jetstream.FileStorage,
			Duplicates:  n.opt.DuplicateWindow,
		})
		if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) { // created meanwhile by someone else
			_, err = js.Stream(ctx, n.opt.Stream)
		}
	}
	switch {
	case errors.Is(err, jetstream.ErrStreamNotFound):
		return fmt.Errorf("stream %s: %w (create it, or ask for it to be created: CreateStream, ?create=1)", n.opt.Stream, err)
	case err != nil:
		return fail("stream "+n.opt.Stream, err)
	}
	n.js, n.stream = js, n.opt.Stream
	return nil
}

// Stream returns the JetStream stream published to, or "" for core NATS.
func (n *NATS) Stream() string { return n.stream }

// Published returns how many messages the server has taken (acknowledged,
// or flushed with core NATS) and how many of those JetStream reported as
// duplicates of messages it already held.
func (n *NATS) Published() (msgs, duplicates int) {
	return int(n.published.Load()), int(n.duplicates.Load())
}

// Subject returns the subject an insight is published to.
func (n *NATS) Subject(in detector.Insight) string {
	return natsSubject(n.opt.Prefix, in)
}

func natsSubject(prefix string, in detector.Insight) string {
	typ := "_"
	if in.Type <= detector.ApiErrorRate {
		typ = in.Type.String()
	}
	return prefix + "." + stream.SubjectToken(in.Account) + "." + stream.SubjectToken(in.Region) + "." + typ
}

// message encodes in as the message Notify publishes.
func (n *NATS) message(in detector.Insight) (*nats.Msg, error) {
	var buf bytes.Buffer
	if err := n.shape.appendLine(&buf, in); err != nil {
		return nil, err
	}
	m := nats.NewMsg(n.Subject(in))
	m.Data = bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
	m.Header.Set(jetstream.MsgIDHeader, in.EventID)
	return m, nil
}

// Notify publishes one message per insight, in order, and returns when the
// server has them all (see NATS). An insight that cannot be encoded is
// reported in the error and skipped. The first publish that fails ends the
// call: the error wraps ctx.Err() when ctx is done, nats.ErrTimeout when
// the server did not answer within Timeout, else what the server or client
// said. Events before it were delivered; re-sending all of them is safe.
// Notify delivers ins. Errors that retrying cannot fix (NATSPermanent) are
// marked with ErrPermanent, so that Reliable spools them at once.
func (n *NATS) Notify(ctx context.Context, ins []detector.Insight) error {
	err := n.notify(ctx, ins)
	if err != nil && NATSPermanent(err) {
		return Permanent(err)
	}
	return err
}

func (n *NATS) notify(ctx context.Context, ins []detector.Insight) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return ErrClosed
	}
	var errs []error
	msgs := make([]*nats.Msg, 0, len(ins))
	for _, in := range ins {
		m, err := n.message(in)
		if err != nil {
			errs = append(errs, fmt.Errorf("notify: nats: insight %s: %w: %w", in.EventID, errNATSEncode, err))
			continue
		}
		msgs = append(msgs, m)
	}
	if n.js != nil {
		for _, m := range msgs {
			if err := n.publish(ctx, m); err != nil {
				return errors.Join(append(errs, err)...)
			}
		}
		return errors.Join(errs...)
	}
	for _, m := range msgs {
		if err := n.nc.PublishMsg(m); err != nil {
			return errors.Join(append(errs, fmt.Errorf("notify: nats: publish %s: %w", m.Subject, err))...)
		}
	}
	if len(msgs) > 0 {
		fctx, cancel := context.WithTimeoutCause(ctx, n.opt.Timeout, nats.ErrTimeout)
		defer cancel()
		if err := n.nc.FlushWithContext(fctx); err != nil {
			return errors.Join(append(errs, fmt.Errorf("notify: nats: flush: %w", n.cause(ctx, fctx, err)))...)
		}
		n.published.Add(int64(len(msgs)))
	}
	return errors.Join(errs...)
}

// errNATSEncode marks an insight that cannot be encoded.
var errNATSEncode = errors.New("cannot encode")

// NATSPermanent reports whether err, from NATS.Notify or NewNATS, is one
// that retrying cannot fix: an insight that cannot be encoded, a message
// over the server's maximum payload, a bad subject, an authorization or
// permissions violation, or a JetStream 4xx answer (stream not found,
// wrong stream). It is false for nil, cancellation, timeouts, a lost
// connection, no responders, and for any error that also holds one of
// those (errors.Join of several): a retry may deliver what is missing.
func NATSPermanent(err error) bool {
	if err == nil {
		return false
	}
	for _, retryable := range []error{
		context.Canceled, context.DeadlineExceeded, nats.ErrTimeout, nats.ErrConnectionClosed,
		nats.ErrConnectionReconnecting, nats.ErrNoServers, nats.ErrNoResponders, jetstream.ErrNoStreamResponse,
	} {
		if errors.Is(err, retryable) {
			return false
		}
	}
	for _, permanent := range []error{
		errNATSEncode, nats.ErrMaxPayload, nats.ErrBadSubject, nats.ErrAuthorization, nats.ErrAuthExpired,
		nats.ErrPermissionViolation,
	} {
		if errors.Is(err, permanent) {
			return true
		}
	}
	var ae *jetstream.APIError
	if errors.As(err, &ae) {
		return ae.Code >= 400 && ae.Code < 500 && ae.Code != 408 && ae.Code != 429
	}
	return false
}

// publish sends m to the stream and waits for its acknowledgement.
func (n *NATS) publish(ctx context.Context, m *nats.Msg) error {
	pctx, cancel := context.WithTimeoutCause(ctx, n.opt.Timeout, nats.ErrTimeout)
	defer cancel()
	ack, err := n.js.PublishMsg(pctx, m, jetstream.WithExpectStream(n.stream))
	if err != nil {
		return fmt.Errorf("notify: nats: publish %s to stream %s: %w", m.Subject, n.stream, n.cause(ctx, pctx, err))
	}
	n.published.Add(1)
	if ack.Duplicate {
		n.duplicates.Add(1)
	}
	return nil
}

// cause explains err from an operation under sub, a child of ctx with
// Timeout: the caller's ctx error when ctx is done, nats.ErrTimeout (the
// cause of sub) when only the timeout expired, else err itself; with the
// connection's state when it is not connected.
func (n *NATS) cause(ctx, sub context.Context, err error) error {
	if cerr := ctx.Err(); cerr != nil {
		return cerr
	}
	if c := context.Cause(sub); c != nil && !errors.Is(err, c) {
		err = fmt.Errorf("%w: no answer within %v", c, n.opt.Timeout)
	}
	if st := n.nc.Status(); st != nats.CONNECTED {
		err = fmt.Errorf("%w (connection %v)", err, st)
	}
	return err
}

// Close closes the connection. Every message is acknowledged or flushed
// when Notify returns, so there is nothing left to send.
func (n *NATS) Close() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if !n.closed {
		n.closed = true
		n.nc.Close()
	}
	return nil
}

// ParseNATSURL parses the value of `--out nats://…`:
//
//	nats://[USER:PASSWORD@|TOKEN@]HOST:PORT[/STREAM][?KEY=VALUE&…]
//
// STREAM, the path, is the JetStream stream to publish to; without it,
// events go to the stream the server has for <prefix>.>, or by core NATS
// when it has none. tls:// is accepted for TLS. Keys:
//
//	prefix=P        subject prefix (default trailsight.insights)
//	envelope=1      EventBridge-style envelope
//	strict=1        AWS fields only (no explanation)
//	create=1        create STREAM if missing (subjects <prefix>.>, file storage)
//	dupes=2h        duplicate window of a created stream
//	timeout=5s      connect, publish and acknowledgement timeout
//	creds=FILE      NATS credentials file
//	core=1          core NATS even if the server has JetStream
//
// Booleans take 1/0/true/false, or no value for true. Every problem is
// reported, each naming its key.
func ParseNATSURL(s string) (NATSOptions, error) {
	var o NATSOptions
	nu, err := stream.SplitNATSURL(s)
	if err != nil {
		return o, fmt.Errorf("notify: %w", err)
	}
	o.URL, o.User, o.Password, o.Token, o.Stream = nu.Server, nu.User, nu.Password, nu.Token, nu.Stream
	errs, q := nu.Errs, nu.Query
	boolean := func(key string, dst *bool) {
		v := q.Get(key)
		if v == "" {
			*dst = true
			return
		}
		b, err := strconv.ParseBool(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s=%q: not a boolean", key, v))
		}
		*dst = b
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
		switch key {
		case "prefix":
			o.Prefix = q.Get(key)
			if err := stream.ValidSubjectPrefix(o.Prefix); err != nil {
				errs = append(errs, fmt.Errorf("prefix: %w", err))
			}
		case "envelope":
			boolean(key, &o.Envelope)
		case "strict":
			boolean(key, &o.StrictAWS)
		case "create":
			boolean(key, &o.CreateStream)
		case "core":
			boolean(key, &o.Core)
		case "dupes":
			duration(key, &o.DuplicateWindow)
		case "timeout":
			duration(key, &o.Timeout)
		case "creds":
			o.CredsFile = q.Get(key)
			if o.CredsFile == "" {
				errs = append(errs, errors.New("creds: empty"))
			}
		default:
			errs = append(errs, fmt.Errorf("%s: unknown key", key))
		}
	}
	if len(errs) == 0 {
		if _, err := o.withDefaults(); err != nil {
			return NATSOptions{}, fmt.Errorf("notify: nats url %s: %w", stream.RedactURL(s), errors.Unwrap(err))
		}
		return o, nil
	}
	slices.SortFunc(errs, func(a, b error) int { return strings.Compare(a.Error(), b.Error()) })
	return NATSOptions{}, fmt.Errorf("notify: nats url %s: %w", stream.RedactURL(s), errors.Join(errs...))
}
