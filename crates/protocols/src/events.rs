//! The open call-event vocabulary (issue 7): what any system that knows
//! when a call rings, connects, is held and ends can send cdrhub, one JSON
//! object per event, alone, as an NDJSON batch, or one per WebSocket
//! message. See the README's "Send call events from any system".
//!
//! ```json
//! {"type":"setup","call_id":"c-1","key":"c-1/1","at":"2026-12-01T10:00:00Z",
//!  "caller":"201","callee":"5001","direction":"out","media":"audio"}
//! {"type":"answered","call_id":"c-1","key":"c-1/2","at":"2026-12-01T10:00:04Z"}
//! {"type":"ended","call_id":"c-1","key":"c-1/3","at":"2026-12-01T10:02:04Z","by":"callee","sip_status":200}
//! ```

use std::collections::BTreeMap;

use cdrhub_model::{Disposition, Timestamp};
use serde::{Deserialize, Deserializer, Serialize};

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventType {
    /// A call (or a leg of it) is being set up: who calls whom.
    Setup,
    Ringing,
    Answered,
    Held,
    Resumed,
    /// Sent on to `to` (blind or attended transfer, forward).
    Transferred,
    Ended,
    /// An extension registered (`extension`, `contact`, `expires_s`).
    Registration,
    Unregistration,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Setup => "setup",
            EventType::Ringing => "ringing",
            EventType::Answered => "answered",
            EventType::Held => "held",
            EventType::Resumed => "resumed",
            EventType::Transferred => "transferred",
            EventType::Ended => "ended",
            EventType::Registration => "registration",
            EventType::Unregistration => "unregistration",
        }
    }

    pub fn is_registration(self) -> bool {
        matches!(self, EventType::Registration | EventType::Unregistration)
    }
}

/// One call event. Unknown fields are refused, so a misspelt one is not
/// silently lost.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallEvent {
    #[serde(rename = "type")]
    pub kind: EventType,
    /// The sender's own id of the call: its events make one call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call_id: Option<String>,
    /// The event's idempotency key, unique per sender: an event sent again
    /// with the same key is stored once.
    pub key: String,
    /// When it happened: RFC 3339, or milliseconds since the epoch.
    #[serde(deserialize_with = "time_or_millis")]
    pub at: Timestamp,
    /// The leg of the call the event is about (`A`, `B`, a channel name);
    /// one leg when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leg: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caller: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caller_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub callee: Option<String>,
    /// `in`, `out` or `internal`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub direction: Option<String>,
    /// `audio` or `video`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media: Option<String>,
    /// The address the call (or registration) came from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_address: Option<String>,
    /// The SIP Call-ID of the leg, and a universal call id across systems.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sip_call_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ucid: Option<String>,
    /// A call type of the sender's own (`click_to_call`, `queue`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call_type: Option<String>,
    /// `transferred`: the new target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    /// `ended`: the SIP status and Q.850 cause, who hung up (`caller`,
    /// `callee`, `system`), and the disposition if the sender knows it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sip_status: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub q850_cause: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disposition: Option<Disposition>,
    /// `registration`: the extension, its contact and how long it holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extension: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contact: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_s: Option<u32>,
    /// Anything else the sender knows (CTI or skill data, a click-to-call
    /// page's fields): kept with the call, shown on its page.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub data: BTreeMap<String, serde_json::Value>,
    /// Set by `cdrhub import csv` to the file's format: the call is then
    /// of source `csv`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub imported: Option<String>,
}

fn time_or_millis<'de, D: Deserializer<'de>>(d: D) -> Result<Timestamp, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum At {
        Text(String),
        Millis(i64),
    }
    match At::deserialize(d)? {
        At::Text(s) => Timestamp::parse_rfc3339(&s).map_err(|e| {
            serde::de::Error::custom(format!("\"at\" {s:?} is not an RFC 3339 time: {e}"))
        }),
        At::Millis(ms) => Ok(Timestamp::from_millis(ms)),
    }
}

/// Longest idempotency key, call id and leg accepted.
pub const MAX_ID_LEN: usize = 256;

/// Why a body or message holds no valid events: the line (1-based, of an
/// NDJSON batch) and one sentence.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("event {line}: {message}")]
pub struct EventError {
    pub line: usize,
    pub message: String,
}

impl CallEvent {
    /// Checks what the types cannot: the fields each type needs, lengths.
    pub fn validate(&self) -> Result<(), String> {
        let id = |name: &str, v: &str| -> Result<(), String> {
            if v.trim().is_empty() {
                return Err(format!("\"{name}\" is empty"));
            }
            if v.len() > MAX_ID_LEN {
                return Err(format!("\"{name}\" is longer than {MAX_ID_LEN} bytes"));
            }
            Ok(())
        };
        id("key", &self.key)?;
        if let Some(leg) = &self.leg {
            id("leg", leg)?;
        }
        if self.kind.is_registration() {
            match &self.extension {
                Some(e) => id("extension", e)?,
                None => {
                    return Err(format!(
                        "a {} event needs \"extension\"",
                        self.kind.as_str()
                    ));
                }
            }
            if self.kind == EventType::Registration && self.expires_s.is_none() {
                return Err("a registration event needs \"expires_s\"".to_owned());
            }
        } else {
            match &self.call_id {
                Some(c) => id("call_id", c)?,
                None => return Err(format!("a {} event needs \"call_id\"", self.kind.as_str())),
            }
        }
        if self.kind == EventType::Transferred && self.to.is_none() {
            return Err("a transferred event needs \"to\"".to_owned());
        }
        if let Some(d) = &self.direction
            && !matches!(d.as_str(), "in" | "out" | "internal")
        {
            return Err(format!("\"direction\" {d:?} is not in, out or internal"));
        }
        if let Some(m) = &self.media
            && !matches!(m.as_str(), "audio" | "video")
        {
            return Err(format!("\"media\" {m:?} is not audio or video"));
        }
        if let Some(b) = &self.by
            && !matches!(b.as_str(), "caller" | "callee" | "system")
        {
            return Err(format!("\"by\" {b:?} is not caller, callee or system"));
        }
        Ok(())
    }
}

/// The events of a body: one JSON object, a JSON array of them, or NDJSON
/// (one object a line; blank lines skipped). Every event is checked; the
/// first bad one makes the whole body an error, so a batch is taken whole
/// or not at all.
pub fn decode(body: &[u8]) -> Result<Vec<CallEvent>, EventError> {
    let text = std::str::from_utf8(body).map_err(|e| EventError {
        line: 1 + body[..e.valid_up_to()]
            .iter()
            .filter(|b| **b == b'\n')
            .count(),
        message: format!("the body is not UTF-8 (byte {})", e.valid_up_to()),
    })?;
    let trimmed = text.trim_start();
    let events: Vec<(usize, CallEvent)> = if trimmed.starts_with('[') {
        let values: Vec<serde_json::Value> =
            serde_json::from_str(text).map_err(|e| EventError {
                line: e.line(),
                message: format!("the body is not a JSON array of events: {e}"),
            })?;
        values
            .into_iter()
            .enumerate()
            .map(|(i, v)| {
                serde_json::from_value(v)
                    .map(|e| (i + 1, e))
                    .map_err(|e| EventError {
                        line: i + 1,
                        message: e.to_string(),
                    })
            })
            .collect::<Result<_, _>>()?
    } else {
        let mut out = Vec::new();
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let event = serde_json::from_str(line).map_err(|e| EventError {
                line: i + 1,
                message: e.to_string(),
            })?;
            out.push((i + 1, event));
        }
        out
    };
    if events.is_empty() {
        return Err(EventError {
            line: 1,
            message: "the body holds no event".to_owned(),
        });
    }
    let mut out = Vec::with_capacity(events.len());
    for (line, event) in events {
        event
            .validate()
            .map_err(|message| EventError { line, message })?;
        out.push(event);
    }
    Ok(out)
}

/// One event read back from the journal (as [`encode_one`] wrote it).
pub fn decode_one(payload: &[u8]) -> Result<CallEvent, String> {
    serde_json::from_slice(payload).map_err(|e| e.to_string())
}

/// The journal's copy of an event.
pub fn encode_one(event: &CallEvent) -> Vec<u8> {
    serde_json::to_vec(event).expect("an event serializes")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ndjson_json_and_arrays_decode() {
        let ndjson = br#"{"type":"setup","call_id":"c-1","key":"k1","at":"2026-12-01T10:00:00Z","caller":"201","callee":"5001","direction":"out","media":"video","data":{"guest":"Ann"}}

{"type":"answered","call_id":"c-1","key":"k2","at":1796119204000}
{"type":"ended","call_id":"c-1","key":"k3","at":"2026-12-01T10:02:04Z","by":"callee","sip_status":200,"q850_cause":16}
"#;
        let events = decode(ndjson).unwrap();
        assert_eq!(events.len(), 3);
        assert_eq!(events[0].kind, EventType::Setup);
        assert_eq!(events[0].data["guest"], "Ann");
        assert_eq!(events[1].at, Timestamp::from_millis(1_796_119_204_000));
        assert_eq!(events[2].q850_cause, Some(16));
        let array = format!(
            "[{}]",
            String::from_utf8_lossy(ndjson)
                .lines()
                .filter(|l| !l.is_empty())
                .collect::<Vec<_>>()
                .join(",")
        );
        assert_eq!(decode(array.as_bytes()).unwrap(), events);
        // The journal's copy reads back the same.
        assert_eq!(decode_one(&encode_one(&events[0])).unwrap(), events[0]);
    }

    #[test]
    fn bad_events_name_their_line_and_field() {
        let cases: [(&[u8], &str); 8] = [
            (b"", "event 1: the body holds no event"),
            (b"{\"type\":\"setup\",\"key\":\"k\",\"at\":\"2026-12-01T10:00:00Z\"}", "event 1: a setup event needs \"call_id\""),
            (b"\n{\"type\":\"rung\",\"call_id\":\"c\",\"key\":\"k\",\"at\":0}", "event 2: unknown variant `rung`"),
            (b"{\"type\":\"ended\",\"call_id\":\"c\",\"key\":\"k\",\"at\":\"yesterday\"}", "event 1: \"at\" \"yesterday\" is not an RFC 3339 time"),
            (b"{\"type\":\"ended\",\"call_id\":\"c\",\"key\":\"k\",\"at\":0,\"colour\":\"red\"}", "event 1: unknown field `colour`"),
            (b"{\"type\":\"setup\",\"call_id\":\"c\",\"key\":\"\",\"at\":0}", "event 1: \"key\" is empty"),
            (b"{\"type\":\"registration\",\"key\":\"k\",\"at\":0,\"extension\":\"2001\"}", "event 1: a registration event needs \"expires_s\""),
            (b"{\"type\":\"setup\",\"call_id\":\"c\",\"key\":\"k\",\"at\":0,\"direction\":\"up\"}", "event 1: \"direction\" \"up\" is not in, out or internal"),
        ];
        for (body, want) in cases {
            let got = decode(body).unwrap_err().to_string();
            assert!(got.starts_with(want), "{got:?} should start with {want:?}");
        }
        assert!(
            decode(b"{\"type\":\"setup\"\xff}")
                .unwrap_err()
                .message
                .contains("not UTF-8")
        );
    }
}
