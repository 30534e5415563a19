//! `fd2._native.presented_credential`: `fd2.auth.credentials`' credential search, one call.

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyString};

use crate::credentials::presented;

/// The credential among an ASGI scope's `headers` (`None` without one); `ValueError` for one
/// that must be refused. Names and values must be bytes, as ASGI servers give them.
#[pyfunction]
fn presented_credential<'py>(
    headers: &Bound<'py, PyAny>,
) -> PyResult<Option<Bound<'py, PyString>>> {
    let py = headers.py();
    let mut pairs: Vec<(Bound<'py, PyBytes>, Bound<'py, PyBytes>)> = Vec::new();
    for item in headers.try_iter()? {
        pairs.push(item?.extract()?);
    }
    let found = presented(
        pairs
            .iter()
            .map(|(name, value)| (name.as_bytes(), value.as_bytes())),
    )
    .map_err(|_| PyValueError::new_err("malformed credential"))?;
    // Printable ASCII was checked: always valid UTF-8.
    Ok(found
        .map(|credential| PyString::new(py, std::str::from_utf8(credential).unwrap_or_default())))
}

pub fn init_pymodule(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(presented_credential, m)?)
}
