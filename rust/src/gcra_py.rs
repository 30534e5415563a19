//! `fd2._native.GcraBuckets`: the in-process limiter's bucket store and decisions in one call.
//!
//! A limited request asked Python for ~40k instructions of loops over its buckets (stored TATs,
//! the decision, the TATs written back); here it is one call that reads each spec's `key`,
//! `limit` and `interval_us` and keeps the TATs in a Rust map. A route's fixed buckets can be
//! planned once (`plan`, `fd2._native.GcraPlan`): no spec is read or key hashed per request.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::PyTuple;

use crate::gcra::{Bucket, adjusted, decide};
use crate::gcra_plan_py::{PyGcraPlan, Spec};

const PRUNE_AT: usize = 100_000;
/// A bucket never used: `decide` and `adjusted` treat it as `now` (a full bucket).
pub const UNUSED: i64 = i64::MIN;

type Outcome = (bool, i64, Vec<i64>, Vec<i64>);
/// One bucket's TAT, shared by the store and the plans that name the bucket.
pub type Tat = Arc<AtomicI64>;

/// Buckets by storage key, each its theoretical arrival time in µs.
#[pyclass(module = "fd2._native", name = "GcraBuckets")]
#[derive(Default)]
pub struct PyGcraBuckets {
    tats: HashMap<String, Tat>,
}

pub fn read_specs(specs: &Bound<'_, PyTuple>) -> PyResult<Vec<Spec>> {
    let py = specs.py();
    let mut read = Vec::with_capacity(specs.len());
    for spec in specs.iter() {
        let key: String = spec.getattr(intern!(py, "key"))?.extract()?;
        let kind: String = spec.getattr(intern!(py, "kind"))?.extract()?;
        let limit: i64 = spec.getattr(intern!(py, "limit"))?.extract()?;
        let interval_us: i64 = spec.getattr(intern!(py, "interval_us"))?.extract()?;
        read.push(Spec {
            key,
            tokens: kind == "tokens",
            bucket: Bucket { limit, interval_us },
        });
    }
    Ok(read)
}

impl PyGcraBuckets {
    fn stored(&self, key: &str, now: i64) -> i64 {
        self.tats
            .get(key)
            .map_or(now, |tat| tat.load(Ordering::Relaxed))
    }

    fn store(&mut self, key: String, tat: i64) {
        self.tats
            .entry(key)
            .or_default()
            .store(tat, Ordering::Relaxed);
    }
}

#[pymethods]
impl PyGcraBuckets {
    #[new]
    fn new() -> Self {
        Self::default()
    }

    /// Decides a request costing `costs` (one per spec) at `now` µs; stores the new TATs when
    /// admitted. Returns `(allowed, retry_after_us, remaining, reset_us)`.
    #[allow(clippy::needless_pass_by_value)] // PyO3 extracts a Python list into a Vec
    fn acquire(
        &mut self,
        specs: &Bound<'_, PyTuple>,
        costs: Vec<i64>,
        now: i64,
    ) -> PyResult<Outcome> {
        let specs = read_specs(specs)?;
        if specs.len() != costs.len() {
            return Err(pyo3::exceptions::PyValueError::new_err("one cost per spec"));
        }
        let tats: Vec<i64> = specs
            .iter()
            .map(|spec| self.stored(&spec.key, now))
            .collect();
        let buckets: Vec<Bucket> = specs.iter().map(|spec| spec.bucket).collect();
        let decision = decide(&tats, &buckets, &costs, now);
        if decision.allowed {
            for (spec, tat) in specs.into_iter().zip(&decision.new_tats) {
                self.store(spec.key, *tat);
            }
            if self.tats.len() > PRUNE_AT {
                // A TAT in the past is a full bucket: the same as no entry at all. A planned
                // bucket stays (its plan holds it), so plans and the store never disagree.
                self.tats.retain(|_, tat| {
                    Arc::strong_count(tat) > 1 || tat.load(Ordering::Relaxed) > now
                });
            }
        }
        Ok((
            decision.allowed,
            decision.retry_after_us,
            decision.remaining,
            decision.reset_us,
        ))
    }

    /// Charges `deltas` more units (negative: gives units back), one per spec, at `now` µs.
    fn adjust(&mut self, specs: &Bound<'_, PyTuple>, deltas: Vec<i64>, now: i64) -> PyResult<()> {
        for (spec, delta) in read_specs(specs)?.into_iter().zip(deltas) {
            if delta != 0 {
                let stored = self.stored(&spec.key, now);
                self.store(spec.key, adjusted(stored, spec.bucket, delta, now));
            }
        }
        Ok(())
    }

    /// These buckets, fixed for a route: decided per request without reading a spec or
    /// hashing a key (`fd2._native.GcraPlan`). They share their TATs with this store.
    fn plan(&mut self, specs: &Bound<'_, PyTuple>) -> PyResult<PyGcraPlan> {
        let read = read_specs(specs)?;
        let tats = read
            .iter()
            .map(|spec| {
                Arc::clone(
                    self.tats
                        .entry(spec.key.clone())
                        .or_insert_with(|| Arc::new(AtomicI64::new(UNUSED))),
                )
            })
            .collect();
        Ok(PyGcraPlan::new(specs.py(), &read, tats))
    }

    fn __len__(&self) -> usize {
        self.tats.len()
    }
}

pub fn init_pymodule(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyGcraBuckets>()?;
    m.add_class::<PyGcraPlan>()
}
