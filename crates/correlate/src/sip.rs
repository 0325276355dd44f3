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
    /// How many Via values the message has: a request with one was sent
    /// by the address it came from, not relayed.
    pub vias: usize,
    /// The correlation header's value (`X-CID` unless configured
    /// otherwise): a B2BUA's two dialogs that carry the same value, or
    /// whose value is the other's Call-ID, are one call.
    pub correlation: Option<String>,
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
    /// The CSeqs of the INVITEs that set the call up: the first one and
    /// those sent again after a challenge (401, 407) or a redirect (3xx).
    /// Responses with another CSeq answer a re-INVITE.
    pub invite_cseqs: Vec<u32>,
    /// Where the first INVITE went: the callee, for a dialog a B2BUA
    /// started.
    pub first_hop: Option<SocketAddr>,
    /// The last message's time.
    pub last_at: Option<Timestamp>,
    /// When cdrhub received the last message (its own clock): the dialog
    /// timeout counts from here, so messages that arrive late (an agent's
    /// backlog) are not taken for silence.
    pub last_received: Option<Timestamp>,
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
        // A message after the timeout closed the dialog: it was not over.
        if self.timed_out {
            self.timed_out = false;
            self.release_at = None;
            self.released_by = None;
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
                let latest = self.invite_cseqs.iter().max().copied();
                if latest.is_some_and(|l| s.cseq > l) {
                    // Sent again after a challenge or a redirect: the final
                    // error that answered the last attempt did not end the
                    // call. A redirect's new target is the destination.
                    if self.connect_at.is_none() && self.released_by == Some(Releaser::Network) {
                        self.release_at = None;
                        self.released_by = None;
                        self.status = None;
                        self.q850_cause = None;
                    }
                    self.destination.clone_from(&s.request_user);
                }
                if !self.invite_cseqs.contains(&s.cseq) {
                    self.invite_cseqs.push(s.cseq);
                }
                if first || self.caller_addr.is_none() {
                    self.caller_addr = Some(s.src);
                    self.first_hop = Some(s.dst);
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
        // setup, nor does a final error to an attempt sent again since.
        if !self.invite_cseqs.is_empty() && !self.invite_cseqs.contains(&s.cseq) {
            return;
        }
        if status >= 300 && self.invite_cseqs.iter().any(|c| *c > s.cseq) {
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
    /// OPTIONS, SUBSCRIBE, MESSAGE ...: no call and no registration.
    #[error("a {0} transaction is not part of a call")]
    NotACall(String),
}

/// The methods of a call's dialog (RFC 3261, 3262, 3311, 6086).
const CALL_METHODS: [&str; 7] = ["INVITE", "ACK", "BYE", "CANCEL", "PRACK", "UPDATE", "INFO"];

/// The header that joins a B2BUA's dialogs into one call when none is
/// configured: the one Homer and Kamailio's examples use.
pub const DEFAULT_CORRELATION_HEADER: &str = "X-CID";

static CORRELATION_HEADER: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// Sets, once per process and before any packet is read, the header whose
/// value joins dialogs (`[sources.hep] correlation_header`); empty turns
/// it off. The journal is read again with the same header after a restart,
/// so it must not change while the server runs. Whether it was set (false
/// if it already was).
pub fn set_correlation_header(name: &str) -> bool {
    CORRELATION_HEADER.set(name.to_owned()).is_ok()
}

fn correlation_header() -> &'static str {
    CORRELATION_HEADER
        .get()
        .map_or(DEFAULT_CORRELATION_HEADER, String::as_str)
}

/// What a REGISTER or its response says of an extension's bindings
/// (RFC 3261 §10).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Register {
    /// The user of the address-of-record (To).
    pub extension: String,
    /// Each Contact with its own `expires` parameter; `*` removes every
    /// binding.
    pub contacts: Vec<(String, Option<u32>)>,
    /// The Expires header.
    pub expires: Option<u32>,
    pub user_agent: Option<String>,
}

impl Register {
    /// How long `contact` is bound for, as the message says.
    pub fn expiry_of(&self, contact: &(String, Option<u32>)) -> Option<u32> {
        contact.1.or(self.expires)
    }
}

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
    let is_register = method == "REGISTER";
    if !is_register && !CALL_METHODS.contains(&method) {
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
    let header = correlation_header();
    let correlation = (!header.is_empty())
        .then(|| message.header(header))
        .flatten()
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty());
    let register = is_register.then(|| Register {
        extension: message
            .to
            .uri
            .user
            .map_or_else(|| message.to.uri.host.to_owned(), str::to_owned),
        contacts: message
            .contacts()
            .filter_map(Result::ok)
            .map(|c| match c {
                sip::Contact::Wildcard => ("*".to_owned(), None),
                sip::Contact::Address(a) => (
                    a.uri.raw.to_owned(),
                    a.params.get("expires").and_then(|e| e.trim().parse().ok()),
                ),
            })
            .collect(),
        expires: message.expires().ok().flatten(),
        user_agent: message.header("User-Agent").map(|v| v.trim().to_owned()),
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
        vias: message.vias().count(),
        correlation,
    };
    Ok(SipEvent {
        received_at,
        signal,
        register,
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

/// A B2BUA sends its outgoing INVITE this long at most after the incoming
/// one arrived, for the two to be joined by numbers and timing.
pub const B2BUA_WINDOW_MS: i64 = 2_000;

/// The hint of a call that reached address `at` (or left from it) with
/// these numbers in the window starting at `bucket`.
fn b2bua_hint(sender: &str, at: SocketAddr, caller: &str, dialed: &str, bucket: i64) -> i64 {
    CallKey {
        kind: KeyKind::SipB2bua,
        id: &format!("{sender}/{at}/{caller}/{dialed}/{bucket}"),
    }
    .hash()
}

impl SipEvent {
    /// The keys of the call this message belongs to: its dialog's, and
    /// the correlation header's value taken as the other dialog's Call-ID
    /// (a B2BUA that copies the incoming Call-ID into `X-CID`, or writes
    /// one value into both dialogs).
    pub fn keys(&self, sender: &str) -> Vec<i64> {
        let s = &self.signal;
        let mut keys = vec![call_key(sender, &s.call_id)];
        if let Some(c) = s.correlation.as_deref().filter(|c| *c != s.call_id) {
            keys.push(call_key(sender, c));
        }
        keys
    }

    /// How a B2BUA's two dialogs without a correlation header are joined,
    /// by numbers and timing: an initial INVITE that reached address X
    /// leaves marks (held in memory a few seconds) for its caller and
    /// dialed number; an initial INVITE that X itself sent (one Via: not
    /// relayed) with the same numbers within [`B2BUA_WINDOW_MS`] finds the
    /// mark, and the two dialogs are one call. A proxy relays with its own
    /// Via on top, so its copies leave marks but never look for one.
    /// Returns (what to look for, what to leave).
    pub fn b2bua_hints(&self, sender: &str) -> (Vec<i64>, Vec<i64>) {
        let s = &self.signal;
        let is_initial_invite =
            matches!(&s.kind, SignalKind::Request(m) if m == "INVITE") && s.to_tag.is_none();
        let (Some(caller), Some(dialed)) = (
            s.asserted_user.as_deref().or(s.from_user.as_deref()),
            s.request_user.as_deref(),
        ) else {
            return (Vec::new(), Vec::new());
        };
        if !is_initial_invite || self.register.is_some() {
            return (Vec::new(), Vec::new());
        }
        let bucket = s.at.0.div_euclid(B2BUA_WINDOW_MS);
        let marks = vec![
            b2bua_hint(sender, s.dst, caller, dialed, bucket),
            b2bua_hint(sender, s.dst, caller, dialed, bucket + 1),
        ];
        let probes = if s.vias == 1 {
            vec![b2bua_hint(sender, s.src, caller, dialed, bucket)]
        } else {
            Vec::new()
        };
        (probes, marks)
    }
}

/// A SIP message as cdrhub received it: its facts and its journal id.
#[derive(Debug, Clone, PartialEq)]
pub struct SipEvent {
    pub received_at: Timestamp,
    pub signal: SipSignal,
    /// A REGISTER or a response to one: bindings, not a call.
    pub register: Option<Register>,
}

/// How long a dialog may go without a message before it is closed and
/// marked [`TIMED_OUT_FLAG`] (`[sources.hep]` `setup_timeout_s` and
/// `dialog_timeout_s`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DialogTimeouts {
    /// A call not answered yet (RFC 3261's Timer C is three minutes).
    pub setup_ms: i64,
    /// An answered call: a BYE lost by the capture, or a phone that lost
    /// power. Session timers refresh a live call well within it.
    pub answered_ms: i64,
}

impl Default for DialogTimeouts {
    fn default() -> Self {
        DialogTimeouts {
            setup_ms: 300_000,
            answered_ms: 4 * 3_600_000,
        }
    }
}

/// One call of a SIP source: its dialogs and the records they came from.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SipCallGroup {
    /// The capture agent (`capture id@address`).
    pub sender: String,
    /// The call's dialogs, the earliest first: one through a proxy, one
    /// per side of each B2BUA.
    pub dialogs: Vec<SipDialog>,
    pub records: Vec<i64>,
    /// Ended by hand.
    pub forced_end: Option<Timestamp>,
}

/// A call's raw cause as the CDRs show it: the SIP status and the Q.850
/// cause, whichever are known (`SIP 486; Q.850 17`).
pub fn cause_text(sip_status: Option<u16>, q850_cause: Option<u16>) -> Option<String> {
    match (sip_status, q850_cause) {
        (Some(s), Some(q)) => Some(format!("SIP {s}; Q.850 {q}")),
        (Some(s), None) => Some(format!("SIP {s}")),
        (None, Some(q)) => Some(format!("Q.850 {q}")),
        (None, None) => None,
    }
}

/// The flag of a dialog closed by the dialog timeout without a BYE.
pub const TIMED_OUT_FLAG: &str = "timed_out";

fn setup_order(d: &SipDialog) -> (bool, Option<Timestamp>) {
    (d.setup_at.is_none(), d.setup_at)
}

impl SipCallGroup {
    pub fn apply(&mut self, event: &SipEvent, record: i64) -> Touched {
        if event.register.is_some() || self.records.contains(&record) {
            return Touched::Nothing;
        }
        self.records.push(record);
        self.records.sort_unstable();
        let s = &event.signal;
        let d = match self.dialogs.iter().position(|d| d.call_id == s.call_id) {
            Some(i) => &mut self.dialogs[i],
            None => {
                self.dialogs.push(SipDialog::default());
                self.dialogs.last_mut().expect("pushed")
            }
        };
        d.apply(s);
        d.last_received = d.last_received.max(Some(event.received_at));
        self.dialogs.sort_by_key(setup_order);
        Touched::Call
    }

    pub fn absorb(&mut self, other: SipCallGroup) {
        if self.sender.is_empty() {
            self.sender = other.sender;
        }
        for d in other.dialogs {
            match self.dialogs.iter_mut().find(|m| m.call_id == d.call_id) {
                Some(mine) => join_dialog(mine, d),
                None => self.dialogs.push(d),
            }
        }
        self.dialogs.sort_by_key(setup_order);
        self.records.extend(other.records);
        self.records.sort_unstable();
        self.records.dedup();
        self.forced_end = match (self.forced_end, other.forced_end) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
    }

    pub fn keys(&self) -> Vec<i64> {
        self.dialogs
            .iter()
            .filter(|d| !d.call_id.is_empty())
            .map(|d| call_key(&self.sender, &d.call_id))
            .collect()
    }

    pub fn record_ids(&self) -> Vec<i64> {
        self.records.clone()
    }

    pub fn is_finished(&self) -> bool {
        self.forced_end.is_some() || self.dialogs.iter().all(SipDialog::is_finished)
    }

    pub fn leg_ids(&self) -> Vec<String> {
        vec!["O".to_owned(), "T".to_owned()]
    }

    /// The time the dialogs still open at `now` would be closed at, if
    /// the timeout has passed for one: its last message.
    pub fn stale_since(&self, now: Timestamp, timeouts: DialogTimeouts) -> Option<Timestamp> {
        if self.forced_end.is_some() {
            return None;
        }
        self.dialogs
            .iter()
            .filter(|d| is_stale(d, now, timeouts))
            .filter_map(|d| d.last_at)
            .max()
    }

    /// Closes every open dialog whose timeout has passed at `now`; whether
    /// one was. A later message opens it again.
    pub fn time_out(&mut self, now: Timestamp, timeouts: DialogTimeouts) -> bool {
        if self.forced_end.is_some() {
            return false;
        }
        let mut closed = false;
        for d in &mut self.dialogs {
            if is_stale(d, now, timeouts)
                && let Some(last) = d.last_at
            {
                d.time_out(last);
                closed = true;
            }
        }
        closed
    }

    /// The call and its two halves: the O-CDR (the caller's side: the
    /// first dialog) and, once the call went on, the T-CDR (the callee's
    /// side: the same dialog through a proxy, the last one through
    /// B2BUAs).
    pub fn summarize(&self, call_id: &str, sender: &str) -> (Call, Vec<Leg>) {
        let empty = SipDialog::default();
        let first = self.dialogs.first().unwrap_or(&empty);
        let last = self.dialogs.last().unwrap_or(&empty);
        let finished = self.dialogs.iter().all(SipDialog::is_finished);
        let released = finished
            .then(|| self.dialogs.iter().filter_map(|d| d.release_at).max())
            .flatten();
        let ended_at = released.or(self.forced_end);
        let started_at = first.setup_at.or(first.last_at).unwrap_or(Timestamp(0));
        let disposition = if released.is_some() {
            first.disposition()
        } else {
            ended_at.map(|_| {
                if first.connect_at.is_some() {
                    Disposition::Answered
                } else {
                    Disposition::Failed
                }
            })
        };
        let talk = |d: &SipDialog, end: Option<Timestamp>| match (d.connect_at, end) {
            (Some(c), Some(e)) => Some(e.seconds_since(c).max(0)),
            _ => None,
        };
        let talk_s = talk(first, first.release_at.or(ended_at));
        let cause_of = |d: &SipDialog| cause_text(d.status, d.q850_cause);
        let video = self.dialogs.iter().any(|d| d.video);
        let half =
            |id: &str, d: &SipDialog, remote: Option<String>, local: Option<String>, dir: &str| {
                let leg_end = d.release_at.or(self.forced_end);
                Leg {
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
                    ended_at: leg_end,
                    duration_s: talk(d, leg_end),
                    reason: cause_of(d),
                    remote_teardown: d.released_by.map(|r| {
                        matches!((id, r), ("O", Releaser::Caller) | ("T", Releaser::Callee))
                    }),
                    disposition: if d.release_at.is_some() {
                        d.disposition()
                    } else {
                        leg_end.and(disposition)
                    },
                    media: json!({ "video": d.video }),
                    alarms: Vec::new(),
                    details: Value::Null,
                }
            };
        let destination = last.destination.clone().or(first.destination.clone());
        let mut legs = vec![half(
            "O",
            first,
            first.caller.clone(),
            first.dialed.clone(),
            "incoming",
        )];
        if self.dialogs.len() > 1 || last.callee_addr.is_some() {
            legs.push(half(
                "T",
                last,
                destination.clone(),
                first.caller.clone(),
                "outgoing",
            ));
        }
        let mut flags = Vec::new();
        if self.dialogs.iter().any(|d| d.timed_out) {
            flags.push(TIMED_OUT_FLAG.to_owned());
        }
        if released.is_none() && self.forced_end.is_some() {
            flags.push(cdrhub_model::FORCED_END_FLAG.to_owned());
        }
        let call = Call {
            id: call_id.to_owned(),
            source: cdrhub_model::SOURCE_SIP.to_owned(),
            sender: sender.to_owned(),
            kind: "sip".to_owned(),
            caller: first.caller.clone(),
            dialed: first.dialed.clone(),
            destination,
            direction: None,
            started_at,
            answered_at: first.connect_at,
            ended_at,
            duration_s: ended_at.map(|e| e.seconds_since(started_at)),
            talk_s,
            disposition,
            cause: cause_of(first).or_else(|| cause_of(last)),
            media: Some(if video { "video" } else { "audio" }.to_owned()),
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
        let empty = SipDialog::default();
        let d = self.dialogs.first().unwrap_or(&empty);
        json!({
            "call_id": d.call_id,
            "call_ids": self.dialogs.iter().map(|d| d.call_id.as_str()).collect::<Vec<_>>(),
            "ring_at": d.ring_at,
            "status": d.status,
            "q850_cause": d.q850_cause.or(self.dialogs.iter().find_map(|d| d.q850_cause)),
            "released_by": d.released_by,
            "holds": self.dialogs.iter().flat_map(|d| &d.holds).map(|(t, held)| json!({ "at": t, "held": held })).collect::<Vec<_>>(),
            "video": self.dialogs.iter().any(|d| d.video),
            "caller_address": d.caller_addr.map(|a| a.to_string()),
            "callee_address": self.dialogs.last().and_then(|l| l.callee_addr.or(if self.dialogs.len() > 1 { l.first_hop } else { None })).map(|a| a.to_string()),
            "timed_out": self.dialogs.iter().any(|d| d.timed_out),
        })
    }
}

/// Whether an open dialog has had no message for its timeout at `now`
/// (counted from when the last one was received).
fn is_stale(d: &SipDialog, now: Timestamp, timeouts: DialogTimeouts) -> bool {
    let limit = if d.connect_at.is_some() {
        timeouts.answered_ms
    } else {
        timeouts.setup_ms
    };
    let heard = d.last_at.max(d.last_received);
    !d.is_finished() && heard.is_some_and(|h| now.0 - h.0 >= limit)
}

/// Joins what two copies of one dialog knew (calls that merged).
fn join_dialog(mine: &mut SipDialog, d: SipDialog) {
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
    mine.caller_addr = mine.caller_addr.or(d.caller_addr);
    mine.callee_addr = mine.callee_addr.or(d.callee_addr);
    mine.first_hop = mine.first_hop.or(d.first_hop);
    mine.status = mine.status.or(d.status);
    mine.video |= d.video;
    mine.last_at = mine.last_at.max(d.last_at);
    mine.last_received = mine.last_received.max(d.last_received);
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
            vias: 1,
            correlation: None,
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
            dialogs: vec![answered()],
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

    fn event(s: SipSignal) -> SipEvent {
        SipEvent {
            received_at: s.at,
            signal: s,
            register: None,
        }
    }

    const B2BUA: &str = "127.0.0.2:5060";

    /// A B2BUA's two dialogs: the caller's (Call-ID a) to the B2BUA, and
    /// the one it starts (Call-ID b) to the callee, 30 ms later.
    fn b2bua_call(b_offset_ms: i64) -> (Vec<SipSignal>, Vec<SipSignal>) {
        let mut a = vec![
            req(0, CALLER, B2BUA, "INVITE", 1),
            resp(20, B2BUA, CALLER, 180, (1, "INVITE")),
            resp(1_000, B2BUA, CALLER, 200, (1, "INVITE")),
            in_dialog(req(4_000, CALLER, B2BUA, "BYE", 2)),
        ];
        let mut b = vec![
            req(b_offset_ms, B2BUA, CALLEE, "INVITE", 1),
            resp(b_offset_ms + 10, CALLEE, B2BUA, 180, (1, "INVITE")),
            resp(990, CALLEE, B2BUA, 200, (1, "INVITE")),
            in_dialog(req(4_001, B2BUA, CALLEE, "BYE", 2)),
        ];
        for s in &mut a {
            s.call_id = "a@caller".into();
        }
        for s in &mut b {
            s.call_id = "b@b2bua".into();
            s.from_tag = Some("x".into());
        }
        (a, b)
    }

    #[test]
    fn a_b2bua_outgoing_invite_finds_the_mark_of_its_incoming_one() {
        for offset in [30, 1_500, 1_990] {
            let (a, b) = b2bua_call(offset);
            let (a_probes, a_marks) = event(a[0].clone()).b2bua_hints("1@agent");
            let (b_probes, _) = event(b[0].clone()).b2bua_hints("1@agent");
            assert_eq!(b_probes.len(), 1);
            assert!(a_marks.contains(&b_probes[0]), "offset {offset}");
            assert!(
                !a_marks.contains(&a_probes[0]),
                "a call finds no mark of its own"
            );
        }
        // Other numbers, or too late: no join.
        let (a, mut b) = b2bua_call(30);
        let (_, a_marks) = event(a[0].clone()).b2bua_hints("1@agent");
        b[0].request_user = Some("999".into());
        assert!(!a_marks.contains(&event(b[0].clone()).b2bua_hints("1@agent").0[0]));
        let (a, b) = b2bua_call(4_500);
        let (_, a_marks) = event(a[0].clone()).b2bua_hints("1@agent");
        assert!(!a_marks.contains(&event(b[0].clone()).b2bua_hints("1@agent").0[0]));
        // A proxy's relayed copy (two Vias) looks for nothing.
        let mut relayed = req(2, PROXY, CALLEE, "INVITE", 1);
        relayed.vias = 2;
        assert!(event(relayed).b2bua_hints("1@agent").0.is_empty());
    }

    #[test]
    fn a_correlation_header_names_the_other_dialog() {
        let (_, b) = b2bua_call(30);
        let mut invite = b[0].clone();
        invite.correlation = Some("a@caller".into());
        let keys = event(invite).keys("1@agent");
        assert_eq!(
            keys,
            [
                call_key("1@agent", "b@b2bua"),
                call_key("1@agent", "a@caller")
            ]
        );
    }

    #[test]
    fn a_b2bua_call_takes_its_o_cdr_from_the_caller_dialog_and_its_t_cdr_from_the_callee_one() {
        let (a, b) = b2bua_call(30);
        let mut group = SipCallGroup::default();
        // Records arrive interleaved; the B dialog's first.
        for (i, s) in b.iter().chain(&a).enumerate() {
            group.apply(&event(s.clone()), i as i64 + 1);
        }
        let (call, legs) = group.summarize("c", "1@agent");
        assert_eq!(call.caller.as_deref(), Some("sipp"));
        assert_eq!(call.dialed.as_deref(), Some("5080"));
        assert_eq!(call.started_at, Timestamp(1_700_000_000_000));
        assert_eq!(call.answered_at, Some(Timestamp(1_700_000_001_000)));
        assert_eq!(call.ended_at, Some(Timestamp(1_700_000_004_001)));
        assert_eq!(call.talk_s, Some(3));
        assert_eq!(call.disposition, Some(Disposition::Answered));
        assert_eq!(legs.len(), 2);
        assert_eq!(legs[0].sip_call_id.as_deref(), Some("a@caller"));
        assert_eq!(legs[1].sip_call_id.as_deref(), Some("b@b2bua"));
        assert_eq!(legs[1].connected_at, Some(Timestamp(1_700_000_000_990)));
        assert_eq!(legs[0].remote_teardown, Some(true), "the caller hung up");
        assert_eq!(group.details()["call_ids"], json!(["a@caller", "b@b2bua"]));
        assert_eq!(group.details()["callee_address"], CALLEE);
        assert_eq!(group.keys().len(), 2);
        // One dialog ended, the other not: the call is not over.
        let mut half = SipCallGroup::default();
        for (i, s) in a.iter().chain(&b[..3]).enumerate() {
            half.apply(&event(s.clone()), i as i64 + 1);
        }
        assert!(!half.is_finished());
        assert_eq!(half.summarize("c", "1@agent").0.ended_at, None);
    }

    #[test]
    fn dialogs_without_an_end_time_out_at_their_last_message() {
        let timeouts = DialogTimeouts {
            setup_ms: 10_000,
            answered_ms: 60_000,
        };
        let at = |ms: i64| Timestamp(1_700_000_000_000 + ms);
        // Rang, never answered, never cancelled.
        let mut ringing = SipCallGroup::default();
        ringing.apply(&event(req(0, CALLER, PROXY, "INVITE", 1)), 1);
        ringing.apply(&event(resp(50, PROXY, CALLER, 180, (1, "INVITE"))), 2);
        assert_eq!(ringing.stale_since(at(9_000), timeouts), None);
        assert_eq!(ringing.stale_since(at(10_050), timeouts), Some(at(50)));
        assert!(ringing.time_out(at(10_050), timeouts));
        let (call, _) = ringing.summarize("c", "s");
        assert_eq!(call.flags, [TIMED_OUT_FLAG]);
        assert_eq!(call.ended_at, Some(at(50)));
        assert_eq!(call.disposition, Some(Disposition::Failed));
        // Answered, BYE lost: open until the longer timeout.
        let mut answered = SipCallGroup::default();
        answered.apply(&event(req(0, CALLER, PROXY, "INVITE", 1)), 1);
        answered.apply(&event(resp(100, PROXY, CALLER, 200, (1, "INVITE"))), 2);
        assert_eq!(answered.stale_since(at(30_000), timeouts), None);
        assert!(answered.time_out(at(60_100), timeouts));
        let (call, _) = answered.summarize("c", "s");
        assert_eq!(call.flags, [TIMED_OUT_FLAG]);
        assert_eq!(call.disposition, Some(Disposition::Answered));
        assert!(answered.is_finished());
        assert_eq!(answered.stale_since(at(100_000), timeouts), None);
        // The BYE arrives after all (an agent's backlog): the call ends by it.
        answered.apply(&event(in_dialog(req(70_000, CALLER, PROXY, "BYE", 2))), 3);
        let (call, _) = answered.summarize("c", "s");
        assert!(call.flags.is_empty());
        assert_eq!(call.ended_at, Some(at(70_000)));
        // Staleness counts from when the last message was received.
        let mut late = SipCallGroup::default();
        let mut e = event(req(0, CALLER, PROXY, "INVITE", 1));
        e.received_at = at(50_000);
        late.apply(&e, 1);
        assert_eq!(late.stale_since(at(55_000), timeouts), None);
        assert_eq!(late.stale_since(at(60_000), timeouts), Some(at(0)));
    }

    fn register_packet(sip: &str) -> Vec<u8> {
        use cdrhub_protocols::hep;
        let packet = hep::HepPacket {
            src: hep::Endpoint {
                ip: Some("127.0.0.1".parse().unwrap()),
                port: Some(5070),
            },
            dst: hep::Endpoint {
                ip: Some("127.0.0.1".parse().unwrap()),
                port: Some(5061),
            },
            payload: Some(std::borrow::Cow::Owned(
                sip.replace('\n', "\r\n").into_bytes(),
            )),
            ..hep::HepPacket::default()
        };
        hep::encode_v3(&packet)
    }

    #[test]
    fn a_register_response_names_the_extension_and_its_bindings() {
        let ok = "SIP/2.0 200 OK\n\
Via: SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bK-1;rport=5061\n\
From: <sip:1001@127.0.0.1>;tag=a\n\
To: <sip:1001@127.0.0.1>;tag=b\n\
Call-ID: reg-1@127.0.0.1\n\
CSeq: 2 REGISTER\n\
Contact: <sip:1001@127.0.0.1:5061>;expires=3600, <sip:1001@10.0.0.9:5060;transport=tcp>;expires=120\n\
User-Agent: kamailio\n\
Content-Length: 0\n\n";
        let e = event_of_hep(&register_packet(ok), Timestamp(1)).expect("a REGISTER response");
        let r = e.register.expect("register facts");
        assert_eq!(r.extension, "1001");
        assert_eq!(
            r.contacts,
            [
                ("sip:1001@127.0.0.1:5061".to_owned(), Some(3600)),
                ("sip:1001@10.0.0.9:5060;transport=tcp".to_owned(), Some(120))
            ]
        );
        assert_eq!(e.signal.kind, SignalKind::Response(200));
        // A REGISTER is no call.
        let mut group = SipCallGroup::default();
        assert_eq!(
            group.apply(
                &SipEvent {
                    register: Some(r),
                    ..e
                },
                1
            ),
            Touched::Nothing
        );
        let options = ok.replace("REGISTER", "OPTIONS");
        assert_eq!(
            event_of_hep(&register_packet(&options), Timestamp(1)),
            Err(NotSip::NotACall("OPTIONS".into()))
        );
    }

    #[test]
    fn an_invite_sent_again_after_a_challenge_or_a_redirect_is_the_same_call() {
        // 407, then the INVITE with credentials (CSeq 2), answered.
        let mut d = SipDialog::default();
        for s in [
            req(0, CALLER, PROXY, "INVITE", 1),
            resp(5, PROXY, CALLER, 407, (1, "INVITE")),
            req(10, CALLER, PROXY, "ACK", 1),
            req(20, CALLER, PROXY, "INVITE", 2),
            req(22, PROXY, CALLEE, "INVITE", 2),
            resp(200, CALLEE, PROXY, 200, (2, "INVITE")),
            resp(201, PROXY, CALLER, 200, (2, "INVITE")),
            // The 407 copied late changes nothing.
            resp(6, PROXY, CALLER, 407, (1, "INVITE")),
            in_dialog(req(3_201, CALLER, PROXY, "BYE", 3)),
        ] {
            d.apply(&s);
        }
        assert_eq!(d.disposition(), Some(Disposition::Answered));
        assert_eq!(d.status, Some(200));
        assert_eq!(d.talk_s(), Some(3));
        assert_eq!(d.setup_at, Some(Timestamp(1_700_000_000_000)));
        assert_eq!(d.released_by, Some(Releaser::Caller));
        // 302 to another number; the caller tries it (CSeq 2) and gets 486.
        let mut d = SipDialog::default();
        let mut redirected = req(20, CALLER, PROXY, "INVITE", 2);
        redirected.request_user = Some("7000".into());
        for s in [
            req(0, CALLER, PROXY, "INVITE", 1),
            resp(5, PROXY, CALLER, 302, (1, "INVITE")),
            redirected,
            resp(40, PROXY, CALLER, 486, (2, "INVITE")),
        ] {
            d.apply(&s);
        }
        assert_eq!(d.dialed.as_deref(), Some("5080"));
        assert_eq!(d.destination.as_deref(), Some("7000"));
        assert_eq!(d.disposition(), Some(Disposition::Busy));
        assert_eq!(d.release_at, Some(Timestamp(1_700_000_000_040)));
    }
}
