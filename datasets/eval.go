package datasets

import (
	"fmt"
	"io"
	"math"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/trailsight/trailsight/detector"
)

// EvalOptions tunes Evaluate.
type EvalOptions struct {
	// Tolerance widens every label on both sides when matching insights to
	// it; 0 means DefaultTolerance.
	Tolerance time.Duration
	// IgnoreBefore drops insights that start before it (e.g. the warm-up
	// of a detector without a saved baseline); zero keeps them all.
	IgnoreBefore time.Time
}

// DefaultTolerance is the slack around a label when matching insights.
const DefaultTolerance = 15 * time.Minute

// Report is the score of a set of insights against labels. It is
// JSON-encodable as it is.
type Report struct {
	Labels    int     `json:"labels"`    // planted anomalies (not decoys)
	Detected  int     `json:"detected"`  // labels matched by at least one insight
	Insights  int     `json:"insights"`  // insights scored (Start/End pairs count once)
	Excused   int     `json:"excused"`   // insights on the first occurrence of a recurring pattern (KindUnseen), not scored
	True      int     `json:"true"`      // insights matching a planted anomaly
	False     int     `json:"false"`     // the others, decoy hits included
	Precision float64 `json:"precision"` // True / Insights
	Recall    float64 `json:"recall"`    // Detected / Labels
	F1        float64 `json:"f1"`

	MedianDelayMinutes float64 `json:"medianDelayMinutes"` // over detected labels: first insight start - label start
	WorstDelayMinutes  float64 `json:"worstDelayMinutes"`

	// Gaps of periodic jobs (labels with PeriodMinutes), and how many were
	// reported within two periods of the first missed run (the issue's
	// target); the worst delay of the detected ones, in periods.
	PeriodicGaps         int     `json:"periodicGaps"`
	GapsWithin2Periods   int     `json:"gapsWithin2Periods"`
	WorstGapDelayPeriods float64 `json:"worstGapDelayPeriods"`

	Kinds  []KindReport  `json:"kinds"`  // burst, gap, limit, error
	Decoys []DecoyReport `json:"decoys"` // one per decoy kind present

	Missed         []Label        `json:"missed"`         // labels no insight matched
	FalseInsights  []InsightBrief `json:"falseInsights"`  // insights that matched no planted anomaly
	WrongDirection int            `json:"wrongDirection"` // false insights on a labelled series and time but in the wrong direction
	Unpaired       int            `json:"unpaired"`       // insights with only a Start or only an End
}

// KindReport is the score for one kind of anomaly. An insight belongs to the
// kind of the label it matched; an unmatched one to the kind its shape
// suggests (error rate with a throttling code: limit; other error rate:
// error; call rate below the baseline: gap; above: burst).
type KindReport struct {
	Kind               string  `json:"kind"`
	Labels             int     `json:"labels"`
	Detected           int     `json:"detected"`
	Insights           int     `json:"insights"`
	True               int     `json:"true"`
	Precision          float64 `json:"precision"`
	Recall             float64 `json:"recall"`
	MedianDelayMinutes float64 `json:"medianDelayMinutes"`
	WorstDelayMinutes  float64 `json:"worstDelayMinutes"`
}

// DecoyReport counts the insights raised on one kind of decoy.
type DecoyReport struct {
	Kind          string `json:"kind"`
	Labels        int    `json:"labels"`
	Hit           int    `json:"hit"`           // decoy labels matched by an insight
	FalseInsights int    `json:"falseInsights"` // insights that matched only decoys of this kind
}

// InsightBrief is an insight as the report lists it.
type InsightBrief struct {
	Account     string    `json:"account"`
	Region      string    `json:"region"`
	EventSource string    `json:"eventSource"`
	EventName   string    `json:"eventName"`
	InsightType string    `json:"insightType"`
	ErrorCode   string    `json:"errorCode,omitempty"`
	Start       time.Time `json:"start"`
	End         time.Time `json:"end"`
	Direction   string    `json:"direction"`
	SharedID    string    `json:"sharedEventID"`
	Why         string    `json:"why"` // "no label", "decoy-…", "wrong direction"
}

// found is one insight: its Start and End paired.
type found struct {
	brief    InsightBrief
	typ      detector.InsightType
	unpaired bool
}

// pairInsights pairs Start and End events by SharedEventID (the first of
// each state wins, so duplicate deliveries count once), in order of start.
func pairInsights(ins []detector.Insight) []found {
	type pair struct{ start, end *detector.Insight }
	pairs := map[string]*pair{}
	var order []string
	for i := range ins {
		in := &ins[i]
		p := pairs[in.SharedEventID]
		if p == nil {
			p = &pair{}
			pairs[in.SharedEventID] = p
			order = append(order, in.SharedEventID)
		}
		switch {
		case in.State == detector.Start && p.start == nil:
			p.start = in
		case in.State == detector.End && p.end == nil:
			p.end = in
		}
	}
	out := make([]found, 0, len(order))
	for _, id := range order {
		p := pairs[id]
		ref := p.start
		if ref == nil {
			ref = p.end
		}
		f := found{typ: ref.Type, unpaired: p.start == nil || p.end == nil}
		f.brief = InsightBrief{Account: ref.Account, Region: ref.Region, EventSource: ref.EventSource,
			EventName: ref.EventName, InsightType: ref.Type.String(), ErrorCode: ref.ErrorCode, SharedID: id}
		dur := time.Duration(max(ref.Stats.InsightDuration, 1)) * time.Minute
		switch {
		case p.start != nil && p.end != nil:
			f.brief.Start, f.brief.End = p.start.Time, p.end.Time
		case p.start != nil:
			f.brief.Start, f.brief.End = p.start.Time, p.start.Time.Add(dur)
		default:
			f.brief.Start, f.brief.End = p.end.Time.Add(-dur), p.end.Time
		}
		if !f.brief.End.After(f.brief.Start) {
			f.brief.End = f.brief.Start.Add(time.Minute)
		}
		f.brief.Direction = direction(p.start, p.end)
		out = append(out, f)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].brief.Start.Before(out[j].brief.Start) })
	return out
}

// direction is "above" or "below": the explanation's when there is one,
// else the Start statistics (insight average against baseline average),
// else the End's.
func direction(start, end *detector.Insight) string {
	for _, in := range []*detector.Insight{start, end} {
		if in != nil && in.Explanation != nil && in.Explanation.Direction != "" {
			return in.Explanation.Direction
		}
	}
	in := start
	if in == nil {
		in = end
	}
	if in.Stats.InsightAverage < in.Stats.BaselineAverage {
		return "below"
	}
	return "above"
}

// wantDirection is the direction an insight on a label of kind must have.
func wantDirection(kind string) string {
	if kind == KindGap || kind == KindDecoyHoliday {
		return "below"
	}
	return "above"
}

// onLabel reports whether f is on l's series (empty label fields match
// anything) and overlaps its span widened by tol.
func onLabel(f *found, l *Label, tol time.Duration) bool {
	b := &f.brief
	switch {
	case l.Account != b.Account || l.Region != "" && l.Region != b.Region,
		l.EventSource != "" && l.EventSource != b.EventSource,
		l.EventName != "" && l.EventName != b.EventName,
		l.InsightType != "" && l.InsightType != b.InsightType,
		l.ErrorCode != "" && f.typ == detector.ApiErrorRate && l.ErrorCode != b.ErrorCode:
		return false
	}
	return b.Start.Before(l.End.Add(tol)) && l.Start.Add(-tol).Before(b.End)
}

var throttleCodes = map[string]bool{"ThrottlingException": true, "Throttling": true, "RequestLimitExceeded": true,
	"TooManyRequestsException": true, "SlowDown": true, "ProvisionedThroughputExceededException": true,
	"RequestThrottled": true, "RequestThrottledException": true, "LimitExceededException": true}

// shapeKind guesses the kind of an insight that matched no label.
func shapeKind(f *found) string {
	switch {
	case f.typ == detector.ApiErrorRate && throttleCodes[f.brief.ErrorCode]:
		return KindLimit
	case f.typ == detector.ApiErrorRate:
		return KindError
	case f.brief.Direction == "below":
		return KindGap
	}
	return KindBurst
}

// Evaluate scores insights against labels. An insight is true when it is on
// the series of a planted anomaly (account, region, eventSource, eventName,
// insight type, and error code for error-rate insights), overlaps its span
// widened by opt.Tolerance, and goes the right way (below the baseline for
// gaps, above for the rest). Start and End events are paired by
// SharedEventID and count as one insight.
func Evaluate(l Labels, ins []detector.Insight, opt EvalOptions) Report {
	tol := opt.Tolerance
	if tol == 0 {
		tol = DefaultTolerance
	}
	fs := pairInsights(ins)
	if !opt.IgnoreBefore.IsZero() {
		fs = slices.DeleteFunc(fs, func(f found) bool { return f.brief.Start.Before(opt.IgnoreBefore) })
	}

	kinds := []string{KindBurst, KindGap, KindLimit, KindError}
	byKind := map[string]*KindReport{}
	r := Report{Missed: []Label{}, FalseInsights: []InsightBrief{}}
	for _, k := range kinds {
		r.Kinds = append(r.Kinds, KindReport{Kind: k})
	}
	for i := range r.Kinds {
		byKind[r.Kinds[i].Kind] = &r.Kinds[i]
	}
	decoys := map[string]*DecoyReport{}
	var decoyOrder []string
	firstHit := make([]time.Time, len(l.Labels)) // earliest matching insight start per label
	hit := make([]bool, len(l.Labels))
	for _, lb := range l.Labels {
		if lb.Kind == KindUnseen {
			continue
		}
		if lb.Decoy {
			if decoys[lb.Kind] == nil {
				decoys[lb.Kind] = &DecoyReport{Kind: lb.Kind}
				decoyOrder = append(decoyOrder, lb.Kind)
			}
			decoys[lb.Kind].Labels++
			continue
		}
		r.Labels++
		if k := byKind[lb.Kind]; k != nil {
			k.Labels++
		}
	}

	for i := range fs {
		f := &fs[i]
		r.Insights++
		if f.unpaired {
			r.Unpaired++
		}
		matched, decoyKind, wrongWay, excused := -1, "", false, false
		for j := range l.Labels {
			lb := &l.Labels[j]
			if !onLabel(f, lb, tol) {
				continue
			}
			if lb.Kind == KindUnseen {
				excused = excused || f.brief.Direction == "above"
				continue
			}
			if wantDirection(lb.Kind) != f.brief.Direction {
				wrongWay = wrongWay || !lb.Decoy
				continue
			}
			if lb.Decoy {
				hit[j] = true
				if decoyKind == "" {
					decoyKind = lb.Kind
				}
				continue
			}
			if !hit[j] || f.brief.Start.Before(firstHit[j]) {
				firstHit[j] = f.brief.Start
			}
			hit[j] = true
			if matched < 0 {
				matched = j
			}
		}
		if matched >= 0 {
			r.True++
			if k := byKind[l.Labels[matched].Kind]; k != nil {
				k.Insights++
				k.True++
			}
			continue
		}
		if excused {
			r.Insights--
			r.Excused++
			continue
		}
		r.False++
		byKind[shapeKind(f)].Insights++
		b := f.brief
		switch {
		case decoyKind != "":
			b.Why = decoyKind
			decoys[decoyKind].FalseInsights++
		case wrongWay:
			b.Why = "wrong direction"
			r.WrongDirection++
		default:
			b.Why = "no label"
		}
		r.FalseInsights = append(r.FalseInsights, b)
	}

	var all []float64
	delays := map[string][]float64{}
	for j, lb := range l.Labels {
		if lb.Kind == KindGap && lb.PeriodMinutes > 0 {
			r.PeriodicGaps++
		}
		switch {
		case lb.Kind == KindUnseen:
		case lb.Decoy:
			if hit[j] {
				decoys[lb.Kind].Hit++
			}
		case hit[j]:
			r.Detected++
			d := firstHit[j].Sub(lb.Start).Minutes()
			if lb.Kind == KindGap && lb.PeriodMinutes > 0 {
				p := d / float64(lb.PeriodMinutes)
				if p <= 2 {
					r.GapsWithin2Periods++
				}
				r.WorstGapDelayPeriods = math.Max(r.WorstGapDelayPeriods, p)
			}
			all = append(all, d)
			delays[lb.Kind] = append(delays[lb.Kind], d)
			if k := byKind[lb.Kind]; k != nil {
				k.Detected++
			}
		default:
			r.Missed = append(r.Missed, lb)
		}
	}
	for _, k := range decoyOrder {
		r.Decoys = append(r.Decoys, *decoys[k])
	}
	r.Precision, r.Recall = ratio(r.True, r.Insights), ratio(r.Detected, r.Labels)
	r.F1 = f1(r.Precision, r.Recall)
	r.MedianDelayMinutes, r.WorstDelayMinutes = medianMax(all)
	for i := range r.Kinds {
		k := &r.Kinds[i]
		k.Precision, k.Recall = ratio(k.True, k.Insights), ratio(k.Detected, k.Labels)
		k.MedianDelayMinutes, k.WorstDelayMinutes = medianMax(delays[k.Kind])
	}
	return r
}

func ratio(a, b int) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

func f1(p, r float64) float64 {
	if p+r == 0 {
		return 0
	}
	return 2 * p * r / (p + r)
}

// medianMax returns the median and the maximum of xs (0, 0 when empty).
func medianMax(xs []float64) (median, worst float64) {
	if len(xs) == 0 {
		return 0, 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	median = s[n/2]
	if n%2 == 0 {
		median = (s[n/2-1] + s[n/2]) / 2
	}
	return median, s[n-1]
}

// WriteText writes r for people: a line per kind, a line per decoy kind,
// the false insights (at most 20), the missed labels (at most 20), and last
// the line F1=… precision=… recall=….
func (r Report) WriteText(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%-7s %6s %8s %8s %6s %9s %6s %12s %11s\n",
		"kind", "labels", "detected", "insights", "true", "precision", "recall", "median delay", "worst delay")
	for _, k := range r.Kinds {
		fmt.Fprintf(&b, "%-7s %6d %8d %8d %6d %9s %6s %12s %11s\n", k.Kind, k.Labels, k.Detected, k.Insights, k.True,
			pct(k.Precision, k.Insights), pct(k.Recall, k.Labels), minutes(k.MedianDelayMinutes, k.Detected), minutes(k.WorstDelayMinutes, k.Detected))
	}
	fmt.Fprintf(&b, "%-7s %6d %8d %8d %6d %9s %6s %12s %11s\n", "all", r.Labels, r.Detected, r.Insights, r.True,
		pct(r.Precision, r.Insights), pct(r.Recall, r.Labels), minutes(r.MedianDelayMinutes, r.Detected), minutes(r.WorstDelayMinutes, r.Detected))
	if r.PeriodicGaps > 0 {
		fmt.Fprintf(&b, "\njob gaps reported within 2 periods of the first missed run: %d of %d (worst %.2f periods)\n",
			r.GapsWithin2Periods, r.PeriodicGaps, r.WorstGapDelayPeriods)
	}
	if len(r.Decoys) > 0 {
		b.WriteString("\ndecoys (insights here are false):\n")
		for _, d := range r.Decoys {
			fmt.Fprintf(&b, "  %-16s %3d labels, %3d hit, %3d false insights\n", d.Kind, d.Labels, d.Hit, d.FalseInsights)
		}
	}
	if r.Excused > 0 {
		fmt.Fprintf(&b, "\nexcused (first occurrence of a recurring pattern, not scored): %d\n", r.Excused)
	}
	if r.WrongDirection > 0 || r.Unpaired > 0 {
		fmt.Fprintf(&b, "\nwrong direction: %d, unpaired Start/End: %d\n", r.WrongDirection, r.Unpaired)
	}
	if len(r.FalseInsights) > 0 {
		fmt.Fprintf(&b, "\nfalse insights (%d):\n", len(r.FalseInsights))
		for i, f := range r.FalseInsights {
			if i == 20 {
				fmt.Fprintf(&b, "  … %d more\n", len(r.FalseInsights)-20)
				break
			}
			fmt.Fprintf(&b, "  %s  %s %s %s %s%s %s %s (%s)\n", f.Start.Format("2006-01-02T15:04Z"), f.Account, f.Region,
				f.EventSource, f.EventName, suffix(f.ErrorCode), f.InsightType, f.Direction, f.Why)
		}
	}
	if len(r.Missed) > 0 {
		fmt.Fprintf(&b, "\nmissed (%d):\n", len(r.Missed))
		for i, l := range r.Missed {
			if i == 20 {
				fmt.Fprintf(&b, "  … %d more\n", len(r.Missed)-20)
				break
			}
			fmt.Fprintf(&b, "  %s  %-5s %s %s %s %s%s %s\n", l.Start.Format("2006-01-02T15:04Z"), l.Kind, l.Account, l.Region,
				l.EventSource, l.EventName, suffix(l.ErrorCode), l.Note)
		}
	}
	fmt.Fprintf(&b, "\nF1=%.3f precision=%.3f recall=%.3f\n", r.F1, r.Precision, r.Recall)
	_, err := io.WriteString(w, b.String())
	return err
}

func pct(x float64, n int) string {
	if n == 0 {
		return "-"
	}
	return fmt.Sprintf("%.0f%%", 100*x)
}

func minutes(x float64, n int) string {
	if n == 0 {
		return "-"
	}
	if math.Abs(x) >= 120 {
		return fmt.Sprintf("%.1fh", x/60)
	}
	return fmt.Sprintf("%.0fm", x)
}

func suffix(code string) string {
	if code == "" {
		return ""
	}
	return "/" + code
}
