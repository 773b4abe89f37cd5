package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/trailsight/trailsight/internal/s3test"
	"github.com/trailsight/trailsight/stream"
)

func TestCheckpointHeader(t *testing.T) {
	for _, tc := range []struct {
		kind        string
		pos, dedupe []byte
	}{
		{"nats", []byte{0, 0, 0, 0, 0, 0, 1, 2}, stream.NewDeduper(0).AppendState(nil)},
		{"folder", stream.EncodePollPosition(time.Unix(1772531400, 0), map[string]time.Time{"a.json": {}}), []byte{1, 2, 3}},
		{"stdin", nil, nil},
	} {
		var b bytes.Buffer
		if err := writeCheckpointHeader(&b, tc.kind, tc.pos, tc.dedupe); err != nil {
			t.Fatal(err)
		}
		b.WriteString("STATE")
		r := bufio.NewReader(&b)
		kind, pos, dedupe, legacy, err := readCheckpointHeader(r)
		rest, _ := r.ReadString(0)
		if err != nil || kind != tc.kind || !bytes.Equal(pos, tc.pos) || !bytes.Equal(dedupe, tc.dedupe) || legacy || rest != "STATE" {
			t.Errorf("read(write(%q, %x, %x)) = %q, %x, %x, %v, %v; rest %q", tc.kind, tc.pos, tc.dedupe, kind, pos, dedupe, legacy, err, rest)
		}
	}
	// Version 1: no de-duplication state.
	kind, pos, dedupe, legacy, err := readCheckpointHeader(bufio.NewReader(strings.NewReader("TSCK\x01\x02s3\x00\x00\x00\x01\x09STATE")))
	if err != nil || kind != "s3" || legacy || !bytes.Equal(pos, []byte{9}) || dedupe != nil {
		t.Errorf("version 1: %q %x %x %v %v", kind, pos, dedupe, legacy, err)
	}
	// The first format: 8 bytes of stream sequence, then the state.
	kind, pos, dedupe, legacy, err = readCheckpointHeader(bufio.NewReader(strings.NewReader("\x00\x00\x00\x00\x00\x00\x00\x07STATE")))
	if err != nil || kind != "nats" || !legacy || !bytes.Equal(pos, []byte{0, 0, 0, 0, 0, 0, 0, 7}) || dedupe != nil {
		t.Errorf("first format: %q %x %x %v %v", kind, pos, dedupe, legacy, err)
	}
	for _, bad := range []string{"", "TS", "TSCK", "TSCK\x03\x04nats", "TSCK\x01\x04nats\x00\x00\x00\x09short",
		"TSCK\x01\x04nats\xff\xff\xff\xff", "TSCK\x02\x04nats\x00\x00\x00\x00", "TSCK\x02\x04nats\x00\x00\x00\x00\x00\x00\x00\x05abc"} {
		if _, _, _, _, err := readCheckpointHeader(bufio.NewReader(strings.NewReader(bad))); !errors.Is(err, errCheckpoint) {
			t.Errorf("readCheckpointHeader(%q) = %v, want errCheckpoint", bad, err)
		}
	}
}

func FuzzCheckpointHeader(f *testing.F) {
	var b bytes.Buffer
	writeCheckpointHeader(&b, "s3", []byte{1, 2, 3}, []byte{4, 5})
	f.Add(b.Bytes())
	f.Add([]byte("\x00\x00\x00\x00\x00\x00\x00\x07"))
	f.Add([]byte("TSCK\x01\x00\x00\x00\x00\x00"))
	f.Fuzz(func(t *testing.T, data []byte) {
		kind, pos, dedupe, legacy, err := readCheckpointHeader(bufio.NewReader(bytes.NewReader(data)))
		if err != nil || legacy || data[4] != checkpointVersion {
			return
		}
		var again bytes.Buffer
		if err := writeCheckpointHeader(&again, kind, pos, dedupe); err != nil {
			t.Fatal(err)
		}
		if !bytes.HasPrefix(data, again.Bytes()) {
			t.Fatalf("re-encoding %q gives %q", data, again.Bytes())
		}
	})
}

// archiveFixture is a generated archive, the insights detect writes for
// it, and its CloudTrail files in delivery order (keys relative to dir).
type archiveFixture struct {
	dir, arch, ref string
	refKeys, files []string
}

var (
	archiveOnce sync.Once
	archive     archiveFixture // generated once for the tests that share it
	archiveErr  string
)

// newArchiveFixture returns the shared archive (8 days, one account,
// generated and detected once per test binary) with a fresh folder for
// the test's configuration, state and outputs.
func newArchiveFixture(t *testing.T) *archiveFixture {
	t.Helper()
	archiveOnce.Do(func() {
		a := &archive
		a.arch = filepath.Join(filepath.Dir(bin), "archive")
		if out, code := tsEnv(t, nil, "gen", "--out", a.arch, "--days", "8", "--accounts", "1", "--seed", "6"); code != 0 {
			archiveErr = "gen: " + out
			return
		}
		a.ref = filepath.Join(filepath.Dir(bin), "archive-ref")
		if out, code := tsEnv(t, nil, "--log-level", "warn", "detect", "--in", a.arch, "--out", a.ref); code != 0 {
			archiveErr = "detect: " + out
			return
		}
		if a.refKeys = listKeys(t, a.ref); len(a.refKeys) == 0 {
			archiveErr = "the reference run wrote no insight"
			return
		}
		files, _, err := stream.ListDir(a.arch, time.Time{}, time.Time{})
		if err != nil {
			archiveErr = err.Error()
			return
		}
		for _, fl := range files {
			rel, _ := filepath.Rel(a.arch, fl.Path)
			a.files = append(a.files, filepath.ToSlash(rel))
		}
	})
	if archiveErr != "" {
		t.Fatal(archiveErr)
	}
	f := archive
	f.dir = t.TempDir()
	return &f
}

// config writes a service configuration reading source.
func (f *archiveFixture) config(t *testing.T, name, source string) (cfg, out string) {
	out = filepath.Join(f.dir, name+"-out")
	cfg = filepath.Join(f.dir, name+".toml")
	// The archive lies in the past: the trailing window reaches back to it,
	// so that files copied in late are still found.
	window := time.Since(time.Date(2026, 2, 28, 0, 0, 0, 0, time.UTC)).Round(time.Hour)
	text := fmt.Sprintf(`[run]
source = %q
state_dir = %q
checkpoint_interval = "1s"
poll_interval = "100ms"
poll_window = %q
from = "2026-03-01"
listen = ""
shutdown_grace = "20s"
[input]
dedupe_window = "2h"
[[notify.folder]]
path = %q
`, source, filepath.Join(f.dir, name+"-state"), window.String(), out)
	if err := os.WriteFile(cfg, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return cfg, out
}

// same compares a run's insight files with detect's, byte for byte.
func (f *archiveFixture) same(t *testing.T, name, out string) {
	t.Helper()
	sameFiles(t, name, f.ref, f.refKeys, out)
}

// land copies archive files into dir the way a sync tool does: written
// under a hidden name, then renamed.
func (f *archiveFixture) land(t *testing.T, dir string, keys []string) {
	t.Helper()
	for _, k := range keys {
		b, err := os.ReadFile(filepath.Join(f.arch, k))
		if err != nil {
			t.Fatal(err)
		}
		dst := filepath.Join(dir, filepath.FromSlash(k))
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			t.Fatal(err)
		}
		tmp := filepath.Join(filepath.Dir(dst), "."+filepath.Base(dst)+".part")
		if err := os.WriteFile(tmp, b, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, dst); err != nil {
			t.Fatal(err)
		}
	}
}

// startKillable starts the service; kill ends it with SIGKILL.
func startKillable(t *testing.T, env []string, cfg string) (kill func()) {
	t.Helper()
	cmd := exec.Command(bin, "--log-level", "warn", "run", "--config", cfg)
	cmd.Env = append(os.Environ(), env...)
	var errb bytes.Buffer
	cmd.Stderr = &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return func() {
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
		if strings.Contains(errb.String(), "panic") {
			t.Fatalf("run failed:\n%s", errb.String())
		}
	}
}

// watchScenario lands the archive in dir in batches while the service
// runs and is killed (-9) after each — 3 times, 11 with the build tag
// long; one pair of files lands out of key order, the last batch while the
// service is down — then runs it until idle.
func watchScenario(t *testing.T, f *archiveFixture, env []string, cfg, dir string) {
	r := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 9))
	batches := 4
	if longTests {
		batches = 12
	}
	n := len(f.files)
	cut := make([]int, batches+1)
	for i := range cut {
		cut[i] = i * n / batches
	}
	for i := range batches - 1 {
		kill := startKillable(t, env, cfg)
		batch := f.files[cut[i]:cut[i+1]]
		if i == 1 {
			// A file lands after the next one was read: out of key order,
			// inside the window.
			f.land(t, dir, batch[:10])
			f.land(t, dir, batch[11:12])
			time.Sleep(3 * time.Second) // past settle: file 11 is read before 10 lands
			f.land(t, dir, batch[10:11])
			batch = batch[12:]
		}
		f.land(t, dir, batch)
		time.Sleep(time.Duration(300+r.IntN(1200)) * time.Millisecond)
		kill()
	}
	f.land(t, dir, f.files[cut[batches-1]:]) // while the service is down
	if o, code := tsEnv(t, env, "--log-level", "warn", "run", "--config", cfg, "--until-idle", "3s"); code != 0 {
		t.Fatalf("final run: exit %d\n%s", code, o)
	}
}

// TestRunWatchFolder: files landing in a watched folder while the service
// runs and is killed give detect's insights, byte for byte.
func TestRunWatchFolder(t *testing.T) {
	f := newArchiveFixture(t)
	watch := filepath.Join(f.dir, "watch")
	if err := os.Mkdir(watch, 0o755); err != nil {
		t.Fatal(err)
	}
	cfg, out := f.config(t, "folder", watch)
	if o, code := tsEnv(t, nil, "run", "--config", cfg, "--check"); code != 0 {
		t.Fatalf("run --check: %d %s", code, o)
	}
	watchScenario(t, f, nil, cfg, watch)
	f.same(t, "folder", out)

	// The checkpoint is of a folder source: another kind refuses it.
	bad, _ := f.config(t, "folder", "-")
	o, code := tsEnv(t, nil, "run", "--config", bad)
	if code == 0 || !strings.Contains(o, "detector.state") || !strings.Contains(o, "afresh") {
		t.Errorf("run on a folder checkpoint with source \"-\": exit %d\n%s", code, o)
	}
}

// TestRunWatchS3: the same with the trail's bucket on a real S3 server.
func TestRunWatchS3(t *testing.T) {
	srv := s3test.Start(t)
	srv.CreateBucket("trail")
	f := newArchiveFixture(t)
	env := []string{"AWS_ENDPOINT_URL=" + srv.Endpoint, "AWS_ACCESS_KEY_ID=" + srv.AccessKey,
		"AWS_SECRET_ACCESS_KEY=" + srv.SecretKey, "AWS_REGION=" + s3test.Region, "AWS_EC2_METADATA_DISABLED=true"}
	cfg, out := f.config(t, "s3", "s3://trail/org")
	// Objects land straight in the posix backend's folder, as versitygw
	// stores them.
	watchScenario(t, f, env, cfg, filepath.Join(srv.Dir, "trail", "org"))
	f.same(t, "s3", out)
}

// TestRunStdin: an archive's records piped into the service give detect's
// insights; the end of the input ends the service with a checkpoint.
func TestRunStdin(t *testing.T) {
	f := newArchiveFixture(t)
	var in bytes.Buffer
	for _, k := range f.files { // concatenated gzip members, in delivery order
		b, err := os.ReadFile(filepath.Join(f.arch, k))
		if err != nil {
			t.Fatal(err)
		}
		in.Write(b)
	}
	cfg, out := f.config(t, "stdin", "-")
	// With output.charts, a chart of each insight, as detect --charts draws it.
	charts := filepath.Join(f.dir, "stdin-charts")
	text, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfg, append(text, fmt.Sprintf("[output]\ncharts = %q\n", charts)...), 0o644); err != nil {
		t.Fatal(err)
	}
	stdout, stderr, code := ts(t, in.Bytes(), "--log-level", "warn", "run", "--config", cfg)
	if code != 0 {
		t.Fatalf("run: exit %d\n%s%s", code, stdout, stderr)
	}
	f.same(t, "stdin", out)
	if _, err := os.Stat(filepath.Join(f.dir, "stdin-state", "detector.state")); err != nil {
		t.Errorf("no checkpoint after the end of the input: %v", err)
	}
	detectCharts := filepath.Join(f.dir, "detect-charts")
	if _, e, code := ts(t, nil, "--log-level", "warn", "detect", "--in", f.arch, "--out", filepath.Join(f.dir, "detect-out"), "--charts", detectCharts); code != 0 {
		t.Fatalf("detect --charts: exit %d: %s", code, e)
	}
	got, want := pngNames(t, charts), pngNames(t, detectCharts)
	if len(want) == 0 || !slices.Equal(got, want) {
		t.Errorf("run drew %d charts %v; detect --charts drew %d %v", len(got), got, len(want), want)
	}
}

// pngNames lists the .png files under dir, relative to it, sorted.
func pngNames(t *testing.T, dir string) []string {
	t.Helper()
	var names []string
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, ".png") {
			rel, _ := filepath.Rel(dir, p)
			names = append(names, filepath.ToSlash(rel))
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(names)
	return names
}

// TestRunResumesWithNewSettings: a checkpoint saved with other detector
// settings (a new release's defaults, a tuned threshold) resumes with the
// new ones and says what changed; a changed lateness, which changes what
// the checkpoint holds, is refused with the way out.
func TestRunResumesWithNewSettings(t *testing.T) {
	f := newArchiveFixture(t)
	var in bytes.Buffer
	for _, k := range f.files[:len(f.files)/2] {
		b, err := os.ReadFile(filepath.Join(f.arch, k))
		if err != nil {
			t.Fatal(err)
		}
		in.Write(b)
	}
	cfg, _ := f.config(t, "resume", "-")
	if stdout, stderr, code := ts(t, in.Bytes(), "--log-level", "warn", "run", "--config", cfg); code != 0 {
		t.Fatalf("first run: exit %d\n%s%s", code, stdout, stderr)
	}
	text, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	with := func(section string) string {
		p := filepath.Join(f.dir, "resume-changed.toml")
		if err := os.WriteFile(p, append(slices.Clone(text), section...), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	stdout, stderr, code := ts(t, nil, "--log-level", "warn", "run", "--config", with("[detector]\nthreshold = 8.0\n"))
	if code != 0 || !strings.Contains(stderr, "resumed with other detector settings") || !strings.Contains(stderr, "Threshold was 7, is 8") {
		t.Errorf("threshold changed: exit %d, want 0 and a warning naming the change\n%s%s", code, stdout, stderr)
	}
	stdout, stderr, code = ts(t, nil, "--log-level", "warn", "run", "--config", with("[detector]\nthreshold = 8.0\nlateness = \"5m\"\n"))
	if code == 0 || !strings.Contains(stderr, "Lateness was 15m0s, is 5m0s") || !strings.Contains(stderr, "move it away") {
		t.Errorf("lateness changed: exit %d, want a refusal naming lateness and the way out\n%s%s", code, stdout, stderr)
	}
}

// TestRunDedupeAcrossRestart: the IDs read before a restart are in the
// checkpoint, so a second delivery of a file, under another name, after the
// restart is dropped record by record.
func TestRunDedupeAcrossRestart(t *testing.T) {
	f := newArchiveFixture(t)
	watch := filepath.Join(f.dir, "watch")
	if err := os.Mkdir(watch, 0o755); err != nil {
		t.Fatal(err)
	}
	cfg, _ := f.config(t, "dedupe", watch)
	listen := freeAddr(t)
	text, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	text = bytes.Replace(text, []byte(`listen = ""`), fmt.Appendf(nil, "listen = %q", listen), 1)
	if err := os.WriteFile(cfg, text, 0o644); err != nil {
		t.Fatal(err)
	}
	half := f.files[:len(f.files)/2]
	f.land(t, watch, half)
	svc := startRun(t, cfg, listen)
	waitMetric(t, svc, "trailsight_source_files_total", float64(len(half)))
	svc.stop() // SIGTERM: checkpoint, exit

	// CloudTrail delivered the last file read a second time, under another
	// name.
	last := half[len(half)-1]
	data, err := os.ReadFile(filepath.Join(f.arch, last))
	if err != nil {
		t.Fatal(err)
	}
	want := 0
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	evs, _, err := stream.NewDecoder().Decode(raw, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range evs {
		if e.ID != "" {
			want++
		}
	}
	i := strings.LastIndexByte(last, '_')
	again := last[:i+1] + "SecondDelivery00.json.gz"
	dst := filepath.Join(watch, filepath.FromSlash(again))
	if err := os.WriteFile(dst+".part", data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(dst+".part", dst); err != nil {
		t.Fatal(err)
	}
	svc = startRun(t, cfg, listen)
	waitMetric(t, svc, "trailsight_source_files_total", 1)
	waitMetric(t, svc, "trailsight_duplicate_events_total", float64(want))
	time.Sleep(500 * time.Millisecond)
	if m, err := svc.scrape(); err != nil || m["trailsight_duplicate_events_total"] != float64(want) || m["trailsight_source_files_total"] != 1 {
		t.Errorf("after the restart: %v duplicates dropped, %v files read (%v); want %d and 1", m["trailsight_duplicate_events_total"], m["trailsight_source_files_total"], err, want)
	}
}

// waitMetric waits up to 60 s for the child's metric to reach want.
func waitMetric(t *testing.T, c *child, name string, want float64) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		m, err := c.scrape()
		if err == nil && m[name] >= want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s = %v after 60 s, want %v (%v)\n%s", name, m[name], want, err, c.stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}
