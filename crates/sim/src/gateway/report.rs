//! What a gateway simulation sent and what the server answered: counted as
//! it runs ([`Progress`]) and in full at its end ([`Report`]).

use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

use super::calls::{CallShape, Notation};

/// The calls of one gateway, or of all, by the notation the server's report
/// gives them (docs/gateway-feed.md, "Report").
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CallCounts {
    pub call_out: u64,
    pub call_in: u64,
    pub hook_on_off: u64,
    pub call_in_reject: u64,
    pub call_out_failed: u64,
    /// Of all the above, the calls with a `PSTN_CALL_IN` or a `PSTN_DIAL`:
    /// the seed's "Only PSTN" filter.
    pub only_pstn: u64,
}

impl CallCounts {
    /// Counts one call of `shape`.
    pub fn add(&mut self, shape: CallShape) {
        *self.of_mut(shape.notation()) += 1;
        if shape.only_pstn() {
            self.only_pstn += 1;
        }
    }

    /// The calls of `notation`.
    pub fn of(&self, notation: Notation) -> u64 {
        match notation {
            Notation::CallOut => self.call_out,
            Notation::CallIn => self.call_in,
            Notation::HookOnOff => self.hook_on_off,
            Notation::CallInReject => self.call_in_reject,
            Notation::CallOutFailed => self.call_out_failed,
        }
    }

    fn of_mut(&mut self, notation: Notation) -> &mut u64 {
        match notation {
            Notation::CallOut => &mut self.call_out,
            Notation::CallIn => &mut self.call_in,
            Notation::HookOnOff => &mut self.hook_on_off,
            Notation::CallInReject => &mut self.call_in_reject,
            Notation::CallOutFailed => &mut self.call_out_failed,
        }
    }

    /// Every call, whatever its notation.
    pub fn total(&self) -> u64 {
        self.call_out + self.call_in + self.hook_on_off + self.call_in_reject + self.call_out_failed
    }

    fn merge(&mut self, other: &CallCounts) {
        self.call_out += other.call_out;
        self.call_in += other.call_in;
        self.hook_on_off += other.hook_on_off;
        self.call_in_reject += other.call_in_reject;
        self.call_out_failed += other.call_out_failed;
        self.only_pstn += other.only_pstn;
    }
}

impl fmt::Display for CallCounts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} Call out, {} Call in, {} Hook On/Off, {} Call in reject, {} Call out failed \
             ({} Only PSTN)",
            self.call_out,
            self.call_in,
            self.hook_on_off,
            self.call_in_reject,
            self.call_out_failed,
            self.only_pstn
        )
    }
}

/// What one gateway sent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GatewayReport {
    /// Its calls, every event of each sent.
    pub calls: CallCounts,
    /// Its call events (a resend not counted again).
    pub call_events: u64,
    /// Its logins: the first, one from a new address (`relogin`), and one
    /// after each connection the server closed or session it lost.
    pub logins: u64,
}

/// What a finished simulation sent and got back.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// Lines written: messages, their resends and the bad lines.
    pub lines_sent: u64,
    /// Messages sent (LOGIN, call events, KEEPALIVE, LOGOUT), each once
    /// however often it was sent.
    pub messages_sent: u64,
    /// `OK` answers received; over UDP a message sent twice may have two.
    pub oks: u64,
    /// `ERR` answers received: the bad lines' (over UDP the server answers
    /// at most one a second per source) and messages not taken.
    pub errs: u64,
    /// Messages sent again: over UDP after an answer timeout, after an
    /// `ERR` naming their seq, or after a new LOGIN.
    pub resends: u64,
    /// Unreadable lines sent (`bad_packets`).
    pub bad_packets_sent: u64,
    /// Call events sent, each once.
    pub call_events_sent: u64,
    pub keepalives_sent: u64,
    /// LOGINs sent, each once.
    pub logins: u64,
    /// Logins from a new source address (`relogin`).
    pub relogins: u64,
    /// TCP connections opened again after the server closed one.
    pub reconnects: u64,
    /// Each gateway by the name the server's report gives it, `8200_000C2A022008`.
    pub gateways: BTreeMap<String, GatewayReport>,
}

impl Report {
    /// The calls of every gateway.
    pub fn calls(&self) -> CallCounts {
        let mut all = CallCounts::default();
        for gateway in self.gateways.values() {
            all.merge(&gateway.calls);
        }
        all
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{} lines sent ({} messages, {} call events, {} keep-alives, {} logins, {} resends, \
             {} bad packets); {} OK, {} ERR; {} re-logins, {} reconnects",
            self.lines_sent,
            self.messages_sent,
            self.call_events_sent,
            self.keepalives_sent,
            self.logins,
            self.resends,
            self.bad_packets_sent,
            self.oks,
            self.errs,
            self.relogins,
            self.reconnects
        )?;
        for (name, gateway) in &self.gateways {
            writeln!(f, "  {name}: {}", gateway.calls)?;
        }
        write!(f, "  all: {}", self.calls())
    }
}

/// Counters the gateways add to as they run.
#[derive(Debug, Default)]
pub(super) struct Counters {
    pub(super) lines_sent: AtomicU64,
    pub(super) messages_sent: AtomicU64,
    pub(super) oks: AtomicU64,
    pub(super) errs: AtomicU64,
    pub(super) resends: AtomicU64,
    pub(super) bad_packets_sent: AtomicU64,
    pub(super) call_events_sent: AtomicU64,
    pub(super) keepalives_sent: AtomicU64,
    pub(super) logins: AtomicU64,
    pub(super) relogins: AtomicU64,
    pub(super) reconnects: AtomicU64,
    pub(super) calls_done: AtomicU64,
    pub(super) gateways_done: AtomicU64,
}

impl Counters {
    pub(super) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }

    pub(super) fn progress(&self, gateways: u64, calls: u64) -> Progress {
        Progress {
            gateways,
            gateways_done: Self::get(&self.gateways_done),
            calls,
            calls_done: Self::get(&self.calls_done),
            lines_sent: Self::get(&self.lines_sent),
            oks: Self::get(&self.oks),
            errs: Self::get(&self.errs),
            resends: Self::get(&self.resends),
        }
    }

    /// The totals of a report; the gateways are the caller's to add.
    pub(super) fn report(&self) -> Report {
        Report {
            lines_sent: Self::get(&self.lines_sent),
            messages_sent: Self::get(&self.messages_sent),
            oks: Self::get(&self.oks),
            errs: Self::get(&self.errs),
            resends: Self::get(&self.resends),
            bad_packets_sent: Self::get(&self.bad_packets_sent),
            call_events_sent: Self::get(&self.call_events_sent),
            keepalives_sent: Self::get(&self.keepalives_sent),
            logins: Self::get(&self.logins),
            relogins: Self::get(&self.relogins),
            reconnects: Self::get(&self.reconnects),
            gateways: BTreeMap::new(),
        }
    }
}

/// How far a running simulation is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    pub gateways: u64,
    /// Gateways that have logged out.
    pub gateways_done: u64,
    /// Calls to make in all.
    pub calls: u64,
    /// Calls whose events are all sent.
    pub calls_done: u64,
    pub lines_sent: u64,
    pub oks: u64,
    pub errs: u64,
    pub resends: u64,
}

impl fmt::Display for Progress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{} calls, {} lines sent, {} OK, {} ERR, {} resends, {}/{} gateways done",
            self.calls_done,
            self.calls,
            self.lines_sent,
            self.oks,
            self.errs,
            self.resends,
            self.gateways_done,
            self.gateways
        )
    }
}
