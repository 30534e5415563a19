//! The oracle shared by both SSE fuzz drivers (`fuzz_targets/sse_decoder.rs` for cargo-fuzz on
//! nightly, `rust/examples/fuzz_sse.rs` on stable): one input against a reference decoder.

use _native::cache_key::Keyer;
use _native::sse::{Event, Options, SseFramer};

/// Xorshift: deterministic cut points (and mutations) from a seed.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    pub fn below(&mut self, bound: usize) -> usize {
        usize::try_from(self.next() % (bound.max(1) as u64)).unwrap_or(0)
    }
}

/// One-shot WHATWG reading of a whole stream: the events, and the bytes before the tail.
pub fn reference(original: &[u8]) -> (Vec<Event>, usize) {
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
    let mut framer = SseFramer::with_options(usize::MAX, options);
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

/// Checks `input`, cut at points drawn from `seed`: split == whole (bytes,
/// events, facts, held bytes), relayed bytes == input minus the dropped tail,
/// events == [`reference`], and canonical JSON is a fixed point.
///
/// # Errors
/// A description of the first broken invariant.
pub fn check(input: &[u8], seed: u64) -> Result<(), String> {
    let mut rng = Rng(seed | 1);
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
