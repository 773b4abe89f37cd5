package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/trailsight/trailsight/detector"
	"github.com/trailsight/trailsight/internal/s3test"
	"github.com/trailsight/trailsight/notify"
)

// chatServer is a local Slack incoming webhook: it checks the payload's
// shape, records the messages, and fails while down is set.
type chatServer struct {
	*httptest.Server
	mu   sync.Mutex
	msgs []string
	down atomic.Bool
}

func newChatServer(t *testing.T) *chatServer {
	c := &chatServer{}
	c.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if c.down.Load() {
			http.Error(w, "unavailable", http.StatusInternalServerError)
			return
		}
		b, _ := io.ReadAll(r.Body)
		var m struct {
			Text   string            `json:"text"`
			Blocks []json.RawMessage `json:"blocks"`
		}
		if err := json.Unmarshal(b, &m); err != nil || m.Text == "" || len(m.Blocks) == 0 || len(m.Blocks) > 50 {
			t.Errorf("not a Slack message: %v %.200s", err, b)
			http.Error(w, "invalid_payload", http.StatusBadRequest)
			return
		}
		c.mu.Lock()
		c.msgs = append(c.msgs, string(b))
		c.mu.Unlock()
		io.WriteString(w, "ok")
	}))
	t.Cleanup(c.Close)
	return c
}

func (c *chatServer) all() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return strings.Join(c.msgs, "\n")
}

// tsEnv runs the binary with extra environment variables.
func tsEnv(t *testing.T, env []string, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return string(out), code
}

// TestS3InS3NATSSlackOut is issue 6's proof: an archive read from a real S3
// server (versitygw), insights written to a bucket, to NATS JetStream and to
// Slack in one run — the same insights as the folder path — and a Slack
// that is down loses nothing: its messages wait in the spool and the next
// run delivers them.
func TestS3InS3NATSSlackOut(t *testing.T) {
	dir := t.TempDir()
	arch := filepath.Join(dir, "archive")
	if out, code := tsEnv(t, nil, "gen", "--out", arch, "--days", "9", "--accounts", "1", "--seed", "4"); code != 0 {
		t.Fatalf("gen: %s", out)
	}
	ref := filepath.Join(dir, "ref")
	if out, code := tsEnv(t, nil, "--log-level", "warn", "detect", "--in", arch, "--out", ref); code != 0 {
		t.Fatalf("detect (folder): %s", out)
	}
	want, _, err := detector.ReadInsights(ref)
	if err != nil || len(want) == 0 {
		t.Fatalf("reference run: %d insights, %v", len(want), err)
	}

	srv := s3test.Start(t)
	srv.CreateBucket("trail")
	srv.CreateBucket("insights")
	// Put the archive in the bucket under a trail prefix: straight into the
	// posix backend's folder, which is how versitygw stores objects.
	if err := os.CopyFS(filepath.Join(srv.Dir, "trail", "org"), os.DirFS(arch)); err != nil {
		t.Fatal(err)
	}
	ns, natsURL, err := notify.StartEmbeddedNATS(notify.EmbeddedOptions{StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ns.Shutdown)
	slack := newChatServer(t)
	slack.down.Store(true) // Slack is down for the first run

	env := []string{"AWS_ENDPOINT_URL=" + srv.Endpoint, "AWS_ACCESS_KEY_ID=" + srv.AccessKey,
		"AWS_SECRET_ACCESS_KEY=" + srv.SecretKey, "AWS_REGION=" + s3test.Region, "AWS_EC2_METADATA_DISABLED=true"}
	spool := filepath.Join(dir, "spool")
	args := []string{"--log-level", "error", "detect", "--in", "s3://trail/org", "--spool", spool,
		"--out", "s3://insights/out", "--out", natsURL + "/INSIGHTS?create=1", "--out", "slack=" + slack.URL}
	t0 := time.Now()
	out, code := tsEnv(t, env, args...)
	if code == 0 || !strings.Contains(out, "spool") {
		t.Fatalf("with Slack down: exit %d, want non-zero naming the spool:\n%s", code, out)
	}

	// The bucket holds exactly the keys and bytes of the folder run.
	got := srv.Objects("insights", "out/")
	var refKeys []string
	filepath.WalkDir(ref, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel(ref, p)
			refKeys = append(refKeys, filepath.ToSlash(rel))
		}
		return nil
	})
	if len(got) != len(refKeys) {
		t.Errorf("bucket has %d objects, folder %d", len(got), len(refKeys))
	}
	for _, k := range refKeys {
		b, _ := os.ReadFile(filepath.Join(ref, k))
		if string(got["out/"+k]) != string(b) {
			t.Errorf("s3 object out/%s differs from the folder's", k)
		}
	}

	// JetStream holds each insight event once.
	nc, err := nats.Connect(natsURL)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := js.Stream(ctx, "INSIGHTS")
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if int(info.State.Msgs) != len(want) {
		t.Errorf("stream has %d messages, want %d insight events", info.State.Msgs, len(want))
	}

	// Slack comes back: the next run delivers what waited in the spool, and
	// re-sending to S3 and NATS duplicates nothing.
	slack.down.Store(false)
	t0 = time.Now()
	if out, code := tsEnv(t, env, args...); code != 0 {
		t.Fatalf("second run: exit %d\n%s", code, out)
	}
	t.Logf("second run %v, %d Slack messages", time.Since(t0), len(slack.msgs))
	msgs := slack.all()
	for _, in := range want {
		if in.State == 0 && !strings.Contains(msgs, in.EventName) {
			t.Errorf("Slack never heard of the insight on %s", in.EventName)
		}
	}
	ctx2, cancel2 := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel2()
	if info, err = st.Info(ctx2); err != nil {
		t.Fatal(err)
	}
	if int(info.State.Msgs) != len(want) {
		t.Errorf("after a re-run the stream has %d messages, want %d", info.State.Msgs, len(want))
	}
	if n := len(srv.Objects("insights", "out/")); n != len(refKeys) {
		t.Errorf("after a re-run the bucket has %d objects, want %d", n, len(refKeys))
	}
	left, _ := os.ReadDir(filepath.Join(spool))
	for _, d := range left {
		files, _ := os.ReadDir(filepath.Join(spool, d.Name()))
		if slices.ContainsFunc(files, func(f os.DirEntry) bool { return !strings.HasPrefix(f.Name(), ".") }) {
			t.Errorf("spool %s still holds %d files after delivery", d.Name(), len(files))
		}
	}
}
