package detector

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/klauspost/compress/gzip"
)

func TestReadInsights(t *testing.T) {
	// AWS's own samples, as single files.
	for _, name := range []string{
		"awsdocs-cloudtrail-user-guide/log-file-example-with-insights.json",
		"awsdocs-cloudtrail-user-guide/lookup-events-insight-output.json",
	} {
		got, errs, err := ReadInsights(filepath.Join(samplesDir, name))
		if err != nil || len(errs) > 0 || len(got) != 2 {
			t.Errorf("ReadInsights(%s) = %d insights, %v, %v; want 2", name, len(got), errs, err)
		}
	}

	// A folder: gzip'd Records in the layout, JSON lines, a broken file,
	// files that are not insights, a hidden temporary file, a sibling
	// CloudTrail folder, an empty file.
	sample, err := os.ReadFile(filepath.Join(samplesDir, "awsdocs-cloudtrail-user-guide/log-file-example-with-insights.json"))
	if err != nil {
		t.Fatal(err)
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(sample)
	zw.Close()
	ins, err := ParseInsights(sample)
	if err != nil {
		t.Fatal(err)
	}
	var lines []byte
	for _, in := range ins {
		b, err := in.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		lines = append(append(lines, b...), '\n')
	}
	dir := t.TempDir()
	for name, body := range map[string][]byte{
		"AWSLogs/123456789012/CloudTrail-Insight/us-east-1/2019/11/14/a.json.gz": gz.Bytes(),
		"AWSLogs/123456789012/CloudTrail/us-east-1/2019/11/14/b.json":            []byte(`{"Records":[{"eventType":"AwsApiCall"}]}`),
		"AWSLogs/123456789012/CloudTrail-Insight/.trailsight-1.tmp":              []byte("partial"),
		"more.jsonl":  lines,
		"broken.json": []byte(`{"Records":[{"eventType":`),
		"notes.txt":   []byte("not insights"),
		"bad.json.gz": {0x1f, 0x8b, 1, 2, 3},
	} {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, body, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, errs, err := ReadInsights(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 4 {
		t.Errorf("ReadInsights(dir) = %d insights, want 4", len(got))
	}
	if len(errs) != 2 {
		t.Errorf("ReadInsights(dir) errors = %v, want broken.json and bad.json.gz", errs)
	}
	for _, e := range errs {
		if !strings.Contains(e.Error(), dir) {
			t.Errorf("error %q does not name the file", e)
		}
	}
	if _, _, err := ReadInsights(filepath.Join(dir, "absent")); err == nil {
		t.Error("ReadInsights(absent) succeeded")
	}
}
