package detector

import (
	"time"

	"github.com/trailsight/trailsight/baseline"
)

// SeriesHistory is what a series held when History was called: its counts
// of the closed hours and minutes the detector still keeps, each beside
// what the series' model expects of it now. It is a copy: it stays valid
// after further Adds, but it is not updated by them.
type SeriesHistory struct {
	Key baseline.Key
	// Closed is the end (exclusive) of the newest closed minute: no point
	// reaches past it.
	Closed time.Time
	// Hours are the hours the hourly ring holds (a week), oldest first,
	// none from before the detector's first event (or its model's); the
	// last may be the current hour's closed minutes (Minutes < 60).
	Hours []Point
	// Minutes are the closed minutes the minute ring still holds (about 2
	// hours with the default lateness), oldest first.
	Minutes []Point
	// Open reports an insight open on the series now.
	Open bool
}

// Point is one minute or hour of a series: what was counted and what the
// series' model expects of it.
type Point struct {
	Time     time.Time // the start of the minute or hour, UTC
	Minutes  int       // minutes it covers: 1, 60, or fewer for the current hour
	Observed float64   // events counted
	// Expected is what burst tests expect: baseline.Model.Expected, or
	// 3/4 of what the same hour held a week before when that is more.
	Expected float64
	// Quiet is what gaps and drops are judged by: the series' quietest
	// kind of day at that hour (baseline.Model.ExpectedQuiet).
	Quiet float64
	// Low and High are the band around Expected that explanations report.
	Low, High float64
}

// History returns the recent counts of series k with what its model
// expects of them, for charts: call it right after receiving an insight's
// End, while the minute ring still holds the insight's last minutes. The
// expectations are the model's now — after the insight, which the model did
// not learn — not the ones each minute was scored against. It does no work
// unless called; false if the detector does not know k.
func (d *Detector) History(k baseline.Key) (SeriesHistory, bool) {
	sid, ok := d.ids[k]
	if !ok || !d.started {
		return SeriesHistory{}, false
	}
	s := d.series[sid]
	h := SeriesHistory{Key: k, Closed: time.Unix((d.closed+1)*60, 0).UTC(), Open: s.open != nil}
	disp := s.model.Dispersion()
	point := func(first int64, mins int, obs float64) Point {
		exp := d.expectedSum(s, first+int64(mins)-1, mins)
		var quiet float64
		for t := first; t < first+int64(mins); t++ {
			quiet += s.model.ExpectedQuiet(t)
		}
		lo, hi := band(exp, disp)
		return Point{Time: time.Unix(first*60, 0).UTC(), Minutes: mins, Observed: obs, Expected: exp, Quiet: quiet, Low: lo, High: hi}
	}

	firstHour := max(s.hourTop-hourRing+1, floorDiv(d.start+59, 60))
	for hr := firstHour; hr <= s.hourTop; hr++ {
		h.Hours = append(h.Hours, point(hr*60, 60, float64(s.hour(hr))))
	}
	if cur := (s.hourTop + 1) * 60; d.closed >= cur {
		h.Hours = append(h.Hours, point(cur, int(d.closed-cur+1), d.windowSum(s, d.closed, int(d.closed-cur+1))))
	}

	// The minutes the ring holds exactly: the detector reads back ringReach
	// minutes at most, and frees a ring only when nothing in them is left
	// (see dropRing), so the last ringReach closed minutes are exact; a
	// ring of n minutes ending at ringTop holds no older ones.
	lo := max(d.closed-ringReach+1, d.from)
	if s.ring.ok() {
		lo = max(lo, s.ringTop-int64(s.ring.len())+1)
	}
	for t := lo; t <= d.closed; t++ {
		h.Minutes = append(h.Minutes, point(t, 1, float64(s.count(t))))
	}
	return h, true
}

// Key returns the series key of the insight (see baseline.Key).
func (ins *Insight) Key() baseline.Key {
	k := baseline.Key{Account: ins.Account, Region: ins.Region, Source: ins.EventSource, Name: ins.EventName, Measure: baseline.Calls}
	if ins.Type == ApiErrorRate {
		k.ErrorCode, k.Measure = ins.ErrorCode, baseline.Errors
	}
	return k
}
