package notify

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/trailsight/trailsight/detector"
)

// The generic webhook's headers.
const (
	// HeaderTimestamp is the Unix time, in seconds, at which the request
	// was signed.
	HeaderTimestamp = "X-Trailsight-Timestamp"
	// HeaderSignature is "v1=" and the hex HMAC-SHA256, keyed with the
	// shared secret, of the timestamp, ".", and the body.
	HeaderSignature = "X-Trailsight-Signature"
	// HeaderIdempotencyKey is the eventID of a single insight, or the hex
	// SHA-256 of the sorted eventIDs (one per line) of a batch: the same
	// insights always carry the same key.
	HeaderIdempotencyKey = "Idempotency-Key"
)

// Errors of VerifySignature.
var (
	ErrSignatureMissing = errors.New("notify: webhook signature or timestamp missing")
	ErrSignatureExpired = errors.New("notify: webhook timestamp outside the allowed skew")
	ErrSignatureInvalid = errors.New("notify: webhook signature does not match")
)

// NewWebhook returns a notifier posting each Notify call's insights, as
// CloudTrail Insights events, to url:
//
//	POST url
//	Content-Type: application/json
//	X-Trailsight-Timestamp: 1720575720
//	X-Trailsight-Signature: v1=<hex HMAC-SHA256(key, timestamp + "." + body)>
//	Idempotency-Key: <eventID, or hex SHA-256 of the sorted eventIDs>
//
//	{"insights":[{…AWS-shaped event…},…]}
//
// Events are in the order given, without duplicate eventIDs. A receiver
// checks the signature and the timestamp with VerifySignature (which
// rejects replays older than its allowed skew) and drops duplicates by
// Idempotency-Key or eventID. key must not be empty.
func NewWebhook(url, key Secret, opt ChatOptions) (*Chat, error) {
	if key == "" {
		return nil, errors.New("notify: webhook: empty signing key")
	}
	c, err := newChat("webhook", url, opt, -1, webhookRender)
	if err != nil {
		return nil, err
	}
	c.key = key
	return c, nil
}

func webhookRender(ins []detector.Insight, _ ChatOptions) ([]chatMessage, error) {
	ins = dedupeByEventID(append([]detector.Insight(nil), ins...))
	var buf bytes.Buffer
	buf.WriteString(`{"insights":[`)
	for i, in := range ins {
		if i > 0 {
			buf.WriteByte(',')
		}
		b, err := in.MarshalJSON()
		if err != nil {
			return nil, fmt.Errorf("webhook payload: insight %s: %w", in.EventID, err)
		}
		buf.Write(b)
	}
	buf.WriteString(`]}`)
	return []chatMessage{{body: buf.Bytes(), header: http.Header{HeaderIdempotencyKey: {batchKey(ins)}}}}, nil
}

// Sign returns the X-Trailsight-Signature value of body sent at timestamp
// ts (Unix seconds, as sent in X-Trailsight-Timestamp).
func Sign(key []byte, ts string, body []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(ts))
	m.Write([]byte{'.'})
	m.Write(body)
	return "v1=" + hex.EncodeToString(m.Sum(nil))
}

// VerifySignature checks a generic webhook request: ts and sig are the
// X-Trailsight-Timestamp and X-Trailsight-Signature headers, body the raw
// body. It returns ErrSignatureMissing when either header is empty or
// malformed, ErrSignatureExpired when ts is more than maxSkew away from
// now (a replay, or a clock far off), and ErrSignatureInvalid when no
// v1= signature in sig (comma-separated, to allow key rotation) matches.
// The comparison takes constant time.
func VerifySignature(secret []byte, ts, sig string, body []byte, now time.Time, maxSkew time.Duration) error {
	if ts == "" || sig == "" {
		return ErrSignatureMissing
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: timestamp %q", ErrSignatureMissing, ts)
	}
	if d := now.Sub(time.Unix(sec, 0)); d > maxSkew || d < -maxSkew {
		return fmt.Errorf("%w: %v", ErrSignatureExpired, d.Round(time.Second))
	}
	want := []byte(Sign(secret, ts, body))
	for _, s := range strings.Split(sig, ",") {
		if hmac.Equal([]byte(strings.TrimSpace(s)), want) {
			return nil
		}
	}
	return ErrSignatureInvalid
}
