package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/trailsight/trailsight/detector"
	"github.com/trailsight/trailsight/notify"
)

// The proofs of the service (latency, throughput, soak) run the real
// trailsight binary as a child process against the real nats-server
// embedded in the test process, and watch it from outside: its /metrics,
// its insights on NATS and its memory in /proc.

// startTestNATS starts nats-server with JetStream in the test process and
// returns its client URL; it is shut down when the test ends.
func startTestNATS(tb testing.TB) string {
	tb.Helper()
	ns, url, err := notify.StartEmbeddedNATS(notify.EmbeddedOptions{StoreDir: filepath.Join(tb.TempDir(), "nats")})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		ns.Shutdown()
		ns.WaitForShutdown()
	})
	return url
}

// freeAddr returns a loopback address no one listens on now.
func freeAddr(tb testing.TB) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// runConfig is the part of a service configuration the proofs vary.
type runConfig struct {
	source     string // run.source: nats://HOST:PORT/STREAM?durable=…
	listen     string // run.listen
	insights   string // a [[notify.nats]] url; "" for none
	checkpoint string // run.checkpoint_interval; "" for the default
}

// write writes the configuration into dir and returns its path.
func (c runConfig) write(tb testing.TB, dir string) string {
	tb.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "[run]\nsource = %q\nstate_dir = %q\nlisten = %q\nshutdown_grace = \"20s\"\n",
		c.source, filepath.Join(dir, "state"), c.listen)
	if c.checkpoint != "" {
		fmt.Fprintf(&b, "checkpoint_interval = %q\n", c.checkpoint)
	}
	if c.insights != "" {
		fmt.Fprintf(&b, "[[notify.nats]]\nurl = %q\n", c.insights)
	} else {
		fmt.Fprintf(&b, "[[notify.folder]]\npath = %q\n", filepath.Join(dir, "insights"))
	}
	path := filepath.Join(dir, "trailsight.toml")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		tb.Fatal(err)
	}
	return path
}

// child is a running `trailsight run`.
type child struct {
	cmd     *exec.Cmd
	metrics string // URL of its /metrics
	stderr  lockedBuffer
	done    chan struct{}
	err     error        // from Wait, once done is closed
	hwm     atomic.Int64 // largest VmHWM seen while it ran
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startRun starts `trailsight run --config cfg args…` and waits until its
// /metrics answers. When the test ends it is stopped with SIGTERM (and
// killed if it does not stop).
func startRun(tb testing.TB, cfg, listen string, args ...string) *child {
	tb.Helper()
	return startRunLog(tb, "warn", cfg, listen, args...)
}

// startRunLog is startRun logging at level (JSON on its stderr).
func startRunLog(tb testing.TB, level, cfg, listen string, args ...string) *child {
	tb.Helper()
	c := &child{metrics: "http://" + listen + "/metrics", done: make(chan struct{})}
	c.cmd = exec.Command(bin, append([]string{"--log-level", level, "--log-format", "json", "run", "--config", cfg}, args...)...)
	c.cmd.Stderr = &c.stderr
	if err := c.cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	go func() {
		c.err = c.cmd.Wait()
		close(c.done)
	}()
	// The peak resident set, read while the child runs: rusage's maxrss of
	// a child Go starts with vfork also counts the parent's (this test's,
	// with its NATS server) resident set.
	go func() {
		for {
			if v, err := procStatus(c.cmd.Process.Pid, "VmHWM"); err == nil && v > c.hwm.Load() {
				c.hwm.Store(v)
			}
			select {
			case <-c.done:
				return
			case <-time.After(100 * time.Millisecond):
			}
		}
	}()
	tb.Cleanup(func() {
		c.stop()
		if strings.Contains(c.stderr.String(), "panic") {
			tb.Errorf("trailsight run panicked:\n%s", c.stderr.String())
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, err := c.scrape(); err == nil {
			return c
		}
		select {
		case <-c.done:
			tb.Fatalf("trailsight run exited at start (%v):\n%s", c.err, c.stderr.String())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			tb.Fatalf("trailsight run: no /metrics on %s after 20s:\n%s", listen, c.stderr.String())
		}
	}
}

// stop sends SIGTERM and waits for the exit (SIGKILL after 30 s).
func (c *child) stop() {
	select {
	case <-c.done:
		return
	default:
	}
	c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.done:
	case <-time.After(30 * time.Second):
		c.cmd.Process.Kill()
		<-c.done
	}
}

// peakRSS is the child's peak resident set (VmHWM) as last read while it
// ran.
func (c *child) peakRSS() int64 { return c.hwm.Load() }

var metricsClient = &http.Client{Timeout: 5 * time.Second}

// scrape reads the child's trailsight_* metrics (without labels).
func (c *child) scrape() (map[string]float64, error) {
	resp, err := metricsClient.Get(c.metrics)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: %s", c.metrics, resp.Status)
	}
	return parseMetrics(resp.Body)
}

// parseMetrics reads the unlabelled trailsight_* samples of a Prometheus
// text exposition.
func parseMetrics(r io.Reader) (map[string]float64, error) {
	m := map[string]float64{}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "trailsight_") {
			continue
		}
		name, val, ok := strings.Cut(line, " ")
		if !ok || strings.Contains(name, "{") {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(val), 64)
		if err != nil {
			return nil, fmt.Errorf("metric %s: %w", name, err)
		}
		m[name] = v
	}
	return m, sc.Err()
}

// procStatus reads one field of /proc/PID/status in bytes (VmRSS, VmHWM…).
func procStatus(pid int, field string) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for line := range strings.Lines(string(b)) {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			f := strings.Fields(rest)
			if len(f) < 1 {
				break
			}
			kb, err := strconv.ParseInt(f[0], 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("/proc/%d/status: no %s", pid, field)
}

// quantile is the p-quantile (nearest rank) of xs; NaN when empty.
func quantile(xs []float64, p float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	i := int(p*float64(len(s)) + 0.999999)
	return s[min(max(i-1, 0), len(s)-1)]
}

const mib = 1 << 20

// subscribeStarts calls fn, holding mu, with every insight Start the
// service publishes on trailsight.insights.>; an undecodable message fails
// the test.
func subscribeStarts(tb testing.TB, nc *nats.Conn, mu *sync.Mutex, fn func(detector.Insight)) *nats.Subscription {
	tb.Helper()
	sub, err := nc.Subscribe("trailsight.insights.>", func(m *nats.Msg) {
		ins, err := detector.ParseInsights(m.Data)
		if err != nil {
			tb.Errorf("insight on %s: %v", m.Subject, err)
			return
		}
		mu.Lock()
		defer mu.Unlock()
		for _, in := range ins {
			if in.State == detector.Start {
				fn(in)
			}
		}
	})
	if err != nil {
		tb.Fatal(err)
	}
	return sub
}
