package datasets

import (
	"math"
	"path"
	"sort"
	"strings"
	"time"

	ctstream "github.com/trailsight/trailsight/stream"
)

// The series NABEvents makes: one write-management API of one account and
// region, named after the NAB file.
const (
	NABAccount = "123456789012"
	NABRegion  = "us-east-1"
	NABSource  = "nab.amazonaws.com"
)

// NABEventName returns the eventName NABEvents gives a file's events: its
// base name without ".csv", e.g. "Twitter_volume_AAPL".
func NABEventName(file string) string {
	return strings.TrimSuffix(path.Base(file), ".csv")
}

// nabStep returns the length of one row of s: the smallest gap between two
// rows (5 minutes for realTweets, 30 for nyc_taxi), one minute for a series
// of fewer than two rows. Rows are that long even after a gap in the data.
func nabStep(s NABSeries) time.Duration {
	step := time.Duration(0)
	for i := 1; i < len(s.Times); i++ {
		if d := s.Times[i].Sub(s.Times[i-1]); d > 0 && (step == 0 || d < step) {
			step = d
		}
	}
	if step == 0 {
		step = time.Minute
	}
	return step
}

// NABDivisor returns the factor NABRun divides s's counts by before turning
// them into events: the smallest power of ten that brings the mean rate to
// at most 50 events per minute. That is 1 for every realTweets file (at
// most 17 per minute, 3.2 M events in all) and 100 for nyc_taxi (505
// passengers per minute: 1.6 M events instead of 156 M).
func NABDivisor(s NABSeries) float64 {
	if len(s.Values) == 0 {
		return 1
	}
	var sum float64
	for _, v := range s.Values {
		if v > 0 {
			sum += v
		}
	}
	minutes := float64(len(s.Values)) * nabStep(s).Minutes()
	div := 1.0
	for sum/div/minutes > 50 {
		div *= 10
	}
	return div
}

// NABEvents turns s into CloudTrail-like events: row i's value, divided by
// divisor and rounded to the nearest integer (negative values count 0),
// becomes that many write-management API calls (AwsApiCall, eventSource
// NABSource, eventName NABEventName(s.File), account NABAccount, region
// NABRegion) spread evenly over the row's interval [t_i, t_i + step), at
// whole seconds, step being the series' smallest gap between rows. The
// events are in time order and deterministic; they carry no eventID, user
// or user agent.
func NABEvents(s NABSeries, divisor float64) []ctstream.Event {
	if divisor <= 0 || math.IsNaN(divisor) {
		divisor = 1
	}
	counts := make([]int, len(s.Values))
	total := 0
	for i, v := range s.Values {
		c := math.Round(v / divisor)
		if !(c > 0) {
			continue
		}
		counts[i] = int(min(c, 1<<30))
		total += counts[i]
	}
	step := nabStep(s)
	name := NABEventName(s.File)
	out := make([]ctstream.Event, 0, total)
	for i, c := range counts {
		start := s.Times[i].UTC()
		for k := range c {
			off := time.Duration(float64(step) * (2*float64(k) + 1) / (2 * float64(c)))
			out = append(out, ctstream.Event{
				Time:     start.Add(off).Truncate(time.Second),
				Account:  NABAccount,
				Region:   NABRegion,
				Source:   NABSource,
				Name:     name,
				Type:     "AwsApiCall",
				Category: ctstream.Management,
			})
		}
	}
	return out
}

// NABFlags returns one flag per row of s: whether one of times falls in the
// row's interval [t_i, t_i + step) (see NABEvents). Times outside every row
// are ignored.
func NABFlags(s NABSeries, times []time.Time) []bool {
	flags := make([]bool, len(s.Times))
	step := nabStep(s)
	for _, t := range times {
		i := sort.Search(len(s.Times), func(i int) bool { return s.Times[i].After(t) }) - 1
		if i >= 0 && t.Before(s.Times[i].Add(step)) {
			flags[i] = true
		}
	}
	return flags
}
