package datasets

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"

	"github.com/klauspost/compress/gzip"
)

// nabReproducible are the detectors NAB ships whose published scores can be
// reproduced from the shipped results: all but "random", whose per-row
// results were regenerated after its scores were published.
var nabReproducible = []string{
	"ARTime", "bayesChangePt", "contextOSE", "earthgeckoSkyline", "expose",
	"htmjava", "knncad", "null", "numenta", "numentaTM", "randomCutForest",
	"relativeEntropy", "skyline", "twitterADVec", "windowedGaussian",
}

// NABPublishedDetections returns, for each of NABFiles, the rows that
// detector (a folder of results/ under root) flags under NAB's standard
// profile: those whose published anomaly_score is at least the detector's
// standard threshold in config/thresholds.json. NAB pairs result rows with
// data rows by position, and so does this.
func NABPublishedDetections(root, detector string) (map[string][]bool, error) {
	series, err := NABLoad(root)
	if err != nil {
		return nil, err
	}
	ths, err := nabReadThresholds(root)
	if err != nil {
		return nil, err
	}
	th, err := nabStandardThreshold(ths, detector)
	if err != nil {
		return nil, err
	}
	jobs := make([]nabJob, len(series))
	for i, s := range series {
		jobs[i] = nabJob{detector: detector, threshold: th, series: s}
	}
	if err := nabRunJobs(root, jobs); err != nil {
		return nil, err
	}
	out := make(map[string][]bool, len(jobs))
	for _, j := range jobs {
		out[j.series.File] = j.flags
	}
	return out, nil
}

// NABPublishedScores scores the results NAB ships for its detectors with
// NABScoreFile on NABFiles, standard profile, each detector at its standard
// threshold, and returns each detector's normalised score over those files
// (null detector 0, perfect 100). "random" is left out: its shipped results
// are not the ones its scores were computed from.
func NABPublishedScores(root string) (map[string]float64, error) {
	files, err := nabPublishedFileScores(root)
	if err != nil {
		return nil, err
	}
	out := make(map[string]float64, len(files))
	for det, fs := range files {
		out[det] = nabNormalizeFiles(fs)
	}
	return out, nil
}

// nabNormalizeFiles returns the normalised score of files taken together.
func nabNormalizeFiles(files []NABFileScore) float64 {
	var raw, null, perfect float64
	for _, f := range files {
		raw += f.Score
		null += f.Null
		perfect += f.Perfect
	}
	return NABNormalize(raw, null, perfect)
}

// nabPublishedFileScores scores each reproducible detector's shipped results
// on NABFiles (standard profile and thresholds), in NABFiles order.
func nabPublishedFileScores(root string) (map[string][]NABFileScore, error) {
	series, err := NABLoad(root)
	if err != nil {
		return nil, err
	}
	profiles, err := NABProfiles(root)
	if err != nil {
		return nil, err
	}
	prof, ok := profiles["standard"]
	if !ok {
		return nil, errors.New("nab: no standard profile in config/profiles.json")
	}
	ths, err := nabReadThresholds(root)
	if err != nil {
		return nil, err
	}
	var jobs []nabJob
	for _, det := range nabReproducible {
		th, err := nabStandardThreshold(ths, det)
		if err != nil {
			return nil, err
		}
		for _, s := range series {
			jobs = append(jobs, nabJob{detector: det, threshold: th, series: s})
		}
	}
	if err := nabRunJobs(root, jobs); err != nil {
		return nil, err
	}
	out := make(map[string][]NABFileScore, len(nabReproducible))
	for _, j := range jobs {
		out[j.detector] = append(out[j.detector], NABScoreFile(j.series, j.flags, prof))
	}
	return out, nil
}

func nabReadThresholds(root string) (map[string]map[string]nabThreshold, error) {
	p := filepath.Join(root, "config", "thresholds.json")
	f, err := os.Open(p)
	if err != nil {
		return nil, fmt.Errorf("nab: %w", err)
	}
	defer f.Close()
	ths, err := nabDecodeThresholds(f)
	if err != nil {
		return nil, fmt.Errorf("nab: read %s: %w", p, err)
	}
	return ths, nil
}

func nabStandardThreshold(ths map[string]map[string]nabThreshold, detector string) (float64, error) {
	th, ok := ths[detector]["standard"]
	if !ok {
		return 0, fmt.Errorf("nab: no standard threshold for detector %q in config/thresholds.json", detector)
	}
	return th.Threshold, nil
}

// nabJob reads one detector's results for one file and flags its rows.
type nabJob struct {
	detector  string
	threshold float64
	series    NABSeries
	flags     []bool // result
}

// nabResultsPath returns where NAB's results for detector and a data file
// are, gzip'd: results/<det>/<category>/<det>_<file>.csv.gz.
func nabResultsPath(root, detector, file string) string {
	dir, base := path.Split(file)
	return filepath.Join(root, "results", detector, filepath.FromSlash(dir), detector+"_"+base+".gz")
}

// nabRunJobs runs jobs, a few at a time, and returns the first error.
func nabRunJobs(root string, jobs []nabJob) error {
	idx := make(chan int)
	errs := make([]error, len(jobs))
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), len(jobs)) {
		wg.Go(func() {
			for i := range idx {
				errs[i] = jobs[i].run(root)
			}
		})
	}
	for i := range jobs {
		idx <- i
	}
	close(idx)
	wg.Wait()
	return errors.Join(errs...)
}

func (j *nabJob) run(root string) error {
	p := nabResultsPath(root, j.detector, j.series.File)
	f, err := os.Open(p)
	if err != nil {
		return fmt.Errorf("nab: %w", err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return fmt.Errorf("nab: read %s: %w", p, err)
	}
	scores, err := nabDecodeAnomalyScores(zr)
	if err != nil {
		return fmt.Errorf("nab: read %s: %w", p, err)
	}
	if len(scores) != len(j.series.Times) {
		return fmt.Errorf("nab: %s has %d rows, the data file %d", p, len(scores), len(j.series.Times))
	}
	j.flags = make([]bool, len(scores))
	for i, v := range scores {
		j.flags[i] = v >= j.threshold
	}
	return nil
}

// nabDecodeAnomalyScores returns the anomaly_score column of a NAB results
// file (CSV with a header naming the columns, no quoting).
func nabDecodeAnomalyScores(r io.Reader) ([]float64, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	if !sc.Scan() {
		if err := sc.Err(); err != nil {
			return nil, err
		}
		return nil, errors.New("empty file")
	}
	col := -1
	for i, name := range strings.Split(strings.TrimSuffix(sc.Text(), "\r"), ",") {
		if name == "anomaly_score" {
			col = i
			break
		}
	}
	if col < 0 {
		return nil, errors.New("line 1: no anomaly_score column")
	}
	var out []float64
	for line := 2; sc.Scan(); line++ {
		text := strings.TrimSuffix(sc.Text(), "\r")
		if text == "" {
			continue
		}
		field := text
		for range col {
			_, rest, ok := strings.Cut(field, ",")
			if !ok {
				return nil, fmt.Errorf("line %d: fewer than %d columns", line, col+1)
			}
			field = rest
		}
		field, _, _ = strings.Cut(field, ",")
		v, err := strconv.ParseFloat(field, 64)
		if err != nil {
			return nil, fmt.Errorf("line %d: anomaly_score: %w", line, err)
		}
		out = append(out, v)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return out, nil
}
