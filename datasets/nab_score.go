package datasets

import (
	"fmt"
	"math"
	"sort"
	"time"
)

// NAB's scoring, as its sweeper (nab/sweeper.py, NAB v1.0 and later) does it,
// on row flags:
//
//   - The first 15% of the rows, at most 750, are the probationary period:
//     nothing there counts.
//   - Each window scored (one with a row after the probation) is worth
//     -FN when no row in it is flagged, else the best of its flagged rows,
//     TP·σ(−(r−i+1)/w)/σ(−1) for row i, where r is its last row, w its rows and
//     σ(x) = 2/(1+e^{5x}) − 1 NAB's scaled sigmoid (−1 for x ≥ 3). A flag on the
//     window's first row is worth TP, later ones less.
//   - Each flagged row outside windows costs FP·σ((i−r)/(w−1)) where r and w
//     are those of the closest preceding window (FP·σ(3) = −FP when there is
//     none, or the window has one row): a flag just after a window costs
//     almost nothing, one far after it costs FP.
//   - The file's raw score is the sum. NAB's normalised score over a corpus is
//     100·(S − S_null)/(S_perfect − S_null) with S summed over the files.

// NABFileScore is one file's NAB score for one profile. Row counts are of
// the rows after the probationary period, as NAB counts them.
type NABFileScore struct {
	File           string
	Score          float64 // raw score
	Null           float64 // score of a detector that never fires: −FN per window scored
	Perfect        float64 // score of a detector that flags the first scored row of each window
	TP, TN, FP, FN int     // flagged rows in windows, unflagged outside, flagged outside, unflagged in
	Probation      int     // leading rows ignored
	Windows        int     // windows scored
}

// Normalized returns the file's score normalised NAB's way: 0 for the null
// detector, 100 for the perfect one.
func (f NABFileScore) Normalized() float64 { return NABNormalize(f.Score, f.Null, f.Perfect) }

// NABNormalize returns 100·(raw − null)/(perfect − null), NAB's normalised
// score. Over a corpus, pass the sums of the files' raw, null and perfect
// scores.
func NABNormalize(raw, null, perfect float64) float64 {
	return 100 * (raw - null) / (perfect - null)
}

// nabProbation returns the length of NAB's probationary period for a file of
// n rows: 15% of the rows, at most 15% of 5000.
func nabProbation(n int) int {
	return int(math.Min(math.Floor(0.15*float64(n)), 0.15*5000))
}

// nabScaledSigmoid is NAB's scaledSigmoid: 2·sigmoid(−5x) − 1, and −1 from
// x = 3 on.
func nabScaledSigmoid(x float64) float64 {
	if x >= 3 {
		return -1
	}
	return 2*(1/(1+math.Exp(5*x))) - 1
}

// nabWindowRows maps s's windows to row ranges [l, r]: the rows whose
// timestamps fall inside. Windows without rows are dropped; a window that
// starts inside the previous one is clipped to start after it (NAB's windows
// never overlap).
func nabWindowRows(s NABSeries) [][2]int {
	n := len(s.Times)
	out := make([][2]int, 0, len(s.Windows))
	prev := -1
	for _, w := range s.Windows {
		l := sort.Search(n, func(i int) bool { return !s.Times[i].Before(w[0]) })
		r := sort.Search(n, func(i int) bool { return s.Times[i].After(w[1]) }) - 1
		l = max(l, prev+1)
		if l > r {
			continue
		}
		out = append(out, [2]int{l, r})
		prev = r
	}
	return out
}

// NABScoreFile scores detections, one flag per row of s, with profile p the
// way NAB's scorer does (see above). It panics if len(detections) is not
// len(s.Times).
func NABScoreFile(s NABSeries, detections []bool, p NABProfile) NABFileScore {
	n := len(s.Times)
	if len(detections) != n {
		panic(fmt.Sprintf("datasets: NABScoreFile: %d detections for %d rows of %s", len(detections), n, s.File))
	}
	ws := nabWindowRows(s)
	prob := nabProbation(n)
	res := NABFileScore{File: s.File, Probation: prob}
	maxTP := nabScaledSigmoid(-1)

	var windows, fp float64 // window parts, false positives
	cur, best := -1, 0.0    // window the row is in, its best part so far
	next := 0               // next window to enter
	prevR, prevW := -1, 0   // last row and width of the closest preceding window
	scored := false         // cur has a row after the probation
	for i := range n {
		if cur < 0 && next < len(ws) && ws[next][0] == i {
			cur, next, scored = next, next+1, false
		}
		if cur >= 0 {
			l, r := ws[cur][0], ws[cur][1]
			if i >= prob {
				// The part a flag on row i would be worth.
				part := nabScaledSigmoid(-float64(r-i+1)/float64(r-l+1)) * p.TP / maxTP
				if !scored {
					scored, best = true, -p.FN
					res.Windows++
					res.Perfect += part
				}
				if detections[i] {
					res.TP++
					best = max(best, part)
				} else {
					res.FN++
				}
			}
			if i == r {
				if scored {
					windows += best
				}
				prevR, prevW, cur = r, r-l+1, -1
			}
			continue
		}
		if i < prob {
			continue
		}
		if !detections[i] {
			res.TN++
			continue
		}
		res.FP++
		pos := 3.0
		if prevR >= 0 && prevW > 1 {
			pos = float64(i-prevR) / float64(prevW-1)
		}
		fp += nabScaledSigmoid(pos) * p.FP
	}
	res.Score = windows + fp
	res.Null = -p.FN * float64(res.Windows)
	return res
}

// NABMark is one flagged row or one window of a file, as NABDetail lists
// them: what it adds to the file's raw score.
type NABMark struct {
	Row    int       // the flagged row; for a missed window its first row
	Time   time.Time // the row's timestamp
	Window int       // index of the window the row is in (in nabWindowRows order), -1 outside
	Kind   string    // "TP" (the window's best flag), "TP+" (a later flag in a window, worth nothing more), "FP", "FN" (a missed window), "probation"
	Part   float64   // what it adds to the raw score
}

// NABDetail lists, row by row, how NABScoreFile arrives at its score: every
// flagged row and every missed window, with the part each adds. It is for
// finding where a detector loses: late detections, misses, costly false
// positives.
func NABDetail(s NABSeries, detections []bool, p NABProfile) []NABMark {
	ws := nabWindowRows(s)
	prob := nabProbation(len(s.Times))
	maxTP := nabScaledSigmoid(-1)
	var out []NABMark
	win := func(i int) int {
		for k, w := range ws {
			if i >= w[0] && i <= w[1] {
				return k
			}
		}
		return -1
	}
	prevR, prevW := -1, 0
	hit := make([]bool, len(ws))
	for i := range s.Times {
		k := win(i)
		if k < 0 && i > 0 {
			if kp := win(i - 1); kp >= 0 {
				prevR, prevW = ws[kp][1], ws[kp][1]-ws[kp][0]+1
			}
		}
		if !detections[i] {
			continue
		}
		m := NABMark{Row: i, Time: s.Times[i], Window: k}
		switch {
		case i < prob:
			m.Kind = "probation"
		case k >= 0:
			l, r := ws[k][0], ws[k][1]
			m.Kind = "TP+"
			if !hit[k] {
				m.Kind = "TP"
				m.Part = nabScaledSigmoid(-float64(r-i+1)/float64(r-l+1)) * p.TP / maxTP
				hit[k] = true
			}
		default:
			m.Kind = "FP"
			pos := 3.0
			if prevR >= 0 && prevW > 1 {
				pos = float64(i-prevR) / float64(prevW-1)
			}
			m.Part = nabScaledSigmoid(pos) * p.FP
		}
		out = append(out, m)
	}
	for k, w := range ws {
		if !hit[k] && w[1] >= prob {
			out = append(out, NABMark{Row: w[0], Time: s.Times[w[0]], Window: k, Kind: "FN", Part: -p.FN})
		}
	}
	sort.SliceStable(out, func(a, b int) bool { return out[a].Row < out[b].Row })
	return out
}
