package detector

import (
	"errors"
	"fmt"
	"path"

	"github.com/trailsight/trailsight/baseline"
)

// Rule tunes the detector for the series it matches: the first rule of
// Config.Rules whose patterns all match a series applies to it, the
// detector's own settings to the others.
type Rule struct {
	// Shell patterns (path.Match: *, ?, [a-z]) on the series' account,
	// region, event source, event name, error code ("" for call-rate
	// series) and insight type (ApiCallRateInsight, ApiErrorRateInsight).
	// An empty pattern matches anything.
	Account, Region, EventSource, EventName, ErrorCode, InsightType string
	// Mute lists the kinds of insight not reported for these series:
	// "burst" (a rate above normal: bursts, error spikes, limit hits),
	// "gap", "drop", or "all". A muted insight is still detected, so its
	// minutes are not learned as normal, and counted in Stats.Muted; its
	// Start and End are not emitted.
	Mute []string
	// Overrides of the Config fields of the same names; 0 keeps the
	// detector's own.
	Threshold float64
	MinCount  int
	MinRatio  float64
	GapFactor float64
}

// Kinds of insight a rule can mute, as bits: 1 << an open insight's kind.
const (
	muteBurst uint8 = 1 << openBurst
	muteGap   uint8 = 1 << openGap
	muteDrop  uint8 = 1 << openDrop
	muteAll         = muteBurst | muteGap | muteDrop
)

var muteKinds = map[string]uint8{"burst": muteBurst, "gap": muteGap, "drop": muteDrop, "all": muteAll}

// params are the settings that apply to one series: the detector's own, or
// with a rule's overrides.
type params struct {
	threshold, minRatio, gapFactor float64
	minCount                       int
	mute                           uint8
}

func (c Config) params() params {
	return params{threshold: c.Threshold, minRatio: c.MinRatio, gapFactor: c.GapFactor, minCount: c.MinCount}
}

// apply returns base with r's overrides.
func (r Rule) apply(base params) params {
	p := base
	if r.Threshold > 0 {
		p.threshold = r.Threshold
	}
	if r.MinRatio > 0 {
		p.minRatio = r.MinRatio
	}
	if r.GapFactor > 0 {
		p.gapFactor = r.GapFactor
	}
	if r.MinCount > 0 {
		p.minCount = r.MinCount
	}
	for _, k := range r.Mute {
		p.mute |= muteKinds[k]
	}
	return p
}

// Matches reports whether every pattern of r matches series k.
func (r Rule) Matches(k baseline.Key) bool {
	for _, pv := range [...][2]string{
		{r.Account, k.Account}, {r.Region, k.Region}, {r.EventSource, k.Source}, {r.EventName, k.Name},
		{r.ErrorCode, k.ErrorCode}, {r.InsightType, insightType(k).String()},
	} {
		if pv[0] == "" {
			continue
		}
		if ok, _ := path.Match(pv[0], pv[1]); !ok {
			return false
		}
	}
	return true
}

// ValidatePatterns reports every problem with r's patterns, each naming
// its field: for a Rule used only to match series (a filter).
func (r Rule) ValidatePatterns() error { return errors.Join(r.patternProblems()...) }

// problems lists every problem with r, each naming its field.
func (r Rule) problems() []error {
	errs := r.patternProblems()
	for _, k := range r.Mute {
		if _, ok := muteKinds[k]; !ok {
			errs = append(errs, fmt.Errorf("mute %q: want burst, gap, drop or all", k))
		}
	}
	if r.Threshold < 0 {
		errs = append(errs, fmt.Errorf("threshold %v: want > 0 (0: the detector's)", r.Threshold))
	}
	if r.MinCount < 0 {
		errs = append(errs, fmt.Errorf("min_count %d: want ≥ 1 (0: the detector's)", r.MinCount))
	}
	if r.MinRatio != 0 && !(r.MinRatio >= 1) {
		errs = append(errs, fmt.Errorf("min_ratio %v: want ≥ 1 (0: the detector's)", r.MinRatio))
	}
	if r.GapFactor != 0 && !(r.GapFactor >= 1) {
		errs = append(errs, fmt.Errorf("gap_factor %v: want ≥ 1 (0: the detector's)", r.GapFactor))
	}
	if len(r.Mute) == 0 && r.Threshold == 0 && r.MinCount == 0 && r.MinRatio == 0 && r.GapFactor == 0 {
		errs = append(errs, errors.New("sets nothing: give mute or an override (threshold, min_count, min_ratio, gap_factor)"))
	}
	return errs
}

// patternProblems lists every problem with r's patterns.
func (r Rule) patternProblems() []error {
	var errs []error
	for _, f := range [...]struct{ name, pat string }{
		{"account", r.Account}, {"region", r.Region}, {"event_source", r.EventSource},
		{"event_name", r.EventName}, {"error_code", r.ErrorCode}, {"insight_type", r.InsightType},
	} {
		if _, err := path.Match(f.pat, ""); err != nil {
			errs = append(errs, fmt.Errorf("%s %q: %w (patterns use *, ? and [a-z])", f.name, f.pat, err))
		}
	}
	if t := r.InsightType; t != "" {
		if ok1, _ := path.Match(t, ApiCallRate.String()); !ok1 {
			if ok2, _ := path.Match(t, ApiErrorRate.String()); !ok2 {
				errs = append(errs, fmt.Errorf("insight_type %q: matches neither %s nor %s", t, ApiCallRate, ApiErrorRate))
			}
		}
	}
	return errs
}

// RuleFor returns the index in c.Rules of the rule that applies to series
// k, the first that matches it; -1 when none does.
func (c Config) RuleFor(k baseline.Key) int {
	for i, r := range c.Rules {
		if r.Matches(k) {
			return i
		}
	}
	return -1
}

// paramsFor returns the settings for series k: those of the rule that
// applies to it, else the detector's own. Called once per series, when the
// detector first meets it.
func (d *Detector) paramsFor(k baseline.Key) *params {
	if i := d.cfg.RuleFor(k); i >= 0 {
		return &d.ruled[i]
	}
	return &d.base
}

// muteBit is the Mute bit of an open insight's kind.
func muteBit(o *openInsight) uint8 { return 1 << o.kind() }
