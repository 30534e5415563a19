//! fd2._native: the gateway's Rust extension; declares the modules and registers each area on import.

mod build_info_py;
pub mod cache_key;
mod cache_key_py;
pub mod credentials;
mod credentials_py;
pub mod errors;
pub mod eventstream;
mod eventstream_py;
pub mod gcra;
mod gcra_plan_py;
mod gcra_py;
mod key_digest_py;
pub mod pii;
mod pii_py;
pub mod ratelimit_headers;
pub mod sse;
mod sse_py;
pub mod tokens;
mod tokens_py;

use pyo3::prelude::*;

/// Native hot paths of fd2.
#[pymodule]
mod _native {
    use pyo3::prelude::*;

    #[pymodule_init]
    fn init(m: &Bound<'_, PyModule>) -> PyResult<()> {
        crate::errors::init_pymodule(m)?;
        crate::sse_py::init_pymodule(m)?;
        crate::eventstream_py::init_pymodule(m)?;
        crate::tokens_py::init_pymodule(m)?;
        crate::cache_key_py::init_pymodule(m)?;
        crate::pii_py::init_pymodule(m)?;
        crate::key_digest_py::init_pymodule(m)?;
        crate::credentials_py::init_pymodule(m)?;
        crate::gcra_py::init_pymodule(m)?;
        crate::build_info_py::init_pymodule(m)
    }
}
