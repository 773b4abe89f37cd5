package baseline

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"os"
	"path/filepath"
	"time"

	"github.com/klauspost/compress/gzip"
)

// Week is the number of hourly counts a saved series keeps: the last week,
// which the reported baseline.average and the weekly recurrence need.
const Week = 168

// Entry is one saved series: its key, its model and its last week of hourly
// counts.
type Entry struct {
	Key   Key
	Model Model
	// Hours holds the calls of the week of hours ending at LastHour (an
	// hour index, minutes/60 since the Unix epoch), oldest first.
	Hours    [Week]uint32
	LastHour int64
}

// Meta describes the history a model file was learned from.
type Meta struct {
	From, To time.Time // first and last event time learned from
}

// A model file is gzip'd; inside: the magic, the format version, Meta, the
// number of entries, the entries, and a CRC-32 of everything before it.
const (
	fileMagic   = "trailsight-model"
	fileVersion = 4
)

// ErrFormat is returned for a file that is not a model file of a version
// this build reads.
var ErrFormat = errors.New("baseline: not a trailsight model file")

// Save writes meta and entries to w.
func Save(w io.Writer, meta Meta, entries []Entry) error {
	zw, err := gzip.NewWriterLevel(w, gzip.BestSpeed)
	if err != nil {
		return err
	}
	crc := crc32.NewIEEE()
	bw := bufio.NewWriterSize(io.MultiWriter(zw, crc), 1<<16)
	e := encoder{w: bw}
	e.bytes([]byte(fileMagic))
	e.u64(fileVersion)
	e.i64(meta.From.Unix())
	e.i64(meta.To.Unix())
	e.u64(uint64(len(entries)))
	for i := range entries {
		e.entry(&entries[i])
	}
	if e.err == nil {
		e.err = bw.Flush()
	}
	if e.err != nil {
		return fmt.Errorf("baseline: save: %w", e.err)
	}
	var sum [4]byte
	binary.LittleEndian.PutUint32(sum[:], crc.Sum32())
	if _, err := zw.Write(sum[:]); err != nil {
		return fmt.Errorf("baseline: save: %w", err)
	}
	return zw.Close()
}

// SaveFile writes a model file atomically (temporary file, fsync, rename).
func SaveFile(path string, meta Meta, entries []Entry) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".model-*")
	if err != nil {
		return fmt.Errorf("baseline: save %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if err := Save(tmp, meta, entries); err != nil {
		tmp.Close()
		return fmt.Errorf("baseline: save %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("baseline: save %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("baseline: save %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("baseline: save %s: %w", path, err)
	}
	return nil
}

// Load reads what Save wrote.
func Load(r io.Reader) (Meta, []Entry, error) {
	zr, err := gzip.NewReader(r)
	if err != nil {
		return Meta{}, nil, fmt.Errorf("%w: %v", ErrFormat, err)
	}
	body, err := io.ReadAll(zr)
	if err != nil {
		return Meta{}, nil, fmt.Errorf("baseline: load: %w", err)
	}
	if len(body) < len(fileMagic)+4 || string(body[:len(fileMagic)]) != fileMagic {
		return Meta{}, nil, ErrFormat
	}
	n := len(body) - 4
	if crc32.ChecksumIEEE(body[:n]) != binary.LittleEndian.Uint32(body[n:]) {
		return Meta{}, nil, fmt.Errorf("baseline: load: checksum mismatch (file damaged)")
	}
	d := decoder{b: body[len(fileMagic):n]}
	if v := d.u64(); v != fileVersion {
		return Meta{}, nil, fmt.Errorf("%w: version %d, this build reads %d", ErrFormat, v, fileVersion)
	}
	meta := Meta{From: time.Unix(d.i64(), 0).UTC(), To: time.Unix(d.i64(), 0).UTC()}
	count := d.u64()
	if count > uint64(len(d.b)) { // every entry takes well over a byte
		return Meta{}, nil, fmt.Errorf("baseline: load: %d entries in %d bytes: damaged", count, len(d.b))
	}
	entries := make([]Entry, count)
	for i := range entries {
		d.entry(&entries[i])
	}
	if d.err != nil {
		return Meta{}, nil, fmt.Errorf("baseline: load: %w", d.err)
	}
	if len(d.b) != 0 {
		return Meta{}, nil, fmt.Errorf("baseline: load: %d bytes after the last entry", len(d.b))
	}
	return meta, entries, nil
}

// LoadFile reads a model file.
func LoadFile(path string) (Meta, []Entry, error) {
	f, err := os.Open(path)
	if err != nil {
		return Meta{}, nil, fmt.Errorf("baseline: %w", err)
	}
	defer f.Close()
	m, e, err := Load(bufio.NewReaderSize(f, 1<<16))
	if err != nil {
		return m, e, fmt.Errorf("%s: %w", path, err)
	}
	return m, e, nil
}

type encoder struct {
	w   *bufio.Writer
	buf [binary.MaxVarintLen64]byte
	err error
}

func (e *encoder) bytes(b []byte) {
	if e.err == nil {
		_, e.err = e.w.Write(b)
	}
}
func (e *encoder) u64(v uint64) { e.bytes(binary.AppendUvarint(e.buf[:0], v)) }
func (e *encoder) i64(v int64)  { e.bytes(binary.AppendVarint(e.buf[:0], v)) }
func (e *encoder) f32(v float32) {
	e.bytes(binary.LittleEndian.AppendUint32(e.buf[:0], math.Float32bits(v)))
}
func (e *encoder) str(s string) { e.u64(uint64(len(s))); e.bytes([]byte(s)) }

func (e *encoder) entry(x *Entry) {
	k := &x.Key
	e.str(k.Account)
	e.str(k.Region)
	e.str(k.Source)
	e.str(k.Name)
	e.str(k.ErrorCode)
	e.u64(uint64(k.Measure))
	m := &x.Model
	for i := range m.Rate {
		e.f32(m.Rate[i])
		e.u64(uint64(m.RateN[i]))
	}
	e.f32(m.Mean)
	e.f32(m.LogLevel)
	e.f32(m.Peak)
	e.f32(m.Disp)
	e.u64(uint64(m.DispN))
	e.f32(m.Noise)
	e.u64(uint64(m.NoiseN))
	e.u64(uint64(m.Hours))
	e.u64(uint64(m.GapN))
	e.f32(m.GapMean)
	e.f32(m.GapM2)
	e.u64(uint64(m.GapMax))
	e.i64(m.LastRun)
	e.i64(m.FirstRun)
	e.i64(x.LastHour)
	for _, h := range x.Hours {
		e.u64(uint64(h))
	}
}

type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail(what string) {
	if d.err == nil {
		d.err = fmt.Errorf("truncated or damaged %s", what)
	}
	d.b = nil
}

func (d *decoder) u64() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail("number")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) i64() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail("number")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) u32(what string) uint32 {
	v := d.u64()
	if v > math.MaxUint32 {
		d.fail(what)
	}
	return uint32(v)
}

func (d *decoder) u16(what string) uint16 {
	v := d.u64()
	if v > math.MaxUint16 {
		d.fail(what)
	}
	return uint16(v)
}

func (d *decoder) f32() float32 {
	if len(d.b) < 4 {
		d.fail("float")
		return 0
	}
	v := math.Float32frombits(binary.LittleEndian.Uint32(d.b))
	d.b = d.b[4:]
	if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
		d.fail("float (not finite)")
	}
	return v
}

func (d *decoder) str() string {
	n := d.u64()
	if n > uint64(len(d.b)) || n > 1<<16 {
		d.fail("string")
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}

func (d *decoder) entry(x *Entry) {
	x.Key = Key{Account: d.str(), Region: d.str(), Source: d.str(), Name: d.str(), ErrorCode: d.str()}
	switch ms := d.u64(); ms {
	case uint64(Calls), uint64(Errors):
		x.Key.Measure = Measure(ms)
	default:
		d.fail("measure")
	}
	m := &x.Model
	for i := range m.Rate {
		m.Rate[i] = d.f32()
		if n := d.u64(); n <= SlotMemory {
			m.RateN[i] = uint8(n)
		} else {
			d.fail("slot count")
		}
	}
	m.Mean = d.f32()
	m.LogLevel = d.f32()
	m.Peak = d.f32()
	m.Disp = d.f32()
	m.DispN = d.u16("dispersion count")
	m.Noise = d.f32()
	m.NoiseN = d.u16("noise count")
	m.Hours = d.u32("hours")
	m.GapN = d.u32("gap count")
	m.GapMean = d.f32()
	m.GapM2 = d.f32()
	m.GapMax = d.u32("longest gap")
	m.LastRun = d.i64()
	m.FirstRun = d.i64()
	x.LastHour = d.i64()
	for i := range x.Hours {
		x.Hours[i] = d.u32("hourly count")
	}
}
