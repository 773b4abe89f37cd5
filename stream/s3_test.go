package stream

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/google/go-cmp/cmp"

	"github.com/trailsight/trailsight/internal/s3test"
)

// listCall is one ListObjectsV2 request seen on the wire.
type listCall struct{ prefix, delimiter string }

// countingTransport records every ListObjectsV2 request it carries.
type countingTransport struct {
	next http.RoundTripper
	mu   sync.Mutex
	list []listCall
	gets int
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	q := r.URL.Query()
	c.mu.Lock()
	switch {
	case r.Method == http.MethodGet && q.Get("list-type") == "2":
		c.list = append(c.list, listCall{q.Get("prefix"), q.Get("delimiter")})
	case r.Method == http.MethodGet:
		c.gets++
	}
	c.mu.Unlock()
	return c.next.RoundTrip(r)
}

func (c *countingTransport) calls() []listCall {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := slices.Clone(c.list)
	slices.SortFunc(out, func(a, b listCall) int { return strings.Compare(a.prefix, b.prefix) })
	c.list = nil
	return out
}

// s3Archive returns a small trail archive, key → bytes: two accounts (one
// through an organisation trail), two regions, five days, a digest folder,
// a hidden file, and a labels.json beside AWSLogs/.
func s3Archive(t testing.TB, perFile int) map[string][]byte {
	r := rand.New(rand.NewPCG(1, 2))
	doc := func() []byte { return gzipBytes(t, genRecordsDoc(r, perFile)) }
	ct := func(org, acct, region, day, hhmm, u string) string {
		d := strings.ReplaceAll(day, "-", "/")
		p := "AWSLogs/"
		if org != "" {
			p += org + "/"
		}
		return fmt.Sprintf("%s%s/CloudTrail/%s/%s/%s_CloudTrail_%s_%sT%sZ_%s.json.gz",
			p, acct, region, d, acct, region, strings.ReplaceAll(day, "-", ""), hhmm, u)
	}
	files := map[string][]byte{}
	for _, day := range []string{"2023-12-31", "2024-03-03", "2024-03-04", "2024-03-05", "2024-03-10"} {
		for _, hhmm := range []string{"0005", "1210", "2355"} {
			files[ct("", "111122223333", "us-east-1", day, hhmm, "AbCdEfGhIjKlMnOp")] = doc()
			files[ct("", "111122223333", "eu-west-1", day, hhmm, "QrStUvWxYz012345")] = doc()
			files[ct("o-abc123def4", "444455556666", "us-east-1", day, hhmm, "zz0011223344aabb")] = doc()
		}
	}
	for _, h := range []string{"05", "06"} {
		files["AWSLogs/111122223333/CloudTrail-Digest/us-east-1/2024/03/04/111122223333_CloudTrail-Digest_us-east-1_trail_us-east-1_20240304T"+h+"0000Z.json.gz"] = []byte("{}")
	}
	files["AWSLogs/111122223333/CloudTrail/us-east-1/2024/03/04/.DS_Store"] = []byte("x")
	files["labels.json"] = []byte(`{"scenarios":[]}`)
	return files
}

// s3Fixture writes files under a local folder and into bucket "trail" under
// prefix, and returns the server, the folder and a client whose list calls
// are counted.
func s3Fixture(t *testing.T, files map[string][]byte, prefix string) (*s3test.Server, string, *s3.Client, *countingTransport) {
	t.Helper()
	srv := s3test.Start(t)
	srv.CreateBucket("trail")
	root := t.TempDir()
	for k, b := range files {
		p := filepath.Join(root, filepath.FromSlash(k))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		srv.Put("trail", strings.TrimPrefix(prefix+"/"+k, "/"), b)
	}
	ct := &countingTransport{next: srv.HTTPClient().Transport}
	client := srv.Client(func(o *s3.Options) { o.HTTPClient = &http.Client{Transport: ct} })
	return srv, root, client, ct
}

// asKeys turns ListDir's files into what ListS3 returns for the same
// objects under prefix: Path as the key.
func asKeys(files []File, root, prefix string) []File {
	out := slices.Clone(files)
	for i := range out {
		rel := strings.TrimPrefix(filepath.ToSlash(out[i].Path), filepath.ToSlash(root)+"/")
		out[i].Path = strings.TrimPrefix(prefix+"/"+rel, "/")
	}
	return out
}

func TestListS3MatchesListDir(t *testing.T) {
	files := s3Archive(t, 3)
	_, root, client, ct := s3Fixture(t, files, "some/trail")
	ctx := context.Background()

	for _, c := range []struct {
		name     string
		from, to time.Time
		// ListS3 counts a sibling folder (CloudTrail-Digest) once, where
		// ListDir counts its files; out-of-range files only in the day
		// folders it lists.
		fixSkipped func(map[string]int)
		// wantDays are the only day folders listed; nil: walk years,
		// months and days.
		wantDays []string
	}{
		{name: "unbounded", fixSkipped: func(m map[string]int) { m["CloudTrail-Digest"] = 1 }},
		{name: "from-to", from: utc("2024-03-04T06:00:00Z"), to: utc("2024-03-04T12:00:00Z"),
			fixSkipped: func(m map[string]int) {
				m["CloudTrail-Digest"] = 1
				m[SkipOutOfRange] = 2 * 3 // 2024-03-05 12:10 and 23:55 are a day past to, in 3 regions
			},
			wantDays: []string{"2024/03/04/", "2024/03/05/"}},
		{name: "from only", from: utc("2024-03-05T00:00:00Z"),
			fixSkipped: func(m map[string]int) {
				m["CloudTrail-Digest"] = 1
				delete(m, SkipOutOfRange)
				delete(m, SkipHidden) // in 2024/03/04/, not listed
			}},
	} {
		t.Run(c.name, func(t *testing.T) {
			want, wantSkipped, err := ListDir(root, c.from, c.to)
			if err != nil {
				t.Fatal(err)
			}
			want = asKeys(want, root, "some/trail")
			c.fixSkipped(wantSkipped)
			ct.calls()
			got, skipped, err := ListS3(ctx, client, "trail", "some/trail", c.from, c.to)
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(want, got); d != "" {
				t.Errorf("ListS3 vs ListDir (-dir +s3):\n%s", d)
			}
			if d := cmp.Diff(wantSkipped, skipped); d != "" {
				t.Errorf("skipped (-want +got):\n%s", d)
			}
			calls := ct.calls()
			for _, lc := range calls {
				if lc.delimiter != "/" {
					t.Errorf("flat listing of %q (delimiter %q)", lc.prefix, lc.delimiter)
				}
				if strings.Contains(lc.prefix, "CloudTrail-Digest") || strings.Contains(lc.prefix, "labels") {
					t.Errorf("listed %q: not a CloudTrail folder", lc.prefix)
				}
			}
			if c.wantDays != nil {
				var deep []string
				for _, lc := range calls {
					if strings.Contains(lc.prefix, "/CloudTrail/") && strings.Count(lc.prefix[strings.Index(lc.prefix, "/CloudTrail/"):], "/") > 3 {
						deep = append(deep, lc.prefix)
					}
				}
				// 3 regions (2 accounts) × the needed days, and nothing else
				// below the region folders.
				var wantDeep []string
				for _, reg := range []string{
					"some/trail/AWSLogs/111122223333/CloudTrail/eu-west-1/",
					"some/trail/AWSLogs/111122223333/CloudTrail/us-east-1/",
					"some/trail/AWSLogs/o-abc123def4/444455556666/CloudTrail/us-east-1/",
				} {
					for _, d := range c.wantDays {
						wantDeep = append(wantDeep, reg+d)
					}
				}
				if d := cmp.Diff(wantDeep, deep); d != "" {
					t.Errorf("date folders listed (-want +got):\n%s", d)
				}
			}
			t.Logf("%d files, %d ListObjectsV2 calls", len(got), len(calls))
		})
	}
}

// TestListS3Prefixes: the prefix may be the bucket root, a folder inside
// AWSLogs/, or a folder of loose JSON files (walked whole).
func TestListS3Prefixes(t *testing.T) {
	files := s3Archive(t, 1)
	files["loose/a.json"] = []byte("{}")
	files["loose/sub/b.json.gz"] = gzipBytes(t, []byte("{}"))
	files["loose/README.md"] = []byte("x")
	_, root, client, ct := s3Fixture(t, files, "")
	ctx := context.Background()
	for _, c := range []struct {
		prefix string
		fix    func(map[string]int)
	}{
		{"", func(m map[string]int) { // the bucket root
			m["CloudTrail-Digest"] = 1
			m[SkipOutside] = 1 + 1 // labels.json, and the loose/ folder once
			delete(m, SkipNotJSON) // loose/README.md, not listed
		}},
		{"/AWSLogs/111122223333/", func(m map[string]int) { m["CloudTrail-Digest"] = 1 }},
		{"AWSLogs/o-abc123def4", func(map[string]int) {}},
		{"AWSLogs/111122223333/CloudTrail/eu-west-1/2024", func(map[string]int) {}},
		{"loose", func(map[string]int) {}},
	} {
		t.Run(c.prefix, func(t *testing.T) {
			dir := filepath.Join(root, filepath.FromSlash(strings.Trim(c.prefix, "/")))
			want, wantSkipped, err := ListDir(dir, time.Time{}, time.Time{})
			if err != nil {
				t.Fatal(err)
			}
			want = asKeys(want, root, "")
			c.fix(wantSkipped)
			got, skipped, err := ListS3(ctx, client, "trail", c.prefix, time.Time{}, time.Time{})
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(want, got); d != "" {
				t.Errorf("ListS3 vs ListDir (-dir +s3):\n%s", d)
			}
			if d := cmp.Diff(wantSkipped, skipped); d != "" {
				t.Errorf("skipped (-want +got):\n%s", d)
			}
			for _, lc := range ct.calls() {
				if lc.delimiter != "/" {
					t.Errorf("flat listing of %q", lc.prefix)
				}
			}
		})
	}
	key := "AWSLogs/111122223333/CloudTrail/eu-west-1/2024/03/04/111122223333_CloudTrail_eu-west-1_20240304T0005Z_QrStUvWxYz012345.json.gz"
	one, _, err := ListS3(ctx, client, "trail", key, time.Time{}, time.Time{})
	if err != nil || len(one) != 1 || one[0].Path != key || one[0].Account != "111122223333" || one[0].Size != int64(len(files[key])) {
		t.Errorf("single object: %+v, %v", one, err)
	}
	if none, _, err := ListS3(ctx, client, "trail", "nothing/here", time.Time{}, time.Time{}); err != nil || len(none) != 0 {
		t.Errorf("empty prefix: %+v, %v", none, err)
	}
	if _, _, err := ListS3(ctx, client, "no-such-bucket", "", time.Time{}, time.Time{}); err == nil || !strings.Contains(err.Error(), "no-such-bucket") {
		t.Errorf("missing bucket: err = %v", err)
	}
}

// decodeAll runs DecodeFiles and returns every event in order.
func decodeAll(t testing.TB, files []File, open func(File) (io.ReadCloser, error), workers int) ([]Event, int) {
	t.Helper()
	out := make(chan Batch, 8)
	errc := make(chan error, 1)
	go func() { errc <- DecodeFiles(context.Background(), files, open, workers, out); close(out) }()
	var evs []Event
	failed := 0
	for b := range out {
		if b.Err != nil {
			failed++
		}
		evs = append(evs, b.Events...)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	return evs, failed
}

// TestS3DecodeMatchesDir: DecodeFiles through S3Opener gives the same
// events as through OpenFile, and logs both throughputs.
func TestS3DecodeMatchesDir(t *testing.T) {
	files := s3Archive(t, 200)
	srv, root, _, _ := s3Fixture(t, files, "p")
	client := srv.Client()
	ctx := context.Background()

	t0 := time.Now()
	dirFiles, _, err := ListDir(root, time.Time{}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	want, wantFailed := decodeAll(t, dirFiles, OpenFile, 4)
	dirTime := time.Since(t0)

	t0 = time.Now()
	s3Files, _, err := ListS3(ctx, client, "trail", "p", time.Time{}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	listTime := time.Since(t0)
	got, failed := decodeAll(t, s3Files, S3Opener(client, "trail"), 4)
	s3Time := time.Since(t0)

	if len(want) == 0 || wantFailed != 0 || failed != 0 {
		t.Fatalf("%d events, %d/%d failed files", len(want), wantFailed, failed)
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("events via S3 differ from the folder's (-dir +s3):\n%s", d)
	}
	var bytes int64
	for _, f := range s3Files {
		bytes += f.Size
	}
	t.Logf("%d files, %d events, %.1f MB gzip: folder %v (%.0f events/s); S3 list %v, list+get+decode %v (%.0f events/s, %.2f× the folder's time)",
		len(s3Files), len(got), float64(bytes)/1e6, dirTime.Round(time.Millisecond), float64(len(want))/dirTime.Seconds(),
		listTime.Round(time.Millisecond), s3Time.Round(time.Millisecond), float64(len(got))/s3Time.Seconds(), s3Time.Seconds()/dirTime.Seconds())

	if _, err := S3Opener(client, "trail")(File{Path: "p/missing.json"}); err == nil || !strings.Contains(err.Error(), "p/missing.json") {
		t.Errorf("open missing key: err = %v", err)
	}
}

func TestParseS3URL(t *testing.T) {
	for _, c := range []struct {
		in             string
		bucket, prefix string
		bad            bool
	}{
		{in: "s3://my-trail-bucket", bucket: "my-trail-bucket"},
		{in: "s3://my-trail-bucket/", bucket: "my-trail-bucket"},
		{in: "s3://my.bucket/AWSLogs/o-abc/", bucket: "my.bucket", prefix: "AWSLogs/o-abc"},
		{in: "s3://b12/a/b/c", bucket: "b12", prefix: "a/b/c"},
		{in: "s3:/bucket", bad: true},
		{in: "https://bucket/x", bad: true},
		{in: "s3://", bad: true},
		{in: "s3://ab", bad: true},
		{in: "s3://Upper/x", bad: true},
		{in: "s3://-bucket", bad: true},
		{in: "s3://a..b", bad: true},
		{in: "s3://bucket/a//b", bad: true},
		{in: "s3://bucket/a/../b", bad: true},
	} {
		b, p, err := ParseS3URL(c.in)
		if (err != nil) != c.bad || b != c.bucket || p != c.prefix {
			t.Errorf("ParseS3URL(%q) = %q, %q, %v; want %q, %q, error %v", c.in, b, p, err, c.bucket, c.prefix, c.bad)
		}
	}
}

func TestNewS3ClientEndpoint(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		name      string
		env       map[string]string
		opt       S3ClientOptions
		endpoint  string
		pathStyle bool
		bad       bool
	}{
		{name: "aws", endpoint: ""},
		{name: "option", opt: S3ClientOptions{Endpoint: "http://127.0.0.1:9000"}, endpoint: "http://127.0.0.1:9000", pathStyle: true},
		{name: "option virtual", opt: S3ClientOptions{Endpoint: "http://127.0.0.1:9000", AddressingStyle: "virtual"}, endpoint: "http://127.0.0.1:9000"},
		{name: "env s3 first", env: map[string]string{"AWS_ENDPOINT_URL_S3": "http://127.0.0.1:1", "AWS_ENDPOINT_URL": "http://127.0.0.1:2"}, endpoint: "http://127.0.0.1:1", pathStyle: true},
		{name: "env", env: map[string]string{"AWS_ENDPOINT_URL": "http://127.0.0.1:2"}, endpoint: "http://127.0.0.1:2", pathStyle: true},
		{name: "env ignored", env: map[string]string{"AWS_ENDPOINT_URL": "http://127.0.0.1:2", "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS": "true"}},
		{name: "path on aws", opt: S3ClientOptions{AddressingStyle: "path"}, pathStyle: true},
		{name: "bad style", opt: S3ClientOptions{AddressingStyle: "dns"}, bad: true},
		{name: "bad endpoint", opt: S3ClientOptions{Endpoint: "127.0.0.1:9000"}, bad: true},
	} {
		t.Run(c.name, func(t *testing.T) {
			for _, k := range []string{"AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL", "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS"} {
				t.Setenv(k, c.env[k])
			}
			cl, err := NewS3Client(ctx, c.opt)
			if c.bad {
				if err == nil {
					t.Error("no error")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			o := cl.Options()
			var ep string
			if o.BaseEndpoint != nil {
				ep = *o.BaseEndpoint
			}
			if ep != c.endpoint || o.UsePathStyle != c.pathStyle || o.Region == "" {
				t.Errorf("endpoint %q path-style %v region %q; want %q %v", ep, o.UsePathStyle, o.Region, c.endpoint, c.pathStyle)
			}
		})
	}
}

// BenchmarkSourceS3 compares listing, reading and decoding the same
// archive from a folder and from S3 (versitygw on 127.0.0.1, so the
// network costs little; a real bucket adds latency that more DecodeFiles
// workers hide).
func BenchmarkSourceS3(b *testing.B) {
	files := s3Archive(b, 500)
	srv := s3test.Start(b)
	srv.CreateBucket("trail")
	root := b.TempDir()
	for k, body := range files {
		p := filepath.Join(root, filepath.FromSlash(k))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(p, body, 0o644); err != nil {
			b.Fatal(err)
		}
		srv.Put("trail", k, body)
	}
	client := srv.Client()
	ctx := context.Background()
	run := func(b *testing.B, list func() ([]File, error), open func(File) (io.ReadCloser, error), workers int) {
		events := 0
		for b.Loop() {
			fs, err := list()
			if err != nil {
				b.Fatal(err)
			}
			evs, failed := decodeAll(b, fs, open, workers)
			if failed != 0 {
				b.Fatalf("%d files failed", failed)
			}
			events = len(evs)
		}
		b.ReportMetric(float64(events)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
	}
	dirList := func() ([]File, error) { fs, _, err := ListDir(root, time.Time{}, time.Time{}); return fs, err }
	s3List := func() ([]File, error) {
		fs, _, err := ListS3(ctx, client, "trail", "", time.Time{}, time.Time{})
		return fs, err
	}
	b.Run("folder", func(b *testing.B) { run(b, dirList, OpenFile, 0) })
	b.Run("s3", func(b *testing.B) { run(b, s3List, S3Opener(client, "trail"), 0) })
	b.Run("s3-8-workers", func(b *testing.B) { run(b, s3List, S3Opener(client, "trail"), 8) })
	b.Run("s3-list-only", func(b *testing.B) {
		for b.Loop() {
			if _, err := s3List(); err != nil {
				b.Fatal(err)
			}
		}
	})
}
