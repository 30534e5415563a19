//! Stable-toolchain fuzzer for the SSE decoder (and the cache-key canonicaliser).
//!
//! `cargo run --release --example fuzz_sse -- [seconds] [corpus dir]` mutates the corpus inputs
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

use _native::cache_key::Keyer;
use _native::sse::{Event, Options, SseFramer};

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

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, bound: usize) -> usize {
        usize::try_from(self.next() % (bound.max(1) as u64)).unwrap_or(0)
    }
}

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

/// One-shot WHATWG reading of a whole stream: the events, and the bytes before the tail.
fn reference(original: &[u8]) -> (Vec<Event>, usize) {
    let bom = if original.starts_with(b"\xEF\xBB\xBF") {
        3
    } else {
        0
    };
    let stream = &original[bom..];
    let (mut events, mut consumed, mut pos, mut start) = (Vec::new(), 0, 0, 0);
    let mut data: Option<Vec<&[u8]>> = None;
    let (mut kind, mut last_id) = (Vec::new(), Vec::new());
    while pos < stream.len() {
        let end = match stream[pos] {
            b'\r' if stream.get(pos + 1) == Some(&b'\n') => pos + 2,
            b'\n' | b'\r' => pos + 1,
            _ => {
                pos += 1;
                continue;
            }
        };
        let line = &stream[start..pos];
        pos = end;
        start = end;
        if line.is_empty() {
            consumed = end;
            if let Some(values) = data.take() {
                let event_type = std::mem::take(&mut kind);
                let data = values.join(&b'\n');
                events.push(Event {
                    event_type,
                    data,
                    last_event_id: last_id.clone(),
                });
            }
            kind.clear();
            continue;
        }
        if line[0] == b':' {
            continue;
        }
        let (name, value) = match line.iter().position(|&b| b == b':') {
            Some(c) => (
                &line[..c],
                line[c + 1..].strip_prefix(b" ").unwrap_or(&line[c + 1..]),
            ),
            None => (line, &line[line.len()..]),
        };
        match name {
            b"data" => data.get_or_insert_with(Vec::new).push(value),
            b"event" => kind = value.to_vec(),
            b"id" if !value.contains(&0) => last_id = value.to_vec(),
            _ => {}
        }
    }
    (events, if consumed > 0 { bom + consumed } else { 0 })
}

#[derive(Debug, PartialEq)]
struct Run {
    out: Vec<u8>,
    held: Vec<u8>,
    dropped: usize,
    events: Vec<Event>,
    facts: String,
}

fn run(chunks: &[&[u8]], options: Options) -> Run {
    let mut framer = SseFramer::with_options(1 << 20, options);
    let (mut out, mut events) = (Vec::new(), Vec::new());
    for chunk in chunks {
        out.extend(framer.feed_to_vec(chunk).expect("under the limit"));
        events.extend(framer.take_events());
    }
    let dropped = framer.finish().expect("open");
    let f = framer.facts();
    let facts = format!(
        "{:?} {:?} {:?} {:?} {:?} {:?} {} {}",
        f.model,
        f.id,
        f.usage,
        f.finish_reason,
        f.error,
        f.text,
        framer.done(),
        framer.events()
    );
    Run {
        out,
        held: framer.take_held(),
        dropped,
        events,
        facts,
    }
}

fn check(rng: &mut Rng, input: &[u8]) -> Result<(), String> {
    let mut cuts: Vec<usize> = (0..rng.below(8))
        .map(|_| rng.below(input.len() + 1))
        .collect();
    cuts.sort_unstable();
    let mut chunks = Vec::new();
    let mut start = 0;
    for cut in cuts {
        chunks.push(&input[start..cut]);
        start = cut;
    }
    chunks.push(&input[start..]);
    let all = Options {
        openai: true,
        collect_text: true,
        hold_done: true,
        decode: true,
    };
    let whole = run(&[input], all);
    let split = run(&chunks, all);
    if whole != split {
        return Err(format!("split differs: {whole:?} vs {split:?}"));
    }
    let plain = run(
        &chunks,
        Options {
            decode: true,
            ..Options::default()
        },
    );
    let (events, relayed) = reference(input);
    if plain.out != input[..relayed] || plain.dropped != input.len() - relayed {
        return Err("relayed bytes are not the input minus its tail".into());
    }
    if plain.events != events {
        return Err(format!(
            "events differ from the reference: {:?} vs {events:?}",
            plain.events
        ));
    }
    if [&whole.out[..], &whole.held[..]].concat() != plain.out {
        return Err("held [DONE] bytes lost or reordered".into());
    }
    if input.first() == Some(&b'{') || input.first() == Some(&b'[') {
        let plain = Keyer::new::<&str>([], "").expect("no NUL");
        let excluding = Keyer::new(["a", "b"], "").expect("no NUL");
        for keyer in [&plain, &excluding] {
            if let Ok(canonical) = keyer.canonical(input) {
                if keyer.canonical(&canonical).as_ref() != Ok(&canonical)
                    || plain.canonical(&canonical).as_ref() != Ok(&canonical)
                {
                    return Err("canonical JSON is not a fixed point".into());
                }
            }
        }
    }
    Ok(())
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
    let dir = PathBuf::from(args.next().unwrap_or_else(|| "rust/fuzz/corpus".into()));
    let corpus = load_corpus(&dir);
    let mut rng = Rng(0x2545_F491_4F6C_DD1D ^ seconds);
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut runs: u64 = 0;
    std::panic::set_hook(Box::new(|_| {}));
    while Instant::now() < deadline {
        for _ in 0..256 {
            let mut input = corpus[rng.below(corpus.len())].clone();
            mutate(&mut rng, &mut input);
            let outcome = catch_unwind(AssertUnwindSafe(|| check(&mut rng, &input)));
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
