//! Token counting with OpenAI's `o200k_base` and `cl100k_base` encodings, embedded at build time.

// The BPE itself is `tiktoken-rs`: a maintained Rust port of OpenAI's own
// tiktoken core that also embeds OpenAI's published rank files (their SHA-256
// is checked against the hashes OpenAI's `tiktoken` package expects, see
// tests). An encoder is built on first use of its encoding, once per process,
// so importing the extension costs nothing.

use std::sync::OnceLock;

use tiktoken_rs::CoreBPE;

use crate::errors::Error;

/// The encodings fd2 can count with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Encoding {
    O200kBase,
    Cl100kBase,
}

/// Encoding used for model names no family below matches: the one of every
/// current OpenAI chat model.
pub const FALLBACK: Encoding = Encoding::O200kBase;

// Checked in order: the more specific `gpt-4o` / `gpt-4.1` before `gpt-4`.
const FAMILIES: &[(&str, Encoding)] = &[
    ("gpt-5", Encoding::O200kBase),
    ("gpt-4.1", Encoding::O200kBase),
    ("gpt-4.5", Encoding::O200kBase),
    ("gpt-4o", Encoding::O200kBase),
    ("chatgpt-4o", Encoding::O200kBase),
    ("gpt-oss", Encoding::O200kBase),
    ("o1", Encoding::O200kBase),
    ("o3", Encoding::O200kBase),
    ("o4", Encoding::O200kBase),
    ("codex-", Encoding::O200kBase),
    ("gpt-4", Encoding::Cl100kBase),
    ("gpt-3.5", Encoding::Cl100kBase),
    ("gpt-35", Encoding::Cl100kBase),
    ("text-embedding-", Encoding::Cl100kBase),
    ("davinci-002", Encoding::Cl100kBase),
    ("babbage-002", Encoding::Cl100kBase),
];

impl Encoding {
    /// The encoding called `name` (as tiktoken names it).
    ///
    /// # Errors
    /// [`Error::UnknownEncoding`] for any other name.
    pub fn from_name(name: &str) -> Result<Self, Error> {
        match name {
            "o200k_base" => Ok(Self::O200kBase),
            "cl100k_base" => Ok(Self::Cl100kBase),
            _ => Err(Error::UnknownEncoding(name.chars().take(64).collect())),
        }
    }

    /// tiktoken's name for this encoding.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::O200kBase => "o200k_base",
            Self::Cl100kBase => "cl100k_base",
        }
    }

    /// The encoding of `model`'s family; [`FALLBACK`] when no family matches.
    /// Fine-tune names (`ft:gpt-4o-mini:org::id`) and a provider prefix
    /// (`openai/gpt-4o`) count as their base model; case is ignored.
    #[must_use]
    pub fn for_model(model: &str) -> Self {
        Self::family_of(model).unwrap_or(FALLBACK)
    }

    /// The encoding of `model`'s family, if a known family matches.
    #[must_use]
    pub fn family_of(model: &str) -> Option<Self> {
        let lower = model.trim().to_ascii_lowercase();
        let mut name = lower.as_str();
        name = name.strip_prefix("ft:").unwrap_or(name);
        name = name.strip_prefix("openai/").unwrap_or(name);
        FAMILIES
            .iter()
            .find(|(prefix, _)| name.starts_with(prefix))
            .map(|&(_, encoding)| encoding)
    }

    const fn cell(self) -> &'static OnceLock<CoreBPE> {
        static O200K: OnceLock<CoreBPE> = OnceLock::new();
        static CL100K: OnceLock<CoreBPE> = OnceLock::new();
        match self {
            Self::O200kBase => &O200K,
            Self::Cl100kBase => &CL100K,
        }
    }

    /// The encoder has been built (the first use builds it: ~0.1-0.3 s).
    #[must_use]
    pub fn is_loaded(self) -> bool {
        self.cell().get().is_some()
    }

    fn bpe(self) -> &'static CoreBPE {
        // The embedded files are fixed at build time and decoded by tests, so
        // a failure here is a broken build, not an input error.
        self.cell().get_or_init(|| match self {
            Self::O200kBase => tiktoken_rs::o200k_base().expect("embedded o200k_base ranks decode"),
            Self::Cl100kBase => {
                tiktoken_rs::cl100k_base().expect("embedded cl100k_base ranks decode")
            }
        })
    }

    /// Token ids of `text`, special-token-looking text encoded as plain text
    /// (tiktoken's `encode(text, disallowed_special=())`).
    #[must_use]
    pub fn encode(self, text: &str) -> Vec<u32> {
        self.bpe().encode_ordinary(text)
    }

    /// Number of tokens of `text` (same rules as [`encode`](Self::encode)).
    #[must_use]
    pub fn count(self, text: &str) -> usize {
        self.bpe().encode_ordinary(text).len()
    }

    /// Sum of the token counts of `texts`, each encoded on its own.
    #[must_use]
    pub fn count_all<'a>(self, texts: impl IntoIterator<Item = &'a str>) -> usize {
        let bpe = self.bpe();
        texts
            .into_iter()
            .map(|text| bpe.encode_ordinary(text).len())
            .sum()
    }

    /// Decodes token ids back to bytes (tests and debugging).
    ///
    /// # Errors
    /// [`Error::UnknownToken`] for an id outside the encoding.
    pub fn decode(self, ids: &[u32]) -> Result<Vec<u8>, Error> {
        self.bpe()
            .decode_bytes(ids)
            .map_err(|err| Error::UnknownToken(err.token))
    }
}

#[cfg(test)]
mod tests;
