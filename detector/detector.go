// Package detector turns CloudTrail events into CloudTrail Insights events.
//
// It counts events per event-time minute and per series (see baseline.Key),
// closes a minute when the watermark — the latest event time seen minus the
// allowed lateness — passes it, scores closed minutes against each series'
// baseline.Model over several window lengths, and runs the Start/End state
// machine:
//
//	Normal ──(a window scores past the threshold)──► Open: Start emitted
//	Open ──(Calm minutes back within the band)──► Normal: End emitted
//	Normal ──(a reliable series is silent far longer than it ever is)──► Open (gap)
//	Open (gap) ──(the series is active again)──► Normal: End emitted
//
// It does no I/O and never reads the wall clock: the same events give the
// same insights, however they are chunked, as long as they arrive within the
// allowed lateness. Insight IDs are derived from the series and the start
// minute (see SharedEventID), so a replay produces the same IDs.
package detector

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/trailsight/trailsight/baseline"
	"github.com/trailsight/trailsight/stream"
)

// Config tunes the detector. DefaultConfig gives the defaults; Validate
// checks a modified one.
type Config struct {
	// Lateness is how long after an event time its minute stays open for
	// late events.
	Lateness time.Duration
	// Windows are the window lengths, in minutes, scored at every closed
	// minute. Each must be between 1 and 60.
	Windows []int
	// Threshold is the score (-log10 of the tail probability) a window must
	// reach to open an insight. The default, 7, is ThresholdForBudget(1):
	// about one false insight per 1,000 series-days on normal traffic.
	Threshold float64
	// MinCount is the fewest events a window must hold to open a burst.
	MinCount int
	// MinRatio is how many times its expectation a window must hold.
	MinRatio float64
	// Calm is how many consecutive minutes back within the band end an
	// insight; flapping within it stays one insight.
	Calm int
	// Warmup is how long after the first event no insight is raised while
	// the baselines learn.
	Warmup time.Duration
	// GapFactor: a periodic job is reported as stopped when it has been
	// silent for GapFactor times the longest silence it ever had.
	GapFactor float64
	// BaselineWindow is the window of the reported baseline.average
	// (AWS: the 7 days before the start).
	BaselineWindow time.Duration
	// Explain attaches an Explanation to every insight.
	Explain bool
	// Early declares bursts on the event that puts a window of up to 5
	// minutes past the threshold, before the minute closes (late events
	// only add to counts): Starts within the minute in a stream.
	Early bool
	// PeakCap: after a burst, the series must score higher than that burst
	// (decaying over days) to raise another, up to PeakCap×Threshold. 0
	// turns this off.
	PeakCap float64
	// Rules tune the detector per series (see Rule): the first that
	// matches a series applies to it.
	Rules []Rule
}

// budgetThreshold is the threshold for a budget of one false insight per
// 1,000 series-days: 4 windows scored at 1,440 minutes a day make 5,760
// tests a series-day, and 5,760 × 10^-6.76 = 10^-3; rounded up to 7 because
// real traffic's tails are heavier than the model's (measured: `make quality`'s
// background-only run stays under the budget).
const budgetThreshold = 7

// ThresholdForBudget returns the threshold that keeps false insights near
// budget per 1,000 series-days of normal traffic: false insights scale with
// the tail probability 10^-threshold, so each factor of 10 in the budget
// moves the threshold by 1 (budget 1: 7; 10: 6; 0.1: 8).
func ThresholdForBudget(budget float64) float64 { return budgetThreshold - math.Log10(budget) }

// BudgetForThreshold is the inverse of ThresholdForBudget.
func BudgetForThreshold(threshold float64) float64 {
	return math.Pow(10, budgetThreshold-threshold)
}

// DefaultConfig returns the defaults described on Config.
func DefaultConfig() Config {
	return Config{
		Lateness:       15 * time.Minute,
		Windows:        []int{1, 5, 15, 60},
		Threshold:      ThresholdForBudget(1),
		MinCount:       5,
		MinRatio:       2.5,
		Calm:           5,
		Warmup:         24 * time.Hour,
		GapFactor:      2,
		BaselineWindow: 7 * 24 * time.Hour,
		Explain:        true,
		PeakCap:        5,
		Early:          true,
	}
}

// Validate reports every problem with c, each naming its field.
func (c Config) Validate() error {
	var errs []error
	if c.Lateness < 0 || c.Lateness > 3*time.Hour {
		errs = append(errs, fmt.Errorf("lateness %v: want 0 to 3h", c.Lateness))
	}
	if len(c.Windows) == 0 {
		errs = append(errs, errors.New("windows: want at least one"))
	}
	for _, w := range c.Windows {
		if w < 1 || w > maxWindow {
			errs = append(errs, fmt.Errorf("windows: %d minutes: want 1 to %d", w, maxWindow))
		}
	}
	if !(c.Threshold > 0) {
		errs = append(errs, fmt.Errorf("threshold %v: want > 0", c.Threshold))
	}
	if c.MinCount < 1 {
		errs = append(errs, fmt.Errorf("min_count %d: want ≥ 1", c.MinCount))
	}
	if c.MinRatio < 1 {
		errs = append(errs, fmt.Errorf("min_ratio %v: want ≥ 1", c.MinRatio))
	}
	if c.Calm < 1 {
		errs = append(errs, fmt.Errorf("calm %d: want ≥ 1", c.Calm))
	}
	if c.Warmup < 0 {
		errs = append(errs, fmt.Errorf("warmup %v: want ≥ 0", c.Warmup))
	}
	if c.GapFactor < 1 {
		errs = append(errs, fmt.Errorf("gap_factor %v: want ≥ 1", c.GapFactor))
	}
	if c.BaselineWindow < time.Hour || c.BaselineWindow > 7*24*time.Hour {
		errs = append(errs, fmt.Errorf("baseline_window %v: want 1h to 168h", c.BaselineWindow))
	}
	for i, r := range c.Rules {
		for _, err := range r.problems() {
			errs = append(errs, fmt.Errorf("rules[%d]: %w", i, err))
		}
	}
	return errors.Join(errs...)
}

const (
	maxWindow     = 60       // longest scoring window, minutes
	week          = 168      // hours in a week
	hourRing      = week + 2 // hours of counts kept per series: the AWS baseline window, and last week's hours for windows that reach into the previous hour
	maxAttrs      = 16       // distinct (identity, agent, error) triples kept per series-minute
	topAttrs      = 8        // contributors remembered per attribute for the baseline
	topReported   = 5        // contributors reported per attribute (AWS: 5)
	eventVersion  = "1.08"
	nullErrorCode = "null" // AWS's errorCode attribution value for calls without error
)

// throttling lists error codes that mean a service limit was hit.
var throttling = map[string]bool{
	"ThrottlingException": true, "Throttling": true, "RequestLimitExceeded": true,
	"TooManyRequestsException": true, "LimitExceededException": true, "SlowDown": true,
	"RequestThrottled": true, "RequestThrottledException": true, "ProvisionedThroughputExceededException": true,
	"Client.RequestLimitExceeded": true, "ServiceQuotaExceededException": true,
}

// Stats counts what the detector saw.
type Stats struct {
	Events    int64 // events added
	Counted   int64 // events that fed at least one series
	Late      int64 // events whose minute was already closed (dropped)
	Muted     int64 // insights detected on series whose rule mutes their kind (not emitted)
	Series    int   // series known
	Open      int   // insights open now
	Starts    map[string]int
	Watermark time.Time
}

// Detector is the streaming anomaly detector. It is not safe for concurrent
// use: one goroutine adds events and advances it.
type Detector struct {
	cfg     Config
	lateMin int64
	ring    int64 // per-series minute ring size, a power of two
	warmMin int64
	baseMin int64
	early   []int    // the windows tryEarly tests
	base    params   // the settings of series no rule matches
	ruled   []params // the settings of cfg.Rules' series, in order

	ids    map[baseline.Key]uint32
	series []*series
	names  names // contributor values of series (battr) and minutes (pend)

	cfgChanges string // set by RestoreState: how cfg differs from the restored state's
	started    bool
	loaded     bool  // started from saved models (LoadModels)
	start      int64 // first minute the detector knows about
	from       int64 // first minute of its own events: before it, a warm start knows hours only from its model
	maxSec     int64 // largest event time seen, Unix seconds
	closed     int64 // every minute ≤ closed is closed

	pend   map[int64]*minuteBucket // open minutes and the last maxWindow closed ones
	lastB  *minuteBucket
	lastBm int64
	open   map[uint32]struct{}
	armed  []uint32
	out    []Insight
	stats  Stats
}

// minuteBucket holds what a minute still open, or one of the last
// maxWindow closed ones, needs beyond its counts: the series it touched and
// their contributors, all series' in one slice (a series touching a minute
// usually has one or two contributor triples: a slice and a map of its own
// would cost more than its triples).
type minuteBucket struct {
	sids  []uint32          // series first touched in this minute, in order
	first map[uint32]int32  // series → index in e of its first contributor triple
	e     []attrEntry       // contributor triples, each series' chained by next in arrival order
	other map[uint32]uint32 // series → events whose triple did not fit (nil until one)
}

// attrEntry counts the events of one (identity, user agent, error code)
// triple of a series in a minute. The values are IDs in the detector's
// names; err is 0 ("") for error series.
type attrEntry struct {
	arn, ua, err uint32
	n            uint32
	next         int32 // index in the bucket of the series' next triple, -1 at the end
}

// head returns the index of the first contributor triple of series sid, -1
// if it has none in this minute.
func (b *minuteBucket) head(sid uint32) int32 {
	if i, ok := b.first[sid]; ok {
		return i
	}
	return -1
}

// add counts an event of series sid by the triple (arn, ua, err). A series
// keeps up to maxAttrs triples a minute; events of further ones are only
// counted in other.
func (b *minuteBucket) add(n *names, sid uint32, arn, ua, err string) {
	i := b.head(sid)
	if i < 0 {
		b.first[sid] = int32(len(b.e))
		b.e = append(b.e, attrEntry{n.id(arn), n.id(ua), n.id(err), 1, -1})
		return
	}
	for k := 1; ; k++ {
		e := &b.e[i]
		if n.strs[e.arn] == arn && n.strs[e.ua] == ua && n.strs[e.err] == err {
			e.n++
			return
		}
		if e.next < 0 {
			if k >= maxAttrs {
				if b.other == nil {
					b.other = map[uint32]uint32{}
				}
				b.other[sid]++
				return
			}
			e.next = int32(len(b.e))
			b.e = append(b.e, attrEntry{n.id(arn), n.id(ua), n.id(err), 1, -1})
			return
		}
		i = e.next
	}
}

// freeze trims a closed minute's slices to their length: nothing is added
// to it any more, and it is kept for maxWindow minutes.
func (b *minuteBucket) freeze() {
	b.sids = slices.Clip(slices.Clone(b.sids))
	b.e = slices.Clip(slices.Clone(b.e))
}

// topK is a space-saving summary of the heaviest contributors, with decay.
// Values are IDs in the detector's names.
type topK struct {
	v [topAttrs]uint32
	c [topAttrs]float32
}

func (t *topK) add(v uint32, n float32) {
	mi := 0
	for i := range t.v {
		if t.c[i] > 0 && t.v[i] == v {
			t.c[i] += n
			return
		}
		if t.c[i] < t.c[mi] {
			mi = i
		}
	}
	t.v[mi] = v
	t.c[mi] += n
}

func (t *topK) decay(f float32) {
	for i := range t.c {
		t.c[i] *= f
	}
}

type openInsight struct {
	gap       bool  // a silence: ends when calls are back (or goes on as a drop, see continueOpen)
	resumed   int64 // a gap's first minute with calls again, 0 before
	drop      bool  // a rate far below the quietest day's: ends when the rate is back
	start     int64 // first unusual minute
	lastAnom  int64 // latest unusual minute
	folded    int64 // minutes ≤ folded are counted into total/attrs
	total     float64
	attrs     [3]map[string]float64
	baseline  float64
	baseDur   int
	baseAttrs []Attribution
	expl      *Explanation
	shared    string
	muted     bool // its series' rule mutes its kind: Start and End are not emitted
}

type series struct {
	key      baseline.Key
	p        *params // the settings that apply to it (Detector.paramsFor)
	model    baseline.Model
	ring     counts // minute counts, indexed by minute & (len-1); not allocated while the series is silent (see dropRing)
	ringTop  int64  // newest minute the ring holds
	hourly   counts // hourRing hourly counts, indexed by hour % hourRing
	hourTop  int64  // newest hour index (minute/60) in hourly
	battr    [3]topK
	bmin     float32 // decayed minutes behind battr
	silent   float64 // expected events since the last activity (armed series)
	touched  int64   // last minute this series was processed
	anomHour bool    // an insight was open during the current hour
	lastEnd  int64   // minute the previous insight ended
	open     *openInsight
}

func (s *series) count(m int64) uint32 {
	n := int64(s.ring.len())
	if m > s.ringTop || m <= s.ringTop-n {
		return 0
	}
	return s.ring.get(int(m & (n - 1)))
}

// hour returns the count of hour h, which must be within the hourly ring.
func (s *series) hour(h int64) uint32 { return s.hourly.get(int(h % hourRing)) }

func (s *series) setHour(h int64, v uint32) { s.hourly.set(int(h%hourRing), v) }

// ringReach is how far before the newest closed minute the minute counts
// are ever read: a window of up to maxWindow minutes, and the hour before
// its start for the baseline average.
const ringReach = 2 * maxWindow

// dropRing frees the minute ring of a series silent since before every
// minute that can still be read (all read as 0 with or without it): most
// series of an account are called rarely, and hold only their hours and
// model between calls.
func (s *series) dropRing(closed int64) {
	if s.ring.ok() && s.ringTop < closed-ringReach {
		s.ring = counts{}
	}
}

// New returns a detector with cfg, which must be valid.
func New(cfg Config) (*Detector, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("detector config: %w", err)
	}
	late := int64(cfg.Lateness / time.Minute)
	ring := int64(128)
	for ring < late+maxWindow+4 {
		ring *= 2
	}
	var early []int
	for _, w := range cfg.Windows {
		if w <= earlyMaxWindow {
			early = append(early, w)
		}
	}
	base := cfg.params()
	ruled := make([]params, len(cfg.Rules))
	for i, r := range cfg.Rules {
		ruled[i] = r.apply(base)
	}
	return &Detector{
		base:    base,
		ruled:   ruled,
		early:   early,
		cfg:     cfg,
		lateMin: late,
		ring:    ring,
		warmMin: int64(cfg.Warmup / time.Minute),
		baseMin: int64(cfg.BaselineWindow / time.Minute),
		ids:     make(map[baseline.Key]uint32),
		names:   newNames(),
		pend:    make(map[int64]*minuteBucket),
		open:    make(map[uint32]struct{}),
		stats:   Stats{Starts: map[string]int{}},
	}, nil
}

// Add counts one event. Events whose minute is already closed are counted as
// late and dropped.
func (d *Detector) Add(ev *stream.Event) {
	sec := ev.Time.Unix()
	m := floorDiv(sec, 60)
	if !d.started {
		d.start0(m, sec)
	}
	d.stats.Events++
	if m <= d.closed {
		d.stats.Late++
		return
	}
	if sec > d.maxSec {
		d.maxSec = sec
		// Close what the new watermark allows now, whatever the caller's
		// rhythm of Advance calls: chunking never changes the result.
		if t := floorDiv(sec-d.lateMin*60, 60) - 1; t > d.closed {
			d.closeThrough(t)
		}
	}
	counted := false
	if ev.IsWriteManagement() {
		e := nullErrorCode
		if ev.ErrorCode != "" {
			e = ev.ErrorCode
		}
		d.count(baseline.Key{Account: ev.Account, Region: ev.Region, Source: ev.Source, Name: ev.Name, Measure: baseline.Calls}, m, ev.UserArn, ev.UserAgent, e)
		counted = true
	}
	if ev.IsManagementError() {
		d.count(baseline.Key{Account: ev.Account, Region: ev.Region, Source: ev.Source, Name: ev.Name, ErrorCode: ev.ErrorCode, Measure: baseline.Errors}, m, ev.UserArn, ev.UserAgent, "")
		counted = true
	}
	if counted {
		d.stats.Counted++
	}
}

// start0 sets the clock from the first event.
func (d *Detector) start0(m, sec int64) {
	d.started = true
	first := m - d.lateMin
	d.closed = first - 1
	d.from = first
	d.maxSec = sec
	if !d.loaded || first < d.start {
		d.start = first
	}
	for _, s := range d.series { // loaded series: nothing counted before now
		s.ringTop, s.touched = d.closed, d.closed
		// Hours between the model's last hour and now are learned as they
		// close; the ones skipped over (the model is older than the events)
		// are not, beyond clearing their counts.
		if h := floorDiv(d.closed+1, 60) - 1; h > s.hourTop {
			for x := max(s.hourTop+1, h-hourRing+1); x <= h; x++ {
				s.setHour(x, 0)
			}
			s.hourTop = h
		}
	}
}

func (d *Detector) count(k baseline.Key, m int64, arn, ua, errc string) {
	sid, ok := d.ids[k]
	if !ok {
		sid = d.newSeries(k, m)
	}
	s := d.series[sid]
	if !s.ring.ok() {
		s.ring = newCounts(int(d.ring))
	}
	mask := d.ring - 1
	if m > s.ringTop {
		for i := max(s.ringTop+1, m-d.ring+1); i <= m; i++ {
			s.ring.set(int(i&mask), 0)
		}
		s.ringTop = m
	}
	slot := int(m & mask)
	c := s.ring.get(slot)
	b := d.bucket(m)
	if c == 0 {
		b.sids = append(b.sids, sid)
	}
	c++
	s.ring.set(slot, c)
	b.add(&d.names, sid, arn, ua, errc)
	// Only a minute well above its expectation can put a short window past
	// the threshold (pigeonhole): test the windows for those alone.
	if d.cfg.Early && s.open == nil && c >= 2 && float64(c) >= s.p.minRatio*d.expected(s, m) && d.warm(m) {
		d.tryEarly(sid, s, m)
	}
}

func (d *Detector) bucket(m int64) *minuteBucket {
	if d.lastB != nil && d.lastBm == m {
		return d.lastB
	}
	b := d.pend[m]
	if b == nil {
		b = &minuteBucket{first: make(map[uint32]int32)}
		d.pend[m] = b
	}
	d.lastB, d.lastBm = b, m
	return b
}

func (d *Detector) newSeries(k baseline.Key, m int64) uint32 {
	sid := uint32(len(d.series))
	s := &series{key: k, p: d.paramsFor(k), ringTop: d.closed, touched: d.closed, hourly: newCounts(hourRing)}
	// The series was silent from the detector's start until now: learn that,
	// so that its first calls are judged against the quiet that preceded them.
	firstHour := floorDiv(d.start, 60) + 1
	lastHour := floorDiv(d.closed+1, 60) - 1
	if lastHour-firstHour > 24*28 {
		firstHour = lastHour - 24*28
	}
	for h := firstHour; h <= lastHour; h++ {
		s.model.ObserveHour(h*60, 0, 0, false)
	}
	s.hourTop = lastHour
	d.ids[k] = sid
	d.series = append(d.series, s)
	return sid
}

// Snapshot returns what the detector has learned: each series' model and
// last week of hourly counts, and the span of event time behind them. Save it
// with baseline.SaveFile; start another detector warm with LoadModels.
func (d *Detector) Snapshot() (baseline.Meta, []baseline.Entry) {
	if !d.started {
		return baseline.Meta{}, nil
	}
	meta := baseline.Meta{From: time.Unix((d.start+d.lateMin)*60, 0).UTC(), To: time.Unix(d.maxSec, 0).UTC()}
	out := make([]baseline.Entry, len(d.series))
	for i, s := range d.series {
		e := &out[i]
		e.Key, e.Model, e.LastHour = s.key, s.model, s.hourTop
		for j := range e.Hours {
			h := s.hourTop - int64(baseline.Week-1) + int64(j)
			if h*60 >= d.start {
				e.Hours[j] = s.hour(h)
			}
		}
	}
	return meta, out
}

// LoadModels starts the detector warm from a saved Snapshot: the series
// know their normal from the first event on, and no warm-up applies to the
// history the models cover. It must be called before the first Add.
func (d *Detector) LoadModels(meta baseline.Meta, entries []baseline.Entry) error {
	if d.started || len(d.series) > 0 {
		return errors.New("detector: LoadModels after events were added")
	}
	d.loaded = true
	d.start = floorDiv(meta.From.Unix(), 60) - d.lateMin
	for i := range entries {
		e := &entries[i]
		if _, dup := d.ids[e.Key]; dup {
			return fmt.Errorf("detector: model lists series %s twice", e.Key)
		}
		s := &series{key: e.Key, p: d.paramsFor(e.Key), model: e.Model, hourly: newCounts(hourRing), hourTop: e.LastHour}
		for j, c := range e.Hours {
			h := e.LastHour - int64(baseline.Week-1) + int64(j)
			s.setHour(h, c)
		}
		d.ids[e.Key] = uint32(len(d.series))
		d.series = append(d.series, s)
	}
	return nil
}

// ConfigChanges says how the Config given to RestoreState differs from the
// one the state was saved with ("MinRatio was 3, is 2.5"), "" when it does
// not or the detector was not restored.
func (d *Detector) ConfigChanges() string { return d.cfgChanges }

// Watermark returns the current watermark: the latest event time seen minus
// the allowed lateness. Minutes ending at or before it are closed.
func (d *Detector) Watermark() time.Time {
	return time.Unix(d.maxSec-d.lateMin*60, 0).UTC()
}

// Advance returns the insights started or ended since the last call, sorted
// by time. Minutes are closed as the watermark passes them, while events are
// added, so how often Advance is called changes nothing but latency. The
// slice is valid until the next call.
func (d *Detector) Advance() []Insight {
	return d.flushOut()
}

// Flush closes every minute up to the latest event seen, as if no more
// events could arrive, and ends the insights still open at the minute after
// it. Use it at the end of a finite input.
func (d *Detector) Flush() []Insight {
	if !d.started {
		return nil
	}
	last := floorDiv(d.maxSec, 60)
	d.closeThrough(last)
	ids := make([]uint32, 0, len(d.open))
	for sid := range d.open {
		ids = append(ids, sid)
	}
	slices.Sort(ids)
	for _, sid := range ids {
		s := d.series[sid]
		end := s.open.lastAnom + 1
		if s.open.gap {
			end = last + 1
			if s.open.resumed > 0 {
				end = s.open.resumed
			}
		}
		d.end(sid, s, end)
	}
	return d.flushOut()
}

func (d *Detector) flushOut() []Insight {
	out := d.out
	slices.SortFunc(out, func(a, b Insight) int {
		return cmp.Or(a.Time.Compare(b.Time), cmp.Compare(a.Account, b.Account), cmp.Compare(a.Region, b.Region),
			cmp.Compare(a.EventSource, b.EventSource), cmp.Compare(a.EventName, b.EventName),
			cmp.Compare(a.Type, b.Type), cmp.Compare(a.ErrorCode, b.ErrorCode), cmp.Compare(a.State, b.State))
	})
	d.out = d.out[len(d.out):]
	return out
}

// Stats returns counts of what the detector saw.
func (d *Detector) Stats() Stats {
	st := d.stats
	st.Series = len(d.series)
	st.Open = len(d.open)
	st.Starts = make(map[string]int, len(d.stats.Starts))
	for k, v := range d.stats.Starts {
		st.Starts[k] = v
	}
	if d.started {
		st.Watermark = d.Watermark()
	}
	return st
}

func (d *Detector) closeThrough(target int64) {
	for m := d.closed + 1; m <= target; m++ {
		d.closeMinute(m)
		if b := d.pend[m]; b != nil {
			b.freeze()
		}
		d.closed = m
		if floorDiv(m+1, 60)*60 == m+1 {
			d.closeHour(m - 59)
		}
		if b, ok := d.pend[m-maxWindow]; ok {
			if d.lastB == b {
				d.lastB = nil
			}
			delete(d.pend, m-maxWindow)
		}
	}
}

func (d *Detector) warm(m int64) bool { return m-d.start >= d.warmMin }

func (d *Detector) closeMinute(m int64) {
	if b := d.pend[m]; b != nil {
		for _, sid := range b.sids {
			s := d.series[sid]
			s.touched = m
			learn := s.open == nil || !(s.open.gap || s.open.drop)
			s.model.ObserveActive(m, learn)
			s.silent = 0
			if s.open != nil {
				d.continueOpen(sid, s, m)
			} else if d.warm(m) {
				d.tryStart(sid, s, m)
			}
		}
	}
	for sid := range d.open {
		s := d.series[sid]
		if s.touched != m {
			d.continueOpen(sid, s, m)
		}
	}
	if !d.warm(m) {
		return
	}
	for _, sid := range d.armed {
		s := d.series[sid]
		if s.touched == m || s.open != nil {
			continue
		}
		d.checkGap(sid, s, m)
	}
}

// lastWeekShare is how much of the same hour a week before a burst test
// expects again: a weekly report, a Monday-morning peak, recur.
const lastWeekShare = 0.75

// expected returns the expected events per minute at minute m for a burst
// test: the seasonal model, or most of what the same hour held a week
// before, whichever is more.
func (d *Detector) expected(s *series, m int64) float64 {
	e := s.model.Expected(m)
	h := floorDiv(m, 60) - week
	if h*60 >= d.start && h > s.hourTop-hourRing && h <= s.hourTop {
		e = math.Max(e, lastWeekShare*float64(s.hour(h))/60)
	}
	return e
}

// expectedSum returns the expected events in the w minutes ending at m.
func (d *Detector) expectedSum(s *series, m int64, w int) float64 {
	first := m - int64(w) + 1
	var sum float64
	for t := first; t <= m; {
		hourEnd := floorDiv(t, 60)*60 + 59
		end := min(hourEnd, m)
		sum += d.expected(s, t) * float64(end-t+1)
		t = end + 1
	}
	return sum
}

func (d *Detector) windowSum(s *series, m int64, w int) float64 {
	var n uint32
	for t := m - int64(w) + 1; t <= m; t++ {
		n += s.count(t)
	}
	return float64(n)
}

// floorRate keeps expectations of series never seen in a slot above zero,
// so that scores stay finite: about one call a week.
const floorRate = 1e-4

// unusual reports whether minute m alone is outside the series' band.
func (d *Detector) unusual(s *series, m int64) bool {
	c := float64(s.count(m))
	if c == 0 {
		return false
	}
	e := math.Max(d.expected(s, m), floorRate)
	return c >= 1.5*e && tailScore(c, e, s.model.Dispersion(), s.model.NoiseVar()) >= 2
}

// stillHigh reports whether the last few minutes of an open burst, taken
// together, are still clearly above the expectation: a moderately raised
// rate that a single minute cannot show keeps the insight open, so that it
// does not flap into many.
func (d *Detector) stillHigh(s *series, m int64) bool {
	w := int(min(int64(stillWindow), m-s.open.start+1))
	if s.open.expl != nil {
		w = min(w, s.open.expl.WindowMinutes)
	}
	obs := d.windowSum(s, m, w)
	exp := math.Max(d.expectedSum(s, m, w), floorRate*float64(w))
	return obs >= 1.5*exp && tailScore(obs, exp, s.model.Dispersion(), s.model.NoiseVar()) >= 2
}

// stillWindow bounds the window stillHigh looks at, in minutes.
const stillWindow = 10

// tryStart tests the windows ending at minute m when it closes.
func (d *Detector) tryStart(sid uint32, s *series, m int64) {
	d.burst(sid, s, m, d.cfg.Windows)
}

// earlyMaxWindow is the longest window tested on every event, before its
// minute closes.
const earlyMaxWindow = 5

// tryEarly tests the short windows ending at the still open minute m, on an
// event that raised its count. Late events only add to counts, so a window
// past the threshold now is past it at the close too: the Start goes out
// within the minute instead of after the allowed lateness. The same events
// in the same order always fire at the same event, so backfill and stream
// agree.
func (d *Detector) tryEarly(sid uint32, s *series, m int64) {
	d.burst(sid, s, m, d.early)
}

// burst scores windows ending at minute m and opens a burst (or error
// spike, or limit hit) insight when one is past the threshold.
func (d *Detector) burst(sid uint32, s *series, m int64, windows []int) {
	disp, kappa := s.model.Dispersion(), s.model.NoiseVar()
	best, bestW := 0.0, 0
	var bestObs, bestExp float64
	for _, w := range windows {
		// A window never reaches back into the previous insight: what was
		// reported once is not reported again.
		w = int(min(int64(w), m-s.lastEnd+1))
		obs := d.windowSum(s, m, w)
		if obs < float64(s.p.minCount) {
			continue
		}
		exp := math.Max(d.expectedSum(s, m, w), floorRate*float64(w))
		if obs < s.p.minRatio*exp {
			continue
		}
		sc := tailScore(obs, exp, disp, kappa)
		if sc >= s.p.threshold && sc > best {
			best, bestW, bestObs, bestExp = sc, w, obs, exp
		}
	}
	if bestW == 0 {
		return
	}
	// A series that burst lately must burst higher to be reported again:
	// what spikes often is spiky, not under attack every time.
	if p := float64(s.model.Peak); d.cfg.PeakCap > 0 && best <= p {
		return
	}
	if d.cfg.PeakCap > 0 {
		s.model.Peak = float32(math.Min(best, d.cfg.PeakCap*s.p.threshold))
	}
	start := m
	for t := m - int64(bestW) + 1; t < m; t++ {
		if t > s.lastEnd && d.unusual(s, t) {
			start = t
			break
		}
	}
	kind := "burst"
	if s.key.Measure == baseline.Errors {
		kind = "errorSpike"
		if throttling[s.key.ErrorCode] {
			kind = "limit"
		}
	}
	lo, hi := band(bestExp, disp)
	o := &openInsight{start: start, lastAnom: m, folded: start - 1}
	if d.cfg.Explain {
		o.expl = &Explanation{Kind: kind, Direction: "above", Observed: bestObs, Expected: round4(bestExp),
			BandLow: round4(lo), BandHigh: round4(hi), Score: round2(best), WindowMinutes: bestW,
			Slot: baseline.SlotName(baseline.Slot(start))}
	}
	d.open[sid] = struct{}{}
	s.open = o
	s.anomHour = true
	// Fold only closed minutes: an open one may still grow, and is folded
	// when it closes.
	if f := min(m, d.closed); f >= start {
		d.fold(sid, s, f)
	}
	d.emitStart(s, m)
}

// dropHours are the windows, in hours, tested for a drop as each hour
// closes; dropRatio is how far below the expectation a window must be.
var dropHours = [...]int{1, 3}

const dropRatio = 2

// checkDrop tests, as hour closes, whether the calls of the last hours of
// a series are far fewer than even its quietest kind of day at those hours
// expects (see baseline.Model.ExpectedQuiet): a flow that slowed to a
// trickle, which a gap (silence) does not catch. A weekday holiday as quiet
// as a Sunday is no drop.
func (d *Detector) checkDrop(sid uint32, s *series, hour int64) {
	if s.model.Hours < 48 {
		return
	}
	disp, kappa := s.model.Dispersion(), s.model.NoiseVar()
	best, bestH := 0.0, 0
	var bestObs, bestExp float64
	for _, k := range dropHours {
		first := hour - int64(k) + 1
		if first*60 < d.from || first*60 < s.lastEnd || first <= s.hourTop-hourRing {
			continue
		}
		var obs, exp float64
		known := true
		for h := first; h <= hour; h++ {
			if !s.model.Established(h * 60) {
				known = false
				break
			}
			obs += float64(s.hour(h))
			exp += s.model.ExpectedQuiet(h*60) * 60
		}
		// A window no silence of could be surprising enough (most series:
		// a few calls an hour) is not scored: zeroScore bounds lowScore.
		if !known || obs*dropRatio > exp || zeroScore(exp, disp, kappa) < s.p.threshold {
			continue
		}
		if sc := lowScore(obs, exp, disp, kappa); sc >= s.p.threshold && sc > best {
			best, bestH, bestObs, bestExp = sc, k, obs, exp
		}
	}
	if bestH == 0 {
		return
	}
	start, m := (hour-int64(bestH)+1)*60, hour*60+59
	o := &openInsight{drop: true, start: start, lastAnom: m, folded: m, total: bestObs}
	if d.cfg.Explain {
		lo, hi := band(bestExp, disp)
		o.expl = &Explanation{Kind: "drop", Direction: "below", Observed: bestObs, Expected: round4(bestExp),
			BandLow: round4(lo), BandHigh: round4(hi), Score: round2(best), WindowMinutes: bestH * 60,
			Slot: baseline.SlotName(baseline.Slot(start))}
	}
	// Contributors: of the minutes whose contributors are still kept (the
	// last hour).
	d.sumMinutes(sid, s, max(start, m-maxWindow+1), m, &o.attrs)
	d.open[sid] = struct{}{}
	s.open = o
	d.emitStart(s, m)
}

// stillLow reports whether the last quarter hour of an open drop is still
// clearly below the expectation.
func (d *Detector) stillLow(s *series, m int64) bool {
	_, low := d.below(s, m-14, m)
	return low
}

// below compares the calls of minutes [from, m] with what the series'
// quietest day expects of them (baseline.Model.ExpectedQuiet): back when
// they reach two thirds of it, low when they are clearly under it; neither
// when too few minutes are expected to tell.
func (d *Detector) below(s *series, from, m int64) (back, low bool) {
	obs := d.windowSum(s, m, int(m-from+1))
	var exp float64
	for t := from; t <= m; t++ {
		exp += s.model.ExpectedQuiet(t)
	}
	if obs*1.5 >= exp {
		return true, false
	}
	return false, lowScore(obs, exp, s.model.Dispersion(), s.model.NoiseVar()) >= 2
}

func (d *Detector) checkGap(sid uint32, s *series, m int64) {
	if s.model.LastRun == 0 {
		return
	}
	silence := m - s.model.LastRun
	if s.model.Established(m) {
		// Judged by the quietest day it has shown at this hour: a weekday
		// holiday as quiet as a Sunday is not a gap.
		s.silent += s.model.ExpectedQuiet(m)
	}
	var period float64
	fire := false
	if p, longest, ok := s.model.Periodic(); ok && float64(silence) > s.p.gapFactor*longest && float64(silence) >= longest+10 {
		fire, period = true, p
	}
	// A steady flow: silence that the expected rate makes improbable, and
	// longer than any silence the series ever had (nights and weekends
	// included, so a flow that stops at night is never a gap).
	sc := zeroScore(s.silent, s.model.Dispersion(), s.model.NoiseVar())
	if !fire && sc >= s.p.threshold && silence >= 10 && float64(silence) > s.p.gapFactor*float64(s.model.GapMax) && s.model.Hours >= 48 {
		fire = true
	}
	if !fire {
		return
	}
	exp := s.silent
	o := &openInsight{gap: true, start: m, lastAnom: m, folded: m}
	if d.cfg.Explain {
		lo, hi := band(exp, s.model.Dispersion())
		o.expl = &Explanation{Kind: "gap", Direction: "below", Observed: 0, Expected: round4(exp),
			BandLow: round4(lo), BandHigh: round4(hi), Score: round2(sc), WindowMinutes: int(silence),
			Slot: baseline.SlotName(baseline.Slot(m)), PeriodMinutes: int(math.Round(period)), SilentMinutes: int(silence)}
	}
	d.open[sid] = struct{}{}
	s.open = o
	s.anomHour = true
	d.emitStart(s, m)
}

func (d *Detector) continueOpen(sid uint32, s *series, m int64) {
	o := s.open
	if m < o.start {
		return // declared early, from a minute still ahead of the closed ones
	}
	if o.drop {
		if d.stillLow(s, m) {
			o.lastAnom = m
			d.fold(sid, s, m)
		} else if m-o.lastAnom >= int64(d.cfg.Calm) {
			d.end(sid, s, o.lastAnom+1)
		}
		return
	}
	if o.gap {
		if o.resumed == 0 {
			if s.count(m) == 0 {
				o.lastAnom = m
				return
			}
			o.resumed = m
		}
		// Calls are back since o.resumed. At their rate, the gap ends
		// there; as a trickle far below it, the same insight goes on as a
		// drop, rather than a gap at each of the trickle's silences. Too
		// few minutes to tell: wait, up to a quarter hour.
		back, low := d.below(s, o.resumed, m)
		switch {
		case back || m-o.resumed >= 14:
			d.end(sid, s, o.resumed)
		case low:
			o.gap, o.drop = false, true
			o.lastAnom = m
			d.fold(sid, s, m)
		}
		return
	}
	if d.unusual(s, m) || d.stillHigh(s, m) {
		o.lastAnom = m
		d.fold(sid, s, m)
		return
	}
	if m-o.lastAnom >= int64(d.cfg.Calm) {
		d.end(sid, s, o.lastAnom+1)
	}
}

// fold adds the minutes (o.folded, m] to the open insight's totals.
func (d *Detector) fold(sid uint32, s *series, m int64) {
	o := s.open
	o.total += d.sumMinutes(sid, s, o.folded+1, m, &o.attrs)
	o.folded = m
}

// sumMinutes adds the contributors of minutes [from, to] to dst and returns
// their events.
func (d *Detector) sumMinutes(sid uint32, s *series, from, to int64, dst *[3]map[string]float64) float64 {
	var total float64
	for t := from; t <= to; t++ {
		total += float64(s.count(t))
		b := d.pend[t]
		if b == nil {
			continue
		}
		i := b.head(sid)
		if i < 0 {
			continue
		}
		if dst[0] == nil {
			for i := range dst {
				dst[i] = map[string]float64{}
			}
		}
		for ; i >= 0; i = b.e[i].next {
			e := &b.e[i]
			dst[0][d.names.str(e.arn)] += float64(e.n)
			dst[1][d.names.str(e.ua)] += float64(e.n)
			if e.err != 0 {
				dst[2][d.names.str(e.err)] += float64(e.n)
			}
		}
	}
	return total
}

func (d *Detector) closeHour(h0 int64) {
	hour := floorDiv(h0, 60)
	const decay = float32(1 - 1.0/week)
	armed := d.armed[:0]
	for sid, s := range d.series {
		var sum, sq, sq5, b float64
		if s.ringTop >= h0 {
			for t := h0; t < h0+60; t++ {
				c := float64(s.count(t))
				sum += c
				sq += c * c
				if b += c; (t-h0)%5 == 4 {
					sq5 += b * b
					b = 0
				}
			}
		}
		for h := s.hourTop + 1; h < hour; h++ {
			s.setHour(h, 0)
		}
		s.setHour(hour, uint32(sum))
		s.hourTop = hour
		s.dropRing(d.closed)
		if s.open == nil && s.key.Measure == baseline.Calls && h0 >= d.start && d.warm(h0) {
			d.checkDrop(uint32(sid), s, hour)
		}
		// An hour of a drop is learned (a lasting lower level is absorbed,
		// and ends the drop), but not for the noise.
		held := s.open != nil && !s.open.drop
		if h0 >= d.start { // the hour the detector started in is partial: not learned
			s.model.ObserveNoise(h0, sum, sq5, s.anomHour || s.open != nil)
			s.model.ObserveHour(h0, sum, sq, s.anomHour || held)
		}
		s.anomHour = held
		for i := range s.battr {
			s.battr[i].decay(decay)
		}
		s.bmin = s.bmin*decay + 60
		if s.open == nil && sum > 0 {
			d.learnAttrs(uint32(sid), s, h0)
		}
		if s.key.Measure == baseline.Calls && s.model.Hours >= 24 {
			if _, _, ok := s.model.Periodic(); ok || s.model.Mean >= 0.02 {
				armed = append(armed, uint32(sid))
			}
		}
	}
	d.armed = armed
	if d.names.due() {
		d.names.sweep(func(mark func(uint32)) {
			for _, s := range d.series {
				for i := range s.battr {
					for _, v := range s.battr[i].v {
						mark(v)
					}
				}
			}
			for _, b := range d.pend {
				for _, e := range b.e {
					mark(e.arn)
					mark(e.ua)
					mark(e.err)
				}
			}
		})
	}
}

// learnAttrs folds the contributors of the hour starting at h0 into the
// series' baseline contributors. Only the last maxWindow minutes keep their
// contributors, which covers the hour that just closed.
func (d *Detector) learnAttrs(sid uint32, s *series, h0 int64) {
	for t := h0; t < h0+60; t++ {
		b := d.pend[t]
		if b == nil {
			continue
		}
		for i := b.head(sid); i >= 0; i = b.e[i].next {
			e := &b.e[i]
			s.battr[0].add(e.arn, float32(e.n))
			s.battr[1].add(e.ua, float32(e.n))
			if e.err != 0 {
				s.battr[2].add(e.err, float32(e.n))
			}
		}
	}
}

// baselineStats returns the mean rate per minute over the baseline window
// before minute start, and the minutes of history behind it.
func (d *Detector) baselineStats(s *series, start int64) (avg float64, minutes int) {
	hs := floorDiv(start, 60) * 60
	var sum float64
	for t := hs; t < start; t++ {
		sum += float64(s.count(t))
	}
	hours := (d.baseMin - (start - hs)) / 60
	h := floorDiv(start, 60)
	n := int64(0)
	for i := int64(1); i <= hours && i <= hourRing; i++ {
		hh := h - i
		if hh > s.hourTop { // not closed yet (an early start): from the minute ring
			for t := hh * 60; t < hh*60+60; t++ {
				sum += float64(s.count(t))
			}
			n++
			continue
		}
		if hh*60 < d.start || hh <= s.hourTop-hourRing {
			break
		}
		sum += float64(s.hour(hh))
		n++
	}
	mins := n*60 + (start - hs)
	if mins <= 0 {
		return 0, 0
	}
	return sum / float64(mins), int(mins)
}

var attrNames = [3]string{"userIdentityArn", "userAgent", "errorCode"}

func (d *Detector) attributions(s *series, counts [3]map[string]float64, minutes float64, base []Attribution) []Attribution {
	n := 3
	if s.key.Measure == baseline.Errors {
		n = 2 // AWS: error-rate insights carry no errorCode attribution
	}
	out := make([]Attribution, 0, n)
	for i := 0; i < n; i++ {
		a := Attribution{Attribute: attrNames[i], Insight: top(counts[i], minutes)}
		if base != nil {
			a.Baseline = base[i].Baseline
		}
		out = append(out, a)
	}
	return out
}

func top(m map[string]float64, minutes float64) []AttrValue {
	out := make([]AttrValue, 0, len(m))
	for v, c := range m {
		out = append(out, AttrValue{Value: v, Average: round6(c / minutes)})
	}
	slices.SortFunc(out, func(a, b AttrValue) int {
		return cmp.Or(cmp.Compare(b.Average, a.Average), cmp.Compare(a.Value, b.Value))
	})
	if len(out) > topReported {
		out = out[:topReported]
	}
	return out
}

func (d *Detector) baselineAttrs(s *series) []Attribution {
	out := make([]Attribution, 3)
	for i := range out {
		out[i].Attribute = attrNames[i]
		m := map[string]float64{}
		for j, v := range s.battr[i].v {
			if c := s.battr[i].c[j]; c > 0.001 {
				m[d.names.str(v)] = float64(c)
			}
		}
		out[i].Baseline = top(m, float64(max(s.bmin, 60)))
	}
	return out
}

func (d *Detector) emitStart(s *series, m int64) {
	o := s.open
	o.baseline, o.baseDur = d.baselineStats(s, o.start)
	o.baseAttrs = d.baselineAttrs(s)
	st := time.Unix(o.start*60, 0).UTC()
	o.shared = SharedEventID(s.key.Account, s.key.Region, s.key.Source, s.key.Name, insightType(s.key), s.key.ErrorCode, st)
	mins := float64(m - o.start + 1)
	ins := d.insight(s, Start, st)
	ins.Stats = Statistics{
		BaselineAverage:  round6(o.baseline),
		InsightAverage:   float64(s.count(o.start)),
		InsightDuration:  int(mins),
		BaselineDuration: o.baseDur,
	}
	switch {
	case o.drop:
		ins.Stats.InsightAverage = round6(o.total / mins)
		ins.Attributions = d.attributions(s, o.attrs, min(mins, maxWindow), o.baseAttrs)
	case !o.gap:
		var attrs [3]map[string]float64
		d.sumMinutes(d.ids[s.key], s, o.start, m, &attrs)
		ins.Attributions = d.attributions(s, attrs, mins, o.baseAttrs)
	default:
		ins.Stats.InsightAverage = 0
		ins.Attributions = d.attributions(s, [3]map[string]float64{}, 1, o.baseAttrs)
	}
	if s.p.mute&muteBit(o) != 0 {
		o.muted = true
		d.stats.Muted++
		return
	}
	d.out = append(d.out, ins)
	kind := "gap"
	if o.expl != nil {
		kind = o.expl.Kind
	} else if !o.gap {
		kind = insightType(s.key).String()
	}
	d.stats.Starts[kind]++
}

func (d *Detector) end(sid uint32, s *series, end int64) {
	o := s.open
	if !o.gap {
		d.fold(sid, s, end-1)
	}
	if !o.gap && !o.drop {
		// The burst's whole size sets the bar for the next one (a Start
		// declared early saw only its beginning).
		if w := int(end - o.start); d.cfg.PeakCap > 0 && w > 0 {
			exp := math.Max(d.expectedSum(s, end-1, w), floorRate*float64(w))
			sc := math.Min(tailScore(o.total, exp, s.model.Dispersion(), s.model.NoiseVar()), d.cfg.PeakCap*s.p.threshold)
			s.model.Peak = max(s.model.Peak, float32(sc))
		}
	}
	dur := max(end-o.start, 1)
	ins := d.insight(s, End, time.Unix(end*60, 0).UTC())
	ins.Stats = Statistics{
		BaselineAverage:  round6(o.baseline),
		InsightAverage:   round6(o.total / float64(dur)),
		InsightDuration:  int(dur),
		BaselineDuration: o.baseDur,
	}
	ins.Attributions = d.attributions(s, o.attrs, float64(dur), o.baseAttrs)
	if !o.muted {
		d.out = append(d.out, ins)
	}
	s.open = nil
	s.lastEnd = end
	s.silent = 0
	delete(d.open, sid)
}

func (d *Detector) insight(s *series, st State, t time.Time) Insight {
	o := s.open
	ins := Insight{
		EventVersion:  eventVersion,
		Time:          t,
		Region:        s.key.Region,
		Account:       s.key.Account,
		SharedEventID: o.shared,
		EventID:       EventID(o.shared, st),
		State:         st,
		EventSource:   s.key.Source,
		EventName:     s.key.Name,
		Type:          insightType(s.key),
		ErrorCode:     s.key.ErrorCode,
		Category:      "Management",
	}
	if o.expl != nil {
		e := *o.expl
		ins.Explanation = &e
	}
	return ins
}

func insightType(k baseline.Key) InsightType {
	if k.Measure == baseline.Errors {
		return ApiErrorRate
	}
	return ApiCallRate
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

func round2(x float64) float64 { return math.Round(x*100) / 100 }
func round4(x float64) float64 { return math.Round(x*1e4) / 1e4 }
func round6(x float64) float64 {
	if x == 0 || math.IsNaN(x) || math.IsInf(x, 0) {
		return 0
	}
	// Six significant digits, like AWS's 9.82222E-5.
	p := math.Pow(10, 5-math.Floor(math.Log10(math.Abs(x))))
	return math.Round(x*p) / p
}
