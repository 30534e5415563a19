//! WHATWG event assembly, OpenAI fact extraction and holding back `[DONE]`.

use crate::sse::{Event, Options, SseFramer, Usage};

fn decode(chunks: &[&[u8]]) -> (Vec<Event>, Option<u64>) {
    let options = Options {
        decode: true,
        ..Options::default()
    };
    let mut f = SseFramer::with_options(1 << 20, options);
    let mut events = Vec::new();
    for chunk in chunks {
        f.feed_to_vec(chunk).unwrap();
        events.extend(f.take_events());
    }
    f.finish().unwrap();
    (events, f.retry())
}

fn event(event_type: &[u8], data: &[u8], id: &[u8]) -> Event {
    Event {
        event_type: event_type.to_vec(),
        data: data.to_vec(),
        last_event_id: id.to_vec(),
    }
}

#[test]
fn fields_follow_the_whatwg_rules() {
    let stream = b"\xEF\xBB\xBFdata: a\ndata:b\r\ndata\revent: up\nid: 7\nretry: 1500\n\n\
        : comment\n\nevent: ignored\n\ndata:\n\nid: x\0y\ndata: c\nfoo: bar\nretry: 12a\n\ndata: tail";
    let (events, retry) = decode(&[stream]);
    assert_eq!(
        events,
        [
            event(b"up", b"a\nb\n", b"7"),
            event(b"", b"", b"7"),
            event(b"", b"c", b"7"),
        ]
    );
    assert_eq!(retry, Some(1500));
    // Split everywhere: the same events.
    let bytes: Vec<&[u8]> = stream.chunks(1).collect();
    assert_eq!(decode(&bytes).0, events);
}

#[test]
fn empty_id_resets_the_last_event_id() {
    let (events, _) = decode(&[b"id: 1\ndata: a\n\nid\ndata: b\n\n"]);
    assert_eq!(events, [event(b"", b"a", b"1"), event(b"", b"b", b"")]);
}

fn facts_of(stream: &[u8], collect_text: bool) -> SseFramer {
    let options = Options {
        openai: true,
        collect_text,
        ..Options::default()
    };
    let mut f = SseFramer::with_options(1 << 20, options);
    f.feed_to_vec(stream).unwrap();
    f.finish().unwrap();
    f
}

const CHAT: &[u8] = b"data: {\"id\":\"c1\",\"created\":5,\"model\":\"gpt-4o\",\"choices\":[{\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"finish_reason\":null}]}\n\n\
data: {\"id\":\"c1\",\"model\":\"gpt-4o\",\"choices\":[{\"delta\":{\"content\":\"Hel\"},\"finish_reason\":null}],\"usage\":null}\n\n\
data: {\"id\":\"c1\",\"model\":\"gpt-4o\",\"choices\":[{\"delta\":{\"content\":\"lo \\\"you\\\"\"},\"finish_reason\":null}]}\n\n\
data: {\"id\":\"c1\",\"model\":\"gpt-4o\",\"choices\":[{\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n\
data: {\"id\":\"c1\",\"model\":\"gpt-4o\",\"choices\":[],\"usage\":{\"prompt_tokens\":9,\"completion_tokens\":3,\"total_tokens\":12}}\n\n\
data: [DONE]\n\n";

#[test]
fn reads_openai_facts_parsing_only_what_can_hold_them() {
    let f = facts_of(CHAT, false);
    let facts = f.facts();
    assert_eq!(facts.model.as_deref(), Some("gpt-4o"));
    assert_eq!(facts.id.as_deref(), Some("c1"));
    assert_eq!(facts.created, Some(5));
    assert_eq!(facts.finish_reason.as_deref(), Some("stop"));
    assert_eq!(
        facts.usage,
        Some(Usage {
            prompt_tokens: 9,
            completion_tokens: 3,
            total_tokens: 12
        })
    );
    assert_eq!(facts.error, None);
    assert!(f.done());
    // The first (model), the finish_reason and the usage chunks; not the two
    // content-only chunks.
    assert_eq!(facts.parsed, 3);
    assert_eq!(facts.text, "");
}

#[test]
fn collects_generated_text_on_request() {
    let f = facts_of(CHAT, true);
    assert_eq!(f.facts().text, "Hello \"you\"");
    let completions =
        b"data: {\"choices\":[{\"text\":\"ab\"}]}\n\ndata: {\"choices\":[{\"text\":\"c\"}]}\n\n";
    assert_eq!(facts_of(completions, true).facts().text, "abc");
    let tools = b"data: {\"choices\":[{\"delta\":{\"tool_calls\":[{\"function\":{\"name\":\"f\",\"arguments\":\"{\\\"a\\\"\"}}]}}]}\n\n";
    assert_eq!(facts_of(tools, true).facts().text, "f{\"a\"");
}

#[test]
fn notices_in_stream_errors() {
    let f = facts_of(
        b"data: {\"error\": {\"message\":\"boom\",\"type\":\"server_error\"}}\n\n",
        false,
    );
    assert_eq!(
        f.facts().error.as_deref(),
        Some(r#"{"message":"boom","type":"server_error"}"#)
    );
    let f = facts_of(b"event: error\ndata: not json\n\n", false);
    assert_eq!(f.facts().error.as_deref(), Some("not json"));
    let f = facts_of(b"data: {\"error\":null,\"choices\":[]}\n\n", false);
    assert_eq!(f.facts().error, None);
}

#[test]
fn holds_done_and_what_follows_it() {
    let options = Options {
        hold_done: true,
        ..Options::default()
    };
    let mut f = SseFramer::with_options(1 << 20, options);
    assert_eq!(
        f.feed_to_vec(b"data: a\n\ndata: [DO").unwrap(),
        b"data: a\n\n"
    );
    assert_eq!(f.feed_to_vec(b"NE]\n\ndata: late\n\n").unwrap(), b"");
    assert_eq!(f.feed_to_vec(b": after\n\n").unwrap(), b"");
    assert_eq!(f.take_held(), b"data: [DONE]\n\ndata: late\n\n: after\n\n");
    assert_eq!(f.take_held(), b"");
    assert!(f.done());
    // Without [DONE] nothing is held.
    let mut f = SseFramer::with_options(1 << 20, options);
    assert_eq!(f.feed_to_vec(b"data: a\n\n").unwrap(), b"data: a\n\n");
    assert_eq!(f.take_held(), b"");
}
