//! Python bindings for token counting: `encode`, `count_tokens`, `count_tokens_all`, `encoding_for_model`.

// pyo3 hands `#[pyfunction]` arguments over by value (owned extractions).
#![allow(clippy::needless_pass_by_value)]

use pyo3::prelude::*;
use pyo3::pybacked::PyBackedStr;
use pyo3::types::PyBytes;

use crate::errors::{Error, catch_panic};
use crate::tokens::Encoding;

/// Inputs at least this long (in UTF-8 bytes) are encoded with the GIL
/// released: about 4K tokens, tens of microseconds of work, well above the
/// cost of detaching. A first use (building the encoder) always detaches.
const DETACH_FROM_BYTES: usize = 16 * 1024;

/// Runs `work` on `encoding`, detached from the interpreter when it is large
/// enough to matter; a panic becomes a `NativeError`.
fn run<T: Send>(
    py: Python<'_>,
    encoding: &str,
    size: usize,
    work: impl FnOnce(Encoding) -> T + Send,
) -> PyResult<T> {
    let encoding = Encoding::from_name(encoding)?;
    let guarded = || catch_panic(|| Ok::<_, Error>(work(encoding)));
    let result = if size >= DETACH_FROM_BYTES || !encoding.is_loaded() {
        py.detach(guarded)
    } else {
        guarded()
    };
    Ok(result?)
}

/// Token ids of `text`; text that looks like a special token is plain text.
#[pyfunction]
#[pyo3(signature = (text, encoding = "o200k_base"))]
fn encode(py: Python<'_>, text: PyBackedStr, encoding: &str) -> PyResult<Vec<u32>> {
    run(py, encoding, text.len(), |enc| enc.encode(&text))
}

/// Number of tokens of `text` (same rules as `encode`).
#[pyfunction]
#[pyo3(signature = (text, encoding = "o200k_base"))]
fn count_tokens(py: Python<'_>, text: PyBackedStr, encoding: &str) -> PyResult<usize> {
    run(py, encoding, text.len(), |enc| enc.count(&text))
}

/// Sum of the token counts of every text, each encoded on its own.
#[pyfunction]
#[pyo3(signature = (texts, encoding = "o200k_base"))]
fn count_tokens_all(py: Python<'_>, texts: Vec<PyBackedStr>, encoding: &str) -> PyResult<usize> {
    let size = texts.iter().map(|text| text.len()).sum();
    run(py, encoding, size, |enc| {
        enc.count_all(texts.iter().map(|text| &**text))
    })
}

/// The bytes the token ids stand for.
#[pyfunction]
#[pyo3(signature = (ids, encoding = "o200k_base"))]
fn decode_tokens<'py>(
    py: Python<'py>,
    ids: Vec<u32>,
    encoding: &str,
) -> PyResult<Bound<'py, PyBytes>> {
    let bytes = run(py, encoding, ids.len() * 4, |enc| enc.decode(&ids))??;
    Ok(PyBytes::new(py, &bytes))
}

/// The encoding of `model`'s family (`o200k_base` for unknown models).
#[pyfunction]
fn encoding_for_model(model: &str) -> &'static str {
    Encoding::for_model(model).name()
}

/// Whether `encoding`'s encoder has been built (it is built on first use, never at import).
#[pyfunction]
fn encoding_loaded(encoding: &str) -> PyResult<bool> {
    Ok(Encoding::from_name(encoding)?.is_loaded())
}

/// Registers the token functions on the extension module.
pub fn init_pymodule(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(encode, m)?)?;
    m.add_function(wrap_pyfunction!(count_tokens, m)?)?;
    m.add_function(wrap_pyfunction!(count_tokens_all, m)?)?;
    m.add_function(wrap_pyfunction!(decode_tokens, m)?)?;
    m.add_function(wrap_pyfunction!(encoding_for_model, m)?)?;
    m.add_function(wrap_pyfunction!(encoding_loaded, m)?)
}
