//! Python bindings: convert arrays and errors, release the GIL, call the core.
use numpy::ndarray::Array2;
use numpy::{PyArray1, PyArray2, PyReadonlyArray1, PyReadonlyArray2, PyUntypedArrayMethods};
use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;

use crate::acquisition::{
    posterior as core_posterior, score_log_ei as core_score_log_ei, GpFactors, MatrixRef,
    PreparedGp,
};
use crate::error::Error;
use crate::hit_and_run::{hit_and_run as core_hit_and_run, Method, RunOptions};
use crate::lattice::{hit_and_run_int as core_hit_and_run_int, IntPolytope};
use crate::polytope::Polytope;

fn to_py_err(e: Error) -> PyErr {
    match e {
        Error::Input { .. } => PyValueError::new_err(e.to_string()),
        Error::Numerical(_) => PyRuntimeError::new_err(e.to_string()),
    }
}

fn count(arg: &'static str, v: i64) -> PyResult<usize> {
    usize::try_from(v).map_err(|_| PyValueError::new_err(format!("{arg}: must be >= 0, got {v}")))
}

fn seed_u64(v: i128) -> PyResult<u64> {
    u64::try_from(v)
        .map_err(|_| PyValueError::new_err(format!("seed: must be in [0, 2**64), got {v}")))
}

fn opts(
    n_samples: i64,
    burn_in: i64,
    thin: i64,
    n_chains: i64,
    seed: i128,
) -> PyResult<RunOptions> {
    Ok(RunOptions {
        n_samples: count("n_samples", n_samples)?,
        burn_in: count("burn_in", burn_in)?,
        thin: count("thin", thin)?,
        n_chains: count("n_chains", n_chains)?,
        seed: seed_u64(seed)?,
    })
}

/// Copies a read-only 2-D view into a row-major vector.
fn matrix(a: &PyReadonlyArray2<'_, f64>) -> (Vec<f64>, usize, usize) {
    let v = a.as_array();
    let (m, d) = v.dim();
    (v.iter().copied().collect(), m, d)
}

fn vector<T: numpy::Element + Copy>(x: &PyReadonlyArray1<'_, T>) -> Vec<T> {
    x.as_array().iter().copied().collect()
}

fn to_array<'py, T: numpy::Element>(
    py: Python<'py>,
    v: Vec<T>,
    d: usize,
) -> PyResult<Bound<'py, PyArray2<T>>> {
    let n = v.len().checked_div(d).unwrap_or(0);
    let arr =
        Array2::from_shape_vec((n, d), v).map_err(|e| PyRuntimeError::new_err(e.to_string()))?;
    Ok(PyArray2::from_owned_array(py, arr))
}

/// Uniform samples of {x : lo <= x <= hi, A x <= b} by hit-and-run from the
/// strictly interior point `x0`. Returns an `(n_samples, d)` float64 array.
#[pyfunction]
#[pyo3(signature = (a, b, lo, hi, x0, n_samples, *, burn_in, thin, n_chains = 1, method = "coordinate", seed = 0))]
#[allow(clippy::too_many_arguments)]
fn hit_and_run<'py>(
    py: Python<'py>,
    a: PyReadonlyArray2<'py, f64>,
    b: PyReadonlyArray1<'py, f64>,
    lo: PyReadonlyArray1<'py, f64>,
    hi: PyReadonlyArray1<'py, f64>,
    x0: PyReadonlyArray1<'py, f64>,
    n_samples: i64,
    burn_in: i64,
    thin: i64,
    n_chains: i64,
    method: &str,
    seed: i128,
) -> PyResult<Bound<'py, PyArray2<f64>>> {
    let opts = opts(n_samples, burn_in, thin, n_chains, seed)?;
    let method = Method::parse(method).map_err(to_py_err)?;
    let (a, m, d) = matrix(&a);
    let (b, lo, hi, x0) = (vector(&b), vector(&lo), vector(&hi), vector(&x0));
    let out = py
        .detach(move || {
            let p = Polytope::new(a, m, d, b, lo, hi)?;
            core_hit_and_run(&p, &x0, method, &opts)
        })
        .map_err(to_py_err)?;
    to_array(py, out, d)
}

/// Uniform samples of the integer points {z : lo <= z <= hi, A z <= b} by
/// coordinate hit-and-run on the lattice from the feasible point `z0`.
/// Returns an `(n_samples, d)` int64 array.
#[pyfunction]
#[pyo3(signature = (a, b, lo, hi, z0, n_samples, *, burn_in, thin, n_chains = 1, seed = 0))]
#[allow(clippy::too_many_arguments)]
fn hit_and_run_int<'py>(
    py: Python<'py>,
    a: PyReadonlyArray2<'py, f64>,
    b: PyReadonlyArray1<'py, f64>,
    lo: PyReadonlyArray1<'py, i64>,
    hi: PyReadonlyArray1<'py, i64>,
    z0: PyReadonlyArray1<'py, i64>,
    n_samples: i64,
    burn_in: i64,
    thin: i64,
    n_chains: i64,
    seed: i128,
) -> PyResult<Bound<'py, PyArray2<i64>>> {
    let opts = opts(n_samples, burn_in, thin, n_chains, seed)?;
    let (a, m, d) = matrix(&a);
    let (b, lo, hi, z0) = (vector(&b), vector(&lo), vector(&hi), vector(&z0));
    let out = py
        .detach(move || {
            let ip = IntPolytope::new(a, m, d, b, lo, hi)?;
            core_hit_and_run_int(&ip, &z0, &opts)
        })
        .map_err(to_py_err)?;
    to_array(py, out, d)
}

/// Row-major copy of a 2-D array (a memcpy when it is C-contiguous), with its shape.
fn matrix_c(a: &PyReadonlyArray2<'_, f64>) -> (Vec<f64>, usize, usize) {
    let (m, d) = (a.shape()[0], a.shape()[1]);
    match a.as_slice() {
        Ok(s) if a.is_c_contiguous() => (s.to_vec(), m, d),
        _ => matrix(a),
    }
}

/// Owned copies of a GP's factors, so that the GIL can be released.
struct OwnedFactors {
    x_train: (Vec<f64>, usize, usize),
    alpha: Vec<f64>,
    chol: (Vec<f64>, usize, usize),
    lengthscales: Vec<f64>,
    outputscale: f64,
    y_mean: f64,
    y_std: f64,
}

impl OwnedFactors {
    fn view(&self) -> crate::Result<GpFactors<'_>> {
        let (x, n, d) = &self.x_train;
        let (c, cn, cm) = &self.chol;
        Ok(GpFactors {
            x_train: MatrixRef::new("x_train", x, *n, *d)?,
            alpha: &self.alpha,
            chol: MatrixRef::new("chol", c, *cn, *cm)?,
            lengthscales: &self.lengthscales,
            outputscale: self.outputscale,
            y_mean: self.y_mean,
            y_std: self.y_std,
        })
    }
}

type MeanVar<'py> = (Bound<'py, PyArray1<f64>>, Bound<'py, PyArray1<f64>>);

/// Posterior mean and variance of a fitted GP at `candidates`, in the
/// original units: `(mean, var)`, each `(k,)` float64.
#[pyfunction]
#[pyo3(signature = (candidates, x_train, alpha, chol, lengthscales, outputscale, y_mean, y_std))]
#[allow(clippy::too_many_arguments)]
fn gp_posterior<'py>(
    py: Python<'py>,
    candidates: PyReadonlyArray2<'py, f64>,
    x_train: PyReadonlyArray2<'py, f64>,
    alpha: PyReadonlyArray1<'py, f64>,
    chol: PyReadonlyArray2<'py, f64>,
    lengthscales: PyReadonlyArray1<'py, f64>,
    outputscale: f64,
    y_mean: f64,
    y_std: f64,
) -> PyResult<MeanVar<'py>> {
    let gp = OwnedFactors {
        x_train: matrix_c(&x_train),
        alpha: vector(&alpha),
        chol: matrix_c(&chol),
        lengthscales: vector(&lengthscales),
        outputscale,
        y_mean,
        y_std,
    };
    let (c, k, d) = matrix_c(&candidates);
    let (mean, var) = py
        .detach(move || core_posterior(&gp.view()?, &MatrixRef::new("candidates", &c, k, d)?))
        .map_err(to_py_err)?;
    Ok((PyArray1::from_vec(py, mean), PyArray1::from_vec(py, var)))
}

/// Log expected improvement over `incumbent` (maximization) of a fitted GP at
/// `candidates`: `(k,)` float64.
#[pyfunction]
#[pyo3(signature = (candidates, x_train, alpha, chol, lengthscales, outputscale, y_mean, y_std, incumbent))]
#[allow(clippy::too_many_arguments)]
fn score_log_ei<'py>(
    py: Python<'py>,
    candidates: PyReadonlyArray2<'py, f64>,
    x_train: PyReadonlyArray2<'py, f64>,
    alpha: PyReadonlyArray1<'py, f64>,
    chol: PyReadonlyArray2<'py, f64>,
    lengthscales: PyReadonlyArray1<'py, f64>,
    outputscale: f64,
    y_mean: f64,
    y_std: f64,
    incumbent: f64,
) -> PyResult<Bound<'py, PyArray1<f64>>> {
    let gp = OwnedFactors {
        x_train: matrix_c(&x_train),
        alpha: vector(&alpha),
        chol: matrix_c(&chol),
        lengthscales: vector(&lengthscales),
        outputscale,
        y_mean,
        y_std,
    };
    let (c, k, d) = matrix_c(&candidates);
    let out = py
        .detach(move || {
            core_score_log_ei(
                &gp.view()?,
                &MatrixRef::new("candidates", &c, k, d)?,
                incumbent,
            )
        })
        .map_err(to_py_err)?;
    Ok(PyArray1::from_vec(py, out))
}

/// A fitted GP's factors, validated and copied once, scoring many batches
/// of candidates (the functions above re-validate and copy on every call).
#[pyclass(frozen, module = "optserve._sampler")]
struct GpScorer {
    gp: PreparedGp,
}

#[pymethods]
impl GpScorer {
    #[new]
    #[pyo3(signature = (x_train, alpha, chol, lengthscales, outputscale, y_mean, y_std))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        x_train: PyReadonlyArray2<'_, f64>,
        alpha: PyReadonlyArray1<'_, f64>,
        chol: PyReadonlyArray2<'_, f64>,
        lengthscales: PyReadonlyArray1<'_, f64>,
        outputscale: f64,
        y_mean: f64,
        y_std: f64,
    ) -> PyResult<Self> {
        let owned = OwnedFactors {
            x_train: matrix_c(&x_train),
            alpha: vector(&alpha),
            chol: matrix_c(&chol),
            lengthscales: vector(&lengthscales),
            outputscale,
            y_mean,
            y_std,
        };
        let gp = owned
            .view()
            .and_then(|view| PreparedGp::new(&view))
            .map_err(to_py_err)?;
        Ok(GpScorer { gp })
    }

    /// The input dimension `D`.
    #[getter]
    fn dim(&self) -> usize {
        self.gp.dim()
    }

    /// Posterior mean and variance at `candidates`, as `gp_posterior`.
    fn posterior<'py>(
        &self,
        py: Python<'py>,
        candidates: PyReadonlyArray2<'py, f64>,
    ) -> PyResult<MeanVar<'py>> {
        let (c, k, d) = matrix_c(&candidates);
        let gp = &self.gp;
        let (mean, var) = py
            .detach(move || gp.posterior(&MatrixRef::new("candidates", &c, k, d)?))
            .map_err(to_py_err)?;
        Ok((PyArray1::from_vec(py, mean), PyArray1::from_vec(py, var)))
    }

    /// Log expected improvement over `incumbent` at `candidates`, as `score_log_ei`.
    fn log_ei<'py>(
        &self,
        py: Python<'py>,
        candidates: PyReadonlyArray2<'py, f64>,
        incumbent: f64,
    ) -> PyResult<Bound<'py, PyArray1<f64>>> {
        let (c, k, d) = matrix_c(&candidates);
        let gp = &self.gp;
        let out = py
            .detach(move || gp.log_ei(&MatrixRef::new("candidates", &c, k, d)?, incumbent))
            .map_err(to_py_err)?;
        Ok(PyArray1::from_vec(py, out))
    }
}

/// Version of the compiled extension.
#[pyfunction]
fn version() -> &'static str {
    env!("CARGO_PKG_VERSION")
}

#[pymodule]
fn _sampler(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(version, m)?)?;
    m.add_function(wrap_pyfunction!(hit_and_run, m)?)?;
    m.add_function(wrap_pyfunction!(hit_and_run_int, m)?)?;
    m.add_function(wrap_pyfunction!(gp_posterior, m)?)?;
    m.add_function(wrap_pyfunction!(score_log_ei, m)?)?;
    m.add_class::<GpScorer>()?;
    Ok(())
}
