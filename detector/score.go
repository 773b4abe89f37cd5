package detector

import (
	"math"

	"gonum.org/v1/gonum/mathext"
)

// maxScore caps scores whose tail probability underflows.
const maxScore = 300

// tailScore returns -log10 P(X ≥ k) for a count X with mean lambda and
// variance disp·lambda + kappa·lambda²: Poisson when disp is 1 and kappa 0,
// else the negative binomial (Gamma–Poisson mixture) with that mean and
// variance.
func tailScore(k, lambda, disp, kappa float64) float64 {
	if k <= 0 {
		return 0
	}
	if lambda <= 0 {
		return maxScore
	}
	var p float64
	if inv := math.Max(0, disp-1)/lambda + math.Max(0, kappa); inv <= 1e-9 {
		p = mathext.GammaIncReg(k, lambda) // P(Poisson(λ) ≥ k)
	} else {
		r := 1 / inv                                    // var = λ + λ²/r
		p = mathext.RegIncBeta(k, r, lambda/(r+lambda)) // P(NB(r, r/(r+λ)) ≥ k)
	}
	if !(p > 0) {
		return maxScore
	}
	return math.Min(-math.Log10(p), maxScore)
}

// lowScore returns -log10 P(X ≤ k) for a count X with mean lambda and
// variance disp·lambda + kappa·lambda² (see tailScore): how surprising so
// few calls are.
func lowScore(k, lambda, disp, kappa float64) float64 {
	if lambda <= 0 || k >= lambda {
		return 0
	}
	var p float64
	if inv := math.Max(0, disp-1)/lambda + math.Max(0, kappa); inv <= 1e-9 {
		p = mathext.GammaIncRegComp(k+1, lambda) // P(Poisson(λ) ≤ k)
	} else {
		r := 1 / inv
		p = mathext.RegIncBeta(r, k+1, r/(r+lambda)) // P(NB(r, r/(r+λ)) ≤ k)
	}
	if !(p > 0) {
		return maxScore
	}
	return math.Min(-math.Log10(p), maxScore)
}

// zeroScore returns -log10 P(X = 0) for a count with mean lambda and
// variance disp·lambda + kappa·lambda² (see tailScore): how surprising a
// silence is.
func zeroScore(lambda, disp, kappa float64) float64 {
	if lambda <= 0 {
		return 0
	}
	inv := math.Max(0, disp-1)/lambda + math.Max(0, kappa)
	if inv <= 1e-9 {
		return lambda / math.Ln10
	}
	r := 1 / inv // P(0) = (r/(r+λ))^r
	return r * math.Log10(1+lambda/r)
}

// band returns a two-sided band (about ±3 standard deviations) around an
// expected count with dispersion disp.
func band(exp, disp float64) (lo, hi float64) {
	sd := math.Sqrt(exp * disp)
	return math.Max(0, exp-3*sd), exp + 3*sd
}
