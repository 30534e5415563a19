//! Python bindings for cache keys: `fd2._native.CacheKeyer`, built once per route.

use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::cache_key::{Keyer, VERSION};
use crate::errors::catch_panic;

/// Bodies at least this large are canonicalised with the GIL released
/// (about 20 µs of work; smaller ones cost less than detaching).
const DETACH_FROM_BYTES: usize = 32 * 1024;

/// Turns JSON request bodies into stable cache keys (see docs/native.md).
#[pyclass(module = "fd2._native", name = "CacheKeyer", frozen)]
pub struct PyCacheKeyer {
    inner: Keyer,
}

impl PyCacheKeyer {
    fn run<T: Send>(
        &self,
        py: Python<'_>,
        body: &[u8],
        work: impl FnOnce(&Keyer, &[u8]) -> Result<T, crate::errors::Error> + Send,
    ) -> PyResult<T> {
        let keyer = &self.inner;
        let guarded = || catch_panic(|| work(keyer, body));
        let result = if body.len() >= DETACH_FROM_BYTES {
            py.detach(guarded)
        } else {
            guarded()
        };
        Ok(result?)
    }
}

#[pymethods]
impl PyCacheKeyer {
    #[new]
    #[pyo3(signature = (*, exclude = Vec::new(), namespace = ""))]
    fn new(exclude: Vec<String>, namespace: &str) -> PyResult<Self> {
        Ok(Self {
            inner: Keyer::new(exclude, namespace)?,
        })
    }

    /// The cache key of `body`: 64 lowercase hex digits.
    fn key(&self, py: Python<'_>, body: &[u8]) -> PyResult<String> {
        self.run(py, body, Keyer::key)
    }

    /// The canonical JSON of `body`, excluded members left out.
    fn canonical<'py>(&self, py: Python<'py>, body: &[u8]) -> PyResult<Bound<'py, PyBytes>> {
        let out = self.run(py, body, Keyer::canonical)?;
        Ok(PyBytes::new(py, &out))
    }

    /// The excluded top-level member names, sorted.
    #[getter]
    fn exclude(&self) -> Vec<&str> {
        self.inner.exclude().iter().map(|name| &**name).collect()
    }

    /// The namespace hashed into every key.
    #[getter]
    fn namespace(&self) -> &str {
        self.inner.namespace()
    }
}

/// Registers the cache-key class and its format version on the extension module.
pub fn init_pymodule(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("CACHE_KEY_VERSION", VERSION)?;
    m.add_class::<PyCacheKeyer>()
}
