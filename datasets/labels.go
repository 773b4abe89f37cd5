package datasets

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"time"
)

// Label kinds. Planted anomalies use the plain kinds; decoys (activity that
// looks unusual but must not be reported) use the decoy- kinds and have
// Decoy set; KindUnseen is neither.
const (
	KindBurst = "burst" // write calls far above their usual rate
	KindGap   = "gap"   // a periodic job or a steady flow stops
	KindLimit = "limit" // a share of an API's calls fail with the service's throttling code
	KindError = "error" // access-denied enumeration: errors on several APIs

	KindDecoyReadBurst = "decoy-readburst" // a burst of read-only calls
	KindDecoyDataBurst = "decoy-databurst" // a burst of data events (S3 PutObject)
	KindDecoyGrowth    = "decoy-growth"    // slow growth, 30% a week
	KindDecoyWeekly    = "decoy-weekly"    // the same peak every week
	KindDecoyHoliday   = "decoy-holiday"   // a weekday as quiet as a Sunday
	KindDecoyDeploy    = "decoy-deploy"    // a rate doubled for ten minutes every weekday at the same time

	// KindUnseen marks the first occurrence of a recurring pattern (the
	// weekly peak, the daily deploy) in the archive: the pattern was
	// established before the archive begins, but nothing in the archive up
	// to then tells it from an anomaly of the same shape, so an insight on
	// it is neither true nor false (Report.Excused). Later occurrences are
	// decoys.
	KindUnseen = "unseen"
)

// Label is one planted anomaly or decoy: a series (fields left empty match
// any value, as in a holiday that touches every series of an account and
// region) and a half-open time span [Start, End).
type Label struct {
	Kind        string    `json:"kind"`
	InsightType string    `json:"insightType,omitempty"` // ApiCallRateInsight or ApiErrorRateInsight; "" for any
	Account     string    `json:"account"`
	Region      string    `json:"region"`
	EventSource string    `json:"eventSource,omitempty"`
	EventName   string    `json:"eventName,omitempty"`
	ErrorCode   string    `json:"errorCode,omitempty"`
	Start       time.Time `json:"start"`
	End         time.Time `json:"end"`
	Decoy       bool      `json:"decoy,omitempty"`
	Note        string    `json:"note,omitempty"`
	// PeriodMinutes is the period of the job whose gap this is (0 for a
	// steady flow and other kinds); Start is then its first missed run.
	PeriodMinutes int `json:"periodMinutes,omitempty"`
}

// Labels is the content of a scenario's labels.json.
type Labels struct {
	Scenario string    `json:"scenario"`
	Seed     int64     `json:"seed"`
	Start    time.Time `json:"start"` // first minute of the archive
	End      time.Time `json:"end"`   // end of the archive (exclusive)
	Labels   []Label   `json:"labels"`
}

// ReadLabels reads a labels.json file written by Generate.
func ReadLabels(path string) (Labels, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Labels{}, fmt.Errorf("datasets: read labels: %w", err)
	}
	l, err := ParseLabels(data)
	if err != nil {
		return Labels{}, fmt.Errorf("datasets: %s: %w", path, err)
	}
	return l, nil
}

// ParseLabels decodes and checks labels.json content. Unknown fields are
// rejected so that a typo in a hand-written file is not silently ignored.
func ParseLabels(data []byte) (Labels, error) {
	var l Labels
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&l); err != nil {
		return Labels{}, fmt.Errorf("decode labels: %w", err)
	}
	if err := l.Validate(); err != nil {
		return Labels{}, err
	}
	return l, nil
}

// Validate checks that every label has a known kind, a non-empty span, an
// account, and a decoy flag that agrees with its kind.
func (l Labels) Validate() error {
	for i, lb := range l.Labels {
		decoy, ok := kindIsDecoy(lb.Kind)
		switch {
		case !ok:
			return fmt.Errorf("label %d: unknown kind %q", i, lb.Kind)
		case decoy != lb.Decoy:
			return fmt.Errorf("label %d: kind %q with decoy=%v", i, lb.Kind, lb.Decoy)
		case !lb.End.After(lb.Start):
			return fmt.Errorf("label %d: end %s not after start %s", i, lb.End, lb.Start)
		case lb.Account == "":
			return fmt.Errorf("label %d: no account", i)
		case lb.InsightType != "" && lb.InsightType != "ApiCallRateInsight" && lb.InsightType != "ApiErrorRateInsight":
			return fmt.Errorf("label %d: unknown insight type %q", i, lb.InsightType)
		}
	}
	return nil
}

// kindIsDecoy reports whether kind names a decoy, and whether it is known.
func kindIsDecoy(kind string) (decoy, known bool) {
	switch kind {
	case KindBurst, KindGap, KindLimit, KindError, KindUnseen:
		return false, true
	case KindDecoyReadBurst, KindDecoyDataBurst, KindDecoyGrowth, KindDecoyWeekly, KindDecoyHoliday, KindDecoyDeploy:
		return true, true
	}
	return false, false
}

// WriteLabels writes l as indented JSON to path.
func WriteLabels(path string, l Labels) error {
	data, err := json.MarshalIndent(l, "", "  ")
	if err != nil {
		return fmt.Errorf("datasets: encode labels: %w", err)
	}
	data = append(data, '\n')
	if err := os.WriteFile(path, data, 0o644); err != nil {
		return fmt.Errorf("datasets: write labels: %w", err)
	}
	return nil
}
