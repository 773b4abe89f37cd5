package notify

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/trailsight/trailsight/detector"
)

// spool is a folder of batches that could not be delivered yet. Each batch
// is one file of JSON lines (one insight event per line, as MarshalJSON
// writes it, explanation included), named
//
//	<YYYYMMDDTHHMMSSZ>-<hex16>.jsonl
//
// from the earliest eventTime of the batch and a SHA-256 of the file's
// content. The batch is sorted and de-duplicated by eventID before it is
// written, so spooling the same insights twice, in any order, writes the
// same file once; and the names sort oldest batch first. Files are written
// atomically (temporary file, fsync, rename, fsync of the folder). Hidden
// files are temporary files; *.corrupt files are batches that could not be
// read back, kept for a human to look at.
type spool struct{ dir string }

const (
	spoolExt    = ".jsonl"
	corruptExt  = ".corrupt"
	spoolTmpPfx = ".trailsight-"
)

// put writes ins as one batch and returns the file's name.
func (s spool) put(ins []detector.Insight) (string, error) {
	ins = slices.Clone(ins)
	ins = dedupeByEventID(ins)
	slices.SortFunc(ins, compareInsights)
	var buf bytes.Buffer
	for _, in := range ins {
		b, err := in.MarshalJSON()
		if err != nil {
			return "", fmt.Errorf("spool: insight %s: %w", in.EventID, err)
		}
		buf.Write(b)
		buf.WriteByte('\n')
	}
	sum := sha256.Sum256(buf.Bytes())
	var first string
	if len(ins) > 0 { // sorted by time first: ins[0] is the earliest
		first = ins[0].Time.UTC().Format("20060102T150405Z")
	}
	name := first + "-" + hex.EncodeToString(sum[:8]) + spoolExt
	if err := WriteFileAtomic(filepath.Join(s.dir, name), buf.Bytes()); err != nil {
		return "", fmt.Errorf("spool: %w", err)
	}
	return name, nil
}

// list returns the names of the spooled batches, oldest first. A missing
// folder is an empty spool.
func (s spool) list() ([]string, error) {
	ents, err := os.ReadDir(s.dir)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	var names []string
	for _, e := range ents {
		n := e.Name()
		if e.Type().IsRegular() && !strings.HasPrefix(n, ".") && strings.HasSuffix(n, spoolExt) {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	return names, nil
}

// read returns the insights of batch name.
func (s spool) read(name string) ([]detector.Insight, error) {
	raw, err := os.ReadFile(filepath.Join(s.dir, name))
	if err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	ins, err := detector.ParseInsights(raw)
	if err != nil {
		return nil, fmt.Errorf("spool: %s: %w", name, err)
	}
	return ins, nil
}

// remove deletes batch name, durably.
func (s spool) remove(name string) error {
	if err := os.Remove(filepath.Join(s.dir, name)); err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("spool: %w", err)
	}
	syncDir(s.dir)
	return nil
}

// quarantine renames batch name to name.corrupt so that it is no longer
// re-sent but stays on disk.
func (s spool) quarantine(name string) error {
	p := filepath.Join(s.dir, name)
	if err := os.Rename(p, p+corruptExt); err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	syncDir(s.dir)
	return nil
}

// cleanTemp removes temporary files that an interrupted write left behind.
// Call it only when no write can be in progress (at start-up).
func (s spool) cleanTemp() {
	ents, err := os.ReadDir(s.dir)
	if err != nil {
		return
	}
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), spoolTmpPfx) {
			_ = os.Remove(filepath.Join(s.dir, e.Name()))
		}
	}
}

func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
}
