package detector

import "time"

// InsightType is CloudTrail's insightType.
type InsightType uint8

const (
	ApiCallRate  InsightType = iota // "ApiCallRateInsight"
	ApiErrorRate                    // "ApiErrorRateInsight"
)

// String returns CloudTrail's name for t.
func (t InsightType) String() string {
	switch t {
	case ApiCallRate:
		return "ApiCallRateInsight"
	case ApiErrorRate:
		return "ApiErrorRateInsight"
	}
	panic("detector: unknown InsightType")
}

// State is the insightDetails.state of an Insights event.
type State uint8

const (
	Start State = iota // the first unusual minute
	End                // back to normal
)

// String returns CloudTrail's name for s.
func (s State) String() string {
	switch s {
	case Start:
		return "Start"
	case End:
		return "End"
	}
	panic("detector: unknown State")
}

// Insight is one CloudTrail Insights event (a Start or an End). Its JSON
// (MarshalJSON) is byte-for-byte the shape AWS writes; see FORMATS.md.
type Insight struct {
	EventVersion  string    // "1.08"
	Time          time.Time // eventTime: the start minute (Start) or end minute (End), UTC
	Region        string    // awsRegion
	Account       string    // recipientAccountId
	EventID       string    // name-based UUID of (SharedEventID, State)
	SharedEventID string    // name-based UUID of (series, start minute)

	State       State
	EventSource string
	EventName   string
	Type        InsightType
	ErrorCode   string // ApiErrorRateInsight only; "" otherwise
	Category    string // sourceEventCategory: "Management"

	Stats        Statistics
	Attributions []Attribution // userIdentityArn, userAgent, errorCode (call rate only)
	Explanation  *Explanation  // trailsight's addition, under insightContext.explanation; nil to omit
}

// Statistics is insightContext.statistics.
type Statistics struct {
	BaselineAverage  float64 // mean calls (or errors) per minute over the baseline window
	InsightAverage   float64 // Start: rate in the first unusual minute; End: mean rate over the insight
	InsightDuration  int     // minutes from start to end (at least 1)
	BaselineDuration int     // minutes of history behind the baseline
}

// Attribution is one entry of insightContext.attributions.
type Attribution struct {
	Attribute string      // "userIdentityArn", "userAgent" or "errorCode"
	Insight   []AttrValue // top 5 by average, descending
	Baseline  []AttrValue // top 5 by average, descending; may be empty (encoded [])
}

// AttrValue is a contributor and its mean per-minute rate.
type AttrValue struct {
	Value   string
	Average float64
}

// Explanation says why trailsight raised an insight. It is not part of AWS's
// format; it is encoded under insightContext.explanation when non-nil.
type Explanation struct {
	Kind          string  `json:"kind"`                    // "burst", "gap", "drop", "errorSpike", "limit"
	Direction     string  `json:"direction"`               // "above" or "below"
	Observed      float64 `json:"observed"`                // events in the window that fired
	Expected      float64 `json:"expected"`                // expected events in that window
	BandLow       float64 `json:"bandLow"`                 // expected band for that window
	BandHigh      float64 `json:"bandHigh"`                //
	Score         float64 `json:"score"`                   // -log10 of the tail probability
	WindowMinutes int     `json:"windowMinutes"`           // the window length that fired
	Slot          string  `json:"slot,omitempty"`          // seasonal slot, e.g. "weekday 09:00"
	PeriodMinutes int     `json:"periodMinutes,omitempty"` // gaps: the job's period
	SilentMinutes int     `json:"silentMinutes,omitempty"` // gaps: minutes without a call
}
