//! WHATWG event assembly: the data buffer, event type, last event id and reconnection time of a stream.

use super::line::{FieldName, Line};

/// One dispatched event, as an `EventSource` would see it (data still raw
/// bytes: the stream is UTF-8, decoded by whoever needs text).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Event {
    /// `event:` value, or empty for the default type `message`.
    pub event_type: Vec<u8>,
    /// The `data:` values joined with LF.
    pub data: Vec<u8>,
    /// The last event id in force when the event was dispatched.
    pub last_event_id: Vec<u8>,
}

/// Field state of the event being read plus the stream-wide id and retry.
#[derive(Clone, Debug, Default)]
pub struct EventBuilder {
    data: Vec<u8>,
    event_type: Vec<u8>,
    /// Whether any `data` field was seen (an empty `data:` still counts).
    has_data: bool,
    last_event_id: Vec<u8>,
    retry: Option<u64>,
}

impl EventBuilder {
    /// Applies one non-blank line ("process the field").
    pub fn on_line(&mut self, line: Line<'_>) {
        let Line::Field { name, value, .. } = line else {
            return; // comments (and blanks, handled by the caller)
        };
        match name {
            FieldName::Data => {
                if self.has_data {
                    self.data.push(b'\n');
                }
                self.has_data = true;
                self.data.extend_from_slice(value);
            }
            FieldName::Event => {
                self.event_type.clear();
                self.event_type.extend_from_slice(value);
            }
            FieldName::Id => {
                if !value.contains(&0) {
                    self.last_event_id.clear();
                    self.last_event_id.extend_from_slice(value);
                }
            }
            FieldName::Retry => {
                if !value.is_empty() && value.iter().all(u8::is_ascii_digit) {
                    let ms = value.iter().fold(0_u64, |acc, &d| {
                        acc.saturating_mul(10).saturating_add(u64::from(d - b'0'))
                    });
                    self.retry = Some(ms);
                }
            }
            FieldName::Other => {}
        }
    }

    /// At a blank line: the data of the event to dispatch, or `None` when no
    /// `data` field was seen (then nothing is dispatched). Either way the
    /// event type and data are reset afterwards by [`reset`](Self::reset).
    #[must_use]
    pub fn data(&self) -> Option<&[u8]> {
        // The spec appends LF after every value and strips the last one, so its
        // buffer is empty exactly when no data field came; joining with LF gives
        // the same data. A lone `data:` dispatches an event with empty data.
        self.has_data.then_some(self.data.as_slice())
    }

    /// The current event type (empty: `message`).
    #[must_use]
    pub fn event_type(&self) -> &[u8] {
        &self.event_type
    }

    /// The event to dispatch, if any (see [`data`](Self::data)).
    #[must_use]
    pub fn event(&self) -> Option<Event> {
        self.data().map(|data| Event {
            event_type: self.event_type.clone(),
            data: data.to_vec(),
            last_event_id: self.last_event_id.clone(),
        })
    }

    /// Clears the per-event fields (data, type); id and retry persist.
    pub fn reset(&mut self) {
        self.data.clear();
        self.event_type.clear();
        self.has_data = false;
    }

    /// Reconnection time set by the last valid `retry:` field.
    #[must_use]
    pub const fn retry(&self) -> Option<u64> {
        self.retry
    }
}
