package notify

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"

	"github.com/trailsight/trailsight/internal/s3test"
	"github.com/trailsight/trailsight/stream"
)

// s3Conn returns client options for srv.
func s3Conn(srv *s3test.Server) stream.S3ClientOptions {
	return stream.S3ClientOptions{Endpoint: srv.Endpoint, Region: s3test.Region, Credentials: srv.Credentials()}
}

func newS3(t *testing.T, opt S3Options) *S3 {
	t.Helper()
	n, err := NewS3(context.Background(), opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

// TestS3MatchesFolder: the S3 notifier writes the keys and bytes Folder
// writes, as AWS stores CloudTrail files (application/json, no
// Content-Encoding), and a re-send changes nothing.
func TestS3MatchesFolder(t *testing.T) {
	srv := s3test.Start(t)
	srv.CreateBucket("insights")
	ctx := context.Background()
	for _, opt := range []FolderOptions{
		{},
		{StrictAWS: true, Prefix: "trail/prefix", OrgID: "o-fxozgwu6rc"},
	} {
		dir := t.TempDir()
		f := writeFolder(t, dir, opt, fixture())
		want := tree(t, dir)

		awsLogs := "AWSLogs/"
		if opt.Prefix != "" {
			awsLogs = opt.Prefix + "/AWSLogs/"
		}
		n := newS3(t, S3Options{Bucket: "insights", Prefix: opt.Prefix, OrgID: opt.OrgID, StrictAWS: opt.StrictAWS, Client: s3Conn(srv)})
		for range 2 {
			if err := n.Notify(ctx, fixture()); err != nil {
				t.Fatalf("Notify: %v", err)
			}
		}
		got := srv.Objects("insights", awsLogs)
		if d := cmp.Diff(want, got); d != "" {
			t.Errorf("%+v: S3 objects vs Folder files (-folder +s3):\n%s", opt, d)
		}
		if d := cmp.Diff(f.Keys(), n.Keys()); d != "" {
			t.Errorf("Keys() (-folder +s3):\n%s", d)
		}
		if objs, ev := n.Written(); objs != 2*len(want) || ev != 2*len(fixture()) {
			t.Errorf("Written() = %d, %d; want %d, %d", objs, ev, 2*len(want), 2*len(fixture()))
		}
		head, err := srv.Client().HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("insights"), Key: aws.String(n.Keys()[0])})
		if err != nil {
			t.Fatal(err)
		}
		if ct, ce := aws.ToString(head.ContentType), aws.ToString(head.ContentEncoding); ct != "application/json" || ce != "" {
			t.Errorf("Content-Type %q, Content-Encoding %q; want application/json and none", ct, ce)
		}
	}
}

// TestS3ServerDown: with S3 down, Notify fails with an error that is not
// permanent; once it is back, the same call succeeds.
func TestS3ServerDown(t *testing.T) {
	srv := s3test.Start(t)
	srv.CreateBucket("insights")
	ctx := context.Background()
	conn := s3Conn(srv)
	conn.MaxAttempts = 1
	n := newS3(t, S3Options{Bucket: "insights", Client: conn})
	srv.Stop()
	err := n.Notify(ctx, fixture())
	if err == nil {
		t.Fatal("Notify with S3 down: no error")
	}
	if S3Permanent(err) || !strings.Contains(err.Error(), "more objects not written") {
		t.Errorf("Notify with S3 down: %v; want a retryable error naming what is left", err)
	}
	srv.Restart()
	if err := n.Notify(ctx, fixture()); err != nil {
		t.Fatalf("Notify after restart: %v", err)
	}
	if got := len(srv.Objects("insights", "AWSLogs/")); got != len(n.Keys()) || got == 0 {
		t.Errorf("%d objects after restart, want %d", got, len(n.Keys()))
	}
}

// TestS3Permanent: what retrying cannot fix is marked permanent.
func TestS3Permanent(t *testing.T) {
	srv := s3test.Start(t)
	srv.CreateBucket("insights")
	ctx := context.Background()
	bad := s3Conn(srv)
	bad.Credentials = credentials.NewStaticCredentialsProvider("nobody", "wrong-secret", "")
	for _, c := range []struct {
		name string
		opt  S3Options
	}{
		{"no such bucket", S3Options{Bucket: "missing-bucket", Client: s3Conn(srv)}},
		{"bad credentials", S3Options{Bucket: "insights", Client: bad}},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := newS3(t, c.opt).Notify(ctx, fixture())
			if err == nil || !S3Permanent(err) || !strings.Contains(err.Error(), "(permanent)") {
				t.Errorf("Notify = %v; want a permanent error", err)
			}
		})
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if S3Permanent(cctx.Err()) || S3Permanent(nil) || S3Permanent(errors.New("dial tcp: connection refused")) {
		t.Error("cancellation or a network error counted as permanent")
	}
}

// headerRecorder keeps the headers of each PutObject.
type headerRecorder struct {
	next http.RoundTripper
	mu   sync.Mutex
	puts []http.Header
}

func (h *headerRecorder) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Method == http.MethodPut {
		h.mu.Lock()
		h.puts = append(h.puts, r.Header.Clone())
		h.mu.Unlock()
	}
	return h.next.RoundTrip(r)
}

// TestS3KMS: with KMSKeyID, every PutObject asks for SSE-KMS with that key
// (versitygw's posix backend need not honour it; the request is what we
// check).
func TestS3KMS(t *testing.T) {
	srv := s3test.Start(t)
	srv.CreateBucket("insights")
	rec := &headerRecorder{next: srv.HTTPClient().Transport}
	conn := s3Conn(srv)
	conn.HTTPClient = &http.Client{Transport: rec}
	conn.MaxAttempts = 1
	const key = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
	n := newS3(t, S3Options{Bucket: "insights", KMSKeyID: key, Client: conn})
	err := n.Notify(context.Background(), fixture())
	t.Logf("Notify with SSE-KMS on versitygw: %v", err)
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.puts) == 0 {
		t.Fatal("no PutObject sent")
	}
	for _, h := range rec.puts {
		if h.Get("X-Amz-Server-Side-Encryption") != "aws:kms" || h.Get("X-Amz-Server-Side-Encryption-Aws-Kms-Key-Id") != key {
			t.Errorf("PutObject headers %v: want SSE-KMS with %s", h, key)
		}
		if h.Get("Content-Encoding") != "" || h.Get("Content-Type") != "application/json" {
			t.Errorf("Content-Type %q Content-Encoding %q", h.Get("Content-Type"), h.Get("Content-Encoding"))
		}
	}
}

func TestNewS3Rejects(t *testing.T) {
	for _, opt := range []S3Options{
		{},
		{Bucket: "a/b"},
		{Bucket: "Bad_Bucket"},
		{Bucket: "ok-bucket", Prefix: "../up"},
		{Bucket: "ok-bucket", OrgID: "O-ABC"},
		{Bucket: "ok-bucket", Client: stream.S3ClientOptions{AddressingStyle: "dns"}},
	} {
		if _, err := NewS3(context.Background(), opt); err == nil {
			t.Errorf("NewS3(%+v): no error", opt)
		}
	}
	b, p, err := ParseS3URL("s3://trail-bucket/insights/")
	if b != "trail-bucket" || p != "insights" || err != nil {
		t.Errorf("ParseS3URL = %q, %q, %v", b, p, err)
	}
}

// TestS3NoLeak: Close releases the notifier's connections.
func TestS3NoLeak(t *testing.T) {
	srv := s3test.Start(t)
	srv.CreateBucket("insights")
	t.Run("notify and close", func(t *testing.T) {
		defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
		n, err := NewS3(context.Background(), S3Options{Bucket: "insights", Client: s3Conn(srv)})
		if err != nil {
			t.Fatal(err)
		}
		if err := n.Notify(context.Background(), fixture()); err != nil {
			t.Fatal(err)
		}
		if err := n.Close(); err != nil {
			t.Fatal(err)
		}
	})
}
