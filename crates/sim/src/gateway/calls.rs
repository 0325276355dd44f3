//! The call shapes of docs/gateway-feed.md, "Report" (seed 001, "CDR
//! Report" and "real-time events"), as the events one gateway sends, each at
//! its time on the gateway's own clock.
//!
//! A gateway's ports are numbered from 1 as its panel labels them: the FXS
//! ports first, then the FXO ports, then the ISDN channels (the seed's
//! gateways: FXS 1–2, FXO 3–4, and its PSTN calls on ports 3 and 4).

use cdrhub_model::Timestamp;
use cdrhub_protocols::feed::{CallEvent, CallEventKind, CodecInfo, GatewayClock};

use super::config::ShapeMix;
use crate::rng::XorShift;

/// The codec the seed's TALK events show: `C(18) M(17)`.
const SEED_CODEC: CodecInfo = CodecInfo::Codes { c: 18, m: 17 };
/// The seed's caller ids from other gateways end in `701` (`8378701`,
/// `2252701`, `1126701`).
const CALLER_SUFFIX: &str = "701";
/// What a port-to-PSTN call dials first on the phone (the seed's port-3
/// calls: Dialed `2`, PSTN Dial `26735152`).
const PSTN_ACCESS_CODE: &str = "2";
/// The PSTN Dial of the seed's call in on an FXO port.
const PSTN_IN_DIAL: &str = "0,";

/// One way a call goes, each with the notation the server's report gives it
/// (docs/gateway-feed.md, "Report").
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum CallShape {
    /// A phone on an FXS port calls out: `HOOK_OFF → DIAL → RING_BACK →
    /// TALK → [DIAL…] → HOOK_ON` (the seed's `ref=1`).
    CallOut,
    /// The PSTN line rings and the gateway places the call to the VoIP
    /// network: `PSTN_CALL_IN → PSTN_HOOK_OFF → PSTN_CONNECTED → DIAL →
    /// RING_BACK → TALK → [DIAL…] → REMOTE_HOOK_ON → PSTN_HOOK_ON →
    /// HOOK_ON` (the seed's `ref=2`, its port-4 "Call out" rows).
    CallOutFromPstn,
    /// A call out through the PSTN line: `HOOK_OFF → DIAL → PSTN_DIAL →
    /// PSTN_CONNECTED → TALK → HOOK_ON` (the seed's port-3 rows, `ref=88`).
    CallOutViaPstn,
    /// A call from the VoIP network to a phone: `CALL_IN → HOOK_OFF → TALK →
    /// HOOK_ON` (`ref=98`).
    CallIn,
    /// A call from the VoIP network out on an FXO line: `CALL_IN →
    /// PSTN_HOOK_OFF → PSTN_DIAL → PSTN_CONNECTED → TALK → PSTN_HOOK_ON →
    /// HOOK_ON` (the seed's port-4 Call in with PSTN Dial `0,`).
    CallInViaPstn,
    /// `HOOK_OFF → HOOK_ON` with nothing dialled (`ref=89`).
    HookOnOff,
    /// `CALL_IN_REJECT`, no port (`ref=109`).
    CallInReject,
    /// `HOOK_OFF → DIAL → CALL_OUT_FAIL → HOOK_ON` (`ref=113`).
    CallOutFailed,
    /// The PSTN line rings, is answered, and the caller hangs up before the
    /// gateway dials: `PSTN_CALL_IN → PSTN_HOOK_OFF → PSTN_CONNECTED →
    /// PSTN_HOOK_ON → HOOK_ON`, a "Call out failed" by the report's rules.
    PstnAbandoned,
}

/// The report's notations (docs/gateway-feed.md, "Report"; the seed's
/// "Notation" column).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Notation {
    CallOut,
    CallIn,
    HookOnOff,
    CallInReject,
    CallOutFailed,
}

impl Notation {
    /// As the seed's report writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Notation::CallOut => "Call out",
            Notation::CallIn => "Call in",
            Notation::HookOnOff => "Hook On/Off",
            Notation::CallInReject => "Call in reject",
            Notation::CallOutFailed => "Call out failed",
        }
    }
}

impl CallShape {
    pub const ALL: [CallShape; 9] = [
        CallShape::CallOut,
        CallShape::CallOutFromPstn,
        CallShape::CallOutViaPstn,
        CallShape::CallIn,
        CallShape::CallInViaPstn,
        CallShape::HookOnOff,
        CallShape::CallInReject,
        CallShape::CallOutFailed,
        CallShape::PstnAbandoned,
    ];

    /// The name a mix gives it (`out=3,in=2`).
    pub fn name(self) -> &'static str {
        match self {
            CallShape::CallOut => "out",
            CallShape::CallOutFromPstn => "from-pstn",
            CallShape::CallOutViaPstn => "via-pstn",
            CallShape::CallIn => "in",
            CallShape::CallInViaPstn => "in-pstn",
            CallShape::HookOnOff => "hook",
            CallShape::CallInReject => "reject",
            CallShape::CallOutFailed => "failed",
            CallShape::PstnAbandoned => "pstn-abandoned",
        }
    }

    pub fn notation(self) -> Notation {
        match self {
            CallShape::CallOut | CallShape::CallOutFromPstn | CallShape::CallOutViaPstn => {
                Notation::CallOut
            }
            CallShape::CallIn | CallShape::CallInViaPstn => Notation::CallIn,
            CallShape::HookOnOff => Notation::HookOnOff,
            CallShape::CallInReject => Notation::CallInReject,
            CallShape::CallOutFailed | CallShape::PstnAbandoned => Notation::CallOutFailed,
        }
    }

    /// Whether the report's "Only PSTN" filter shows it: the call has a
    /// `PSTN_CALL_IN` or a `PSTN_DIAL`.
    pub fn only_pstn(self) -> bool {
        self.uses_pstn_line()
    }

    /// Whether the call needs a PSTN line (an FXO port or ISDN channel).
    fn uses_pstn_line(self) -> bool {
        matches!(
            self,
            CallShape::CallOutFromPstn
                | CallShape::CallOutViaPstn
                | CallShape::CallInViaPstn
                | CallShape::PstnAbandoned
        )
    }

    /// The shape played instead on a gateway without PSTN lines.
    fn without_pstn(self) -> CallShape {
        match self {
            CallShape::CallOutFromPstn | CallShape::CallOutViaPstn => CallShape::CallOut,
            CallShape::CallInViaPstn => CallShape::CallIn,
            CallShape::PstnAbandoned => CallShape::CallOutFailed,
            other => other,
        }
    }
}

/// How long the parts of a call last on the gateway's clock, in
/// milliseconds; each call varies them by up to half either way. The
/// defaults are the seed's real-time events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timing {
    /// Off hook until the number is dialled (seed: 2 s).
    pub dial_ms: u64,
    /// Between two digits dialled one per event.
    pub digit_ms: u64,
    /// Dialled until the far side rings (seed: 0 to 4 s).
    pub ring_ms: u64,
    /// Ringing, or a call coming in, until it is answered (seed: 1 to 2 s).
    pub answer_ms: u64,
    /// A PSTN number dialled until the line is connected (seed: 2 s).
    pub pstn_ms: u64,
    /// Answered until hung up (the seed's calls last 1 s to 2 hours).
    pub talk_ms: u64,
    /// A failed call's busy tone until the phone is hung up (seed: 6 s).
    pub busy_ms: u64,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            dial_ms: 2_000,
            digit_ms: 600,
            ring_ms: 2_000,
            answer_ms: 1_500,
            pstn_ms: 2_000,
            talk_ms: 60_000,
            busy_ms: 6_000,
        }
    }
}

/// One event of a call, `after_ms` (gateway time) after the one before it;
/// the first event's `after_ms` is 0.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct CallStep {
    pub(super) after_ms: u64,
    pub(super) event: CallEvent,
}

/// One call: its shape and its events in the order the gateway sends them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Call {
    pub(super) shape: CallShape,
    pub(super) call_ref: u32,
    pub(super) steps: Vec<CallStep>,
}

/// A gateway's ports: FXS first, then FXO, then ISDN.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Ports {
    pub(super) fxs: u16,
    pub(super) fxo: u16,
    pub(super) isdn: u16,
}

impl Ports {
    fn pstn_lines(self) -> u16 {
        self.fxo.saturating_add(self.isdn)
    }

    fn all(self) -> u16 {
        self.fxs.saturating_add(self.pstn_lines())
    }
}

/// The gateways of a simulation by id, `first..first + count`, from the
/// point of view of gateway `own`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Peers {
    pub(super) first: u32,
    pub(super) count: u32,
    pub(super) own: u32,
}

/// Makes a gateway's calls: chooses each call's shape, port, numbers and
/// durations with the gateway's own generator.
#[derive(Debug, Clone)]
pub(super) struct CallMaker {
    rng: XorShift,
    ports: Ports,
    /// The gateway's clock at gateway time 0, in milliseconds.
    clock_base_ms: i64,
    /// The reference of the last call made (the LOGIN's `callref`).
    last_ref: u32,
    /// Numbers the gateway calls and is called from: the other gateways' ids.
    peers: Peers,
    timing: Timing,
}

impl CallMaker {
    pub(super) fn new(
        rng: XorShift,
        ports: Ports,
        clock_base_ms: i64,
        first_ref: u32,
        peers: Peers,
        timing: Timing,
    ) -> CallMaker {
        CallMaker {
            rng,
            ports,
            clock_base_ms,
            last_ref: first_ref,
            peers,
            timing,
        }
    }

    /// The reference of the most recent call, 0 if none.
    pub(super) fn last_ref(&self) -> u32 {
        self.last_ref
    }

    /// The gateway's clock at gateway time `ms`, to the second as the
    /// seed's gateways show it.
    pub(super) fn clock_at(&self, ms: u64) -> GatewayClock {
        let ms = i64::try_from(ms).unwrap_or(i64::MAX);
        let at = self.clock_base_ms.saturating_add(ms);
        GatewayClock::Read(Timestamp::from_millis(at - at.rem_euclid(1000)))
    }

    /// The next call, its shape drawn from `mix`, its first event at
    /// gateway time `start_ms`.
    pub(super) fn next_call(&mut self, mix: &ShapeMix, start_ms: u64) -> Call {
        let shape = mix.pick(self.rng.below(mix.total()));
        self.call(shape, start_ms)
    }

    /// The next call, of `shape` (or its form without a PSTN line on a
    /// gateway that has none), its first event at gateway time `start_ms`.
    pub(super) fn call(&mut self, shape: CallShape, start_ms: u64) -> Call {
        let shape = if shape.uses_pstn_line() && self.ports.pstn_lines() == 0 {
            shape.without_pstn()
        } else {
            shape
        };
        // 0 means "no call" in a LOGIN's callref: skip it when wrapping.
        self.last_ref = self.last_ref.checked_add(1).unwrap_or(1);
        let mut call = CallBuilder {
            call_ref: self.last_ref,
            port: None,
            pstn_port: None,
            at_ms: start_ms,
            pending_ms: 0,
            steps: Vec::new(),
        };
        let t = self.timing.clone();
        match shape {
            CallShape::CallOut => {
                call.port = Some(self.phone_port());
                call.step(0, CallEventKind::HookOff);
                let number = self.peer_number();
                let dial = self.rng.around(t.dial_ms);
                self.dial_number(&mut call, dial, &number, t.digit_ms);
                let ring = self.rng.around(t.ring_ms);
                call.step(ring, CallEventKind::RingBack);
                let answer = self.rng.around(t.answer_ms);
                call.step(answer, talk(SEED_CODEC));
                self.talk(&mut call, &t);
                call.step(0, CallEventKind::HookOn);
            }
            CallShape::CallOutFromPstn => {
                call.port = Some(self.pstn_port());
                let caller_id = self.pstn_caller();
                call.step(0, CallEventKind::PstnCallIn { caller_id });
                call.step(0, CallEventKind::PstnHookOff);
                call.step(0, CallEventKind::PstnConnected);
                let number = self.peer_number();
                self.dial_number(&mut call, 0, &number, t.digit_ms);
                let ring = self.rng.around(t.ring_ms);
                call.step(ring, CallEventKind::RingBack);
                let answer = self.rng.around(t.answer_ms / 2);
                call.step(answer, talk(SEED_CODEC));
                self.talk(&mut call, &t);
                call.step(0, CallEventKind::RemoteHookOn);
                call.step(0, CallEventKind::PstnHookOn);
                call.step(0, CallEventKind::HookOn);
            }
            CallShape::CallOutViaPstn => {
                // As the page's `ref=88`: the PSTN line is the call's port,
                // named again in `pport` where the PSTN side acts.
                let line = self.pstn_port();
                call.port = Some(line);
                call.pstn_port = Some(line);
                call.step(0, CallEventKind::HookOff);
                call.pstn_port = None;
                let dial = self.rng.around(t.dial_ms);
                call.step(dial, dial_event(PSTN_ACCESS_CODE));
                call.pstn_port = Some(line);
                let digits = self.pstn_number();
                let pause = self.rng.around(t.digit_ms);
                call.step(pause, CallEventKind::PstnDial { digits });
                let connect = self.rng.around(t.pstn_ms);
                call.step(connect, CallEventKind::PstnConnected);
                call.pstn_port = None;
                let answer = self.rng.around(t.answer_ms);
                let codec = CodecInfo::Other("G.729".to_owned());
                call.step(answer, talk(codec));
                let talk_ms = self.rng.around(t.talk_ms);
                call.step(talk_ms, CallEventKind::HookOn);
            }
            CallShape::CallIn => {
                call.port = Some(self.phone_port());
                let caller_id = Some(self.peer_caller());
                call.step(0, CallEventKind::CallIn { caller_id });
                let answer = self.rng.around(t.answer_ms);
                call.step(answer, CallEventKind::HookOff);
                call.step(0, talk(SEED_CODEC));
                let talk_ms = self.rng.around(t.talk_ms);
                call.step(talk_ms, CallEventKind::HookOn);
            }
            CallShape::CallInViaPstn => {
                call.port = Some(self.pstn_port());
                let caller_id = Some(self.peer_caller());
                call.step(0, CallEventKind::CallIn { caller_id });
                call.step(0, CallEventKind::PstnHookOff);
                let pause = self.rng.around(t.digit_ms);
                let digits = PSTN_IN_DIAL.to_owned();
                call.step(pause, CallEventKind::PstnDial { digits });
                let connect = self.rng.around(t.pstn_ms);
                call.step(connect, CallEventKind::PstnConnected);
                let answer = self.rng.around(t.answer_ms);
                call.step(answer, talk(SEED_CODEC));
                let talk_ms = self.rng.around(t.talk_ms);
                call.step(talk_ms, CallEventKind::PstnHookOn);
                call.step(0, CallEventKind::HookOn);
            }
            CallShape::HookOnOff => {
                call.port = Some(self.phone_port());
                call.step(0, CallEventKind::HookOff);
                let on_hook = self.rng.around(t.digit_ms);
                call.step(on_hook, CallEventKind::HookOn);
            }
            CallShape::CallInReject => {
                let caller_id = Some(self.peer_caller());
                let reason = Some("no free port".to_owned());
                call.step(0, CallEventKind::CallInReject { caller_id, reason });
            }
            CallShape::CallOutFailed => {
                call.port = Some(self.phone_port());
                call.step(0, CallEventKind::HookOff);
                let dial = self.rng.around(t.dial_ms);
                let number = format!("{}#", self.peer_number());
                call.step(dial, dial_event(&number));
                let fail = self.rng.around(t.answer_ms);
                let reason = Some("busy".to_owned());
                call.step(fail, CallEventKind::CallOutFail { reason });
                let busy = self.rng.around(t.busy_ms);
                call.step(busy, CallEventKind::HookOn);
            }
            CallShape::PstnAbandoned => {
                call.port = Some(self.pstn_port());
                let caller_id = self.pstn_caller();
                call.step(0, CallEventKind::PstnCallIn { caller_id });
                call.step(0, CallEventKind::PstnHookOff);
                call.step(0, CallEventKind::PstnConnected);
                let hang_up = self.rng.around(t.ring_ms);
                call.step(hang_up, CallEventKind::PstnHookOn);
                call.step(0, CallEventKind::HookOn);
            }
        }
        Call {
            shape,
            call_ref: call.call_ref,
            steps: call
                .steps
                .into_iter()
                .map(|(after_ms, at_ms, mut event)| {
                    event.at = self.clock_at(at_ms);
                    CallStep { after_ms, event }
                })
                .collect(),
        }
    }

    /// The number dialled on the port: all at once as the seed's `2252`,
    /// or (one call in four) one digit per event.
    fn dial_number(&mut self, call: &mut CallBuilder, after_ms: u64, number: &str, digit_ms: u64) {
        if self.rng.below(4) == 0 {
            let mut after = after_ms;
            for digit in number.chars() {
                call.step(after, dial_event(&digit.to_string()));
                after = self.rng.around(digit_ms);
            }
        } else {
            call.step(after_ms, dial_event(number));
        }
    }

    /// Talking, with up to six DTMF digits a second or so apart early in
    /// the call (the seed's `3, 0, 1` and `8, 0, 0, 2, 3, 0`); the call's
    /// end is the caller's to add.
    fn talk(&mut self, call: &mut CallBuilder, t: &Timing) {
        let talk_ms = self.rng.around(t.talk_ms);
        let mut spent = 0;
        for _ in 0..self.rng.below(7) {
            let after = self.rng.around(t.digit_ms * 2);
            spent += after;
            let digit = self.rng.below(10).to_string();
            call.step(after, dial_event(&digit));
        }
        call.wait(talk_ms.saturating_sub(spent));
    }

    fn phone_port(&mut self) -> u16 {
        let phones = if self.ports.fxs > 0 {
            self.ports.fxs
        } else {
            self.ports.all()
        };
        1 + self.rng.below(u64::from(phones)) as u16
    }

    fn pstn_port(&mut self) -> u16 {
        self.ports.fxs + 1 + self.rng.below(u64::from(self.ports.pstn_lines())) as u16
    }

    /// Another gateway's number, or a four-digit one when there is none.
    fn peer_number(&mut self) -> String {
        let Peers { first, count, own } = self.peers;
        if count < 2 {
            return format!("{}", 2000 + self.rng.below(8000));
        }
        let mut id = first + self.rng.below(u64::from(count - 1)) as u32;
        if id >= own {
            id += 1;
        }
        id.to_string()
    }

    fn peer_caller(&mut self) -> String {
        format!("{}{CALLER_SUFFIX}", self.peer_number())
    }

    /// A PSTN caller id as the seed's (`103`, `105`, `15`); one call in
    /// eight has none.
    fn pstn_caller(&mut self) -> Option<String> {
        (self.rng.below(8) != 0).then(|| format!("{}", 100 + self.rng.below(100)))
    }

    /// An eight-digit PSTN number as the seed's `26735152`.
    fn pstn_number(&mut self) -> String {
        format!("2{:07}", self.rng.below(10_000_000))
    }
}

fn dial_event(digits: &str) -> CallEventKind {
    CallEventKind::Dial {
        digits: digits.to_owned(),
    }
}

fn talk(codec: CodecInfo) -> CallEventKind {
    CallEventKind::Talk { codec: Some(codec) }
}

/// Collects a call's events with their gateway times.
struct CallBuilder {
    call_ref: u32,
    port: Option<u16>,
    pstn_port: Option<u16>,
    at_ms: u64,
    /// Time waited since the last event, added to the next one's delay.
    pending_ms: u64,
    /// (after_ms, at_ms, event); `at` is written from `at_ms` at the end.
    steps: Vec<(u64, u64, CallEvent)>,
}

impl CallBuilder {
    fn step(&mut self, after_ms: u64, kind: CallEventKind) {
        let after_ms = if self.steps.is_empty() {
            0
        } else {
            after_ms + std::mem::take(&mut self.pending_ms)
        };
        self.at_ms += after_ms;
        let event = CallEvent {
            call_ref: self.call_ref,
            port: self.port,
            pstn_port: self.pstn_port,
            at: GatewayClock::Unread(String::new()),
            kind,
        };
        self.steps.push((after_ms, self.at_ms, event));
    }

    fn wait(&mut self, ms: u64) {
        self.pending_ms += ms;
    }
}
