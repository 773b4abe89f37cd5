package detector

import (
	"math"
	"testing"
)

func TestTailScore(t *testing.T) {
	// P(Poisson(1) ≥ 5) = 1 − e⁻¹(1 + 1 + 1/2 + 1/6 + 1/24).
	poisson := -math.Log10(1 - math.Exp(-1)*(1+1+0.5+1.0/6+1.0/24))
	for _, tc := range []struct {
		name                   string
		k, lambda, disp, kappa float64
		want                   float64
	}{
		{"Poisson", 5, 1, 1, 0, poisson},
		{"nothing seen", 0, 1, 1, 0.2, 0},
		{"nothing expected", 3, 0, 1, 0.2, maxScore},
		// NB with r = λ/(disp−1) = 1, p = 1/2: P(X ≥ 1) = 1 − P(0) = 1/2.
		{"dispersion", 1, 1, 2, 0, math.Log10(2)},
		// The same NB from κ alone: var = λ + λ²/r with r = 1/κ = 1.
		{"kappa", 1, 1, 1, 1, math.Log10(2)},
	} {
		if got := tailScore(tc.k, tc.lambda, tc.disp, tc.kappa); math.Abs(got-tc.want) > 1e-9 {
			t.Errorf("%s: tailScore(%v, %v, %v, %v) = %v, want %v", tc.name, tc.k, tc.lambda, tc.disp, tc.kappa, got, tc.want)
		}
	}
	// With κ a busy series' score follows the effect size: three times the
	// expectation scores about the same at 100 or 10,000 expected, where
	// counting noise alone makes the larger astronomically significant.
	small, large := tailScore(300, 100, 1, 0.2), tailScore(30000, 10000, 1, 0.2)
	if math.Abs(small-large) > 0.1*large || large > 10 {
		t.Errorf("κ 0.2, 3× the expectation: score %v at 100, %v at 10,000: want about equal and modest", small, large)
	}
	if p := tailScore(300, 100, 1, 0); p < 5*small {
		t.Errorf("Poisson score of 3× at 100 = %v, want far above the κ score %v", p, small)
	}
}

func TestZeroScore(t *testing.T) {
	for _, tc := range []struct {
		name                string
		lambda, disp, kappa float64
		want                float64
	}{
		{"Poisson", 10, 1, 0, 10 / math.Ln10},
		{"nothing expected", 0, 1, 0.2, 0},
		{"dispersion", 10, 2, 0, 10 * math.Log10(2)},               // r = λ/(disp−1) = 10: P(0) = (1/2)^10
		{"kappa", 10, 1, 0.1, 10 * math.Log10(2)},                  // r = 1/κ = 10: the same NB
		{"both", 10, 2, 0.1, 5 * math.Log10(1+10.0/5)},             // 1/r = 1/10 + 1/10
		{"wandering busy series", 100, 1, 0.5, 2 * math.Log10(51)}, // r = 2: a silence far less surprising than Poisson's 43
	} {
		if got := zeroScore(tc.lambda, tc.disp, tc.kappa); math.Abs(got-tc.want) > 1e-9 {
			t.Errorf("%s: zeroScore(%v, %v, %v) = %v, want %v", tc.name, tc.lambda, tc.disp, tc.kappa, got, tc.want)
		}
	}
}

func TestLowScore(t *testing.T) {
	// P(Poisson(10) ≤ 2) = e⁻¹⁰(1 + 10 + 50).
	poisson := -math.Log10(math.Exp(-10) * 61)
	for _, tc := range []struct {
		name                   string
		k, lambda, disp, kappa float64
		want                   float64
	}{
		{"Poisson", 2, 10, 1, 0, poisson},
		{"at the expectation", 10, 10, 1, 0.2, 0},
		{"above it", 30, 10, 1, 0.2, 0},
		{"nothing expected", 0, 0, 1, 0, 0},
		// NB with r = 1/κ = 1, p = 1/2: P(X ≤ 0) = 1/2; with λ = 3, p = 1/4: P(X ≤ 1) = 1/4 + 3/16.
		{"kappa, none", 0, 1, 1, 1, math.Log10(2)},
		{"kappa, one", 1, 3, 1, 1, -math.Log10(0.25 + 3.0/16)},
	} {
		if got := lowScore(tc.k, tc.lambda, tc.disp, tc.kappa); math.Abs(got-tc.want) > 1e-9 {
			t.Errorf("%s: lowScore(%v, %v, %v, %v) = %v, want %v", tc.name, tc.k, tc.lambda, tc.disp, tc.kappa, got, tc.want)
		}
	}
	// No calls at all: the silence's own score, with or without κ.
	for _, kappa := range []float64{0, 0.05, 0.5} {
		if l, z := lowScore(0, 40, 1.5, kappa), zeroScore(40, 1.5, kappa); math.Abs(l-z) > 1e-6*z {
			t.Errorf("κ %v: lowScore(0) = %v, zeroScore = %v", kappa, l, z)
		}
	}
	// Fewer calls are more surprising.
	prev := math.Inf(1)
	for k := 0.0; k < 100; k += 10 {
		s := lowScore(k, 100, 1, 0.05)
		if s > prev {
			t.Errorf("lowScore(%v, 100) = %v > lowScore(%v) = %v", k, s, k-10, prev)
		}
		prev = s
	}
}
