package datasets

import (
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/klauspost/compress/gzip"

	"github.com/trailsight/trailsight/detector"
)

// LoadInsights reads insights from path: a folder (walked in lexical order;
// the CloudTrail-Insight S3 layout or any tree of .json, .jsonl, .ndjson
// files, each gzip'd or not) or a single such file. Each file may hold any
// shape detector.ParseInsights accepts ({"Records":[…]}, JSON lines, …).
// Files that cannot be read or decoded are reported in the []error, one per
// file, and skipped (what could be decoded from them is kept); the error is
// for a path that cannot be read at all.
func LoadInsights(path string) ([]detector.Insight, []error, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, nil, fmt.Errorf("datasets: load insights: %w", err)
	}
	var (
		ins  []detector.Insight
		errs []error
	)
	if !st.IsDir() {
		got, err := loadInsightFile(path)
		if err != nil {
			errs = append(errs, err)
		}
		return got, errs, nil
	}
	err = filepath.WalkDir(path, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", p, err))
			if d != nil && d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		if d.IsDir() || !insightFileName(d.Name()) {
			return nil
		}
		got, err := loadInsightFile(p)
		if err != nil {
			errs = append(errs, err)
		}
		ins = append(ins, got...)
		return nil
	})
	if err != nil {
		return ins, errs, fmt.Errorf("datasets: load insights: %w", err)
	}
	return ins, errs, nil
}

// insightFileName reports whether a file name looks like JSON insights.
func insightFileName(name string) bool {
	name = strings.TrimSuffix(name, ".gz")
	for _, ext := range []string{".json", ".jsonl", ".ndjson"} {
		if strings.HasSuffix(name, ext) {
			return true
		}
	}
	return false
}

// loadInsightFile reads one file, gunzipping it when it starts with the
// gzip magic whatever its name.
func loadInsightFile(path string) ([]detector.Insight, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if len(data) >= 2 && data[0] == 0x1f && data[1] == 0x8b {
		zr, err := gzip.NewReader(bytes.NewReader(data))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		data, err = io.ReadAll(zr)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, nil
	}
	ins, err := detector.ParseInsights(data)
	if err != nil {
		return ins, fmt.Errorf("%s: %w", path, err)
	}
	return ins, nil
}
