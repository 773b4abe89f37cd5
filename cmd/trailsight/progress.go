package main

import (
	"fmt"
	"os"
	"sync/atomic"
	"time"

	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"
)

// progress is the bar shown on a terminal during long work: files, bytes,
// events per second and the time left.
type progress struct {
	p   *mpb.Progress
	bar *mpb.Bar
}

func newProgress(bytes int64, events *atomic.Int64) *progress {
	p := mpb.New(mpb.WithOutput(os.Stderr), mpb.WithWidth(40), mpb.WithRefreshRate(200*time.Millisecond))
	start := time.Now()
	rate := decor.Any(func(decor.Statistics) string {
		s := time.Since(start).Seconds()
		if s <= 0 {
			return ""
		}
		return fmt.Sprintf("%s events, %.0fk/s", compact(events.Load()), float64(events.Load())/s/1000)
	})
	bar := p.New(bytes, mpb.BarStyle(),
		mpb.PrependDecorators(decor.Name("detect "), decor.CountersKibiByte("% .1f / % .1f")),
		mpb.AppendDecorators(rate, decor.Name("  ETA "), decor.AverageETA(decor.ET_STYLE_GO)),
	)
	return &progress{p: p, bar: bar}
}

// Done records one file of size bytes.
func (p *progress) Done(size int64) { p.bar.IncrInt64(size) }

// Wait completes the bar and waits for its last refresh.
func (p *progress) Wait() {
	p.bar.SetTotal(-1, true)
	p.p.Wait()
}

func compact(n int64) string {
	switch {
	case n >= 1e6:
		return fmt.Sprintf("%.1fM", float64(n)/1e6)
	case n >= 1e3:
		return fmt.Sprintf("%.1fk", float64(n)/1e3)
	}
	return fmt.Sprint(n)
}
