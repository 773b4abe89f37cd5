package stream

import (
	"bufio"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func utc(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

// TestClassifyObservedKeys classifies every real key of s3-keys-observed.txt.
func TestClassifyObservedKeys(t *testing.T) {
	type want struct {
		reason, account, region string
		delivery                time.Time
	}
	// By the key's distinctive part.
	wants := map[string]want{
		"elb-Core-mydevacct1-alb/AWSLogs/123456789012/ELBAccessLogTestFile":                                     {reason: "elasticloadbalancing"},
		"elb-Public-Prod-perimeter-alb/AWSLogs/123456789013/ELBAccessLogTestFile":                               {reason: "elasticloadbalancing"},
		"_vpcflowlogs_us-east-1_fl-04af3543c74402594_20200831T1720Z_73d3922a.log.gz":                            {reason: "vpcflowlogs"},
		"294c9171-4867-3774-9756-f6f6c209616f.jsonl.gz":                                                         {reason: "GuardDuty"},
		"_ConfigSnapshot_20200830T193058Z_5d173149-e6d0-41e4-af7f-031ff736f8c8.json.gz":                         {reason: "Config"},
		"_20200831T011226Z_20200831T025845Z_1.json.gz":                                                          {reason: "Config"},
		"123456789015_CloudTrail-Insight_ca-central-1_20200923T0516Z_KL5e9VCV2SS7IqzB.json.gz":                  {reason: "CloudTrail-Insight"},
		"123456789016_CloudTrail-Digest_ca-central-1_PBMMAccel-Org-Trail_ca-central-1_20200830T190938Z.json.gz": {reason: "CloudTrail-Digest"},
		"123456789016_CloudTrail_ca-central-1_20200830T0115Z_3YQJxwt5qUaOzMtL.json.gz":                          {"", "123456789016", "ca-central-1", utc("2020-08-30T01:15:00Z")},
		"677301038893_CloudTrail_us-east-1_20220720T2055Z_bKEClmebTDFnAir3.json.gz":                             {"", "677301038893", "us-east-1", utc("2022-07-20T20:55:00Z")},
		"677301038893_CloudTrail_us-east-1_20220720T2100Z_brwkiR6Y4j5b2wEb.json.gz":                             {"", "677301038893", "us-east-1", utc("2022-07-20T21:00:00Z")},
		"677301038893_CloudTrail_us-east-1_20220720T2105Z_JqHqLrZvPApKmvPh.json.gz":                             {"", "677301038893", "us-east-1", utc("2022-07-20T21:05:00Z")},
		"677301038893_CloudTrail_us-east-1_20220720T2110Z_4MMvf98Epljqm8kJ.json.gz":                             {"", "677301038893", "us-east-1", utc("2022-07-20T21:10:00Z")},
		"677301038893_CloudTrail_us-east-1_20220720T2115Z_aLSDUJVcYNrq2mYa.json.gz":                             {"", "677301038893", "us-east-1", utc("2022-07-20T21:15:00Z")},
	}
	f, err := os.Open(filepath.Join(samplesDir, "s3-keys-observed.txt"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	seen := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		key := strings.TrimSpace(sc.Text())
		if key == "" || strings.HasPrefix(key, "#") {
			continue
		}
		var w want
		found := false
		for part, ww := range wants {
			if strings.HasSuffix(key, part) {
				w, found = ww, true
			}
		}
		if !found {
			t.Errorf("no expectation for key %s", key)
			continue
		}
		seen++
		got, reason := ClassifyKey(key)
		if reason != w.reason || got.Account != w.account || got.Region != w.region || !got.Delivery.Equal(w.delivery) {
			t.Errorf("ClassifyKey(%s) = %+v, %q; want %+v", key, got, reason, w)
		}
	}
	if seen != len(wants) {
		t.Errorf("classified %d keys, want %d", seen, len(wants))
	}
}

func TestClassifyKey(t *testing.T) {
	tests := []struct {
		key, reason, account, region string
		delivery, day                time.Time
	}{
		{key: "AWSLogs/111122223333/CloudTrail/us-east-2/2015/08/01/111122223333_CloudTrail_us-east-2_20150801T0210Z_Mu0KsOhtH1ar15ZZ.json.gz",
			account: "111122223333", region: "us-east-2", delivery: utc("2015-08-01T02:10:00Z"), day: utc("2015-08-01T00:00:00Z")},
		{key: "prefix/AWSLogs/o-abc123/111122223333/CloudTrail/eu-west-1/2024/01/02/x.json", account: "111122223333", region: "eu-west-1", day: utc("2024-01-02T00:00:00Z")},
		{key: "AWSLogs/111122223333/CloudTrail-NetworkActivity/us-east-1/2024/01/02/f.json.gz", reason: "CloudTrail-NetworkActivity"},
		{key: "AWSLogs/111122223333/CloudTrail-Aggregated/us-east-1/2024/01/02/f.json.gz", reason: "CloudTrail-Aggregated"},
		{key: "AWSLogs/111122223333/CloudTrail/us-east-1/2024/01/02/.DS_Store", reason: SkipHidden},
		{key: "AWSLogs/111122223333/CloudTrail/us-east-1/2024/01/02/notes.txt", reason: SkipNotJSON},
		{key: "dump/events.jsonl"},
		{key: "dump/2024/05/06/events", day: utc("2024-05-06T00:00:00Z")},
		{key: "dump/events.csv", reason: SkipNotJSON},
		{key: "dump/111122223333_CloudTrail-Digest_us-east-1_trail_us-east-1_20240101T000000Z.json.gz", reason: "CloudTrail-Digest"},
		{key: "dump/111122223333_CloudTrail_us-east-1_20240101T0005Z_abc.json.gz", account: "111122223333", region: "us-east-1", delivery: utc("2024-01-01T00:05:00Z")},
		{key: "Thumbs.db", reason: SkipHidden},
	}
	for _, tc := range tests {
		f, reason := ClassifyKey(tc.key)
		if reason != tc.reason || f.Account != tc.account || f.Region != tc.region || !f.Delivery.Equal(tc.delivery) || !f.Day.Equal(tc.day) {
			t.Errorf("ClassifyKey(%s) = %+v, %q; want %q %s %s %v %v", tc.key, f, reason, tc.reason, tc.account, tc.region, tc.delivery, tc.day)
		}
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestListDir(t *testing.T) {
	root := t.TempDir()
	ct := filepath.Join(root, "bucket", "AWSLogs", "111122223333", "CloudTrail", "us-east-1", "2024", "01")
	files := []string{
		filepath.Join(ct, "02", "111122223333_CloudTrail_us-east-1_20240102T0010Z_b.json.gz"),
		filepath.Join(ct, "02", "111122223333_CloudTrail_us-east-1_20240102T0005Z_z.json.gz"),
		filepath.Join(ct, "01", "111122223333_CloudTrail_us-east-1_20240101T2355Z_a.json.gz"),
		filepath.Join(ct, "05", "111122223333_CloudTrail_us-east-1_20240105T0000Z_late.json.gz"),
		filepath.Join(root, "bucket", "AWSLogs", "o-x1", "444455556666", "CloudTrail", "eu-west-1", "2024", "01", "02", "444455556666_CloudTrail_eu-west-1_20240102T0005Z_a.json.gz"),
		filepath.Join(root, "loose", "a.json"),
		filepath.Join(root, "loose", "b"),
	}
	for _, f := range files {
		writeFile(t, f, "{}")
	}
	skippedFiles := map[string]string{
		filepath.Join(root, "bucket", "AWSLogs", "111122223333", "CloudTrail-Digest", "us-east-1", "2024", "01", "02", "d1.json.gz"): "CloudTrail-Digest",
		filepath.Join(root, "bucket", "AWSLogs", "111122223333", "CloudTrail-Digest", "us-east-1", "2024", "01", "02", "d2.json.gz"): "CloudTrail-Digest",
		filepath.Join(root, "bucket", "AWSLogs", "111122223333", "Config", "us-east-1", "2024", "1", "2", "c.json.gz"):               "Config",
		filepath.Join(ct, "02", ".DS_Store"):             SkipHidden,
		filepath.Join(root, "loose", "README.md"):        SkipNotJSON,
		filepath.Join(root, ".git", "objects", "x", "y"): SkipHidden,
	}
	for f := range skippedFiles {
		writeFile(t, f, "x")
	}

	got, skipped, err := ListDir(root, time.Time{}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	var paths []string
	for _, f := range got {
		paths = append(paths, strings.TrimPrefix(filepath.ToSlash(f.Path), filepath.ToSlash(root)+"/"))
	}
	wantPaths := []string{
		"bucket/AWSLogs/111122223333/CloudTrail/us-east-1/2024/01/01/111122223333_CloudTrail_us-east-1_20240101T2355Z_a.json.gz",
		"bucket/AWSLogs/111122223333/CloudTrail/us-east-1/2024/01/02/111122223333_CloudTrail_us-east-1_20240102T0005Z_z.json.gz",
		"bucket/AWSLogs/o-x1/444455556666/CloudTrail/eu-west-1/2024/01/02/444455556666_CloudTrail_eu-west-1_20240102T0005Z_a.json.gz",
		"bucket/AWSLogs/111122223333/CloudTrail/us-east-1/2024/01/02/111122223333_CloudTrail_us-east-1_20240102T0010Z_b.json.gz",
		"bucket/AWSLogs/111122223333/CloudTrail/us-east-1/2024/01/05/111122223333_CloudTrail_us-east-1_20240105T0000Z_late.json.gz",
		// loose/a.json and loose/b lie beside the AWSLogs/ tree: skipped.
	}
	if d := cmp.Diff(wantPaths, paths); d != "" {
		t.Errorf("ListDir order (-want +got):\n%s", d)
	}
	wantSkipped := map[string]int{"CloudTrail-Digest": 2, "Config": 1, SkipHidden: 2, SkipNotJSON: 1, SkipOutside: 2}
	if d := cmp.Diff(wantSkipped, skipped); d != "" {
		t.Errorf("skipped (-want +got):\n%s", d)
	}
	if got[2].Account != "444455556666" || got[2].Region != "eu-west-1" || got[0].Size != 2 {
		t.Errorf("file fields: %+v", got[2])
	}

	// from/to: the day of from, to plus a day of slack.
	got, skipped, err = ListDir(root, utc("2024-01-02T12:00:00Z"), utc("2024-01-03T00:00:00Z"))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || skipped[SkipOutOfRange] != 2 {
		t.Errorf("with from/to: %d files, skipped %v", len(got), skipped)
	}

	// A single file is returned as is.
	one, _, err := ListDir(files[0], time.Time{}, time.Time{})
	if err != nil || len(one) != 1 || one[0].Path != files[0] || one[0].Account != "111122223333" {
		t.Errorf("single file: %+v %v", one, err)
	}
	if _, _, err := ListDir(filepath.Join(root, "missing"), time.Time{}, time.Time{}); err == nil {
		t.Error("missing root: no error")
	}
}

// FuzzClassifyKey: no panic; a read file never has a skip reason, and
// Delivery, when set, is a whole minute or second in UTC.
func FuzzClassifyKey(f *testing.F) {
	f.Add("AWSLogs/111122223333/CloudTrail/us-east-2/2015/08/01/111122223333_CloudTrail_us-east-2_20150801T0210Z_Mu0KsOhtH1ar15ZZ.json.gz")
	f.Add("b/AWSLogs/o-x/1/CloudTrail-Digest/r/2020/8/30/1_CloudTrail-Digest_r_t_r_20200830T190938Z.json.gz")
	f.Add("AWSLogs/1/ELBAccessLogTestFile")
	f.Add("x/.hidden/2024/13/40/a")
	f.Fuzz(func(t *testing.T, key string) {
		file, reason := ClassifyKey(key)
		if file.Path != key {
			t.Fatalf("Path %q", file.Path)
		}
		if !file.Delivery.IsZero() && (file.Delivery.Location() != time.UTC || file.Delivery.Nanosecond() != 0) {
			t.Fatalf("Delivery %v", file.Delivery)
		}
		_ = reason
	})
}

func TestListDirSkipsFilesBesideAWSLogs(t *testing.T) {
	root := t.TempDir()
	key := "AWSLogs/111122223333/CloudTrail/us-east-1/2026/03/02/111122223333_CloudTrail_us-east-1_20260302T0005Z_abcdefghijklmnop.json.gz"
	for _, p := range []string{key, "labels.json", "notes/export.json"} {
		full := filepath.Join(root, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte("{}"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	files, skipped, err := ListDir(root, time.Time{}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 1 || !strings.HasSuffix(filepath.ToSlash(files[0].Path), key) || skipped[SkipOutside] != 2 {
		t.Errorf("ListDir = %v, skipped %v; want only the AWSLogs file and 2 skipped %s", files, skipped, SkipOutside)
	}
}
