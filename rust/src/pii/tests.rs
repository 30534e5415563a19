use super::{KIND_NAMES, Kind, Scanner};

fn kinds(text: &str) -> Vec<(&'static str, &str)> {
    let all: Vec<Kind> = KIND_NAMES
        .iter()
        .filter_map(|n| Kind::from_name(n))
        .collect();
    Scanner::new(&all)
        .scan(text.as_bytes())
        .into_iter()
        .map(|m| (m.kind.name(), &text[m.start..m.end]))
        .collect()
}

#[test]
fn finds_each_kind() {
    assert_eq!(
        kinds("mail jane.doe+x@example.co.uk."),
        [("email", "jane.doe+x@example.co.uk")]
    );
    assert_eq!(
        kinds("card 4111 1111 1111 1111 ok"),
        [("card", "4111 1111 1111 1111")]
    );
    assert_eq!(kinds("card 4111-1111-1111-1112"), []);
    assert_eq!(
        kinds("iban DE89 3704 0044 0532 0130 00 thanks"),
        [("iban", "DE89 3704 0044 0532 0130 00")]
    );
    assert_eq!(
        kinds("iban GB82WEST12345698765432"),
        [("iban", "GB82WEST12345698765432")]
    );
    assert_eq!(kinds("iban GB82WEST12345698765433"), []);
    assert_eq!(kinds("ssn 123-45-6789"), [("ssn", "123-45-6789")]);
    assert_eq!(kinds("ssn 666-45-6789"), []);
    assert_eq!(kinds("ip 192.168.0.1, next"), [("ipv4", "192.168.0.1")]);
    assert_eq!(kinds("ip 256.1.1.1"), []);
    assert_eq!(
        kinds("v6 2001:db8::8a2e:370:7334."),
        [("ipv6", "2001:db8::8a2e:370:7334")]
    );
    assert_eq!(
        kinds("v6 fe80::1 and ::1"),
        [("ipv6", "fe80::1"), ("ipv6", "::1")]
    );
    assert_eq!(kinds("at 10:30:00 today"), []);
    assert_eq!(
        kinds("call +44 20 7946 0958"),
        [("phone", "+44 20 7946 0958")]
    );
    assert_eq!(kinds("call (415) 555-2671"), [("phone", "(415) 555-2671")]);
    assert_eq!(kinds("call 415-555-2671 now"), [("phone", "415-555-2671")]);
    assert_eq!(kinds("on 2024-01-15 at 10"), []);
    assert_eq!(
        kinds("key sk-proj-abcdefghijklmnopqrstuvwxyz012345"),
        [("credential", "sk-proj-abcdefghijklmnopqrstuvwxyz012345")]
    );
    assert_eq!(
        kinds("aws AKIAIOSFODNN7EXAMPLE"),
        [("credential", "AKIAIOSFODNN7EXAMPLE")]
    );
    assert_eq!(
        kinds("Authorization: Bearer abcdefghijklmnop1234"),
        [("credential", "Bearer abcdefghijklmnop1234")]
    );
    let pem = "x -----BEGIN RSA PRIVATE KEY-----\nMIIEow\n-----END RSA PRIVATE KEY----- after";
    assert_eq!(kinds(pem), [("credential", &pem[2..pem.len() - 6])]);
}

#[test]
fn ignores_numbers_glued_to_words() {
    assert_eq!(kinds("order A4111111111111111 id"), []);
    assert_eq!(kinds("version 1.2.3.4.5"), []);
    assert_eq!(kinds("x41111111111111112222"), []);
}

#[test]
fn a_phone_number_ends_before_a_longer_number() {
    assert_eq!(
        kinds("+1 415 555 2671 4111111111111111"),
        [("phone", "+1 415 555 2671"), ("card", "4111111111111111")]
    );
}

#[test]
fn a_compact_international_number_is_a_phone_number() {
    assert_eq!(
        kinds("call +4915112345678 now"),
        [("phone", "+4915112345678")]
    );
    assert_eq!(kinds("call +14155552671."), [("phone", "+14155552671")]);
    // Too short to be a whole E.164 number without separators, or glued to a word.
    assert_eq!(kinds("delta +12345678 units"), []);
    assert_eq!(kinds("x+4915112345678"), []);
}
