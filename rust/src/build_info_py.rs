//! `build_info()`: how this copy of fd2._native was built, as `fd2 --version` prints it.

use pyo3::prelude::*;
use pyo3::types::PyDict;

/// The crate version, rustc, target triple and Cargo profile this extension was built with.
#[pyfunction]
fn build_info(py: Python<'_>) -> PyResult<Bound<'_, PyDict>> {
    let info = PyDict::new(py);
    info.set_item("version", env!("CARGO_PKG_VERSION"))?;
    info.set_item("rustc", env!("FD2_BUILD_RUSTC"))?;
    info.set_item("target", env!("FD2_BUILD_TARGET"))?;
    // Cargo reports every release-like profile (release, profiling) as "release"; the
    // optimisation level and debug assertions tell them from a debug build.
    info.set_item("profile", env!("FD2_BUILD_PROFILE"))?;
    info.set_item("opt_level", env!("FD2_BUILD_OPT_LEVEL"))?;
    info.set_item(
        "debug_assertions",
        if cfg!(debug_assertions) { "on" } else { "off" },
    )?;
    Ok(info)
}

pub fn init_pymodule(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(build_info, m)?)
}
