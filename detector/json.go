package detector

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"time"
)

// This file holds the CloudTrail Insights JSON of Insight. It is not a hot
// path, so it uses encoding/json with wire structs whose field order is the
// order AWS writes (FORMATS.md section 2):
//
//	eventVersion, eventTime, awsRegion, eventID, eventType, recipientAccountId,
//	sharedEventID, insightDetails{state, eventSource, eventName, insightType,
//	errorCode, sourceEventCategory, insightContext{statistics{baseline{average},
//	insight{average}, insightDuration, baselineDuration}, attributions[…],
//	explanation{…}}}, eventCategory
//
// Encoding rules, each chosen so that Marshal → Unmarshal → Marshal is the
// identity and AWS's own samples re-encode byte for byte:
//   - eventTime is written in UTC as 2006-01-02T15:04:05Z (sub-seconds dropped).
//   - recipientAccountId, errorCode and sourceEventCategory are omitted when
//     "" (AWS marks the first optional; 2019 events have neither of the others).
//   - insightDuration and baselineDuration are omitted when 0, which is how a
//     2019 event without them decodes.
//   - attributions is omitted when empty; each attribution's insight and
//     baseline lists are always arrays ([] when empty).
//   - explanation (trailsight's, not AWS's) is written only when non-nil.
//   - Floats are plain JSON numbers as encoding/json writes them (shortest
//     form that round-trips). NaN and ±Inf cannot be JSON: they are written
//     as 0.
//   - HTML characters (<, >, &) are not escaped, as AWS does not.

const (
	eventTypeInsight     = "AwsCloudTrailInsight"
	eventCategoryInsight = "Insight"
	eventTimeLayout      = "2006-01-02T15:04:05Z"
	insightDetailType    = "AWS Insight via CloudTrail"
)

type wireInsight struct {
	EventVersion       string      `json:"eventVersion"`
	EventTime          string      `json:"eventTime"`
	AwsRegion          string      `json:"awsRegion"`
	EventID            string      `json:"eventID"`
	EventType          string      `json:"eventType"`
	RecipientAccountID string      `json:"recipientAccountId,omitempty"`
	SharedEventID      string      `json:"sharedEventID"`
	InsightDetails     wireDetails `json:"insightDetails"`
	EventCategory      string      `json:"eventCategory"`
}

type wireDetails struct {
	State               string      `json:"state"`
	EventSource         string      `json:"eventSource"`
	EventName           string      `json:"eventName"`
	InsightType         string      `json:"insightType"`
	ErrorCode           string      `json:"errorCode,omitempty"`
	SourceEventCategory string      `json:"sourceEventCategory,omitempty"`
	InsightContext      wireContext `json:"insightContext"`
}

type wireContext struct {
	Statistics   wireStats         `json:"statistics"`
	Attributions []wireAttribution `json:"attributions,omitempty"`
	Explanation  *Explanation      `json:"explanation,omitempty"`
}

type wireStats struct {
	Baseline         wireAverage `json:"baseline"`
	Insight          wireAverage `json:"insight"`
	InsightDuration  int         `json:"insightDuration,omitempty"`
	BaselineDuration int         `json:"baselineDuration,omitempty"`
}

type wireAverage struct {
	Average float64 `json:"average"`
}

type wireAttribution struct {
	Attribute string          `json:"attribute"`
	Insight   []wireAttrValue `json:"insight"`
	Baseline  []wireAttrValue `json:"baseline"`
}

type wireAttrValue struct {
	Value   string  `json:"value"`
	Average float64 `json:"average"`
}

// finite returns f, or 0 when f is NaN or infinite (JSON has no such numbers).
func finite(f float64) float64 {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return 0
	}
	return f
}

func wireValues(vs []AttrValue) []wireAttrValue {
	out := make([]wireAttrValue, len(vs)) // never nil: AWS writes []
	for i, v := range vs {
		out[i] = wireAttrValue{Value: v.Value, Average: finite(v.Average)}
	}
	return out
}

func attrValues(ws []wireAttrValue) []AttrValue {
	if len(ws) == 0 {
		return nil
	}
	out := make([]AttrValue, len(ws))
	for i, w := range ws {
		out[i] = AttrValue(w)
	}
	return out
}

// MarshalJSON encodes in as a CloudTrail Insights event, in the field order
// and shape AWS writes (see the rules at the top of this file). It fails
// only if in.State or in.Type is not a known value.
func (in Insight) MarshalJSON() ([]byte, error) {
	state, err := stateName(in.State)
	if err != nil {
		return nil, err
	}
	typ, err := typeName(in.Type)
	if err != nil {
		return nil, err
	}
	w := wireInsight{
		EventVersion:       in.EventVersion,
		EventTime:          in.Time.UTC().Format(eventTimeLayout),
		AwsRegion:          in.Region,
		EventID:            in.EventID,
		EventType:          eventTypeInsight,
		RecipientAccountID: in.Account,
		SharedEventID:      in.SharedEventID,
		InsightDetails: wireDetails{
			State:               state,
			EventSource:         in.EventSource,
			EventName:           in.EventName,
			InsightType:         typ,
			ErrorCode:           in.ErrorCode,
			SourceEventCategory: in.Category,
			InsightContext: wireContext{
				Statistics: wireStats{
					Baseline:         wireAverage{finite(in.Stats.BaselineAverage)},
					Insight:          wireAverage{finite(in.Stats.InsightAverage)},
					InsightDuration:  in.Stats.InsightDuration,
					BaselineDuration: in.Stats.BaselineDuration,
				},
			},
		},
		EventCategory: eventCategoryInsight,
	}
	if len(in.Attributions) > 0 {
		as := make([]wireAttribution, len(in.Attributions))
		for i, a := range in.Attributions {
			as[i] = wireAttribution{Attribute: a.Attribute, Insight: wireValues(a.Insight), Baseline: wireValues(a.Baseline)}
		}
		w.InsightDetails.InsightContext.Attributions = as
	}
	if in.Explanation != nil {
		e := *in.Explanation
		e.Observed, e.Expected = finite(e.Observed), finite(e.Expected)
		e.BandLow, e.BandHigh, e.Score = finite(e.BandLow), finite(e.BandHigh), finite(e.Score)
		w.InsightDetails.InsightContext.Explanation = &e
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(&w); err != nil {
		return nil, fmt.Errorf("detector: encode insight %s: %w", in.EventID, err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte{'\n'}), nil
}

// UnmarshalJSON decodes one CloudTrail Insights event: any shape AWS has
// written since 2019 (with or without insightDuration, baselineDuration,
// errorCode, sourceEventCategory, attributions), and trailsight's own
// explanation. Fields it does not model (insightSource, …) are ignored.
// eventType must be AwsCloudTrailInsight; state and insightType must be
// known values; eventTime must be RFC 3339.
func (in *Insight) UnmarshalJSON(data []byte) error {
	var w wireInsight
	if err := json.Unmarshal(data, &w); err != nil {
		return fmt.Errorf("detector: decode insight: %w", err)
	}
	if w.EventType != eventTypeInsight {
		return fmt.Errorf("detector: decode insight %q: eventType %q, want %q", w.EventID, w.EventType, eventTypeInsight)
	}
	t, err := time.Parse(time.RFC3339, w.EventTime)
	if err != nil {
		return fmt.Errorf("detector: decode insight %q: eventTime: %w", w.EventID, err)
	}
	t = t.UTC()
	if y := t.Year(); y < 0 || y > 9999 {
		return fmt.Errorf("detector: decode insight %q: eventTime %q out of range", w.EventID, w.EventTime)
	}
	d := &w.InsightDetails
	state, err := parseState(d.State)
	if err != nil {
		return fmt.Errorf("detector: decode insight %q: %w", w.EventID, err)
	}
	typ, err := parseType(d.InsightType)
	if err != nil {
		return fmt.Errorf("detector: decode insight %q: %w", w.EventID, err)
	}
	c := &d.InsightContext
	out := Insight{
		EventVersion:  w.EventVersion,
		Time:          t,
		Region:        w.AwsRegion,
		Account:       w.RecipientAccountID,
		EventID:       w.EventID,
		SharedEventID: w.SharedEventID,
		State:         state,
		EventSource:   d.EventSource,
		EventName:     d.EventName,
		Type:          typ,
		ErrorCode:     d.ErrorCode,
		Category:      d.SourceEventCategory,
		Stats: Statistics{
			BaselineAverage:  c.Statistics.Baseline.Average,
			InsightAverage:   c.Statistics.Insight.Average,
			InsightDuration:  c.Statistics.InsightDuration,
			BaselineDuration: c.Statistics.BaselineDuration,
		},
		Explanation: c.Explanation,
	}
	if len(c.Attributions) > 0 {
		out.Attributions = make([]Attribution, len(c.Attributions))
		for i, a := range c.Attributions {
			out.Attributions[i] = Attribution{Attribute: a.Attribute, Insight: attrValues(a.Insight), Baseline: attrValues(a.Baseline)}
		}
	}
	*in = out
	return nil
}

// stateName and typeName are the error-returning forms of String, for
// MarshalJSON, which must not panic on bad input.
func stateName(s State) (string, error) {
	if s != Start && s != End {
		return "", fmt.Errorf("detector: unknown State %d", s)
	}
	return s.String(), nil
}

func typeName(t InsightType) (string, error) {
	if t != ApiCallRate && t != ApiErrorRate {
		return "", fmt.Errorf("detector: unknown InsightType %d", t)
	}
	return t.String(), nil
}

func parseState(s string) (State, error) {
	switch s {
	case "Start":
		return Start, nil
	case "End":
		return End, nil
	}
	return 0, fmt.Errorf("unknown state %q", s)
}

func parseType(s string) (InsightType, error) {
	switch s {
	case "ApiCallRateInsight":
		return ApiCallRate, nil
	case "ApiErrorRateInsight":
		return ApiErrorRate, nil
	}
	return 0, fmt.Errorf("unknown insightType %q", s)
}

// maxParseDepth bounds the nesting ParseInsights follows (an array of
// envelopes of lookup-events items is 3 deep).
const maxParseDepth = 4

// ParseInsights decodes every CloudTrail Insights event in data, which may
// be any of the shapes AWS delivers them in:
//   - a log file body {"Records":[…]} (S3 CloudTrail-Insight files),
//   - the output of lookup-events, {"Events":[…]}, whose items are either the
//     event itself (as AWS documents it) or carry it as a JSON string in
//     "CloudTrailEvent" (as the API returns it),
//   - an EventBridge envelope whose detail-type is "AWS Insight via
//     CloudTrail" and whose detail is the event,
//   - a single event, a JSON array of any of these, or a sequence of them
//     (JSON lines, or concatenated values).
//
// Data must already be decompressed. ParseInsights decodes all it can and
// returns the insights in input order together with errors.Join of one error
// per item it could not decode, naming the item (e.g. "document 0: Records[3]").
// After a syntax error in a sequence of values, decoding resumes at the next
// line when the input is JSON lines; otherwise the rest is lost.
func ParseInsights(data []byte) ([]Insight, error) {
	var p parser
	dec := json.NewDecoder(bytes.NewReader(data))
	for i := 0; ; i++ {
		var raw json.RawMessage
		err := dec.Decode(&raw)
		if err == io.EOF {
			break
		}
		if err != nil {
			if line, rest, ok := bytes.Cut(data, []byte{'\n'}); ok && json.Valid(line) {
				return parseLines(line, rest)
			}
			p.errs = append(p.errs, fmt.Errorf("document %d: %w", i, err))
			break
		}
		p.value(raw, fmt.Sprintf("document %d", i), 0)
	}
	return p.out, errors.Join(p.errs...)
}

// parseLines parses JSON lines one by one, so that one broken line costs
// only that line.
func parseLines(first, rest []byte) ([]Insight, error) {
	var p parser
	line := first
	for n := 1; ; n++ {
		if len(bytes.TrimSpace(line)) > 0 {
			var raw json.RawMessage
			if err := json.Unmarshal(line, &raw); err != nil {
				p.errs = append(p.errs, fmt.Errorf("line %d: %w", n, err))
			} else {
				p.value(raw, fmt.Sprintf("line %d", n), 0)
			}
		}
		if len(rest) == 0 {
			break
		}
		line, rest, _ = bytes.Cut(rest, []byte{'\n'})
	}
	return p.out, errors.Join(p.errs...)
}

type parser struct {
	out  []Insight
	errs []error
}

// probe tells the wrappers apart. encoding/json matches keys without regard
// to case; no key of an Insights event folds onto one of these.
type probe struct {
	Records         json.RawMessage `json:"Records"`
	Events          json.RawMessage `json:"Events"`
	DetailType      *string         `json:"detail-type"`
	Detail          json.RawMessage `json:"detail"`
	CloudTrailEvent *string         `json:"CloudTrailEvent"`
}

func (p *parser) fail(where string, err error) {
	p.errs = append(p.errs, fmt.Errorf("%s: %w", where, err))
}

func (p *parser) value(raw json.RawMessage, where string, depth int) {
	raw = bytes.TrimSpace(raw)
	if depth > maxParseDepth {
		p.fail(where, errors.New("nested too deeply"))
		return
	}
	switch {
	case len(raw) > 0 && raw[0] == '[':
		p.array(raw, where, depth)
	case len(raw) > 0 && raw[0] == '{':
		p.object(raw, where, depth)
	default:
		p.fail(where, fmt.Errorf("want a JSON object or array, got %.20q", raw))
	}
}

func (p *parser) array(raw json.RawMessage, where string, depth int) {
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		p.fail(where, err)
		return
	}
	for i, it := range items {
		p.value(it, fmt.Sprintf("%s[%d]", where, i), depth+1)
	}
}

func (p *parser) object(raw json.RawMessage, where string, depth int) {
	var pr probe
	if err := json.Unmarshal(raw, &pr); err != nil {
		p.fail(where, err)
		return
	}
	switch {
	case pr.Records != nil:
		p.list(pr.Records, where+": Records", depth)
	case pr.Events != nil:
		p.list(pr.Events, where+": Events", depth)
	case pr.DetailType != nil:
		if *pr.DetailType != insightDetailType {
			p.fail(where, fmt.Errorf("EventBridge detail-type %q, want %q", *pr.DetailType, insightDetailType))
			return
		}
		p.event(pr.Detail, where+": detail")
	case pr.CloudTrailEvent != nil:
		p.event(json.RawMessage(*pr.CloudTrailEvent), where+": CloudTrailEvent")
	default:
		p.event(raw, where)
	}
}

// list decodes the items of a Records or Events array.
func (p *parser) list(raw json.RawMessage, where string, depth int) {
	if raw = bytes.TrimSpace(raw); len(raw) == 0 || raw[0] != '[' {
		p.fail(where, fmt.Errorf("want an array, got %.20q", raw))
		return
	}
	p.array(raw, where, depth)
}

// event decodes one Insights event; lookup-events items may carry it as a
// string in CloudTrailEvent, which is handled too.
func (p *parser) event(raw json.RawMessage, where string) {
	if raw = bytes.TrimSpace(raw); len(raw) == 0 || raw[0] != '{' {
		p.fail(where, fmt.Errorf("want a JSON object, got %.20q", raw))
		return
	}
	var in Insight
	if err := json.Unmarshal(raw, &in); err != nil {
		p.fail(where, err)
		return
	}
	p.out = append(p.out, in)
}
