package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/klauspost/compress/gzip"

	"github.com/trailsight/trailsight/datasets"
	"github.com/trailsight/trailsight/stream"
)

type benchCmd struct {
	In       string  `help:"Archive to measure on; default: generate one (see --days, --accounts, --scale) in a temporary folder." placeholder:"DIR"`
	Days     int     `help:"Days of the generated archive." default:"14"`
	Accounts int     `help:"Accounts of the generated archive." default:"4"`
	Scale    float64 `help:"Rate multiplier of the generated archive." default:"4"`
	Seed     int64   `help:"Seed of the generated archive." default:"1"`
	Runs     int     `help:"Runs of each pass; the fastest counts." default:"2"`
	Workers  int     `help:"Decode workers (0: one per CPU)." default:"0"`
}

func (c *benchCmd) Help() string {
	return `Measures backfill speed against its floor. In one run, on the same files (read once first so
they are in the page cache), each pass in its own process:
  gunzip   klauspost gunzip of every file, nothing else
  floor    gunzip + decode into events (stream.DecodeFiles), nothing else
  detect   the whole trailsight detect, insights written to a temporary folder
and prints records/s, max RSS, and detect/floor: the share of the floor's speed that detect keeps
(target ≥ 0.8 on 2 cores).

Example: trailsight bench --days 14 --accounts 4 --scale 4   (about 5 M events)`
}

func (c *benchCmd) Run(g *globals) error {
	dir := c.In
	if dir == "" {
		tmp, err := os.MkdirTemp("", "trailsight-bench-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		dir = filepath.Join(tmp, "archive")
		fmt.Fprintf(os.Stderr, "generating %d days, %d accounts, scale %g …\n", c.Days, c.Accounts, c.Scale)
		t := time.Now()
		_, st, err := datasets.Generate(g.ctx, datasets.GenOptions{Out: dir, Days: c.Days, Seed: c.Seed, Scale: c.Scale, Accounts: c.Accounts})
		if err != nil {
			return fmt.Errorf("generate: %w", err)
		}
		fmt.Fprintf(os.Stderr, "generated %+v in %.1fs\n", st, time.Since(t).Seconds())
	}
	files, _, err := stream.ListDir(dir, time.Time{}, time.Time{})
	if err != nil {
		return err
	}
	var size int64
	for _, f := range files {
		b, err := os.ReadFile(f.Path) // into the page cache
		if err != nil {
			return err
		}
		size += int64(len(b))
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	out, err := os.MkdirTemp("", "trailsight-bench-out-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(out)
	w := fmt.Sprint(c.Workers)
	passes := []struct {
		name string
		args []string
	}{
		{"gunzip", []string{"bench-pass", "--pass", "gunzip", "--workers", w, dir}},
		{"floor", []string{"bench-pass", "--pass", "decode", "--workers", w, dir}},
		{"detect", []string{"--log-level", "error", "detect", "--in", dir, "--out", out, "--progress", "never", "--workers", w, "--summary-json", filepath.Join(out, "summary.json")}},
	}
	type result struct {
		secs   float64
		rss    int64
		events int64
	}
	res := map[string]result{}
	for _, p := range passes {
		best := result{secs: -1}
		for r := 0; r < max(c.Runs, 1); r++ {
			os.RemoveAll(filepath.Join(out, "AWSLogs"))
			var stdout, stderr bytes.Buffer
			cmd := exec.CommandContext(g.ctx, self, p.args...)
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			t := time.Now()
			if err := cmd.Run(); err != nil {
				os.Stderr.Write(stderr.Bytes())
				return fmt.Errorf("bench pass %s: %w", p.name, err)
			}
			secs := time.Since(t).Seconds()
			var rss int64
			if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
				rss = ru.Maxrss * 1024
			}
			var n int64
			if p.name == "detect" {
				var s summary
				b, _ := os.ReadFile(filepath.Join(out, "summary.json"))
				_ = json.Unmarshal(b, &s)
				n = s.Events
			} else {
				fmt.Sscan(stdout.String(), &n)
			}
			if best.secs < 0 || secs < best.secs {
				best = result{secs, rss, n}
			}
		}
		res[p.name] = best
	}
	fmt.Printf("archive   %s: %d files, %s gzip'd, %d events, GOMAXPROCS %d\n", dir, len(files), humanBytes(size), res["floor"].events, runtime.GOMAXPROCS(0))
	fmt.Printf("%-8s %9s %14s %10s %12s\n", "pass", "seconds", "events/s", "× gunzip", "max RSS")
	for _, p := range passes {
		r := res[p.name]
		ev := res["floor"].events
		fmt.Printf("%-8s %9.2f %14.0f %10.2f %12s\n", p.name, r.secs, float64(ev)/r.secs, r.secs/res["gunzip"].secs, humanBytes(r.rss))
	}
	fmt.Printf("detect/floor = %.2f  (speed of the whole detect as a share of gunzip+decode alone; target ≥ 0.8)\n",
		res["floor"].secs/res["detect"].secs)
	return nil
}

// benchPassCmd is one timed pass of bench, run in its own process so that
// its time and memory are its own.
type benchPassCmd struct {
	Pass    string `enum:"gunzip,decode" required:""`
	Workers int    `default:"0"`
	Dir     string `arg:""`
}

func (c *benchPassCmd) Run(g *globals) error {
	files, _, err := stream.ListDir(c.Dir, time.Time{}, time.Time{})
	if err != nil {
		return err
	}
	var n atomic.Int64
	switch c.Pass {
	case "gunzip":
		err = gunzipAll(g.ctx, files, c.Workers, &n)
	case "decode":
		ch := make(chan stream.Batch, 16)
		go func() {
			defer close(ch)
			err = stream.DecodeFiles(g.ctx, files, stream.OpenFile, c.Workers, ch)
		}()
		for b := range ch {
			n.Add(int64(len(b.Events)))
			b.Release()
		}
	}
	fmt.Println(n.Load())
	return err
}

func gunzipAll(ctx context.Context, files []stream.File, workers int, n *atomic.Int64) error {
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	jobs := make(chan stream.File)
	var wg sync.WaitGroup
	var firstErr error
	var mu sync.Mutex
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			zr := new(gzip.Reader)
			for f := range jobs {
				fh, err := os.Open(f.Path)
				if err == nil {
					if err = zr.Reset(fh); err == nil {
						var c int64
						c, err = io.Copy(io.Discard, zr)
						n.Add(c)
					}
					fh.Close()
				}
				if err != nil {
					mu.Lock()
					firstErr = fmt.Errorf("gunzip %s: %w", f.Path, err)
					mu.Unlock()
				}
			}
		}()
	}
	for _, f := range files {
		if ctx.Err() != nil {
			break
		}
		jobs <- f
	}
	close(jobs)
	wg.Wait()
	return firstErr
}
