package experiment

import (
	"fmt"
	"math"
)

// Welford accumulates a mean and a variance in one pass (Welford's
// algorithm: numerically stable for long runs).
type Welford struct {
	N    int64
	Mean float64
	m2   float64
}

// Add adds one observation; NaN and infinities are ignored.
func (w *Welford) Add(x float64) {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return
	}
	w.N++
	d := x - w.Mean
	w.Mean += d / float64(w.N)
	w.m2 += d * (x - w.Mean)
}

// Var is the sample variance (n-1 in the denominator); 0 below two
// observations.
func (w *Welford) Var() float64 {
	if w.N < 2 {
		return 0
	}
	return w.m2 / float64(w.N-1)
}

// CI95 is the half-width of the 95% confidence interval of the mean
// (Student's t with n-1 degrees of freedom); NaN below two observations.
func (w *Welford) CI95() float64 {
	if w.N < 2 {
		return math.NaN()
	}
	return TQuantile(0.975, float64(w.N-1)) * math.Sqrt(w.Var()/float64(w.N))
}

// lbeta is log B(a, b).
func lbeta(a, b float64) float64 {
	la, _ := math.Lgamma(a)
	lb, _ := math.Lgamma(b)
	lab, _ := math.Lgamma(a + b)
	return la + lb - lab
}

// betacf is the continued fraction of the incomplete beta function
// (modified Lentz's method).
func betacf(a, b, x float64) float64 {
	const eps, tiny = 1e-15, 1e-300
	qab, qap, qam := a+b, a+1, a-1
	c, d := 1.0, 1-qab*x/qap
	if math.Abs(d) < tiny {
		d = tiny
	}
	d = 1 / d
	h := d
	for m := 1; m <= 1000; m++ {
		m2 := float64(2 * m)
		fm := float64(m)
		aa := fm * (b - fm) * x / ((qam + m2) * (a + m2))
		d = 1 + aa*d
		if math.Abs(d) < tiny {
			d = tiny
		}
		c = 1 + aa/c
		if math.Abs(c) < tiny {
			c = tiny
		}
		d = 1 / d
		h *= d * c
		aa = -(a + fm) * (qab + fm) * x / ((a + m2) * (qap + m2))
		d = 1 + aa*d
		if math.Abs(d) < tiny {
			d = tiny
		}
		c = 1 + aa/c
		if math.Abs(c) < tiny {
			c = tiny
		}
		d = 1 / d
		del := d * c
		h *= del
		if math.Abs(del-1) < eps {
			break
		}
	}
	return h
}

// RegIncBeta is the regularized incomplete beta function I_x(a, b).
func RegIncBeta(x, a, b float64) float64 {
	switch {
	case x <= 0:
		return 0
	case x >= 1:
		return 1
	}
	front := math.Exp(a*math.Log(x) + b*math.Log(1-x) - lbeta(a, b))
	if x < (a+1)/(a+b+2) {
		return front * betacf(a, b, x) / a
	}
	return 1 - front*betacf(b, a, 1-x)/b
}

// TTwoSided is the two-sided p-value of Student's t statistic t with df
// degrees of freedom.
func TTwoSided(t, df float64) float64 {
	if math.IsNaN(t) || df <= 0 {
		return math.NaN()
	}
	return RegIncBeta(df/(df+t*t), df/2, 0.5)
}

// TQuantile is the p quantile (p > 0.5) of Student's t with df degrees of
// freedom, by bisection on TTwoSided.
func TQuantile(p, df float64) float64 {
	target := 2 * (1 - p) // two-sided tail
	lo, hi := 0.0, 1e6
	for range 200 {
		mid := (lo + hi) / 2
		if TTwoSided(mid, df) > target {
			lo = mid
		} else {
			hi = mid
		}
	}
	return (lo + hi) / 2
}

// Welch is Welch's unequal-variances t-test of two samples' means.
type Welch struct {
	T  float64 `json:"t"`
	DF float64 `json:"df"`
	P  float64 `json:"p"`
}

// WelchTest compares a and b; NaN fields when either has fewer than two
// observations or both have no variance.
func WelchTest(a, b Welford) Welch {
	if a.N < 2 || b.N < 2 {
		return Welch{math.NaN(), math.NaN(), math.NaN()}
	}
	va, vb := a.Var()/float64(a.N), b.Var()/float64(b.N)
	se := math.Sqrt(va + vb)
	if se == 0 {
		return Welch{math.NaN(), math.NaN(), math.NaN()}
	}
	t := (a.Mean - b.Mean) / se
	df := (va + vb) * (va + vb) / (va*va/float64(a.N-1) + vb*vb/float64(b.N-1))
	return Welch{T: t, DF: df, P: TTwoSided(t, df)}
}

// ZTest is the two-proportion z-test (pooled standard error).
type ZTest struct {
	Z float64 `json:"z"`
	P float64 `json:"p"`
}

// TwoProportion compares x1 successes of n1 with x2 of n2.
func TwoProportion(x1, n1, x2, n2 int64) ZTest {
	if n1 == 0 || n2 == 0 {
		return ZTest{math.NaN(), math.NaN()}
	}
	p1, p2 := float64(x1)/float64(n1), float64(x2)/float64(n2)
	p := float64(x1+x2) / float64(n1+n2)
	se := math.Sqrt(p * (1 - p) * (1/float64(n1) + 1/float64(n2)))
	if se == 0 {
		return ZTest{math.NaN(), math.NaN()}
	}
	z := (p1 - p2) / se
	return ZTest{Z: z, P: math.Erfc(math.Abs(z) / math.Sqrt2)}
}

// Thresholds of a call. Alpha is the significance level. A continuous
// metric needs MinSamples per variant before its test is read (below that
// the t approximation and a 95% interval say little); a proportion needs
// MinEvents successes and failures in the pooled data (the normal
// approximation's usual rule of thumb: n·p and n·(1-p) at least 5).
const (
	Alpha      = 0.05
	MinSamples = 30
	MinEvents  = 5
)

// NotEnough is what a comparison says until the data allow a call.
const NotEnough = "not enough data yet"

// verdictMeans says what the data support about the means of a (the
// first variant) and b; unit and better ("higher" or "lower") phrase it.
func verdictMeans(an, bn string, a, b Welford, unit, better string) (Welch, string) {
	w := WelchTest(a, b)
	switch {
	case a.N < MinSamples || b.N < MinSamples:
		return w, fmt.Sprintf("%s: %d and %d samples, %d per variant needed", NotEnough, a.N, b.N, MinSamples)
	case math.IsNaN(w.P):
		return w, "no difference: both variants measured the same value every time"
	case w.P >= Alpha:
		return w, fmt.Sprintf("%s: no significant difference (p = %.3g); the means differ by %.3g %s, within noise", NotEnough, w.P, b.Mean-a.Mean, unit)
	}
	hi, lo := an, bn
	if b.Mean > a.Mean {
		hi, lo = bn, an
	}
	word := "higher"
	if better == "lower" {
		word = "higher (worse)"
	} else if better == "higher" {
		word = "higher (better)"
	}
	return w, fmt.Sprintf("%s is %s than %s by %.3g %s (Welch t = %.2f, p = %.3g)", hi, word, lo, math.Abs(b.Mean-a.Mean), unit, w.T, w.P)
}

// verdictRates says what the data support about two rates: x1 of n1
// against x2 of n2, what (plural) of unit (plural) each.
func verdictRates(an, bn string, x1, n1, x2, n2 int64, what, unit string) (ZTest, string) {
	z := TwoProportion(x1, n1, x2, n2)
	x, n := x1+x2, n1+n2
	switch {
	case n1 == 0 || n2 == 0 || x < MinEvents || n-x < MinEvents:
		return z, fmt.Sprintf("%s: %d %s of %d %s (%s %d, %s %d)", NotEnough, x, what, n, unit, an, n1, bn, n2)
	case math.IsNaN(z.P):
		return z, "no difference"
	case z.P >= Alpha:
		return z, fmt.Sprintf("%s: no significant difference in the rate of %s (p = %.3g)", NotEnough, what, z.P)
	}
	hi, lo := an, bn
	r1, r2 := float64(x1)/float64(n1), float64(x2)/float64(n2)
	if r2 > r1 {
		hi, lo = bn, an
	}
	return z, fmt.Sprintf("%s has a higher rate of %s than %s (%.1f%% vs %.1f%%, z = %.2f, p = %.3g)", hi, what, lo, 100*max(r1, r2), 100*min(r1, r2), z.Z, z.P)
}
