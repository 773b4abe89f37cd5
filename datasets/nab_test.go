package datasets

import (
	"encoding/csv"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// nabRoot is the NAB subset shipped beside the repository.
var nabRoot = filepath.Join("..", "..", "shared", "datasets", "nab")

// TestNABPublishedScores is the check that our scorer is NAB's: on the 11
// count files, standard profile, every shipped detector at its published
// threshold must get the score NAB published, file by file (raw score and
// TP/TN/FP/FN of its *_standard_scores.csv) and over the subset.
func TestNABPublishedScores(t *testing.T) {
	files, err := nabPublishedFileScores(nabRoot)
	if err != nil {
		t.Fatal(err)
	}
	// Normalised scores over the 11 files, from the *_standard_scores.csv
	// rows: 100·(ΣScore + 38)/76.
	want := map[string]float64{
		"ARTime":            82.62,
		"contextOSE":        69.52,
		"numenta":           68.85,
		"htmjava":           66.35,
		"relativeEntropy":   63.52,
		"knncad":            62.76,
		"numentaTM":         61.39,
		"earthgeckoSkyline": 59.86,
		"twitterADVec":      51.77,
		"windowedGaussian":  44.64,
		"randomCutForest":   44.19,
		"skyline":           25.53,
		"expose":            17.18,
		"bayesChangePt":     2.34,
		"null":              0,
	}
	if len(files) != len(want) {
		t.Errorf("scored %d detectors, want %d", len(files), len(want))
	}
	for det, w := range want {
		fs, ok := files[det]
		if !ok {
			t.Errorf("%s: not scored", det)
			continue
		}
		if got := nabNormalizeFiles(fs); math.Abs(got-w) > 0.005 {
			t.Errorf("%s: normalised score %.4f, want %.2f", det, got, w)
		}
		pub := nabReadScoresCSV(t, det)
		for _, f := range fs {
			p, ok := pub[f.File]
			if !ok {
				t.Errorf("%s: %s not in its scores.csv", det, f.File)
				continue
			}
			got := [4]int{f.TP, f.TN, f.FP, f.FN}
			if got != p.counts || math.Abs(f.Score-p.score) > 1e-6 {
				t.Errorf("%s %s: score %.9f TP,TN,FP,FN %v, published %.9f %v",
					det, f.File, f.Score, got, p.score, p.counts)
			}
			nw := len(nabLoadedWindows(t, f.File))
			if f.Windows != nw || f.Null != -float64(nw) || f.Perfect != float64(nw) {
				t.Errorf("%s %s: windows %d null %v perfect %v, want %d, %d, %d",
					det, f.File, f.Windows, f.Null, f.Perfect, nw, -nw, nw)
			}
		}
	}
}

type nabPublishedRow struct {
	score  float64
	counts [4]int // TP, TN, FP, FN
}

// nabReadScoresCSV reads results/<det>/<det>_standard_scores.csv.
func nabReadScoresCSV(t *testing.T, det string) map[string]nabPublishedRow {
	t.Helper()
	f, err := os.Open(filepath.Join(nabRoot, "results", det, det+"_standard_scores.csv"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	col := map[string]int{}
	for i, name := range recs[0] {
		col[name] = i
	}
	out := map[string]nabPublishedRow{}
	for _, r := range recs[1:] {
		var row nabPublishedRow
		var err error
		if row.score, err = strconv.ParseFloat(r[col["Score"]], 64); err != nil {
			t.Fatal(err)
		}
		for i, name := range []string{"TP", "TN", "FP", "FN"} {
			if row.counts[i], err = strconv.Atoi(r[col[name]]); err != nil {
				t.Fatal(err)
			}
		}
		out[r[col["File"]]] = row
	}
	return out
}

var nabSeriesCache []NABSeries

func nabLoad(t *testing.T) []NABSeries {
	t.Helper()
	if nabSeriesCache == nil {
		s, err := NABLoad(nabRoot)
		if err != nil {
			t.Fatal(err)
		}
		nabSeriesCache = s
	}
	return nabSeriesCache
}

func nabLoadedWindows(t *testing.T, file string) [][2]time.Time {
	t.Helper()
	for _, s := range nabLoad(t) {
		if s.File == file {
			return s.Windows
		}
	}
	t.Fatalf("%s not loaded", file)
	return nil
}

func TestNABLoad(t *testing.T) {
	series := nabLoad(t)
	if len(series) != 11 {
		t.Fatalf("NABLoad: %d series, want 11", len(series))
	}
	windows, events := 0, 0
	for _, s := range series {
		windows += len(s.Windows)
		if len(s.Times) != len(s.Values) || len(s.Times) < 10000 {
			t.Errorf("%s: %d times, %d values", s.File, len(s.Times), len(s.Values))
		}
		// Every window edge is a row, as NAB's scorer requires.
		ws := nabWindowRows(s)
		if len(ws) != len(s.Windows) {
			t.Fatalf("%s: %d windows have rows, want %d", s.File, len(ws), len(s.Windows))
		}
		for i, w := range ws {
			if !s.Times[w[0]].Equal(s.Windows[i][0]) || !s.Times[w[1]].Equal(s.Windows[i][1]) {
				t.Errorf("%s: window %d edges are not rows", s.File, i)
			}
		}
		div := NABDivisor(s)
		wantDiv := 1.0
		if strings.Contains(s.File, "nyc_taxi") {
			wantDiv = 100
		}
		if div != wantDiv {
			t.Errorf("NABDivisor(%s) = %g, want %g", s.File, div, wantDiv)
		}
		var sum float64
		for _, v := range s.Values {
			sum += math.Round(v / div)
		}
		events += int(sum)
	}
	if windows != 38 {
		t.Errorf("%d windows, want 38", windows)
	}
	t.Logf("%d events at NABDivisor", events)
	if events > 5_000_000 {
		t.Errorf("%d events at NABDivisor, want at most 5 M", events)
	}
	if _, err := NABLoad(t.TempDir()); err == nil {
		t.Error("NABLoad(empty dir): no error")
	}
}

func TestNABProfiles(t *testing.T) {
	p, err := NABProfiles(nabRoot)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]NABProfile{
		"standard":           {Name: "standard", TP: 1, FP: 0.11, FN: 1, TN: 1},
		"reward_low_FP_rate": {Name: "reward_low_FP_rate", TP: 1, FP: 0.22, FN: 1, TN: 1},
		"reward_low_FN_rate": {Name: "reward_low_FN_rate", TP: 1, FP: 0.11, FN: 2, TN: 1},
	}
	if len(p) != len(want) {
		t.Errorf("NABProfiles: %d profiles, want %d", len(p), len(want))
	}
	for name, w := range want {
		if p[name] != w {
			t.Errorf("NABProfiles[%q] = %+v, want %+v", name, p[name], w)
		}
	}
}

func TestNABPublishedDetections(t *testing.T) {
	got, err := NABPublishedDetections(nabRoot, "numenta")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 11 {
		t.Fatalf("%d files, want 11", len(got))
	}
	// numenta flags 8 rows of nyc_taxi after the probation (7 TP, 1 FP).
	s := nabLoad(t)[0]
	fs := NABScoreFile(s, got[s.File], NABProfile{TP: 1, FP: 0.11, FN: 1})
	if fs.TP != 7 || fs.FP != 1 {
		t.Errorf("numenta on %s: TP %d FP %d, want 7 1", s.File, fs.TP, fs.FP)
	}
	if _, err := NABPublishedDetections(nabRoot, "nosuchdetector"); err == nil {
		t.Error("NABPublishedDetections(nosuchdetector): no error")
	}
}
