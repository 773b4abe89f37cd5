package main

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/trailsight/trailsight/detector"
	"github.com/trailsight/trailsight/notify"
)

// serviceFixture is an archive published into a real NATS server, and the
// insights detect writes for it (the reference every run must reproduce).
type serviceFixture struct {
	dir, natsURL string
	refKeys      []string
	ref          string
	// Of a partitioned fixture (partitionRefs): ref and refKeys are
	// detect's on each partition's part of the archive, these on the whole.
	wholeRef  string
	wholeKeys []string
}

func newServiceFixture(t *testing.T) *serviceFixture {
	t.Helper()
	return newServiceFixtureWith(t, 1, 1, 0)
}

// newServiceFixtureWith makes a fixture of accounts accounts at scale,
// published to a stream split into partitions (publish --create
// --partitions).
func newServiceFixtureWith(t *testing.T, accounts int, scale float64, partitions int) *serviceFixture {
	t.Helper()
	f := &serviceFixture{dir: t.TempDir()}
	arch := filepath.Join(f.dir, "archive")
	if out, code := tsEnv(t, nil, "gen", "--out", arch, "--days", "9", "--accounts", fmt.Sprint(accounts), "--scale", fmt.Sprint(scale), "--seed", "6"); code != 0 {
		t.Fatalf("gen: %s", out)
	}
	f.ref = filepath.Join(f.dir, "ref")
	if out, code := tsEnv(t, nil, "--log-level", "warn", "detect", "--in", arch, "--out", f.ref); code != 0 {
		t.Fatalf("detect: %s", out)
	}
	f.refKeys = listKeys(t, f.ref)
	if len(f.refKeys) == 0 {
		t.Fatal("the reference run wrote no insight")
	}
	ns, url, err := notify.StartEmbeddedNATS(notify.EmbeddedOptions{StoreDir: filepath.Join(f.dir, "nats")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ns.Shutdown)
	f.natsURL = url
	if out, code := tsEnv(t, nil, "--log-level", "warn", "publish", "--in", arch, url+"/CLOUDTRAIL", "--create", "--partitions", fmt.Sprint(partitions)); code != 0 {
		t.Fatalf("publish: %s", out)
	}
	return f
}

func listKeys(t *testing.T, dir string) []string {
	var keys []string
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel(dir, p)
			keys = append(keys, filepath.ToSlash(rel))
		}
		return nil
	})
	return keys
}

// config writes a service configuration reading the fixture's stream.
func (f *serviceFixture) config(t *testing.T, name string) (cfg, out string) {
	out = filepath.Join(f.dir, name+"-out")
	cfg = filepath.Join(f.dir, name+".toml")
	text := fmt.Sprintf(`[run]
source = %q
state_dir = %q
checkpoint_interval = "1s"
listen = "127.0.0.1:0"
shutdown_grace = "20s"
[input]
dedupe_window = "2h"
[[notify.folder]]
path = %q
[[notify.nats]]
url = %q
`, f.natsURL+"/CLOUDTRAIL?durable="+name, filepath.Join(f.dir, name+"-state"), out, f.natsURL+"/INSIGHTS_"+strings.ToUpper(name)+"?create=1")
	if err := os.WriteFile(cfg, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return cfg, out
}

// check compares a run's outputs with the reference: the same files, byte
// for byte, and each insight event once in the NATS output.
func (f *serviceFixture) check(t *testing.T, name, out string) {
	t.Helper()
	sameFiles(t, name, f.ref, f.refKeys, out)
	want, _, _ := detector.ReadInsights(f.ref)
	nc, err := nats.Connect(f.natsURL)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := js.Stream(ctx, "INSIGHTS_"+strings.ToUpper(name))
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if int(info.State.Msgs) != len(want) {
		t.Errorf("%s: the NATS output holds %d insight events, want %d (each once)", name, info.State.Msgs, len(want))
	}
}

// TestRunSameAnswers: the same archive through detect (backfill) and
// through publish → run (stream) gives the same insights, IDs and files.
func TestRunSameAnswers(t *testing.T) {
	f := newServiceFixture(t)
	cfg, out := f.config(t, "same")
	if o, code := tsEnv(t, nil, "run", "--config", cfg, "--check"); code != 0 || !strings.Contains(o, "ok") {
		t.Fatalf("run --check: %d %s", code, o)
	}
	if o, code := tsEnv(t, nil, "--log-level", "warn", "run", "--config", cfg, "--until-idle", "2s"); code != 0 {
		t.Fatalf("run: exit %d\n%s", code, o)
	}
	f.check(t, "same", out)
}

// TestRunCrashSafety: kill -9 the service at random points while it works
// through the stream; after the restarts its outputs equal those of an
// uninterrupted run — none missing, none duplicated.
func TestRunCrashSafety(t *testing.T) {
	f := newServiceFixture(t)
	cfg, out := f.config(t, "crash")
	kills := 4
	if longTests {
		kills = 20
	}
	r := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
	killed := 0
	for killed < kills {
		cmd := exec.Command(bin, "--log-level", "warn", "run", "--config", cfg)
		var errb bytes.Buffer
		cmd.Stderr = &errb
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Duration(300+r.IntN(1500)) * time.Millisecond)
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
		killed++
		if strings.Contains(errb.String(), "panic") {
			t.Fatalf("run panicked:\n%s", errb.String())
		}
	}
	if o, code := tsEnv(t, nil, "--log-level", "warn", "run", "--config", cfg, "--until-idle", "2s"); code != 0 {
		t.Fatalf("final run: exit %d\n%s", code, o)
	}
	t.Logf("%d kills", killed)
	f.check(t, "crash", out)
}

// sameFiles checks that out holds the files refKeys of ref, byte for byte,
// and no others: what a run wrote against what detect wrote.
func sameFiles(t *testing.T, name, ref string, refKeys []string, out string) {
	t.Helper()
	got := listKeys(t, out)
	if strings.Join(got, "\n") != strings.Join(refKeys, "\n") {
		t.Errorf("%s wrote %d files, detect %d", name, len(got), len(refKeys))
	}
	for _, k := range refKeys {
		a, _ := os.ReadFile(filepath.Join(ref, k))
		b, err := os.ReadFile(filepath.Join(out, k))
		if err != nil || !bytes.Equal(a, b) {
			t.Errorf("%s: %s differs from detect's (%v)", name, k, err)
		}
	}
}
