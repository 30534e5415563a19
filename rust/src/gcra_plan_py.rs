//! `fd2._native.GcraPlan`: one route's fixed buckets, planned once. A request is then one call
//! that decides, stores the new TATs and returns OpenAI's `x-ratelimit-*` headers ready to send
//! (`fd2.pipeline.limits` did the same in ~3 µs of Python and spec reads per request).

use std::sync::atomic::Ordering;

use pyo3::IntoPyObjectExt;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyTuple};

use std::fmt::Write;

use crate::gcra::{Bucket, adjusted, decide, saturate};
use crate::gcra_py::Tat;
use crate::ratelimit_headers::{Text, closest_to_empty, write_duration};

/// Buckets decided without allocating (a route, its project and a caller: a handful).
const INLINE: usize = 8;

/// A limit spec as read from Python: its storage key, what it counts and its parameters.
pub struct Spec {
    pub key: String,
    pub tokens: bool,
    pub bucket: Bucket,
}

/// The three headers of one kind (requests or tokens): limit, remaining, reset.
struct HeaderNames {
    limit: Py<PyBytes>,
    remaining: Py<PyBytes>,
    reset: Py<PyBytes>,
}

impl HeaderNames {
    fn new(py: Python<'_>, kind: &str) -> Self {
        let name = |what: &str| PyBytes::new(py, format!("x-ratelimit-{what}-{kind}").as_bytes());
        Self {
            limit: name("limit").unbind(),
            remaining: name("remaining").unbind(),
            reset: name("reset").unbind(),
        }
    }
}

#[pyclass(module = "fd2._native", name = "GcraPlan", frozen)]
pub struct PyGcraPlan {
    tats: Vec<Tat>,
    buckets: Vec<Bucket>,
    tokens: Vec<bool>,
    limits: Vec<i64>,
    /// Each bucket's limit as header text, rendered once.
    limit_texts: Vec<Py<PyBytes>>,
    requests_names: HeaderNames,
    tokens_names: HeaderNames,
}

impl PyGcraPlan {
    pub fn new(py: Python<'_>, specs: &[Spec], tats: Vec<Tat>) -> Self {
        Self {
            tats,
            buckets: specs.iter().map(|spec| spec.bucket).collect(),
            tokens: specs.iter().map(|spec| spec.tokens).collect(),
            limits: specs.iter().map(|spec| spec.bucket.limit).collect(),
            limit_texts: specs
                .iter()
                .map(|spec| PyBytes::new(py, spec.bucket.limit.to_string().as_bytes()).unbind())
                .collect(),
            requests_names: HeaderNames::new(py, "requests"),
            tokens_names: HeaderNames::new(py, "tokens"),
        }
    }

    /// `admit` through `decide` itself: a refusal's details, or more buckets than `INLINE`.
    fn admit_any<'py>(
        &self,
        py: Python<'py>,
        tokens: i64,
        now: i64,
    ) -> PyResult<Bound<'py, PyAny>> {
        let stored: Vec<i64> = self
            .tats
            .iter()
            .map(|tat| tat.load(Ordering::Relaxed))
            .collect();
        let costs: Vec<i64> = self
            .tokens
            .iter()
            .map(|&counts_tokens| if counts_tokens { tokens } else { 1 })
            .collect();
        let decision = decide(&stored, &self.buckets, &costs, now);
        if !decision.allowed {
            return (
                decision.retry_after_us,
                decision.remaining,
                decision.reset_us,
            )
                .into_bound_py_any(py);
        }
        for (tat, new_tat) in self.tats.iter().zip(&decision.new_tats) {
            tat.store(*new_tat, Ordering::Relaxed);
        }
        let headers = PyList::empty(py);
        let kinds = [(false, &self.requests_names), (true, &self.tokens_names)];
        for (counts_tokens, names) in kinds {
            let of_kind = (0..self.tokens.len()).filter(|&i| self.tokens[i] == counts_tokens);
            if let Some(index) = closest_to_empty(of_kind, &decision.remaining, &self.limits) {
                let (remaining, reset_us) = (decision.remaining[index], decision.reset_us[index]);
                for header in self.header_triple(py, names, index, remaining, reset_us)? {
                    headers.append(header)?;
                }
            }
        }
        Ok(headers.into_any())
    }

    fn header_triple<'py>(
        &self,
        py: Python<'py>,
        names: &HeaderNames,
        index: usize,
        remaining: i64,
        reset_us: i64,
    ) -> PyResult<[Bound<'py, PyTuple>; 3]> {
        let mut number = Text::default();
        let _ = write!(number, "{remaining}"); // 20 digits at most: it fits
        let mut reset = Text::default();
        write_duration(&mut reset, reset_us);
        let pair = |name: &Py<PyBytes>, value: Bound<'py, PyBytes>| {
            PyTuple::new(py, [name.bind(py).clone(), value])
        };
        Ok([
            pair(&names.limit, self.limit_texts[index].bind(py).clone())?,
            pair(&names.remaining, PyBytes::new(py, number.as_bytes()))?,
            pair(&names.reset, PyBytes::new(py, reset.as_bytes()))?,
        ])
    }
}

#[pymethods]
impl PyGcraPlan {
    /// Decides a request at `now` µs, costing one per requests bucket and `tokens` per tokens
    /// bucket. Admitted: stores the new TATs and returns the `x-ratelimit-*` headers (a list of
    /// `(name, value)`). Refused: changes nothing and returns `(retry_after_us, remaining,
    /// reset_us)`, one entry per bucket.
    fn admit<'py>(&self, py: Python<'py>, tokens: i64, now: i64) -> PyResult<Bound<'py, PyAny>> {
        let count = self.tats.len();
        if count > INLINE {
            return self.admit_any(py, tokens, now);
        }
        // `decide`'s arithmetic for an admission, without its vectors: the usual answer costs
        // no allocation but the Python objects it returns.
        let mut new_tats = [0_i128; INLINE];
        let now_wide = i128::from(now);
        for (index, slot) in new_tats.iter_mut().enumerate().take(count) {
            let stored = self.tats[index].load(Ordering::Relaxed);
            let Bucket { limit, interval_us } = self.buckets[index];
            let interval = i128::from(interval_us);
            let cost = if self.tokens[index] { tokens } else { 1 };
            let new_tat = i128::from(stored.max(now)) + i128::from(cost) * interval;
            if new_tat - i128::from(limit) * interval - now_wide > 0 {
                return self.admit_any(py, tokens, now); // refused: `decide` says why
            }
            *slot = new_tat;
        }
        // Per kind (requests, tokens): the bucket closest to empty, its remaining and reset.
        let mut closest: [Option<(usize, i64, i64)>; 2] = [None, None];
        for (index, &new_tat) in new_tats.iter().enumerate().take(count) {
            self.tats[index].store(saturate(new_tat), Ordering::Relaxed);
            let Bucket { limit, interval_us } = self.buckets[index];
            let interval = i128::from(interval_us);
            let left = i128::from(limit) * interval - (new_tat - now_wide);
            let remaining = if left > 0 {
                saturate(left / interval)
            } else {
                0
            };
            let kind = usize::from(self.tokens[index]);
            let closer = match closest[kind] {
                Some((best, best_remaining, _)) => {
                    i128::from(remaining) * i128::from(self.limits[best])
                        < i128::from(best_remaining) * i128::from(limit)
                }
                None => true,
            };
            if closer {
                closest[kind] = Some((index, remaining, saturate(new_tat - now_wide)));
            }
        }
        let headers = PyList::empty(py);
        for (names, chosen) in [&self.requests_names, &self.tokens_names]
            .into_iter()
            .zip(closest)
        {
            if let Some((index, remaining, reset_us)) = chosen {
                for header in self.header_triple(py, names, index, remaining, reset_us)? {
                    headers.append(header)?;
                }
            }
        }
        Ok(headers.into_any())
    }

    /// Charges `delta` more tokens to every tokens bucket (negative: gives them back).
    fn settle(&self, delta: i64, now: i64) {
        if delta == 0 {
            return;
        }
        for ((tat, bucket), &counts_tokens) in self.tats.iter().zip(&self.buckets).zip(&self.tokens)
        {
            if counts_tokens {
                let stored = tat.load(Ordering::Relaxed);
                tat.store(adjusted(stored, *bucket, delta, now), Ordering::Relaxed);
            }
        }
    }

    /// Whether any bucket counts tokens (the request's estimate is then needed).
    #[getter]
    fn counts_tokens(&self) -> bool {
        self.tokens.contains(&true)
    }

    fn __len__(&self) -> usize {
        self.tats.len()
    }
}
