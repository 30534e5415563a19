//! cargo-fuzz (libFuzzer, nightly) target: the SSE decoder and cache-key canonicaliser against
//! the reference in `../checks.rs`. `cd rust/fuzz && cargo +nightly fuzz run sse_decoder`.

#![no_main]

#[path = "../checks.rs"]
mod checks;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The first bytes also pick the cut points, so libFuzzer explores splits too.
    let seed = data
        .iter()
        .take(8)
        .fold(0x9E37_79B9_7F4A_7C15_u64, |acc, &b| acc.rotate_left(8) ^ u64::from(b));
    if let Err(failure) = checks::check(data, seed) {
        panic!("{failure}");
    }
});
