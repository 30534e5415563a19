//! What fd2 reads from OpenAI stream events: usage, finish reason, model, id, errors and the generated text.

// Most chunks of a chat stream carry only a content delta. Byte searches on
// the event data decide whether an event can hold anything wanted; only then
// is its JSON parsed (serde_json, borrowed, into a `Value`).

use std::sync::LazyLock;

use memchr::memmem::Finder;
use serde::Deserialize;
use serde_json::Value;
use serde_json::value::RawValue;

/// The members of an event that `learn` reads, each left unparsed (any JSON), the rest skipped:
/// reading a chunk this way costs a fraction of building its `Value`. An event this does not
/// fit (not an object, a member twice) is read as a `Value`, as before.
#[derive(Deserialize)]
struct Members<'a> {
    #[serde(borrow, default)]
    model: Option<&'a RawValue>,
    #[serde(borrow, default)]
    id: Option<&'a RawValue>,
    #[serde(borrow, default)]
    created: Option<&'a RawValue>,
    #[serde(borrow, default)]
    usage: Option<&'a RawValue>,
    #[serde(borrow, default)]
    error: Option<&'a RawValue>,
    #[serde(borrow, default)]
    choices: Option<&'a RawValue>,
}

/// A choice's `finish_reason`, the only member read of it when no text is collected.
#[derive(Deserialize)]
struct FinishReason<'a> {
    #[serde(borrow, default)]
    finish_reason: Option<&'a RawValue>,
}

/// What `Value::as_str` gives of a member: its text when it is a string.
fn as_string(raw: Option<&RawValue>) -> Option<String> {
    let raw = raw?;
    if raw.get().starts_with('"') {
        serde_json::from_str(raw.get()).ok()
    } else {
        None
    }
}

/// A member as a `Value` (`Value::Null` when absent), for the rare members read in full.
fn as_value(raw: Option<&RawValue>) -> Value {
    raw.and_then(|raw| serde_json::from_str(raw.get()).ok())
        .unwrap_or(Value::Null)
}

/// The member names searched for, each with its searcher built once: `memmem::find` builds one
/// per call, and a relay makes four searches per chunk of every stream.
struct Keys {
    model: Finder<'static>,
    usage: Finder<'static>,
    finish_reason: Finder<'static>,
    error: Finder<'static>,
    content: Finder<'static>,
    text: Finder<'static>,
    refusal: Finder<'static>,
    arguments: Finder<'static>,
}

static KEYS: LazyLock<Keys> = LazyLock::new(|| Keys {
    model: Finder::new(b"\"model\""),
    usage: Finder::new(b"\"usage\""),
    finish_reason: Finder::new(b"\"finish_reason\""),
    error: Finder::new(b"\"error\""),
    content: Finder::new(b"\"content\""),
    text: Finder::new(b"\"text\""),
    refusal: Finder::new(b"\"refusal\""),
    arguments: Finder::new(b"\"arguments\""),
});

/// Token counts of a `usage` object.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub total_tokens: u64,
}

/// What has been learnt from the events of one stream so far.
#[derive(Clone, Debug, Default)]
pub struct StreamFacts {
    pub model: Option<String>,
    pub id: Option<String>,
    pub created: Option<i64>,
    /// The last non-null `usage` seen.
    pub usage: Option<Usage>,
    /// The last non-null `finish_reason` seen.
    pub finish_reason: Option<String>,
    /// JSON of the first in-stream error (an `error` member or an `event: error`).
    pub error: Option<String>,
    /// Generated text (content, text, refusal, tool-call arguments), when collected.
    pub text: String,
    /// Events whose JSON had to be parsed (for tests and tuning).
    pub parsed: u64,
    /// `model`, `id` and `created` were read from a parsed event (even if absent there).
    identified: bool,
}

/// Whether `key` (with its quotes) occurs and is followed, after optional
/// whitespace and the colon, by a byte in `starts`.
fn member_starts(data: &[u8], key: &Finder<'static>, starts: &[u8]) -> bool {
    let len = key.needle().len();
    key.find_iter(data).any(|at| {
        let mut rest = data[at + len..]
            .iter()
            .skip_while(|b| b.is_ascii_whitespace());
        if rest.next() != Some(&b':') {
            return false;
        }
        rest.find(|b| !b.is_ascii_whitespace())
            .is_some_and(|b| starts.contains(b))
    })
}

impl StreamFacts {
    /// Looks at one dispatched event; `collect_text` also gathers generated text.
    pub fn observe(&mut self, event_type: &[u8], data: &[u8], collect_text: bool) {
        let keys = &*KEYS;
        let is_error_event = event_type == b"error";
        let wanted = is_error_event
            || (!self.identified && keys.model.find(data).is_some())
            || member_starts(data, &keys.usage, b"{")
            || member_starts(data, &keys.finish_reason, b"\"")
            || (self.error.is_none() && member_starts(data, &keys.error, b"{\""))
            || (collect_text
                && (member_starts(data, &keys.content, b"\"")
                    || member_starts(data, &keys.text, b"\"")
                    || member_starts(data, &keys.refusal, b"\"")
                    || member_starts(data, &keys.arguments, b"\"")));
        if !wanted {
            return;
        }
        if !is_error_event && !collect_text {
            if let Ok(members) = serde_json::from_slice::<Members<'_>>(data) {
                self.parsed += 1;
                self.learn_members(&members);
                return;
            }
        }
        let Ok(value) = serde_json::from_slice::<Value>(data) else {
            if is_error_event && self.error.is_none() {
                self.error = Some(String::from_utf8_lossy(data).into_owned());
            }
            return;
        };
        self.parsed += 1;
        self.learn(&value, is_error_event, collect_text);
    }

    /// `learn` for an event read as `Members` (no error event, no text collected): the same
    /// facts, read the same way.
    fn learn_members(&mut self, members: &Members<'_>) {
        if !self.identified {
            self.identified = true;
            self.model = as_string(members.model);
            self.id = as_string(members.id);
            self.created = members
                .created
                .and_then(|raw| serde_json::from_str::<Value>(raw.get()).ok())
                .and_then(|created| created.as_i64());
        }
        if members.usage.is_some() {
            self.learn_usage(&as_value(members.usage));
        }
        if self.error.is_none() {
            let error = as_value(members.error);
            if !error.is_null() {
                self.error = Some(error.to_string());
            }
        }
        let Some(choices) = members
            .choices
            .and_then(|raw| serde_json::from_str::<Vec<&RawValue>>(raw.get()).ok())
        else {
            return;
        };
        for choice in choices {
            let reason = match serde_json::from_str::<FinishReason<'_>>(choice.get()) {
                Ok(choice) => as_string(choice.finish_reason),
                // Not an object, or a member twice (a `Value` keeps the last): as before.
                Err(_) => serde_json::from_str::<Value>(choice.get())
                    .ok()
                    .and_then(|choice| choice["finish_reason"].as_str().map(str::to_owned)),
            };
            if let Some(reason) = reason {
                self.finish_reason = Some(reason);
            }
        }
    }

    fn learn_usage(&mut self, usage: &Value) {
        if let Some(usage) = usage.as_object() {
            let field = |name: &str| usage.get(name).and_then(Value::as_u64).unwrap_or(0);
            self.usage = Some(Usage {
                prompt_tokens: field("prompt_tokens"),
                completion_tokens: field("completion_tokens"),
                total_tokens: field("total_tokens"),
            });
        }
    }

    fn learn(&mut self, value: &Value, is_error_event: bool, collect_text: bool) {
        if !self.identified {
            self.identified = true;
            self.model = value["model"].as_str().map(str::to_owned);
            self.id = value["id"].as_str().map(str::to_owned);
            self.created = value["created"].as_i64();
        }
        if let Some(usage) = value.get("usage") {
            self.learn_usage(usage);
        }
        if self.error.is_none() {
            match value.get("error") {
                Some(error) if !error.is_null() => self.error = Some(error.to_string()),
                _ if is_error_event => self.error = Some(value.to_string()),
                _ => {}
            }
        }
        let Some(choices) = value["choices"].as_array() else {
            return;
        };
        for choice in choices {
            if let Some(reason) = choice["finish_reason"].as_str() {
                reason.clone_into(self.finish_reason.get_or_insert_with(String::new));
            }
            if collect_text {
                self.collect(choice);
            }
        }
    }

    fn collect(&mut self, choice: &Value) {
        // Chat chunks carry `delta`, legacy completions `text`.
        if let Some(text) = choice["text"].as_str() {
            self.text.push_str(text);
        }
        let delta = &choice["delta"];
        for field in ["content", "refusal"] {
            if let Some(text) = delta[field].as_str() {
                self.text.push_str(text);
            }
        }
        if let Some(calls) = delta["tool_calls"].as_array() {
            for call in calls {
                let function = &call["function"];
                for field in ["name", "arguments"] {
                    if let Some(text) = function[field].as_str() {
                        self.text.push_str(text);
                    }
                }
            }
        }
    }
}
