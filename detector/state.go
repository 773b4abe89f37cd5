package detector

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"maps"
	"math"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/klauspost/compress/flate"
	"github.com/klauspost/compress/gzip"

	"github.com/trailsight/trailsight/baseline"
)

// Checkpoints. SaveState writes everything a Detector knows; RestoreState
// makes a detector that continues exactly where the saved one was: fed the
// same events from there on, it returns what the saved one would have
// returned. A service checkpoints at intervals and on shutdown, and resumes
// after a crash from the last checkpoint, replaying its input from the
// position it stored with that checkpoint.
//
// A state is gzip'd; inside: the magic, the format version, a fingerprint
// and a description of the Config, then the clock, the stats, every series
// (key and baseline.Model as baseline model-file blobs of up to stateChunk
// series each, then the minute and hour rings, contributors and open
// insight of each), the pending minutes, the open set, the armed series,
// the insights not yet returned by Advance, and a CRC-32 of everything
// before it. Maps are written in key order and strings once each (later
// occurrences by index), so the same state always gives the same bytes.
const (
	stateMagic   = "trailsight-state"
	stateVersion = 3    // 2: an open insight's kind (burst, gap, drop) and resumed minute, the detector's from; 3: whether a rule muted it, Stats.Muted; versions 1 and 2 are read as well
	stateChunk   = 1024 // series per embedded model blob: bounds the memory Save needs
)

var (
	// ErrStateFormat is returned for input that is not a detector state of
	// a version this build reads, or is damaged (checksum, truncation,
	// inconsistent content).
	ErrStateFormat = errors.New("detector: state unreadable")
	// ErrStateConfig is returned when a state was saved with a Config other
	// than the one given to RestoreState.
	ErrStateConfig = errors.New("detector: state saved with another config")
)

// SaveState writes everything the detector knows to w: the clock, every
// series with its model, rings, contributors and open insight, the minutes
// still open for late events, and the insights produced but not yet
// returned by Advance (they are returned again by the restored detector's
// Advance; their IDs are stable, so a notifier sees a retry). It does not
// change d. Writing atomically (temporary file, fsync, rename) is up to the
// caller.
func (d *Detector) SaveState(w io.Writer) error {
	zw, err := gzip.NewWriterLevel(w, gzip.BestSpeed)
	if err != nil {
		return fmt.Errorf("detector: save state: %w", err)
	}
	crc := crc32.NewIEEE()
	e := &stateEncoder{w: zw, crc: crc, buf: make([]byte, 0, 2*stateFlush), strs: map[string]uint64{}}
	d.encode(e)
	e.flush()
	if e.err != nil {
		return fmt.Errorf("detector: save state: %w", e.err)
	}
	if _, err := zw.Write(binary.LittleEndian.AppendUint32(nil, crc.Sum32())); err != nil {
		return fmt.Errorf("detector: save state: %w", err)
	}
	if err := zw.Close(); err != nil {
		return fmt.Errorf("detector: save state: %w", err)
	}
	return nil
}

// RestoreState makes a detector from SaveState's output. cfg may differ
// from the Config the state was saved with in what only decides (thresholds,
// windows, calm, warm-up…): the state is restored and ConfigChanges says
// what changed. A different Lateness changes what the state holds, and
// gives ErrStateConfig naming it; damaged or foreign input gives
// ErrStateFormat.
func RestoreState(cfg Config, r io.Reader) (*Detector, error) {
	d, err := New(cfg)
	if err != nil {
		return nil, fmt.Errorf("detector: restore state: %w", err)
	}
	zr, err := gzip.NewReader(r)
	if err != nil {
		return nil, readError(err)
	}
	body, err := io.ReadAll(zr)
	if err != nil {
		return nil, readError(err)
	}
	inner, err := stateFrame(body)
	if err != nil {
		return nil, err
	}
	if err := d.decode(inner); err != nil {
		return nil, err
	}
	return d, nil
}

// readError tells damaged compressed input from a failing reader.
func readError(err error) error {
	var corrupt flate.CorruptInputError
	switch {
	case errors.Is(err, io.EOF):
		return fmt.Errorf("%w: empty", ErrStateFormat)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Errorf("%w: truncated", ErrStateFormat)
	case errors.Is(err, gzip.ErrHeader), errors.Is(err, gzip.ErrChecksum), errors.As(err, &corrupt):
		return fmt.Errorf("%w: %v", ErrStateFormat, err)
	}
	return fmt.Errorf("detector: restore state: %w", err)
}

// stateFrame checks the magic and the checksum of a decompressed state and
// returns what lies between them.
func stateFrame(body []byte) ([]byte, error) {
	if len(body) < len(stateMagic)+4 || string(body[:len(stateMagic)]) != stateMagic {
		return nil, fmt.Errorf("%w: not a trailsight detector state", ErrStateFormat)
	}
	n := len(body) - 4
	if crc32.ChecksumIEEE(body[:n]) != binary.LittleEndian.Uint32(body[n:]) {
		return nil, fmt.Errorf("%w: checksum mismatch (damaged)", ErrStateFormat)
	}
	return body[len(stateMagic):n], nil
}

// configText describes c, one "Field=value" line per field (all of them,
// by reflection, so that a field added later cannot be forgotten); its hash
// is the fingerprint a state is checked against.
func configText(c Config) string {
	v := reflect.ValueOf(c)
	var b strings.Builder
	for i := range v.NumField() {
		if f := v.Field(i); f.Kind() == reflect.Slice && f.Len() == 0 {
			continue // Rules: none, as in states saved before rules were
		}
		fmt.Fprintf(&b, "%s=%v\n", v.Type().Field(i).Name, v.Field(i).Interface())
	}
	return b.String()
}

func fingerprint(text string) uint64 {
	h := sha256.Sum256([]byte(text))
	return binary.LittleEndian.Uint64(h[:8])
}

// stateShaping lists the Config fields that change what a state holds (the
// size of the minute rings, which minutes are closed): a state is only
// restored with the same values. The other fields only decide.
var stateShaping = map[string]bool{"Lateness": true}

// configDiff lists the fields whose lines differ between two configTexts,
// and whether one of them is in stateShaping.
func configDiff(saved, now string) (diff string, shaping bool) {
	fields := func(s string) map[string]string {
		m := map[string]string{}
		for line := range strings.Lines(s) {
			k, v, _ := strings.Cut(strings.TrimSuffix(line, "\n"), "=")
			m[k] = v
		}
		return m
	}
	a, b := fields(saved), fields(now)
	var diffs []string
	keys := slices.AppendSeq(slices.Collect(maps.Keys(a)), maps.Keys(b))
	slices.Sort(keys)
	for _, k := range slices.Compact(keys) {
		va, oka := a[k]
		vb, okb := b[k]
		switch {
		case !oka:
			diffs = append(diffs, fmt.Sprintf("%s is new (%s)", k, vb))
		case !okb:
			diffs = append(diffs, fmt.Sprintf("%s was %s, is gone", k, va))
		case va != vb:
			diffs = append(diffs, fmt.Sprintf("%s was %s, is %s", k, va, vb))
		default:
			continue
		}
		shaping = shaping || stateShaping[k]
	}
	if len(diffs) == 0 {
		return "fingerprint differs", true
	}
	return strings.Join(diffs, "; "), shaping
}

func (d *Detector) encode(e *stateEncoder) {
	e.raw([]byte(stateMagic))
	e.u64(stateVersion)
	text := configText(d.cfg)
	e.fixed64(fingerprint(text))
	e.bytes([]byte(text))

	e.bool(d.started)
	e.bool(d.loaded)
	e.i64(d.start)
	e.i64(d.from)
	e.i64(d.maxSec)
	e.i64(d.closed)

	e.i64(d.stats.Events)
	e.i64(d.stats.Counted)
	e.i64(d.stats.Late)
	e.i64(d.stats.Muted)
	e.u64(uint64(len(d.stats.Starts)))
	for _, k := range slices.Sorted(maps.Keys(d.stats.Starts)) {
		e.str(k)
		e.i64(int64(d.stats.Starts[k]))
	}

	e.u64(uint64(len(d.series)))
	entries := make([]baseline.Entry, 0, min(len(d.series), stateChunk))
	var blob bytes.Buffer
	for lo := 0; lo < len(d.series); lo += stateChunk {
		// Keys and models go through baseline's own encoding, which has the
		// only copy of the Model format; the hours stay zero there and are
		// written below with the rest of each series.
		entries = entries[:0]
		for _, s := range d.series[lo:min(lo+stateChunk, len(d.series))] {
			entries = append(entries, baseline.Entry{Key: s.key, Model: s.model})
		}
		blob.Reset()
		if err := baseline.Save(&blob, baseline.Meta{}, entries); err != nil && e.err == nil {
			e.err = err
		}
		e.bytes(blob.Bytes())
	}
	for _, s := range d.series {
		e.series(s, d.ring, &d.names)
	}

	e.u64(uint64(len(d.pend)))
	for _, m := range slices.Sorted(maps.Keys(d.pend)) {
		b := d.pend[m]
		e.i64(m)
		e.u64(uint64(len(b.sids)))
		for _, sid := range b.sids {
			e.u64(uint64(sid))
		}
		e.u64(uint64(len(b.first)))
		for _, sid := range slices.Sorted(maps.Keys(b.first)) {
			e.u64(uint64(sid))
			k := 0
			for i := b.head(sid); i >= 0; i = b.e[i].next {
				k++
			}
			e.u64(uint64(k))
			for i := b.head(sid); i >= 0; i = b.e[i].next {
				x := &b.e[i]
				e.str(d.names.str(x.arn))
				e.str(d.names.str(x.ua))
				e.str(d.names.str(x.err))
				e.u64(uint64(x.n))
			}
			e.u64(uint64(b.other[sid]))
		}
	}

	e.u64(uint64(len(d.open)))
	for _, sid := range slices.Sorted(maps.Keys(d.open)) {
		e.u64(uint64(sid))
	}
	e.u64(uint64(len(d.armed)))
	for _, sid := range d.armed {
		e.u64(uint64(sid))
	}
	e.u64(uint64(len(d.out)))
	for i := range d.out {
		e.insight(&d.out[i])
	}
}

// series writes s; a minute ring not allocated is written as ring zeros,
// and contributors as their values.
func (e *stateEncoder) series(s *series, ring int64, n *names) {
	for i := range int(ring) {
		e.u64(uint64(s.ring.get(i)))
	}
	e.i64(s.ringTop)
	for i := range hourRing {
		e.u64(uint64(s.hourly.get(i)))
	}
	e.i64(s.hourTop)
	for i := range s.battr {
		for j := range s.battr[i].v {
			e.str(n.str(s.battr[i].v[j]))
			e.f32(s.battr[i].c[j])
		}
	}
	e.f32(s.bmin)
	e.f64(s.silent)
	e.i64(s.touched)
	e.bool(s.anomHour)
	e.i64(s.lastEnd)
	e.bool(s.open != nil)
	if o := s.open; o != nil {
		e.u64(openKind(o))
		e.i64(o.resumed)
		e.i64(o.start)
		e.i64(o.lastAnom)
		e.i64(o.folded)
		e.f64(o.total)
		for _, m := range o.attrs {
			e.u64(nilLen(m == nil, len(m)))
			for _, k := range slices.Sorted(maps.Keys(m)) {
				e.str(k)
				e.f64(m[k])
			}
		}
		e.f64(o.baseline)
		e.i64(int64(o.baseDur))
		e.attributions(o.baseAttrs)
		e.explanation(o.expl)
		e.str(o.shared)
	}
}

func (e *stateEncoder) insight(in *Insight) {
	e.str(in.EventVersion)
	e.i64(in.Time.Unix())
	e.u64(uint64(in.Time.Nanosecond()))
	e.str(in.Region)
	e.str(in.Account)
	e.str(in.EventID)
	e.str(in.SharedEventID)
	e.u64(uint64(in.State))
	e.str(in.EventSource)
	e.str(in.EventName)
	e.u64(uint64(in.Type))
	e.str(in.ErrorCode)
	e.str(in.Category)
	e.f64(in.Stats.BaselineAverage)
	e.f64(in.Stats.InsightAverage)
	e.i64(int64(in.Stats.InsightDuration))
	e.i64(int64(in.Stats.BaselineDuration))
	e.attributions(in.Attributions)
	e.explanation(in.Explanation)
}

// nilLen encodes a length that keeps nil apart from empty: 0 for nil.
func nilLen(isNil bool, n int) uint64 {
	if isNil {
		return 0
	}
	return uint64(n) + 1
}

func (e *stateEncoder) attributions(as []Attribution) {
	e.u64(nilLen(as == nil, len(as)))
	for _, a := range as {
		e.str(a.Attribute)
		e.attrValues(a.Insight)
		e.attrValues(a.Baseline)
	}
}

func (e *stateEncoder) attrValues(vs []AttrValue) {
	e.u64(nilLen(vs == nil, len(vs)))
	for _, v := range vs {
		e.str(v.Value)
		e.f64(v.Average)
	}
}

func (e *stateEncoder) explanation(x *Explanation) {
	e.bool(x != nil)
	if x == nil {
		return
	}
	e.str(x.Kind)
	e.str(x.Direction)
	e.f64(x.Observed)
	e.f64(x.Expected)
	e.f64(x.BandLow)
	e.f64(x.BandHigh)
	e.f64(x.Score)
	e.i64(int64(x.WindowMinutes))
	e.str(x.Slot)
	e.i64(int64(x.PeriodMinutes))
	e.i64(int64(x.SilentMinutes))
}

// Kinds of open insight (openInsight.kind), as a state writes them
// (version 1 wrote a gap flag: 0 or 1), with openMuted added for a muted
// one (version 3).
const (
	openBurst = 0 // bursts, error spikes, limit hits
	openGap   = 1
	openDrop  = 2
	openMuted = 4
)

// kind is o's kind: openBurst, openGap or openDrop.
func (o *openInsight) kind() uint64 {
	switch {
	case o.gap:
		return openGap
	case o.drop:
		return openDrop
	}
	return openBurst
}

func openKind(o *openInsight) uint64 {
	if o.muted {
		return o.kind() | openMuted
	}
	return o.kind()
}

// decode fills the new detector d from the inside of a state (between the
// magic and the checksum), and checks that what it read hangs together.
func (d *Detector) decode(b []byte) error {
	x := &stateDecoder{b: b, size: len(b)}
	x.version = x.u64()
	if x.err == nil && (x.version < 1 || x.version > stateVersion) {
		return fmt.Errorf("%w: version %d, this build reads %d", ErrStateFormat, x.version, stateVersion)
	}
	fp := x.fixed64()
	text := string(x.bytes())
	if x.err != nil {
		return fmt.Errorf("%w: %v", ErrStateFormat, x.err)
	}
	if now := configText(d.cfg); fp != fingerprint(now) {
		diff, structural := configDiff(text, now)
		if structural {
			return fmt.Errorf("%w: %s", ErrStateConfig, diff)
		}
		d.cfgChanges = diff
	}

	d.started = x.bool()
	d.loaded = x.bool()
	d.start = x.i64()
	d.from = d.start
	if x.version >= 2 {
		d.from = x.i64()
	}
	d.maxSec = x.i64()
	d.closed = x.i64()

	d.stats.Events = x.i64()
	d.stats.Counted = x.i64()
	d.stats.Late = x.i64()
	if x.version >= 3 {
		d.stats.Muted = x.i64()
	}
	for n := x.count(2); n > 0; n-- {
		k := x.str()
		d.stats.Starts[k] = int(x.i64())
	}

	n := x.count(1)
	d.series = make([]*series, 0, n)
	for len(d.series) < n && x.err == nil {
		_, entries, err := baseline.Load(bytes.NewReader(x.bytes()))
		if err != nil {
			x.failf("models of series %d on: %v", len(d.series), err)
			break
		}
		if len(entries) == 0 || len(entries) > n-len(d.series) {
			x.failf("model blob of %d series at series %d of %d", len(entries), len(d.series), n)
			break
		}
		for i := range entries {
			sid := uint32(len(d.series))
			k := entries[i].Key
			if _, dup := d.ids[k]; dup {
				x.failf("series %s twice", k)
				break
			}
			d.ids[k] = sid
			d.series = append(d.series, &series{key: k, p: d.paramsFor(k), model: entries[i].Model})
		}
	}
	for _, s := range d.series {
		x.series(s, d.ring, &d.names)
		if x.err != nil {
			break
		}
	}

	for n := x.count(3); n > 0 && x.err == nil; n-- {
		m := x.i64()
		if _, dup := d.pend[m]; dup {
			x.failf("minute %d twice", m)
		}
		b := &minuteBucket{first: map[uint32]int32{}}
		d.pend[m] = b
		if k := x.count(1); k > 0 {
			b.sids = make([]uint32, k)
			for i := range b.sids {
				b.sids[i] = x.sid(len(d.series))
			}
		}
		for k := x.count(3); k > 0 && x.err == nil; k-- {
			sid := x.sid(len(d.series))
			if _, dup := b.first[sid]; dup {
				x.failf("series %d twice in minute %d", sid, m)
			}
			k := x.count(4)
			if k == 0 || k > maxAttrs {
				x.failf("%d contributors of series %d in minute %d", k, sid, m)
				break
			}
			b.first[sid] = int32(len(b.e))
			for i := range k {
				next := int32(len(b.e) + 1)
				if i == k-1 {
					next = -1
				}
				b.e = append(b.e, attrEntry{arn: d.names.id(x.str()), ua: d.names.id(x.str()), err: d.names.id(x.str()), n: x.u32(), next: next})
			}
			if o := x.u32(); o > 0 {
				if b.other == nil {
					b.other = map[uint32]uint32{}
				}
				b.other[sid] = o
			}
		}
	}

	for n := x.count(1); n > 0 && x.err == nil; n-- {
		sid := x.sid(len(d.series))
		if x.err == nil && d.series[sid].open == nil {
			x.failf("series %d listed open without an open insight", sid)
		}
		d.open[sid] = struct{}{}
	}
	if x.err == nil {
		if c := countOpen(d.series); c != len(d.open) {
			x.failf("%d series have an open insight, %d are listed open", c, len(d.open))
		}
	}
	if n := x.count(1); n > 0 {
		d.armed = make([]uint32, n)
		for i := range d.armed {
			d.armed[i] = x.sid(len(d.series))
		}
	}
	if n := x.count(16); n > 0 {
		d.out = make([]Insight, n)
		for i := range d.out {
			x.insight(&d.out[i])
		}
	}
	if x.err == nil && len(x.b) != 0 {
		x.failf("%d bytes after the end", len(x.b))
	}
	if x.err != nil {
		return fmt.Errorf("%w: %v", ErrStateFormat, x.err)
	}
	return nil
}

func countOpen(ss []*series) int {
	n := 0
	for _, s := range ss {
		if s.open != nil {
			n++
		}
	}
	return n
}

// series reads s; a minute ring of zeros is not allocated (it reads the
// same).
func (x *stateDecoder) series(s *series, ring int64, n *names) {
	vs := x.scratch[:0]
	for range ring {
		vs = append(vs, x.u32())
	}
	if slices.ContainsFunc(vs, func(c uint32) bool { return c > 0 }) {
		s.ring = countsOf(vs)
	}
	s.ringTop = x.i64()
	vs = vs[:0]
	for range hourRing {
		vs = append(vs, x.u32())
	}
	s.hourly = countsOf(vs)
	x.scratch = vs
	s.hourTop = x.i64()
	for i := range s.battr {
		for j := range s.battr[i].v {
			s.battr[i].v[j] = n.id(x.str())
			s.battr[i].c[j] = x.f32()
		}
	}
	s.bmin = x.f32()
	s.silent = x.f64()
	s.touched = x.i64()
	s.anomHour = x.bool()
	s.lastEnd = x.i64()
	if !x.bool() {
		return
	}
	o := &openInsight{}
	k := x.u64()
	if x.version >= 3 && k&openMuted != 0 {
		o.muted, k = true, k&^openMuted
	}
	switch k {
	case openBurst:
	case openGap:
		o.gap = true
	case openDrop:
		o.drop = true
	default:
		x.failf("insight kind %d", k)
	}
	if x.version >= 2 {
		o.resumed = x.i64()
	}
	o.start = x.i64()
	o.lastAnom = x.i64()
	o.folded = x.i64()
	o.total = x.f64()
	for i := range o.attrs {
		n, ok := x.nilCount(9)
		if !ok {
			continue
		}
		o.attrs[i] = make(map[string]float64, n)
		for ; n > 0; n-- {
			k := x.str()
			o.attrs[i][k] = x.f64()
		}
	}
	o.baseline = x.f64()
	o.baseDur = x.int()
	o.baseAttrs = x.attributions()
	if o.baseAttrs != nil && len(o.baseAttrs) != len(attrNames) {
		x.failf("%d baseline attributions", len(o.baseAttrs))
	}
	o.expl = x.explanation()
	o.shared = x.str()
	s.open = o
}

func (x *stateDecoder) insight(in *Insight) {
	in.EventVersion = x.str()
	sec := x.i64()
	ns := x.u64()
	if ns >= 1e9 {
		x.failf("nanoseconds %d", ns)
	}
	in.Time = time.Unix(sec, int64(ns)).UTC()
	in.Region = x.str()
	in.Account = x.str()
	in.EventID = x.str()
	in.SharedEventID = x.str()
	if st := x.u64(); st <= uint64(End) {
		in.State = State(st)
	} else {
		x.failf("insight state %d", st)
	}
	in.EventSource = x.str()
	in.EventName = x.str()
	if t := x.u64(); t <= uint64(ApiErrorRate) {
		in.Type = InsightType(t)
	} else {
		x.failf("insight type %d", t)
	}
	in.ErrorCode = x.str()
	in.Category = x.str()
	in.Stats.BaselineAverage = x.f64()
	in.Stats.InsightAverage = x.f64()
	in.Stats.InsightDuration = x.int()
	in.Stats.BaselineDuration = x.int()
	in.Attributions = x.attributions()
	in.Explanation = x.explanation()
}

func (x *stateDecoder) attributions() []Attribution {
	n, ok := x.nilCount(3)
	if !ok {
		return nil
	}
	as := make([]Attribution, n)
	for i := range as {
		as[i] = Attribution{Attribute: x.str(), Insight: x.attrValues(), Baseline: x.attrValues()}
	}
	return as
}

func (x *stateDecoder) attrValues() []AttrValue {
	n, ok := x.nilCount(9)
	if !ok {
		return nil
	}
	vs := make([]AttrValue, n)
	for i := range vs {
		vs[i] = AttrValue{Value: x.str(), Average: x.f64()}
	}
	return vs
}

func (x *stateDecoder) explanation() *Explanation {
	if !x.bool() {
		return nil
	}
	return &Explanation{
		Kind: x.str(), Direction: x.str(),
		Observed: x.f64(), Expected: x.f64(), BandLow: x.f64(), BandHigh: x.f64(), Score: x.f64(),
		WindowMinutes: x.int(), Slot: x.str(), PeriodMinutes: x.int(), SilentMinutes: x.int(),
	}
}

// stateFlush is how many bytes the encoder gathers before writing them out.
const stateFlush = 1 << 16

// stateEncoder appends to a buffer that it writes, and adds to the
// checksum, every stateFlush bytes. The first error sticks.
type stateEncoder struct {
	w    io.Writer
	crc  hash.Hash32
	buf  []byte
	err  error
	strs map[string]uint64 // index of every string written so far
}

func (e *stateEncoder) flush() {
	if e.err == nil && len(e.buf) > 0 {
		e.crc.Write(e.buf)
		_, e.err = e.w.Write(e.buf)
	}
	e.buf = e.buf[:0]
}

func (e *stateEncoder) grew() {
	if len(e.buf) >= stateFlush {
		e.flush()
	}
}

func (e *stateEncoder) raw(b []byte) { e.buf = append(e.buf, b...); e.grew() }
func (e *stateEncoder) u64(v uint64) { e.buf = binary.AppendUvarint(e.buf, v); e.grew() }
func (e *stateEncoder) i64(v int64)  { e.buf = binary.AppendVarint(e.buf, v); e.grew() }
func (e *stateEncoder) fixed64(v uint64) {
	e.buf = binary.LittleEndian.AppendUint64(e.buf, v)
	e.grew()
}
func (e *stateEncoder) f64(v float64) { e.fixed64(math.Float64bits(v)) }
func (e *stateEncoder) f32(v float32) {
	e.buf = binary.LittleEndian.AppendUint32(e.buf, math.Float32bits(v))
	e.grew()
}

func (e *stateEncoder) bool(v bool) {
	if v {
		e.u64(1)
	} else {
		e.u64(0)
	}
}

func (e *stateEncoder) bytes(b []byte) { e.u64(uint64(len(b))); e.raw(b) }

// str writes a string the first time as 0 and its bytes, and later as its
// index plus one: contributors and keys repeat across series and minutes.
func (e *stateEncoder) str(s string) {
	if i, ok := e.strs[s]; ok {
		e.u64(i + 1)
		return
	}
	e.strs[s] = uint64(len(e.strs))
	e.u64(0)
	e.bytes([]byte(s))
}

// stateDecoder reads what stateEncoder wrote. The first error sticks and
// empties the input, so that every later read returns zero.
type stateDecoder struct {
	b       []byte
	size    int // len(b) at the start, to report offsets
	err     error
	version uint64
	strs    []string

	scratch []uint32 // a ring's counts, read before they are stored
}

func (x *stateDecoder) failf(format string, args ...any) {
	if x.err == nil {
		x.err = fmt.Errorf("at byte %d: %s", x.size-len(x.b), fmt.Sprintf(format, args...))
	}
	x.b = nil
}

func (x *stateDecoder) u64() uint64 {
	v, n := binary.Uvarint(x.b)
	if n <= 0 {
		x.failf("truncated or damaged number")
		return 0
	}
	x.b = x.b[n:]
	return v
}

func (x *stateDecoder) i64() int64 {
	v, n := binary.Varint(x.b)
	if n <= 0 {
		x.failf("truncated or damaged number")
		return 0
	}
	x.b = x.b[n:]
	return v
}

func (x *stateDecoder) int() int {
	v := x.i64()
	if v != int64(int(v)) {
		x.failf("number %d out of range", v)
	}
	return int(v)
}

func (x *stateDecoder) u32() uint32 {
	v := x.u64()
	if v > math.MaxUint32 {
		x.failf("count %d out of range", v)
	}
	return uint32(v)
}

func (x *stateDecoder) bool() bool {
	switch x.u64() {
	case 0:
		return false
	case 1:
		return true
	}
	x.failf("damaged flag")
	return false
}

func (x *stateDecoder) fixed64() uint64 {
	if len(x.b) < 8 {
		x.failf("truncated number")
		return 0
	}
	v := binary.LittleEndian.Uint64(x.b)
	x.b = x.b[8:]
	return v
}

func (x *stateDecoder) f64() float64 { return math.Float64frombits(x.fixed64()) }

func (x *stateDecoder) f32() float32 {
	if len(x.b) < 4 {
		x.failf("truncated number")
		return 0
	}
	v := math.Float32frombits(binary.LittleEndian.Uint32(x.b))
	x.b = x.b[4:]
	return v
}

func (x *stateDecoder) bytes() []byte {
	n := x.u64()
	if n > uint64(len(x.b)) {
		x.failf("%d bytes, %d left", n, len(x.b))
		return nil
	}
	b := x.b[:n]
	x.b = x.b[n:]
	return b
}

func (x *stateDecoder) str() string {
	i := x.u64()
	if i == 0 {
		if x.err != nil {
			return ""
		}
		s := string(x.bytes())
		x.strs = append(x.strs, s)
		return s
	}
	if i > uint64(len(x.strs)) {
		x.failf("string %d of %d", i, len(x.strs))
		return ""
	}
	return x.strs[i-1]
}

// count reads a number of items each taking at least size bytes, which
// bounds what a damaged count can make the decoder allocate.
func (x *stateDecoder) count(size int) int {
	n := x.u64()
	if n > uint64(len(x.b)/size) {
		x.failf("%d items in %d bytes", n, len(x.b))
		return 0
	}
	return int(n)
}

// nilCount reads a nilLen: the count, and false for nil.
func (x *stateDecoder) nilCount(size int) (int, bool) {
	n := x.u64()
	if n == 0 {
		return 0, false
	}
	if n-1 > uint64(len(x.b)/size) {
		x.failf("%d items in %d bytes", n-1, len(x.b))
		return 0, false
	}
	return int(n - 1), true
}

func (x *stateDecoder) sid(n int) uint32 {
	v := x.u64()
	if v >= uint64(n) {
		x.failf("series %d of %d", v, n)
		return 0
	}
	return uint32(v)
}
