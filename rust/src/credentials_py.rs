//! `fd2._native.presented_credential`: `fd2.auth.credentials`' credential search, one call.

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyString};

use std::ops::Range;

use crate::credentials::{agreed, candidate, checked};

/// The credential among an ASGI scope's `headers` (`None` without one); `ValueError` for one
/// that must be refused. Names and values must be bytes, as ASGI servers give them.
#[pyfunction]
fn presented_credential<'py>(
    headers: &Bound<'py, PyAny>,
) -> PyResult<Option<Bound<'py, PyString>>> {
    let refused = |_| PyValueError::new_err("malformed credential");
    // The header value holding the credential found so far, and where in it: kept alive (and
    // read in place) while the rest are searched. No copy, no allocation.
    let mut found: Option<(Bound<'py, PyBytes>, Range<usize>)> = None;
    for item in headers.try_iter()? {
        let (name, value): (Bound<'py, PyBytes>, Bound<'py, PyBytes>) = item?.extract()?;
        let Some(range) = candidate(name.as_bytes(), value.as_bytes()).map_err(refused)? else {
            continue;
        };
        let before = found
            .as_ref()
            .map(|(held, at)| &held.as_bytes()[at.clone()]);
        agreed(before, &value.as_bytes()[range.clone()]).map_err(refused)?;
        found = Some((value, range));
    }
    let Some((held, range)) = found else {
        return Ok(None);
    };
    let credential = checked(&held.as_bytes()[range]).map_err(refused)?;
    // Printable ASCII was checked: always valid UTF-8.
    let text = std::str::from_utf8(credential).unwrap_or_default();
    Ok(Some(PyString::new(headers.py(), text)))
}

pub fn init_pymodule(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(presented_credential, m)?)
}
