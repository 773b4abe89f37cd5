package stream

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/rs/zerolog"
)

// Poll defaults.
const (
	DefaultPollInterval = time.Minute
	DefaultPollWindow   = time.Hour
)

// pollAttempts bounds the polls at which a file whose read fails (not a
// bad file: the storage failed) is tried again before it counts as bad.
const pollAttempts = 5

// settle is how long before a listing a file must have been written last
// to be read from it; a newer one waits for the next listing. A listing is
// not a snapshot: a file that landed while it ran may be seen without the
// one that landed just before it, or may still be being written. (S3 gives
// LastModified to the second, hence more than a second.)
const settle = 2 * time.Second

// recentWrite is how long after its last change a local file that does not
// decode is taken for one still being written, and tried again.
const recentWrite = time.Minute

// PollOptions configures a Poller.
type PollOptions struct {
	// Window is the trailing window, in delivery time, that every poll
	// lists again: a file is found as long as it lands less than Window
	// after the delivery time its name gives (for a file whose name gives
	// none, after the end of its date folder's day). Default
	// DefaultPollWindow.
	Window time.Duration
	// Interval is the time between the starts of two polls; a poll whose
	// files take longer to read is followed at once by the next. Default
	// DefaultPollInterval.
	Interval time.Duration
	// From is where a fresh start (no position) begins: files delivered
	// before it are not read. Zero: Now() − Window.
	From time.Time
	// Workers decode files ahead in parallel; 0 means one per CPU.
	Workers int
	// Now is the wall clock, used only for the trailing window and the
	// time between polls. Default time.Now.
	Now func() time.Time
	// Logger receives failed listings and reads. The zero value logs
	// nothing.
	Logger zerolog.Logger
}

// PollStats counts what a Poller did.
type PollStats struct {
	Polls    int64         // listings made
	Files    int64         // files Next returned, bad ones included
	BadFiles int64         // of which bad (Batch.Err set)
	Retries  int64         // reads that failed and were tried again at a later poll
	LastPoll time.Duration // how long the last listing took
	// Delivery is the delivery time of the newest file Next returned (from
	// its name, or the end of its date folder's day); zero if none told.
	Delivery time.Time
	Through  time.Time // files delivered before it are done or never read
	Done     int       // files delivered at or after Through that are done
}

// Poller watches a folder or an S3 prefix where CloudTrail files land —
// the AWSLogs/ layout, organisation trails included, or a flat folder of
// CloudTrail JSON files — and returns each new file once, whole, in
// delivery order (the order of ListDir).
//
// Each poll lists the date folders from the day of its cursor, Through, to
// today: files delivered before Through are done (or were never going to
// be read); the files delivered after it that are done form a set. Through
// follows the wall clock at Window behind, but never passes a file listed
// and not yet returned, so files landing late and out of key order inside
// the window are found at the next poll, and an idle archive does not make
// polls walk years of folders. Files whose names give no time (a flat
// folder) are listed at every poll: they stay in the set while a listing
// holds them, so the set is never larger than the folder.
//
// Position encodes Through and the set: a state that has counted every
// file Next returned resumes with NewDirPoller or NewS3Poller given it,
// and reads exactly the files it does not hold.
//
// A file that cannot be read whole because the storage failed is tried
// again at the next polls (the files after it wait, to keep the order);
// after pollAttempts it is returned as bad. A local file that does not
// decode and changed less than a minute ago is taken for one still being
// written and tried again. Bad files are returned with Batch.Err set, and
// are done.
//
// Next, Position, Stats and Close must be called from one goroutine.
type Poller struct {
	store pollStore
	opt   PollOptions
	log   zerolog.Logger

	through time.Time
	done    map[string]time.Time // key → delivery time (zero: none)

	ctx     context.Context // ends with Close: listings and reads
	stopAll context.CancelFunc
	listing chan listResult // a listing in flight, nil when none

	// The current listing, from poll to the end of its files.
	batches  chan Batch
	cancel   context.CancelFunc
	decErr   chan error
	left     timeCounts // delivery times of its files not yet returned
	limit    time.Time  // Now() − Window when it was made
	lastPoll time.Time  // when it was made (wall clock)
	attempts map[string]int
	stats    PollStats
}

// pollStore is where a Poller's files live.
type pollStore interface {
	// list returns the CloudTrail files that may have been delivered in
	// [from's day, to], sorted as SortFiles.
	list(ctx context.Context, from, to time.Time) ([]File, error)
	open(File) (io.ReadCloser, error)
	// key names f in a position: stable across restarts.
	key(File) string
	// recent reports whether f may still be being written.
	recent(f File, now time.Time) bool
	String() string
}

// NewDirPoller watches the folder root (see Poller). pos is a Position
// from an earlier Poller of the same folder, or nil to start afresh at
// opt.From. Files are named in the position by their path relative to
// root, so the folder may move.
func NewDirPoller(root string, pos []byte, opt PollOptions) (*Poller, error) {
	st, err := os.Stat(root)
	if err != nil {
		return nil, fmt.Errorf("stream: watch %s: %w", root, err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("stream: watch %s: not a folder", root)
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("stream: watch %s: %w", root, err)
	}
	return newPoller(&dirStore{root: root, abs: abs}, pos, opt)
}

// NewS3Poller watches s3://bucket/prefix (see Poller), listing as ListS3
// does. pos is a Position from an earlier Poller of the same prefix, or nil
// to start afresh at opt.From. Objects are named in the position by their
// key relative to prefix.
func NewS3Poller(client *s3.Client, bucket, prefix string, pos []byte, opt PollOptions) (*Poller, error) {
	prefix = strings.Trim(prefix, "/")
	return newPoller(&s3Store{client: client, bucket: bucket, prefix: prefix, opener: S3Opener(client, bucket)}, pos, opt)
}

func newPoller(store pollStore, pos []byte, opt PollOptions) (*Poller, error) {
	if opt.Window <= 0 {
		opt.Window = DefaultPollWindow
	}
	if opt.Interval <= 0 {
		opt.Interval = DefaultPollInterval
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	p := &Poller{store: store, opt: opt, log: opt.Logger, attempts: map[string]int{}}
	p.ctx, p.stopAll = context.WithCancel(context.Background())
	if pos == nil {
		p.through, p.done = opt.From, map[string]time.Time{}
		if p.through.IsZero() {
			p.through = opt.Now().Add(-opt.Window)
		}
		p.through = p.through.UTC().Truncate(time.Second)
		return p, nil
	}
	var err error
	if p.through, p.done, err = DecodePollPosition(pos); err != nil {
		return nil, err
	}
	return p, nil
}

func (p *Poller) String() string { return p.store.String() }

// Next blocks until a new file is read, and returns it (Batch.Err set for
// a bad one, whose events decoded before the fault are in Batch.Events, as
// DecodeFiles gives them). It polls every Interval while nothing is new; a
// listing that fails is logged and made again at the next poll. Next
// returns ctx.Err() when ctx is done. The Batch's events are the caller's.
func (p *Poller) Next(ctx context.Context) (Batch, error) {
	for {
		b, ok, err := p.next(ctx)
		if ok || err != nil {
			return b, err
		}
		if p.listing == nil && !p.lastPoll.IsZero() {
			if wait := p.lastPoll.Add(p.opt.Interval).Sub(p.opt.Now()); wait > 0 {
				if err := sleepCtx(ctx, wait); err != nil {
					return Batch{}, err
				}
			}
		}
		if err := p.poll(ctx); err != nil {
			if ctx.Err() != nil {
				return Batch{}, ctx.Err()
			}
			p.log.Warn().Str("source", p.store.String()).Err(err).Msg("poll failed")
		}
	}
}

type listResult struct {
	files []File
	err   error
	now   time.Time
	took  time.Duration
}

// poll lists the files from Through on and starts reading those not done.
// The listing runs in its own goroutine: when ctx ends first, poll returns
// ctx.Err() and the next call takes the listing's result.
func (p *Poller) poll(ctx context.Context) error {
	if p.listing == nil {
		now, through := p.opt.Now(), p.through
		p.lastPoll = now
		p.prune()
		ch := make(chan listResult, 1)
		p.listing = ch
		go func() {
			t0 := time.Now()
			files, err := p.store.list(p.ctx, through, now)
			ch <- listResult{files: files, err: err, now: now, took: time.Since(t0)}
		}()
	}
	var r listResult
	select {
	case r = <-p.listing:
		p.listing = nil
	case <-ctx.Done():
		return ctx.Err()
	}
	p.stats.Polls++
	p.stats.LastPoll = r.took
	if r.err != nil {
		return r.err
	}
	files, now := r.files, r.now
	p.forgetGone(files)
	p.limit = now.Add(-p.opt.Window)
	p.left = timeCounts{}
	queue := files[:0]
	for _, f := range files {
		t := deliveryTime(f)
		if !t.IsZero() && t.Before(p.through) {
			continue
		}
		if _, ok := p.done[p.store.key(f)]; ok {
			continue
		}
		p.left.add(t) // a file left for the next listing holds Through back too
		if !f.Modified.IsZero() && !f.Modified.Before(now.Add(-settle)) {
			continue
		}
		queue = append(queue, f)
	}
	p.left.sort()
	p.advance()
	if len(queue) == 0 {
		return nil
	}
	dctx, cancel := context.WithCancel(p.ctx)
	p.batches, p.cancel, p.decErr = make(chan Batch, 4), cancel, make(chan error, 1)
	go func(out chan Batch, errc chan error) {
		defer close(out)
		errc <- DecodeFiles(dctx, queue, p.store.open, p.opt.Workers, out)
	}(p.batches, p.decErr)
	return nil
}

// next returns the next file of the current listing; ok is false when it
// has none left.
func (p *Poller) next(ctx context.Context) (b Batch, ok bool, err error) {
	for p.batches != nil {
		select {
		case <-ctx.Done():
			return Batch{}, false, ctx.Err()
		case b, more := <-p.batches:
			if !more {
				p.stop()
				p.advance()
				return Batch{}, false, nil
			}
			key := p.store.key(b.File)
			if b.Err != nil && p.retryable(b) {
				p.attempts[key]++
				if n := p.attempts[key]; n < pollAttempts || p.store.recent(b.File, p.opt.Now()) {
					p.stats.Retries++
					p.log.Warn().Str("file", b.File.Path).Int("attempt", n).Err(b.Err).Msg("read failed: trying again at the next poll")
					b.Release()
					p.stop() // the files after it wait, in order
					return Batch{}, false, nil
				}
			}
			delete(p.attempts, key)
			t := deliveryTime(b.File)
			p.done[key] = t
			p.left.remove(t)
			p.advance()
			p.stats.Files++
			if b.Err != nil {
				p.stats.BadFiles++
			}
			if t.After(p.stats.Delivery) {
				p.stats.Delivery = t
			}
			return b, true, nil
		}
	}
	return Batch{}, false, nil
}

// retryable reports whether b failed for a reason that may pass: the
// storage failed (a file that vanished is done), or a local file does not
// decode yet because it is being written.
func (p *Poller) retryable(b Batch) bool {
	var re *ReadError
	if errors.As(b.Err, &re) {
		var nsk *types.NoSuchKey
		return !errors.Is(re.Err, fs.ErrNotExist) && !errors.As(re.Err, &nsk)
	}
	return p.store.recent(b.File, p.opt.Now())
}

// stop ends the current listing's reading.
func (p *Poller) stop() {
	if p.batches == nil {
		return
	}
	p.cancel()
	for b := range p.batches {
		b.Release()
	}
	<-p.decErr
	p.batches = nil
}

// advance moves Through up to the trailing window's start, but not past
// the oldest file listed and not yet returned.
func (p *Poller) advance() {
	t := p.limit
	if m, ok := p.left.min(); ok && m.Before(t) {
		t = m
	}
	if t = t.UTC().Truncate(time.Second); t.After(p.through) {
		p.through = t
	}
}

// prune drops from the done set the files that Through covers.
func (p *Poller) prune() {
	for k, t := range p.done {
		if !t.IsZero() && t.Before(p.through) {
			delete(p.done, k)
		}
	}
}

// forgetGone drops from the done set the files without a delivery time
// that a whole listing no longer holds: every listing holds every such file
// there is, so one it lacks was deleted or moved away.
func (p *Poller) forgetGone(files []File) {
	listed := make(map[string]struct{})
	for _, f := range files {
		if deliveryTime(f).IsZero() {
			listed[p.store.key(f)] = struct{}{}
		}
	}
	for k, t := range p.done {
		if _, ok := listed[k]; t.IsZero() && !ok {
			delete(p.done, k)
		}
	}
}

// Stats returns the counts so far.
func (p *Poller) Stats() PollStats {
	p.prune()
	st := p.stats
	st.Through, st.Done = p.through, len(p.done)
	return st
}

// Close stops listing and reading ahead. It is idempotent.
func (p *Poller) Close() error {
	p.stopAll()
	p.stop()
	if p.listing != nil {
		<-p.listing
		p.listing = nil
	}
	if s, ok := p.store.(*s3Store); ok {
		CloseIdleConnections(s.client)
	}
	return nil
}

// pollPositionVersion is the first byte of a Position.
const pollPositionVersion = 1

// Position returns what a restarted Poller needs to return exactly the
// files that Next has not returned yet: Through and the done set.
func (p *Poller) Position() []byte {
	p.prune()
	return EncodePollPosition(p.through, p.done)
}

// EncodePollPosition encodes a Poller's cursor and done set: a version
// byte, Through in Unix seconds (varint), the number of keys (uvarint),
// then each key (uvarint length, bytes) with its delivery time in Unix
// seconds (varint; 0 for none), keys in sorted order.
func EncodePollPosition(through time.Time, done map[string]time.Time) []byte {
	keys := make([]string, 0, len(done))
	n := 1 + 2*binary.MaxVarintLen64
	for k := range done {
		keys = append(keys, k)
		n += len(k) + 2*binary.MaxVarintLen64
	}
	slices.Sort(keys)
	b := make([]byte, 0, n)
	b = append(b, pollPositionVersion)
	b = binary.AppendVarint(b, through.Unix())
	b = binary.AppendUvarint(b, uint64(len(keys)))
	for _, k := range keys {
		b = binary.AppendUvarint(b, uint64(len(k)))
		b = append(b, k...)
		var secs int64
		if t := done[k]; !t.IsZero() {
			secs = t.Unix()
		}
		b = binary.AppendVarint(b, secs)
	}
	return b
}

// ErrBadPosition is wrapped by DecodePollPosition's errors.
var ErrBadPosition = errors.New("stream: bad poll position")

// DecodePollPosition decodes what EncodePollPosition wrote.
func DecodePollPosition(b []byte) (through time.Time, done map[string]time.Time, err error) {
	fail := func(what string) (time.Time, map[string]time.Time, error) {
		return time.Time{}, nil, fmt.Errorf("%w: %s", ErrBadPosition, what)
	}
	if len(b) == 0 || b[0] != pollPositionVersion {
		return fail("unknown version")
	}
	b = b[1:]
	secs, n := binary.Varint(b)
	if n <= 0 {
		return fail("cursor")
	}
	through = time.Unix(secs, 0).UTC()
	b = b[n:]
	count, n := binary.Uvarint(b)
	if n <= 0 || count > uint64(len(b)) {
		return fail("key count")
	}
	b = b[n:]
	done = make(map[string]time.Time, count)
	for range count {
		l, n := binary.Uvarint(b)
		if n <= 0 || l == 0 || l > uint64(len(b)-n) {
			return fail("key length")
		}
		k := string(b[n : n+int(l)])
		b = b[n+int(l):]
		secs, n := binary.Varint(b)
		if n <= 0 {
			return fail("key time")
		}
		b = b[n:]
		if _, dup := done[k]; dup {
			return fail("key twice")
		}
		var t time.Time
		if secs != 0 {
			t = time.Unix(secs, 0).UTC()
		}
		done[k] = t
	}
	if len(b) != 0 {
		return fail("trailing bytes")
	}
	return through, done, nil
}

// deliveryTime is when f was delivered, as its name tells (to the
// minute), or the last second of its date folder's day; zero when neither
// tells.
func deliveryTime(f File) time.Time {
	if !f.Delivery.IsZero() {
		return f.Delivery.UTC()
	}
	if !f.Day.IsZero() {
		return f.Day.UTC().Add(24*time.Hour - time.Second)
	}
	return time.Time{}
}

// timeCounts is a multiset of times that yields its minimum as elements
// are removed (zero times are not held).
type timeCounts struct {
	times []time.Time // sorted, unique after sort
	n     map[time.Time]int
	i     int // times[:i] have no element left
}

func (c *timeCounts) add(t time.Time) {
	if t.IsZero() {
		return
	}
	if c.n == nil {
		c.n = map[time.Time]int{}
	}
	if c.n[t] == 0 {
		c.times = append(c.times, t)
	}
	c.n[t]++
}

func (c *timeCounts) sort() {
	sort.Slice(c.times, func(i, j int) bool { return c.times[i].Before(c.times[j]) })
}

func (c *timeCounts) remove(t time.Time) {
	if c.n[t] > 0 {
		c.n[t]--
	}
}

func (c *timeCounts) min() (time.Time, bool) {
	for c.i < len(c.times) && c.n[c.times[c.i]] == 0 {
		c.i++
	}
	if c.i == len(c.times) {
		return time.Time{}, false
	}
	return c.times[c.i], true
}

// ---- stores ----

type dirStore struct{ root, abs string }

func (d *dirStore) String() string { return d.root }

func (d *dirStore) open(f File) (io.ReadCloser, error) { return os.Open(f.Path) }

func (d *dirStore) key(f File) string {
	rel, err := filepath.Rel(d.root, f.Path)
	if err != nil {
		return filepath.ToSlash(f.Path)
	}
	return filepath.ToSlash(rel)
}

func (d *dirStore) recent(f File, now time.Time) bool {
	st, err := os.Stat(f.Path)
	return err == nil && now.Sub(st.ModTime()) < recentWrite
}

// list is ListDir's walk that does not enter the date folders outside
// [from's day, to's day].
func (d *dirStore) list(ctx context.Context, from, to time.Time) ([]File, error) {
	files, err := walkArchive(ctx, d.root, d.abs, from, to, true, map[string]int{})
	if err != nil {
		return nil, err
	}
	SortFiles(files)
	return files, nil
}

type s3Store struct {
	client         *s3.Client
	bucket, prefix string
	opener         func(File) (io.ReadCloser, error)
}

func (s *s3Store) String() string { return "s3://" + s.bucket + "/" + s.prefix }

func (s *s3Store) open(f File) (io.ReadCloser, error) { return s.opener(f) }

func (s *s3Store) key(f File) string {
	if s.prefix == "" {
		return f.Path
	}
	return strings.TrimPrefix(f.Path, s.prefix+"/")
}

func (s *s3Store) recent(File, time.Time) bool { return false }

func (s *s3Store) list(ctx context.Context, from, to time.Time) ([]File, error) {
	files, _, err := listS3(ctx, s.client, s.bucket, s.prefix, from, to, true)
	return files, err
}
