//! SIP calls from mirrored signalling (issue 6; seed 004's half-call model):
//! the messages of one dialog (one Call-ID) as a capture agent such as
//! Kamailio's siptrace mirrors them over HEP make one call with two legs,
//! the originating half (O-CDR, the caller's side of the server) and the
//! terminating half (T-CDR, the callee's side).
//!
//! The state machine reads [`SipSignal`]s, the few facts of a message the
//! CDRs need, so it does not depend on how the message was parsed. A
//! proxy mirrors a relayed message twice (as received and as sent) and
//! some messages once; every fact is therefore kept as the earliest time
//! it was seen, and a message seen twice changes nothing.

use std::net::SocketAddr;

use cdrhub_model::{Call, Disposition, Leg, Timestamp};
use serde::Serialize;
use serde_json::{Value, json};

use crate::cms::{CallKey, KeyKind, Touched};

/// What a SIP message says that the CDRs need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SipSignal {
    /// The capture time of the message.
    pub at: Timestamp,
    pub src: SocketAddr,
    pub dst: SocketAddr,
    pub call_id: String,
    pub kind: SignalKind,
    /// The CSeq method (the request's own method, or the one a response
    /// answers).
    pub cseq_method: String,
    pub cseq: u32,
    /// User parts of From, To and P-Asserted-Identity, as sent.
    pub from_user: Option<String>,
    pub from_tag: Option<String>,
    pub to_user: Option<String>,
    pub to_tag: Option<String>,
    pub asserted_user: Option<String>,
    /// The Request-URI's user part (requests).
    pub request_user: Option<String>,
    /// The Q.850 cause of a Reason header.
    pub q850_cause: Option<u16>,
    /// The media of an SDP body, if the message has one.
    pub media: Option<SdpSummary>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignalKind {
    Request(String),
    Response(u16),
}

/// What an SDP offer or answer says of the call's media.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SdpSummary {
    /// An `m=video` line with a port other than 0.
    pub video: bool,
    /// Every active stream is `sendonly` or `inactive`, or the connection
    /// address is 0.0.0.0: the sender holds the call.
    pub hold: bool,
}

/// Who ended the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Releaser {
    Caller,
    Callee,
    /// A final error response ended the call (the callee's side or the
    /// network refused it).
    Network,
}

/// One dialog: one call, as its half-call CDRs describe it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SipDialog {
    pub call_id: String,
    /// The caller's address (the first INVITE's source).
    pub caller_addr: Option<SocketAddr>,
    /// The callee's address (where the INVITE went on to).
    pub callee_addr: Option<SocketAddr>,
    pub caller_tag: Option<String>,
    /// P-Asserted-Identity, else From, of the first INVITE.
    pub caller: Option<String>,
    /// The Request-URI of the first INVITE.
    pub dialed: Option<String>,
    /// The Request-URI of the INVITE as it went on to the callee, which
    /// differs after a redirect or an IVR.
    pub destination: Option<String>,
    pub setup_at: Option<Timestamp>,
    /// The first 180 or 183.
    pub ring_at: Option<Timestamp>,
    /// The 200 to the first INVITE.
    pub connect_at: Option<Timestamp>,
    pub release_at: Option<Timestamp>,
    pub released_by: Option<Releaser>,
    /// The final status of the first INVITE.
    pub status: Option<u16>,
    pub q850_cause: Option<u16>,
    /// A CANCEL came, and whether the call had rung by then.
    pub cancelled: bool,
    pub cancelled_after_ringing: bool,
    pub video: bool,
    /// Holds and resumes, in order: (time, held).
    pub holds: Vec<(Timestamp, bool)>,
    /// The CSeq of the first INVITE: responses with another one answer a
    /// re-INVITE.
    pub invite_cseq: Option<u32>,
    /// The last message's time.
    pub last_at: Option<Timestamp>,
    /// Closed without a BYE by the dialog timeout.
    pub timed_out: bool,
}

fn earliest(slot: &mut Option<Timestamp>, at: Timestamp) {
    *slot = Some(slot.map_or(at, |s| s.min(at)));
}

impl SipDialog {
    /// Applies one message of the dialog.
    pub fn apply(&mut self, s: &SipSignal) {
        if self.call_id.is_empty() {
            self.call_id.clone_from(&s.call_id);
        }
        self.last_at = Some(self.last_at.map_or(s.at, |t| t.max(s.at)));
        match &s.kind {
            SignalKind::Request(method) => self.request(method, s),
            SignalKind::Response(status) => self.response(*status, s),
        }
    }

    fn is_initial_invite(&self, s: &SipSignal) -> bool {
        s.to_tag.is_none()
    }

    fn request(&mut self, method: &str, s: &SipSignal) {
        match method {
            "INVITE" if self.is_initial_invite(s) => {
                let first = self.setup_at.is_none_or(|t| s.at < t);
                earliest(&mut self.setup_at, s.at);
                self.invite_cseq = Some(self.invite_cseq.map_or(s.cseq, |c| c.min(s.cseq)));
                if first || self.caller_addr.is_none() {
                    self.caller_addr = Some(s.src);
                    self.caller_tag.clone_from(&s.from_tag);
                    self.caller = s.asserted_user.clone().or(s.from_user.clone());
                    self.dialed.clone_from(&s.request_user);
                }
                // Each copy that goes on takes the callee's side: the last
                // one, by time, is the final target.
                if Some(s.src) != self.caller_addr {
                    self.callee_addr = Some(s.dst);
                    self.destination.clone_from(&s.request_user);
                } else if self.destination.is_none() {
                    self.destination.clone_from(&s.request_user);
                }
                if let Some(m) = s.media {
                    self.video |= m.video;
                }
            }
            "INVITE" => {
                // A re-INVITE: hold or resume, video added.
                if let Some(m) = s.media {
                    self.video |= m.video;
                    let held = self.holds.last().is_some_and(|(_, h)| *h);
                    if m.hold != held {
                        self.holds.push((s.at, m.hold));
                    }
                }
            }
            // A CANCEL after the answer crossed it and changes nothing.
            "CANCEL" if self.connect_at.is_none() => {
                if !self.cancelled {
                    self.cancelled_after_ringing = self.ring_at.is_some_and(|r| r <= s.at);
                }
                self.cancelled = true;
                self.end(s.at, Releaser::Caller);
            }
            "BYE" => {
                let by = if s.from_tag.is_some() && s.from_tag == self.caller_tag {
                    Releaser::Caller
                } else {
                    Releaser::Callee
                };
                self.end(s.at, by);
                if let Some(c) = s.q850_cause {
                    self.q850_cause.get_or_insert(c);
                }
            }
            _ => {}
        }
    }

    fn response(&mut self, status: u16, s: &SipSignal) {
        if s.cseq_method != "INVITE" {
            return;
        }
        // Responses to a re-INVITE (another CSeq) say nothing of the call's
        // setup.
        if self.invite_cseq.is_some_and(|c| c != s.cseq) {
            return;
        }
        match status {
            180 | 183 => earliest(&mut self.ring_at, s.at),
            200..=299 => earliest(&mut self.connect_at, s.at),
            300..=699 => {
                if self.status.is_none_or(|old| old < 300) {
                    self.status = Some(status);
                }
                if let Some(c) = s.q850_cause {
                    self.q850_cause.get_or_insert(c);
                }
                if self.connect_at.is_none() && !self.cancelled {
                    self.end(s.at, Releaser::Network);
                }
            }
            _ => {}
        }
        if (200..300).contains(&status) && self.status.is_none_or(|old| old >= 300) {
            self.status = Some(status);
        }
    }

    fn end(&mut self, at: Timestamp, by: Releaser) {
        if self.release_at.is_none_or(|r| at < r) {
            self.release_at = Some(at);
            self.released_by = Some(by);
        }
    }

    pub fn is_finished(&self) -> bool {
        self.release_at.is_some()
    }

    /// Closes a dialog that never saw its end.
    pub fn time_out(&mut self, at: Timestamp) {
        if self.release_at.is_none() {
            self.release_at = Some(at);
            self.timed_out = true;
        }
    }

    /// Talk seconds: from the answer to the release.
    pub fn talk_s(&self) -> Option<i64> {
        match (self.connect_at, self.release_at) {
            (Some(c), Some(r)) => Some(r.seconds_since(c).max(0)),
            _ => None,
        }
    }

    /// The disposition of an ended call (issue 6, point 3).
    pub fn disposition(&self) -> Option<Disposition> {
        self.release_at?;
        if self.connect_at.is_some() {
            return Some(Disposition::Answered);
        }
        if self.cancelled {
            return Some(if self.cancelled_after_ringing {
                Disposition::NoAnswer
            } else {
                Disposition::Cancelled
            });
        }
        Some(match self.status {
            Some(486 | 600) => Disposition::Busy,
            Some(408 | 480) => Disposition::NoAnswer,
            Some(487) => Disposition::Cancelled,
            Some(403 | 603) => Disposition::Rejected,
            Some(_) => Disposition::Failed,
            // Timed out before any answer.
            None => Disposition::Failed,
        })
    }
}

/// Why a HEP packet makes no SIP event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotSip {
    #[error("HEP packet does not decode: {0}")]
    Hep(String),
    #[error("HEP packet carries no payload")]
    NoPayload,
    #[error("HEP packet does not carry SIP: {0}")]
    Sip(String),
    /// REGISTER, OPTIONS, SUBSCRIBE, MESSAGE ...: no call.
    #[error("a {0} transaction is not part of a call")]
    NotACall(String),
}

/// The methods of a call's dialog (RFC 3261, 3262, 3311, 6086).
const CALL_METHODS: [&str; 7] = ["INVITE", "ACK", "BYE", "CANCEL", "PRACK", "UPDATE", "INFO"];

/// The SIP event a HEP packet carries: the message's facts at its capture
/// time (else when it arrived).
pub fn event_of_hep(bytes: &[u8], received_at: Timestamp) -> Result<SipEvent, NotSip> {
    use cdrhub_protocols::{hep, sip};
    let packet = hep::decode(bytes).map_err(|e| NotSip::Hep(e.to_string()))?;
    let payload = packet.payload.as_deref().ok_or(NotSip::NoPayload)?;
    // A sender that writes a Latin-1 display name sends headers that are
    // not UTF-8; the call is still read, the odd bytes replaced.
    let lossy;
    let payload = match std::str::from_utf8(payload) {
        Ok(_) => payload,
        Err(_) => {
            lossy = String::from_utf8_lossy(payload).into_owned();
            lossy.as_bytes()
        }
    };
    let message = sip::parse(payload).map_err(|e| NotSip::Sip(e.to_string()))?;
    let method = message.cseq.method.as_str();
    if !CALL_METHODS.contains(&method) {
        return Err(NotSip::NotACall(method.to_owned()));
    }
    let unknown = SocketAddr::from(([0, 0, 0, 0], 0));
    let user = |n: &sip::NameAddr<'_>| n.uri.user.map(str::to_owned);
    let kind = match message.status_code() {
        Some(code) => SignalKind::Response(code),
        None => SignalKind::Request(message.method().as_str().to_owned()),
    };
    let media = message.sdp().ok().flatten().map(|sdp| SdpSummary {
        video: sdp
            .media
            .iter()
            .any(|m| m.kind.eq_ignore_ascii_case("video") && !m.is_disabled()),
        hold: sdp.is_on_hold(),
    });
    let signal = SipSignal {
        at: packet.timestamp().unwrap_or(received_at),
        src: packet.src.socket_addr().unwrap_or(unknown),
        dst: packet.dst.socket_addr().unwrap_or(unknown),
        call_id: message.call_id.to_owned(),
        kind,
        cseq_method: message.cseq.method.as_str().to_owned(),
        cseq: message.cseq.number,
        from_user: user(&message.from),
        from_tag: message.from.tag().map(str::to_owned),
        to_user: user(&message.to),
        to_tag: message.to.tag().map(str::to_owned),
        asserted_user: message
            .p_asserted_identity()
            .ok()
            .flatten()
            .and_then(|n| n.uri.user.map(str::to_owned)),
        request_user: message
            .request_uri()
            .and_then(|u| u.user.map(str::to_owned)),
        q850_cause: message
            .reasons()
            .flatten()
            .find(|r| r.protocol.eq_ignore_ascii_case("Q.850"))
            .and_then(|r| r.cause),
        media,
    };
    Ok(SipEvent {
        received_at,
        signal,
    })
}

/// The key of a dialog seen by capture agent `sender`.
pub fn call_key(sender: &str, call_id: &str) -> i64 {
    CallKey {
        kind: KeyKind::SipCall,
        id: &format!("{sender}/{call_id}"),
    }
    .hash()
}

/// A SIP message as cdrhub received it: its facts and its journal id.
#[derive(Debug, Clone, PartialEq)]
pub struct SipEvent {
    pub received_at: Timestamp,
    pub signal: SipSignal,
}

/// One call of a SIP source: its dialog and the records it came from.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SipCallGroup {
    /// The capture agent (`capture id@address`).
    pub sender: String,
    pub dialog: SipDialog,
    pub records: Vec<i64>,
    /// Ended by hand.
    pub forced_end: Option<Timestamp>,
}

/// The flag of a dialog closed by the dialog timeout without a BYE.
pub const TIMED_OUT_FLAG: &str = "timed_out";

impl SipCallGroup {
    pub fn apply(&mut self, event: &SipEvent, record: i64) -> Touched {
        if self.records.contains(&record) {
            return Touched::Nothing;
        }
        self.records.push(record);
        self.records.sort_unstable();
        self.dialog.apply(&event.signal);
        Touched::Call
    }

    pub fn absorb(&mut self, other: SipCallGroup) {
        if self.sender.is_empty() {
            self.sender = other.sender;
        }
        // Facts keep their earliest copy, so the records are applied again
        // in time order by the store when calls merge; here the dialogs'
        // facts are joined as they are.
        let d = other.dialog;
        let mine = &mut self.dialog;
        for (slot, t) in [
            (&mut mine.setup_at, d.setup_at),
            (&mut mine.ring_at, d.ring_at),
            (&mut mine.connect_at, d.connect_at),
        ] {
            if let Some(t) = t {
                earliest(slot, t);
            }
        }
        if mine.release_at.is_none() {
            mine.release_at = d.release_at;
            mine.released_by = d.released_by;
        }
        mine.caller = mine.caller.take().or(d.caller);
        mine.dialed = mine.dialed.take().or(d.dialed);
        mine.destination = mine.destination.take().or(d.destination);
        mine.status = mine.status.or(d.status);
        mine.video |= d.video;
        self.records.extend(other.records);
        self.records.sort_unstable();
        self.records.dedup();
        self.forced_end = match (self.forced_end, other.forced_end) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
    }

    pub fn keys(&self) -> Vec<i64> {
        if self.dialog.call_id.is_empty() {
            return Vec::new();
        }
        vec![call_key(&self.sender, &self.dialog.call_id)]
    }

    pub fn record_ids(&self) -> Vec<i64> {
        self.records.clone()
    }

    pub fn is_finished(&self) -> bool {
        self.forced_end.is_some() || self.dialog.is_finished()
    }

    pub fn leg_ids(&self) -> Vec<String> {
        vec!["O".to_owned(), "T".to_owned()]
    }

    /// The call and its two halves: the O-CDR (the caller's side) and,
    /// once the INVITE went on, the T-CDR (the callee's side).
    pub fn summarize(&self, call_id: &str, sender: &str) -> (Call, Vec<Leg>) {
        let d = &self.dialog;
        let ended_at = d.release_at.or(self.forced_end);
        let started_at = d.setup_at.or(d.last_at).unwrap_or(Timestamp(0));
        let disposition = if d.release_at.is_some() {
            d.disposition()
        } else {
            ended_at.map(|_| {
                if d.connect_at.is_some() {
                    Disposition::Answered
                } else {
                    Disposition::Failed
                }
            })
        };
        let talk_s = match (d.connect_at, ended_at) {
            (Some(c), Some(e)) => Some(e.seconds_since(c).max(0)),
            _ => None,
        };
        let cause = match (d.status, d.q850_cause) {
            (Some(s), Some(q)) => Some(format!("SIP {s}; Q.850 {q}")),
            (Some(s), None) => Some(format!("SIP {s}")),
            (None, Some(q)) => Some(format!("Q.850 {q}")),
            (None, None) => None,
        };
        let half = |id: &str, remote: Option<String>, local: Option<String>, dir: &str| Leg {
            id: id.to_owned(),
            call_id: call_id.to_owned(),
            source_leg_id: format!("{}/{id}", d.call_id),
            remote_party: remote,
            local_address: local,
            display_name: None,
            direction: Some(dir.to_owned()),
            leg_type: Some("sip".to_owned()),
            sip_call_id: Some(d.call_id.clone()),
            started_at: d.setup_at,
            connected_at: d.connect_at,
            ended_at,
            duration_s: talk_s,
            reason: cause.clone(),
            remote_teardown: d
                .released_by
                .map(|r| matches!((id, r), ("O", Releaser::Caller) | ("T", Releaser::Callee))),
            disposition,
            media: json!({ "video": d.video }),
            alarms: Vec::new(),
            details: Value::Null,
        };
        let mut legs = vec![half("O", d.caller.clone(), d.dialed.clone(), "incoming")];
        if d.callee_addr.is_some() {
            legs.push(half(
                "T",
                d.destination.clone(),
                d.caller.clone(),
                "outgoing",
            ));
        }
        let mut flags = Vec::new();
        if d.timed_out {
            flags.push(TIMED_OUT_FLAG.to_owned());
        }
        if d.release_at.is_none() && self.forced_end.is_some() {
            flags.push(cdrhub_model::FORCED_END_FLAG.to_owned());
        }
        let call = Call {
            id: call_id.to_owned(),
            source: cdrhub_model::SOURCE_SIP.to_owned(),
            sender: sender.to_owned(),
            kind: "sip".to_owned(),
            caller: d.caller.clone(),
            dialed: d.dialed.clone(),
            destination: d.destination.clone(),
            direction: None,
            started_at,
            answered_at: d.connect_at,
            ended_at,
            duration_s: ended_at.map(|e| e.seconds_since(started_at)),
            talk_s,
            disposition,
            cause,
            media: Some(if d.video { "video" } else { "audio" }.to_owned()),
            legs: legs.len() as u32,
            legs_completed: None,
            max_active_legs: None,
            flags,
            details: Value::Null,
        };
        (call, legs)
    }

    /// The half-call facts a CDR table shows beyond the call's columns.
    pub fn details(&self) -> Value {
        let d = &self.dialog;
        json!({
            "call_id": d.call_id,
            "ring_at": d.ring_at,
            "status": d.status,
            "q850_cause": d.q850_cause,
            "released_by": d.released_by,
            "holds": d.holds.iter().map(|(t, held)| json!({ "at": t, "held": held })).collect::<Vec<_>>(),
            "video": d.video,
            "caller_address": d.caller_addr.map(|a| a.to_string()),
            "callee_address": d.callee_addr.map(|a| a.to_string()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CALLER: &str = "127.0.0.1:5061";
    const PROXY: &str = "127.0.0.1:5070";
    const CALLEE: &str = "127.0.0.1:5080";

    fn signal(at_ms: i64, src: &str, dst: &str, kind: SignalKind, cseq: (u32, &str)) -> SipSignal {
        SipSignal {
            at: Timestamp(1_700_000_000_000 + at_ms),
            src: src.parse().unwrap(),
            dst: dst.parse().unwrap(),
            call_id: "1-1@127.0.0.1".into(),
            kind,
            cseq_method: cseq.1.into(),
            cseq: cseq.0,
            from_user: Some("sipp".into()),
            from_tag: Some("a".into()),
            to_user: Some("5080".into()),
            to_tag: None,
            asserted_user: None,
            request_user: Some("5080".into()),
            q850_cause: None,
            media: None,
        }
    }

    fn req(at: i64, src: &str, dst: &str, method: &str, cseq: u32) -> SipSignal {
        signal(
            at,
            src,
            dst,
            SignalKind::Request(method.into()),
            (cseq, method),
        )
    }

    fn resp(at: i64, src: &str, dst: &str, status: u16, cseq: (u32, &str)) -> SipSignal {
        let mut s = signal(at, src, dst, SignalKind::Response(status), cseq);
        s.to_tag = (status > 100).then(|| "b".into());
        s
    }

    fn in_dialog(mut s: SipSignal) -> SipSignal {
        s.to_tag = Some("b".into());
        s
    }

    /// A call through the proxy, each relayed message mirrored twice.
    fn answered() -> SipDialog {
        let mut d = SipDialog::default();
        for s in [
            req(0, CALLER, PROXY, "INVITE", 1),
            req(2, PROXY, CALLEE, "INVITE", 1),
            resp(3, PROXY, CALLER, 100, (1, "INVITE")),
            resp(10, CALLEE, PROXY, 180, (1, "INVITE")),
            resp(11, PROXY, CALLER, 180, (1, "INVITE")),
            resp(210, CALLEE, PROXY, 200, (1, "INVITE")),
            resp(211, PROXY, CALLER, 200, (1, "INVITE")),
            in_dialog(req(212, CALLER, PROXY, "ACK", 1)),
            in_dialog(req(213, PROXY, CALLEE, "ACK", 1)),
            in_dialog(req(5_212, CALLER, PROXY, "BYE", 2)),
            in_dialog(req(5_213, PROXY, CALLEE, "BYE", 2)),
            resp(5_214, CALLEE, PROXY, 200, (2, "BYE")),
        ] {
            d.apply(&s);
        }
        d
    }

    #[test]
    fn an_answered_call_keeps_the_earliest_copy_of_each_message() {
        let d = answered();
        assert_eq!(d.caller_addr, Some(CALLER.parse().unwrap()));
        assert_eq!(d.callee_addr, Some(CALLEE.parse().unwrap()));
        assert_eq!(d.caller.as_deref(), Some("sipp"));
        assert_eq!(d.dialed.as_deref(), Some("5080"));
        assert_eq!(d.ring_at, Some(Timestamp(1_700_000_000_010)));
        assert_eq!(d.connect_at, Some(Timestamp(1_700_000_000_210)));
        assert_eq!(d.released_by, Some(Releaser::Caller));
        assert_eq!(d.talk_s(), Some(5));
        assert_eq!(d.status, Some(200));
        assert_eq!(d.disposition(), Some(Disposition::Answered));
    }

    #[test]
    fn refusals_and_cancels_take_their_dispositions() {
        for (status, disposition) in [
            (486, Disposition::Busy),
            (600, Disposition::Busy),
            (480, Disposition::NoAnswer),
            (408, Disposition::NoAnswer),
            (403, Disposition::Rejected),
            (603, Disposition::Rejected),
            (404, Disposition::Failed),
            (503, Disposition::Failed),
        ] {
            let mut d = SipDialog::default();
            d.apply(&req(0, CALLER, PROXY, "INVITE", 1));
            d.apply(&req(1, PROXY, CALLEE, "INVITE", 1));
            let mut r = resp(5, CALLEE, PROXY, status, (1, "INVITE"));
            r.q850_cause = Some(17);
            d.apply(&r);
            d.apply(&resp(6, PROXY, CALLER, status, (1, "INVITE")));
            assert_eq!(d.disposition(), Some(disposition), "{status}");
            assert_eq!(d.released_by, Some(Releaser::Network));
            assert_eq!(d.q850_cause, Some(17));
        }
        // Cancelled after ringing: no answer; before: cancelled.
        for (ring, disposition) in [
            (true, Disposition::NoAnswer),
            (false, Disposition::Cancelled),
        ] {
            let mut d = SipDialog::default();
            d.apply(&req(0, CALLER, PROXY, "INVITE", 1));
            if ring {
                d.apply(&resp(10, PROXY, CALLER, 180, (1, "INVITE")));
            }
            d.apply(&req(500, CALLER, PROXY, "CANCEL", 1));
            d.apply(&resp(502, PROXY, CALLER, 487, (1, "INVITE")));
            assert_eq!(d.disposition(), Some(disposition), "rang: {ring}");
            assert_eq!(d.release_at, Some(Timestamp(1_700_000_000_500)));
            assert_eq!(d.status, Some(487));
        }
    }

    #[test]
    fn re_invites_hold_and_resume_and_add_video() {
        let mut d = SipDialog::default();
        let mut invite = req(0, CALLER, PROXY, "INVITE", 1);
        invite.media = Some(SdpSummary::default());
        d.apply(&invite);
        d.apply(&resp(100, PROXY, CALLER, 200, (1, "INVITE")));
        for (at, hold, video) in [
            (1_000, true, false),
            (2_000, true, false),
            (3_000, false, true),
        ] {
            let mut re = in_dialog(req(at, CALLER, PROXY, "INVITE", 2));
            re.media = Some(SdpSummary { video, hold });
            d.apply(&re);
            d.apply(&resp(at + 5, PROXY, CALLER, 200, (2, "INVITE")));
        }
        // A re-INVITE refused changes nothing of the call.
        d.apply(&resp(3_500, PROXY, CALLER, 491, (2, "INVITE")));
        assert_eq!(d.status, Some(200));
        assert_eq!(
            d.holds,
            [
                (Timestamp(1_700_000_001_000), true),
                (Timestamp(1_700_000_003_000), false)
            ]
        );
        assert!(d.video);
        assert_eq!(
            d.connect_at,
            Some(Timestamp(1_700_000_000_100)),
            "re-INVITE 200s change nothing"
        );
        assert!(!d.is_finished());
        d.time_out(Timestamp(1_700_000_010_000));
        assert!(d.timed_out);
        assert_eq!(d.disposition(), Some(Disposition::Answered));
    }

    #[test]
    fn the_callee_hanging_up_is_named() {
        let mut bye = in_dialog(req(6_000, CALLEE, PROXY, "BYE", 1));
        bye.from_tag = Some("b".into());
        bye.q850_cause = Some(16);
        let mut d2 = SipDialog::default();
        for s in [
            req(0, CALLER, PROXY, "INVITE", 1),
            resp(200, PROXY, CALLER, 200, (1, "INVITE")),
            bye,
        ] {
            d2.apply(&s);
        }
        assert_eq!(d2.released_by, Some(Releaser::Callee));
        assert_eq!(d2.q850_cause, Some(16));
    }

    #[test]
    fn a_call_has_an_o_cdr_and_a_t_cdr() {
        let group = SipCallGroup {
            sender: "1@127.0.0.1".into(),
            dialog: answered(),
            records: vec![1, 2],
            forced_end: None,
        };
        let (call, legs) = group.summarize("c", "1@127.0.0.1");
        assert_eq!(call.source, "sip");
        assert_eq!(call.disposition, Some(Disposition::Answered));
        assert_eq!(
            (call.caller.as_deref(), call.dialed.as_deref()),
            (Some("sipp"), Some("5080"))
        );
        assert_eq!(call.talk_s, Some(5));
        assert_eq!(call.cause.as_deref(), Some("SIP 200"));
        assert_eq!(
            legs.iter().map(|l| l.id.as_str()).collect::<Vec<_>>(),
            ["O", "T"]
        );
        assert_eq!(legs[0].remote_teardown, Some(true), "the caller hung up");
        assert_eq!(legs[1].remote_teardown, Some(false));
        assert_eq!(group.keys(), vec![call_key("1@127.0.0.1", "1-1@127.0.0.1")]);
        assert_eq!(group.details()["released_by"], "caller");
    }

    #[test]
    fn a_latin_1_display_name_does_not_lose_the_call() {
        use cdrhub_protocols::hep;
        let sip = b"INVITE sip:5080@127.0.0.1:5070 SIP/2.0\r\n\
Via: SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bK-1\r\n\
From: \"J\xfcrgen\" <sip:200@127.0.0.1>;tag=a\r\n\
To: <sip:5080@127.0.0.1>\r\n\
Call-ID: latin1@127.0.0.1\r\n\
CSeq: 1 INVITE\r\n\
Content-Length: 0\r\n\r\n";
        let packet = hep::HepPacket {
            src: hep::Endpoint {
                ip: Some("127.0.0.1".parse().unwrap()),
                port: Some(5061),
            },
            dst: hep::Endpoint {
                ip: Some("127.0.0.1".parse().unwrap()),
                port: Some(5070),
            },
            payload: Some(std::borrow::Cow::Borrowed(&sip[..])),
            ..hep::HepPacket::default()
        };
        let event = event_of_hep(&hep::encode_v3(&packet), Timestamp(1)).expect("read");
        assert_eq!(event.signal.call_id, "latin1@127.0.0.1");
        assert_eq!(event.signal.from_user.as_deref(), Some("200"));
    }
}
