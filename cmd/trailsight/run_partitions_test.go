package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/trailsight/trailsight/detector"
	"github.com/trailsight/trailsight/stream"
)

// The proofs of "Growing past one machine": instances that each serve one
// partition of the stream, with leases and state in JetStream, give the
// same insights as detect on the archive; an instance killed with -9 is
// taken over by a new one that waits for its lease and resumes from its
// state; an instance that loses its lease stops at once, writing nothing.
// One archive, published once into a stream of two partitions, serves the
// three: each uses its own durable name, hence its own consumers, leases
// and checkpoints.

// testPartitions: with 2 (or any power of two) the server's hash (FNV-1a
// of the account and region tokens, modulo N) keeps its low bits only, and
// us-east-1 and eu-west-1 are anagrams: the two regions of an account
// always share a partition, and the fixture's two accounts share one too.
// With 3, its accounts' regions spread over the three.
const testPartitions = 3

// partitionConfig writes the configuration of an instance serving
// partition (an index or "auto") as durable, into the fixture's folder;
// every instance of one durable shares out and the NATS output.
func (f *serviceFixture) partitionConfig(t *testing.T, durable, instance, partition, listen string, query ...string) (cfg, out string) {
	t.Helper()
	out = filepath.Join(f.dir, durable+"-out")
	cfg = filepath.Join(f.dir, durable+"-"+instance+".toml")
	text := fmt.Sprintf(`[run]
source = %q
state_dir = %q
checkpoint_interval = "1s"
listen = %q
shutdown_grace = "20s"
partitions = %d
partition = %s
lease_ttl = "3s"
[input]
dedupe_window = "2h"
[[notify.folder]]
path = %q
[[notify.nats]]
url = %q
`, f.natsURL+"/CLOUDTRAIL?durable="+durable+strings.Join(query, ""), filepath.Join(f.dir, durable+"-"+instance+"-state"), listen,
		testPartitions, partition, out, f.natsURL+"/INSIGHTS_"+strings.ToUpper(durable)+"?create=1&prefix=insights."+durable)
	if err := os.WriteFile(cfg, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return cfg, out
}

// healthz reads a child's /healthz.
func (c *child) healthz() (map[string]any, error) {
	resp, err := metricsClient.Get(strings.TrimSuffix(c.metrics, "/metrics") + "/healthz")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var h map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&h); err != nil {
		return nil, fmt.Errorf("/healthz: %s: %w", resp.Status, err)
	}
	if resp.StatusCode != http.StatusOK {
		return h, fmt.Errorf("/healthz: %s", resp.Status)
	}
	return h, nil
}

// wait waits up to d for the child to exit and fails the test unless it
// exited 0.
func (c *child) wait(t *testing.T, name string, d time.Duration) {
	t.Helper()
	select {
	case <-c.done:
	case <-time.After(d):
		t.Fatalf("%s still runs after %v:\n%s", name, d, c.stderr.String())
	}
	if c.err != nil {
		t.Fatalf("%s: %v\n%s", name, c.err, c.stderr.String())
	}
}

// poll calls cond every 20 ms until it holds, failing after d.
func poll(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(d); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("%s: not after %v", what, d)
		}
	}
}

func TestRunPartitions(t *testing.T) {
	f := newServiceFixtureWith(t, 2, 0.2, testPartitions)
	nc, err := nats.Connect(f.natsURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel) // not defer: the parallel subtests run after this function returns

	// Which partitions hold records: at least two, or the split is trivial.
	full := f.partitionRefs(t, js)
	if len(full) < 2 {
		t.Fatalf("partitions holding records: %v: the fixture does not exercise partitions", full)
	}
	key := func(durable string, k int) string {
		return fmt.Sprintf("CLOUDTRAIL.%s.p%d-of-%d", durable, k, testPartitions)
	}

	// TestRunPartitions/same_answers: one instance per partition, each
	// taking the first free one ("auto"), together write what detect
	// writes.
	t.Run("same_answers", func(t *testing.T) {
		t.Parallel() // each its own durable: consumers, leases, state, outputs
		children := make([]*child, testPartitions)
		for i := range testPartitions {
			cfg, _ := f.partitionConfig(t, "same", fmt.Sprint(i), `"auto"`, freeAddr(t))
			children[i] = startRunLog(t, "info", cfg, listenOf(t, cfg), "--until-idle", "2s")
		}
		served := map[string]bool{}
		for i, c := range children {
			c.wait(t, fmt.Sprintf("instance %d", i), time.Minute)
			for line := range strings.Lines(c.stderr.String()) {
				for k := range testPartitions {
					if strings.Contains(line, `"message":"lease taken"`) && strings.Contains(line, fmt.Sprintf(`"lease":%q`, key("same", k))) {
						served[fmt.Sprint(k)] = true
					}
				}
			}
		}
		if len(served) != testPartitions {
			t.Errorf("partitions served: %v, want each of %d once", served, testPartitions)
		}
		f.checkPartitioned(t, "same", filepath.Join(f.dir, "same-out"))

	})

	// TestRunPartitions/whole_stream: state_store = "nats" without
	// partitions: one consumer reads the whole (partitioned) stream, one
	// detector, its checkpoint in NATS behind a lease: detect's files on the
	// whole archive, byte for byte.
	t.Run("whole_stream", func(t *testing.T) {
		t.Parallel()
		cfg, out := f.partitionConfig(t, "whole", "a", `"auto"`, freeAddr(t))
		b, _ := os.ReadFile(cfg)
		text := strings.Replace(string(b), fmt.Sprintf("partitions = %d\npartition = \"auto\"\n", testPartitions), "state_store = \"nats\"\n", 1)
		if err := os.WriteFile(cfg, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		c := startRunLog(t, "info", cfg, listenOf(t, cfg), "--until-idle", "2s")
		c.wait(t, "whole", time.Minute)
		for _, want := range []string{`"lease":"CLOUDTRAIL.whole"`, `"message":"lease taken"`, `"state":"nats kv trailsight_state/CLOUDTRAIL.whole"`} {
			if !strings.Contains(c.stderr.String(), want) {
				t.Errorf("the log lacks %s:\n%s", want, c.stderr.String())
			}
		}
		sameFiles(t, "whole", f.wholeRef, f.wholeKeys, out)
	})

	// others starts an instance, until idle, for each partition holding
	// records but the first.
	others := func(t *testing.T, durable string) []*child {
		var cs []*child
		for _, k := range full[1:] {
			cfg, _ := f.partitionConfig(t, durable, fmt.Sprint("other", k), fmt.Sprint(k), freeAddr(t))
			cs = append(cs, startRunLog(t, "info", cfg, listenOf(t, cfg), "--until-idle", "2s"))
		}
		return cs
	}

	// TestRunPartitions/takeover: the owner of a partition is killed with
	// -9; a new instance for it waits for its lease to expire, resumes from
	// its state in NATS, and the outputs are still detect's.
	t.Run("takeover", func(t *testing.T) {
		t.Parallel() // each its own durable: consumers, leases, state, outputs
		p := fmt.Sprint(full[0])
		// a reads one message at a time, to be killed in the middle.
		cfgA, out := f.partitionConfig(t, "take", "a", p, freeAddr(t), "&batch=1")
		a := startRunLog(t, "info", cfgA, listenOf(t, cfgA))
		rest := others(t, "take")
		// Kill a once a checkpoint holds some of its partition.
		var m map[string]float64
		poll(t, 30*time.Second, "a checkpoints", func() bool {
			m, err = a.scrape()
			return err == nil && m["trailsight_checkpoints_total"] >= 1 && m["trailsight_events_total"] > 0
		})
		a.cmd.Process.Signal(syscall.SIGKILL)
		<-a.done
		t.Logf("a killed after %v events, %v checkpoints", m["trailsight_events_total"], m["trailsight_checkpoints_total"])
		killed := time.Now()
		cfgC, _ := f.partitionConfig(t, "take", "c", p, freeAddr(t))
		c := startRunLog(t, "info", cfgC, listenOf(t, cfgC), "--until-idle", "2s")
		h, err := c.healthz()
		if err != nil || h["status"] != "waiting" || !strings.Contains(fmt.Sprint(h["heldBy"]), "holds "+key("take", full[0])) {
			t.Errorf("/healthz of the new instance %v after the kill = %v, %v; want waiting, held by the killed one", time.Since(killed), h, err)
		}
		c.wait(t, "c", time.Minute)
		for i, o := range rest {
			o.wait(t, fmt.Sprint("other ", i), time.Minute)
		}
		logC := c.stderr.String()
		for _, want := range []string{`"message":"waiting for a lease: another instance holds it"`, `"message":"lease taken"`, `"message":"resumed from checkpoint"`} {
			if !strings.Contains(logC, want) {
				t.Errorf("the new instance did not log %s:\n%s", want, logC)
			}
		}
		f.checkPartitioned(t, "take", out)
	})

	// TestRunPartitions/lease_lost: the lease of a working instance is
	// taken from it; it stops processing at once without writing its
	// state, waits, and takes the partition again once the lease is free.
	t.Run("lease_lost", func(t *testing.T) {
		t.Parallel() // each its own durable: consumers, leases, state, outputs
		cfgA, out := f.partitionConfig(t, "lost", "a", fmt.Sprint(full[0]), freeAddr(t))
		a := startRunLog(t, "info", cfgA, listenOf(t, cfgA), "--until-idle", "3s")
		rest := others(t, "lost")
		leases, err := js.KeyValue(ctx, leaseBucket)
		if err != nil {
			t.Fatal(err)
		}
		state, err := js.KeyValue(ctx, stateBucket)
		if err != nil {
			t.Fatal(err)
		}
		k := key("lost", full[0])
		poll(t, 30*time.Second, "a checkpoints", func() bool {
			m, err := a.scrape()
			return err == nil && m["trailsight_checkpoints_total"] >= 1
		})
		// Another owner writes the lease: a's next renewal finds another
		// revision. It keeps it (the bucket's TTL would expire it) until
		// told to stop.
		if _, err := leases.Put(ctx, k, []byte(`{"owner":"the test"}`)); err != nil {
			t.Fatal(err)
		}
		stopHolding := make(chan struct{})
		var holding sync.WaitGroup
		holding.Go(func() {
			for {
				select {
				case <-stopHolding:
					return
				case <-time.After(500 * time.Millisecond):
					leases.Put(ctx, k, []byte(`{"owner":"the test"}`))
				}
			}
		})
		poll(t, 10*time.Second, "a logs the lost lease", func() bool {
			return strings.Contains(a.stderr.String(), `"message":"lease lost: stopped processing without writing state; waiting for a lease again"`)
		})
		e, err := state.Get(ctx, k)
		if err != nil {
			t.Fatal(err)
		}
		rev := e.Revision()
		m, _ := a.scrape()
		if m["trailsight_partition_owned"] != 0 || m["trailsight_leases_lost_total"] != 1 || m["trailsight_lease_renewals_total"] < 1 {
			t.Errorf("a's metrics after losing its lease: owned %v, lost %v, renewals %v; want 0, 1, ≥ 1",
				m["trailsight_partition_owned"], m["trailsight_leases_lost_total"], m["trailsight_lease_renewals_total"])
		}
		// Two checkpoint intervals: nothing written meanwhile.
		time.Sleep(2 * time.Second)
		if e, err := state.Get(ctx, k); err != nil || e.Revision() != rev {
			t.Fatalf("a's state was written after it lost its lease (revision %d, then %v)", rev, err)
		}
		if h, err := a.healthz(); err != nil || h["status"] != "waiting" {
			t.Errorf("/healthz while the test holds the lease = %v, %v; want waiting", h, err)
		}
		// The test lets its "lease" go: a takes it again and finishes from
		// its state.
		close(stopHolding)
		holding.Wait()
		if err := leases.Delete(ctx, k); err != nil {
			t.Fatal(err)
		}
		a.wait(t, "a", time.Minute)
		for i, o := range rest {
			o.wait(t, fmt.Sprint("other ", i), time.Minute)
		}
		if n := strings.Count(a.stderr.String(), `"message":"lease taken"`); n != 2 {
			t.Errorf("a took its lease %d times, want 2", n)
		}
		f.checkPartitioned(t, "lost", out)
	})
}

// partitionRefs replaces the fixture's reference with what detect writes
// for each partition's part of the archive (see checkPartitioned), and
// returns the partitions that hold records. Which account and region went
// where is read from the stream: the server decided it.
func (f *serviceFixture) partitionRefs(t *testing.T, js jetstream.JetStream) (full []int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := js.Stream(ctx, "CLOUDTRAIL")
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx, jetstream.WithSubjectFilter(">"))
	if err != nil {
		t.Fatal(err)
	}
	parts := map[int]bool{}
	arch := filepath.Join(f.dir, "archive")
	for subj := range info.State.Subjects {
		// trailsight.events.<k>.<account>.<region>
		tok := strings.Split(strings.TrimPrefix(subj, stream.DefaultEventsPrefix+"."), ".")
		k, err := strconv.Atoi(tok[0])
		if len(tok) != 3 || err != nil {
			t.Fatalf("stored subject %s: not partitioned", subj)
		}
		parts[k] = true
		rel := filepath.Join("AWSLogs", tok[1], "CloudTrail", tok[2])
		if err := os.CopyFS(filepath.Join(f.dir, fmt.Sprint("part", k), rel), os.DirFS(filepath.Join(arch, rel))); err != nil {
			t.Fatal(err)
		}
	}
	f.wholeRef, f.wholeKeys = f.ref, f.refKeys
	f.ref = filepath.Join(f.dir, "ref-partitions")
	for k := range testPartitions {
		if parts[k] {
			full = append(full, k)
			if out, code := tsEnv(t, nil, "--log-level", "warn", "detect", "--in", filepath.Join(f.dir, fmt.Sprint("part", k)), "--out", f.ref); code != 0 {
				t.Fatalf("detect partition %d: %s", k, out)
			}
		}
	}
	f.refKeys = listKeys(t, f.ref)
	return full
}

// checkPartitioned compares the outputs of partitioned instances with
// detect's. A detector closes a minute when its watermark — the latest
// event time it has seen, less detector.lateness — passes it, and drops an
// event whose minute is closed. Each partition's detector has its own
// watermark, driven by its own accounts and regions only: a region whose
// records arrive late next to another region's is not dropped as late when
// the two lie in different partitions (on this archive detect drops 204
// records as late on the whole, 132 on the three parts). So the
// files must equal, byte for byte, what detect writes for each partition's
// part of the archive; against detect on the whole archive, the same series
// must have the same number of insights of each kind, whose times and
// figures may differ where the whole-archive run dropped records as late
// (one burst here starts 30 minutes earlier in the partitioned run: the
// records that make it were late next to the other partitions').
func (f *serviceFixture) checkPartitioned(t *testing.T, name, out string) {
	t.Helper()
	f.check(t, name, out)
	got, _, err := detector.ReadInsights(out)
	if err != nil {
		t.Fatal(err)
	}
	want, _, err := detector.ReadInsights(f.wholeRef)
	if err != nil {
		t.Fatal(err)
	}
	series := func(ins []detector.Insight) []string {
		var b []string
		for _, in := range ins {
			b = append(b, fmt.Sprint(in.State, " ", in.Account, " ", in.Region, " ", in.EventSource, " ", in.EventName, " ", in.Type))
		}
		slices.Sort(b)
		return b
	}
	if g, w := series(got), series(want); !slices.Equal(g, w) {
		t.Errorf("%s: %d insight events, detect on the whole archive %d; not for the same series:\n%s\nwant\n%s", name, len(g), len(w),
			strings.Join(g, "\n"), strings.Join(w, "\n"))
	}
}

// listenOf returns run.listen of a configuration written by
// partitionConfig.
func listenOf(t *testing.T, cfg string) string {
	t.Helper()
	b, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "listen = "); ok {
			return strings.Trim(strings.TrimSpace(v), `"`)
		}
	}
	t.Fatalf("%s: no listen", cfg)
	return ""
}

// TestRunPartitionsNeedTransform: a stream the server does not split is
// refused at start, with the transform it needs; nothing is consumed.
func TestRunPartitionsNeedTransform(t *testing.T) {
	url := startTestNATS(t)
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "CLOUDTRAIL", Subjects: []string{"trailsight.events.>"}}); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cfg := filepath.Join(dir, "p.toml")
	text := fmt.Sprintf("[run]\nsource = %q\nstate_dir = %q\nlisten = \"\"\npartitions = 3\n", url+"/CLOUDTRAIL", filepath.Join(dir, "state"))
	if err := os.WriteFile(cfg, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	out, code := tsEnv(t, nil, "run", "--config", cfg, "--until-idle", "1s")
	want := `run.partitions: stream CLOUDTRAIL has no subject transform (its messages are not partitioned), and run.partitions is 3: ` +
		`give it the subject transform {"src": "trailsight.events.*.*", "dest": "trailsight.events.{{partition(3,1,2)}}.{{wildcard(1)}}.{{wildcard(2)}}"}`
	if code == 0 || !strings.Contains(out, want) {
		t.Errorf("run, partitions = 3 on a stream without the transform: exit %d\n%s\nwant an error with\n%s", code, out, want)
	}
	st, err := js.Stream(ctx, "CLOUDTRAIL")
	if err != nil {
		t.Fatal(err)
	}
	if info, err := st.Info(ctx); err != nil || info.State.Consumers != 0 {
		t.Errorf("consumers on the unpartitioned stream after the refusal: %v (%v), want 0", info.State.Consumers, err)
	}
}

// TestRunPartitionsChurn (-tags long): rounds of instances sharing the
// partitions ("auto"), one killed with -9 and the others stopped at a
// random moment of each round; the outputs are still detect's.
func TestRunPartitionsChurn(t *testing.T) {
	if !longTests {
		t.Skip("with -tags long: instances killed and stopped at random while they share the partitions")
	}
	f := newServiceFixtureWith(t, 2, 0.2, testPartitions)
	nc, err := nats.Connect(f.natsURL)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	f.partitionRefs(t, js)
	r := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 11))
	var out string
	for round := range 12 {
		var cs []*child
		for i := range testPartitions + 1 { // one standby
			var cfg string
			cfg, out = f.partitionConfig(t, "churn", fmt.Sprint(round, "-", i), `"auto"`, freeAddr(t))
			cs = append(cs, startRunLog(t, "warn", cfg, listenOf(t, cfg)))
		}
		time.Sleep(time.Duration(500+r.IntN(3000)) * time.Millisecond)
		victim := r.IntN(len(cs))
		cs[victim].cmd.Process.Signal(syscall.SIGKILL)
		<-cs[victim].done
		for _, c := range cs {
			c.stop()
			if strings.Contains(c.stderr.String(), "panic") {
				t.Fatalf("round %d: panic:\n%s", round, c.stderr.String())
			}
		}
	}
	var cs []*child
	for i := range testPartitions {
		cfg, _ := f.partitionConfig(t, "churn", fmt.Sprint("final-", i), `"auto"`, freeAddr(t))
		cs = append(cs, startRunLog(t, "warn", cfg, listenOf(t, cfg), "--until-idle", "5s"))
	}
	for i, c := range cs {
		c.wait(t, fmt.Sprint("final ", i), 2*time.Minute)
	}
	f.checkPartitioned(t, "churn", out)
}
