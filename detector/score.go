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
	if r := nbShape(lambda, disp, kappa); r > 0 {
		return score(mathext.RegIncBeta(k, r, lambda/(r+lambda))) // P(NB(r, r/(r+λ)) ≥ k)
	}
	return score(mathext.GammaIncReg(k, lambda)) // P(Poisson(λ) ≥ k)
}

// lowScore returns -log10 P(X ≤ k) for a count X with mean lambda and
// variance disp·lambda + kappa·lambda² (see tailScore): how surprising so
// few calls are.
func lowScore(k, lambda, disp, kappa float64) float64 {
	if lambda <= 0 || k >= lambda {
		return 0
	}
	if r := nbShape(lambda, disp, kappa); r > 0 {
		return score(mathext.RegIncBeta(r, k+1, r/(r+lambda))) // P(NB(r, r/(r+λ)) ≤ k)
	}
	return score(mathext.GammaIncRegComp(k+1, lambda)) // P(Poisson(λ) ≤ k)
}

// nbShape returns the shape r of the negative binomial with mean lambda
// (> 0) and variance disp·lambda + kappa·lambda² = lambda + lambda²/r, or 0
// when that variance is Poisson's.
func nbShape(lambda, disp, kappa float64) float64 {
	if inv := math.Max(0, disp-1)/lambda + math.Max(0, kappa); inv > 1e-9 {
		return 1 / inv
	}
	return 0
}

// score returns -log10 p, capped at maxScore (also where p underflows).
func score(p float64) float64 {
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
	if r := nbShape(lambda, disp, kappa); r > 0 {
		return r * math.Log10(1+lambda/r) // P(0) = (r/(r+λ))^r
	}
	return lambda / math.Ln10
}

// band returns a two-sided band (about ±3 standard deviations) around an
// expected count with dispersion disp.
func band(exp, disp float64) (lo, hi float64) {
	sd := math.Sqrt(exp * disp)
	return math.Max(0, exp-3*sd), exp + 3*sd
}
