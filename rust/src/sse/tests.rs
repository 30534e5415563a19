//! Unit tests for the SSE framer: split invariance, line-end rules, BOM, fields, `[DONE]`, limits.

mod decoding;

use super::{DEFAULT_MAX_EVENT_BYTES, FieldName, Line, Ready, SseFramer, parse_line};
use crate::errors::Error;

/// Everything observable after framing a stream.
#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    /// Concatenation of every `feed` output.
    fed: Vec<u8>,
    /// What `finish` returned: bytes of an unterminated tail, dropped.
    tail: usize,
    events: u64,
    done: bool,
}

fn frame(chunks: &[&[u8]]) -> Outcome {
    let mut framer = SseFramer::default();
    let mut fed = Vec::new();
    for chunk in chunks {
        fed.extend(framer.feed_to_vec(chunk).expect("feed"));
    }
    let tail = framer.finish().expect("finish");
    assert_eq!(framer.buffered(), 0);
    Outcome {
        fed,
        tail,
        events: framer.events(),
        done: framer.done(),
    }
}

/// Output of feeding `stream` in one piece, then finishing.
fn whole(stream: &[u8]) -> (Vec<u8>, usize, u64, bool) {
    let out = frame(&[stream]);
    (out.fed, out.tail, out.events, out.done)
}

/// Cuts `stream` at the given sorted positions.
fn cut<'a>(stream: &'a [u8], at: &[usize]) -> Vec<&'a [u8]> {
    let mut pieces = Vec::new();
    let mut start = 0;
    for &pos in at {
        pieces.push(&stream[start..pos]);
        start = pos;
    }
    pieces.push(&stream[start..]);
    pieces
}

fn assert_split_invariant(stream: &[u8]) {
    let expected = whole(stream);
    let n = stream.len();
    for i in 0..=n {
        for j in i..=n {
            let out = frame(&cut(stream, &[i, j]));
            let got = (out.fed, out.tail, out.events, out.done);
            assert_eq!(got, expected, "stream {stream:?} cut at {i},{j}");
        }
    }
    let bytes: Vec<&[u8]> = stream.chunks(1).collect();
    let out = frame(&bytes);
    let got = (out.fed, out.tail, out.events, out.done);
    assert_eq!(got, expected, "stream {stream:?} byte by byte");
}

const STREAMS: &[&[u8]] = &[
    b"data: {\"a\":1}\n\ndata: [DONE]\n\n",
    b"data: x\r\n\r\ndata: y\r\r: c\r\n\r\ndata:[DONE]\r\n\r\n",
    b"\xEF\xBB\xBFdata: \xC3\xA9\xE2\x82\xAC\n\n\n\nevent: e\nid: 1\nretry: 5\ndata\n\n",
    b": keepalive\n\nfoo\nbar: baz\n\ndata: [DONE]",
    b"data: a\n\r\ndata: b\r\n\rdata: [DONE]\r",
    b"\r\n\n\r\r\r\ndata: z",
    b"data: 1\ndata: 2\n\ndata: [DONE]\n",
];

#[test]
fn every_two_cuts_give_the_same_result() {
    for stream in STREAMS {
        assert_split_invariant(stream);
    }
}

/// Deterministic pseudo-random streams from SSE-ish pieces, random cuts.
#[test]
fn random_streams_are_split_invariant() {
    const PIECES: &[&[u8]] = &[
        b"data:",
        b"data: ",
        b"[DONE]",
        b"event: x",
        b":",
        b" ",
        b"id",
        b"x",
        b"\r",
        b"\n",
        b"\r\n",
        b"\xC3\xA9",
        b"\xEF\xBB\xBF",
        b"\n\n",
    ];
    let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move |bound: usize| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        usize::try_from(seed % (bound as u64)).expect("fits")
    };
    for _ in 0..2000 {
        let mut stream = Vec::new();
        for _ in 0..next(24) {
            stream.extend_from_slice(PIECES[next(PIECES.len())]);
        }
        let expected = whole(&stream);
        let mut at: Vec<usize> = (0..next(6)).map(|_| next(stream.len() + 1)).collect();
        at.sort_unstable();
        let out = frame(&cut(&stream, &at));
        let got = (out.fed, out.tail, out.events, out.done);
        assert_eq!(got, expected, "stream {stream:?} cut at {at:?}");
        assert_eq!([&got.0[..], &stream[got.0.len()..]].concat(), stream);
        assert_eq!(got.0.len() + got.1, stream.len());
    }
}

#[test]
fn outputs_are_whole_events_with_original_bytes() {
    let mut f = SseFramer::default();
    assert_eq!(f.feed_to_vec(b"data: a\n").unwrap(), b"");
    assert_eq!(f.buffered(), 8);
    assert_eq!(
        f.feed_to_vec(b"\ndata: b\n\nda").unwrap(),
        b"data: a\n\ndata: b\n\n"
    );
    assert_eq!(f.buffered(), 2);
    assert_eq!(f.events(), 2);
    assert_eq!(f.feed_to_vec(b"ta: c\r\n\r\n").unwrap(), b"data: c\r\n\r\n");
    assert_eq!((f.events(), f.buffered(), f.done()), (3, 0, false));
}

#[test]
fn reports_whole_input_when_it_ends_on_a_boundary() {
    let mut f = SseFramer::default();
    let chunk: &[u8] = b"data: a\n\ndata: b\n\n";
    assert_eq!(f.feed(chunk, |r| r == Ready::Input), Ok(true));
    assert_eq!(
        f.feed(b"data: c\n\nda", |r| r == Ready::Bytes(b"data: c\n\n")),
        Ok(true)
    );
    // Something was buffered: never `Input`, even though this ends on a boundary.
    assert_eq!(
        f.feed(b"ta: d\n\n", |r| r == Ready::Bytes(b"data: d\n\n")),
        Ok(true)
    );
    assert_eq!(f.feed(b"", |r| r == Ready::Nothing), Ok(true));
    assert_eq!(f.feed(b"\n", |r| r == Ready::Input), Ok(true));
    assert_eq!(f.events(), 4);
}

#[test]
fn trailing_cr_is_a_boundary_and_its_lf_is_no_extra_event() {
    let mut f = SseFramer::default();
    assert_eq!(f.feed(b"data: a\n\r", |r| r == Ready::Input), Ok(true));
    assert_eq!((f.events(), f.buffered()), (1, 0));
    assert_eq!(f.feed(b"\ndata: b\n\n", |r| r == Ready::Input), Ok(true));
    assert_eq!(f.events(), 2);
    assert_eq!(f.feed(b"\n", |r| r == Ready::Input), Ok(true));
    assert_eq!(f.events(), 2);
    // A CR ending a non-blank line holds it back; the LF after it is not a blank line.
    assert_eq!(f.feed_to_vec(b"data: c\r").unwrap(), b"");
    assert_eq!(f.feed_to_vec(b"\n").unwrap(), b"");
    assert_eq!(f.buffered(), 9);
    assert_eq!(f.feed_to_vec(b"\r").unwrap(), b"data: c\r\n\r");
    assert_eq!(f.feed_to_vec(b"\n").unwrap(), b"\n");
    assert_eq!(f.events(), 3);
}

#[test]
fn cr_lf_and_crlf_all_end_lines() {
    for (stream, events) in [
        (&b"a\n\nb\r\rc\r\n\r\nd\n\re\r\n\n"[..], 5),
        (b"a\rb\nc\r\n\r", 1),
        (b"\n\r\n\r\r\n", 0),
        (b"a\n\r\nb\r\n\r\n", 2),
    ] {
        let out = frame(&[stream]);
        assert_eq!(out.fed, stream);
        assert_eq!(out.tail, 0);
        assert_eq!(out.events, events, "{stream:?}");
    }
}

#[test]
fn leading_bom_passes_through_but_is_not_parsed() {
    let out = frame(&[b"\xEF\xBB\xBFdata: [DONE]\n\n"]);
    assert_eq!(out.fed, b"\xEF\xBB\xBFdata: [DONE]\n\n");
    assert!(out.done);
    // BOM then a blank line: no event.
    assert_eq!(frame(&[b"\xEF\xBB", b"\xBF\n"]).events, 0);
    // A lone BOM at the end is an unterminated tail: dropped.
    assert_eq!(frame(&[b"\xEF\xBB\xBF"]).tail, 3);
    // Only the first one counts: a second BOM starts a field name.
    let out = frame(&[b"\xEF\xBB\xBF\xEF\xBB\xBFdata: [DONE]\n\n"]);
    assert_eq!((out.events, out.done), (1, false));
    let out = frame(&[b"data: 1\n\n\xEF\xBB\xBFdata: [DONE]\n\n"]);
    assert_eq!((out.events, out.done), (2, false));
}

#[test]
fn comments_count_as_events_but_carry_no_data() {
    let out = frame(&[b": ping\n\n:\n\n"]);
    assert_eq!((out.events, out.done), (2, false));
    assert_eq!(parse_line(b": hi"), Line::Comment(b" hi"));
}

#[test]
fn parses_fields() {
    let field = |name, raw_name: &'static [u8], value: &'static [u8]| Line::Field {
        name,
        raw_name,
        value,
    };
    assert_eq!(parse_line(b""), Line::Blank);
    assert_eq!(parse_line(b"data"), field(FieldName::Data, b"data", b""));
    assert_eq!(parse_line(b"data:x"), field(FieldName::Data, b"data", b"x"));
    assert_eq!(
        parse_line(b"data: x"),
        field(FieldName::Data, b"data", b"x")
    );
    assert_eq!(
        parse_line(b"data:  x"),
        field(FieldName::Data, b"data", b" x")
    );
    assert_eq!(
        parse_line(b"data: a:b"),
        field(FieldName::Data, b"data", b"a:b")
    );
    assert_eq!(
        parse_line(b"event: e"),
        field(FieldName::Event, b"event", b"e")
    );
    assert_eq!(parse_line(b"id:"), field(FieldName::Id, b"id", b""));
    assert_eq!(
        parse_line(b"retry: 1"),
        field(FieldName::Retry, b"retry", b"1")
    );
    assert_eq!(
        parse_line(b"Data: x"),
        field(FieldName::Other, b"Data", b"x")
    );
    assert_eq!(
        parse_line(b" data: x"),
        field(FieldName::Other, b" data", b"x")
    );
}

#[test]
fn detects_done() {
    let done = |s: &[u8]| frame(&[s]).done;
    assert!(done(b"data: [DONE]\n\n"));
    assert!(done(b"data:[DONE]\n\n"));
    assert!(done(b"data: [DONE]\r\n\r\n"));
    assert!(done(b"event: end\nid: 9\n: note\ndata: [DONE]\n\n"));
    assert!(
        !done(b"data: [DONE]"),
        "an unterminated tail is never dispatched"
    );
    assert!(!done(b"data: [DONE]\n"));
    assert!(!done(b"data:  [DONE]\n\n"));
    assert!(!done(b"data: [DONE] \n\n"));
    assert!(!done(b"data: [done]\n\n"));
    assert!(!done(b"data: [DONE]\ndata: x\n\n"));
    assert!(!done(b"data: x\ndata: [DONE]\n\n"));
    assert!(!done(b"data: [DONE]\ndata\n\n"));
    assert!(!done(b"[DONE]\n\n"));
    assert!(!done(b": data: [DONE]\n\n"));
    assert!(!done(b"data: [DO\n\nNE]\n\n"));
    // Not before the event is complete.
    let mut f = SseFramer::default();
    f.feed_to_vec(b"data: [DONE]\n").unwrap();
    assert!(!f.done());
    f.feed_to_vec(b"\n").unwrap();
    assert!(f.done());
}

#[test]
fn finish_drops_an_unterminated_tail() {
    for (stream, dropped) in [
        (&b"data: [DONE]"[..], 12),
        (b"data: [DONE]\n", 13),
        (b"data: [DONE]\r\n", 14),
        (b"a\r\nb", 4),
        (b"x\n\ndata: [DONE]", 12),
        (b"x\n\n", 0),
        (b"", 0),
        (b" ", 1),
    ] {
        let out = frame(&[stream]);
        assert_eq!(out.tail, dropped, "{stream:?}");
        assert_eq!(out.fed, &stream[..stream.len() - dropped]);
        assert!(!out.done);
    }
    let out = frame(&[b"data: 1\n\ndata: [DONE]"]);
    assert_eq!((out.events, out.done), (1, false));
}

#[test]
fn finish_is_final() {
    let mut f = SseFramer::default();
    f.feed_to_vec(b"data: x").unwrap();
    assert_eq!(f.finish().unwrap(), 7);
    assert_eq!(f.discarded(), 7);
    assert_eq!(f.finish().unwrap(), 0);
    assert!(matches!(
        f.feed_to_vec(b"data: y\n\n"),
        Err(Error::SseState(_))
    ));
    assert_eq!(f.events(), 0);
}

#[test]
fn refuses_events_over_the_limit() {
    // "data: 123\n\n" is 11 bytes.
    let ok = |limit, chunks: &[&[u8]]| {
        let mut f = SseFramer::new(limit);
        chunks.iter().try_for_each(|c| f.feed_to_vec(c).map(drop))
    };
    assert_eq!(ok(11, &[b"data: 123\n\n"]), Ok(()));
    assert_eq!(ok(11, &[b"data: 123\n", b"\n", b"data: 456\n\n"]), Ok(()));
    let too_large = Err(Error::SseEventTooLarge {
        limit: 10,
        size: 11,
    });
    assert_eq!(ok(10, &[b"data: 123\n\n"]), too_large);
    assert_eq!(ok(10, &[b"data: 1", b"23\n", b"\n"]), too_large);
    assert!(matches!(
        ok(10, &[b"data: 123456"]),
        Err(Error::SseEventTooLarge { .. })
    ));
    assert!(matches!(
        ok(10, &[b"data: 1\n\ndata: 12345\n\n"]),
        Err(Error::SseEventTooLarge { .. })
    ));
    assert_eq!(
        SseFramer::default().max_event_bytes(),
        DEFAULT_MAX_EVENT_BYTES
    );

    let mut f = SseFramer::new(4);
    assert!(f.feed_to_vec(b"data: x").is_err());
    assert_eq!(f.buffered(), 0);
    assert!(matches!(f.feed_to_vec(b"\n"), Err(Error::SseState(_))));
    assert!(matches!(f.finish(), Err(Error::SseState(_))));
}

#[test]
fn poisoned_framer_refuses_work() {
    let mut f = SseFramer::default();
    f.feed_to_vec(b"data: x").unwrap();
    f.poison();
    assert_eq!(f.buffered(), 0);
    assert!(matches!(f.feed_to_vec(b"\n\n"), Err(Error::SseState(_))));
}
