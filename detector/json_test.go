package detector

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

const samplesDir = "../../shared/datasets/cloudtrail-samples"

// The December 2024 error-rate Start and End events, verbatim from the AWS
// CloudTrail User Guide (view-insights-events-cli.html) as quoted in
// shared/FORMATS.md section 2. © Amazon.com, Inc. or its affiliates, CC-BY-SA-4.0.
const (
	aws2024ErrorRateStart = `{"eventVersion":"1.09","eventTime":"2024-12-11T16:52:00Z","awsRegion":"us-east-1",
 "eventID":"18378b1e-3653-433d-ba1e-aa11a5958f0c","eventType":"AwsCloudTrailInsight",
 "recipientAccountId":"888888888888","sharedEventID":"fccb064f-dd07-4822-97c0-11115d8b91d4",
 "insightDetails":{"state":"Start","eventSource":"cloudtrail.amazonaws.com","eventName":"DescribeQuery",
  "insightType":"ApiErrorRateInsight","errorCode":"QueryIdNotFoundException","sourceEventCategory":"Management",
  "insightContext":{
   "statistics":{"baseline":{"average":0},"insight":{"average":1.2},"insightDuration":5,"baselineDuration":11092},
   "attributions":[
    {"attribute":"userIdentityArn","insight":[{"value":"arn:aws:sts::888888888888:assumed-role/Admin","average":1.2}],"baseline":[]},
    {"attribute":"userAgent","insight":[{"value":"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36","average":1.2}],"baseline":[]}]}},
 "eventCategory":"Insight"}`
	aws2024ErrorRateEnd = `{"eventVersion":"1.09","eventTime":"2024-12-11T16:53:00Z","awsRegion":"us-east-1",
 "eventID":"b32f10a0-f039-419a-bad7-e95468930a4f","eventType":"AwsCloudTrailInsight",
 "recipientAccountId":"888888888888","sharedEventID":"fccb064f-dd07-4822-97c0-11115d8b91d4",
 "insightDetails":{"state":"End","eventSource":"cloudtrail.amazonaws.com","eventName":"DescribeQuery",
  "insightType":"ApiErrorRateInsight","errorCode":"QueryIdNotFoundException","sourceEventCategory":"Management",
  "insightContext":{
   "statistics":{"baseline":{"average":0},"insight":{"average":6},"insightDuration":1,"baselineDuration":11092},
   "attributions":[
    {"attribute":"userIdentityArn","insight":[{"value":"arn:aws:sts::888888888888:assumed-role/Admin","average":6}],"baseline":[]},
    {"attribute":"userAgent","insight":[{"value":"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36","average":6}],"baseline":[]}]}},
 "eventCategory":"Insight"}`
)

func readSample(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(samplesDir, name))
	if err != nil {
		t.Fatalf("read sample: %v", err)
	}
	return b
}

// awsEvents returns every Insights event AWS has published, each as its
// original text, keyed by a name.
func awsEvents(t *testing.T) map[string]json.RawMessage {
	t.Helper()
	out := map[string]json.RawMessage{
		"2024-error-rate-start": json.RawMessage(aws2024ErrorRateStart),
		"2024-error-rate-end":   json.RawMessage(aws2024ErrorRateEnd),
	}
	for _, f := range []struct{ file, key string }{
		{"awsdocs-cloudtrail-user-guide/log-file-example-with-insights.json", "Records"},
		{"awsdocs-cloudtrail-user-guide/lookup-events-insight-output.json", "Events"},
	} {
		var doc map[string]json.RawMessage
		if err := json.Unmarshal(readSample(t, f.file), &doc); err != nil {
			t.Fatalf("%s: %v", f.file, err)
		}
		var evs []json.RawMessage
		if err := json.Unmarshal(doc[f.key], &evs); err != nil {
			t.Fatalf("%s: %v", f.file, err)
		}
		for i, ev := range evs {
			out[fmt.Sprintf("%s[%d]", filepath.Base(f.file), i)] = ev
		}
	}
	return out
}

func compact(t testing.TB, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := json.Compact(&buf, b); err != nil {
		t.Fatalf("compact: %v", err)
	}
	return buf.Bytes()
}

// TestJSONAWSSamplesByteForByte decodes every AWS sample and re-encodes it:
// the result is the sample's own text, compacted.
func TestJSONAWSSamplesByteForByte(t *testing.T) {
	for name, raw := range awsEvents(t) {
		t.Run(name, func(t *testing.T) {
			var in Insight
			if err := json.Unmarshal(raw, &in); err != nil {
				t.Fatalf("Unmarshal: %v", err)
			}
			got, err := json.Marshal(in)
			if err != nil {
				t.Fatalf("Marshal: %v", err)
			}
			if want := compact(t, raw); !bytes.Equal(got, want) {
				t.Errorf("re-encoded differs:\n got %s\nwant %s", got, want)
			}
		})
	}
}

// goldenInsights are the insights whose encoding is pinned in testdata/.
func goldenInsights() map[string]Insight {
	start := time.Date(2024, 7, 10, 1, 42, 0, 0, time.UTC)
	shared := SharedEventID("123456789012", "us-east-1", "autoscaling.amazonaws.com", "CompleteLifecycleAction", ApiCallRate, "", start)
	callRate := Insight{
		EventVersion: "1.08", Time: start, Region: "us-east-1", Account: "123456789012",
		EventID: EventID(shared, Start), SharedEventID: shared,
		State: Start, EventSource: "autoscaling.amazonaws.com", EventName: "CompleteLifecycleAction",
		Type: ApiCallRate, Category: "Management",
		Stats: Statistics{BaselineAverage: 9.82222e-5, InsightAverage: 5, InsightDuration: 1, BaselineDuration: 10181},
		Attributions: []Attribution{
			{Attribute: "userIdentityArn",
				Insight: []AttrValue{
					{"arn:aws:sts::123456789012:assumed-role/Role1/i-0a1b2c", 5},
					{"arn:aws:sts::123456789012:assumed-role/Role2/i-0d3e4f", 5},
				},
				Baseline: []AttrValue{{"arn:aws:sts::123456789012:assumed-role/Role1/i-0a1b2c", 9.82222e-5}}},
			{Attribute: "userAgent",
				Insight:  []AttrValue{{"autoscaling.amazonaws.com", 5}},
				Baseline: []AttrValue{{"autoscaling.amazonaws.com", 9.82222e-5}}},
			{Attribute: "errorCode",
				Insight:  []AttrValue{{"null", 5}},
				Baseline: []AttrValue{{"null", 9.82222e-5}}},
		},
	}
	callRateEnd := callRate
	callRateEnd.State, callRateEnd.EventID = End, EventID(shared, End)
	callRateEnd.Time = start.Add(8 * time.Minute)
	callRateEnd.Stats.InsightAverage, callRateEnd.Stats.InsightDuration = 2.375, 8

	estart := time.Date(2024, 12, 11, 16, 52, 0, 0, time.UTC)
	eshared := SharedEventID("888888888888", "us-east-1", "cloudtrail.amazonaws.com", "DescribeQuery", ApiErrorRate, "QueryIdNotFoundException", estart)
	errRate := Insight{
		EventVersion: "1.09", Time: estart, Region: "us-east-1", Account: "888888888888",
		EventID: EventID(eshared, Start), SharedEventID: eshared,
		State: Start, EventSource: "cloudtrail.amazonaws.com", EventName: "DescribeQuery",
		Type: ApiErrorRate, ErrorCode: "QueryIdNotFoundException", Category: "Management",
		Stats: Statistics{BaselineAverage: 0, InsightAverage: 1.2, InsightDuration: 1, BaselineDuration: 10080},
		Attributions: []Attribution{
			{Attribute: "userIdentityArn", Insight: []AttrValue{{"arn:aws:sts::888888888888:assumed-role/Admin", 1.2}}},
			{Attribute: "userAgent", Insight: []AttrValue{{"aws-cli/2.15.0 Python/3.11 <Linux> & co", 1.2}}},
		},
	}
	errRateEnd := errRate
	errRateEnd.State, errRateEnd.EventID = End, EventID(eshared, End)
	errRateEnd.Time = estart.Add(2 * time.Minute)
	errRateEnd.Stats.InsightAverage, errRateEnd.Stats.InsightDuration = 3.5, 2

	explained := callRate
	explained.Explanation = &Explanation{
		Kind: "burst", Direction: "above", Observed: 10, Expected: 0.02, BandLow: 0, BandHigh: 1,
		Score: 14.7, WindowMinutes: 2, Slot: "weekday 01:00",
	}
	return map[string]Insight{
		"call-rate-start":       callRate,
		"call-rate-end":         callRateEnd,
		"error-rate-start":      errRate,
		"error-rate-end":        errRateEnd,
		"call-rate-explanation": explained,
	}
}

func checkGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if d := cmp.Diff(string(want), string(got)); d != "" {
		t.Errorf("%s (-want +got):\n%s", path, d)
	}
}

func TestJSONGolden(t *testing.T) {
	for name, in := range goldenInsights() {
		t.Run(name, func(t *testing.T) {
			got, err := in.MarshalJSON()
			if err != nil {
				t.Fatal(err)
			}
			checkGolden(t, "insight-"+name+".golden", append(got, '\n'))
		})
	}
}

func TestJSONRoundTrip(t *testing.T) {
	cases := goldenInsights()
	// Edge cases: an End with nothing optional, empty attribution lists.
	cases["bare"] = Insight{Time: time.Date(2019, 11, 14, 0, 52, 0, 0, time.UTC), State: End, Type: ApiCallRate}
	cases["empty-lists"] = Insight{
		Time: time.Date(2019, 11, 14, 0, 52, 0, 0, time.UTC), Type: ApiErrorRate, ErrorCode: "AccessDenied",
		Attributions: []Attribution{{Attribute: "userAgent"}},
		Explanation:  &Explanation{Kind: "gap", Direction: "below", PeriodMinutes: 60, SilentMinutes: 181},
	}
	for name, in := range cases {
		t.Run(name, func(t *testing.T) {
			b1, err := json.Marshal(in)
			if err != nil {
				t.Fatal(err)
			}
			var back Insight
			if err := json.Unmarshal(b1, &back); err != nil {
				t.Fatalf("Unmarshal(%s): %v", b1, err)
			}
			if d := cmp.Diff(in, back); d != "" {
				t.Errorf("Unmarshal(Marshal(x)) != x (-want +got):\n%s", d)
			}
			b2, err := json.Marshal(back)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(b1, b2) {
				t.Errorf("Marshal∘Unmarshal∘Marshal differs:\n%s\n%s", b1, b2)
			}
		})
	}
}

func TestJSONEncodingRules(t *testing.T) {
	nan, inf := math.NaN(), math.Inf(1)
	in := Insight{
		Time: time.Date(2024, 1, 2, 3, 4, 5, 6e8, time.FixedZone("CET", 3600)), State: Start, Type: ApiCallRate,
		Stats:        Statistics{BaselineAverage: nan, InsightAverage: inf},
		Attributions: []Attribution{{Attribute: "userAgent", Insight: []AttrValue{{"a<b>&c", math.Inf(-1)}}}},
		Explanation:  &Explanation{Score: inf, Observed: nan},
	}
	// Call MarshalJSON directly: json.Marshal re-escapes <, > and & in a
	// Marshaler's output (json.Encoder with SetEscapeHTML(false) does not).
	b, err := in.MarshalJSON()
	if err != nil {
		t.Fatalf("Marshal with NaN/Inf: %v", err)
	}
	got := string(b)
	for _, want := range []string{
		`"eventTime":"2024-01-02T02:04:05Z"`, // UTC, no sub-seconds
		`"baseline":{"average":0},"insight":{"average":0}}`,
		`{"value":"a<b>&c","average":0}],"baseline":[]}`, // no HTML escaping; [] not null
		`"observed":0`, `"score":0`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("Marshal = %s\nwant it to contain %s", got, want)
		}
	}
	for _, absent := range []string{"errorCode", "recipientAccountId", "sourceEventCategory", "insightDuration", "baselineDuration"} {
		if strings.Contains(got, absent) {
			t.Errorf("Marshal = %s\nwant no %s", got, absent)
		}
	}
	if _, err := (Insight{State: 7}).MarshalJSON(); err == nil {
		t.Error("Marshal of unknown State: no error")
	}
	if _, err := (Insight{Type: 7}).MarshalJSON(); err == nil {
		t.Error("Marshal of unknown InsightType: no error")
	}
}

func TestJSONUnmarshalErrors(t *testing.T) {
	good := compact(t, []byte(aws2024ErrorRateStart))
	for _, c := range []struct{ name, old, new, want string }{
		{"eventType", `"AwsCloudTrailInsight"`, `"AwsApiCall"`, "eventType"},
		{"state", `"Start"`, `"Begin"`, "state"},
		{"insightType", `"ApiErrorRateInsight"`, `"ApiFooInsight"`, "insightType"},
		{"eventTime", `"2024-12-11T16:52:00Z"`, `"2024-12-11 16:52"`, "eventTime"},
		{"types", `"insightDuration":5`, `"insightDuration":"5"`, "insightDuration"},
	} {
		t.Run(c.name, func(t *testing.T) {
			bad := strings.Replace(string(good), c.old, c.new, 1)
			var in Insight
			err := json.Unmarshal([]byte(bad), &in)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("Unmarshal(%s) = %v, want an error naming %s", c.name, err, c.want)
			}
		})
	}
}

// shape returns the JSON key paths of v with the JSON type of each value.
func shape(v any, path string, out map[string]string) {
	switch x := v.(type) {
	case map[string]any:
		out[path] = "object"
		for k, e := range x {
			shape(e, path+"."+k, out)
		}
	case []any:
		out[path] = "array"
		for _, e := range x {
			shape(e, path+"[]", out)
		}
	case string:
		out[path] = "string"
	case float64:
		out[path] = "number"
	case bool:
		out[path] = "bool"
	case nil:
		out[path] = "null"
	}
}

func shapeOf(t *testing.T, b []byte) map[string]string {
	t.Helper()
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	shape(v, "", out)
	return out
}

// keyOrder returns the object keys of b in document order, as dotted paths
// (array items share their array's path).
func keyOrder(t *testing.T, b []byte) []string {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(b))
	var out []string
	var walk func(path string)
	walk = func(path string) {
		tok, err := dec.Token()
		if err != nil {
			t.Fatalf("keyOrder: %v", err)
		}
		switch tok {
		case json.Delim('{'):
			for dec.More() {
				k, err := dec.Token()
				if err != nil {
					t.Fatalf("keyOrder: %v", err)
				}
				p := k.(string)
				if path != "" {
					p = path + "." + p
				}
				out = append(out, p)
				walk(p)
			}
			_, _ = dec.Token() // }
		case json.Delim('['):
			for dec.More() {
				walk(path)
			}
			_, _ = dec.Token() // ]
		}
	}
	walk("")
	return out
}

// TestJSONShape compares our encoding of insights equivalent to two AWS
// samples — built field by field, not decoded from them — with the samples:
// the same key paths, the same JSON value types, the same key order.
// Known difference, none in shape: AWS writes the errorCode attribution of
// a call-rate insight without errors as the string "null"; the detector must
// put that value in (this package writes whatever value it is given).
func TestJSONShape(t *testing.T) {
	lookupStart := func() json.RawMessage { return awsEvents(t)["lookup-events-insight-output.json[0]"] }()
	errStart := goldenInsights()["error-rate-start"]
	errStart.Stats.InsightDuration = 5
	callStart := goldenInsights()["call-rate-start"]
	for _, c := range []struct {
		name string
		aws  []byte
		ours Insight
	}{
		{"2024 error-rate Start", []byte(aws2024ErrorRateStart), errStart},
		{"lookup-events call-rate Start", lookupStart, callStart},
	} {
		t.Run(c.name, func(t *testing.T) {
			b, err := json.Marshal(c.ours)
			if err != nil {
				t.Fatal(err)
			}
			want, got := shapeOf(t, c.aws), shapeOf(t, b)
			if c.name == "lookup-events call-rate Start" {
				// The 2019 lookup-events sample predates sourceEventCategory.
				delete(got, ".insightDetails.sourceEventCategory")
			}
			if d := cmp.Diff(want, got); d != "" {
				t.Errorf("shape (-aws +ours):\n%s", d)
			}
			wantOrder, gotOrder := dedupe(keyOrder(t, c.aws)), dedupe(keyOrder(t, b))
			gotOrder = without(gotOrder, "insightDetails.sourceEventCategory", wantOrder)
			if d := cmp.Diff(wantOrder, gotOrder); d != "" {
				t.Errorf("key order (-aws +ours):\n%s", d)
			}
		})
	}
}

func dedupe(s []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, x := range s {
		if !seen[x] {
			seen[x] = true
			out = append(out, x)
		}
	}
	return out
}

// without drops x from s unless ref has it.
func without(s []string, x string, ref []string) []string {
	for _, r := range ref {
		if r == x {
			return s
		}
	}
	var out []string
	for _, v := range s {
		if v != x {
			out = append(out, v)
		}
	}
	return out
}

func TestParseInsightsForms(t *testing.T) {
	start := compact(t, []byte(aws2024ErrorRateStart))
	end := compact(t, []byte(aws2024ErrorRateEnd))
	envelope := func(ev []byte) string {
		return `{"version":"0","id":"x","detail-type":"AWS Insight via CloudTrail","source":"aws.cloudtrail",` +
			`"account":"888888888888","time":"2024-12-11T16:52:00Z","region":"us-east-1","resources":[],"detail":` + string(ev) + `}`
	}
	quoted, _ := json.Marshal(string(start))
	for _, c := range []struct {
		name    string
		in      string
		wantIDs []string
		wantErr string
	}{
		{"single", string(start), []string{"18378b1e"}, ""},
		{"pretty single", aws2024ErrorRateStart, []string{"18378b1e"}, ""},
		{"records", `{"Records":[` + string(start) + `,` + string(end) + `]}`, []string{"18378b1e", "b32f10a0"}, ""},
		{"array", `[` + string(start) + `,` + string(end) + `]`, []string{"18378b1e", "b32f10a0"}, ""},
		{"json lines", string(start) + "\n" + string(end) + "\n", []string{"18378b1e", "b32f10a0"}, ""},
		{"json lines crlf", string(start) + "\r\n\r\n" + string(end) + "\r\n", []string{"18378b1e", "b32f10a0"}, ""},
		{"concatenated", string(start) + string(end), []string{"18378b1e", "b32f10a0"}, ""},
		{"envelope", envelope(start), []string{"18378b1e"}, ""},
		{"envelope lines", envelope(start) + "\n" + envelope(end), []string{"18378b1e", "b32f10a0"}, ""},
		{"events", `{"NextToken":"abc","Events":[` + string(start) + `]}`, []string{"18378b1e"}, ""},
		{"events CloudTrailEvent", `{"Events":[{"EventId":"18378b1e","EventName":"DescribeQuery","CloudTrailEvent":` + string(quoted) + `}]}`, []string{"18378b1e"}, ""},
		{"empty", "  \n", nil, ""},
		{"empty records", `{"Records":[]}`, nil, ""},
		{"broken line", string(start) + "\n{\"eventID\": oops\n" + string(end), []string{"18378b1e", "b32f10a0"}, "line 2"},
		{"bad record", `{"Records":[` + string(start) + `,{"eventType":"AwsApiCall"}]}`, []string{"18378b1e"}, "Records[1]"},
		{"api call envelope", `{"detail-type":"AWS API Call via CloudTrail","detail":{}}`, nil, "detail-type"},
		{"records not array", `{"Records":{}}`, nil, "want an array"},
		{"scalar", `42`, nil, "want a JSON object"},
		{"truncated", `{"Records":[` + string(start), nil, "document 0"},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := ParseInsights([]byte(c.in))
			var ids []string
			for _, in := range got {
				ids = append(ids, in.EventID[:8])
			}
			if d := cmp.Diff(c.wantIDs, ids); d != "" {
				t.Errorf("ParseInsights eventIDs (-want +got):\n%s", d)
			}
			switch {
			case c.wantErr == "" && err != nil:
				t.Errorf("ParseInsights: %v", err)
			case c.wantErr != "" && (err == nil || !strings.Contains(err.Error(), c.wantErr)):
				t.Errorf("ParseInsights error = %v, want one naming %q", err, c.wantErr)
			}
		})
	}
}

// TestParseInsightsSamples reads the real files: the 2019 log file, the
// lookup-events output and the EventBridge envelopes (whose API-call
// envelopes are reported, not decoded).
func TestParseInsightsSamples(t *testing.T) {
	for _, c := range []struct {
		file       string
		n, errs    int
		firstState State
	}{
		{"awsdocs-cloudtrail-user-guide/log-file-example-with-insights.json", 2, 0, Start},
		{"awsdocs-cloudtrail-user-guide/lookup-events-insight-output.json", 2, 0, Start},
		{"derived/eventbridge-envelopes.jsonl", 2, 3, Start},
	} {
		t.Run(filepath.Base(c.file), func(t *testing.T) {
			got, err := ParseInsights(readSample(t, c.file))
			nerr := 0
			if err != nil {
				nerr = len(err.(interface{ Unwrap() []error }).Unwrap())
			}
			if len(got) != c.n || nerr != c.errs {
				t.Fatalf("ParseInsights = %d insights, %d errors (%v); want %d, %d", len(got), nerr, err, c.n, c.errs)
			}
			if got[0].State != c.firstState || got[0].SharedEventID != got[1].SharedEventID {
				t.Errorf("got %+v", got)
			}
		})
	}
}

func FuzzParseInsights(f *testing.F) {
	f.Add([]byte(aws2024ErrorRateStart))
	f.Add([]byte(aws2024ErrorRateEnd + "\n" + aws2024ErrorRateStart))
	for _, name := range []string{
		"awsdocs-cloudtrail-user-guide/log-file-example-with-insights.json",
		"awsdocs-cloudtrail-user-guide/lookup-events-insight-output.json",
		"derived/eventbridge-envelopes.jsonl",
	} {
		f.Add(readSample(f, name))
	}
	names := make([]string, 0)
	for name := range goldenInsights() {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		b, _ := json.Marshal(goldenInsights()[name])
		f.Add(b)
	}
	f.Add([]byte(`{"Events":[{"CloudTrailEvent":"{\"eventType\":\"AwsCloudTrailInsight\"}"}]}`))
	f.Add([]byte(`[[[[[[{}]]]]]]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		ins, _ := ParseInsights(data)
		for _, in := range ins {
			b1, err := json.Marshal(in)
			if err != nil {
				t.Fatalf("Marshal of a parsed insight: %v", err)
			}
			var back Insight
			if err := json.Unmarshal(b1, &back); err != nil {
				t.Fatalf("Unmarshal(%s): %v", b1, err)
			}
			b2, err := json.Marshal(back)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(b1, b2) {
				t.Fatalf("round trip differs:\n%s\n%s", b1, b2)
			}
		}
	})
}

func TestKeyOrderHelper(t *testing.T) {
	got := keyOrder(t, []byte(`{"a":1,"b":{"c":[{"d":1,"e":[]}],"f":"x"},"g":[1,2]}`))
	want := []string{"a", "b", "b.c", "b.c.d", "b.c.e", "b.f", "g"}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("keyOrder (-want +got):\n%s", d)
	}
}

func ExampleParseInsights() {
	// One EventBridge envelope, as a rule on "AWS Insight via CloudTrail" delivers it.
	ins, err := ParseInsights([]byte(`{"version":"0","id":"1","detail-type":"AWS Insight via CloudTrail",
		"source":"aws.cloudtrail","account":"888888888888","time":"2024-12-11T16:52:00Z","region":"us-east-1",
		"resources":[],"detail":` + aws2024ErrorRateStart + `}`))
	if err != nil {
		panic(err)
	}
	in := ins[0]
	fmt.Println(in.State, in.Type, in.EventName, in.ErrorCode, in.Stats.InsightAverage, in.Time)
	// Output: Start ApiErrorRateInsight DescribeQuery QueryIdNotFoundException 1.2 2024-12-11 16:52:00 +0000 UTC
}
