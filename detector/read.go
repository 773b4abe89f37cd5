package detector

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/klauspost/compress/gzip"
)

// ReadInsights reads back every Insights event under path: a folder in the
// CloudTrail-Insight layout such as notify.Folder writes (or AWS delivers), any
// folder of .json, .jsonl or .ndjson files (each optionally .gz; gzip is
// recognised by content), or one such file. Each file is decoded with
// ParseInsights. In a folder, files are read in lexical order,
// hidden files (temporary files among them) are skipped, and so are the
// sibling CloudTrail folders that hold no Insights (CloudTrail,
// CloudTrail-Digest, CloudTrail-NetworkActivity, CloudTrail-Aggregated).
//
// It returns the insights in file order, as found (duplicates included),
// one error per file or item that could not be read or decoded, each naming
// the file, and a non-nil error only when path itself cannot be read.
func ReadInsights(path string) ([]Insight, []error, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, nil, fmt.Errorf("detector: read insights: %w", err)
	}
	if !st.IsDir() {
		ins, err := readInsightsFile(path)
		if err != nil {
			return ins, []error{err}, nil
		}
		return ins, nil, nil
	}
	var all []Insight
	var errs []error
	err = filepath.WalkDir(path, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p == path {
				return err
			}
			errs = append(errs, fmt.Errorf("detector: read insights: %w", err))
			return nil
		}
		name := d.Name()
		if d.IsDir() {
			if p != path && (strings.HasPrefix(name, ".") || skipDirs[name]) {
				return filepath.SkipDir
			}
			return nil
		}
		if strings.HasPrefix(name, ".") || !insightFileName(name) {
			return nil
		}
		ins, err := readInsightsFile(p)
		all = append(all, ins...)
		if err != nil {
			errs = append(errs, err)
		}
		return nil
	})
	if err != nil {
		return all, errs, fmt.Errorf("detector: read insights: %w", err)
	}
	return all, errs, nil
}

// skipDirs are CloudTrail's sibling folders of CloudTrail-Insight.
var skipDirs = map[string]bool{
	"CloudTrail":                 true,
	"CloudTrail-Digest":          true,
	"CloudTrail-NetworkActivity": true,
	"CloudTrail-Aggregated":      true,
}

func insightFileName(name string) bool {
	name = strings.TrimSuffix(name, ".gz")
	for _, ext := range []string{".json", ".jsonl", ".ndjson"} {
		if strings.HasSuffix(name, ext) {
			return true
		}
	}
	return false
}

// readInsightsFile decodes one file, gunzipping it if it starts with the
// gzip magic number. The error names the file.
func readInsightsFile(name string) ([]Insight, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, fmt.Errorf("detector: read insights: %w", err)
	}
	defer f.Close()
	br := bufio.NewReader(f)
	var r io.Reader = br
	if magic, _ := br.Peek(2); bytes.Equal(magic, []byte{0x1f, 0x8b}) {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("detector: read insights %s: %w", name, err)
		}
		defer zr.Close()
		r = zr
	}
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("detector: read insights %s: %w", name, err)
	}
	ins, err := ParseInsights(data)
	if err != nil {
		return ins, fmt.Errorf("detector: read insights %s: %w", name, err)
	}
	return ins, nil
}
