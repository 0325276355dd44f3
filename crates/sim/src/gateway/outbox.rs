//! A gateway's side of the feed's reliability (docs/gateway-feed.md, "What
//! the server answers" and "Sessions"), without I/O: which lines to write
//! now, and what each answer means.
//!
//! A message is kept until its `OK`. Over UDP what has had no answer for
//! the answer timeout is sent again with the same `seq`; over TCP the
//! answers come in order, one per line. `ERR seq=N reason="not logged in"`
//! (the server lost the session) makes the gateway log in again and send
//! every message without an `OK` again, numbered after the new LOGIN;
//! another `ERR seq=N` (`store unavailable`) sends message N again after
//! the timeout. A bad line's `ERR` (no `seq`) is only counted.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use cdrhub_protocols::feed::{FeedBody, FeedMessage, FeedReply, GatewayRef, Login, parse_reply};
use tokio::time::Instant;

use super::config::Transport;
use super::report::Counters;

/// The reason of the answer to a message from a gateway without a session.
const NOT_LOGGED_IN: &str = "not logged in";

/// Why a gateway gives up.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OutboxError {
    #[error("the server did not answer message seq={seq} ({sends} sends)")]
    NoAnswer { seq: u32, sends: u32 },
    #[error("the server did not take message seq={seq} after {sends} sends: {reason}")]
    NotTaken {
        seq: u32,
        sends: u32,
        reason: String,
    },
    #[error("the server could not read message seq={seq}: {reason}")]
    Unreadable { seq: u32, reason: String },
}

/// Where the gateway's session stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Session {
    /// A LOGIN is due once every line in flight is answered or timed out.
    NeedsLogin,
    /// The LOGIN is sent; messages wait for its `OK`.
    LoggingIn,
    Open,
}

/// A message sent and not yet answered `OK`.
#[derive(Debug)]
struct Unanswered {
    body: FeedBody,
    line: String,
    sent_at: Instant,
    sends: u32,
    wait: Wait,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Wait {
    /// For its answer.
    Answer,
    /// Answered `ERR seq=N` for a reason other than the session: send it
    /// again at this time.
    Retry { at: Instant, reason: String },
    /// Answered `not logged in`: send it again after the next LOGIN.
    Refused,
}

/// A line written over TCP, waiting for its answer in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Written {
    Message(u32),
    Unreadable,
}

/// The messages of one gateway on their way to the server.
#[derive(Debug)]
pub(super) struct Outbox {
    gateway: GatewayRef,
    transport: Transport,
    resend_after: Duration,
    max_sends: u32,
    window: usize,
    counters: Arc<Counters>,
    session: Session,
    next_seq: u32,
    /// Messages waiting for a `seq`: the session is not open or the window
    /// is full. The flag says whether the message was sent before (under
    /// another `seq`).
    queue: VecDeque<(FeedBody, bool)>,
    unanswered: BTreeMap<u32, Unanswered>,
    /// TCP only: the lines written and not yet answered, in order.
    in_order: VecDeque<Written>,
    last_write: Option<Instant>,
    logins: u64,
}

impl Outbox {
    /// An outbox whose first poll logs in.
    pub(super) fn new(
        gateway: GatewayRef,
        transport: Transport,
        resend_after: Duration,
        max_sends: u32,
        window: usize,
        counters: Arc<Counters>,
    ) -> Outbox {
        Outbox {
            gateway,
            transport,
            resend_after,
            max_sends,
            window,
            counters,
            session: Session::NeedsLogin,
            next_seq: 1,
            queue: VecDeque::new(),
            unanswered: BTreeMap::new(),
            in_order: VecDeque::new(),
            last_write: None,
            logins: 0,
        }
    }

    /// Queues a message; [`Outbox::poll`] gives its line.
    pub(super) fn submit(&mut self, body: FeedBody) {
        self.queue.push_back((body, false));
    }

    /// Whether every message is sent and answered `OK`, and over TCP every
    /// bad line answered too.
    pub(super) fn is_idle(&self) -> bool {
        self.queue.is_empty() && self.unanswered.is_empty() && self.in_order.is_empty()
    }

    /// Whether every message submitted has its `seq` and is written.
    pub(super) fn is_flushed(&self) -> bool {
        self.queue.is_empty()
    }

    /// The `seq` the next message will get (a bad line borrows it).
    pub(super) fn next_seq(&self) -> u32 {
        self.next_seq
    }

    /// The LOGINs sent.
    pub(super) fn logins(&self) -> u64 {
        self.logins
    }

    pub(super) fn is_open(&self) -> bool {
        self.session == Session::Open
    }

    /// When a line was last written, if ever.
    pub(super) fn last_write(&self) -> Option<Instant> {
        self.last_write
    }

    /// A bad line was written; over TCP its answer comes in its turn.
    pub(super) fn unreadable_written(&mut self, now: Instant) {
        if self.transport == Transport::Tcp {
            self.in_order.push_back(Written::Unreadable);
        }
        self.last_write = Some(now);
        Counters::add(&self.counters.lines_sent, 1);
        Counters::add(&self.counters.bad_packets_sent, 1);
    }

    /// The gateway talks to the server anew (a new TCP connection, or a new
    /// source address): it logs in again, and sends again after its LOGIN
    /// what had no answer.
    pub(super) fn new_connection(&mut self) {
        self.in_order.clear();
        for message in self.unanswered.values_mut() {
            message.wait = Wait::Refused;
        }
        self.session = Session::NeedsLogin;
    }

    /// The lines to write now, in order; `login` is the LOGIN to send if
    /// one is due. An error when a message has had its last chance.
    pub(super) fn poll(
        &mut self,
        now: Instant,
        login: impl FnOnce() -> Login,
    ) -> Result<Vec<String>, OutboxError> {
        let mut lines = Vec::new();
        self.resend_due(now, &mut lines)?;
        if self.session == Session::NeedsLogin && self.settled(now) {
            self.log_in(now, login(), &mut lines);
        }
        if self.session == Session::Open {
            while self.unanswered.len() < self.window {
                let Some((body, sent_before)) = self.queue.pop_front() else {
                    break;
                };
                self.count_first_send(&body, sent_before);
                let line = self.write(body, now);
                lines.push(line);
            }
        }
        if !lines.is_empty() {
            self.last_write = Some(now);
            Counters::add(&self.counters.lines_sent, lines.len() as u64);
        }
        Ok(lines)
    }

    /// Reads one answer line.
    pub(super) fn on_answer(&mut self, line: &str, now: Instant) -> Result<(), OutboxError> {
        let reply = match parse_reply(line) {
            Ok(reply) => reply,
            Err(e) => {
                tracing::warn!(gateway = %self.gateway, answer = line, error = %e,
                    "the server's answer cannot be read");
                self.in_order.pop_front();
                return Ok(());
            }
        };
        let written = self.answered_in_order(&reply);
        match reply {
            FeedReply::Ok { seq } => {
                Counters::add(&self.counters.oks, 1);
                if let Some(message) = self.unanswered.remove(&seq)
                    && matches!(message.body, FeedBody::Login(_))
                    && self.session == Session::LoggingIn
                {
                    self.session = Session::Open;
                }
            }
            FeedReply::Err {
                seq: Some(seq),
                reason,
            } => {
                Counters::add(&self.counters.errs, 1);
                let Some(message) = self.unanswered.get_mut(&seq) else {
                    return Ok(());
                };
                let is_login = matches!(message.body, FeedBody::Login(_));
                if reason == NOT_LOGGED_IN && !is_login {
                    message.wait = Wait::Refused;
                    self.session = Session::NeedsLogin;
                } else {
                    message.wait = Wait::Retry {
                        at: now + self.resend_after,
                        reason,
                    };
                }
            }
            FeedReply::Err { seq: None, reason } => {
                Counters::add(&self.counters.errs, 1);
                // Over UDP a bad line's answer cannot be told from another
                // line's; a message the server cannot read gets no OK and
                // runs out of sends.
                if let Some(Written::Message(seq)) = written {
                    return Err(OutboxError::Unreadable { seq, reason });
                }
            }
        }
        Ok(())
    }

    /// Over TCP, the line `reply` answers: the oldest line in flight, or
    /// for an answer naming a `seq`, that message's line. Lines skipped on
    /// the way had no answer, which the protocol does not allow; they are
    /// dropped so that a server that forgets one does not stall the gateway.
    fn answered_in_order(&mut self, reply: &FeedReply) -> Option<Written> {
        let seq = match reply {
            FeedReply::Ok { seq } | FeedReply::Err { seq: Some(seq), .. } => *seq,
            FeedReply::Err { seq: None, .. } => return self.in_order.pop_front(),
        };
        let n = self
            .in_order
            .iter()
            .position(|w| *w == Written::Message(seq))?;
        if n > 0 {
            tracing::warn!(gateway = %self.gateway, seq, skipped = n,
                "the server answered seq={seq} before the lines sent earlier");
        }
        self.in_order.drain(..=n).next_back()
    }

    /// When [`Outbox::poll`] has something to do without an answer coming:
    /// a resend, a retry, or giving up.
    pub(super) fn next_deadline(&self) -> Option<Instant> {
        self.unanswered
            .values()
            .filter_map(|message| match &message.wait {
                Wait::Answer => Some(message.sent_at + self.answer_timeout()),
                Wait::Retry { at, .. } => Some(*at),
                Wait::Refused => None,
            })
            .min()
    }

    /// Over UDP the answer timeout; over TCP, where nothing is resent
    /// without an answer, the whole patience of `max_sends` timeouts.
    fn answer_timeout(&self) -> Duration {
        match self.transport {
            Transport::Udp => self.resend_after,
            Transport::Tcp => self.resend_after * self.max_sends,
        }
    }

    /// Every line in flight is answered or timed out: a new LOGIN will not
    /// be mistaken for an old message's answer.
    fn settled(&self, now: Instant) -> bool {
        match self.transport {
            Transport::Tcp => self.in_order.is_empty(),
            Transport::Udp => self.unanswered.values().all(|message| {
                message.wait != Wait::Answer || now >= message.sent_at + self.resend_after
            }),
        }
    }

    fn resend_due(&mut self, now: Instant, lines: &mut Vec<String>) -> Result<(), OutboxError> {
        let timeout = self.answer_timeout();
        let mut due = Vec::new();
        for (&seq, message) in &self.unanswered {
            let sendable = match self.session {
                Session::Open => true,
                Session::LoggingIn => matches!(message.body, FeedBody::Login(_)),
                Session::NeedsLogin => false,
            };
            match &message.wait {
                Wait::Answer if now >= message.sent_at + timeout => {
                    if message.sends >= self.max_sends || self.transport == Transport::Tcp {
                        let sends = message.sends;
                        return Err(OutboxError::NoAnswer { seq, sends });
                    }
                    if sendable {
                        due.push(seq);
                    }
                }
                Wait::Retry { at, reason } if now >= *at => {
                    if message.sends >= self.max_sends {
                        return Err(OutboxError::NotTaken {
                            seq,
                            sends: message.sends,
                            reason: reason.clone(),
                        });
                    }
                    if sendable {
                        due.push(seq);
                    }
                }
                _ => {}
            }
        }
        for seq in due {
            if let Some(message) = self.unanswered.get_mut(&seq) {
                message.sends += 1;
                message.sent_at = now;
                message.wait = Wait::Answer;
                lines.push(message.line.clone());
                if self.transport == Transport::Tcp {
                    self.in_order.push_back(Written::Message(seq));
                }
                Counters::add(&self.counters.resends, 1);
            }
        }
        Ok(())
    }

    /// Sends LOGIN as `seq=1`; the messages without an `OK` go back to the
    /// queue's head, in their order, to be numbered after it.
    fn log_in(&mut self, now: Instant, login: Login, lines: &mut Vec<String>) {
        let unanswered = std::mem::take(&mut self.unanswered);
        for (_, message) in unanswered.into_iter().rev() {
            if !matches!(message.body, FeedBody::Login(_)) {
                self.queue.push_front((message.body, true));
            }
        }
        self.next_seq = 1;
        let line = self.write(FeedBody::Login(login), now);
        lines.push(line);
        self.session = Session::LoggingIn;
        self.logins += 1;
        Counters::add(&self.counters.logins, 1);
        Counters::add(&self.counters.messages_sent, 1);
    }

    fn count_first_send(&self, body: &FeedBody, sent_before: bool) {
        let c = &self.counters;
        if sent_before {
            Counters::add(&c.resends, 1);
            return;
        }
        Counters::add(&c.messages_sent, 1);
        match body {
            FeedBody::Call(_) => Counters::add(&c.call_events_sent, 1),
            FeedBody::KeepAlive { .. } => Counters::add(&c.keepalives_sent, 1),
            FeedBody::Login(_) | FeedBody::Logout { .. } => {}
        }
    }

    /// Numbers `body` with the next `seq` and keeps it until its answer.
    fn write(&mut self, body: FeedBody, now: Instant) -> String {
        let seq = self.next_seq;
        // After 2^32 - 1 messages a gateway would log in again; a
        // simulation never gets there.
        self.next_seq = self.next_seq.wrapping_add(1).max(1);
        let message = FeedMessage {
            seq,
            gateway: self.gateway.clone(),
            body,
        };
        let line = message.to_line();
        if self.transport == Transport::Tcp {
            self.in_order.push_back(Written::Message(seq));
        }
        self.unanswered.insert(
            seq,
            Unanswered {
                body: message.body,
                line: line.clone(),
                sent_at: now,
                sends: 1,
                wait: Wait::Answer,
            },
        );
        line
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cdrhub_protocols::feed::{
        CallEvent, CallEventKind, FeedBody, GatewayClock, Mac, parse_line,
    };
    use std::sync::atomic::Ordering;

    const TIMEOUT: Duration = Duration::from_secs(2);

    fn outbox(transport: Transport, window: usize) -> Outbox {
        let gateway = GatewayRef {
            id: "8200".to_owned(),
            mac: Mac([0x00, 0x0C, 0x2A, 0x02, 0x20, 0x08]),
        };
        let counters = Arc::new(Counters::default());
        Outbox::new(gateway, transport, TIMEOUT, 3, window, counters)
    }

    fn login() -> Login {
        Login {
            public_addr: None,
            fxs_ports: 2,
            fxo_ports: 2,
            isdn_channels: 0,
            call_ref: 74,
            clock: GatewayClock::Unread("unset".to_owned()),
        }
    }

    fn hook_off(call_ref: u32) -> FeedBody {
        FeedBody::Call(CallEvent {
            call_ref,
            port: Some(1),
            pstn_port: None,
            at: GatewayClock::Unread("unset".to_owned()),
            kind: CallEventKind::HookOff,
        })
    }

    /// The `seq` and type of each line.
    fn read(lines: &[String]) -> Vec<(u32, &'static str)> {
        lines
            .iter()
            .map(|line| {
                let message = parse_line(line).unwrap();
                let kind = match message.body {
                    FeedBody::Login(_) => "LOGIN",
                    FeedBody::Call(_) => "EVENT",
                    FeedBody::KeepAlive { .. } => "KEEPALIVE",
                    FeedBody::Logout { .. } => "LOGOUT",
                };
                (message.seq, kind)
            })
            .collect()
    }

    /// An outbox whose LOGIN is taken, and the time it was.
    fn logged_in(transport: Transport, window: usize) -> (Outbox, Instant) {
        let mut o = outbox(transport, window);
        let now = Instant::now();
        assert_eq!(read(&o.poll(now, login).unwrap()), [(1, "LOGIN")]);
        o.on_answer("GWFEED/1 OK seq=1", now).unwrap();
        assert!(o.is_open());
        (o, now)
    }

    #[test]
    fn messages_wait_for_the_login_then_follow_it_in_seq_order() {
        let mut o = outbox(Transport::Tcp, 64);
        let now = Instant::now();
        o.submit(hook_off(1));
        assert_eq!(read(&o.poll(now, login).unwrap()), [(1, "LOGIN")]);
        o.submit(hook_off(2));
        assert!(o.poll(now, login).unwrap().is_empty());
        o.on_answer("GWFEED/1 OK seq=1", now).unwrap();
        let sent = o.poll(now, login).unwrap();
        assert_eq!(read(&sent), [(2, "EVENT"), (3, "EVENT")]);
        assert!(!o.is_idle());
        o.on_answer("GWFEED/1 OK seq=2", now).unwrap();
        o.on_answer("GWFEED/1 OK seq=3", now).unwrap();
        assert!(o.is_idle());
        assert_eq!(o.counters.oks.load(Ordering::Relaxed), 3);
        assert_eq!(o.counters.call_events_sent.load(Ordering::Relaxed), 2);
    }

    #[test]
    fn udp_sends_again_with_the_same_seq_after_the_timeout() {
        let (mut o, now) = logged_in(Transport::Udp, 64);
        o.submit(hook_off(1));
        let first = o.poll(now, login).unwrap();
        assert_eq!(read(&first), [(2, "EVENT")]);
        assert_eq!(o.next_deadline(), Some(now + TIMEOUT));
        assert!(o.poll(now + TIMEOUT / 2, login).unwrap().is_empty());
        let again = o.poll(now + TIMEOUT, login).unwrap();
        assert_eq!(again, first);
        assert_eq!(o.counters.resends.load(Ordering::Relaxed), 1);
        o.on_answer("GWFEED/1 OK seq=2", now + TIMEOUT).unwrap();
        assert!(o.is_idle());
    }

    #[test]
    fn a_message_never_answered_fails_after_its_last_send() {
        let (mut o, now) = logged_in(Transport::Udp, 64);
        o.submit(hook_off(1));
        o.poll(now, login).unwrap();
        o.poll(now + TIMEOUT, login).unwrap();
        o.poll(now + TIMEOUT * 2, login).unwrap();
        assert_eq!(
            o.poll(now + TIMEOUT * 3, login),
            Err(OutboxError::NoAnswer { seq: 2, sends: 3 })
        );
        // Over TCP nothing is sent again; the patience is the same.
        let (mut o, now) = logged_in(Transport::Tcp, 64);
        o.submit(hook_off(1));
        o.poll(now, login).unwrap();
        assert!(o.poll(now + TIMEOUT * 2, login).unwrap().is_empty());
        assert_eq!(
            o.poll(now + TIMEOUT * 3, login),
            Err(OutboxError::NoAnswer { seq: 2, sends: 1 })
        );
    }

    #[test]
    fn not_logged_in_logs_in_again_and_renumbers_what_had_no_ok() {
        let (mut o, now) = logged_in(Transport::Tcp, 64);
        for call_ref in 1..=3 {
            o.submit(hook_off(call_ref));
        }
        assert_eq!(read(&o.poll(now, login).unwrap()).len(), 3);
        o.on_answer("GWFEED/1 OK seq=2", now).unwrap();
        o.on_answer(r#"GWFEED/1 ERR seq=3 reason="not logged in""#, now)
            .unwrap();
        // Seq 4 is still on its way: no LOGIN before its answer.
        assert!(o.poll(now, login).unwrap().is_empty());
        o.on_answer(r#"GWFEED/1 ERR seq=4 reason="not logged in""#, now)
            .unwrap();
        assert_eq!(read(&o.poll(now, login).unwrap()), [(1, "LOGIN")]);
        o.on_answer("GWFEED/1 OK seq=1", now).unwrap();
        let again = o.poll(now, login).unwrap();
        assert_eq!(read(&again), [(2, "EVENT"), (3, "EVENT")]);
        let refs: Vec<u32> = again
            .iter()
            .map(|line| match parse_line(line).unwrap().body {
                FeedBody::Call(event) => event.call_ref,
                _ => 0,
            })
            .collect();
        assert_eq!(refs, [2, 3]);
        assert_eq!(o.logins(), 2);
        assert_eq!(o.counters.resends.load(Ordering::Relaxed), 2);
    }

    #[test]
    fn store_unavailable_sends_the_same_seq_again_after_the_timeout() {
        let (mut o, now) = logged_in(Transport::Tcp, 64);
        o.submit(hook_off(1));
        let first = o.poll(now, login).unwrap();
        o.on_answer(r#"GWFEED/1 ERR seq=2 reason="store unavailable""#, now)
            .unwrap();
        assert!(o.poll(now, login).unwrap().is_empty());
        assert_eq!(o.poll(now + TIMEOUT, login).unwrap(), first);
        o.on_answer("GWFEED/1 OK seq=2", now + TIMEOUT).unwrap();
        assert!(o.is_idle());
    }

    #[test]
    fn tcp_answers_pair_with_the_lines_in_order() {
        let (mut o, now) = logged_in(Transport::Tcp, 64);
        o.submit(hook_off(1));
        o.poll(now, login).unwrap();
        o.unreadable_written(now);
        o.submit(hook_off(2));
        o.poll(now, login).unwrap();
        o.on_answer("GWFEED/1 OK seq=2", now).unwrap();
        // The bad line's answer: counted, nothing to send again.
        o.on_answer(r#"GWFEED/1 ERR reason="unknown message type""#, now)
            .unwrap();
        assert!(!o.is_idle());
        o.on_answer("GWFEED/1 OK seq=3", now).unwrap();
        assert!(o.is_idle());
        assert_eq!(o.counters.errs.load(Ordering::Relaxed), 1);
        // A message of ours the server cannot read is the run's failure.
        o.submit(hook_off(3));
        o.poll(now, login).unwrap();
        assert_eq!(
            o.on_answer(r#"GWFEED/1 ERR reason="bad""#, now),
            Err(OutboxError::Unreadable {
                seq: 4,
                reason: "bad".to_owned()
            })
        );
    }

    #[test]
    fn a_server_that_skips_a_bad_line_does_not_stall_the_gateway() {
        let (mut o, now) = logged_in(Transport::Tcp, 64);
        o.unreadable_written(now);
        o.submit(hook_off(1));
        o.poll(now, login).unwrap();
        o.on_answer("GWFEED/1 OK seq=2", now).unwrap();
        assert!(o.is_idle());
    }

    #[test]
    fn the_window_holds_messages_back_until_answers_come() {
        let (mut o, now) = logged_in(Transport::Udp, 2);
        for call_ref in 1..=3 {
            o.submit(hook_off(call_ref));
        }
        assert_eq!(
            read(&o.poll(now, login).unwrap()),
            [(2, "EVENT"), (3, "EVENT")]
        );
        assert!(!o.is_flushed());
        o.on_answer("GWFEED/1 OK seq=2", now).unwrap();
        assert_eq!(read(&o.poll(now, login).unwrap()), [(4, "EVENT")]);
        assert!(o.is_flushed());
    }

    #[test]
    fn a_new_connection_logs_in_and_sends_again_what_had_no_answer() {
        let (mut o, now) = logged_in(Transport::Tcp, 64);
        o.submit(hook_off(1));
        o.submit(hook_off(2));
        o.poll(now, login).unwrap();
        o.on_answer("GWFEED/1 OK seq=2", now).unwrap();
        o.new_connection();
        assert!(!o.is_open());
        assert_eq!(read(&o.poll(now, login).unwrap()), [(1, "LOGIN")]);
        o.on_answer("GWFEED/1 OK seq=1", now).unwrap();
        assert_eq!(read(&o.poll(now, login).unwrap()), [(2, "EVENT")]);
    }
}
