package stream

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"
)

// File is one input file.
type File struct {
	Path     string    // path (or S3 key)
	Account  string    // from the key when it follows the AWSLogs layout (or the AWS file name), else ""
	Region   string    // idem
	Delivery time.Time // delivery minute from the AWS file name (…_20150801T0210Z_…), zero if unknown
	Size     int64
	// Modified is when the file or object was last written, when the
	// listing tells (ListS3 and Poller do, ListDir does not); zero if unknown.
	Modified time.Time
	// Day is the delivery day from the date folders (…/YYYY/MM/DD/…) when the
	// name gives no Delivery; zero if unknown. Used for --from/--to only.
	Day time.Time
}

// Skip reasons that are not a sibling folder name.
const (
	SkipHidden     = "hidden"       // dot files and folders, .DS_Store, Thumbs.db, desktop.ini
	SkipNotJSON    = "not-json"     // an extension that is not .json, .jsonl, .ndjson, .gz or none
	SkipOutOfRange = "out-of-range" // delivery day outside --from/--to (with a day of slack)
	SkipNoType     = "not-cloudtrail-layout"
	SkipOutside    = "outside-AWSLogs" // a file beside an AWSLogs/ tree (labels.json, notes), when root holds one
)

// ClassifyKey classifies an S3 key or a slash-separated path. It returns the
// File (Path = key, Size 0) and "" when the key is a CloudTrail log file to
// read, or a skip reason: the sibling folder or log type name for other AWS
// logs under AWSLogs/ ("CloudTrail-Digest", "CloudTrail-Insight", "Config",
// "GuardDuty", "vpcflowlogs", "elasticloadbalancing"…), or SkipHidden,
// SkipNotJSON.
//
// Rules: under the last AWSLogs/ segment the layout is
// <account>/<type>/<region>/YYYY/MM/DD/<name>, or
// <o-id>/<account>/<type>/… for organisation trails; only type
// "CloudTrail" is read. Outside that layout a file is read when its AWS name
// says CloudTrail (<account>_CloudTrail_<region>_<time>_<unique>) or when it
// has no AWS name and a JSON-like extension; an AWS name of another type
// (<account>_CloudTrail-Digest_…, <account>_Config_…) is skipped.
func ClassifyKey(key string) (File, string) {
	f := File{Path: key}
	segs := strings.Split(key, "/")
	name := segs[len(segs)-1]
	if isHidden(name) {
		return f, SkipHidden
	}
	nameAcct, nameType, nameRegion, nameTime := parseAWSName(name)
	if i := lastIndex(segs[:len(segs)-1], "AWSLogs"); i >= 0 {
		rest := segs[i+1:] // ends with name
		if len(rest) >= 2 && strings.HasPrefix(rest[0], "o-") {
			rest = rest[1:]
		}
		if len(rest) < 3 {
			// A file directly under AWSLogs/<account>/.
			if name == "ELBAccessLogTestFile" {
				return f, "elasticloadbalancing"
			}
			if nameType != "" && nameType != "CloudTrail" {
				return f, nameType
			}
			return f, SkipNoType
		}
		if rest[1] != "CloudTrail" {
			return f, rest[1]
		}
		if nameType != "" && nameType != "CloudTrail" {
			return f, nameType
		}
		if !jsonLike(name) {
			return f, SkipNotJSON
		}
		if isAccount(rest[0]) {
			f.Account = rest[0]
		}
		if len(rest) >= 4 {
			f.Region = rest[2]
		}
		if len(rest) >= 7 {
			f.Day = pathDay(rest[3], rest[4], rest[5])
		}
		if nameType == "CloudTrail" {
			f.Delivery = nameTime
			if f.Account == "" {
				f.Account = nameAcct
			}
			if f.Region == "" {
				f.Region = nameRegion
			}
		}
		return f, ""
	}
	if nameType != "" {
		if nameType != "CloudTrail" {
			return f, nameType
		}
		f.Account, f.Region, f.Delivery = nameAcct, nameRegion, nameTime
		return f, ""
	}
	if !jsonLike(name) {
		return f, SkipNotJSON
	}
	if n := len(segs); n >= 4 {
		f.Day = pathDay(segs[n-4], segs[n-3], segs[n-2])
	}
	return f, ""
}

func lastIndex(segs []string, s string) int {
	for i := len(segs) - 1; i >= 0; i-- {
		if segs[i] == s {
			return i
		}
	}
	return -1
}

func isHidden(name string) bool {
	return strings.HasPrefix(name, ".") || name == "Thumbs.db" || name == "desktop.ini"
}

func isAccount(s string) bool {
	if s == "" || len(s) > 12 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return false
		}
	}
	return true
}

// jsonLike reports whether name has an extension CloudTrail JSON may come
// in: .json, .jsonl, .ndjson, any .gz, or none at all.
func jsonLike(name string) bool {
	ext := strings.ToLower(filepath.Ext(name))
	switch ext {
	case "", ".json", ".jsonl", ".ndjson", ".gz":
		return true
	}
	return false
}

// parseAWSName parses an AWS log file name, <account>_<type>_<region>_…;
// for type CloudTrail it also returns the delivery time, taken from the
// first field of the form YYYYMMDDTHHMMZ or YYYYMMDDTHHMMSSZ. typ is "" when
// name is not of that form.
func parseAWSName(name string) (acct, typ, region string, t time.Time) {
	parts := strings.Split(name, "_")
	if len(parts) < 4 || !isAccount(parts[0]) || parts[1] == "" || parts[2] == "" {
		return "", "", "", time.Time{}
	}
	for _, p := range parts[3:] {
		if tt, ok := parseCompactTime(p); ok {
			t = tt
			break
		}
	}
	return parts[0], parts[1], parts[2], t
}

func parseCompactTime(s string) (time.Time, bool) {
	for _, layout := range [...]string{"20060102T1504Z", "20060102T150405Z"} {
		if len(s) == len(layout) {
			if t, err := time.Parse(layout, s); err == nil {
				return t, true
			}
		}
	}
	return time.Time{}, false
}

func pathDay(y, m, d string) time.Time {
	if len(y) != 4 || len(m) < 1 || len(m) > 2 || len(d) < 1 || len(d) > 2 {
		return time.Time{}
	}
	yy, ok1 := digits([]byte(y))
	mm, ok2 := digits([]byte(m))
	dd, ok3 := digits([]byte(d))
	if !ok1 || !ok2 || !ok3 || mm < 1 || mm > 12 || dd < 1 || dd > daysIn(mm, yy) {
		return time.Time{}
	}
	return time.Date(yy, time.Month(mm), dd, 0, 0, 0, 0, time.UTC)
}

// inRange reports whether a file may hold events in [from, to): files
// delivered before the day of from cannot, and files delivered more than a
// day after to are assumed not to (files hold events from before their
// delivery time, normally minutes before).
func (f *File) inRange(from, to time.Time) bool {
	t := f.Delivery // or the start of the delivery day
	if t.IsZero() {
		if t = f.Day; t.IsZero() {
			return true
		}
	}
	if !from.IsZero() && t.Before(from.UTC().Truncate(24*time.Hour)) {
		return false
	}
	return to.IsZero() || t.Before(to.Add(24*time.Hour))
}

// ListDir walks root — a folder in the S3 layout (AWSLogs/<account>/
// CloudTrail/<region>/YYYY/MM/DD/, organisation trails with an
// AWSLogs/<o-id>/ level, any prefix before AWSLogs) or any folder of
// CloudTrail JSON files — and returns the CloudTrail log files (see
// ClassifyKey), in time order: files whose name gives a delivery time first,
// by (Delivery, Path); then the files without one, by Path (the path sorts
// date folders YYYY/MM/DD in order). Other files are counted by reason in
// skipped: sibling log types by their folder name ({"CloudTrail-Digest":
// 12}), hidden files and folders as SkipHidden (a hidden folder counts once),
// other extensions as SkipNotJSON, files outside from/to as
// SkipOutOfRange.
//
// When root holds an AWSLogs/ tree, files beside it (a labels.json, notes,
// exports) are not part of the archive: they are skipped as SkipOutside.
//
// root may be a single file: it is returned whatever its name. from and to
// (zero = unbounded) filter by delivery day when the name or the date
// folders give it: files delivered before from's day are dropped, and so
// are files delivered 24h or more after to.
func ListDir(root string, from, to time.Time) (files []File, skipped map[string]int, err error) {
	skipped = map[string]int{}
	st, err := os.Stat(root)
	if err != nil {
		return nil, nil, fmt.Errorf("stream: list %s: %w", root, err)
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, nil, fmt.Errorf("stream: list %s: %w", root, err)
	}
	if !st.Mode().IsRegular() {
		if !st.IsDir() {
			return nil, nil, fmt.Errorf("stream: list %s: not a file or folder", root)
		}
	} else {
		f, _ := ClassifyKey(filepath.ToSlash(abs))
		f.Path, f.Size = root, st.Size()
		return []File{f}, skipped, nil
	}
	files, err = walkArchive(context.Background(), root, abs, from, to, false, skipped)
	if err != nil {
		return nil, nil, err
	}
	SortFiles(files)
	return files, skipped, nil
}

// walkArchive lists the CloudTrail files under the folder root (abs is its
// absolute path) whose times fall in [from, to], unsorted, counting what
// it skips and why in skipped. A folder that holds an AWSLogs/ tree is an
// archive: what lies beside that tree (labels.json, a README, exports) is
// not part of it. live is for a folder that changes while it is walked (a
// watched folder, polled): files that vanish meanwhile are passed over, and
// the folders that cannot hold a wanted file — other log types, dates out
// of range — are not entered at all.
func walkArchive(ctx context.Context, root, abs string, from, to time.Time, live bool, skipped map[string]int) ([]File, error) {
	lo := from.UTC().Truncate(24 * time.Hour)
	hi := to.UTC().Add(24*time.Hour - time.Nanosecond).Truncate(24 * time.Hour)
	var files []File
	err := filepath.WalkDir(root, func(path string, de fs.DirEntry, err error) error {
		if err != nil {
			if live && path != root && errors.Is(err, fs.ErrNotExist) {
				return nil // gone while we walked
			}
			return fmt.Errorf("stream: list %s: %w", root, err)
		}
		if path == root {
			return ctx.Err()
		}
		rel, err := filepath.Rel(root, path)
		if err != nil {
			return fmt.Errorf("stream: list: %w", err)
		}
		slashed := filepath.ToSlash(filepath.Join(abs, rel))
		if de.IsDir() {
			if isHidden(de.Name()) {
				skipped[SkipHidden]++
				return filepath.SkipDir
			}
			if live {
				switch depth := layoutDepth(slashed + "/"); {
				case depth == 2 && de.Name() != "CloudTrail":
					return filepath.SkipDir // CloudTrail-Digest, Config, …
				case depth >= 4 && depth <= 6 && !dateFolderWanted(slashed+"/", depth, lo, hi):
					return filepath.SkipDir
				}
			}
			return ctx.Err()
		}
		link := de.Type()&fs.ModeSymlink != 0
		if !de.Type().IsRegular() && !link {
			return nil
		}
		f, reason := ClassifyKey(slashed)
		if reason != "" {
			skipped[reason]++
			return nil
		}
		if !f.inRange(from, to) {
			skipped[SkipOutOfRange]++
			return nil
		}
		info, err := os.Stat(path) // a symbolic link to a file is read like the file
		if err != nil && !live && !link {
			return fmt.Errorf("stream: list: %w", err)
		}
		if err != nil || !info.Mode().IsRegular() {
			return nil
		}
		f.Path, f.Size = path, info.Size()
		if live {
			f.Modified = info.ModTime()
		}
		files = append(files, f)
		return nil
	})
	if err != nil {
		return nil, err
	}
	inTree := func(f File) bool { return strings.Contains("/"+filepath.ToSlash(f.Path)+"/", "/AWSLogs/") }
	if slices.ContainsFunc(files, inTree) {
		files = slices.DeleteFunc(files, func(f File) bool {
			if !inTree(f) {
				skipped[SkipOutside]++
				return true
			}
			return false
		})
	}
	return files, nil
}

// SortFiles sorts files in the order ListDir returns them: by (Delivery,
// Path) for those with a delivery time, then by Path for the rest.
func SortFiles(files []File) {
	sort.SliceStable(files, func(i, j int) bool {
		a, b := &files[i], &files[j]
		az, bz := a.Delivery.IsZero(), b.Delivery.IsZero()
		if az != bz {
			return bz
		}
		if !a.Delivery.Equal(b.Delivery) {
			return a.Delivery.Before(b.Delivery)
		}
		return a.Path < b.Path
	})
}
