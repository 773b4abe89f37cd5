package detector

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"maps"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/klauspost/compress/gzip"

	"github.com/trailsight/trailsight/baseline"
	"github.com/trailsight/trailsight/stream"
)

// stateOpts compare two detectors' whole state; lastB is a cache. Counts
// compare by value (width and allocation are storage); contributor IDs and
// the layout of a minute's contributors are the detector's own, compared as
// what they stand for by contributors.
var stateOpts = cmp.Options{
	cmp.AllowUnexported(Detector{}, series{}, openInsight{}, minuteBucket{}, attrEntry{}, topK{}, params{}),
	cmpopts.IgnoreFields(Detector{}, "lastB", "lastBm", "names"),
	cmpopts.IgnoreFields(topK{}, "v"),
	cmpopts.IgnoreFields(minuteBucket{}, "first", "e"),
	cmp.Comparer(func(a, b counts) bool {
		for i := range max(a.len(), b.len()) {
			if a.get(i) != b.get(i) {
				return false
			}
		}
		return true
	}),
	cmpopts.EquateEmpty(),
}

// contributors lists the contributor values of every series' baseline, and
// the contributors of every pending minute by series, in order.
func contributors(d *Detector) []string {
	var out []string
	for _, s := range d.series {
		for a := range s.battr {
			for _, v := range s.battr[a].v {
				out = append(out, d.names.str(v))
			}
		}
	}
	for _, m := range slices.Sorted(maps.Keys(d.pend)) {
		b := d.pend[m]
		for _, sid := range slices.Sorted(maps.Keys(b.first)) {
			out = append(out, fmt.Sprintf("minute %d series %d:", m, sid))
			for i := b.head(sid); i >= 0; i = b.e[i].next {
				e := &b.e[i]
				out = append(out, d.names.str(e.arn), d.names.str(e.ua), d.names.str(e.err), fmt.Sprint(e.n))
			}
		}
	}
	return out
}

// feed adds evs[from:to] to d, calling Advance after every chunk-th event
// counted from the start of evs, and appends what it returns to out.
func feed(d *Detector, evs []stream.Event, from, to, chunk int, out []Insight) []Insight {
	for i := from; i < to; i++ {
		d.Add(&evs[i])
		if (i+1)%chunk == 0 {
			out = append(out, d.Advance()...)
		}
	}
	return out
}

func finish(d *Detector, out []Insight) []Insight {
	out = append(out, d.Advance()...)
	return append(out, d.Flush()...)
}

func saveState(t testing.TB, d *Detector) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := d.SaveState(&buf); err != nil {
		t.Fatalf("SaveState: %v", err)
	}
	return buf.Bytes()
}

// roundTrip saves d and restores it, checking that the restored detector
// holds the same state and saves to the same bytes.
func roundTrip(t *testing.T, cfg Config, d *Detector) (*Detector, []byte) {
	t.Helper()
	b := saveState(t, d)
	r, err := RestoreState(cfg, bytes.NewReader(b))
	if err != nil {
		t.Fatalf("RestoreState: %v", err)
	}
	if diff := cmp.Diff(d, r, stateOpts); diff != "" {
		t.Fatalf("restored state differs (-saved +restored):\n%s", diff)
	}
	if diff := cmp.Diff(contributors(d), contributors(r)); diff != "" {
		t.Fatalf("restored contributors differ (-saved +restored):\n%s", diff)
	}
	if b2 := saveState(t, r); !bytes.Equal(b, b2) {
		t.Fatalf("Save → Restore → Save: %d bytes, then %d different ones", len(b), len(b2))
	}
	return r, b
}

// disorder returns evs in an arrival order that is not event-time order:
// most events a little late, some by up to the lateness, a few by more
// (those are dropped as late). Users and agents vary, for attributions.
func disorder(evs []stream.Event, seed uint64) []stream.Event {
	r := rand.New(rand.NewPCG(seed, 2))
	type arr struct {
		at time.Time
		ev stream.Event
	}
	as := make([]arr, len(evs))
	for i, ev := range evs {
		delay := time.Duration(r.IntN(120)) * time.Second
		switch p := r.IntN(100); {
		case p == 0:
			delay = time.Duration(r.IntN(25*60)) * time.Second
		case p < 10:
			delay = time.Duration(r.IntN(14*60)) * time.Second
		}
		ev.UserArn = fmt.Sprintf("arn:aws:iam::111122223333:user/u%d", r.IntN(9))
		ev.UserAgent = fmt.Sprintf("agent/%d", r.IntN(3))
		as[i] = arr{ev.Time.Add(delay), ev}
	}
	slices.SortStableFunc(as, func(a, b arr) int { return a.at.Compare(b.at) })
	out := make([]stream.Event, len(as))
	for i := range as {
		out[i] = as[i].ev
	}
	return out
}

type cutCase struct {
	name  string
	cfg   Config
	fresh func(t *testing.T) *Detector // a new detector, before any event
	evs   []stream.Event
	chunk int
}

func newCold(cfg Config) func(t *testing.T) *Detector {
	return func(t *testing.T) *Detector {
		d, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
}

// checkCuts runs tc uninterrupted, then once per cut point: events up to
// the cut, SaveState, RestoreState, the rest. Every run must return exactly
// what the uninterrupted one returned, and end with the same stats.
func checkCuts(t *testing.T, tc cutCase) {
	evs, chunk := tc.evs, tc.chunk
	// The uninterrupted run, which also finds the cut points.
	a := tc.fresh(t)
	var want []Insight
	var opens []int
	hourClosed, midMinute, ended := -1, -1, -1
	for i := range evs {
		closed, open := a.closed, len(a.open)
		want = feed(a, evs, i, i+1, chunk, want)
		c := i + 1
		if len(a.open) > 0 {
			opens = append(opens, c)
		}
		if ended < 0 && open > 0 && len(a.open) == 0 {
			ended = c
		}
		if hourClosed < 0 && c > len(evs)/2 && a.closed != closed && (a.closed+1)%60 == 0 {
			hourClosed = c
		}
		if midMinute < 0 && c > len(evs)/3 && c < len(evs) && len(a.pend) > 0 &&
			evs[c-1].Time.Truncate(time.Minute).Equal(evs[c].Time.Truncate(time.Minute)) {
			midMinute = c
		}
	}
	want = finish(a, want)
	if !slices.ContainsFunc(want, func(in Insight) bool { return in.State == Start }) {
		t.Fatal("the uninterrupted run raised nothing: the case tests nothing")
	}
	if len(opens) == 0 || hourClosed < 0 || midMinute < 0 {
		t.Fatalf("cut points not found: open %v, hour closed %d, mid-minute %d", len(opens), hourClosed, midMinute)
	}
	r := rand.New(rand.NewPCG(uint64(len(evs)), 3))
	cuts := map[string]int{
		"before any event":    0,
		"after one event":     1,
		"insight just open":   opens[0],
		"mid-insight":         opens[len(opens)/2],
		"last open minute":    opens[len(opens)-1],
		"hour just closed":    hourClosed,
		"mid-minute":          midMinute,
		"right after Advance": chunk * max(1, len(evs)/chunk/2),
		"all fed, no Flush":   len(evs),
		"random 1":            r.IntN(len(evs)),
		"random 2":            r.IntN(len(evs)),
		"random 3":            r.IntN(len(evs)),
	}
	if ended >= 0 { // a gap ends only at Flush
		cuts["insight just ended"] = ended // its hour still to be learned as unusual
	}
	var sawOpen, sawPendingOut, sawLoadedUnstarted bool
	for _, name := range slices.Sorted(maps.Keys(cuts)) {
		cut := cuts[name]
		t.Run(fmt.Sprintf("%s@%d", name, cut), func(t *testing.T) {
			b := tc.fresh(t)
			got := feed(b, evs, 0, cut, chunk, nil)
			sawOpen = sawOpen || len(b.open) > 0
			sawPendingOut = sawPendingOut || len(b.out) > 0
			sawLoadedUnstarted = sawLoadedUnstarted || (b.loaded && !b.started)
			b, _ = roundTrip(t, tc.cfg, b)
			got = feed(b, evs, cut, len(evs), chunk, got)
			got = finish(b, got)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("insights with a restart after event %d differ (-uninterrupted +restarted):\n%s", cut, diff)
			}
			if diff := cmp.Diff(a.Stats(), b.Stats()); diff != "" {
				t.Errorf("stats differ (-uninterrupted +restarted):\n%s", diff)
			}
		})
	}
	if !sawOpen || !sawPendingOut {
		t.Errorf("no cut with an insight open (%v) or one not yet returned (%v)", sawOpen, sawPendingOut)
	}
	if tc.fresh(t).loaded && !sawLoadedUnstarted {
		t.Error("no cut between LoadModels and the first event")
	}

	// Crash over and over: a restart every few thousand events.
	t.Run("many restarts", func(t *testing.T) {
		b := tc.fresh(t)
		var got []Insight
		restarts := 0
		for from := 0; from < len(evs); {
			to := min(len(evs), from+1+r.IntN(max(1, len(evs)/8)))
			got = feed(b, evs, from, to, chunk, got)
			var err error
			if b, err = RestoreState(tc.cfg, bytes.NewReader(saveState(t, b))); err != nil {
				t.Fatal(err)
			}
			restarts++
			from = to
		}
		got = finish(b, got)
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("insights with %d restarts differ (-uninterrupted +restarted):\n%s", restarts, diff)
		}
	})
}

func burstCase() cutCase {
	return cutCase{name: "burst", cfg: DefaultConfig(), chunk: 500, evs: disorder(synth(4, 7,
		traffic{name: "RunInstances", rate: func(i int) float64 {
			if i >= minute(3, 10, 0) && i < minute(3, 10, 30) {
				return 12
			}
			return 2
		}},
		traffic{name: "CreateTags", rate: func(int) float64 { return 0.01 }}), 1)}
}

// stateScenarios are TestScenarios' kinds of traffic, arriving out of order.
func stateScenarios() []cutCase {
	cfg := DefaultConfig()
	steady := func(int) float64 { return 2 }
	return []cutCase{
		burstCase(),
		{name: "gap", cfg: cfg, chunk: 500, evs: disorder(synth(4, 7,
			traffic{name: "CreateSnapshot", fixed: func(i int) int {
				if i%60 == 5 && i < minute(3, 12, 0) {
					return 1
				}
				return 0
			}},
			traffic{name: "DescribeVolumes", rate: steady}), 2)},
		{name: "throttling", cfg: cfg, chunk: 333, evs: disorder(synth(4, 7,
			traffic{name: "DescribeInstances", err: "RequestLimitExceeded", rate: func(i int) float64 {
				if i >= minute(3, 9, 0) && i < minute(3, 9, 20) {
					return 8
				}
				return 0.02
			}},
			traffic{name: "RunInstances", err: "UnauthorizedOperation", rate: func(int) float64 { return 0.05 }}), 3)},
		{name: "drop", cfg: cfg, chunk: 700, evs: disorder(synth(5, 7, dropTraffic()), 5)},
		{name: "weekly peak", cfg: cfg, chunk: 997, evs: disorder(synth(15, 7,
			traffic{name: "StartQueryExecution", rate: func(i int) float64 {
				if d := i / 1440; d%7 == 3 && i%1440 >= 13*60 && i%1440 < 16*60 {
					return 8
				}
				return 2
			}}), 4)},
	}
}

// TestStateRestart: a detector saved at any point and restored into a new
// one returns exactly what an uninterrupted run returns.
func TestStateRestart(t *testing.T) {
	for _, tc := range stateScenarios() {
		tc.fresh = newCold(tc.cfg)
		t.Run(tc.name, func(t *testing.T) { checkCuts(t, tc) })
	}
}

// TestStateRestartWarm: the same for a detector started with LoadModels.
func TestStateRestartWarm(t *testing.T) {
	evs := synth(9, 21, traffic{name: "RunInstances", rate: func(i int) float64 {
		if i >= minute(8, 9, 0) && i < minute(8, 9, 20) {
			return 15
		}
		return 1
	}}, traffic{name: "CreateSnapshot", fixed: func(i int) int {
		if i%60 == 5 && i < minute(8, 14, 0) {
			return 1
		}
		return 0
	}})
	split := slices.IndexFunc(evs, func(e stream.Event) bool { return !e.Time.Before(t0.Add(8 * 24 * time.Hour)) })
	cfg := DefaultConfig()
	learn, _ := New(cfg)
	for i := range evs[:split] {
		learn.Add(&evs[i])
	}
	meta, entries := learn.Snapshot()
	var buf bytes.Buffer
	if err := baseline.Save(&buf, meta, entries); err != nil {
		t.Fatal(err)
	}
	checkCuts(t, cutCase{cfg: cfg, chunk: 250, evs: disorder(evs[split:], 5), fresh: func(t *testing.T) *Detector {
		meta, entries, err := baseline.Load(bytes.NewReader(buf.Bytes()))
		if err != nil {
			t.Fatal(err)
		}
		d, _ := New(cfg)
		if err := d.LoadModels(meta, entries); err != nil {
			t.Fatal(err)
		}
		return d
	}})
}

// burstState returns a detector in the middle of a burst, with late
// events pending and a Start not yet returned: a new one each call,
// restored from a state made once.
func burstState(t testing.TB) (Config, *Detector) {
	t.Helper()
	burstOnce.Do(func() {
		tc := burstCase()
		d, err := New(tc.cfg)
		if err != nil {
			panic(err)
		}
		for i := range tc.evs {
			d.Add(&tc.evs[i])
			if len(d.open) > 0 {
				break
			}
		}
		if len(d.open) == 0 || len(d.out) == 0 {
			panic("no burst")
		}
		var buf bytes.Buffer
		if err := d.SaveState(&buf); err != nil {
			panic(err)
		}
		burstBytes = buf.Bytes()
	})
	cfg := DefaultConfig()
	d, err := RestoreState(cfg, bytes.NewReader(burstBytes))
	if err != nil {
		t.Fatal(err)
	}
	return cfg, d
}

var (
	burstOnce  sync.Once
	burstBytes []byte
)

func gunzip(t testing.TB, b []byte) []byte {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	return body
}

func regzip(t testing.TB, body []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(body)
	zw.Close()
	return buf.Bytes()
}

// TestStateDamaged: truncated, flipped or foreign input fails with
// ErrStateFormat and a message that says what is wrong.
func TestStateDamaged(t *testing.T) {
	cfg, d := burstState(t)
	good := saveState(t, d)
	body := gunzip(t, good)
	t.Logf("burst state: %d series, %d bytes (%d uncompressed)", len(d.series), len(good), len(body))
	flipBody := func(i int) []byte {
		b := slices.Clone(body)
		b[i] ^= 0x20
		return regzip(t, b)
	}
	withCRC := func(b []byte) []byte { // a body with a valid checksum
		return regzip(t, crcAppend(b))
	}
	tests := []struct {
		name, in, want string
		data           []byte
	}{
		{name: "empty", data: nil, want: "empty"},
		{name: "not gzip", data: []byte("{\"eventVersion\":\"1.08\"}"), want: "invalid header"},
		{name: "a model file", data: modelFile(t), want: "not a trailsight detector state"},
		{name: "truncated to 20 bytes", data: good[:20], want: "truncated"},
		{name: "truncated by half", data: good[:len(good)/2], want: "truncated"},
		{name: "truncated by one byte", data: good[:len(good)-1], want: "truncated"},
		{name: "trailing garbage", data: append(slices.Clone(good), "garbage after the end of the state"...), want: "invalid header"},
		{name: "flipped byte in the magic", data: flipBody(3), want: "not a trailsight detector state"},
		{name: "flipped byte in the middle", data: flipBody(len(body) / 2), want: "checksum mismatch"},
		{name: "flipped byte in the checksum", data: flipBody(len(body) - 2), want: "checksum mismatch"},
		{name: "body truncated, checksum fixed", data: withCRC(body[:len(body)/2]), want: "at byte"},
		{name: "newer version", data: withCRC(slices.Concat([]byte(stateMagic), []byte{stateVersion + 1}, body[len(stateMagic)+1:len(body)-4])),
			want: fmt.Sprintf("version %d, this build reads %d", stateVersion+1, stateVersion)},
		{name: "bytes after the end", data: withCRC(slices.Concat(body[:len(body)-4], []byte{0})), want: "1 bytes after the end"},
	}
	for _, tc := range tests {
		_, err := RestoreState(cfg, bytes.NewReader(tc.data))
		if !errors.Is(err, ErrStateFormat) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: RestoreState = %v, want ErrStateFormat saying %q", tc.name, err, tc.want)
		}
	}
	// Any byte of the gzip stream flipped is caught, except in the gzip
	// header's time and OS fields (bytes 4 to 9), which carry no state, and
	// the few deflate bits that do not change what the stream decodes to
	// (code lengths of symbols never used).
	for i := range good {
		if i >= 4 && i < 10 {
			continue
		}
		b := slices.Clone(good)
		b[i] ^= 0xff
		if zr, err := gzip.NewReader(bytes.NewReader(b)); err == nil {
			if same, err := io.ReadAll(zr); err == nil && bytes.Equal(same, body) {
				continue
			}
		}
		if _, err := RestoreState(cfg, bytes.NewReader(b)); !errors.Is(err, ErrStateFormat) {
			t.Fatalf("byte %d of %d flipped: RestoreState = %v, want ErrStateFormat", i, len(good), err)
		}
	}
}

// crcAppend appends body's CRC-32 to it, as SaveState does.
func crcAppend(body []byte) []byte {
	return binary.LittleEndian.AppendUint32(slices.Clone(body), crc32.ChecksumIEEE(body))
}

func modelFile(t *testing.T) []byte {
	var buf bytes.Buffer
	if err := baseline.Save(&buf, baseline.Meta{}, []baseline.Entry{{}}); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestStateConfig: a state restores only with the config it was saved with,
// and the error names what changed.
func TestStateConfig(t *testing.T) {
	cfg, d := burstState(t)
	b := saveState(t, d)
	tests := []struct {
		name    string
		change  func(*Config)
		want    string
		refused bool // the change alters what the state holds
	}{
		{"threshold", func(c *Config) { c.Threshold = 8 }, "Threshold was 7, is 8", false},
		{"windows order", func(c *Config) { c.Windows = []int{60, 15, 5, 1} }, "Windows was [1 5 15 60], is [60 15 5 1]", false},
		{"min ratio", func(c *Config) { c.MinRatio = 3 }, "MinRatio was 2.5, is 3", false},
		{"lateness and calm", func(c *Config) { c.Lateness = time.Minute; c.Calm = 3 },
			"Calm was 5, is 3; Lateness was 15m0s, is 1m0s", true},
		{"explain", func(c *Config) { c.Explain = false }, "Explain was true, is false", false},
	}
	for _, tc := range tests {
		c := cfg
		c.Windows = slices.Clone(cfg.Windows)
		tc.change(&c)
		r, err := RestoreState(c, bytes.NewReader(b))
		switch {
		case tc.refused:
			if !errors.Is(err, ErrStateConfig) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("%s: RestoreState = %v, want ErrStateConfig saying %q", tc.name, err, tc.want)
			}
		case err != nil:
			t.Errorf("%s: RestoreState = %v, want the state restored", tc.name, err)
		case r.ConfigChanges() != tc.want:
			t.Errorf("%s: ConfigChanges() = %q, want %q", tc.name, r.ConfigChanges(), tc.want)
		case r.cfg.Threshold != c.Threshold || r.cfg.MinRatio != c.MinRatio || r.cfg.Explain != c.Explain:
			t.Errorf("%s: restored detector runs with %+v, want the new config", tc.name, r.cfg)
		}
	}
	if r, err := RestoreState(cfg, bytes.NewReader(b)); err != nil || r.ConfigChanges() != "" {
		t.Errorf("same config: RestoreState = %v, ConfigChanges %q; want no error, no change", err, r.ConfigChanges())
	}
	bad := cfg
	bad.Calm = 0
	if _, err := RestoreState(bad, bytes.NewReader(b)); err == nil || errors.Is(err, ErrStateConfig) || !strings.Contains(err.Error(), "calm 0") {
		t.Errorf("RestoreState with an invalid config = %v, want the validation error", err)
	}
}

// TestStateInconsistent: a state whose checksum is right but whose content
// does not hang together is refused, not restored into a detector that
// would panic later.
func TestStateInconsistent(t *testing.T) {
	tests := []struct {
		name   string
		tamper func(d *Detector)
		want   string
	}{
		{"open set lists a calm series", func(d *Detector) {
			for sid, s := range d.series {
				if s.open == nil {
					d.open[uint32(sid)] = struct{}{}
					return
				}
			}
		}, "listed open without an open insight"},
		{"open insight not in the open set", func(d *Detector) { clear(d.open) }, "have an open insight, 0 are listed open"},
		{"unknown series in a minute", func(d *Detector) {
			for _, b := range d.pend {
				b.sids = append(b.sids, 99)
				return
			}
		}, "series 99 of"},
		{"unknown armed series", func(d *Detector) { d.armed = append(d.armed, 1000) }, "series 1000 of"},
		{"series twice", func(d *Detector) { d.series = append(d.series, d.series[0]) }, "twice"},
		{"two baseline attributions", func(d *Detector) {
			for sid := range d.open {
				d.series[sid].open.baseAttrs = d.series[sid].open.baseAttrs[:2]
			}
		}, "2 baseline attributions"},
		{"unknown insight state", func(d *Detector) { d.out[0].State = 7 }, "insight state 7"},
	}
	for _, tc := range tests {
		cfg, d := burstState(t)
		tc.tamper(d)
		_, err := RestoreState(cfg, bytes.NewReader(saveState(t, d)))
		if !errors.Is(err, ErrStateFormat) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: RestoreState = %v, want ErrStateFormat saying %q", tc.name, err, tc.want)
		}
	}
}

// TestStateDeterministic: the same state gives the same bytes, whatever
// the order maps were filled in; saving changes nothing.
func TestStateDeterministic(t *testing.T) {
	cfg, d := burstState(t)
	a := saveState(t, d)
	for range 5 {
		if b := saveState(t, d); !bytes.Equal(a, b) {
			t.Fatal("two saves of one detector differ")
		}
	}
	_, _ = roundTrip(t, cfg, d)
	if len(d.Advance()) == 0 {
		t.Error("saving consumed the insights not yet returned")
	}
	empty, _ := New(cfg)
	r, b := roundTrip(t, cfg, empty)
	t.Logf("empty state: %d bytes", len(b))
	if r.started || len(r.Advance()) != 0 || len(r.Flush()) != 0 {
		t.Error("an empty detector restored is not empty")
	}
}

// knownFields lists the fields SaveState writes, per type: a field added
// to one of them must be added to the state format (and stateVersion
// bumped), or derived on restore and listed here (Detector's base and
// ruled, and series' p, come from the Config).
var knownFields = []struct {
	v      any
	fields string
}{
	{Detector{}, "cfg lateMin ring warmMin baseMin early base ruled ids series names cfgChanges started loaded start from maxSec closed pend lastB lastBm open armed out stats"},
	{series{}, "key p model ring ringTop hourly hourTop battr bmin silent touched anomHour lastEnd open"},
	{openInsight{}, "gap resumed drop start lastAnom folded total attrs baseline baseDur baseAttrs expl shared muted"},
	{minuteBucket{}, "sids first e other"},
	{attrEntry{}, "arn ua err n next"},
	{topK{}, "v c"},
	{counts{}, "b shift"},
	{names{}, "ids strs free swept"},
	{Stats{}, "Events Counted Late Muted Series Open Starts Watermark"},
	{Insight{}, "EventVersion Time Region Account EventID SharedEventID State EventSource EventName Type ErrorCode Category Stats Attributions Explanation"},
	{Statistics{}, "BaselineAverage InsightAverage InsightDuration BaselineDuration"},
	{Attribution{}, "Attribute Insight Baseline"},
	{AttrValue{}, "Value Average"},
	{Explanation{}, "Kind Direction Observed Expected BandLow BandHigh Score WindowMinutes Slot PeriodMinutes SilentMinutes"},
}

func TestStateCoversAllFields(t *testing.T) {
	for _, k := range knownFields {
		rt := reflect.TypeOf(k.v)
		var got []string
		for i := range rt.NumField() {
			got = append(got, rt.Field(i).Name)
		}
		if want := strings.Fields(k.fields); !slices.Equal(got, want) {
			t.Errorf("%s has fields %v; state.go writes %v: update SaveState and RestoreState, and bump stateVersion",
				rt.Name(), got, want)
		}
	}
}

// largeState makes a detector with n series, each called at its own
// minute of the last two and a half hours, then gives each series the
// model and week of hourly counts a week of varied traffic would have left
// (random, which compresses worst): what a long-running service holds,
// without feeding it a week of events.
func largeState(t testing.TB, n int) (Config, *Detector) {
	cfg := DefaultConfig()
	d, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	const minutes = 150
	for m := range minutes {
		for i := m; i < n; i += minutes {
			ev := stream.Event{
				Time: t0.Add(time.Duration(m)*time.Minute + time.Duration(i%60)*time.Second), Account: "111122223333",
				Region: "us-east-1", Source: "ec2.amazonaws.com", Name: fmt.Sprintf("Op%06d", i), Type: "AwsApiCall",
				UserArn: fmt.Sprintf("arn:aws:iam::111122223333:user/u%d", i%1000), UserAgent: "aws-cli/2.15.0",
				Category: stream.Management,
			}
			for range 1 + i%3 {
				d.Add(&ev)
			}
		}
	}
	if len(d.series) != n {
		t.Fatalf("%d series, want %d", len(d.series), n)
	}
	r := rand.New(rand.NewPCG(1, 2))
	for _, s := range d.series {
		m := &s.model
		scale := r.ExpFloat64() * 5
		for i := range m.Rate {
			m.Rate[i] = float32(scale * r.Float64())
			m.RateN[i] = baseline.SlotMemory
		}
		m.Mean, m.Disp, m.Hours, m.GapN, m.GapMean = float32(scale/2), float32(1+r.Float64()), 170, uint32(r.IntN(1000)), float32(r.Float64()*30)
		for i := range hourRing {
			s.hourly.set(i, uint32(r.Float64()*scale*60))
		}
	}
	return cfg, d
}

// TestStateLarge: 100,000 series save and restore in a few seconds.
func TestStateLarge(t *testing.T) {
	if testing.Short() {
		t.Skip("large state")
	}
	const n = 100_000
	cfg, d := largeState(t, n)
	begin := time.Now()
	var buf bytes.Buffer
	if err := d.SaveState(&buf); err != nil {
		t.Fatal(err)
	}
	save := time.Since(begin)
	size := buf.Len()
	begin = time.Now()
	r, err := RestoreState(cfg, bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	restore := time.Since(begin)
	t.Logf("%d series, %d pending minutes: state %.1f MB (%d bytes a series), save %v, restore %v",
		n, len(d.pend), float64(size)/1e6, size/n, save.Round(time.Millisecond), restore.Round(time.Millisecond))
	if b := saveState(t, r); !bytes.Equal(b, buf.Bytes()) {
		t.Error("Save → Restore → Save differs")
	}
	if diff := cmp.Diff(d.Stats(), r.Stats()); diff != "" {
		t.Errorf("stats differ:\n%s", diff)
	}
}

func BenchmarkSaveState(b *testing.B) {
	_, d := largeState(b, 100_000)
	b.ResetTimer()
	for b.Loop() {
		if err := d.SaveState(io.Discard); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRestoreState(b *testing.B) {
	cfg, d := largeState(b, 100_000)
	s := saveState(b, d)
	b.SetBytes(int64(len(s)))
	b.ResetTimer()
	for b.Loop() {
		if _, err := RestoreState(cfg, bytes.NewReader(s)); err != nil {
			b.Fatal(err)
		}
	}
}

// FuzzRestoreState: no input makes RestoreState, or the decoder behind the
// checksum, panic; what restores also saves.
func FuzzRestoreState(f *testing.F) {
	cfg, d := burstState(f)
	good := saveState(f, d)
	body := gunzip(f, good)
	f.Add(good)
	f.Add(body[len(stateMagic) : len(body)-4])
	empty, _ := New(cfg)
	f.Add(saveState(f, empty))
	f.Add([]byte{})
	// A state with a drop open (version 2's new kind of open insight).
	dropping, _ := New(cfg)
	for _, ev := range synth(5, 7, dropTraffic()) {
		if ev.Time.After(t0.Add(time.Duration(minute(4, 12, 0)) * time.Minute)) {
			break
		}
		dropping.Add(&ev)
	}
	if dropping.Stats().Open != 1 {
		f.Fatalf("drop state: %d insights open, want the drop", dropping.Stats().Open)
	}
	st := saveState(f, dropping)
	f.Add(st)
	f.Add(gunzip(f, st)[len(stateMagic) : len(gunzip(f, st))-4])
	f.Fuzz(func(t *testing.T, data []byte) {
		if r, err := RestoreState(cfg, bytes.NewReader(data)); err == nil {
			r.Advance()
			r.Stats()
			if err := r.SaveState(io.Discard); err != nil {
				t.Fatal(err)
			}
		}
		d, _ := New(cfg)
		if err := d.decode(data); err == nil {
			d.Advance()
			d.Stats()
			if err := d.SaveState(io.Discard); err != nil {
				t.Fatal(err)
			}
		}
	})
}
