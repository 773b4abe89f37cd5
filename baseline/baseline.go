// Package baseline holds the learned picture of normal for one series: its
// key, its seasonal expected rate per minute, its dispersion and the rhythm
// of its periodic calls. It learns from closed hours and active minutes that
// the detector hands it, and answers "how many calls are expected in this
// minute". It does no I/O of its own beyond (de)serialising models and never
// reads the wall clock: every time is an argument, in whole minutes since the
// Unix epoch.
package baseline

import (
	"fmt"
	"math"
)

// Measure says what a series counts.
type Measure uint8

const (
	// Calls counts write management calls (ApiCallRateInsight).
	Calls Measure = iota
	// Errors counts management calls, read or write, that returned one errorCode (ApiErrorRateInsight).
	Errors
)

// String names m.
func (m Measure) String() string {
	switch m {
	case Calls:
		return "calls"
	case Errors:
		return "errors"
	}
	panic("baseline: unknown Measure")
}

// Key identifies a series. ErrorCode is set for Errors series only.
type Key struct {
	Account   string
	Region    string
	Source    string
	Name      string
	ErrorCode string
	Measure   Measure
}

// String is a readable, stable form of k, for logs and errors.
func (k Key) String() string {
	if k.Measure == Errors {
		return fmt.Sprintf("%s/%s/%s:%s[%s]", k.Account, k.Region, k.Source, k.Name, k.ErrorCode)
	}
	return fmt.Sprintf("%s/%s/%s:%s", k.Account, k.Region, k.Source, k.Name)
}

// Slots is the number of seasonal slots: hour of day × {weekday, weekend}, UTC.
const Slots = 48

// Slot returns the seasonal slot of a minute (minutes since the Unix epoch).
func Slot(minute int64) int {
	hour := int((floorDiv(minute, 60)%24 + 24) % 24)
	day := floorDiv(minute, 1440) // 1970-01-01 was a Thursday
	wd := ((day+4)%7 + 7) % 7     // 0 = Sunday
	if wd == 0 || wd == 6 {
		return 24 + hour
	}
	return hour
}

// SlotName describes a slot, e.g. "weekday 09:00 UTC".
func SlotName(slot int) string {
	kind := "weekday"
	if slot >= 24 {
		kind = "weekend"
	}
	return fmt.Sprintf("%s %02d:00 UTC", kind, slot%24)
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

// Model is the learned normal of one series. Its zero value knows nothing.
// It is 296 bytes.
type Model struct {
	Rate     [Slots]float32 // expected calls per minute in each slot
	RateN    [Slots]uint8   // hours observed per slot, capped at SlotMemory
	Mean     float32        // mean calls per minute over all observed hours (EWMA)
	LogLevel float32        // log of the recent level against the seasonal shape (EWMA over about a day)
	Peak     float32        // score of the latest reported burst, decaying (half-life about 3 days)
	Disp     float32        // dispersion index (variance / mean) of minute counts, ≥ 1
	DispN    uint16         // hours with calls behind Disp, capped at dispMemory
	Noise    float32        // κ: squared relative error of 5-minute sums against the expectation, beyond Disp (see NoiseVar)
	NoiseN   uint16         // hours behind Noise, capped at dispMemory
	Hours    uint32         // hours observed in all
	GapN     uint32         // inter-arrival gaps observed
	GapMean  float32        // mean gap between active runs, minutes
	GapM2    float32        // sum of squared deviations (Welford)
	GapMax   uint32         // longest gap seen, minutes
	LastRun  int64          // minute of the latest activity, 0 if none
	FirstRun int64          // minute of the first activity, 0 if none
}

// SlotMemory bounds how many hours a slot remembers: the weight of a new
// hour is 1/min(n+1, SlotMemory), so the first hours give a plain mean and
// later ones an exponentially weighted one (about SlotMemory/5 weeks for
// weekday slots) that follows slow growth.
const SlotMemory = 12

// Expected returns the expected calls per minute at minute. A slot never
// observed uses the same hour of the other kind of day (or the overall mean
// when that is unknown too); a slot observed once leans on it by a third.
func (m *Model) Expected(minute int64) float64 {
	return m.seasonal(minute) * m.level()
}

// seasonal is the slot's expectation, without the level.
func (m *Model) seasonal(minute int64) float64 {
	s := Slot(minute)
	switch m.RateN[s] {
	case 0:
		return m.fallback(s)
	case 1:
		return (2*float64(m.Rate[s]) + m.fallback(s)) / 3
	}
	return float64(m.Rate[s])
}

// level is the recent level of the series against its seasonal shape (1
// when on shape), bounded to [1/2, 2]: growth over days, a quiet holiday.
func (m *Model) level() float64 {
	return math.Exp(math.Max(-math.Ln2, math.Min(math.Ln2, float64(m.LogLevel))))
}

// peakDecay is the hourly decay of Peak: half-life 69 hours.
const peakDecay = 0.99

// levelHours is the time constant, in hours, of the level.
const levelHours = 24

func (m *Model) fallback(s int) float64 {
	other := (s + 24) % Slots
	if m.RateN[other] > 0 {
		return float64(m.Rate[other])
	}
	return float64(m.Mean)
}

// Established reports whether the slot of minute has been observed at
// least twice: only then is its own expectation trusted to call a silence
// unusual (the first weekend is not judged by weekdays).
func (m *Model) Established(minute int64) bool { return m.RateN[Slot(minute)] >= 2 }

// ExpectedQuiet returns the expected calls per minute at minute on the
// quietest kind of day the series has shown at that hour: on a weekday, the
// same hour of the weekend when that is lower and established. A public
// holiday is a weekday as quiet as a Sunday; a silence judged by it says
// "this is stopped", not "this is a day off".
func (m *Model) ExpectedQuiet(minute int64) float64 {
	e := m.seasonal(minute)
	if s := Slot(minute); s < 24 && m.RateN[s+24] >= 2 {
		e = math.Min(e, float64(m.Rate[s+24]))
	}
	return e * m.level()
}

// Dispersion returns the variance-to-mean ratio to score with (≥ 1).
func (m *Model) Dispersion() float64 {
	if m.Disp < 1 {
		return 1
	}
	return float64(m.Disp)
}

// ObserveHour learns from one closed hour starting at minute start, with sum
// the calls in it and sumSq the sum of squared minute counts. A clipped value
// is learned when the hour was anomalous, so that bursts barely move the
// baseline while a lasting new level is still absorbed over days.
func (m *Model) ObserveHour(start int64, sum, sumSq float64, anomalous bool) {
	s := Slot(start)
	rate := sum / 60
	exp := m.Expected(start)
	if m.RateN[s] < 2 {
		exp = math.Max(exp, float64(m.Mean)) // a slot still learning is no reference yet
	}
	if m.Hours >= 24 {
		// Robust: one hour can move a slot at most as far as 3× its expectation (+1/min).
		limit := 3*exp + 1.0/60*5
		if anomalous {
			limit = 1.5*exp + 1.0/60
		}
		rate = math.Min(rate, limit)
	}
	if base := m.seasonal(start); !anomalous && m.Hours >= 48 && m.RateN[s] >= 2 && base >= 0.05 {
		// How far this hour is from the shape, smoothed (+1 call) and
		// bounded so that one burst cannot move the level far.
		r := (sum + 1) / (base*60 + 1)
		r = math.Max(0.25, math.Min(4, r))
		// Up quickly (growth, a busy day after a quiet one), down slowly (a
		// quiet afternoon is not a new normal).
		tc := float64(levelHours)
		if lr := math.Log(r); lr > float64(m.LogLevel) {
			tc /= 4
		}
		m.LogLevel += float32((math.Log(r) - float64(m.LogLevel)) / tc)
	}
	n := int(m.RateN[s])
	w := 1 / float64(min(n+1, SlotMemory))
	m.Rate[s] += float32(w * (rate - float64(m.Rate[s])))
	if n < SlotMemory {
		m.RateN[s]++
	}
	m.Peak *= peakDecay
	hw := 1 / float64(min(int(m.Hours)+1, 24*14))
	m.Mean += float32(hw * (rate - float64(m.Mean)))
	m.Hours++
	if sum > 0 && !anomalous {
		mean := sum / 60
		v := sumSq/60 - mean*mean
		d := math.Max(1, v/mean)
		d = math.Min(d, 100)
		// A plain mean over the first hours with calls, then an exponentially
		// weighted one: a job whose calls all land in one minute is known
		// for what it is from its first runs.
		if m.DispN < dispMemory {
			m.DispN++
		}
		m.Disp += float32((d - float64(m.Disp)) / float64(m.DispN))
	}
}

// ObserveNoise learns, from one closed hour starting at minute start, how far
// its 5-minute sums strayed from the expectation: sum is the hour's calls and
// sumSq5 the sum of the squares of its twelve 5-minute sums. Call it before
// ObserveHour (the expectation must not know the hour yet). Anomalous hours
// and hours expected to hold too few calls to tell are not learned.
func (m *Model) ObserveNoise(start int64, sum, sumSq5 float64, anomalous bool) {
	if anomalous || m.Hours < noiseFrom || m.RateN[Slot(start)] == 0 {
		// An hour of a slot never seen strays from a stand-in expectation:
		// it says how little the model knows yet, not how the series wanders.
		return
	}
	e := m.Expected(start) * 5 // expected calls per 5 minutes
	if e < noiseMinBlock {
		return
	}
	dev := (sumSq5 - 2*e*sum + 12*e*e) / 12 // mean squared deviation of a 5-minute sum
	k := (dev - m.Dispersion()*e) / (e * e)
	k = math.Max(0, math.Min(k, noiseMax))
	if m.NoiseN < dispMemory {
		m.NoiseN++
	}
	m.Noise += float32((k - float64(m.Noise)) / float64(m.NoiseN))
}

// NoiseVar returns κ, the relative variance of the expectation itself: a
// window expected to hold μ calls varies by Dispersion()·μ + κ·μ². Counting
// noise alone (Disp) shrinks relative to μ as μ grows; a series whose level
// wanders (news, load, a badly known hour) does not. Until it has seen a
// few hours it leans on a prior.
func (m *Model) NoiseVar() float64 {
	n := float64(m.NoiseN)
	return (n*float64(m.Noise) + noisePriorN*noisePrior) / (n + noisePriorN)
}

const (
	noiseFrom     = 1    // hours observed before Noise is learned
	noiseMinBlock = 1    // fewest expected calls per 5 minutes to learn Noise from
	noiseMax      = 100  // the most one hour can say about κ (a guard against absurd hours, not a clip)
	noisePrior    = 0.05 // κ before any hour is learned
	noisePriorN   = 24   // weight of the prior, in hours: a day
)

// dispMemory bounds how many hours with calls Disp remembers.
const dispMemory = 48

// MinRunGap is the smallest silence, in minutes, that separates two runs of
// activity: calls closer together belong to one run (a job making several
// calls in a row).
const MinRunGap = 3

// ObserveActive records that the series was active in minute. With learn
// false the silence that ends here is not learned (it was itself reported
// as a gap, and must not teach the model that such silences are normal).
func (m *Model) ObserveActive(minute int64, learn bool) {
	if m.LastRun == 0 {
		m.FirstRun, m.LastRun = minute, minute
		return
	}
	if minute <= m.LastRun {
		return
	}
	g := minute - m.LastRun
	m.LastRun = minute
	if g < MinRunGap || !learn {
		return
	}
	m.GapN++
	d := float64(g) - float64(m.GapMean)
	m.GapMean += float32(d / float64(m.GapN))
	m.GapM2 += float32(d * (float64(g) - float64(m.GapMean)))
	if uint32(g) > m.GapMax {
		m.GapMax = uint32(g)
	}
}

// Periodic reports whether the series runs like a job with a fixed period:
// enough regular silences between runs (coefficient of variation under
// 0.25). It returns the mean silence between runs in minutes (the period
// less the length of a run) and the longest silence seen.
func (m *Model) Periodic() (period float64, longest float64, ok bool) {
	if m.GapN < 5 || m.GapMean < MinRunGap {
		return 0, 0, false
	}
	sd := math.Sqrt(float64(m.GapM2) / float64(m.GapN))
	if sd > 0.25*float64(m.GapMean) {
		return 0, 0, false
	}
	return float64(m.GapMean), float64(m.GapMax), true
}
