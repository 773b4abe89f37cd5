package stream

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

// samplesDir holds the real CloudTrail samples; the repository is cloned as
// a sibling of shared/.
const samplesDir = "../../shared/datasets/cloudtrail-samples"

// sampleFiles returns the sample documents (not README, LICENSES, key list).
func sampleFiles(t testing.TB) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir(samplesDir, func(path string, de fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if de.IsDir() {
			if de.Name() == "LICENSES" {
				return filepath.SkipDir
			}
			return nil
		}
		if strings.HasSuffix(path, ".json") || strings.HasSuffix(path, ".jsonl") || strings.HasSuffix(path, ".gz") {
			files = append(files, path)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("samples not found (the repository must be a sibling of shared/): %v", err)
	}
	if len(files) < 15 {
		t.Fatalf("found %d sample files, want at least 15", len(files))
	}
	return files
}

// render writes events and stats one per line, for golden files.
func render(events []Event, st DocStats, err error) string {
	var b strings.Builder
	fmt.Fprintf(&b, "records=%d bad=%d reason=%q bytes=%d\n", st.Records, st.BadRecords, st.BadReason, st.Bytes)
	if err != nil {
		fmt.Fprintf(&b, "error: %v\n", err)
	}
	for _, e := range events {
		fmt.Fprintf(&b, "%s acct=%s region=%s %s/%s err=%q type=%s id=%s arn=%q ua=%q ro=%t cat=%s\n",
			e.Time.Format(time.RFC3339), e.Account, e.Region, e.Source, e.Name, e.ErrorCode, e.Type, e.ID,
			e.UserArn, e.UserAgent, e.ReadOnly, e.Category)
	}
	return b.String()
}

func checkGolden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update)", err)
	}
	if d := cmp.Diff(string(want), got); d != "" {
		t.Errorf("%s (-want +got):\n%s", path, d)
	}
}

func TestSamplesGolden(t *testing.T) {
	d := NewDecoder()
	for _, path := range sampleFiles(t) {
		rel, _ := filepath.Rel(samplesDir, path)
		t.Run(rel, func(t *testing.T) {
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			events, st, err := d.Decode(data, nil)
			if err == nil && len(events) != st.Records-st.BadRecords {
				t.Errorf("%d events, stats %+v", len(events), st)
			}
			checkGolden(t, strings.NewReplacer("/", "__").Replace(rel), render(events, st, err))
		})
	}
}

// TestSamplesFacts pins what the golden files must say, so that a wrong
// -update is caught.
func TestSamplesFacts(t *testing.T) {
	decode := func(t *testing.T, rel string) ([]Event, DocStats, error) {
		t.Helper()
		data, err := os.ReadFile(filepath.Join(samplesDir, rel))
		if err != nil {
			t.Fatal(err)
		}
		return NewDecoder().Decode(data, nil)
	}
	t.Run("broken stratus file", func(t *testing.T) {
		_, _, err := decode(t, "stratus-red-team-via-datadog/aws.execution.ec2-user-data.json")
		var se *SyntaxError
		if !errors.As(err, &se) || se.Line != 112 || !strings.Contains(se.Msg, "after array element") {
			t.Fatalf("err = %v, want a SyntaxError at line 112 after an array element", err)
		}
	})
	for _, f := range []string{"awsdocs-cloudtrail-user-guide/digest-example.json", "awsdocs-cloudtrail-user-guide/digest-example-2.json"} {
		t.Run(f, func(t *testing.T) {
			if _, _, err := decode(t, f); !errors.Is(err, ErrNotCloudTrail) {
				t.Fatalf("err = %v, want ErrNotCloudTrail", err)
			}
		})
	}
	t.Run("old records are Management", func(t *testing.T) {
		ev, _, err := decode(t, "awsdocs-s3-user-guide/s3-management-events-records.json")
		if err != nil || len(ev) != 3 {
			t.Fatal(err, len(ev))
		}
		for _, e := range ev {
			if e.Category != Management || e.ReadOnly {
				t.Errorf("%s: category %v readOnly %v", e.Name, e.Category, e.ReadOnly)
			}
		}
	})
	t.Run("data event", func(t *testing.T) {
		ev, _, err := decode(t, "awsdocs-s3-user-guide/s3-on-outposts-data-event.json")
		if err != nil || len(ev) != 1 || ev[0].Category != Data || ev[0].Account != "444455556666" {
			t.Fatalf("%v %+v", err, ev)
		}
	})
	t.Run("gzip, no ARN", func(t *testing.T) {
		ev, _, err := decode(t, "loki-lambda-promtail/cloudtrail-log-file.json.gz")
		if err != nil || len(ev) != 2 || ev[0].UserArn != "" || ev[1].UserArn == "" || ev[0].Account != "123456789" {
			t.Fatalf("%v %+v", err, ev)
		}
	})
	t.Run("datadog shape", func(t *testing.T) {
		ev, _, err := decode(t, "stratus-red-team-via-datadog/aws.credential-access.secretsmanager-retrieve-secrets.json")
		if err != nil || len(ev) != 10 || !ev[0].ReadOnly || !strings.HasPrefix(ev[0].UserAgent, "stratus-red-team") {
			t.Fatalf("%v %+v", err, ev)
		}
	})
	t.Run("insights take source and name from insightDetails", func(t *testing.T) {
		ev, _, err := decode(t, "awsdocs-cloudtrail-user-guide/log-file-example-with-insights.json")
		if err != nil || len(ev) != 2 || ev[0].Source != "ssm.amazonaws.com" || ev[0].Category != Insight {
			t.Fatalf("%v %+v", err, ev)
		}
	})
	t.Run("envelopes", func(t *testing.T) {
		ev, st, err := decode(t, "derived/eventbridge-envelopes.jsonl")
		if err != nil || len(ev) != 5 || st.BadRecords != 0 {
			t.Fatalf("%v %+v", err, st)
		}
	})
}

// TestDifferentialSamples: Decode and the encoding/json reference agree on
// every valid plain sample.
func TestDifferentialSamples(t *testing.T) {
	d := NewDecoder()
	for _, path := range sampleFiles(t) {
		if strings.HasSuffix(path, ".gz") {
			continue
		}
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		compareWithReference(t, d, path, data)
	}
}

func compareWithReference(t *testing.T, d *Decoder, name string, data []byte) int {
	t.Helper()
	want, wantSt, wantErr := refDecode(data)
	got, gotSt, gotErr := d.Decode(data, nil)
	if (wantErr != nil) != (gotErr != nil) {
		t.Fatalf("%s: err = %v, reference err = %v", name, gotErr, wantErr)
	}
	if wantErr != nil {
		return 0
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("%s: events (-reference +got):\n%s", name, d)
	}
	if wantSt != gotSt {
		t.Errorf("%s: stats %+v, reference %+v", name, gotSt, wantSt)
	}
	return len(got)
}

// TestDifferentialRandom: random odd records in every shape, against the
// encoding/json reference.
func TestDifferentialRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 11))
	d := NewDecoder()
	t0 := time.Date(2024, 3, 4, 5, 0, 0, 0, time.UTC)
	events := 0
	for i := range 300 {
		n := 1 + r.IntN(8)
		recs := make([]any, n)
		for j := range recs {
			rec := genRecord(r, t0.Add(time.Duration(r.IntN(7200))*time.Second))
			mutateRecord(r, rec)
			recs[j] = rec
		}
		var doc []byte
		switch i % 4 {
		case 0: // Records, pretty or compact
			if r.IntN(2) == 0 {
				doc, _ = json.MarshalIndent(map[string]any{"Records": recs}, "", "  ")
			} else {
				doc, _ = json.Marshal(map[string]any{"Records": recs})
			}
		case 1: // JSON lines
			for _, rec := range recs {
				b, _ := json.Marshal(rec)
				doc = append(append(doc, b...), '\n')
			}
		case 2: // EventBridge envelopes
			for _, rec := range recs {
				env := map[string]any{"version": "0", "id": "x", "detail-type": "AWS API Call via CloudTrail",
					"source": "aws.ec2", "account": "999988887777", "region": "sa-east-1", "time": "t", "resources": []any{}, "detail": rec}
				b, _ := json.Marshal(env)
				doc = append(append(doc, b...), '\n')
			}
		case 3: // a single bare record
			doc, _ = json.MarshalIndent(recs[0], "", "\t")
		}
		events += compareWithReference(t, d, fmt.Sprintf("doc %d", i), doc)
	}
	if events < 500 {
		t.Errorf("only %d events compared", events)
	}
}

func TestBadInputs(t *testing.T) {
	good := []byte(`{"eventTime":"2024-01-02T03:04:05Z","eventSource":"ec2.amazonaws.com","eventName":"RunInstances","eventID":"a"}`)
	gz := gzipBytes(t, []byte(`{"Records":[`+string(good)+`,`+string(good)+`]}`))
	var syntax *SyntaxError
	tests := []struct {
		name     string
		data     []byte
		wantErr  func(error) bool
		wantN    int
		wantBad  int
		wantWhy  string
		describe string
	}{
		{name: "truncated gzip", data: gz[:len(gz)-10], wantErr: func(err error) bool {
			return err != nil && strings.Contains(err.Error(), "gunzip")
		}},
		{name: "gzip header only", data: []byte{0x1f, 0x8b}, wantErr: func(err error) bool { return err != nil }},
		{name: "syntax error", data: []byte(`{"Records":[{"eventTime": 5,}]}`), wantErr: func(err error) bool { return errors.As(err, &syntax) && syntax.Offset == 28 }},
		{name: "truncated JSON", data: []byte(`{"Records":[{"eventTime":"2024`), wantErr: func(err error) bool {
			return errors.As(err, &syntax) && strings.Contains(err.Error(), "unexpected end")
		}},
		{name: "empty", data: nil, wantErr: func(err error) bool { return errors.Is(err, ErrNotCloudTrail) }},
		{name: "whitespace", data: []byte(" \n\t"), wantErr: func(err error) bool { return errors.Is(err, ErrNotCloudTrail) }},
		{name: "binary junk", data: []byte{0x00, 0xff, 0x13, 0x37, 'P', 'K'}, wantErr: func(err error) bool { return errors.As(err, &syntax) }},
		{name: "not CloudTrail", data: []byte(`{"configurationItems":[{"resourceType":"AWS::EC2::Instance"}]}`), wantErr: func(err error) bool { return errors.Is(err, ErrNotCloudTrail) }},
		{name: "JSON scalar", data: []byte(`42`), wantErr: func(err error) bool { return errors.Is(err, ErrNotCloudTrail) }},
		{name: "empty array", data: []byte(`[]`), wantErr: func(err error) bool { return errors.Is(err, ErrNotCloudTrail) }},
		{name: "no eventTime", data: []byte(`{"Records":[{"eventSource":"s","eventName":"n"},` + string(good) + `]}`), wantN: 1, wantBad: 1, wantWhy: "no eventTime"},
		{name: "bad eventTime", data: []byte(`{"eventTime":"yesterday","eventSource":"s","eventName":"n"}`), wantBad: 1, wantWhy: "bad eventTime"},
		{name: "no eventName", data: []byte(`{"eventTime":"2024-01-02T03:04:05Z","eventSource":"s"}`), wantBad: 1, wantWhy: "no eventName"},
		{name: "empty Records", data: []byte(`{"Records":[]}`)},
		{name: "record not an object", data: []byte(`{"Records":[1,` + string(good) + `]}`), wantN: 1, wantBad: 1, wantWhy: "record is not an object"},
		{name: "JSON lines with a junk object", data: []byte(string(good) + "\n{\"hello\":1}\n"), wantN: 1, wantBad: 1, wantWhy: "not a CloudTrail record"},
		{name: "JSON lines, syntax error on line 3 keeps lines 1-2", data: []byte(string(good) + "\n" + string(good) + "\n{\"eventTime\":}\n" + string(good) + "\n"),
			wantErr: func(err error) bool { return errors.As(err, &syntax) && syntax.Line == 3 }, wantN: 2},
		{name: "BOM", data: append([]byte("\xef\xbb\xbf"), good...), wantN: 1},
		{name: "array of records", data: []byte(`[` + string(good) + `,` + string(good) + `]`), wantN: 2},
		{name: "lookup-events CloudTrailEvent string", data: []byte(`{"Events":[{"EventId":"a","CloudTrailEvent":` + jsonString(string(good)) + `}]}`), wantN: 1},
		{name: "readOnly string", data: []byte(`{"eventTime":"2024-01-02T03:04:05Z","eventSource":"s","eventName":"n","readOnly":"true"}`), wantN: 1},
		{name: "deep nesting", data: []byte(`{"eventTime":"2024-01-02T03:04:05Z","eventSource":"s","eventName":"n","x":` + strings.Repeat("[", 5000) + strings.Repeat("]", 5000) + `}`), wantN: 1},
		{name: "too deep", data: []byte(`{"x":` + strings.Repeat("[", 20000) + strings.Repeat("]", 20000) + `}`), wantErr: func(err error) bool { return errors.As(err, &syntax) }},
	}
	d := NewDecoder()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ev, st, err := d.Decode(tc.data, nil)
			if tc.wantErr == nil && err != nil || tc.wantErr != nil && !tc.wantErr(err) {
				t.Fatalf("Decode(%.60q) err = %v", tc.data, err)
			}
			if len(ev) != tc.wantN || st.BadRecords != tc.wantBad || st.BadReason != tc.wantWhy {
				t.Errorf("Decode(%.60q) = %d events, stats %+v; want %d events, %d bad (%q)", tc.data, len(ev), st, tc.wantN, tc.wantBad, tc.wantWhy)
			}
			if len(ev) != st.Records-st.BadRecords {
				t.Errorf("%d events, stats %+v", len(ev), st)
			}
		})
	}
}

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

func TestGzipBomb(t *testing.T) {
	d := NewDecoder()
	d.MaxSize = 1 << 20
	bomb := gzipBytes(t, bytes.Repeat([]byte(" "), 4<<20))
	if _, _, err := d.Decode(bomb, nil); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("err = %v, want ErrTooLarge", err)
	}
	// The decoder still works after.
	ev, _, err := d.Decode([]byte(`{"eventTime":"2024-01-02T03:04:05Z","eventSource":"s","eventName":"n"}`), nil)
	if err != nil || len(ev) != 1 {
		t.Fatal(err, ev)
	}
}

// TestHugeSingleLine decodes a 200 MB one-line {"Records":[…]} file, gzip'd.
func TestHugeSingleLine(t *testing.T) {
	if testing.Short() {
		t.Skip("200 MB file")
	}
	one := genRecordsDoc(rand.New(rand.NewPCG(3, 4)), 1000)
	inner := one[len(`{"Records":[`) : len(one)-2]
	var buf bytes.Buffer
	buf.WriteString(`{"Records":[`)
	n := 0
	for buf.Len() < 200<<20 {
		if n > 0 {
			buf.WriteByte(',')
		}
		buf.Write(inner)
		n += 1000
	}
	buf.WriteString("]}")
	path := filepath.Join(t.TempDir(), "big.json.gz")
	if err := os.WriteFile(path, gzipBytes(t, buf.Bytes()), 0o644); err != nil {
		t.Fatal(err)
	}
	size := buf.Len()
	buf = bytes.Buffer{}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	ev, st, err := NewDecoder().Decode(data, nil)
	if err != nil || len(ev) != n || st.Bytes != int64(size) {
		t.Fatalf("err %v, %d events (want %d), stats %+v", err, len(ev), n, st)
	}
}

func TestParseTime(t *testing.T) {
	tests := []struct {
		in   string
		want time.Time
		ok   bool
	}{
		{"2015-08-01T02:10:00Z", time.Date(2015, 8, 1, 2, 10, 0, 0, time.UTC), true},
		{"2024-02-29T23:59:59Z", time.Date(2024, 2, 29, 23, 59, 59, 0, time.UTC), true},
		{"1970-01-01T00:00:00Z", time.Unix(0, 0).UTC(), true},
		{"1969-12-31T23:59:59Z", time.Unix(-1, 0).UTC(), true},
		{"0001-01-01T00:00:00Z", time.Time{}, true},
		{"2400-02-29T00:00:00Z", time.Date(2400, 2, 29, 0, 0, 0, 0, time.UTC), true},
		{"2024-03-04T05:06:07.999Z", time.Date(2024, 3, 4, 5, 6, 7, 0, time.UTC), true},
		{"2024-03-04T07:06:07+02:00", time.Date(2024, 3, 4, 5, 6, 7, 0, time.UTC), true},
		{"2023-02-29T00:00:00Z", time.Time{}, false},
		{"2100-02-29T00:00:00Z", time.Time{}, false},
		{"2024-13-01T00:00:00Z", time.Time{}, false},
		{"2024-01-01T24:00:00Z", time.Time{}, false},
		{"2024-01-01T00:00:60Z", time.Time{}, false},
		{"2024-01-01 00:00:00Z", time.Time{}, false},
		{"", time.Time{}, false},
	}
	for _, tc := range tests {
		got, ok := parseTime([]byte(tc.in))
		if ok != tc.ok || !got.Equal(tc.want) || (ok && got.Location() != time.UTC) {
			t.Errorf("parseTime(%q) = %v, %v; want %v, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
	// The fast path agrees with time.Parse over many dates.
	r := rand.New(rand.NewPCG(1, 1))
	for range 20000 {
		want := time.Unix(r.Int64N(1<<36)-1<<35, 0).UTC()
		if want.Year() < 1 || want.Year() > 9999 {
			continue
		}
		s := want.Format("2006-01-02T15:04:05Z")
		got, ok := parseTime([]byte(s))
		if !ok || !got.Equal(want) {
			t.Fatalf("parseTime(%q) = %v, %v", s, got, ok)
		}
	}
}

// FuzzDecode: no panic; stats consistent with the events; valid JSON is
// never reported as a syntax error; agreement with the reference when both
// succeed on plain input.
func FuzzDecode(f *testing.F) {
	for _, path := range sampleFiles(f) {
		data, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte(`{"Records":[{"eventTime":"2024-01-02T03:04:05Z","eventSource":"s","eventName":"n","readOnly":"true","x":[1,{"a":"\u00e9\ud83d\ude00"}]}]}`))
	f.Add([]byte("{\"eventTime\":\"2024-01-02T03:04:05Z\"}\n{\"detail\":{\"eventTime\":null}}\n[]\n42"))
	d := NewDecoder()
	f.Fuzz(func(t *testing.T, data []byte) {
		ev, st, err := d.Decode(data, nil)
		if len(ev) != st.Records-st.BadRecords || st.BadRecords < 0 || (st.BadRecords > 0) != (st.BadReason != "") {
			t.Fatalf("%d events, stats %+v, err %v", len(ev), st, err)
		}
		gz := len(data) >= 2 && data[0] == 0x1f && data[1] == 0x8b
		bom := bytes.HasPrefix(data, []byte("\xef\xbb\xbf"))
		if gz || bom {
			return
		}
		var se *SyntaxError
		if json.Valid(data) && errors.As(err, &se) {
			t.Fatalf("valid JSON reported as %v", err)
		}
		if err == nil && json.Valid(data) {
			want, wantSt, wantErr := refDecode(data)
			if wantErr == nil && !hasCaseVariantKeys(data) {
				if d := cmp.Diff(want, ev); d != "" {
					t.Fatalf("events (-reference +got):\n%s", d)
				}
				if wantSt != st {
					t.Fatalf("stats %+v, reference %+v", st, wantSt)
				}
			}
		}
	})
}

// hasCaseVariantKeys reports inputs where the reference differs on purpose:
// encoding/json matches struct keys case-insensitively, the reference does
// not read CloudTrailEvent strings, and escapes may spell keys.
func hasCaseVariantKeys(data []byte) bool {
	if bytes.IndexByte(data, '\\') >= 0 || bytes.Contains(data, []byte("CloudTrailEvent")) ||
		bytes.Contains(data, []byte(`"Records"`)) && bytes.Contains(data, []byte(`"Events"`)) {
		return true
	}
	l := bytes.ToLower(data)
	for _, k := range []string{"eventTime", "eventSource", "eventName", "errorCode", "eventType", "eventID", "awsRegion",
		"recipientAccountId", "userAgent", "eventCategory", "readOnly", "managementEvent", "userIdentity", "arn",
		"accountId", "insightDetails", "http"} {
		if bytes.Count(l, bytes.ToLower([]byte(k))) != bytes.Count(data, []byte(k)) {
			return true
		}
	}
	return false
}
