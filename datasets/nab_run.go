package datasets

import (
	"cmp"
	"fmt"
	"io"
	"slices"
	"text/tabwriter"
	"time"

	ctstream "github.com/trailsight/trailsight/stream"
)

// NABResult is a detector's NAB score over a set of files for one profile.
type NABResult struct {
	Detector string // name in tables; NABRun sets "trailsight"
	Profile  string // profile name
	Files    []NABFileScore
	Divisors []float64 // NABDivisor of each file, as Files

	// Sums over Files, and the normalised score: 0 for the null detector,
	// 100 for the perfect one.
	Raw, Null, Perfect, Score float64
}

// NABRun scores a detector on series with profile prof. For each file in
// turn (never concurrently) it calls detect with the series and its events,
// NABEvents(s, NABDivisor(s)); detect returns the times it raises an alarm
// (say, the eventTime of each Insight Start), which NABFlags maps to rows.
func NABRun(series []NABSeries, prof NABProfile, detect func(NABSeries, []ctstream.Event) []time.Time) NABResult {
	res := NABResult{Detector: "trailsight", Profile: prof.Name}
	for _, s := range series {
		div := NABDivisor(s)
		times := detect(s, NABEvents(s, div))
		fs := NABScoreFile(s, NABFlags(s, times), prof)
		res.Files = append(res.Files, fs)
		res.Divisors = append(res.Divisors, div)
		res.Raw += fs.Score
		res.Null += fs.Null
		res.Perfect += fs.Perfect
	}
	res.Score = NABNormalize(res.Raw, res.Null, res.Perfect)
	return res
}

// WriteTable writes r's per-file scores, then a ranking of r and the
// published detectors (name → normalised score, as NABPublishedScores
// returns) by score, best first; r's row is marked with '*'.
func (r NABResult) WriteTable(w io.Writer, published map[string]float64) error {
	// Names left-aligned by the tabwriter, numbers right-aligned by width.
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "file\t%7s\t%7s\t%4s\t%4s\t%5s\t%8s\t%10s\n", "divisor", "windows", "TP", "FP", "FN", "raw", "normalised")
	for i, f := range r.Files {
		div := 1.0
		if i < len(r.Divisors) {
			div = r.Divisors[i]
		}
		fmt.Fprintf(tw, "%s\t%7g\t%7d\t%4d\t%4d\t%5d\t%8.3f\t%10.2f\n",
			f.File, div, f.Windows, f.TP, f.FP, f.FN, f.Score, f.Normalized())
	}
	fmt.Fprintf(tw, "all\t%7s\t%7s\t%4s\t%4s\t%5s\t%8.3f\t%10.2f\n", "", "", "", "", "", r.Raw, r.Score)
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("nab: write table: %w", err)
	}

	type row struct {
		name  string
		score float64
		ours  bool
	}
	rows := []row{{r.Detector, r.Score, true}}
	for name, score := range published {
		rows = append(rows, row{name, score, false})
	}
	slices.SortFunc(rows, func(a, b row) int {
		if c := cmp.Compare(b.score, a.score); c != 0 {
			return c
		}
		return cmp.Compare(a.name, b.name)
	})
	fmt.Fprintf(tw, "\n")
	fmt.Fprintf(tw, "\tdetector\t%s score\n", r.Profile)
	for _, x := range rows {
		mark := ""
		if x.ours {
			mark = "*"
		}
		fmt.Fprintf(tw, "%s\t%s\t%*.2f\n", mark, x.name, len(r.Profile)+6, x.score)
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("nab: write table: %w", err)
	}
	return nil
}
