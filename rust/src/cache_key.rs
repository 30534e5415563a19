//! Cache keys: SHA-256 over a versioned prefix, a namespace and the canonical JSON of a request body.

mod canonical;
mod number;
mod strings;

use sha2::{Digest, Sha256};

pub use self::canonical::{MAX_DEPTH, canonicalize};
use crate::errors::Error;

/// Names the key format. It is hashed into every key, so a release that
/// changes canonicalisation must change it (and old keys simply stop matching).
pub const VERSION: &str = "fd2-cache-key/v1";

/// Turns request bodies into cache keys; built once per route.
#[derive(Clone, Debug)]
pub struct Keyer {
    /// Top-level member names left out of the key, sorted and unique.
    exclude: Vec<Box<str>>,
    /// `VERSION \0 namespace \0`: hashed before the canonical body.
    prefix: Vec<u8>,
    namespace: String,
}

impl Keyer {
    /// A keyer leaving out the top-level members named in `exclude`, and
    /// hashing `namespace` in (keys of different namespaces never meet).
    ///
    /// # Errors
    /// [`Error::CacheKey`] when `namespace` contains a NUL character.
    pub fn new<S: AsRef<str>>(
        exclude: impl IntoIterator<Item = S>,
        namespace: &str,
    ) -> Result<Self, Error> {
        if namespace.contains('\0') {
            return Err(Error::CacheKey("namespace contains NUL".to_owned()));
        }
        let mut exclude: Vec<Box<str>> = exclude.into_iter().map(|s| s.as_ref().into()).collect();
        exclude.sort();
        exclude.dedup();
        let prefix = [VERSION.as_bytes(), b"\0", namespace.as_bytes(), b"\0"].concat();
        Ok(Self {
            exclude,
            prefix,
            namespace: namespace.to_owned(),
        })
    }

    /// The excluded top-level names, sorted.
    #[must_use]
    pub fn exclude(&self) -> &[Box<str>] {
        &self.exclude
    }

    /// The namespace hashed into every key.
    #[must_use]
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The canonical form of `body` (excluded members left out).
    ///
    /// # Errors
    /// [`Error::CacheKey`] when `body` cannot be canonicalised.
    pub fn canonical(&self, body: &[u8]) -> Result<Vec<u8>, Error> {
        let mut out = Vec::with_capacity(body.len());
        canonicalize(body, &self.exclude, &mut out)?;
        Ok(out)
    }

    /// The key of `body`: 64 lowercase hex digits.
    ///
    /// # Errors
    /// [`Error::CacheKey`] when `body` cannot be canonicalised.
    pub fn key(&self, body: &[u8]) -> Result<String, Error> {
        let canonical = self.canonical(body)?;
        let digest = Sha256::new()
            .chain_update(&self.prefix)
            .chain_update(&canonical)
            .finalize();
        Ok(to_hex(&digest))
    }
}

fn to_hex(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 0xF)]));
    }
    out
}

#[cfg(test)]
mod tests;
