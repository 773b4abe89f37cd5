package stream

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"strings"
	"time"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/klauspost/compress/gzip"
)

// DefaultMaxSize is the default cap on the uncompressed size of one document.
const DefaultMaxSize = 1 << 30

// Errors that callers branch on. Decode wraps them with context; test with
// errors.Is.
var (
	// ErrNotCloudTrail: the document is valid JSON (or empty) but holds no
	// CloudTrail record — a digest file, a Config snapshot, a GuardDuty
	// finding, an empty file.
	ErrNotCloudTrail = errors.New("stream: not a CloudTrail document")
	// ErrTooLarge: the document inflates beyond Decoder.MaxSize.
	ErrTooLarge = errors.New("stream: document too large")
)

// SyntaxError is a JSON syntax error. Offset counts bytes of the
// uncompressed document.
type SyntaxError struct {
	Offset    int64 // bytes before the error
	Line, Col int   // 1-based line and column (in bytes) of the error
	Msg       string
}

func (e *SyntaxError) Error() string {
	return fmt.Sprintf("stream: JSON syntax error at offset %d (line %d, column %d): %s", e.Offset, e.Line, e.Col, e.Msg)
}

// DocStats counts the records of one document.
type DocStats struct {
	Records    int    // record objects seen, good and bad
	BadRecords int    // records not kept (no or bad eventTime, no eventSource or eventName, not a record)
	BadReason  string // reason of the first bad record, "" if none
	Bytes      int64  // uncompressed size of the document
}

// Decoder decodes whole documents into Events. It is not safe for concurrent
// use; use one per goroutine. It interns repeated strings (account, region,
// source, name, errorCode, type, user ARN, user agent) in a table bounded by
// MaxInterned, so that the hot path allocates little. The Events it returns
// never reference the input or the Decoder's buffers: the input may be reused
// as soon as Decode returns.
type Decoder struct {
	// MaxSize caps the uncompressed size of a gzip document (gzip bombs).
	// A plain document is already in memory and is not capped.
	MaxSize int64
	// MaxInterned bounds the intern table; it is emptied when full.
	MaxInterned int

	gz      *gzip.Reader
	gzBuf   []byte
	intern  map[string]string
	ids     strings.Builder // arena for eventIDs: strings share its buffers
	scratch []byte          // unescaped strings of the current record
	sub     []byte          // unescaped CloudTrailEvent string (lookup-events output)
	stack   []byte

	data  []byte
	pos   int
	out   []Event
	stats DocStats
	rec   rawRecord
	det   rawRecord
}

// NewDecoder returns a Decoder with the default limits.
func NewDecoder() *Decoder {
	return &Decoder{
		MaxSize:     DefaultMaxSize,
		MaxInterned: 1 << 16,
		intern:      make(map[string]string, 1024),
	}
}

const maxInternLen = 512 // longer strings are copied, not interned

// rawRecord holds the fields of one record as byte slices into the input (or
// into scratch when unescaped). nil means absent.
type rawRecord struct {
	isRecord bool
	readOnly int8 // -1 absent, 0 false, 1 true
	mgmt     int8
	eventTime, source, name, errorCode, typ, id, arn, agent, recipient,
	uiAccount, region, category, httpAgent, insSource, insName, insErrorCode []byte
}

// recordLike reports whether r has any key of a CloudTrail record.
func (r *rawRecord) recordLike() bool {
	return r.isRecord || r.insSource != nil || r.insName != nil
}

func (r *rawRecord) reset() {
	*r = rawRecord{readOnly: -1, mgmt: -1}
}

// syntaxPanic is how the scanner aborts; Decode recovers it.
type syntaxPanic struct{ err *SyntaxError }

// Decode appends the events of one document to dst and returns it. data is
// gzip (sniffed by its magic bytes) or plain JSON in any of these shapes:
// {"Records":[…]} (pretty or compact); one record per line (JSON lines) or
// records simply concatenated; EventBridge envelopes ({"detail-type":…,
// "detail":{record}}), one per line or single; a single bare record; a JSON
// array of records; `aws cloudtrail lookup-events` output ({"Events":[…]},
// records or CloudTrailEvent strings).
//
// Records that are not usable (no eventTime, unparseable eventTime, no
// eventSource or eventName even in insightDetails) are counted in
// DocStats.BadRecords with the first reason; the rest are kept.
//
// Errors: a truncated or corrupt gzip, a document larger than MaxSize
// (ErrTooLarge), a JSON syntax error (*SyntaxError, with the offset), a
// document without any CloudTrail record or Records array
// (ErrNotCloudTrail). On a syntax error the events of the top-level values
// (lines) completed before the error are kept in the result and counted in
// the stats; those of the value holding the error are dropped. On the other
// errors nothing is appended.
func (d *Decoder) Decode(data []byte, dst []Event) (out []Event, st DocStats, err error) {
	gzipped := len(data) >= 2 && data[0] == 0x1f && data[1] == 0x8b
	if gzipped {
		data, err = d.gunzip(data)
		if err != nil {
			return dst, DocStats{}, err
		}
		defer d.dropBigBuffer()
	}
	return d.decodePlain(data, dst)
}

func (d *Decoder) dropBigBuffer() {
	if cap(d.gzBuf) > 64<<20 {
		d.gzBuf = nil
	}
}

func (d *Decoder) gunzip(data []byte) ([]byte, error) {
	max := d.MaxSize
	if max <= 0 {
		max = DefaultMaxSize
	}
	br := bytes.NewReader(data)
	if d.gz == nil {
		gz, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("stream: gunzip: %w", err)
		}
		d.gz = gz
	} else if err := d.gz.Reset(br); err != nil {
		return nil, fmt.Errorf("stream: gunzip: %w", err)
	}
	want := int64(len(data)) * 12
	if want > max+1 {
		want = max + 1
	}
	if int64(cap(d.gzBuf)) < want {
		d.gzBuf = make([]byte, 0, want)
	}
	buf := d.gzBuf[:0]
	for {
		if len(buf) == cap(buf) {
			if int64(len(buf)) > max {
				d.gzBuf = buf[:0]
				return nil, fmt.Errorf("stream: gunzip: more than %d bytes: %w", max, ErrTooLarge)
			}
			n := int64(cap(buf)) * 2
			if n > max+1 {
				n = max + 1
			}
			nb := make([]byte, len(buf), n)
			copy(nb, buf)
			buf = nb
		}
		n, err := d.gz.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if int64(len(buf)) > max {
			d.gzBuf = buf[:0]
			return nil, fmt.Errorf("stream: gunzip: more than %d bytes: %w", max, ErrTooLarge)
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			d.gzBuf = buf[:0]
			return nil, fmt.Errorf("stream: gunzip after %d bytes: %w", len(buf), err)
		}
	}
	d.gzBuf = buf[:0]
	return buf, nil
}

func (d *Decoder) decodePlain(data []byte, dst []Event) (out []Event, st DocStats, err error) {
	d.data, d.pos, d.out = data, 0, dst
	d.stats = DocStats{Bytes: int64(len(data))}
	markOut, markStats := len(dst), d.stats
	values, nonCT, sawCT := 0, 0, false
	defer func() {
		if r := recover(); r != nil {
			sp, ok := r.(syntaxPanic)
			if !ok {
				panic(r)
			}
			out, st, err = d.out[:markOut], markStats, sp.err
		}
		d.data, d.out = nil, nil
	}()
	// A UTF-8 byte order mark is tolerated at the start.
	if bytes.HasPrefix(data, []byte("\xef\xbb\xbf")) {
		d.pos = 3
	}
	for {
		d.pos = d.ws(d.pos)
		if d.pos >= len(d.data) {
			break
		}
		values++
		switch d.data[d.pos] {
		case '{':
			if d.topObject() {
				sawCT = true
			} else {
				nonCT++
			}
		case '[':
			ct, non := d.topArray()
			sawCT = sawCT || ct
			nonCT += non
		default:
			d.skip()
			nonCT++
		}
		markOut, markStats = len(d.out), d.stats
	}
	if !sawCT {
		if values == 0 {
			return dst, DocStats{Bytes: d.stats.Bytes}, fmt.Errorf("stream: empty document: %w", ErrNotCloudTrail)
		}
		return dst, DocStats{Bytes: d.stats.Bytes}, fmt.Errorf("stream: %d JSON value(s) without CloudTrail records: %w", values, ErrNotCloudTrail)
	}
	for range nonCT {
		d.stats.Records++
		d.bad("not a CloudTrail record")
	}
	return d.out, d.stats, nil
}

// topArray decodes a top-level JSON array: records (or envelopes) as
// elements. It reports whether any element was CloudTrail and how many
// were not.
func (d *Decoder) topArray() (ct bool, nonCT int) { return d.array(d.topObject) }

// array walks a JSON array at d.pos, handing each object element to object
// (which reports whether it was CloudTrail) and skipping other elements.
func (d *Decoder) array(object func() bool) (ct bool, nonCT int) {
	d.each(func() {
		switch {
		case d.at(d.pos) != '{':
			d.skip()
			nonCT++
		case object():
			ct = true
		default:
			nonCT++
		}
	})
	return ct, nonCT
}

// each calls elem for every element of the JSON array at d.pos, with d.pos
// at the element; elem must leave d.pos after it. An empty array calls
// nothing.
func (d *Decoder) each(elem func()) {
	p := d.ws(d.pos + 1)
	if d.at(p) == ']' {
		d.pos = p + 1
		return
	}
	d.pos = p
	for {
		elem()
		p = d.ws(d.pos)
		switch d.at(p) {
		case ',':
			d.pos = d.ws(p + 1)
		case ']':
			d.pos = p + 1
			return
		default:
			d.fail(p, "after array element")
			return
		}
	}
}

// topObject decodes one top-level object: a Records (or Events) container,
// an EventBridge envelope or a bare record. It reports whether it was
// CloudTrail.
func (d *Decoder) topObject() bool {
	d.scratch = d.scratch[:0]
	r := &d.rec
	r.reset()
	container, haveDetail := false, false
	var envAccount, envRegion []byte
	if !d.enter() {
		return false
	}
	for more := true; more; more = d.next() {
		key := d.member()
		p := d.pos
		switch string(key) {
		case "Records", "Events":
			if d.at(p) == '[' {
				container = true
				d.records()
			} else if d.at(p) == 'n' {
				container = true
				d.skip()
			} else {
				d.skip()
			}
		case "detail":
			if d.at(p) == '{' {
				haveDetail = true
				d.det.reset()
				d.record(&d.det, false)
			} else {
				d.skip()
			}
		case "account":
			envAccount = d.str()
		case "region":
			envRegion = d.str()
		default:
			d.field(r, key, false)
		}
	}
	switch {
	case container:
		return true
	case haveDetail && d.det.recordLike():
		if d.det.recipient == nil && d.det.uiAccount == nil {
			d.det.recipient = envAccount
		}
		if d.det.region == nil {
			d.det.region = envRegion
		}
		d.stats.Records++
		d.emit(&d.det)
		return true
	case r.recordLike():
		d.stats.Records++
		d.emit(r)
		return true
	}
	return false
}

// records decodes the array of records at d.pos.
func (d *Decoder) records() {
	r := &d.det
	d.each(func() {
		d.stats.Records++
		if d.at(d.pos) != '{' {
			d.skip()
			d.bad("record is not an object")
			return
		}
		d.scratch = d.scratch[:0]
		r.reset()
		d.record(r, true)
		d.emit(r)
	})
}

// record decodes the object at d.pos into r. inEvents allows a
// CloudTrailEvent string (lookup-events output) to stand for the record.
func (d *Decoder) record(r *rawRecord, inEvents bool) {
	if !d.enter() {
		return
	}
	for more := true; more; more = d.next() {
		d.field(r, d.member(), inEvents)
	}
}

// enter steps into the object at d.pos: it reports whether the object has
// members, leaving d.pos at the first key, or past the '}' of an empty
// object. With member and next it walks an object's members:
//
//	if d.enter() {
//		for more := true; more; more = d.next() {
//			key := d.member() // d.pos at its value: decode or skip it
//		}
//	}
func (d *Decoder) enter() bool {
	p := d.ws(d.pos + 1)
	if d.at(p) == '}' {
		d.pos = p + 1
		return false
	}
	d.pos = p
	return true
}

// member reads the key at d.pos and its colon, leaving d.pos at the value.
func (d *Decoder) member() []byte {
	key, p := d.key(d.pos)
	d.pos = p
	return key
}

// next steps past a member's value: true with d.pos at the next key, false
// past the object's closing '}'.
func (d *Decoder) next() bool {
	p := d.ws(d.pos)
	switch d.at(p) {
	case ',':
		d.pos = d.ws(p + 1)
		return true
	case '}':
		d.pos = p + 1
		return false
	}
	d.fail(p, "after object key:value pair")
	return false
}

// field decodes the value at d.pos of record key key.
func (d *Decoder) field(r *rawRecord, key []byte, inEvents bool) {
	switch string(key) {
	case "eventTime":
		r.isRecord = true
		r.eventTime = d.str()
	case "eventSource":
		r.isRecord = true
		r.source = d.str()
	case "eventName":
		r.isRecord = true
		r.name = d.str()
	case "eventID":
		r.isRecord = true
		r.id = d.str()
	case "eventType":
		r.isRecord = true
		r.typ = d.str()
	case "eventVersion":
		r.isRecord = true
		d.skip()
	case "errorCode":
		r.errorCode = d.str()
	case "awsRegion":
		r.region = d.str()
	case "recipientAccountId":
		r.recipient = d.str()
	case "userAgent":
		r.agent = d.str()
	case "eventCategory":
		r.category = d.str()
	case "readOnly":
		r.readOnly = d.boolish()
	case "managementEvent":
		r.mgmt = d.boolish()
	case "userIdentity":
		d.object(r, objUserIdentity)
	case "insightDetails":
		d.object(r, objInsightDetails)
	case "http": // Datadog re-emitted records move userAgent here
		d.object(r, objHTTP)
	case "CloudTrailEvent":
		if inEvents && d.at(d.pos) == '"' {
			d.cloudTrailEvent(r)
		} else {
			d.skip()
		}
	default:
		d.skip()
	}
}

const (
	objUserIdentity = iota
	objInsightDetails
	objHTTP
)

// object decodes the nested object at d.pos, keeping the few keys wanted of
// it; any other value is skipped.
func (d *Decoder) object(r *rawRecord, kind int) {
	if d.at(d.pos) != '{' {
		d.skip()
		return
	}
	if !d.enter() {
		return
	}
	for more := true; more; more = d.next() {
		key := d.member()
		switch kind {
		case objUserIdentity:
			switch string(key) {
			case "arn":
				r.arn = d.str()
			case "accountId":
				r.uiAccount = d.str()
			default:
				d.skip()
			}
		case objInsightDetails:
			switch string(key) {
			case "eventSource":
				r.insSource = d.str()
			case "eventName":
				r.insName = d.str()
			case "errorCode":
				r.insErrorCode = d.str()
			default:
				d.skip()
			}
		case objHTTP:
			if string(key) == "useragent" {
				r.httpAgent = d.str()
			} else {
				d.skip()
			}
		}
	}
}

// cloudTrailEvent decodes the record held as a JSON string in the
// CloudTrailEvent field of lookup-events output.
func (d *Decoder) cloudTrailEvent(r *rawRecord) {
	s := d.str()
	d.sub = append(d.sub[:0], s...)
	inner := bytes.TrimSpace(d.sub)
	if len(inner) == 0 || inner[0] != '{' {
		return
	}
	data, pos := d.data, d.pos
	d.data, d.pos = inner, 0
	func() {
		defer func() {
			if x := recover(); x != nil {
				sp, ok := x.(syntaxPanic)
				if !ok {
					panic(x)
				}
				sp.err.Msg = fmt.Sprintf("in the CloudTrailEvent string ending here, at its offset %d: %s", sp.err.Offset, sp.err.Msg)
				sp.err.Offset = int64(pos)
				sp.err.Line = 1 + bytes.Count(data[:pos], []byte{'\n'})
				sp.err.Col = pos - bytes.LastIndexByte(data[:pos], '\n')
				d.data, d.pos = data, pos
				panic(sp)
			}
		}()
		d.record(r, false)
	}()
	// The inner record's strings may alias d.sub until emit; d.sub is only
	// reused by the next element.
	d.data, d.pos = data, pos
}

// emit validates r and appends its Event, or counts it as bad.
func (d *Decoder) emit(r *rawRecord) {
	if !r.recordLike() {
		d.bad("not a CloudTrail record")
		return
	}
	src, name, ec := r.source, r.name, r.errorCode
	if len(src) == 0 {
		src = r.insSource
	}
	if len(name) == 0 {
		name = r.insName
	}
	if ec == nil {
		ec = r.insErrorCode
	}
	if r.eventTime == nil {
		d.bad("no eventTime")
		return
	}
	t, ok := parseTime(r.eventTime)
	if !ok {
		d.bad("bad eventTime")
		return
	}
	if len(src) == 0 {
		d.bad("no eventSource")
		return
	}
	if len(name) == 0 {
		d.bad("no eventName")
		return
	}
	acct := r.recipient
	if len(acct) == 0 {
		acct = r.uiAccount
	}
	agent := r.agent
	if agent == nil {
		agent = r.httpAgent
	}
	e := Event{
		Time:      t,
		Account:   d.str2(acct),
		Region:    d.str2(r.region),
		Source:    d.str2(src),
		Name:      d.str2(name),
		ErrorCode: d.str2(ec),
		Type:      d.str2(r.typ),
		ID:        d.idString(r.id),
		UserArn:   d.str2(r.arn),
		UserAgent: d.str2(agent),
		ReadOnly:  r.readOnly == 1,
	}
	switch {
	case r.category != nil:
		e.Category = parseCategory(r.category)
	case r.mgmt == 0:
		e.Category = Data
	default:
		e.Category = Management
	}
	d.out = append(d.out, e)
}

func parseCategory(b []byte) Category {
	switch string(b) {
	case "Management":
		return Management
	case "Data":
		return Data
	case "Insight":
		return Insight
	case "NetworkActivity":
		return NetworkActivity
	}
	return OtherCategory
}

func (d *Decoder) bad(reason string) {
	d.stats.BadRecords++
	if d.stats.BadReason == "" {
		d.stats.BadReason = reason
	}
}

// str2 returns b as a string, interned when short.
func (d *Decoder) str2(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	if len(b) > maxInternLen {
		return string(b)
	}
	if s, ok := d.intern[string(b)]; ok {
		return s
	}
	if d.intern == nil {
		d.intern = make(map[string]string, 1024)
	}
	max := d.MaxInterned
	if max <= 0 {
		max = 1 << 16
	}
	if len(d.intern) >= max {
		clear(d.intern)
	}
	s := string(b)
	d.intern[s] = s
	return s
}

// idString copies an eventID into the ID arena: many IDs share one
// allocation. A strings.Builder never overwrites bytes it has handed out.
func (d *Decoder) idString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	if len(b) > 256 {
		return string(b)
	}
	if d.ids.Cap()-d.ids.Len() < len(b) {
		d.ids = strings.Builder{}
		d.ids.Grow(16 << 10)
	}
	start := d.ids.Len()
	d.ids.Write(b)
	return d.ids.String()[start:]
}

// ---- scanner ----

func (d *Decoder) fail(p int, msg string) {
	if p >= len(d.data) {
		msg = "unexpected end of JSON input (" + msg + ")"
	} else {
		c := d.data[p]
		if c >= 0x20 && c < 0x7f {
			msg = fmt.Sprintf("invalid character %q %s", c, msg)
		} else {
			msg = fmt.Sprintf("invalid byte 0x%02x %s", c, msg)
		}
	}
	if p > len(d.data) {
		p = len(d.data)
	}
	line := 1 + bytes.Count(d.data[:p], []byte{'\n'})
	col := p - bytes.LastIndexByte(d.data[:p], '\n')
	panic(syntaxPanic{&SyntaxError{Offset: int64(p), Line: line, Col: col, Msg: msg}})
}

// at returns the byte at p, or 0 past the end (0 is never valid there).
func (d *Decoder) at(p int) byte {
	if p < len(d.data) {
		return d.data[p]
	}
	return 0
}

func (d *Decoder) ws(p int) int {
	data := d.data
	for p < len(data) {
		switch data[p] {
		case ' ', '\n', '\r', '\t':
			p++
		default:
			return p
		}
	}
	return p
}

// key reads an object key at p and the colon after it; it returns the key
// and the position of the value.
func (d *Decoder) key(p int) ([]byte, int) {
	if d.at(p) != '"' {
		d.fail(p, "looking for beginning of object key string")
	}
	d.pos = p
	k := d.str()
	p = d.ws(d.pos)
	if d.at(p) != ':' {
		d.fail(p, "after object key")
	}
	return k, d.ws(p + 1)
}

// Character classes inside strings.
const (
	chPlain = iota
	chQuote
	chEscape
	chControl
	chHigh
)

var strClass = func() (t [256]uint8) {
	for i := range 0x20 {
		t[i] = chControl
	}
	t['"'] = chQuote
	t['\\'] = chEscape
	for i := 0x80; i < 0x100; i++ {
		t[i] = chHigh
	}
	return t
}()

// str reads the value at d.pos as a string: its bytes (unescaped, invalid
// UTF-8 replaced as encoding/json does); nil for null or a value of another
// type (which is skipped).
func (d *Decoder) str() []byte {
	p := d.pos
	if d.at(p) != '"' {
		if d.at(p) == 'n' {
			d.literal("null")
			return nil
		}
		d.skip()
		return nil
	}
	data := d.data
	start := p + 1
	p = start
	for p < len(data) {
		if p+8 <= len(data) {
			m := stopMask(binary.LittleEndian.Uint64(data[p:]))
			if m == 0 {
				p += 8
				continue
			}
			p += bits.TrailingZeros64(m) >> 3
		}
		switch strClass[data[p]] {
		case chPlain:
			p++
			continue
		case chQuote:
			d.pos = p + 1
			return data[start:p:p]
		case chControl:
			d.fail(p, "in string literal")
		}
		// An escape or a non-ASCII byte: take the slow path.
		return d.strSlow(start)
	}
	d.fail(p, "in string literal")
	return nil
}

// strSlow unescapes the string starting at start (after the quote) into
// scratch.
func (d *Decoder) strSlow(start int) []byte {
	data := d.data
	begin := len(d.scratch)
	b := d.scratch
	p := start
	for {
		if p >= len(data) {
			d.fail(p, "in string literal")
		}
		c := data[p]
		switch strClass[c] {
		case chPlain:
			b = append(b, c)
			p++
		case chQuote:
			d.pos = p + 1
			d.scratch = b
			return b[begin:len(b):len(b)]
		case chControl:
			d.fail(p, "in string literal")
		case chHigh:
			r, size := utf8.DecodeRune(data[p:])
			if r == utf8.RuneError && size == 1 {
				b = utf8.AppendRune(b, unicode.ReplacementChar)
			} else {
				b = append(b, data[p:p+size]...)
			}
			p += size
		case chEscape:
			if p+1 >= len(data) {
				d.fail(p+1, "in string escape code")
			}
			switch e := data[p+1]; e {
			case '"', '\\', '/':
				b = append(b, e)
				p += 2
			case 'b':
				b = append(b, '\b')
				p += 2
			case 'f':
				b = append(b, '\f')
				p += 2
			case 'n':
				b = append(b, '\n')
				p += 2
			case 'r':
				b = append(b, '\r')
				p += 2
			case 't':
				b = append(b, '\t')
				p += 2
			case 'u':
				r := d.u4(p)
				p += 6
				if utf16.IsSurrogate(r) {
					if r2 := d.peekU4(p); r2 >= 0 {
						if dec := utf16.DecodeRune(r, r2); dec != unicode.ReplacementChar {
							b = utf8.AppendRune(b, dec)
							p += 6
							break
						}
					}
					r = unicode.ReplacementChar
				}
				b = utf8.AppendRune(b, r)
			default:
				d.fail(p+1, "in string escape code")
			}
		}
	}
}

// u4 decodes the \uXXXX escape at p, failing on a bad one.
func (d *Decoder) u4(p int) rune {
	r := d.peekU4(p)
	if r < 0 {
		q := p + 2
		for q < p+6 && q < len(d.data) && hexVal(d.data[q]) >= 0 {
			q++
		}
		d.fail(q, "in \\u hexadecimal character escape")
	}
	return r
}

// peekU4 decodes a \uXXXX escape at p, or returns -1.
func (d *Decoder) peekU4(p int) rune {
	data := d.data
	if p+6 > len(data) || data[p] != '\\' || data[p+1] != 'u' {
		return -1
	}
	var r rune
	for _, c := range data[p+2 : p+6] {
		v := hexVal(c)
		if v < 0 {
			return -1
		}
		r = r<<4 | v
	}
	return r
}

func hexVal(c byte) rune {
	switch {
	case '0' <= c && c <= '9':
		return rune(c - '0')
	case 'a' <= c && c <= 'f':
		return rune(c - 'a' + 10)
	case 'A' <= c && c <= 'F':
		return rune(c - 'A' + 10)
	}
	return -1
}

// boolish reads a bool, or a string "true"/"false"; -1 for anything else.
func (d *Decoder) boolish() int8 {
	switch d.at(d.pos) {
	case 't':
		d.literal("true")
		return 1
	case 'f':
		d.literal("false")
		return 0
	case '"':
		switch string(d.str()) {
		case "true":
			return 1
		case "false":
			return 0
		}
		return -1
	}
	d.skip()
	return -1
}

func (d *Decoder) literal(lit string) {
	p := d.pos
	for i := 0; i < len(lit); i++ {
		if d.at(p+i) != lit[i] {
			d.fail(p+i, "in literal "+lit+" (expecting '"+lit[i:i+1]+"')")
		}
	}
	d.pos = p + len(lit)
}

// skipString skips the string starting at p (the quote); it returns the
// position after it.
func (d *Decoder) skipString(p int) int {
	data := d.data
	p++
	for p < len(data) {
		if p+8 <= len(data) {
			m := skipMask(binary.LittleEndian.Uint64(data[p:]))
			if m == 0 {
				p += 8
				continue
			}
			p += bits.TrailingZeros64(m) >> 3
		}
		c := data[p]
		switch {
		case c == '"':
			return p + 1
		case c == '\\':
			if p+1 >= len(data) {
				d.fail(p+1, "in string escape code")
			}
			switch data[p+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				p += 2
			case 'u':
				d.u4(p)
				p += 6
			default:
				d.fail(p+1, "in string escape code")
			}
		case c < 0x20:
			d.fail(p, "in string literal")
		default:
			p++
		}
	}
	d.fail(len(data), "in string literal")
	return 0
}

// SWAR: find, eight bytes at a time, the first byte of a string that is not
// plain. The lowest set bit of each mask marks the first such byte exactly
// (the borrow tricks give false positives only above a true one).
const (
	lsb8 = 0x0101010101010101
	msb8 = 0x8080808080808080
)

// skipMask marks '"', '\\' and control bytes.
func skipMask(x uint64) uint64 {
	q := x ^ (lsb8 * '"')
	e := x ^ (lsb8 * '\\')
	return ((q-lsb8)&^q | (e-lsb8)&^e | (x-lsb8*0x20)&^x) & msb8
}

// stopMask marks what skipMask does and non-ASCII bytes.
func stopMask(x uint64) uint64 {
	return skipMask(x) | x&msb8
}

// number skips the JSON number at p and returns the position after it.
func (d *Decoder) number(p int) int {
	if d.at(p) == '-' {
		p++
	}
	switch c := d.at(p); {
	case c == '0':
		p++
	case '1' <= c && c <= '9':
		p++
		for isDigit(d.at(p)) {
			p++
		}
	default:
		d.fail(p, "in numeric literal")
	}
	if d.at(p) == '.' {
		p++
		if !isDigit(d.at(p)) {
			d.fail(p, "after decimal point in numeric literal")
		}
		for isDigit(d.at(p)) {
			p++
		}
	}
	if c := d.at(p); c == 'e' || c == 'E' {
		p++
		if c := d.at(p); c == '+' || c == '-' {
			p++
		}
		if !isDigit(d.at(p)) {
			d.fail(p, "in exponent of numeric literal")
		}
		for isDigit(d.at(p)) {
			p++
		}
	}
	return p
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// scalar skips a string, number or literal at p.
func (d *Decoder) scalar(p int) int {
	switch c := d.at(p); {
	case c == '"':
		return d.skipString(p)
	case c == '-' || isDigit(c):
		return d.number(p)
	case c == 't':
		d.pos = p
		d.literal("true")
	case c == 'f':
		d.pos = p
		d.literal("false")
	case c == 'n':
		d.pos = p
		d.literal("null")
	default:
		d.fail(p, "looking for beginning of value")
	}
	return d.pos
}

const maxDepth = 10000 // as encoding/json

// skip skips the value at d.pos, validating it.
func (d *Decoder) skip() {
	p := d.pos
	c := d.at(p)
	if c != '{' && c != '[' {
		d.pos = d.scalar(p)
		return
	}
	stack := d.stack[:0]
	for {
		// p is at an opening bracket.
		c = d.data[p]
		stack = append(stack, c)
		if len(stack) > maxDepth {
			d.fail(p, "exceeded max depth")
		}
		p = d.ws(p + 1)
		if c == '{' {
			if d.at(p) == '}' {
				p++
				goto closed
			}
			p = d.skipKey(p)
		} else if d.at(p) == ']' {
			p++
			goto closed
		}
	value:
		if c = d.at(p); c == '{' || c == '[' {
			continue
		}
		p = d.scalar(p)
	after:
		p = d.ws(p)
		c = d.at(p)
		if c == ',' {
			p = d.ws(p + 1)
			if stack[len(stack)-1] == '{' {
				p = d.skipKey(p)
			}
			goto value
		}
		if (c == '}' && stack[len(stack)-1] == '{') || (c == ']' && stack[len(stack)-1] == '[') {
			p++
			goto closed
		}
		if stack[len(stack)-1] == '{' {
			d.fail(p, "after object key:value pair")
		}
		d.fail(p, "after array element")
	closed:
		stack = stack[:len(stack)-1]
		if len(stack) == 0 {
			d.stack = stack
			d.pos = p
			return
		}
		goto after
	}
}

// skipKey skips a key and its colon at p; it returns the value position.
func (d *Decoder) skipKey(p int) int {
	if d.at(p) != '"' {
		d.fail(p, "looking for beginning of object key string")
	}
	p = d.ws(d.skipString(p))
	if d.at(p) != ':' {
		d.fail(p, "after object key")
	}
	return d.ws(p + 1)
}

// ---- time ----

// parseTime parses eventTime: the fixed YYYY-MM-DDTHH:MM:SSZ by hand, any
// other RFC 3339 form with time.Parse. The result is UTC, whole seconds.
func parseTime(b []byte) (time.Time, bool) {
	if len(b) == 20 && b[4] == '-' && b[7] == '-' && b[10] == 'T' && b[13] == ':' && b[16] == ':' && b[19] == 'Z' {
		y, ok1 := digits(b[0:4])
		mo, ok2 := digits(b[5:7])
		dd, ok3 := digits(b[8:10])
		h, ok4 := digits(b[11:13])
		mi, ok5 := digits(b[14:16])
		s, ok6 := digits(b[17:19])
		if ok1 && ok2 && ok3 && ok4 && ok5 && ok6 && y >= 1 && mo >= 1 && mo <= 12 && dd >= 1 &&
			dd <= daysIn(mo, y) && h < 24 && mi < 60 && s < 60 {
			sec := daysFromCivil(y, mo, dd)*86400 + int64(h*3600+mi*60+s)
			return time.Unix(sec, 0).UTC(), true
		}
	}
	t, err := time.Parse(time.RFC3339, string(b))
	if err != nil {
		return time.Time{}, false
	}
	return t.UTC().Truncate(time.Second), true
}

func digits(b []byte) (int, bool) {
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

func daysIn(m, y int) int {
	switch m {
	case 2:
		if y%4 == 0 && (y%100 != 0 || y%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// daysFromCivil returns the days since 1970-01-01 of a proleptic Gregorian
// date (H. Hinnant's algorithm), for y >= 1.
func daysFromCivil(y, m, d int) int64 {
	if m <= 2 {
		y--
	}
	era := y / 400
	yoe := y - era*400
	mp := (m + 9) % 12
	doy := (153*mp+2)/5 + d - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	return int64(era)*146097 + int64(doe) - 719468
}
