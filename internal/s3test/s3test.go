// Package s3test runs a real S3 server, versitygw (github.com/versity/
// versitygw, posix backend), on 127.0.0.1 for tests: stream's S3 source,
// notify's S3 notifier and the command line's end-to-end tests.
//
// The binary is looked up on PATH, then in $GOBIN and $GOPATH/bin (`make
// test` installs it there). When it is missing, Start skips the test, except
// when the environment has CI=true: there a missing server is a failure.
// The package imports nothing of trailsight's, so that any package's tests
// may use it.
package s3test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"go/build"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// Version is the versitygw release the tests are written against;
// `make test` installs it with
// go install github.com/versity/versitygw/cmd/versitygw@<Version>.
const Version = "v1.8.0"

// Region is the region the server answers for.
const Region = "us-east-1"

// Server is a running versitygw. Its methods must be called from the
// test's goroutine (they call t.Fatal).
type Server struct {
	// Endpoint is the server's URL, http://127.0.0.1:<port>.
	Endpoint string
	// AccessKey and SecretKey are the root credentials, random per server.
	AccessKey, SecretKey string
	// Dir is the posix backend's root: one folder per bucket.
	Dir string

	t    testing.TB
	bin  string
	addr string
	hc   *http.Client

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has exited
	out  *bytes.Buffer // the server's combined output
}

// Binary returns the path of the versitygw binary, or "" when it is
// neither on PATH nor in $GOBIN or $GOPATH/bin.
func Binary() string {
	if p, err := exec.LookPath("versitygw"); err == nil {
		return p
	}
	if gobin := os.Getenv("GOBIN"); gobin != "" {
		p := filepath.Join(gobin, "versitygw")
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() {
			return p
		}
	}
	for _, dir := range filepath.SplitList(build.Default.GOPATH) {
		p := filepath.Join(dir, "bin", "versitygw")
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() {
			return p
		}
	}
	return ""
}

// Start starts a server on a free port of 127.0.0.1 with a fresh temporary
// folder and random root credentials, waits until it answers, and stops it
// when the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	bin := Binary()
	if bin == "" {
		msg := "versitygw not found on PATH or in $GOPATH/bin; install it with: go install github.com/versity/versitygw/cmd/versitygw@" + Version
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	s := &Server{
		AccessKey: randomHex(t, 10),
		SecretKey: randomHex(t, 20),
		Dir:       t.TempDir(),
		t:         t,
		bin:       bin,
		hc:        &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()},
	}
	t.Cleanup(func() {
		s.stop()
		s.hc.CloseIdleConnections()
	})
	var err error
	for range 3 { // the free port may be taken between probe and start
		var port int
		if port, err = freePort(); err != nil {
			continue
		}
		s.addr = "127.0.0.1:" + strconv.Itoa(port)
		s.Endpoint = "http://" + s.addr
		if err = s.start(); err == nil {
			return s
		}
	}
	t.Fatalf("s3test: start versitygw: %v", err)
	return nil
}

func randomHex(t testing.TB, n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// start runs the binary on s.addr and polls until it answers HTTP.
func (s *Server) start() error {
	cmd := exec.Command(s.bin, "--port", s.addr, "--quiet", "--keep-alive", "posix", s.Dir)
	cmd.Env = append(os.Environ(), "ROOT_ACCESS_KEY="+s.AccessKey, "ROOT_SECRET_KEY="+s.SecretKey, "VGW_REGION="+Region)
	out := new(bytes.Buffer)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	s.mu.Lock()
	s.cmd, s.done, s.out = cmd, done, out
	s.mu.Unlock()

	deadline := time.Now().Add(20 * time.Second)
	for {
		select {
		case <-done:
			return fmt.Errorf("versitygw exited: %s", out.String())
		default:
		}
		resp, err := s.hc.Get(s.Endpoint + "/")
		if err == nil {
			resp.Body.Close()
			return nil // any HTTP answer (403 without credentials) means it is up
		}
		if time.Now().After(deadline) {
			s.stop()
			return fmt.Errorf("versitygw did not answer on %s within 20s: %v", s.addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stop ends the server (SIGTERM, then SIGKILL after 3 s: it waits for
// clients to close their connections) and waits for it.
func (s *Server) stop() {
	s.mu.Lock()
	cmd, done := s.cmd, s.done
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	s.hc.CloseIdleConnections() // the server waits for open connections
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(3 * time.Second):
		_ = cmd.Process.Kill()
		<-done
	}
	s.hc.CloseIdleConnections()
}

// Stop stops the server, keeping its data and port, so that a test can see
// what clients do when S3 is down. Restart brings it back.
func (s *Server) Stop() { s.stop() }

// Restart starts a stopped server again on the same port and data.
func (s *Server) Restart() {
	s.t.Helper()
	var err error
	for range 50 { // the port may linger briefly
		if err = s.start(); err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	s.t.Fatalf("s3test: restart versitygw: %v", err)
}

// Output returns what the server printed so far.
func (s *Server) Output() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.out == nil {
		return ""
	}
	return s.out.String()
}

// Credentials returns a provider of the server's root credentials.
func (s *Server) Credentials() aws.CredentialsProvider {
	return credentials.NewStaticCredentialsProvider(s.AccessKey, s.SecretKey, "")
}

// HTTPClient returns the HTTP client the server's clients share; its idle
// connections are closed when the test ends.
func (s *Server) HTTPClient() *http.Client { return s.hc }

// Client returns an S3 client for the server: path-style, root
// credentials, region Region, the shared HTTP client. opts may change
// anything (add middleware, another HTTPClient, RetryMaxAttempts).
func (s *Server) Client(opts ...func(*s3.Options)) *s3.Client {
	o := s3.Options{
		Region:       Region,
		BaseEndpoint: aws.String(s.Endpoint),
		UsePathStyle: true,
		Credentials:  s.Credentials(),
		HTTPClient:   s.hc,
	}
	return s3.New(o, opts...)
}

// CreateBucket creates a bucket; the test fails if it cannot.
func (s *Server) CreateBucket(name string) {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := s.Client().CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(name)}); err != nil {
		s.t.Fatalf("s3test: create bucket %s: %v", name, err)
	}
}

// Put writes an object; the test fails if it cannot.
func (s *Server) Put(bucket, key string, body []byte) {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := s.Client().PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: bytes.NewReader(body)})
	if err != nil {
		s.t.Fatalf("s3test: put s3://%s/%s: %v", bucket, key, err)
	}
}

// Objects returns every object of bucket under prefix with its bytes; the
// test fails if they cannot be read.
func (s *Server) Objects(bucket, prefix string) map[string][]byte {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c := s.Client()
	out := map[string][]byte{}
	pg := s3.NewListObjectsV2Paginator(c, &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String(prefix)})
	for pg.HasMorePages() {
		page, err := pg.NextPage(ctx)
		if err != nil {
			s.t.Fatalf("s3test: list s3://%s/%s: %v", bucket, prefix, err)
		}
		for _, o := range page.Contents {
			g, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: o.Key})
			if err != nil {
				s.t.Fatalf("s3test: get s3://%s/%s: %v", bucket, aws.ToString(o.Key), err)
			}
			var b bytes.Buffer
			_, err = b.ReadFrom(g.Body)
			g.Body.Close()
			if err != nil {
				s.t.Fatalf("s3test: get s3://%s/%s: %v", bucket, aws.ToString(o.Key), err)
			}
			out[aws.ToString(o.Key)] = b.Bytes()
		}
	}
	return out
}
