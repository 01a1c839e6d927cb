//! Scoring candidates under a fitted Gaussian process: posterior mean and
//! variance, and the log expected improvement over an incumbent.
//!
//! The factors are those of `optserve.optimizers.gp.GaussianProcess`: with
//! `k = matern52(x_train, xc, lengthscales, outputscale)` of shape (n, k) and
//! `v = L^-1 k` (`L` the lower Cholesky factor),
//!
//! ```text
//! mean = y_mean + y_std * k^T alpha
//! var  = y_std^2 * max(outputscale - sum(v * v, axis=0), 1e-12)
//! ```
//!
//! A prepared GP may carry S weight vectors in place of `alpha`
//! ([`PreparedGp::with_means`]): S posterior means that share one variance,
//! as the GP conditioned on S draws of outcomes at some of its training rows
//! (pending points, or the latent values of noisy observations) has them.
//! Log EI is then averaged over the S means, each over its own incumbent.
//!
//! Candidates are processed in blocks of `BLOCK` columns: the (n, BLOCK)
//! cross-covariance panel is built in one pass, its means read off it, then
//! solved in place by a row-oriented forward substitution whose
//! inner loop updates `ROWS` rows of the panel at once from each solved row,
//! so that the accumulators stay in registers and every load of the panel
//! and of `L` is contiguous. On x86-64 CPUs with AVX2 and FMA the same code
//! is compiled a second time for them and chosen at run time.
//!
//! On a conditional search space the kernel is a mixture (`Mixture`, the
//! Python `gp.inputs`): the Matérn kernel over every input plus one over each
//! additive group's inputs, each scaled per point, `k(x, x') = s * sum_g
//! c_g(x) c_g(x') matern(x_g, x'_g)`; the candidates then come as the GP's
//! inputs with their scales `c`.
//!
//! Log expected improvement follows Ament et al. (NeurIPS 2023) in the same
//! three regimes as the Python `log_expected_improvement`.

// The erfc coefficients and ln 2 split are fdlibm's, kept digit for digit.
#![allow(clippy::excessive_precision)]

use crate::error::{Error, Result};

/// Columns (candidates) of one panel.
const BLOCK: usize = 16;
/// Rows of the panel updated together by the forward substitution (the
/// unrolled bulk loop in `solve_panel` is written for two).
const ROWS: usize = 2;
/// Floor of the posterior variance, in standardized units (as in Python).
pub const VAR_FLOOR: f64 = 1e-12;
/// Floor of the posterior stddev in log EI, so that zero gives a finite z.
pub const STD_FLOOR: f64 = 1e-100;

/// A row-major matrix borrowed from the caller.
#[derive(Debug, Clone, Copy)]
pub struct MatrixRef<'a> {
    pub data: &'a [f64],
    pub rows: usize,
    pub cols: usize,
}

impl<'a> MatrixRef<'a> {
    /// Checks that `data` holds `rows * cols` values.
    pub fn new(arg: &'static str, data: &'a [f64], rows: usize, cols: usize) -> Result<Self> {
        if rows.checked_mul(cols) != Some(data.len()) {
            return Err(Error::input(
                arg,
                format!("{} values for shape ({rows}, {cols})", data.len()),
            ));
        }
        Ok(MatrixRef { data, rows, cols })
    }
}

/// The factors of a fitted GP (see the module docs).
#[derive(Debug, Clone, Copy)]
pub struct GpFactors<'a> {
    /// (n, D) training inputs.
    pub x_train: MatrixRef<'a>,
    /// (n,) weights `K^-1 y_s`.
    pub alpha: &'a [f64],
    /// (n, n) lower Cholesky factor; only the lower triangle is read.
    pub chol: MatrixRef<'a>,
    /// (D,) length scales.
    pub lengthscales: &'a [f64],
    /// Prior variance in standardized units.
    pub outputscale: f64,
    /// Constant mean, original units.
    pub y_mean: f64,
    /// Standardization scale, original units.
    pub y_std: f64,
}

fn all_finite(v: &[f64]) -> bool {
    v.iter().all(|x| x.is_finite())
}

impl GpFactors<'_> {
    fn n(&self) -> usize {
        self.alpha.len()
    }

    fn dim(&self) -> usize {
        self.lengthscales.len()
    }

    /// Shapes agree, every value read is finite, scales are positive.
    fn validate(&self) -> Result<()> {
        let (n, d) = (self.n(), self.dim());
        if d == 0 {
            return Err(Error::input("lengthscales", "must not be empty"));
        }
        if !self.lengthscales.iter().all(|&l| l.is_finite() && l > 0.0) {
            return Err(Error::input("lengthscales", "must be finite and > 0"));
        }
        if self.x_train.rows != n || self.x_train.cols != d {
            return Err(Error::input(
                "x_train",
                format!(
                    "shape ({}, {}), expected ({n}, {d}) from alpha and lengthscales",
                    self.x_train.rows, self.x_train.cols
                ),
            ));
        }
        if self.chol.rows != n || self.chol.cols != n {
            return Err(Error::input(
                "chol",
                format!(
                    "shape ({}, {}), expected ({n}, {n})",
                    self.chol.rows, self.chol.cols
                ),
            ));
        }
        if !all_finite(self.x_train.data) {
            return Err(Error::input("x_train", "contains NaN or infinity"));
        }
        if !all_finite(self.alpha) {
            return Err(Error::input("alpha", "contains NaN or infinity"));
        }
        for i in 0..n {
            let row = &self.chol.data[i * n..i * n + i + 1];
            if !all_finite(row) {
                return Err(Error::input(
                    "chol",
                    "lower triangle contains NaN or infinity",
                ));
            }
            if row[i] <= 0.0 {
                return Err(Error::input(
                    "chol",
                    format!("diagonal entry {i} is not > 0"),
                ));
            }
        }
        for (arg, v) in [("outputscale", self.outputscale), ("y_std", self.y_std)] {
            if !(v.is_finite() && v > 0.0) {
                return Err(Error::input(
                    arg,
                    format!("must be finite and > 0, got {v}"),
                ));
            }
        }
        if !self.y_mean.is_finite() {
            return Err(Error::input("y_mean", "must be finite"));
        }
        Ok(())
    }
}

/// A fitted GP's factors, validated and prepared once, for scoring many
/// batches of candidates (the training inputs divided by the length scales,
/// the inverse diagonal of `L`).
#[derive(Debug, Clone)]
pub struct PreparedGp {
    pub(crate) n: usize,
    pub(crate) d: usize,
    pub(crate) s: f64,
    pub(crate) y_mean: f64,
    pub(crate) y_std: f64,
    /// (n, d) training inputs divided by the length scales.
    pub(crate) xs: Vec<f64>,
    pub(crate) inv_l: Vec<f64>,
    /// (n, means) weights of the posterior means, row-major (one: `K^-1 y_s`).
    pub(crate) alpha: Vec<f64>,
    /// How many posterior means share the variance.
    pub(crate) means: usize,
    /// (n, n) lower Cholesky factor, row-major.
    pub(crate) chol: Vec<f64>,
    pub(crate) inv_diag: Vec<f64>,
    /// The kernel's mixture on a conditional space (None: Matérn alone).
    pub(crate) mixture: Option<Mixture>,
}

/// The mixture kernel of a conditional space: the product term over every
/// input, then one Matérn term per additive group, each scaled per point.
#[derive(Debug, Clone)]
pub struct Mixture {
    /// Per additive group, the inputs (columns) it reads.
    groups: Vec<Vec<usize>>,
    /// (n, 1 + G) per training point: the product term's scale, then each group's.
    train_scales: Vec<f64>,
}

impl Mixture {
    fn width(&self) -> usize {
        self.groups.len() + 1
    }
}

fn check_scales(
    arg: &'static str,
    scales: &MatrixRef<'_>,
    rows: usize,
    width: usize,
) -> Result<()> {
    if scales.rows != rows || scales.cols != width {
        return Err(Error::input(
            arg,
            format!(
                "shape ({}, {}), expected ({rows}, {width}): a scale per point and term",
                scales.rows, scales.cols
            ),
        ));
    }
    if !scales.data.iter().all(|v| v.is_finite() && *v >= 0.0) {
        return Err(Error::input(arg, "must be finite and >= 0"));
    }
    Ok(())
}

impl PreparedGp {
    /// Validates `gp` (shapes agree, values finite, scales positive) and
    /// copies what scoring reads.
    pub fn new(gp: &GpFactors<'_>) -> Result<Self> {
        gp.validate()?;
        let (n, d) = (gp.n(), gp.dim());
        let inv_l: Vec<f64> = gp.lengthscales.iter().map(|l| 1.0 / l).collect();
        let xs: Vec<f64> = gp
            .x_train
            .data
            .chunks_exact(d)
            .flat_map(|row| row.iter().zip(&inv_l).map(|(x, il)| x * il))
            .collect();
        let inv_diag: Vec<f64> = (0..n).map(|i| 1.0 / gp.chol.data[i * n + i]).collect();
        Ok(PreparedGp {
            n,
            d,
            s: gp.outputscale,
            y_mean: gp.y_mean,
            y_std: gp.y_std,
            xs,
            inv_l,
            alpha: gp.alpha.to_vec(),
            means: 1,
            chol: gp.chol.data.to_vec(),
            inv_diag,
            mixture: None,
        })
    }

    /// This GP with S posterior means sharing its variance: `weights` (n, S)
    /// replace `alpha`, mean `j` being `y_mean + y_std * k^T weights[:, j]`.
    pub fn with_means(mut self, weights: &MatrixRef<'_>) -> Result<Self> {
        if weights.rows != self.n || weights.cols == 0 {
            return Err(Error::input(
                "weights",
                format!(
                    "shape ({}, {}), expected ({}, S) with S >= 1",
                    weights.rows, weights.cols, self.n
                ),
            ));
        }
        if !all_finite(weights.data) {
            return Err(Error::input("weights", "contain NaN or infinity"));
        }
        self.alpha = weights.data.to_vec();
        self.means = weights.cols;
        Ok(self)
    }

    /// How many posterior means share the variance (1 unless [`Self::with_means`]).
    pub fn means(&self) -> usize {
        self.means
    }

    /// Checks `incumbents`: one per posterior mean, finite.
    pub(crate) fn check_incumbents(&self, incumbents: &[f64]) -> Result<()> {
        if incumbents.len() != self.means {
            return Err(Error::input(
                "incumbent",
                format!(
                    "{} given, the GP has {} posterior means",
                    incumbents.len(),
                    self.means
                ),
            ));
        }
        if !all_finite(incumbents) {
            return Err(Error::input("incumbent", "must be finite"));
        }
        Ok(())
    }

    /// This GP under a mixture kernel: `groups` lists each additive group's
    /// inputs, `train_scales` (n, 1 + G) the training points' scales.
    pub fn with_mixture(
        mut self,
        groups: Vec<Vec<usize>>,
        train_scales: &MatrixRef<'_>,
    ) -> Result<Self> {
        for group in &groups {
            if group.is_empty() || group.iter().any(|&j| j >= self.d) {
                return Err(Error::input(
                    "groups",
                    format!("each must list inputs among 0..{}", self.d),
                ));
            }
            let mut sorted = group.clone();
            sorted.sort_unstable();
            sorted.dedup();
            if sorted.len() != group.len() {
                return Err(Error::input(
                    "groups",
                    "an input is listed twice in a group",
                ));
            }
        }
        check_scales("train_scales", train_scales, self.n, groups.len() + 1)?;
        self.mixture = Some(Mixture {
            groups,
            train_scales: train_scales.data.to_vec(),
        });
        Ok(self)
    }

    /// Whether the kernel is a mixture (candidates then need their scales).
    pub fn is_mixture(&self) -> bool {
        self.mixture.is_some()
    }

    /// The input dimension `D`.
    pub fn dim(&self) -> usize {
        self.d
    }

    fn check_candidates(&self, candidates: &MatrixRef<'_>) -> Result<()> {
        if candidates.cols != self.d {
            return Err(Error::input(
                "candidates",
                format!(
                    "have {} columns, the GP has D = {}",
                    candidates.cols, self.d
                ),
            ));
        }
        if !all_finite(candidates.data) {
            return Err(Error::input("candidates", "contain NaN or infinity"));
        }
        Ok(())
    }

    fn check_scales(
        &self,
        candidates: &MatrixRef<'_>,
        scales: Option<&MatrixRef<'_>>,
    ) -> Result<()> {
        match (&self.mixture, scales) {
            (None, None) => Ok(()),
            (Some(mix), Some(scales)) => {
                check_scales("scales", scales, candidates.rows, mix.width())
            }
            (Some(_), None) => Err(Error::input(
                "scales",
                "required: the kernel is a mixture, scaled per candidate",
            )),
            (None, Some(_)) => Err(Error::input(
                "scales",
                "given, but the kernel is not a mixture",
            )),
        }
    }

    /// Posterior means and variance (original units) of each candidate row:
    /// means (count, S) row-major, variance (count,).
    pub fn posterior(&self, candidates: &MatrixRef<'_>) -> Result<(Vec<f64>, Vec<f64>)> {
        self.posterior_scaled(candidates, None)
    }

    /// [`Self::posterior`], with the candidates' scales (n, 1 + G) under a mixture kernel.
    pub fn posterior_scaled(
        &self,
        candidates: &MatrixRef<'_>,
        scales: Option<&MatrixRef<'_>>,
    ) -> Result<(Vec<f64>, Vec<f64>)> {
        self.check_candidates(candidates)?;
        self.check_scales(candidates, scales)?;
        let count = candidates.rows;
        let mut mean = vec![0.0; count * self.means];
        let mut var = vec![0.0; count];
        self.standardized(candidates, scales, &mut mean, &mut var);
        for m in mean.iter_mut() {
            *m = self.y_mean + self.y_std * *m;
        }
        for v in var.iter_mut() {
            *v *= self.y_std * self.y_std;
        }
        Ok((mean, var))
    }

    /// Log expected improvement (maximization, original units) of each
    /// candidate row, averaged over the posterior means, mean `j` over
    /// `incumbents[j]`.
    pub fn log_ei(&self, candidates: &MatrixRef<'_>, incumbents: &[f64]) -> Result<Vec<f64>> {
        self.log_ei_scaled(candidates, None, incumbents)
    }

    /// [`Self::log_ei`], with the candidates' scales (n, 1 + G) under a mixture kernel.
    pub fn log_ei_scaled(
        &self,
        candidates: &MatrixRef<'_>,
        scales: Option<&MatrixRef<'_>>,
        incumbents: &[f64],
    ) -> Result<Vec<f64>> {
        self.check_candidates(candidates)?;
        self.check_scales(candidates, scales)?;
        self.check_incumbents(incumbents)?;
        let count = candidates.rows;
        let mut mean = vec![0.0; count * self.means];
        let mut var = vec![0.0; count];
        self.standardized(candidates, scales, &mut mean, &mut var);
        for m in mean.iter_mut() {
            *m = self.y_mean + self.y_std * *m;
        }
        Ok(mean
            .chunks_exact(self.means)
            .zip(&var)
            .map(|(m, v)| log_mean_ei(m, self.y_std * v.sqrt(), incumbents))
            .collect())
    }

    /// Means `k^T alpha` (count, S) and floored variance of the standardized
    /// GP (`scales`: checked against the mixture).
    fn standardized(
        &self,
        candidates: &MatrixRef<'_>,
        scales: Option<&MatrixRef<'_>>,
        mean: &mut [f64],
        var: &mut [f64],
    ) {
        let s = self.s;
        if self.n == 0 {
            mean.fill(0.0);
            var.fill(s.max(VAR_FLOOR));
            return;
        }
        let work = Work {
            xs: &self.xs,
            d: self.d,
            n: self.n,
            inv_l: &self.inv_l,
            alpha: &self.alpha,
            means: self.means,
            chol: &self.chol,
            inv_diag: &self.inv_diag,
            s,
        };
        let mixed = self
            .mixture
            .as_ref()
            .zip(scales)
            .map(|(mix, sc)| (mix, sc.data));
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma")
            {
                // SAFETY: the CPU supports the features `blocks_avx2` is compiled for.
                unsafe { blocks_avx2(&work, mixed, candidates.data, mean, var) };
                return;
            }
        }
        blocks::<false>(&work, mixed, candidates.data, mean, var);
    }
}

/// Posterior mean and variance (original units) of each candidate row.
///
/// Returns `(mean, var)`, each of length `candidates.rows`.
pub fn posterior(gp: &GpFactors<'_>, candidates: &MatrixRef<'_>) -> Result<(Vec<f64>, Vec<f64>)> {
    PreparedGp::new(gp)?.posterior(candidates)
}

/// Log expected improvement over `incumbent` (maximization, original units)
/// of each candidate row.
pub fn score_log_ei(
    gp: &GpFactors<'_>,
    candidates: &MatrixRef<'_>,
    incumbent: f64,
) -> Result<Vec<f64>> {
    PreparedGp::new(gp)?.log_ei(candidates, &[incumbent])
}

/// `log((1/S) sum_j EI_j)`: log EI averaged over S posterior means `means`
/// sharing the stddev `std`, mean `j` over `incumbents[j]` (one mean: its log EI).
pub fn log_mean_ei(means: &[f64], std: f64, incumbents: &[f64]) -> f64 {
    if let ([mean], [best]) = (means, incumbents) {
        return log_expected_improvement(*mean, std, *best);
    }
    let mut top = f64::NEG_INFINITY;
    let mut values = [0.0; MEANS_ON_STACK];
    let mut heap = Vec::new();
    let per: &mut [f64] = if means.len() <= MEANS_ON_STACK {
        &mut values[..means.len()]
    } else {
        heap.resize(means.len(), 0.0);
        &mut heap
    };
    for ((p, &m), &b) in per.iter_mut().zip(means).zip(incumbents) {
        *p = log_expected_improvement(m, std, b);
        top = top.max(*p);
    }
    if !top.is_finite() {
        return top;
    }
    let sum: f64 = per.iter().map(|p| (p - top).exp()).sum();
    top + sum.ln() - (means.len() as f64).ln()
}

/// Posterior means whose log EI values `log_mean_ei` keeps on the stack.
const MEANS_ON_STACK: usize = 32;

/// Everything the block loop reads, prepared once per GP.
struct Work<'a> {
    /// (n, d) training inputs divided by the length scales.
    xs: &'a [f64],
    d: usize,
    n: usize,
    inv_l: &'a [f64],
    /// (n, means) weights of the posterior means.
    alpha: &'a [f64],
    means: usize,
    chol: &'a [f64],
    inv_diag: &'a [f64],
    s: f64,
}

/// A mixture kernel and the candidates' scales (n, 1 + G), row-major.
type Mixed<'a> = Option<(&'a Mixture, &'a [f64])>;

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn blocks_avx2(
    w: &Work<'_>,
    mixed: Mixed<'_>,
    candidates: &[f64],
    mean: &mut [f64],
    var: &mut [f64],
) {
    blocks::<true>(w, mixed, candidates, mean, var);
}

#[inline(always)]
fn fmadd<const FMA: bool>(a: f64, b: f64, c: f64) -> f64 {
    if FMA {
        a.mul_add(b, c)
    } else {
        a * b + c
    }
}

/// `exp(-u)` for `u >= 0`, branch-free so that it vectorizes: Cody-Waite
/// reduction by ln 2 and a degree-13 Taylor polynomial on |r| <= ln(2)/2
/// (relative error a few ulp); 0 beyond u = 708.
#[inline(always)]
fn exp_neg<const FMA: bool>(u: f64) -> f64 {
    const LOG2E: f64 = std::f64::consts::LOG2_E;
    const LN2_HI: f64 = 6.931_471_803_691_238_164_9e-1; // low 32 bits zero
    const LN2_LO: f64 = 1.908_214_929_270_587_700_02e-10;
    const SHIFTER: f64 = 6_755_399_441_055_744.0; // 1.5 * 2^52
    const MAX_U: f64 = 708.0;
    let x = -u.min(MAX_U);
    let t = fmadd::<FMA>(x, LOG2E, SHIFTER); // SHIFTER + round(x / ln 2)
    let kf = t - SHIFTER;
    let r = fmadd::<FMA>(-kf, LN2_LO, fmadd::<FMA>(-kf, LN2_HI, x));
    let mut p = 1.0 / 6_227_020_800.0; // 1/13!
    for c in [
        1.0 / 479_001_600.0,
        1.0 / 39_916_800.0,
        1.0 / 3_628_800.0,
        1.0 / 362_880.0,
        1.0 / 40_320.0,
        1.0 / 5_040.0,
        1.0 / 720.0,
        1.0 / 120.0,
        1.0 / 24.0,
        1.0 / 6.0,
        0.5,
        1.0,
        1.0,
    ] {
        p = fmadd::<FMA>(p, r, c);
    }
    // 2^k from the low bits of t: k + 1023 lies in [1, 1023].
    let scale = f64::from_bits(t.to_bits().wrapping_add(1023) << 52);
    let e = p * scale;
    if u > MAX_U {
        0.0
    } else {
        e
    }
}

#[inline(always)]
fn blocks<const FMA: bool>(
    w: &Work<'_>,
    mixed: Mixed<'_>,
    candidates: &[f64],
    mean: &mut [f64],
    var: &mut [f64],
) {
    let (n, d) = (w.n, w.d);
    let mut panel = vec![0.0; n * BLOCK];
    let mut ct = vec![0.0; d * BLOCK];
    let width_g = mixed.map_or(0, |(mix, _)| mix.width());
    let mut sc = vec![0.0; width_g * BLOCK];
    let mut sq = vec![0.0; if mixed.is_some() { d * BLOCK } else { 0 }];
    let mut means = vec![0.0; w.means * BLOCK];
    let count = var.len();
    let mut start = 0;
    while start < count {
        let width = BLOCK.min(count - start);
        // Candidates of the block, scaled and transposed to (d, BLOCK); the
        // padding columns repeat the last candidate and are discarded.
        for t in 0..BLOCK {
            let row = start + t.min(width - 1);
            let c = &candidates[row * d..row * d + d];
            for j in 0..d {
                ct[j * BLOCK + t] = c[j] * w.inv_l[j];
            }
            if let Some((_, scales)) = mixed {
                for g in 0..width_g {
                    sc[g * BLOCK + t] = scales[row * width_g + g];
                }
            }
        }
        match mixed {
            None => build_panel::<FMA>(w, &ct, &mut panel),
            Some((mix, _)) => build_mixture_panel::<FMA>(w, mix, &ct, &sc, &mut sq, &mut panel),
        }
        panel_means::<FMA>(w, &panel, &mut means);
        let v = solve_panel::<FMA>(w, &mut panel);
        let s = w.means;
        for (j, column) in means.chunks_exact(BLOCK).enumerate() {
            for (t, &m) in column[..width].iter().enumerate() {
                mean[(start + t) * s + j] = m;
            }
        }
        for (out, sum) in var[start..start + width].iter_mut().zip(&v) {
            *out = (w.s - sum).max(VAR_FLOOR);
        }
        start += width;
    }
}

/// `means` (S, BLOCK): `sum_i alpha[i, j] panel[i, t]`, the panel holding `k`.
#[inline(always)]
fn panel_means<const FMA: bool>(w: &Work<'_>, panel: &[f64], means: &mut [f64]) {
    means.fill(0.0);
    let columns = means.as_chunks_mut::<BLOCK>().0;
    for (row, weights) in panel
        .as_chunks::<BLOCK>()
        .0
        .iter()
        .zip(w.alpha.chunks_exact(w.means))
    {
        for (out, &a) in columns.iter_mut().zip(weights) {
            for t in 0..BLOCK {
                out[t] = fmadd::<FMA>(a, row[t], out[t]);
            }
        }
    }
}

/// Fills the (n, BLOCK) panel with `k(x_train[i], candidate[t])`.
#[inline(always)]
fn build_panel<const FMA: bool>(w: &Work<'_>, ct: &[f64], panel: &mut [f64]) {
    let d = w.d;
    for (xi, row) in w.xs.chunks_exact(d).zip(panel.as_chunks_mut::<BLOCK>().0) {
        let mut r2 = [0.0; BLOCK];
        for (&x, c) in xi.iter().zip(ct.as_chunks::<BLOCK>().0) {
            for t in 0..BLOCK {
                let diff = x - c[t];
                r2[t] = fmadd::<FMA>(diff, diff, r2[t]);
            }
        }
        for t in 0..BLOCK {
            let u = (5.0 * r2[t]).sqrt();
            let poly = fmadd::<FMA>(u * u, 1.0 / 3.0, u + 1.0);
            row[t] = w.s * (poly * exp_neg::<FMA>(u));
        }
    }
}

/// Matérn-5/2 at squared scaled distances `r2`, in place (unit variance).
#[inline(always)]
fn matern_block<const FMA: bool>(r2: &mut [f64; BLOCK]) {
    for v in r2.iter_mut() {
        let u = (5.0 * *v).sqrt();
        *v = fmadd::<FMA>(u * u, 1.0 / 3.0, u + 1.0) * exp_neg::<FMA>(u);
    }
}

/// `build_panel` under a mixture kernel: `sc` (1 + G, BLOCK) holds the
/// candidates' scales, `sq` is scratch for (D, BLOCK) squared differences. A
/// term whose scale is 0 at a training point (an inactive group) is skipped.
#[inline(always)]
fn build_mixture_panel<const FMA: bool>(
    w: &Work<'_>,
    mix: &Mixture,
    ct: &[f64],
    sc: &[f64],
    sq: &mut [f64],
    panel: &mut [f64],
) {
    let (d, width) = (w.d, mix.width());
    let columns = ct.as_chunks::<BLOCK>().0;
    let scales = sc.as_chunks::<BLOCK>().0;
    let squares = sq.as_chunks_mut::<BLOCK>().0;
    for ((xi, row), st) in
        w.xs.chunks_exact(d)
            .zip(panel.as_chunks_mut::<BLOCK>().0)
            .zip(mix.train_scales.chunks_exact(width))
    {
        // squared differences per input, and the product term over all of them
        let mut r2 = [0.0; BLOCK];
        for ((&x, c), out) in xi.iter().zip(columns).zip(squares.iter_mut()) {
            for t in 0..BLOCK {
                let diff = x - c[t];
                out[t] = diff * diff;
                r2[t] += out[t];
            }
        }
        let mut k = [0.0; BLOCK];
        if st[0] != 0.0 {
            matern_block::<FMA>(&mut r2);
            for t in 0..BLOCK {
                k[t] = st[0] * scales[0][t] * r2[t];
            }
        }
        for ((group, &scale), cand) in mix.groups.iter().zip(&st[1..]).zip(&scales[1..]) {
            if scale == 0.0 {
                continue;
            }
            let mut r2 = [0.0; BLOCK];
            for &j in group {
                let part = &squares[j];
                for t in 0..BLOCK {
                    r2[t] += part[t];
                }
            }
            matern_block::<FMA>(&mut r2);
            for t in 0..BLOCK {
                k[t] = fmadd::<FMA>(scale * cand[t], r2[t], k[t]);
            }
        }
        for t in 0..BLOCK {
            row[t] = w.s * k[t];
        }
    }
}

/// Overwrites the panel by `L^-1 panel` and returns its column sums of squares.
#[inline(always)]
fn solve_panel<const FMA: bool>(w: &Work<'_>, panel: &mut [f64]) -> [f64; BLOCK] {
    let n = w.n;
    let l = w.chol;
    let mut sq = [0.0; BLOCK];
    let mut i0 = 0;
    while i0 < n {
        let rows = ROWS.min(n - i0);
        let (done, rest) = panel.split_at_mut(i0 * BLOCK);
        let mut acc = [[0.0; BLOCK]; ROWS];
        for r in 0..rows {
            acc[r].copy_from_slice(&rest[r * BLOCK..(r + 1) * BLOCK]);
        }
        let (solved, _) = done.as_chunks::<BLOCK>();
        if rows == ROWS {
            // The bulk: every solved row updates ROWS rows at once.
            let l0 = &l[i0 * n..i0 * n + i0];
            let l1 = &l[(i0 + 1) * n..(i0 + 1) * n + i0];
            let (mut a0, mut a1) = (acc[0], acc[1]);
            for ((vj, &x0), &x1) in solved.iter().zip(l0).zip(l1) {
                for t in 0..BLOCK {
                    a0[t] = fmadd::<FMA>(-x0, vj[t], a0[t]);
                    a1[t] = fmadd::<FMA>(-x1, vj[t], a1[t]);
                }
            }
            (acc[0], acc[1]) = (a0, a1);
        } else {
            for r in 0..rows {
                let lrow = &l[(i0 + r) * n..(i0 + r) * n + i0];
                for (&lij, vj) in lrow.iter().zip(solved) {
                    for t in 0..BLOCK {
                        acc[r][t] = fmadd::<FMA>(-lij, vj[t], acc[r][t]);
                    }
                }
            }
        }
        // The small triangle on the diagonal.
        for r in 0..rows {
            let i = i0 + r;
            for q in 0..r {
                let lij = -l[i * n + i0 + q];
                let (solved, current) = acc.split_at_mut(r);
                for t in 0..BLOCK {
                    current[0][t] = fmadd::<FMA>(lij, solved[q][t], current[0][t]);
                }
            }
            let inv = w.inv_diag[i];
            for t in 0..BLOCK {
                acc[r][t] *= inv;
                sq[t] = fmadd::<FMA>(acc[r][t], acc[r][t], sq[t]);
            }
            rest[r * BLOCK..(r + 1) * BLOCK].copy_from_slice(&acc[r]);
        }
        i0 += rows;
    }
    sq
}

const HALF_LOG_2PI: f64 = 0.918_938_533_204_672_8; // log(2 pi) / 2
const HALF_LOG_PI: f64 = 0.572_364_942_924_700_1; // log(pi) / 2
const HALF_LOG_PI_OVER_2: f64 = 0.225_791_352_644_727_43; // log(pi / 2) / 2

/// Log expected improvement over `best` of `f ~ N(mean, std^2)` (maximization);
/// `std` is floored at 1e-100.
pub fn log_expected_improvement(mean: f64, std: f64, best: f64) -> f64 {
    let sd = std.max(STD_FLOOR);
    log_h((mean - best) / sd) + sd.ln()
}

/// `log(1 - exp(x))` for `x < 0`.
fn log1mexp(x: f64) -> f64 {
    if x > -std::f64::consts::LN_2 {
        (-x.min(0.0).exp_m1()).ln()
    } else {
        (-x.exp()).ln_1p()
    }
}

/// `log(phi(z) + z Phi(z))`, finite and increasing for every finite `z`.
///
/// Regimes: `z > -1` directly; `x = -z / sqrt 2` in `[1/sqrt 2, 28)` through
/// `log(erfcx(x) x sqrt(pi))`, which for `x >= 1.25` is the log-space
/// rational approximation inside `erfc` itself (no cancellation); `x >= 28`
/// (`z < -39.6`) by the asymptotic series
/// `h(z) = phi(z) / z^2 (1 - 3/z^2 + 15/z^4 - ...)`, seven terms.
pub fn log_h(z: f64) -> f64 {
    if z.is_nan() {
        return f64::NAN;
    }
    if z > -1.0 {
        let phi = (-0.5 * z * z - HALF_LOG_2PI).exp();
        let cdf = 0.5 * erfc(-z * std::f64::consts::FRAC_1_SQRT_2);
        return (phi + z * cdf).ln();
    }
    let x = -z * std::f64::consts::FRAC_1_SQRT_2;
    if x < 28.0 {
        // log(erfcx(x) * x * sqrt(pi)), in (-inf, 0)
        let scaled = if x < 1.25 {
            ((x * x).exp() * erfc(x) * -z).ln() + HALF_LOG_PI_OVER_2
        } else {
            log_erfc_times_x_plus_x2(x) + HALF_LOG_PI
        };
        return -0.5 * z * z - HALF_LOG_2PI + log1mexp(scaled);
    }
    let w = 1.0 / (z * z);
    let series =
        w * (-3.0 + w * (15.0 + w * (-105.0 + w * (945.0 + w * (-10_395.0 + w * 135_135.0)))));
    -0.5 * z * z - HALF_LOG_2PI - 2.0 * (-z).ln() + series.ln_1p()
}

// The complementary error function: FreeBSD's s_erf.c, whose notice follows.
//
// ====================================================
// Copyright (C) 1993 by Sun Microsystems, Inc. All rights reserved.
//
// Developed at SunPro, a Sun Microsystems, Inc. business.
// Permission to use, copy, modify, and distribute this
// software is freely granted, provided that this notice
// is preserved.
// ====================================================
//
// erfc(x) = 1 - erf(x). For |x| < 0.84375, erf(x) = x + x R(x^2) (R = P/Q);
// for |x| in [0.84375, 1.25], erf(1 + s) = erx + P1(s)/Q1(s); for x in
// [1.25, 28), erfc(x) = exp(-x^2 - 0.5625 + R(1/x^2) / S(1/x^2)) / x with two
// fits, on [1.25, 1/0.35] and [1/0.35, 28).

const ERX: f64 = 8.45062911510467529297e-01;
const PP: [f64; 5] = [
    1.28379167095512558561e-01,
    -3.25042107247001499370e-01,
    -2.84817495755985104766e-02,
    -5.77027029648944159157e-03,
    -2.37630166566501626084e-05,
];
const QQ: [f64; 5] = [
    3.97917223959155352819e-01,
    6.50222499887672944485e-02,
    5.08130628187576562776e-03,
    1.32494738004321644526e-04,
    -3.96022827877536812320e-06,
];
const PA: [f64; 7] = [
    -2.36211856075265944077e-03,
    4.14856118683748331666e-01,
    -3.72207876035701323847e-01,
    3.18346619901161753674e-01,
    -1.10894694282396677476e-01,
    3.54783043256182359371e-02,
    -2.16637559486879084300e-03,
];
const QA: [f64; 6] = [
    1.06420880400844228286e-01,
    5.40397917702171048937e-01,
    7.18286544141962662868e-02,
    1.26171219808761642112e-01,
    1.36370839120290507362e-02,
    1.19844998467991074170e-02,
];
const RA: [f64; 8] = [
    -9.86494403484714822705e-03,
    -6.93858572707181764372e-01,
    -1.05586262253232909814e+01,
    -6.23753324503260060396e+01,
    -1.62396669462573470355e+02,
    -1.84605092906711035994e+02,
    -8.12874355063065934246e+01,
    -9.81432934416914548592e+00,
];
const SA: [f64; 8] = [
    1.96512716674392571292e+01,
    1.37657754143519042600e+02,
    4.34565877475229228821e+02,
    6.45387271733267880336e+02,
    4.29008140027567833386e+02,
    1.08635005541779435134e+02,
    6.57024977031928170135e+00,
    -6.04244152148580987438e-02,
];
const RB: [f64; 7] = [
    -9.86494292470009928597e-03,
    -7.99283237680523006574e-01,
    -1.77579549177547519889e+01,
    -1.60636384855821916062e+02,
    -6.37566443368389627722e+02,
    -1.02509513161107724954e+03,
    -4.83519191608651397019e+02,
];
const SB: [f64; 7] = [
    3.03380607434824582924e+01,
    3.25792512996573918826e+02,
    1.53672958608443695994e+03,
    3.19985821950859553908e+03,
    2.55305040643316442583e+03,
    4.74528541206955367215e+02,
    -2.24409524465858183362e+01,
];

/// `c[0] + x c[1] + x^2 c[2] + ...`
fn poly(c: &[f64], x: f64) -> f64 {
    c.iter().rev().fold(0.0, |acc, &ci| acc * x + ci)
}

/// `1 + x c[0] + x^2 c[1] + ...`
fn poly1(c: &[f64], x: f64) -> f64 {
    1.0 + x * poly(c, x)
}

/// `log(erfc(x) x) + x^2` for `x in [1.25, 28)`: the exponent of s_erf.c's
/// form `erfc(x) = exp(-x^2 - 0.5625 + R/S) / x`.
pub(crate) fn log_erfc_times_x_plus_x2(x: f64) -> f64 {
    let s = 1.0 / (x * x);
    let (r, big_s) = if x < 1.0 / 0.35 {
        (poly(&RA, s), poly1(&SA, s))
    } else {
        (poly(&RB, s), poly1(&SB, s))
    };
    -0.5625 + r / big_s
}

/// The complementary error function, within an ulp or so.
pub fn erfc(x: f64) -> f64 {
    if x.is_nan() {
        return f64::NAN;
    }
    let ax = x.abs();
    if ax < 0.84375 {
        if ax < 1.3877787807814457e-17 {
            return 1.0 - x;
        }
        let z = x * x;
        let y = poly(&PP, z) / poly1(&QQ, z);
        if x < 0.25 {
            return 1.0 - (x + x * y);
        }
        return 0.5 - (x - 0.5 + x * y);
    }
    if ax >= 28.0 {
        return if x > 0.0 { 0.0 } else { 2.0 };
    }
    let tail = if ax < 1.25 {
        let s = ax - 1.0;
        1.0 - ERX - poly(&PA, s) / poly1(&QA, s)
    } else {
        // exp(-x^2) split as exp(-z^2) exp((z - x)(z + x)) with z the
        // leading 20 bits of x, so that no rounding of x^2 leaks in.
        let z = f64::from_bits(ax.to_bits() & 0xffff_ffff_0000_0000);
        let s = 1.0 / (ax * ax);
        let (r, big_s) = if ax < 1.0 / 0.35 {
            (poly(&RA, s), poly1(&SA, s))
        } else {
            (poly(&RB, s), poly1(&SB, s))
        };
        (-z * z - 0.5625).exp() * ((z - ax) * (z + ax) + r / big_s).exp() / ax
    };
    if x > 0.0 {
        tail
    } else {
        2.0 - tail
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Direct O(n^3) reference of the posterior, scalar loops.
    #[allow(clippy::needless_range_loop)]
    fn reference(gp: &GpFactors<'_>, xc: &[f64]) -> (Vec<f64>, Vec<f64>) {
        let (n, d) = (gp.n(), gp.dim());
        let l = gp.chol.data;
        let mut means = vec![];
        let mut vars = vec![];
        for c in xc.chunks_exact(d) {
            let k: Vec<f64> = (0..n)
                .map(|i| {
                    let r2: f64 = (0..d)
                        .map(|j| ((gp.x_train.data[i * d + j] - c[j]) / gp.lengthscales[j]).powi(2))
                        .sum();
                    let u = (5.0 * r2).sqrt();
                    gp.outputscale * (1.0 + u + u * u / 3.0) * (-u).exp()
                })
                .collect();
            let mut v = vec![0.0; n];
            for i in 0..n {
                let mut s = k[i];
                for j in 0..i {
                    s -= l[i * n + j] * v[j];
                }
                v[i] = s / l[i * n + i];
            }
            let m: f64 = k.iter().zip(gp.alpha).map(|(a, b)| a * b).sum();
            let vv: f64 = v.iter().map(|x| x * x).sum();
            means.push(gp.y_mean + gp.y_std * m);
            vars.push(gp.y_std * gp.y_std * (gp.outputscale - vv).max(VAR_FLOOR));
        }
        (means, vars)
    }

    struct Lcg(u64);
    impl Lcg {
        fn next(&mut self) -> f64 {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (self.0 >> 11) as f64 / (1u64 << 53) as f64
        }
    }

    /// A random SPD factor: `L` of `A A^T + n I`.
    fn random_chol(n: usize, rng: &mut Lcg) -> Vec<f64> {
        let a: Vec<f64> = (0..n * n).map(|_| rng.next() - 0.5).collect();
        let mut k = vec![0.0; n * n];
        for i in 0..n {
            for j in 0..n {
                k[i * n + j] = (0..n).map(|t| a[i * n + t] * a[j * n + t]).sum::<f64>()
                    + if i == j { n as f64 } else { 0.0 };
            }
        }
        let mut l = vec![0.0; n * n];
        for j in 0..n {
            let mut s = k[j * n + j];
            for t in 0..j {
                s -= l[j * n + t] * l[j * n + t];
            }
            l[j * n + j] = s.sqrt();
            for i in j + 1..n {
                let mut s = k[i * n + j];
                for t in 0..j {
                    s -= l[i * n + t] * l[j * n + t];
                }
                l[i * n + j] = s / l[j * n + j];
            }
        }
        l
    }

    #[test]
    fn blocked_posterior_matches_the_scalar_reference() {
        let mut rng = Lcg(7);
        for &(n, d, k) in &[(0, 2, 3), (1, 1, 1), (3, 2, 17), (7, 3, 33), (40, 5, 50)] {
            let x: Vec<f64> = (0..n * d).map(|_| rng.next()).collect();
            let alpha: Vec<f64> = (0..n).map(|_| rng.next() - 0.5).collect();
            let chol = random_chol(n, &mut rng);
            let ls: Vec<f64> = (0..d).map(|_| 0.2 + rng.next()).collect();
            let xc: Vec<f64> = (0..k * d).map(|_| rng.next()).collect();
            let gp = GpFactors {
                x_train: MatrixRef::new("x", &x, n, d).unwrap(),
                alpha: &alpha,
                chol: MatrixRef::new("chol", &chol, n, n).unwrap(),
                lengthscales: &ls,
                outputscale: 1.3,
                y_mean: 0.4,
                y_std: 2.0,
            };
            let cand = MatrixRef::new("c", &xc, k, d).unwrap();
            let (m, v) = posterior(&gp, &cand).unwrap();
            let (rm, rv) = reference(&gp, &xc);
            for t in 0..k {
                assert!(
                    (m[t] - rm[t]).abs() <= 1e-12 * (1.0 + rm[t].abs()),
                    "{n} {t}"
                );
                assert!(
                    (v[t] - rv[t]).abs() <= 1e-12 * (1.0 + rv[t].abs()),
                    "{n} {t}"
                );
            }
            let scores = score_log_ei(&gp, &cand, 1.0).unwrap();
            for t in 0..k {
                let want = log_expected_improvement(rm[t], rv[t].sqrt(), 1.0);
                assert!((scores[t] - want).abs() <= 1e-10 * (1.0 + want.abs()));
            }
        }
    }

    #[test]
    #[allow(clippy::needless_range_loop)]
    fn a_mixture_kernel_matches_its_dense_reference() {
        let mut rng = Lcg(5);
        let (n, d, k) = (23, 5, 37);
        let groups = vec![vec![0, 1], vec![2, 4], vec![3]];
        let width = groups.len() + 1;
        let x: Vec<f64> = (0..n * d).map(|_| rng.next()).collect();
        let alpha: Vec<f64> = (0..n).map(|_| rng.next() - 0.5).collect();
        let chol = random_chol(n, &mut rng);
        let ls: Vec<f64> = (0..d).map(|_| 0.2 + rng.next()).collect();
        let xc: Vec<f64> = (0..k * d).map(|_| rng.next()).collect();
        // scales per point; some groups inactive (0)
        let mut scales = |rows: usize| -> Vec<f64> {
            (0..rows * width)
                .map(|i| if i % 5 == 3 { 0.0 } else { rng.next() })
                .collect()
        };
        let (st, sc) = (scales(n), scales(k));
        let (s, y_mean, y_std) = (1.3, 0.4, 2.0);
        let gp = GpFactors {
            x_train: MatrixRef::new("x", &x, n, d).unwrap(),
            alpha: &alpha,
            chol: MatrixRef::new("chol", &chol, n, n).unwrap(),
            lengthscales: &ls,
            outputscale: s,
            y_mean,
            y_std,
        };
        let prepared = PreparedGp::new(&gp)
            .unwrap()
            .with_mixture(
                groups.clone(),
                &MatrixRef::new("st", &st, n, width).unwrap(),
            )
            .unwrap();
        let cand = MatrixRef::new("c", &xc, k, d).unwrap();
        let scales_c = MatrixRef::new("sc", &sc, k, width).unwrap();
        let (m, v) = prepared.posterior_scaled(&cand, Some(&scales_c)).unwrap();
        let matern = |a: &[f64], b: &[f64], cols: &[usize]| {
            let r2: f64 = cols.iter().map(|&j| ((a[j] - b[j]) / ls[j]).powi(2)).sum();
            let u = (5.0 * r2).sqrt();
            (1.0 + u + u * u / 3.0) * (-u).exp()
        };
        let all: Vec<usize> = (0..d).collect();
        for t in 0..k {
            let c = &xc[t * d..(t + 1) * d];
            let kv: Vec<f64> = (0..n)
                .map(|i| {
                    let xi = &x[i * d..(i + 1) * d];
                    let mut sum = st[i * width] * sc[t * width] * matern(xi, c, &all);
                    for (g, cols) in groups.iter().enumerate() {
                        sum += st[i * width + g + 1] * sc[t * width + g + 1] * matern(xi, c, cols);
                    }
                    s * sum
                })
                .collect();
            let mut w = vec![0.0; n];
            for i in 0..n {
                let mut acc = kv[i];
                for j in 0..i {
                    acc -= chol[i * n + j] * w[j];
                }
                w[i] = acc / chol[i * n + i];
            }
            let rm = y_mean + y_std * kv.iter().zip(&alpha).map(|(a, b)| a * b).sum::<f64>();
            let rv = y_std * y_std * (s - w.iter().map(|x| x * x).sum::<f64>()).max(VAR_FLOOR);
            assert!((m[t] - rm).abs() <= 1e-12 * (1.0 + rm.abs()), "mean {t}");
            assert!((v[t] - rv).abs() <= 1e-12 * (1.0 + rv.abs()), "var {t}");
        }
        let scores = prepared
            .log_ei_scaled(&cand, Some(&scales_c), &[1.0])
            .unwrap();
        for t in 0..k {
            let want = log_expected_improvement(m[t], v[t].sqrt(), 1.0);
            assert!((scores[t] - want).abs() <= 1e-12 * (1.0 + want.abs()));
        }
        // the scales are required, checked, and refused without a mixture
        assert!(prepared.posterior(&cand).is_err());
        let short = MatrixRef::new("sc", &sc[..(k - 1) * width], k - 1, width).unwrap();
        assert!(prepared.posterior_scaled(&cand, Some(&short)).is_err());
        let negative: Vec<f64> = sc.iter().map(|v| -v - 1.0).collect();
        let negative = MatrixRef::new("sc", &negative, k, width).unwrap();
        assert!(prepared.posterior_scaled(&cand, Some(&negative)).is_err());
        let plain = PreparedGp::new(&gp).unwrap();
        assert!(plain.posterior_scaled(&cand, Some(&scales_c)).is_err());
        let st_short = MatrixRef::new("st", &st[..width], 1, width).unwrap();
        assert!(PreparedGp::new(&gp)
            .unwrap()
            .with_mixture(groups, &st_short)
            .is_err());
        for bad in [vec![vec![]], vec![vec![d]], vec![vec![1, 1]]] {
            let bad_width =
                MatrixRef::new("st", &st[..n * (bad.len() + 1)], n, bad.len() + 1).unwrap();
            assert!(PreparedGp::new(&gp)
                .unwrap()
                .with_mixture(bad, &bad_width)
                .is_err());
        }
    }

    #[test]
    fn a_prepared_gp_scores_as_the_functions_do() {
        let mut rng = Lcg(11);
        let (n, d) = (30, 4);
        let x: Vec<f64> = (0..n * d).map(|_| rng.next()).collect();
        let alpha: Vec<f64> = (0..n).map(|_| rng.next() - 0.5).collect();
        let chol = random_chol(n, &mut rng);
        let ls = vec![0.3, 0.5, 0.7, 1.1];
        let gp = GpFactors {
            x_train: MatrixRef::new("x", &x, n, d).unwrap(),
            alpha: &alpha,
            chol: MatrixRef::new("chol", &chol, n, n).unwrap(),
            lengthscales: &ls,
            outputscale: 0.8,
            y_mean: -1.0,
            y_std: 3.0,
        };
        let prepared = PreparedGp::new(&gp).unwrap();
        for k in [1, 16, 37] {
            let xc: Vec<f64> = (0..k * d).map(|_| rng.next()).collect();
            let cand = MatrixRef::new("c", &xc, k, d).unwrap();
            assert_eq!(
                prepared.posterior(&cand).unwrap(),
                posterior(&gp, &cand).unwrap()
            );
            assert_eq!(
                prepared.log_ei(&cand, &[0.5]).unwrap(),
                score_log_ei(&gp, &cand, 0.5).unwrap()
            );
        }
        let wrong = [0.1, 0.2, 0.3];
        assert!(prepared
            .log_ei(&MatrixRef::new("c", &wrong, 1, 3).unwrap(), &[0.0])
            .is_err());
    }

    #[test]
    fn exp_neg_is_accurate() {
        let mut u = 0.0;
        while u < 750.0 {
            for e in [exp_neg::<false>(u), exp_neg::<true>(u)] {
                let want = (-u).exp();
                if u <= 708.0 {
                    assert!((e - want).abs() <= 4.0 * f64::EPSILON * want, "{u}");
                } else {
                    assert_eq!(e, 0.0);
                }
            }
            u += 0.0137;
        }
    }

    #[test]
    fn erfc_matches_known_values() {
        // values from scipy.special.erfc
        for (x, want) in [
            (0.0, 1.0),
            (0.1, 0.887_537_083_981_715_2),
            (0.5, 0.479_500_122_186_953_5),
            (1.0, 0.157_299_207_050_285_16),
            (2.0, 0.004_677_734_981_047_266),
            (-1.0, 1.842_700_792_949_714_8),
            (5.0, 1.537_459_794_428_034_7e-12),
            (20.0, 5.395_865_611_607_901e-176),
        ] {
            let got = erfc(x);
            assert!(
                (got - want).abs() <= 4.0 * f64::EPSILON * want.abs(),
                "{x}: {got}"
            );
        }
    }

    #[test]
    fn log_h_is_continuous_increasing_and_finite() {
        let mut z = -1e6;
        let mut last = f64::NEG_INFINITY;
        while z < 50.0 {
            let h = log_h(z);
            assert!(h.is_finite(), "{z}");
            assert!(h > last, "{z}");
            last = h;
            z = if z < -200.0 { z * 0.9 } else { z + 0.01 };
        }
        // the regime boundaries agree with their neighbours
        for b in [
            -1.0,
            -1.25 * std::f64::consts::SQRT_2,
            -28.0 * std::f64::consts::SQRT_2,
        ] {
            let (lo, hi) = (log_h(b - 1e-9), log_h(b + 1e-9));
            assert!((hi - lo).abs() < 1e-7 * (1.0 + lo.abs()), "{b}");
        }
        // h(0) = phi(0)
        assert!((log_h(0.0) - (-HALF_LOG_2PI)).abs() < 1e-15);
        assert!(log_h(f64::NAN).is_nan());
    }

    #[test]
    fn bad_input_is_an_error_not_a_panic() {
        let x = [0.1, 0.2];
        let chol = [1.0];
        let ls = [0.5, 0.5];
        let gp = GpFactors {
            x_train: MatrixRef::new("x", &x, 1, 2).unwrap(),
            alpha: &[1.0],
            chol: MatrixRef::new("chol", &chol, 1, 1).unwrap(),
            lengthscales: &ls,
            outputscale: 1.0,
            y_mean: 0.0,
            y_std: 1.0,
        };
        let bad = [0.1, f64::NAN];
        assert!(score_log_ei(&gp, &MatrixRef::new("c", &bad, 1, 2).unwrap(), 0.0).is_err());
        let wrong = [0.1, 0.2, 0.3];
        assert!(posterior(&gp, &MatrixRef::new("c", &wrong, 1, 3).unwrap()).is_err());
        assert!(MatrixRef::new("c", &wrong, 2, 2).is_err());
        let zero = [0.0];
        let singular = GpFactors {
            chol: MatrixRef::new("chol", &zero, 1, 1).unwrap(),
            ..gp
        };
        assert!(posterior(&singular, &MatrixRef::new("c", &x, 1, 2).unwrap()).is_err());
        assert!(score_log_ei(&gp, &MatrixRef::new("c", &x, 1, 2).unwrap(), f64::NAN).is_err());
    }
}
