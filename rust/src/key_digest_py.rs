//! `fd2._native.KeyDigester`: HMAC-SHA-256 of API keys under the gateway's pepper, keyed once.
//!
//! Every request with an API key hashes it to find its record. Python's `hmac.digest` sets the
//! key up again on each call through OpenSSL (~24k instructions for a 47-byte key); here the
//! keyed state is made once per pepper and each digest clones it (~3k).

use hmac::{Hmac, Mac};
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// HMAC-SHA-256 under one key (the pepper), set up once.
#[pyclass(module = "fd2._native", name = "KeyDigester", frozen)]
pub struct PyKeyDigester {
    keyed: HmacSha256,
}

#[pymethods]
impl PyKeyDigester {
    #[new]
    fn new(pepper: &[u8]) -> Self {
        // HMAC takes a key of any length (longer ones are hashed first): this cannot fail.
        let keyed = <HmacSha256 as Mac>::new_from_slice(pepper).expect("HMAC takes any key length");
        Self { keyed }
    }

    /// The 32-byte HMAC-SHA-256 of `message` (an API key as text, UTF-8 encoded).
    fn digest<'py>(&self, py: Python<'py>, message: &str) -> Bound<'py, PyBytes> {
        let mut mac = self.keyed.clone();
        mac.update(message.as_bytes());
        PyBytes::new(py, &mac.finalize().into_bytes())
    }

    #[allow(clippy::unused_self)] // a method: Python calls it on the instance
    fn __repr__(&self) -> &'static str {
        // Never the pepper.
        "<KeyDigester>"
    }
}

pub fn init_pymodule(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyKeyDigester>()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_rfc_4231_test_case_2() {
        let digester = PyKeyDigester::new(b"Jefe");
        let mut mac = digester.keyed.clone();
        mac.update(b"what do ya want for nothing?");
        let expected: [u8; 32] = [
            0x5b, 0xdc, 0xc1, 0x46, 0xbf, 0x60, 0x75, 0x4e, 0x6a, 0x04, 0x24, 0x26, 0x08, 0x95,
            0x75, 0xc7, 0x5a, 0x00, 0x3f, 0x08, 0x9d, 0x27, 0x39, 0x83, 0x9d, 0xec, 0x58, 0xb9,
            0x64, 0xec, 0x38, 0x43,
        ];
        assert_eq!(mac.finalize().into_bytes().as_slice(), expected.as_slice());
    }
}
