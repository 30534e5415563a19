//! Python bindings for the PII scanner: `fd2._native.PiiScanner`, built once per route.

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use crate::errors::catch_panic;
use crate::pii::{KIND_NAMES, Kind, Scanner, WINDOW};

/// Texts at least this long are scanned with the GIL released.
const DETACH_FROM_BYTES: usize = 64 * 1024;

/// Finds PII in text (see docs/privacy.md).
#[pyclass(module = "fd2._native", name = "PiiScanner", frozen)]
pub struct PyPiiScanner {
    inner: Scanner,
}

#[pymethods]
impl PyPiiScanner {
    #[new]
    #[allow(clippy::needless_pass_by_value)] // pyo3 extracts a sequence argument as an owned Vec
    fn new(kinds: Vec<String>) -> PyResult<Self> {
        let mut parsed = Vec::with_capacity(kinds.len());
        for name in &kinds {
            let kind = Kind::from_name(name)
                .ok_or_else(|| PyValueError::new_err(format!("unknown PII kind {name:?}")))?;
            parsed.push(kind);
        }
        Ok(Self {
            inner: Scanner::new(&parsed),
        })
    }

    /// The matches in `text` as (kind, start, end), offsets in characters (str indices).
    fn scan(&self, py: Python<'_>, text: &str) -> PyResult<Vec<(&'static str, usize, usize)>> {
        let scanner = &self.inner;
        let work = || catch_panic(|| Ok(scanner.scan(text.as_bytes())));
        let found = if text.len() >= DETACH_FROM_BYTES {
            py.detach(work)
        } else {
            work()
        }?;
        if found.is_empty() {
            return Ok(Vec::new());
        }
        let ascii = text.is_ascii();
        let mut out = Vec::with_capacity(found.len());
        // Byte offsets to character offsets, in one forward walk.
        let (mut byte, mut chars) = (0usize, 0usize);
        let mut to_chars = |target: usize| {
            if ascii {
                return target;
            }
            chars += text[byte..target].chars().count();
            byte = target;
            chars
        };
        for m in found {
            let start = to_chars(m.start);
            let end = to_chars(m.end);
            out.push((m.kind.name(), start, end));
        }
        Ok(out)
    }
}

/// Registers the scanner, its kinds and its window on the extension module.
pub fn init_pymodule(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("PII_KINDS", KIND_NAMES.to_vec())?;
    m.add("PII_WINDOW", WINDOW)?;
    m.add_class::<PyPiiScanner>()
}
