package datasets

// NAB: the Numenta Anomaly Benchmark's count series (the ten realTweets files
// and realKnownCause/nyc_taxi.csv), its labels, profiles and the results its
// shipped detectors published, read from a copy of the NAB repository laid
// out as shared/datasets/nab beside the repository (see its README.md).
// Scoring is in nab_score.go, the published results in nab_published.go, the
// conversion to CloudTrail-like events in nab_events.go and the benchmark run
// in nab_run.go.

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// NABFiles are the NAB data files NABLoad reads, as NAB names them (relative
// to data/ and in labels/combined_windows.json): the count series of the
// corpus. They hold 38 labelled anomaly windows.
var NABFiles = []string{
	"realKnownCause/nyc_taxi.csv",
	"realTweets/Twitter_volume_AAPL.csv",
	"realTweets/Twitter_volume_AMZN.csv",
	"realTweets/Twitter_volume_CRM.csv",
	"realTweets/Twitter_volume_CVS.csv",
	"realTweets/Twitter_volume_FB.csv",
	"realTweets/Twitter_volume_GOOG.csv",
	"realTweets/Twitter_volume_IBM.csv",
	"realTweets/Twitter_volume_KO.csv",
	"realTweets/Twitter_volume_PFE.csv",
	"realTweets/Twitter_volume_UPS.csv",
}

// NABSeries is one NAB data file with its anomaly windows.
type NABSeries struct {
	File    string         // NAB's relative path, e.g. "realTweets/Twitter_volume_AAPL.csv"
	Times   []time.Time    // row timestamps, UTC, increasing
	Values  []float64      // row values (counts), same length as Times
	Windows [][2]time.Time // labelled anomaly windows [start, end], both ends inclusive, sorted
}

// NABProfile is one of NAB's scoring profiles (config/profiles.json): the
// weights of true positives, false positives, false negatives and true
// negatives. NAB's scorer does not use TN.
type NABProfile struct {
	Name           string
	TP, FP, FN, TN float64
}

// nabTimeLayout is how NAB writes timestamps in data and results files;
// labels add ".000000".
const nabTimeLayout = "2006-01-02 15:04:05"

// NABLoad reads the NABFiles series under root (a NAB checkout: data/ and
// labels/combined_windows.json) with their windows.
func NABLoad(root string) ([]NABSeries, error) {
	windows, err := nabReadWindows(filepath.Join(root, "labels", "combined_windows.json"))
	if err != nil {
		return nil, err
	}
	out := make([]NABSeries, 0, len(NABFiles))
	for _, file := range NABFiles {
		w, ok := windows[file]
		if !ok {
			return nil, fmt.Errorf("nab: no windows for %s in combined_windows.json", file)
		}
		path := filepath.Join(root, "data", filepath.FromSlash(file))
		f, err := os.Open(path)
		if err != nil {
			return nil, fmt.Errorf("nab: %w", err)
		}
		times, values, err := nabDecodeSeries(f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("nab: read %s: %w", path, err)
		}
		out = append(out, NABSeries{File: file, Times: times, Values: values, Windows: w})
	}
	return out, nil
}

// nabDecodeSeries decodes a NAB data file: a "timestamp,value" header, then
// one row per line, timestamps strictly increasing.
func nabDecodeSeries(r io.Reader) ([]time.Time, []float64, error) {
	sc := bufio.NewScanner(r)
	line := 0
	var times []time.Time
	var values []float64
	for sc.Scan() {
		line++
		text := strings.TrimSuffix(sc.Text(), "\r")
		if line == 1 {
			if text != "timestamp,value" {
				return nil, nil, fmt.Errorf("line 1: header %q, want \"timestamp,value\"", text)
			}
			continue
		}
		if text == "" {
			continue
		}
		ts, val, ok := strings.Cut(text, ",")
		if !ok {
			return nil, nil, fmt.Errorf("line %d: no comma", line)
		}
		t, err := time.Parse(nabTimeLayout, ts)
		if err != nil {
			return nil, nil, fmt.Errorf("line %d: %w", line, err)
		}
		v, err := strconv.ParseFloat(val, 64)
		if err != nil {
			return nil, nil, fmt.Errorf("line %d: %w", line, err)
		}
		if n := len(times); n > 0 && !t.After(times[n-1]) {
			return nil, nil, fmt.Errorf("line %d: timestamp %s not after the previous row's", line, ts)
		}
		times = append(times, t)
		values = append(values, v)
	}
	if err := sc.Err(); err != nil {
		return nil, nil, fmt.Errorf("line %d: %w", line+1, err)
	}
	if line == 0 {
		return nil, nil, errors.New("empty file")
	}
	return times, values, nil
}

func nabReadWindows(path string) (map[string][][2]time.Time, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("nab: %w", err)
	}
	defer f.Close()
	w, err := nabDecodeWindows(f)
	if err != nil {
		return nil, fmt.Errorf("nab: read %s: %w", path, err)
	}
	return w, nil
}

// nabDecodeWindows decodes labels/combined_windows.json: for each file, a
// list of [start, end] timestamps. Windows come back sorted by start.
func nabDecodeWindows(r io.Reader) (map[string][][2]time.Time, error) {
	var raw map[string][][]string
	if err := json.NewDecoder(r).Decode(&raw); err != nil {
		return nil, err
	}
	out := make(map[string][][2]time.Time, len(raw))
	for file, list := range raw {
		ws := make([][2]time.Time, 0, len(list))
		for i, pair := range list {
			if len(pair) != 2 {
				return nil, fmt.Errorf("%s: window %d has %d timestamps, want 2", file, i, len(pair))
			}
			var w [2]time.Time
			for j, s := range pair {
				t, err := time.Parse(nabTimeLayout+".999999", s)
				if err != nil {
					return nil, fmt.Errorf("%s: window %d: %w", file, i, err)
				}
				w[j] = t
			}
			if w[1].Before(w[0]) {
				return nil, fmt.Errorf("%s: window %d ends before it starts", file, i)
			}
			ws = append(ws, w)
		}
		slices.SortFunc(ws, func(a, b [2]time.Time) int { return a[0].Compare(b[0]) })
		out[file] = ws
	}
	return out, nil
}

// NABProfiles reads config/profiles.json under root, keyed by profile name
// ("standard", "reward_low_FP_rate", "reward_low_FN_rate").
func NABProfiles(root string) (map[string]NABProfile, error) {
	path := filepath.Join(root, "config", "profiles.json")
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("nab: %w", err)
	}
	defer f.Close()
	p, err := nabDecodeProfiles(f)
	if err != nil {
		return nil, fmt.Errorf("nab: read %s: %w", path, err)
	}
	return p, nil
}

func nabDecodeProfiles(r io.Reader) (map[string]NABProfile, error) {
	var raw map[string]struct {
		CostMatrix *struct {
			TP *float64 `json:"tpWeight"`
			FP *float64 `json:"fpWeight"`
			FN *float64 `json:"fnWeight"`
			TN *float64 `json:"tnWeight"`
		}
	}
	if err := json.NewDecoder(r).Decode(&raw); err != nil {
		return nil, err
	}
	out := make(map[string]NABProfile, len(raw))
	for name, p := range raw {
		c := p.CostMatrix
		if c == nil || c.TP == nil || c.FP == nil || c.FN == nil || c.TN == nil {
			return nil, fmt.Errorf("profile %q: CostMatrix needs tpWeight, fpWeight, fnWeight and tnWeight", name)
		}
		out[name] = NABProfile{Name: name, TP: *c.TP, FP: *c.FP, FN: *c.FN, TN: *c.TN}
	}
	return out, nil
}

// nabThreshold is one detector's entry in config/thresholds.json for one
// profile.
type nabThreshold struct {
	Score     float64 `json:"score"`
	Threshold float64 `json:"threshold"`
}

// nabDecodeThresholds decodes config/thresholds.json: detector → profile →
// threshold and score.
func nabDecodeThresholds(r io.Reader) (map[string]map[string]nabThreshold, error) {
	var out map[string]map[string]nabThreshold
	if err := json.NewDecoder(r).Decode(&out); err != nil {
		return nil, err
	}
	return out, nil
}
