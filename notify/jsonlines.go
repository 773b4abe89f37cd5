package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/google/uuid"

	"github.com/trailsight/trailsight/detector"
)

// JSONLinesOptions configures a JSONLines.
type JSONLinesOptions struct {
	// Envelope wraps each event as EventBridge delivers it: {"version":"0",
	// "id", "detail-type":"AWS Insight via CloudTrail", "source":
	// "aws.cloudtrail", "account", "time", "region", "resources":[],
	// "detail": the event}. id is a name-based UUID of the eventID, so a
	// re-send carries the same id.
	Envelope bool
	// StrictAWS drops each insight's Explanation.
	StrictAWS bool
}

// JSONLines writes one insight event per line to an io.Writer (standard
// output for `--out -`). Each Notify call makes a single Write of whole
// lines, so lines of different calls never interleave and a failed or
// cancelled call writes nothing. Re-sending events writes the same lines
// again: consumers that need exactly-once drop duplicate eventIDs (or
// envelope ids). JSONLines never closes w.
type JSONLines struct {
	mu     sync.Mutex
	w      io.Writer
	opt    JSONLinesOptions
	closed bool
}

// NewJSONLines returns a JSONLines writing to w.
func NewJSONLines(w io.Writer, opt JSONLinesOptions) *JSONLines {
	return &JSONLines{w: w, opt: opt}
}

// envelopeNamespace is the namespace of envelope ids (name-based UUIDs of
// eventIDs). Generated once; never change it.
var envelopeNamespace = uuid.MustParse("0eb93349-0d09-4d2d-8761-1c742fd483ec")

// envelope is EventBridge's event structure, fields in EventBridge's order.
type envelope struct {
	Version    string          `json:"version"`
	ID         string          `json:"id"`
	DetailType string          `json:"detail-type"`
	Source     string          `json:"source"`
	Account    string          `json:"account"`
	Time       string          `json:"time"`
	Region     string          `json:"region"`
	Resources  []string        `json:"resources"`
	Detail     json.RawMessage `json:"detail"`
}

// appendLine appends in's line (with its newline) to buf.
func (j *JSONLines) appendLine(buf *bytes.Buffer, in detector.Insight) error {
	if j.opt.StrictAWS {
		in.Explanation = nil
	}
	ev, err := in.MarshalJSON()
	if err != nil {
		return err
	}
	if !j.opt.Envelope {
		buf.Write(ev)
		buf.WriteByte('\n')
		return nil
	}
	enc := json.NewEncoder(buf) // Encode adds the newline
	enc.SetEscapeHTML(false)
	return enc.Encode(envelope{
		Version:    "0",
		ID:         uuid.NewSHA1(envelopeNamespace, []byte(in.EventID)).String(),
		DetailType: "AWS Insight via CloudTrail",
		Source:     "aws.cloudtrail",
		Account:    in.Account,
		Time:       in.Time.UTC().Format("2006-01-02T15:04:05Z"),
		Region:     in.Region,
		Resources:  []string{},
		Detail:     ev,
	})
}

// Notify writes one line per insight. An insight that cannot be encoded is
// reported in the returned error and skipped; the others are written.
func (j *JSONLines) Notify(ctx context.Context, ins []detector.Insight) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.closed {
		return ErrClosed
	}
	var buf bytes.Buffer
	var errs []error
	for _, in := range ins {
		if err := j.appendLine(&buf, in); err != nil {
			errs = append(errs, fmt.Errorf("notify: json lines: insight %s: %w", in.EventID, err))
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if buf.Len() > 0 {
		if _, err := j.w.Write(buf.Bytes()); err != nil {
			errs = append(errs, fmt.Errorf("notify: json lines: write: %w", err))
		}
	}
	return errors.Join(errs...)
}

// Close ends the JSONLines. Every line is written when Notify returns, so
// there is nothing to flush; w is left open.
func (j *JSONLines) Close() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.closed = true
	return nil
}
