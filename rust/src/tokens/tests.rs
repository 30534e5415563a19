//! Token counting: model mapping and a few ids pinned from OpenAI's tiktoken (the full vectors are in tests/vectors).

use super::{Encoding, FALLBACK};

#[test]
fn names_round_trip() {
    for enc in [Encoding::O200kBase, Encoding::Cl100kBase] {
        assert_eq!(Encoding::from_name(enc.name()), Ok(enc));
    }
    assert!(Encoding::from_name("p50k_base").is_err());
}

#[test]
fn models_map_to_their_family() {
    let cases = [
        ("gpt-4o", Encoding::O200kBase),
        ("gpt-4o-mini-2024-07-18", Encoding::O200kBase),
        ("GPT-4.1-nano", Encoding::O200kBase),
        ("o3-mini", Encoding::O200kBase),
        ("o1", Encoding::O200kBase),
        ("gpt-5", Encoding::O200kBase),
        ("ft:gpt-4o-mini:acme::abc", Encoding::O200kBase),
        ("openai/gpt-4o", Encoding::O200kBase),
        ("gpt-4", Encoding::Cl100kBase),
        ("gpt-4-turbo", Encoding::Cl100kBase),
        ("gpt-4-0613", Encoding::Cl100kBase),
        ("gpt-3.5-turbo", Encoding::Cl100kBase),
        ("gpt-35-turbo", Encoding::Cl100kBase),
        ("text-embedding-3-small", Encoding::Cl100kBase),
        ("text-embedding-ada-002", Encoding::Cl100kBase),
    ];
    for (model, enc) in cases {
        assert_eq!(Encoding::for_model(model), enc, "{model}");
        assert_eq!(Encoding::family_of(model), Some(enc), "{model}");
    }
    assert_eq!(Encoding::family_of("llama-3-70b"), None);
    assert_eq!(Encoding::for_model("llama-3-70b"), FALLBACK);
}

#[test]
fn pinned_ids_match_tiktoken() {
    // tiktoken 0.14: enc.encode("hello world") per encoding.
    assert_eq!(Encoding::O200kBase.encode("hello world"), [24912, 2375]);
    assert_eq!(Encoding::Cl100kBase.encode("hello world"), [15339, 1917]);
}

#[test]
fn special_tokens_are_plain_text() {
    let text = "<|endoftext|>";
    let ids = Encoding::Cl100kBase.encode(text);
    assert!(ids.len() > 1, "{ids:?}");
    assert!(!ids.contains(&100_257));
    assert_eq!(Encoding::Cl100kBase.decode(&ids).unwrap(), text.as_bytes());
}

#[test]
fn counts_add_up() {
    let enc = Encoding::O200kBase;
    let parts = ["Hello there", "¿Qué tal? 你好 🙂", ""];
    let sum: usize = parts.iter().map(|p| enc.count(p)).sum();
    assert_eq!(enc.count_all(parts), sum);
    assert_eq!(enc.count(""), 0);
}
