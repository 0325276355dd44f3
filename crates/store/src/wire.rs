//! A submission as bytes, for the ingest bus (issue 8): a collector
//! publishes each accepted batch to NATS JetStream and a worker submits it
//! to its store. Only what was received travels (the CMS body, datagrams,
//! frames, lines, HEP packets, events), with the server's own facts (when,
//! from whom, the session it was numbered in); the worker decodes it again
//! with the same pure decoders, so the journal's deduplication keys are
//! the ones the collector's own store would have used, and a message
//! delivered twice is stored once.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use cdrhub_model::Timestamp;
use serde::{Deserialize, Serialize};

use crate::{
    CmsIngest, CtiIngest, CtiIngestMessage, EventIngest, EventsIngest, FeedIngest, FeedIngestLine,
    GatewayLogEntry, GatewayLogKind, GatewayRegistration, HepIngest, HepIngestPacket, IngestBatch,
    IngestPayload, RadiusIngest, RadiusIngestRequest,
};

/// The layout version; a worker refuses another.
const VERSION: u32 = 1;

/// Why a message does not make a submission.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bus message: {0}")]
pub struct WireError(pub String);

mod b64 {
    use super::*;
    pub fn serialize<S: serde::Serializer>(b: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(b))
    }
    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        STANDARD.decode(text).map_err(serde::de::Error::custom)
    }
}

#[derive(Serialize, Deserialize)]
struct Message {
    v: u32,
    sender: String,
    received_at: Timestamp,
    payload: Payload,
}

#[derive(Serialize, Deserialize)]
#[serde(tag = "source", rename_all = "snake_case")]
enum Payload {
    Cms {
        receiver: String,
        #[serde(with = "b64")]
        body: Vec<u8>,
    },
    Cti {
        node: String,
        session: String,
        version: u32,
        messages: Vec<Numbered>,
    },
    Radius {
        requests: Vec<Datagram>,
    },
    Feed {
        login: String,
        lines: Vec<Line>,
        log: Vec<LogEntry>,
        registration: Option<Registration>,
    },
    Hep {
        session: String,
        packets: Vec<Numbered>,
    },
    Events {
        imported: bool,
        events: Vec<Event>,
    },
}

#[derive(Serialize, Deserialize)]
struct Numbered {
    seq: u64,
    at: Timestamp,
    #[serde(with = "b64")]
    bytes: Vec<u8>,
}

#[derive(Serialize, Deserialize)]
struct Datagram {
    nas: String,
    at: Timestamp,
    #[serde(with = "b64")]
    bytes: Vec<u8>,
}

#[derive(Serialize, Deserialize)]
struct Line {
    at: Timestamp,
    line: String,
}

#[derive(Serialize, Deserialize)]
struct LogEntry {
    at: Timestamp,
    gateway: Option<String>,
    kind: GatewayLogKind,
    address: String,
    text: String,
}

#[derive(Serialize, Deserialize)]
struct Registration {
    name: String,
    gateway_id: String,
    mac: String,
    address: String,
    public_address: Option<String>,
    fxs: u16,
    fxo: u16,
    isdn: u16,
    call_ref: u32,
    clock: String,
    clock_offset_s: Option<i64>,
    last_login: Timestamp,
}

#[derive(Serialize, Deserialize)]
struct Event {
    at: Timestamp,
    event: cdrhub_protocols::events::CallEvent,
}

/// The bytes a collector publishes for `batch`.
pub fn encode(batch: &IngestBatch) -> Vec<u8> {
    let payload = match &batch.payload {
        IngestPayload::Cms(c) => Payload::Cms {
            receiver: c.receiver.clone(),
            body: c.body.to_vec(),
        },
        IngestPayload::Cti(c) => Payload::Cti {
            node: c.node.clone(),
            session: c.session.clone(),
            version: c.version,
            messages: c
                .messages
                .iter()
                .map(|m| Numbered {
                    seq: m.seq,
                    at: m.received_at,
                    bytes: m.frame.to_vec(),
                })
                .collect(),
        },
        IngestPayload::Radius(r) => Payload::Radius {
            requests: r
                .requests
                .iter()
                .map(|r| Datagram {
                    nas: r.nas.clone(),
                    at: r.received_at,
                    bytes: r.datagram.to_vec(),
                })
                .collect(),
        },
        IngestPayload::Feed(f) => Payload::Feed {
            login: f.login.clone(),
            lines: f
                .lines
                .iter()
                .map(|l| Line {
                    at: l.received_at,
                    line: l.line.clone(),
                })
                .collect(),
            log: f
                .log
                .iter()
                .map(|e| LogEntry {
                    at: e.at,
                    gateway: e.gateway.clone(),
                    kind: e.kind,
                    address: e.address.clone(),
                    text: e.text.clone(),
                })
                .collect(),
            registration: f.registration.as_deref().map(|r| Registration {
                name: r.name.clone(),
                gateway_id: r.gateway_id.clone(),
                mac: r.mac.clone(),
                address: r.address.clone(),
                public_address: r.public_address.clone(),
                fxs: r.fxs,
                fxo: r.fxo,
                isdn: r.isdn,
                call_ref: r.call_ref,
                clock: r.clock.clone(),
                clock_offset_s: r.clock_offset_s,
                last_login: r.last_login,
            }),
        },
        IngestPayload::Hep(h) => Payload::Hep {
            session: h.session.clone(),
            packets: h
                .packets
                .iter()
                .map(|p| Numbered {
                    seq: p.seq,
                    at: p.received_at,
                    bytes: p.bytes.to_vec(),
                })
                .collect(),
        },
        IngestPayload::Events(e) => Payload::Events {
            imported: e.imported,
            events: e
                .events
                .iter()
                .map(|e| Event {
                    at: e.received_at,
                    event: e.event.clone(),
                })
                .collect(),
        },
    };
    serde_json::to_vec(&Message {
        v: VERSION,
        sender: batch.sender.clone(),
        received_at: batch.received_at,
        payload,
    })
    .expect("a bus message serializes")
}

/// The submission a worker makes of a message: decoded again as its
/// collector decoded it. A part that no longer decodes is an error (the
/// collector accepted it, so this build reads it differently).
pub fn decode(bytes: &[u8]) -> Result<IngestBatch, WireError> {
    let m: Message =
        serde_json::from_slice(bytes).map_err(|e| WireError(format!("does not read: {e}")))?;
    if m.v != VERSION {
        return Err(WireError(format!(
            "layout {} is not this build's ({VERSION})",
            m.v
        )));
    }
    let bad = |what: &str, e: &dyn std::fmt::Display| WireError(format!("{what}: {e}"));
    let payload = match m.payload {
        Payload::Cms { receiver, body } => {
            let batch = cdrhub_protocols::cms::decode(&body).map_err(|e| bad("CMS body", &e))?;
            IngestPayload::Cms(CmsIngest {
                receiver,
                body: Bytes::from(body),
                batch,
            })
        }
        Payload::Cti {
            node,
            session,
            version,
            messages,
        } => IngestPayload::Cti(CtiIngest {
            node,
            session,
            version,
            messages: messages
                .into_iter()
                .map(|n| {
                    let message = cdrhub_protocols::cti::decode(&n.bytes, version)
                        .map_err(|e| bad("CTI frame", &e))?;
                    Ok(CtiIngestMessage {
                        seq: n.seq,
                        received_at: n.at,
                        frame: Bytes::from(n.bytes),
                        message,
                    })
                })
                .collect::<Result<_, WireError>>()?,
        }),
        Payload::Radius { requests } => IngestPayload::Radius(RadiusIngest {
            requests: requests
                .into_iter()
                .map(|d| {
                    let packet = cdrhub_protocols::radius::decode(&d.bytes)
                        .map_err(|e| bad("RADIUS datagram", &e))?;
                    Ok(RadiusIngestRequest {
                        nas: d.nas,
                        received_at: d.at,
                        authenticator: packet.authenticator,
                        accounting: cdrhub_protocols::radius::parse_accounting(&packet),
                        datagram: Bytes::from(d.bytes),
                    })
                })
                .collect::<Result<_, WireError>>()?,
        }),
        Payload::Feed {
            login,
            lines,
            log,
            registration,
        } => IngestPayload::Feed(FeedIngest {
            login,
            lines: lines
                .into_iter()
                .map(|l| {
                    let message = cdrhub_protocols::feed::parse_line(&l.line)
                        .map_err(|e| bad("feed line", &e))?;
                    Ok(FeedIngestLine {
                        received_at: l.at,
                        line: l.line,
                        message,
                    })
                })
                .collect::<Result<_, WireError>>()?,
            log: log
                .into_iter()
                .map(|e| GatewayLogEntry {
                    at: e.at,
                    gateway: e.gateway,
                    kind: e.kind,
                    address: e.address,
                    text: e.text,
                })
                .collect(),
            registration: registration.map(|r| {
                Box::new(GatewayRegistration {
                    name: r.name,
                    gateway_id: r.gateway_id,
                    mac: r.mac,
                    address: r.address,
                    public_address: r.public_address,
                    fxs: r.fxs,
                    fxo: r.fxo,
                    isdn: r.isdn,
                    call_ref: r.call_ref,
                    clock: r.clock,
                    clock_offset_s: r.clock_offset_s,
                    last_login: r.last_login,
                })
            }),
        }),
        Payload::Hep { session, packets } => IngestPayload::Hep(HepIngest {
            session,
            packets: packets
                .into_iter()
                .map(|p| HepIngestPacket {
                    seq: p.seq,
                    received_at: p.at,
                    event: cdrhub_correlate::sip::event_of_hep(&p.bytes, p.at).ok(),
                    bytes: Bytes::from(p.bytes),
                })
                .collect(),
        }),
        Payload::Events { imported, events } => IngestPayload::Events(EventsIngest {
            imported,
            events: events
                .into_iter()
                .map(|e| EventIngest {
                    received_at: e.at,
                    event: e.event,
                })
                .collect(),
        }),
    };
    Ok(IngestBatch {
        sender: m.sender,
        received_at: m.received_at,
        payload,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seed(n: usize) -> Vec<u8> {
        let path = format!(
            "{}/../../tests/data/cms/seed-000-post{n}.xml",
            env!("CARGO_MANIFEST_DIR")
        );
        std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    #[test]
    fn a_cms_batch_travels_whole() {
        let body = seed(1);
        let batch = IngestBatch {
            sender: "cb1".into(),
            received_at: Timestamp(1_700_000_000_000),
            payload: IngestPayload::Cms(CmsIngest {
                receiver: "/ingest/cms".into(),
                body: Bytes::from(body.clone()),
                batch: cdrhub_protocols::cms::decode(&body).unwrap(),
            }),
        };
        let back = decode(&encode(&batch)).unwrap();
        assert_eq!(back.sender, "cb1");
        assert_eq!(back.received_at, batch.received_at);
        let (IngestPayload::Cms(a), IngestPayload::Cms(b)) = (&batch.payload, &back.payload) else {
            panic!("a CMS batch");
        };
        assert_eq!(
            (a.receiver.as_str(), &a.body),
            (b.receiver.as_str(), &b.body)
        );
        assert_eq!(a.batch.records.len(), b.batch.records.len());
    }

    #[test]
    fn a_bad_message_is_an_error() {
        assert!(decode(b"{}").is_err());
        assert!(
            decode(b"not json")
                .unwrap_err()
                .to_string()
                .starts_with("bus message: does not read")
        );
        let other = br#"{"v":9,"sender":"s","received_at":"2026-12-01T00:00:00Z","payload":{"source":"events","imported":false,"events":[]}}"#;
        assert!(decode(other).unwrap_err().to_string().contains("layout 9"));
    }

    fn data(path: &str) -> Vec<u8> {
        let path = format!("{}/../../tests/data/{path}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    fn hex(text: &str) -> Vec<u8> {
        let text: String = text.split_whitespace().collect();
        (0..text.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
            .collect()
    }

    fn round_trip(payload: IngestPayload) -> IngestPayload {
        let batch = IngestBatch {
            sender: "s".into(),
            received_at: Timestamp(1_700_000_000_123),
            payload,
        };
        let back = decode(&encode(&batch)).unwrap();
        assert_eq!(
            (back.sender.as_str(), back.received_at),
            ("s", batch.received_at)
        );
        assert_eq!(back.payload.record_count(), batch.payload.record_count());
        back.payload
    }

    #[test]
    fn every_source_travels_with_what_its_journal_keeps() {
        // RADIUS: the datagram, decoded again to the same accounting.
        let datagram = hex(&String::from_utf8(data("radius/start.hex")).unwrap());
        let packet = cdrhub_protocols::radius::decode(&datagram).unwrap();
        let accounting = cdrhub_protocols::radius::parse_accounting(&packet);
        let IngestPayload::Radius(r) = round_trip(IngestPayload::Radius(RadiusIngest {
            requests: vec![RadiusIngestRequest {
                nas: "10.0.0.1".into(),
                received_at: Timestamp(5),
                datagram: Bytes::from(datagram.clone()),
                authenticator: packet.authenticator,
                accounting: accounting.clone(),
            }],
        })) else {
            panic!("RADIUS")
        };
        assert_eq!(r.requests[0].accounting, accounting);
        assert_eq!(r.requests[0].authenticator, packet.authenticator);
        assert_eq!(
            (r.requests[0].nas.as_str(), r.requests[0].received_at),
            ("10.0.0.1", Timestamp(5))
        );

        // HEP: the packet, and the SIP event read again from it.
        let stream = data("hep/kamailio-uac-uas.hepstream");
        let n = u32::from_be_bytes(stream[..4].try_into().unwrap()) as usize;
        let first = stream[4..4 + n].to_vec();
        let IngestPayload::Hep(h) = round_trip(IngestPayload::Hep(HepIngest {
            session: "run-1".into(),
            packets: vec![HepIngestPacket {
                seq: 7,
                received_at: Timestamp(9),
                bytes: Bytes::from(first.clone()),
                event: None,
            }],
        })) else {
            panic!("HEP")
        };
        assert_eq!((h.session.as_str(), h.packets[0].seq), ("run-1", 7));
        assert_eq!(h.packets[0].bytes.as_ref(), &first[..]);
        assert!(
            h.packets[0].event.is_some(),
            "the worker reads the SIP again"
        );

        // CTI: the frames of a MIVR trace, in the session's version.
        let trace = String::from_utf8(data("cti/mivr-answered-call.log")).unwrap();
        let entry = cdrhub_protocols::cti::trace::parse(&trace, 2026)
            .into_iter()
            .find_map(Result::ok)
            .unwrap();
        let frame = cdrhub_protocols::cti::encode(&entry.message, 14);
        let IngestPayload::Cti(c) = round_trip(IngestPayload::Cti(CtiIngest {
            node: "uccx-a:42027".into(),
            session: "conn-1".into(),
            version: 14,
            messages: vec![CtiIngestMessage {
                seq: 3,
                received_at: entry.time,
                frame: Bytes::from(frame.clone()),
                message: entry.message.clone(),
            }],
        })) else {
            panic!("CTI")
        };
        assert_eq!(c.messages[0].message, entry.message);
        assert_eq!(
            (c.node.as_str(), c.version, c.messages[0].seq),
            ("uccx-a:42027", 14, 3)
        );

        // The gateway feed: lines, and the log and registration they made.
        let line =
            "GWFEED/1 HOOK_OFF seq=2 gw=8200 mac=000C2A020082 ref=1 port=1 at=2000-01-01T08:13:11";
        let registration = GatewayRegistration {
            name: "8200_000C2A020082".into(),
            gateway_id: "8200".into(),
            mac: "000C2A020082".into(),
            address: "127.0.0.1:4000".into(),
            public_address: None,
            fxs: 2,
            fxo: 2,
            isdn: 0,
            call_ref: 74,
            clock: "2000-01-02T08:17:38".into(),
            clock_offset_s: Some(-5),
            last_login: Timestamp(11),
        };
        let log = GatewayLogEntry {
            at: Timestamp(11),
            gateway: Some("8200_000C2A020082".into()),
            kind: GatewayLogKind::Login,
            address: "127.0.0.1:4000".into(),
            text: "Login!".into(),
        };
        let IngestPayload::Feed(f) = round_trip(IngestPayload::Feed(FeedIngest {
            login: "login-1".into(),
            lines: vec![FeedIngestLine {
                received_at: Timestamp(12),
                line: line.into(),
                message: cdrhub_protocols::feed::parse_line(line).unwrap(),
            }],
            log: vec![log.clone()],
            registration: Some(Box::new(registration.clone())),
        })) else {
            panic!("feed")
        };
        assert_eq!(f.login, "login-1");
        assert_eq!(
            f.lines[0].message,
            cdrhub_protocols::feed::parse_line(line).unwrap()
        );
        assert_eq!(f.log, [log]);
        assert_eq!(f.registration.as_deref(), Some(&registration));

        // Call events, imported or not.
        let event: cdrhub_protocols::events::CallEvent = serde_json::from_str(
            r#"{"type":"ended","call_id":"c","key":"k","at":"2026-12-01T10:00:00Z","data":{"a":1}}"#,
        )
        .unwrap();
        let IngestPayload::Events(e) = round_trip(IngestPayload::Events(EventsIngest {
            imported: true,
            events: vec![EventIngest {
                received_at: Timestamp(13),
                event: event.clone(),
            }],
        })) else {
            panic!("events")
        };
        assert!(e.imported);
        assert_eq!(
            (e.events[0].received_at, &e.events[0].event),
            (Timestamp(13), &event)
        );
    }
}
