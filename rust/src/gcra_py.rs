//! `fd2._native.GcraBuckets`: the in-process limiter's bucket store and decisions in one call.
//!
//! A limited request asked Python for ~40k instructions of loops over its buckets (stored TATs,
//! the decision, the TATs written back); here it is one call that reads each spec's `key`,
//! `limit` and `interval_us` and keeps the TATs in a Rust map.

use std::collections::HashMap;

use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::PyTuple;

use crate::gcra::{Bucket, adjusted, decide};

const PRUNE_AT: usize = 100_000;

type Outcome = (bool, i64, Vec<i64>, Vec<i64>);

/// Buckets by storage key, each its theoretical arrival time in µs.
#[pyclass(module = "fd2._native", name = "GcraBuckets")]
#[derive(Default)]
pub struct PyGcraBuckets {
    tats: HashMap<String, i64>,
}

fn read_specs(specs: &Bound<'_, PyTuple>) -> PyResult<Vec<(String, Bucket)>> {
    let py = specs.py();
    let mut read = Vec::with_capacity(specs.len());
    for spec in specs.iter() {
        let key: String = spec.getattr(intern!(py, "key"))?.extract()?;
        let limit: i64 = spec.getattr(intern!(py, "limit"))?.extract()?;
        let interval_us: i64 = spec.getattr(intern!(py, "interval_us"))?.extract()?;
        read.push((key, Bucket { limit, interval_us }));
    }
    Ok(read)
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
            .map(|(key, _)| self.tats.get(key).copied().unwrap_or(now))
            .collect();
        let buckets: Vec<Bucket> = specs.iter().map(|(_, bucket)| *bucket).collect();
        let decision = decide(&tats, &buckets, &costs, now);
        if decision.allowed {
            for ((key, _), tat) in specs.into_iter().zip(&decision.new_tats) {
                self.tats.insert(key, *tat);
            }
            if self.tats.len() > PRUNE_AT {
                // A TAT in the past is a full bucket: the same as no entry at all.
                self.tats.retain(|_, tat| *tat > now);
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
        for ((key, bucket), delta) in read_specs(specs)?.into_iter().zip(deltas) {
            if delta != 0 {
                let stored = self.tats.get(&key).copied().unwrap_or(now);
                self.tats.insert(key, adjusted(stored, bucket, delta, now));
            }
        }
        Ok(())
    }

    fn __len__(&self) -> usize {
        self.tats.len()
    }
}

pub fn init_pymodule(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyGcraBuckets>()
}
