//! Stable-toolchain fuzzer for the SSE decoder (and the cache-key canonicaliser).
//!
//! `cargo run --release --example fuzz_sse -- [seconds] [corpus dir]` (default
//! `rust/fuzz/corpus/sse_decoder`, shared with the cargo-fuzz target) mutates the corpus inputs
//! (byte flips, inserts, deletes, splices of SSE tokens), cuts each input at random points and
//! checks, for every input: feeding in pieces gives exactly what feeding it whole gives; the
//! relayed bytes are the input minus the dropped tail; the dispatched events equal those of a
//! plain reference decoder below; the OpenAI facts do not depend on the cuts; held `[DONE]`
//! bytes plus output equal the plain output. JSON-looking inputs also go through the cache-key
//! canonicaliser (canonical form must be a fixed point). A panic or a broken check writes the
//! input to `<corpus>/crash-<n>` and exits non-zero.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

#[path = "../fuzz/checks.rs"]
mod checks;

use checks::{Rng, check};

const TOKENS: &[&[u8]] = &[
    b"data:",
    b"data: ",
    b"[DONE]",
    b"event: ",
    b"error",
    b"id: ",
    b"id",
    b"retry: 1",
    b":",
    b"\r",
    b"\n",
    b"\r\n",
    b"\n\n",
    b"\xEF\xBB\xBF",
    b"\xC3\xA9",
    b"\xE2\x82",
    b"\0",
    b"{\"usage\":{\"prompt_tokens\":1}}",
    b"\"finish_reason\":\"stop\"",
    b"\"model\":\"m\"",
    b"{\"choices\":[{\"delta\":{\"content\":\"x\"}}]}",
    b"\"error\":{",
    b"}",
    b"\"",
    b"\"a\":1,",
    b"\"b\":[2],",
    b",\"a\":{}",
    b"\\u00e9",
    b"1.5e3",
];

fn mutate(rng: &mut Rng, input: &mut Vec<u8>) {
    for _ in 0..=rng.below(4) {
        let at = rng.below(input.len() + 1);
        match rng.below(5) {
            0 if !input.is_empty() => {
                let i = rng.below(input.len());
                input[i] ^= 1 << rng.below(8);
            }
            1 if !input.is_empty() => {
                let end = (at + rng.below(8)).min(input.len());
                input.drain(at.min(end)..end);
            }
            2 => input.insert(at, u8::try_from(rng.below(256)).unwrap_or(0)),
            _ => {
                let token = TOKENS[rng.below(TOKENS.len())];
                input.splice(at..at, token.iter().copied());
            }
        }
    }
    input.truncate(4096);
}

fn load_corpus(dir: &Path) -> Vec<Vec<u8>> {
    let mut inputs: Vec<Vec<u8>> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| std::fs::read(e.ok()?.path()).ok())
                .collect()
        })
        .unwrap_or_default();
    inputs.push(Vec::new());
    inputs
}

fn main() {
    let mut args = std::env::args().skip(1);
    let seconds: u64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(10);
    let dir = PathBuf::from(
        args.next()
            .unwrap_or_else(|| "rust/fuzz/corpus/sse_decoder".into()),
    );
    let corpus = load_corpus(&dir);
    let mut rng = Rng(0x2545_F491_4F6C_DD1D ^ seconds);
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut runs: u64 = 0;
    std::panic::set_hook(Box::new(|_| {}));
    while Instant::now() < deadline {
        for _ in 0..256 {
            let mut input = corpus[rng.below(corpus.len())].clone();
            mutate(&mut rng, &mut input);
            let seed = rng.next();
            let outcome = catch_unwind(AssertUnwindSafe(|| check(&input, seed)));
            let failure = match outcome {
                Ok(Ok(())) => None,
                Ok(Err(msg)) => Some(msg),
                Err(_) => Some("panic".to_owned()),
            };
            runs += 1;
            if let Some(msg) = failure {
                let path = dir.join(format!("crash-{runs}"));
                std::fs::write(&path, &input).expect("corpus dir is writable");
                eprintln!(
                    "FAILED after {runs} inputs: {msg}\ninput saved to {}",
                    path.display()
                );
                std::process::exit(1);
            }
        }
    }
    println!(
        "fuzz_sse: {runs} inputs in {seconds} s, {} corpus seeds, no failure",
        corpus.len()
    );
}
