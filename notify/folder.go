package notify

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/klauspost/compress/gzip"

	"github.com/trailsight/trailsight/detector"
)

// FolderOptions configures a Folder. The zero value writes AWS's layout
// with trailsight's explanations included.
type FolderOptions struct {
	// Prefix is an extra slash-separated path before AWSLogs/, like a
	// trail's S3 key prefix. It must be relative and contain no "..".
	Prefix string
	// OrgID, when set, writes an organisation trail's layout:
	// AWSLogs/<OrgID>/<account>/CloudTrail-Insight/…; it must look like
	// "o-" followed by lower-case letters and digits.
	OrgID string
	// StrictAWS drops each insight's Explanation, so that files hold only
	// fields AWS writes.
	StrictAWS bool
}

// Folder writes the CloudTrail-Insight S3 layout under a directory:
//
//	[Prefix/]AWSLogs/<account>/CloudTrail-Insight/<region>/YYYY/MM/DD/
//	  <account>_CloudTrail-Insight_<region>_<YYYYMMDDTHHmmZ>_<unique16>.json.gz
//
// Each insight event is written to its own gzip'd {"Records":[…]} file,
// named for its account, region and delivery minute — the event's eventTime
// minute, so a Start and its End land in different files, as AWS's may.
// <unique16> is 16 characters [A-Za-z0-9] from a SHA-256 of the eventID;
// gzip headers carry no time. The key depends on the event alone, not on how
// events were batched into Notify calls, so a backfill, the service and a
// replay after a crash all write the same keys and bytes, and a re-run
// overwrites rather than duplicates.
//
// Files are written atomically: a temporary file in the target directory,
// fsync, rename, fsync of the directory. Keys and Written may be called
// concurrently with Notify.
type Folder struct {
	dir string
	opt FolderOptions
	tally
}

// tally is what Folder and S3 record of their writes: safe for concurrent
// use.
type tally struct {
	mu     sync.Mutex
	keys   []string
	seen   map[string]bool
	files  int
	events int
	closed bool
}

// wrote records a file (or object) of n events written at key.
func (t *tally) wrote(key string, n int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.seen == nil {
		t.seen = map[string]bool{}
	}
	if !t.seen[key] {
		t.seen[key] = true
		t.keys = append(t.keys, key)
	}
	t.files++
	t.events += n
}

// isClosed reports whether close was called.
func (t *tally) isClosed() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.closed
}

func (t *tally) close() {
	t.mu.Lock()
	t.closed = true
	t.mu.Unlock()
}

// Keys returns the slash-separated keys written so far (relative to the
// folder; for S3 with the prefix, without the bucket), each once, in the
// order first written.
func (t *tally) Keys() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return slices.Clone(t.keys)
}

// Written returns how many files (objects) and events were written so far,
// counting re-writes of a key.
func (t *tally) Written() (files, events int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.files, t.events
}

var (
	reAccount = regexp.MustCompile(`^[0-9]{1,12}$`)
	reRegion  = regexp.MustCompile(`^[a-z0-9-]{1,32}$`)
	reOrgID   = regexp.MustCompile(`^o-[a-z0-9]{1,32}$`)
)

// NewFolder returns a Folder writing under dir, creating dir if needed.
func NewFolder(dir string, opt FolderOptions) (*Folder, error) {
	opt, err := opt.clean("folder")
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("notify: folder: %w", err)
	}
	return &Folder{dir: dir, opt: opt}, nil
}

// clean checks the layout options shared by Folder and S3 and returns them
// with Prefix trimmed of slashes; what names the notifier in errors.
func (opt FolderOptions) clean(what string) (FolderOptions, error) {
	if opt.Prefix != "" {
		p := strings.Trim(opt.Prefix, "/")
		if strings.HasPrefix(opt.Prefix, "/") || path.Clean(p) != p || p == ".." || strings.HasPrefix(p, "../") {
			return opt, fmt.Errorf("notify: %s prefix %q: want a clean relative path", what, opt.Prefix)
		}
		opt.Prefix = p
	}
	if opt.OrgID != "" && !reOrgID.MatchString(opt.OrgID) {
		return opt, fmt.Errorf("notify: %s organisation ID %q: want o-[a-z0-9]+", what, opt.OrgID)
	}
	return opt, nil
}

// Notify writes ins as described on Folder. Insights whose account or
// region cannot be part of a key (not 1–12 digits; not [a-z0-9-]) are not
// written and are reported in the returned error; the others are written.
func (f *Folder) Notify(ctx context.Context, ins []detector.Insight) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if f.isClosed() {
		return ErrClosed
	}
	files, errs := folderFiles(ins, f.opt)
	for _, fl := range files {
		if err := ctx.Err(); err != nil {
			return errors.Join(append(errs, err)...)
		}
		if err := WriteFileAtomic(filepath.Join(f.dir, filepath.FromSlash(fl.key)), fl.body); err != nil {
			errs = append(errs, fmt.Errorf("notify: folder: %w", err))
			continue
		}
		f.wrote(fl.key, fl.n)
	}
	return errors.Join(errs...)
}

// Close ends the Folder. Every file is complete when Notify returns, so there
// is nothing to flush.
func (f *Folder) Close() error {
	f.close()
	return nil
}

// folderFile is one file to write: its key and gzip'd body.
type folderFile struct {
	key  string
	body []byte
	n    int
}

// folderFiles groups ins into files, sorted by key: the CloudTrail-Insight
// layout that Folder and S3 both write.
func folderFiles(ins []detector.Insight, opt FolderOptions) ([]folderFile, []error) {
	// One file per event: how events are batched into Notify calls (per
	// input file in a backfill, per fetch in the service, different again
	// after a restart) must not change what is written, so the key depends
	// on the event alone.
	type group struct {
		account, region string
		minute          time.Time
		eventID         string
	}
	var errs []error
	groups := map[group][]detector.Insight{}
	for _, in := range ins {
		if !reAccount.MatchString(in.Account) || !reRegion.MatchString(in.Region) {
			errs = append(errs, fmt.Errorf("notify: insight %s: account %q or region %q cannot be part of a key", in.EventID, in.Account, in.Region))
			continue
		}
		if opt.StrictAWS {
			in.Explanation = nil
		}
		g := group{in.Account, in.Region, in.Time.UTC().Truncate(time.Minute), in.EventID}
		groups[g] = append(groups[g], in)
	}
	files := make([]folderFile, 0, len(groups))
	for g, gs := range groups {
		gs = dedupeByEventID(gs)
		slices.SortFunc(gs, compareInsights)
		body, err := recordsGzip(gs)
		if err != nil {
			errs = append(errs, fmt.Errorf("notify: encode: %w", err))
			continue
		}
		files = append(files, folderFile{key: folderKey(opt, g.account, g.region, g.minute, gs), body: body, n: len(gs)})
	}
	slices.SortFunc(files, func(a, b folderFile) int { return strings.Compare(a.key, b.key) })
	return files, errs
}

// dedupeByEventID keeps the first insight of each eventID (and every
// insight without one), in place.
func dedupeByEventID(ins []detector.Insight) []detector.Insight {
	seen := make(map[string]bool, len(ins))
	out := ins[:0]
	for _, in := range ins {
		if in.EventID != "" {
			if seen[in.EventID] {
				continue
			}
			seen[in.EventID] = true
		}
		out = append(out, in)
	}
	return out
}

// compareInsights orders the records of a file, whatever the input order.
func compareInsights(a, b detector.Insight) int {
	return cmp.Or(
		a.Time.Compare(b.Time),
		cmp.Compare(a.State, b.State),
		strings.Compare(a.EventSource, b.EventSource),
		strings.Compare(a.EventName, b.EventName),
		cmp.Compare(a.Type, b.Type),
		strings.Compare(a.ErrorCode, b.ErrorCode),
		strings.Compare(a.EventID, b.EventID),
	)
}

const base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// folderKey returns the key of the file holding ins (sorted, non-empty).
func folderKey(opt FolderOptions, account, region string, minute time.Time, ins []detector.Insight) string {
	h := sha256.New()
	for _, in := range ins {
		h.Write([]byte(in.EventID))
		h.Write([]byte{'\n'})
	}
	sum := h.Sum(nil)
	var unique [16]byte
	for i := range unique {
		unique[i] = base62[int(sum[i])%len(base62)]
	}
	var b strings.Builder
	if opt.Prefix != "" {
		b.WriteString(opt.Prefix + "/")
	}
	b.WriteString("AWSLogs/")
	if opt.OrgID != "" {
		b.WriteString(opt.OrgID + "/")
	}
	fmt.Fprintf(&b, "%s/CloudTrail-Insight/%s/%s/%s_CloudTrail-Insight_%s_%s_%s.json.gz",
		account, region, minute.Format("2006/01/02"), account, region, minute.Format("20060102T1504Z"), unique[:])
	return b.String()
}

// recordsJSON returns {"Records":[…]} as AWS writes it: compact, no final
// newline.
func recordsJSON(ins []detector.Insight) ([]byte, error) {
	var buf bytes.Buffer
	buf.WriteString(`{"Records":[`)
	for i, in := range ins {
		if i > 0 {
			buf.WriteByte(',')
		}
		b, err := in.MarshalJSON()
		if err != nil {
			return nil, err
		}
		buf.Write(b)
	}
	buf.WriteString(`]}`)
	return buf.Bytes(), nil
}

func recordsGzip(ins []detector.Insight) ([]byte, error) {
	raw, err := recordsJSON(ins)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf) // zero header: no name, no time
	if _, err := zw.Write(raw); err != nil {
		return nil, fmt.Errorf("gzip: %w", err)
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("gzip: %w", err)
	}
	return buf.Bytes(), nil
}

// WriteFileAtomic writes data to name (creating its folder) so that
// readers see either the old file or the whole new one, and the new one
// survives a crash once this returns nil.
func WriteFileAtomic(name string, data []byte) (err error) {
	dir := filepath.Dir(name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, ".trailsight-*.tmp")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if _, err := tmp.Write(data); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", name, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	if err := os.Rename(tmp.Name(), name); err != nil {
		return err
	}
	// Make the rename durable. Not every platform can sync a directory;
	// the file itself is safe either way.
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}
