//! Canonical JSON and cache keys: RFC 8785 examples, number forms, refusals, exclusion, pinned keys.

use super::{Keyer, MAX_DEPTH};

fn canon(input: &str) -> String {
    let keyer = Keyer::new::<&str>([], "").unwrap();
    String::from_utf8(keyer.canonical(input.as_bytes()).expect(input)).unwrap()
}

fn refused(input: &[u8]) -> String {
    let keyer = Keyer::new::<&str>([], "").unwrap();
    keyer
        .canonical(input)
        .expect_err("should be refused")
        .to_string()
}

#[test]
fn whitespace_and_order_are_normalised() {
    assert_eq!(
        canon(" { \"b\" : [ 1 , {\"z\":null,\"a\":true} ] ,\n\"a\":\"x\" } "),
        r#"{"a":"x","b":[1,{"a":true,"z":null}]}"#
    );
}

#[test]
fn numbers_take_the_ecmascript_layout() {
    let cases = [
        ("0", "0"),
        ("-0", "0"),
        ("0.0e10", "0"),
        ("1", "1"),
        ("1.0", "1"),
        ("1e0", "1"),
        ("10e-1", "1"),
        ("100", "100"),
        ("1E2", "100"),
        ("-1.5", "-1.5"),
        ("0.000001", "0.000001"),
        ("0.0000001", "1e-7"),
        ("1e21", "1e+21"),
        ("1e20", "100000000000000000000"),
        ("123456789012345678901234", "1.23456789012345678901234e+23"),
        ("9007199254740993", "9007199254740993"),
        ("0.1", "0.1"),
        ("4.50", "4.5"),
        ("2e-3", "0.002"),
        ("1.25e+400", "1.25e+400"),
    ];
    for (input, want) in cases {
        assert_eq!(canon(input), want, "{input}");
    }
    // RFC 8785 appendix B samples whose literal is already the shortest double form.
    assert_eq!(
        canon("[333333333.3333333, 1e30, 4.5, 2e-3, 1e-27]"),
        "[333333333.3333333,1e+30,4.5,0.002,1e-27]"
    );
}

#[test]
fn strings_use_minimal_escapes() {
    assert_eq!(
        canon(r#""\u0041\/\u00e9\n\u001f\"\\\u20ac""#),
        "\"A/é\\n\\u001f\\\"\\\\€\""
    );
    assert_eq!(canon(r#""\ud83d\ude00""#), "\"😀\"");
    assert_eq!(canon("\"\u{7f}\""), "\"\u{7f}\"");
}

#[test]
fn names_sort_by_utf16_units() {
    // U+FB01 sorts after U+1F600 in UTF-16 (0xD83D < 0xFB01) but not in UTF-8.
    assert_eq!(canon(r#"{"ﬁ":1,"😀":2,"a":3}"#), r#"{"a":3,"😀":2,"ﬁ":1}"#);
}

#[test]
fn bad_input_is_refused() {
    for bad in [
        &b""[..],
        b"{",
        b"{\"a\":1,\"a\":2}",
        b"{\"a\":1,\"\\u0061\":1}",
        b"[1,]",
        b"01",
        b"1.",
        b"1e",
        b"+1",
        b"NaN",
        b"Infinity",
        b"\"\xff\"",
        b"\"a\nb\"",
        b"\"\\ud800\"",
        b"\"\\udc00\\ud800\"",
        b"\"\\x\"",
        b"1 2",
        b"1e9999999999",
        b"tru",
    ] {
        refused(bad);
    }
    let deep = "[".repeat(MAX_DEPTH + 1) + &"]".repeat(MAX_DEPTH + 1);
    assert!(refused(deep.as_bytes()).contains("nesting"));
    let ok = "[".repeat(MAX_DEPTH) + &"]".repeat(MAX_DEPTH);
    canon(&ok);
}

#[test]
fn excluded_fields_only_at_top_level() {
    let keyer = Keyer::new(["stream", "user"], "").unwrap();
    let body = br#"{"user":"u1","model":"m","stream":true,"meta":{"user":"kept"}}"#;
    assert_eq!(
        keyer.canonical(body).unwrap(),
        br#"{"meta":{"user":"kept"},"model":"m"}"#
    );
    let other = br#"{"model":"m","meta":{"user":"kept"},"user":"u2"}"#;
    assert_eq!(keyer.key(body).unwrap(), keyer.key(other).unwrap());
}

#[test]
fn keys_are_pinned() {
    // Computed independently: sha256(b"fd2-cache-key/v1\0\0" + canonical). Changing
    // these means every stored key changes: bump VERSION instead.
    let keyer = Keyer::new::<&str>([], "").unwrap();
    assert_eq!(
        keyer
            .key(br#"{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}"#)
            .unwrap(),
        "cae23778098050be859c0a1248b890db33d325d917f5758b4ef020e8ac1217c6"
    );
    let namespaced = Keyer::new::<&str>([], "acme/chat").unwrap();
    assert_ne!(namespaced.key(b"{}").unwrap(), keyer.key(b"{}").unwrap());
    assert!(Keyer::new::<&str>([], "a\0b").is_err());
}
