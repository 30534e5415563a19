//! Unit tests for the event stream decoder: typed headers, split invariance, CRC and length
//! checks, the size limit, and the decoder's refusal to go on after a corrupt message.

use super::{DEFAULT_MAX_MESSAGE_BYTES, Decoder, HeaderValue, Message};
use crate::errors::Error;

/// An owned header value, to compare decoded messages after their input is gone.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Value {
    Bool(bool),
    Byte(i8),
    Short(i16),
    Int(i32),
    Long(i64),
    Bytes(Vec<u8>),
    String(String),
    Timestamp(i64),
    Uuid([u8; 16]),
}

impl From<HeaderValue<'_>> for Value {
    fn from(value: HeaderValue<'_>) -> Self {
        match value {
            HeaderValue::Bool(b) => Self::Bool(b),
            HeaderValue::Byte(b) => Self::Byte(b),
            HeaderValue::Short(s) => Self::Short(s),
            HeaderValue::Int(i) => Self::Int(i),
            HeaderValue::Long(l) => Self::Long(l),
            HeaderValue::Bytes(b) => Self::Bytes(b.to_vec()),
            HeaderValue::String(s) => Self::String(s.to_owned()),
            HeaderValue::Timestamp(t) => Self::Timestamp(t),
            HeaderValue::Uuid(u) => Self::Uuid(u),
        }
    }
}

type Owned = (Vec<(String, Value)>, Vec<u8>);

fn owned(message: &Message<'_>) -> Owned {
    (
        message
            .headers
            .iter()
            .map(|(name, value)| ((*name).to_owned(), Value::from(*value)))
            .collect(),
        message.payload.to_vec(),
    )
}

/// Encodes one message the way AWS does (the decoder's mirror image, for tests only).
fn encode(headers: &[(&str, Value)], payload: &[u8]) -> Vec<u8> {
    let mut block = Vec::new();
    for (name, value) in headers {
        block.push(u8::try_from(name.len()).unwrap());
        block.extend_from_slice(name.as_bytes());
        match value {
            Value::Bool(true) => block.push(0),
            Value::Bool(false) => block.push(1),
            Value::Byte(b) => {
                block.push(2);
                block.extend_from_slice(&b.to_be_bytes());
            }
            Value::Short(s) => {
                block.push(3);
                block.extend_from_slice(&s.to_be_bytes());
            }
            Value::Int(i) => {
                block.push(4);
                block.extend_from_slice(&i.to_be_bytes());
            }
            Value::Long(l) => {
                block.push(5);
                block.extend_from_slice(&l.to_be_bytes());
            }
            Value::Bytes(b) => {
                block.push(6);
                block.extend_from_slice(&u16::try_from(b.len()).unwrap().to_be_bytes());
                block.extend_from_slice(b);
            }
            Value::String(s) => {
                block.push(7);
                block.extend_from_slice(&u16::try_from(s.len()).unwrap().to_be_bytes());
                block.extend_from_slice(s.as_bytes());
            }
            Value::Timestamp(t) => {
                block.push(8);
                block.extend_from_slice(&t.to_be_bytes());
            }
            Value::Uuid(u) => {
                block.push(9);
                block.extend_from_slice(u);
            }
        }
    }
    let total = 12 + block.len() + payload.len() + 4;
    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(&u32::try_from(total).unwrap().to_be_bytes());
    out.extend_from_slice(&u32::try_from(block.len()).unwrap().to_be_bytes());
    let prelude_crc = crc32fast::hash(&out);
    out.extend_from_slice(&prelude_crc.to_be_bytes());
    out.extend_from_slice(&block);
    out.extend_from_slice(payload);
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_be_bytes());
    out
}

fn event(event_type: &str, payload: &[u8]) -> Vec<u8> {
    encode(
        &[
            (":event-type", Value::String(event_type.to_owned())),
            (
                ":content-type",
                Value::String("application/json".to_owned()),
            ),
            (":message-type", Value::String("event".to_owned())),
        ],
        payload,
    )
}

fn all_types() -> Vec<(&'static str, Value)> {
    vec![
        ("true", Value::Bool(true)),
        ("false", Value::Bool(false)),
        ("byte", Value::Byte(-7)),
        ("short", Value::Short(-300)),
        ("int", Value::Int(70_000)),
        ("long", Value::Long(-5_000_000_000)),
        ("bytes", Value::Bytes(vec![0, 1, 2, 255])),
        ("string", Value::String("héllo".to_owned())),
        ("timestamp", Value::Timestamp(1_700_000_000_123)),
        ("uuid", Value::Uuid(*b"0123456789abcdef")),
    ]
}

/// Decodes `chunks` in order; returns the messages, or the first error.
fn decode(decoder: &mut Decoder, chunks: &[&[u8]]) -> Result<Vec<Owned>, Error> {
    let mut out = Vec::new();
    for chunk in chunks {
        decoder.feed(chunk, |message| out.push(owned(&message)))?;
    }
    Ok(out)
}

fn stream() -> (Vec<u8>, Vec<Owned>) {
    let messages = [
        encode(&all_types(), br#"{"a":1}"#),
        event("contentBlockDelta", br#"{"delta":{"text":"Hi"}}"#),
        encode(&[], b""),
        event("messageStop", br#"{"stopReason":"end_turn"}"#),
    ];
    let bytes = messages.concat();
    let mut decoder = Decoder::default();
    let expected = decode(&mut decoder, &[&bytes]).expect("whole stream");
    assert_eq!(expected.len(), 4);
    assert_eq!(decoder.finish(), Ok(0));
    (bytes, expected)
}

#[test]
fn crc32_is_the_ieee_polynomial() {
    // The check value of CRC-32/ISO-HDLC, the CRC AWS's framing uses.
    assert_eq!(crc32fast::hash(b"123456789"), 0xCBF4_3926);
}

#[test]
fn decodes_the_empty_message_of_the_aws_test_vectors() {
    let bytes = [
        0x00, 0x00, 0x00, 0x10, 0x00, 0x00, 0x00, 0x00, 0x05, 0xc2, 0x48, 0xeb, 0x7d, 0x98, 0xc8,
        0xff,
    ];
    let got = decode(&mut Decoder::default(), &[&bytes]).expect("valid");
    assert_eq!(got, vec![(vec![], vec![])]);
}

#[test]
fn decodes_every_header_type() {
    let bytes = encode(&all_types(), b"payload");
    let mut decoder = Decoder::default();
    let mut seen = 0;
    decoder
        .feed(&bytes, |message| {
            seen += 1;
            assert_eq!(message.payload, b"payload");
            assert_eq!(message.header("int"), Some(HeaderValue::Int(70_000)));
            assert_eq!(message.string_header("string"), Some("héllo"));
            assert_eq!(message.string_header("int"), None);
            assert_eq!(message.header("missing"), None);
            let values: Vec<Value> = message.headers.iter().map(|(_, v)| (*v).into()).collect();
            let want: Vec<Value> = all_types().into_iter().map(|(_, v)| v).collect();
            assert_eq!(values, want);
        })
        .expect("valid");
    assert_eq!(seen, 1);
    assert_eq!(decoder.messages(), 1);
    assert_eq!(decoder.buffered(), 0);
}

#[test]
fn every_two_way_split_gives_the_same_messages() {
    let (bytes, expected) = stream();
    for cut in 0..=bytes.len() {
        let mut decoder = Decoder::default();
        let got = decode(&mut decoder, &[&bytes[..cut], &bytes[cut..]]).expect("valid");
        assert_eq!(got, expected, "cut at {cut}");
        assert_eq!(decoder.finish(), Ok(0));
    }
}

#[test]
fn one_byte_at_a_time_and_three_way_splits() {
    let (bytes, expected) = stream();
    let singles: Vec<&[u8]> = bytes.chunks(1).collect();
    assert_eq!(
        decode(&mut Decoder::default(), &singles).expect("valid"),
        expected
    );
    for a in (0..bytes.len()).step_by(5) {
        for b in (a..bytes.len()).step_by(7) {
            let chunks = [&bytes[..a], &bytes[a..b], &bytes[b..]];
            assert_eq!(
                decode(&mut Decoder::default(), &chunks).expect("valid"),
                expected,
                "cuts at {a}, {b}"
            );
        }
    }
}

#[test]
fn finish_reports_an_unfinished_message() {
    let (bytes, _) = stream();
    let mut decoder = Decoder::default();
    let got = decode(&mut decoder, &[&bytes[..bytes.len() - 3]]).expect("valid so far");
    assert_eq!(got.len(), 3);
    let last = event("messageStop", br#"{"stopReason":"end_turn"}"#).len();
    assert_eq!(decoder.buffered(), last - 3);
    assert_eq!(decoder.finish(), Ok(last - 3));
    assert_eq!(decoder.finish(), Ok(0));
    assert!(matches!(
        decoder.feed(b"x", |_| ()),
        Err(Error::EventStream(msg)) if msg.contains("after finish")
    ));
}

fn expect_error(bytes: &[u8], needle: &str) {
    // Whole, and split inside the prelude, so both paths of feed() check it.
    for chunks in [vec![bytes], vec![&bytes[..5], &bytes[5..]]] {
        let mut decoder = Decoder::default();
        match decode(&mut decoder, &chunks) {
            Err(Error::EventStream(msg)) => assert!(msg.contains(needle), "{msg}"),
            other => panic!("expected an error with {needle:?}, got {other:?}"),
        }
        // A corrupt stream cannot be resynchronised: every later call fails.
        let again = decoder.feed(&event("x", b"{}"), |_| ());
        assert!(matches!(again, Err(Error::EventStream(msg)) if msg.contains("failed earlier")));
        assert!(decoder.finish().is_err());
    }
}

#[test]
fn a_corrupt_prelude_crc_is_refused() {
    let mut bytes = event("contentBlockDelta", b"{}");
    bytes[9] ^= 0x01;
    expect_error(&bytes, "prelude CRC mismatch");
}

#[test]
fn a_corrupt_length_is_caught_by_the_prelude_crc() {
    let mut bytes = event("contentBlockDelta", b"{}");
    bytes[3] ^= 0x40;
    expect_error(&bytes, "prelude CRC mismatch");
}

#[test]
fn a_corrupt_payload_or_message_crc_is_refused() {
    let good = event("contentBlockDelta", br#"{"delta":{"text":"Hi"}}"#);
    for at in [good.len() - 10, good.len() - 1, 20] {
        let mut bytes = good.clone();
        bytes[at] ^= 0x80;
        expect_error(&bytes, "message CRC mismatch");
    }
    // The good messages before a corrupt one are handed over.
    let mut bytes = good.clone();
    let mut bad = good.clone();
    let last = bad.len() - 1;
    bad[last] ^= 1;
    bytes.extend_from_slice(&bad);
    let mut seen = 0;
    let err = Decoder::default().feed(&bytes, |_| seen += 1);
    assert!(err.is_err());
    assert_eq!(seen, 1);
}

/// A message with a valid prelude and message CRC around arbitrary header bytes.
fn with_raw_headers(headers: &[u8], total_extra: usize) -> Vec<u8> {
    let total = 16 + headers.len() + total_extra;
    let mut out = Vec::new();
    out.extend_from_slice(&u32::try_from(total).unwrap().to_be_bytes());
    out.extend_from_slice(&u32::try_from(headers.len()).unwrap().to_be_bytes());
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_be_bytes());
    out.extend_from_slice(headers);
    out.extend(std::iter::repeat_n(b'p', total_extra));
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_be_bytes());
    out
}

#[test]
fn malformed_headers_are_refused() {
    expect_error(&with_raw_headers(&[0, 7], 0), "empty header name");
    expect_error(
        &with_raw_headers(&[1, b'a', 42], 0),
        "unknown value type 42",
    );
    expect_error(
        &with_raw_headers(&[1, b'a', 7, 0, 9, b'x'], 0),
        "string value runs past",
    );
    expect_error(
        &with_raw_headers(&[1, b'a', 4, 0, 0], 2),
        "int value runs past",
    );
    expect_error(&with_raw_headers(&[3, b'a'], 0), "header name runs past");
    expect_error(
        &with_raw_headers(&[1, 0xff, 0], 0),
        "header name is not UTF-8",
    );
    expect_error(
        &with_raw_headers(&[1, b'a', 7, 0, 1, 0xc3], 0),
        "string value is not UTF-8",
    );
}

fn prelude(total: u32, headers: u32) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&total.to_be_bytes());
    out.extend_from_slice(&headers.to_be_bytes());
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_be_bytes());
    out
}

#[test]
fn impossible_lengths_are_refused() {
    expect_error(&prelude(15, 0), "below the 16 bytes");
    expect_error(&prelude(40, 25), "headers length 25 does not fit");
}

#[test]
fn a_message_over_the_limit_is_refused_from_its_prelude() {
    let mut decoder = Decoder::new(1024);
    // Only the prelude has arrived: the limit is known already, nothing more is held.
    let err = decoder
        .feed(&prelude(1025, 0), |_| ())
        .expect_err("too large");
    assert_eq!(
        err,
        Error::EventStreamTooLarge {
            limit: 1024,
            size: 1025
        }
    );
    assert!(err.to_string().contains("max_message_bytes=1024"), "{err}");
    // Split inside the prelude too.
    let mut decoder = Decoder::new(1024);
    let bytes = prelude(u32::MAX, 0);
    decoder
        .feed(&bytes[..7], |_| ())
        .expect("incomplete prelude");
    assert!(decoder.feed(&bytes[7..], |_| ()).is_err());
    // At the limit is fine.
    let body = vec![b'x'; 1024 - 16];
    let exact = encode(&[], &body);
    assert_eq!(exact.len(), 1024);
    let got = decode(&mut Decoder::new(1024), &[&exact]).expect("at the limit");
    assert_eq!(got[0].1, body);
}

#[test]
fn the_limit_never_goes_below_an_empty_message() {
    assert_eq!(Decoder::new(0).max_message_bytes(), 16);
    assert_eq!(
        Decoder::default().max_message_bytes(),
        DEFAULT_MAX_MESSAGE_BYTES
    );
}

#[test]
fn a_large_buffer_is_released_after_its_message() {
    let big = encode(&[], &vec![b'x'; 3 << 20]);
    let mut decoder = Decoder::default();
    let mut sizes = Vec::new();
    for chunk in big.chunks(64 << 10) {
        decoder
            .feed(chunk, |m| sizes.push(m.payload.len()))
            .expect("valid");
    }
    assert_eq!(sizes, vec![3 << 20]);
    assert!(decoder.buf.capacity() <= 64 << 10);
}

/// A small deterministic generator (no `rand` dependency for one test).
fn lcg(seed: &mut u64) -> u64 {
    *seed = seed
        .wrapping_mul(6_364_136_223_846_793_005)
        .wrapping_add(1_442_695_040_888_963_407);
    *seed >> 33
}

#[test]
fn garbage_and_mutations_never_panic() {
    let (bytes, expected) = stream();
    let mut seed = 7;
    for round in 0..2_000 {
        let mut data = if round % 2 == 0 {
            bytes.clone()
        } else {
            let len = usize::try_from(lcg(&mut seed) % 300).unwrap();
            (0..len)
                .map(|_| u8::try_from(lcg(&mut seed) & 0xff).unwrap())
                .collect()
        };
        if round % 2 == 0 {
            let at = usize::try_from(lcg(&mut seed)).unwrap() % data.len();
            data[at] ^= u8::try_from(lcg(&mut seed) % 255 + 1).unwrap();
        }
        let cut = usize::try_from(lcg(&mut seed)).unwrap() % (data.len() + 1);
        let mut decoder = Decoder::new(4096);
        let got = decode(&mut decoder, &[&data[..cut], &data[cut..]]);
        if round % 2 == 0 {
            // A flipped byte is caught by a CRC or leaves an unfinished message (a flip in a
            // length): the messages handed over are the good ones before it, never a wrong one.
            if let Ok(messages) = got {
                assert!(messages.len() < expected.len() || messages != expected);
                assert!(messages.iter().zip(&expected).all(|(a, b)| a == b));
            }
        }
    }
}
