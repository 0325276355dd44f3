//! A simulated Cisco Meeting Server Call Bridge that writes CDR `<records>`
//! documents the way CMS POSTs them to a receiver (reference/cms-cdr.md A.1,
//! A.3, A.4; seed 000 chapter 6, "example traffic flow").
//!
//! Each bridge runs a small discrete-event simulation: a fixed number of
//! conferences (coSpace calls of 2 to 10 legs) is always in progress; every
//! call schedules its callStart, callLegStart/Update/End per leg and callEnd at
//! millisecond times, and records are emitted in time order, so the records of
//! concurrent calls interleave as they do on a busy bridge. recordIndex and
//! correlatorIndex are given in that generation order (A.3). With the
//! out-of-order probability a record is delivered one place late, keeping the
//! indexes it was generated with, so a callLegUpdate may arrive before the
//! callStart it follows.
//!
//! Simulated time starts at the wall clock and runs as fast as records are
//! generated: a benchmark compresses hours of a bridge's traffic into seconds.

use crate::rng::Rng;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use uuid::Uuid;

/// What the traffic looks like; the same for every simulated bridge.
#[derive(Debug, Clone, Copy)]
pub struct TrafficShape {
    /// Probability that a record is delivered after the one generated next.
    pub out_of_order: f64,
    /// Calls in progress at any time on one bridge.
    pub concurrent_calls: usize,
}

/// coSpaces configured on each simulated bridge, at least this many and four
/// per concurrent call, so that a free one is quickly found.
const MIN_SPACES: usize = 400;
const SPACE_NAMES: [&str; 6] = ["Team", "Project", "Board", "Sales", "Support", "Training"];
const AUDIO_CODECS: [&str; 5] = ["opus", "g722", "g711u", "g711a", "aac"];
const ALARMS: [&str; 3] = ["packetLoss", "excessiveJitter", "highRoundTripTime"];
/// (width, height) pairs seen in CMS callLegEnd video statistics.
const VIDEO_SIZES: [(u32, u32); 5] = [
    (1920, 1080),
    (1280, 720),
    (1024, 576),
    (768, 448),
    (640, 360),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Direction {
    Incoming,
    Outgoing,
}

/// How a leg ends; the callLegEnd `reason` (guide chapter 5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Answered,
    Failed(&'static str),
}

struct Leg {
    id: Uuid,
    direction: Direction,
    /// Number of the remote user or phone, for remoteParty and displayName.
    party: u32,
    /// Whether callLegStart already names the call (otherwise only callLegUpdate does).
    call_known_at_start: bool,
    sip_call_id: Uuid,
    group_id: Uuid,
    start_ms: i64,
    update_ms: i64,
    end_ms: i64,
    outcome: Outcome,
}

struct Call {
    id: Uuid,
    correlator: Uuid,
    space: u32,
    start_ms: i64,
    end_ms: i64,
    legs: Vec<Leg>,
    max_active: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Step {
    CallStart,
    LegStart(u8),
    LegUpdate(u8),
    LegEnd(u8),
    CallEnd,
}

/// One scheduled record; ordered by time, then by scheduling order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Event {
    at_ms: i64,
    seq: u64,
    slot: u32,
    step: Step,
}

pub struct CallBridge {
    rng: Rng,
    session: Uuid,
    call_bridge: Uuid,
    spaces: Vec<Uuid>,
    /// Whether a call is in progress in each coSpace: a space hosts one call at a time.
    space_busy: Vec<bool>,
    /// Next recordIndex: per receiver, starts at 1 (A.3).
    record_index: u64,
    /// Next correlatorIndex: per session, starts at 0 (A.3).
    correlator_index: u64,
    events: BinaryHeap<Reverse<Event>>,
    seq: u64,
    calls: Vec<Option<Call>>,
    free_slots: Vec<u32>,
    out_of_order: f64,
    /// A record generated but held back one place.
    delayed: Vec<u8>,
    has_delayed: bool,
    time_cache: (i64, [u8; 20]),
}

impl CallBridge {
    /// A bridge that started `start_ms` (Unix milliseconds) with the given
    /// session GUID. The session must be fresh for every run: receivers
    /// deduplicate on (session, recordIndex).
    pub fn new(seed: u64, session: Uuid, start_ms: i64, shape: TrafficShape) -> Self {
        let mut rng = Rng::new(seed);
        let call_bridge = rng.uuid();
        let space_count = MIN_SPACES.max(4 * shape.concurrent_calls);
        let spaces = (0..space_count).map(|_| rng.uuid()).collect();
        let mut bridge = CallBridge {
            rng,
            session,
            call_bridge,
            spaces,
            space_busy: vec![false; space_count],
            record_index: 1,
            correlator_index: 0,
            events: BinaryHeap::new(),
            seq: 0,
            calls: Vec::new(),
            free_slots: Vec::new(),
            out_of_order: shape.out_of_order,
            delayed: Vec::new(),
            has_delayed: false,
            time_cache: (i64::MIN, [0; 20]),
        };
        for _ in 0..shape.concurrent_calls.max(1) {
            let at = start_ms + bridge.rng.below(30_000) as i64;
            bridge.start_call(at);
        }
        bridge
    }

    /// Appends one `<records>` document holding the next `records` records.
    pub fn write_document(&mut self, records: usize, out: &mut Vec<u8>) {
        out.extend_from_slice(b"<?xml version=\"1.0\"?>\n<records session=\"");
        push_uuid(out, &self.session);
        out.extend_from_slice(b"\" callBridge=\"");
        push_uuid(out, &self.call_bridge);
        out.extend_from_slice(b"\">\n");
        for _ in 0..records {
            self.write_record(out);
        }
        out.extend_from_slice(b"</records>\n");
    }

    /// Appends a one-record document with the record held back to arrive
    /// out of order, if there is one; returns whether there was.
    pub fn write_held_back(&mut self, out: &mut Vec<u8>) -> bool {
        if self.has_delayed {
            self.write_document(1, out);
            true
        } else {
            false
        }
    }

    /// Appends the next record in delivery order.
    fn write_record(&mut self, out: &mut Vec<u8>) {
        if self.has_delayed {
            self.has_delayed = false;
            out.extend_from_slice(&self.delayed);
            return;
        }
        if self.rng.chance(self.out_of_order) {
            let mut held = std::mem::take(&mut self.delayed);
            held.clear();
            self.render_next(&mut held);
            self.delayed = held;
            self.has_delayed = true;
        }
        self.render_next(out);
    }

    fn schedule(&mut self, at_ms: i64, slot: u32, step: Step) {
        self.seq += 1;
        self.events.push(Reverse(Event {
            at_ms,
            seq: self.seq,
            slot,
            step,
        }));
    }

    /// Plans a whole call beginning at `t0` and schedules its records.
    fn start_call(&mut self, t0: i64) {
        let rng = &mut self.rng;
        // Most conferences are small: 2 legs 35 %, 3 legs 25 %, 4 legs 15 %, 5–10 the rest.
        let leg_count = match rng.below(100) {
            0..35 => 2,
            35..60 => 3,
            60..75 => 4,
            _ => rng.between(5, 10) as usize,
        };
        let mut legs: Vec<Leg> = Vec::with_capacity(leg_count);
        let mut latest_end = t0;
        for i in 0..leg_count {
            // The first participant dials in and creates the call: its callLegStart
            // comes just before callStart (seed 000 chapter 6, posts #1 and #2).
            // Others join within three minutes while someone is still there.
            let (direction, start_ms) = if i == 0 {
                (Direction::Incoming, t0)
            } else {
                let direction = if rng.chance(0.75) {
                    Direction::Incoming
                } else {
                    Direction::Outgoing
                };
                let window = (latest_end - t0 - 500).clamp(1_000, 180_000) as u64;
                (direction, t0 + rng.between(1_000, window) as i64)
            };
            let outcome = match (direction, rng.below(100)) {
                _ if i == 0 => Outcome::Answered,
                (Direction::Incoming, 0..3) => Outcome::Failed("unknownDestination"),
                (Direction::Outgoing, 0..10) => Outcome::Failed("remoteBusy"),
                (Direction::Outgoing, 10..20) => Outcome::Failed("ringingTimeout"),
                (Direction::Outgoing, 20..25) => Outcome::Failed("remoteRejected"),
                (Direction::Outgoing, 25..28) => Outcome::Failed("unknownDestination"),
                _ => Outcome::Answered,
            };
            // A leg that never connects still gets a callLegUpdate without
            // `state` (absent = not yet connected, A.4).
            let update_ms = match (outcome, direction) {
                (Outcome::Answered, Direction::Incoming) => {
                    start_ms + rng.between(300, 3_000) as i64
                }
                (Outcome::Answered, Direction::Outgoing) => {
                    start_ms + rng.between(2_000, 15_000) as i64
                }
                (Outcome::Failed(_), _) => start_ms + rng.between(50, 200) as i64,
            };
            let end_ms = match outcome {
                Outcome::Answered => {
                    // Log-uniform talk time between 15 s and 40 min.
                    let secs = (15f64.ln() + rng.unit() * (2_400f64.ln() - 15f64.ln())).exp();
                    update_ms + (secs * 1000.0) as i64
                }
                Outcome::Failed("remoteBusy") => update_ms + rng.between(1_000, 4_000) as i64,
                Outcome::Failed("ringingTimeout") => update_ms + rng.between(30_000, 60_000) as i64,
                Outcome::Failed("remoteRejected") => update_ms + rng.between(2_000, 12_000) as i64,
                Outcome::Failed(_) => update_ms + rng.between(200, 1_000) as i64,
            };
            latest_end = latest_end.max(end_ms);
            legs.push(Leg {
                id: rng.uuid(),
                direction,
                party: rng.between(1, 20_000) as u32,
                call_known_at_start: i > 0 && rng.chance(0.5),
                sip_call_id: rng.uuid(),
                group_id: rng.uuid(),
                start_ms,
                update_ms,
                end_ms,
                outcome,
            });
        }
        let space = loop {
            let space = rng.below(self.spaces.len() as u64) as usize;
            if !self.space_busy[space] {
                self.space_busy[space] = true;
                break space as u32;
            }
        };
        let start_ms = t0 + rng.between(20, 300) as i64;
        let end_ms =
            legs.iter().map(|l| l.end_ms).max().unwrap_or(start_ms) + rng.between(50, 500) as i64;
        let call = Call {
            id: rng.uuid(),
            correlator: rng.uuid(),
            space,
            start_ms,
            end_ms,
            max_active: max_active(&legs),
            legs,
        };

        let slot = match self.free_slots.pop() {
            Some(slot) => {
                self.calls[slot as usize] = Some(call);
                slot
            }
            None => {
                self.calls.push(Some(call));
                (self.calls.len() - 1) as u32
            }
        };
        let call = self.calls[slot as usize]
            .as_ref()
            .expect("call just stored");
        let mut plan: Vec<(i64, Step)> = Vec::with_capacity(2 + 3 * call.legs.len());
        plan.push((call.start_ms, Step::CallStart));
        plan.push((call.end_ms, Step::CallEnd));
        for (i, leg) in call.legs.iter().enumerate() {
            plan.push((leg.start_ms, Step::LegStart(i as u8)));
            plan.push((leg.update_ms, Step::LegUpdate(i as u8)));
            plan.push((leg.end_ms, Step::LegEnd(i as u8)));
        }
        for (at, step) in plan {
            self.schedule(at, slot, step);
        }
    }

    /// Generates the next record in time order and appends it to `out`.
    fn render_next(&mut self, out: &mut Vec<u8>) {
        let Reverse(event) = self
            .events
            .pop()
            .expect("every callEnd starts a new call, so the bridge never runs dry");
        let call = self.calls[event.slot as usize]
            .take()
            .expect("events only refer to calls in progress");

        let record_type = match event.step {
            Step::CallStart => "callStart",
            Step::CallEnd => "callEnd",
            Step::LegStart(_) => "callLegStart",
            Step::LegUpdate(_) => "callLegUpdate",
            Step::LegEnd(_) => "callLegEnd",
        };
        out.extend_from_slice(b"<record type=\"");
        out.extend_from_slice(record_type.as_bytes());
        out.extend_from_slice(b"\" time=\"");
        let time = self.format_time(event.at_ms.div_euclid(1000));
        out.extend_from_slice(&time);
        out.extend_from_slice(b"\" recordIndex=\"");
        push_u64(out, self.record_index);
        out.extend_from_slice(b"\" correlatorIndex=\"");
        push_u64(out, self.correlator_index);
        out.extend_from_slice(b"\">\n");
        self.record_index += 1;
        self.correlator_index += 1;

        match event.step {
            Step::CallStart => self.write_call_start(&call, out),
            Step::CallEnd => write_call_end(&call, out),
            Step::LegStart(i) => self.write_leg_start(&call, &call.legs[i as usize], out),
            Step::LegUpdate(i) => write_leg_update(&call, &call.legs[i as usize], out),
            Step::LegEnd(i) => self.write_leg_end(&call.legs[i as usize], out),
        }
        out.extend_from_slice(b"</record>\n");

        if event.step == Step::CallEnd {
            self.free_slots.push(event.slot);
            self.space_busy[call.space as usize] = false;
            // The bridge keeps the same number of calls going: a new one begins shortly.
            let at = event.at_ms + self.rng.between(0, 3_000) as i64;
            self.start_call(at);
        } else {
            self.calls[event.slot as usize] = Some(call);
        }
    }

    fn write_call_start(&mut self, call: &Call, out: &mut Vec<u8>) {
        out.extend_from_slice(b"<call id=\"");
        push_uuid(out, &call.id);
        out.extend_from_slice(b"\">\n<name>");
        out.extend_from_slice(SPACE_NAMES[(call.space as usize) % SPACE_NAMES.len()].as_bytes());
        out.extend_from_slice(b" meeting ");
        push_u64(out, u64::from(call.space));
        out.extend_from_slice(b"</name>\n");
        element(out, "callType", "coSpace");
        element_uuid(out, "coSpace", &self.spaces[call.space as usize]);
        element_uuid(out, "callCorrelator", &call.correlator);
        out.extend_from_slice(b"</call>\n");
    }

    fn write_leg_start(&mut self, call: &Call, leg: &Leg, out: &mut Vec<u8>) {
        out.extend_from_slice(b"<callLeg id=\"");
        push_uuid(out, &leg.id);
        out.extend_from_slice(b"\">\n");
        match leg.direction {
            Direction::Incoming => {
                out.extend_from_slice(b"<displayName>User ");
                push_u64(out, u64::from(leg.party));
                out.extend_from_slice(b"</displayName>\n<remoteParty>user");
                push_u64(out, u64::from(leg.party));
                out.extend_from_slice(b"@example.com</remoteParty>\n");
            }
            Direction::Outgoing => {
                out.extend_from_slice(b"<displayName></displayName>\n<remoteParty>+44207");
                push_u64(out, 1_000_000 + u64::from(leg.party));
                out.extend_from_slice(b"@gw.example.com</remoteParty>\n");
            }
        }
        // Incoming: the address dialled; outgoing: the caller ID shown (A.4).
        out.extend_from_slice(b"<localAddress>space");
        push_u64(out, u64::from(call.space));
        out.extend_from_slice(b"@meet.example.com</localAddress>\n");
        element(out, "type", "sip");
        element(
            out,
            "direction",
            match leg.direction {
                Direction::Incoming => "incoming",
                Direction::Outgoing => "outgoing",
            },
        );
        if leg.call_known_at_start {
            element_uuid(out, "call", &call.id);
        }
        element_uuid(out, "sipCallId", &leg.sip_call_id);
        element_uuid(out, "groupId", &leg.group_id);
        if leg.direction == Direction::Incoming && self.rng.chance(0.1) {
            element(out, "guestConnection", "true");
        }
        out.extend_from_slice(b"</callLeg>\n");
    }

    fn write_leg_end(&mut self, leg: &Leg, out: &mut Vec<u8>) {
        let rng = &mut self.rng;
        out.extend_from_slice(b"<callLeg id=\"");
        push_uuid(out, &leg.id);
        out.extend_from_slice(b"\">\n");
        let (reason, remote_teardown) = match leg.outcome {
            Outcome::Answered if rng.chance(0.85) => ("remoteTeardown", "true"),
            Outcome::Answered => ("callEnded", "false"),
            Outcome::Failed(reason) => (reason, "false"),
        };
        element(out, "reason", reason);
        element(out, "remoteTeardown", remote_teardown);
        element_u64(
            out,
            "durationSeconds",
            ((leg.end_ms - leg.start_ms) / 1000) as u64,
        );
        if leg.outcome != Outcome::Answered {
            element_u64(out, "activatedDuration", 0);
            element_uuid(out, "sipCallId", &leg.sip_call_id);
            out.extend_from_slice(b"</callLeg>\n");
            return;
        }
        element_u64(
            out,
            "activatedDuration",
            ((leg.end_ms - leg.update_ms) / 1000) as u64,
        );

        let video = rng.chance(0.75);
        let presenting = video && rng.chance(0.2);
        out.extend_from_slice(b"<mediaUsagePercentages>\n");
        let main_video = if video { 1000 } else { 0 };
        element_fixed(out, "mainVideoViewer", main_video, 1);
        element_fixed(out, "mainVideoContributor", main_video, 1);
        let presentation = if presenting { rng.between(50, 900) } else { 0 };
        element_fixed(out, "presentationViewer", presentation, 1);
        element_fixed(out, "presentationContributor", presentation / 3, 1);
        out.extend_from_slice(b"</mediaUsagePercentages>\n");

        // Occasionally one or two quality alarms (HL727 parser: repeated <alarm>).
        if rng.chance(0.08) {
            for _ in 0..rng.between(1, 2) {
                out.extend_from_slice(b"<alarm type=\"");
                out.extend_from_slice(rng.pick(&ALARMS).as_bytes());
                out.extend_from_slice(b"\" durationPercentage=\"");
                push_fixed(out, rng.between(1, 400), 1);
                out.extend_from_slice(b"\"/>\n");
            }
        }
        if rng.chance(0.6) {
            element(out, "encryptedMedia", "true");
        } else {
            element(out, "unencryptedMedia", "true");
        }

        let talk_ms = (leg.end_ms - leg.update_ms).max(0) as u64;
        let codec = *rng.pick(&AUDIO_CODECS);
        out.extend_from_slice(b"<rxAudio>\n");
        element(out, "codec", codec);
        write_packet_statistics(rng, talk_ms, out);
        out.extend_from_slice(b"</rxAudio>\n<txAudio>\n");
        element(out, "codec", codec);
        out.extend_from_slice(b"</txAudio>\n");
        if video {
            let (rx_w, rx_h) = *rng.pick(&VIDEO_SIZES);
            let (tx_w, tx_h) = *rng.pick(&VIDEO_SIZES);
            out.extend_from_slice(b"<rxVideo>\n");
            element(out, "codec", "h264");
            element_u64(out, "maxSizeWidth", u64::from(rx_w));
            element_u64(out, "maxSizeHeight", u64::from(rx_h));
            write_packet_statistics(rng, talk_ms, out);
            out.extend_from_slice(b"</rxVideo>\n<txVideo>\n");
            element(out, "codec", "h264");
            element_u64(out, "maxSizeWidth", u64::from(tx_w));
            element_u64(out, "maxSizeHeight", u64::from(tx_h));
            out.extend_from_slice(b"</txVideo>\n");
        }
        element_uuid(out, "sipCallId", &leg.sip_call_id);
        out.extend_from_slice(b"</callLeg>\n");
    }

    /// `YYYY-MM-DDTHH:MM:SSZ` for Unix seconds: CMS times are UTC, whole seconds (A.3).
    fn format_time(&mut self, secs: i64) -> [u8; 20] {
        if self.time_cache.0 != secs {
            self.time_cache = (secs, rfc3339_seconds(secs));
        }
        self.time_cache.1
    }
}

fn write_call_end(call: &Call, out: &mut Vec<u8>) {
    out.extend_from_slice(b"<call id=\"");
    push_uuid(out, &call.id);
    out.extend_from_slice(b"\">\n");
    element_u64(out, "callLegsCompleted", call.legs.len() as u64);
    element_u64(out, "callLegsMaxActive", u64::from(call.max_active));
    element_u64(
        out,
        "durationSeconds",
        ((call.end_ms - call.start_ms) / 1000) as u64,
    );
    out.extend_from_slice(b"</call>\n");
}

fn write_leg_update(call: &Call, leg: &Leg, out: &mut Vec<u8>) {
    out.extend_from_slice(b"<callLeg id=\"");
    push_uuid(out, &leg.id);
    out.extend_from_slice(b"\">\n");
    if leg.outcome == Outcome::Answered {
        element(out, "state", "connected");
    }
    element_uuid(out, "call", &call.id);
    element_uuid(out, "groupId", &leg.group_id);
    element_uuid(out, "sipCallId", &leg.sip_call_id);
    out.extend_from_slice(b"</callLeg>\n");
}

/// `<packetStatistics>` with loss bursts and gaps, as in seed 000 chapter 6 post #5.
fn write_packet_statistics(rng: &mut Rng, talk_ms: u64, out: &mut Vec<u8>) {
    out.extend_from_slice(b"<packetStatistics>\n<packetLossBursts>\n");
    let lossy = rng.chance(0.1);
    element_fixed(
        out,
        "duration",
        if lossy { rng.between(1, 5_000) } else { 0 },
        3,
    );
    element_fixed(
        out,
        "density",
        if lossy { rng.between(1, 2_000) } else { 0 },
        2,
    );
    out.extend_from_slice(b"</packetLossBursts>\n<packetGap>\n");
    element_fixed(out, "duration", rng.below(talk_ms.max(1)), 3);
    element_fixed(out, "density", rng.below(50), 2);
    out.extend_from_slice(b"</packetGap>\n</packetStatistics>\n");
}

/// Most legs active at one time: a sweep over leg start/end times.
fn max_active(legs: &[Leg]) -> u32 {
    let mut edges: Vec<(i64, i32)> = legs
        .iter()
        .flat_map(|l| [(l.start_ms, 1), (l.end_ms, -1)])
        .collect();
    // An end and a start at the same instant do not overlap.
    edges.sort_unstable();
    let (mut active, mut max) = (0i32, 0i32);
    for (_, delta) in edges {
        active += delta;
        max = max.max(active);
    }
    max as u32
}

fn element(out: &mut Vec<u8>, name: &str, value: &str) {
    out.push(b'<');
    out.extend_from_slice(name.as_bytes());
    out.push(b'>');
    out.extend_from_slice(value.as_bytes());
    out.extend_from_slice(b"</");
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b">\n");
}

fn element_uuid(out: &mut Vec<u8>, name: &str, value: &Uuid) {
    let mut buf = [0u8; 36];
    element(out, name, value.hyphenated().encode_lower(&mut buf));
}

fn element_u64(out: &mut Vec<u8>, name: &str, value: u64) {
    let mut buf = [0u8; 20];
    element(out, name, format_u64(value, &mut buf));
}

/// `value` scaled by 10^decimals, written with that many decimals ("100.0", "9.701").
fn element_fixed(out: &mut Vec<u8>, name: &str, value: u64, decimals: u32) {
    out.push(b'<');
    out.extend_from_slice(name.as_bytes());
    out.push(b'>');
    push_fixed(out, value, decimals);
    out.extend_from_slice(b"</");
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b">\n");
}

fn push_fixed(out: &mut Vec<u8>, value: u64, decimals: u32) {
    let scale = 10u64.pow(decimals);
    push_u64(out, value / scale);
    out.push(b'.');
    let mut buf = [0u8; 20];
    let frac = format_u64(value % scale, &mut buf);
    for _ in frac.len()..decimals as usize {
        out.push(b'0');
    }
    out.extend_from_slice(frac.as_bytes());
}

fn push_uuid(out: &mut Vec<u8>, value: &Uuid) {
    let mut buf = [0u8; 36];
    out.extend_from_slice(value.hyphenated().encode_lower(&mut buf).as_bytes());
}

fn push_u64(out: &mut Vec<u8>, value: u64) {
    let mut buf = [0u8; 20];
    out.extend_from_slice(format_u64(value, &mut buf).as_bytes());
}

fn format_u64(mut value: u64, buf: &mut [u8; 20]) -> &str {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (value % 10) as u8;
        value /= 10;
        if value == 0 {
            break;
        }
    }
    std::str::from_utf8(&buf[i..]).expect("digits are ASCII")
}

/// Unix seconds as `YYYY-MM-DDTHH:MM:SSZ` (days-to-civil after H. Hinnant).
fn rfc3339_seconds(secs: i64) -> [u8; 20] {
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);

    let mut out = *b"0000-00-00T00:00:00Z";
    let mut put = |at: usize, width: usize, mut v: i64| {
        for i in (at..at + width).rev() {
            out[i] = b'0' + (v % 10) as u8;
            v /= 10;
        }
    };
    put(0, 4, year);
    put(5, 2, month);
    put(8, 2, day);
    put(11, 2, sod / 3600);
    put(14, 2, sod % 3600 / 60);
    put(17, 2, sod % 60);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use quick_xml::Reader;
    use quick_xml::events::Event as XmlEvent;
    use std::collections::{HashMap, HashSet};

    fn shape(out_of_order: f64) -> TrafficShape {
        TrafficShape {
            out_of_order,
            concurrent_calls: 20,
        }
    }

    /// (type, recordIndex, correlatorIndex, subject id, `<call>` child if any) per record.
    fn records_of(doc: &[u8]) -> Vec<(String, u64, u64, String)> {
        let mut reader = Reader::from_reader(doc);
        let mut records = Vec::new();
        let mut current: Option<(String, u64, u64)> = None;
        let mut buf = Vec::new();
        loop {
            match reader.read_event_into(&mut buf).expect("well-formed XML") {
                XmlEvent::Eof => break,
                XmlEvent::Start(e) if e.name().as_ref() == "record" => {
                    let attr = |name: &str| {
                        let a = e
                            .try_get_attribute(name)
                            .unwrap()
                            .expect("attribute present");
                        a.value.into_owned()
                    };
                    assert!(attr("time").ends_with('Z'));
                    current = Some((
                        attr("type"),
                        attr("recordIndex").parse().unwrap(),
                        attr("correlatorIndex").parse().unwrap(),
                    ));
                }
                XmlEvent::Start(e)
                    if matches!(e.name().as_ref(), "call" | "callLeg") && current.is_some() =>
                {
                    let (t, r, c) = current.take().unwrap();
                    let id = e.try_get_attribute("id").unwrap().expect("id attribute");
                    records.push((t, r, c, id.value.into_owned()));
                }
                _ => {}
            }
            buf.clear();
        }
        records
    }

    #[test]
    fn formats_the_guide_example_time() {
        // seed 000 chapter 6, post #1.
        assert_eq!(&rfc3339_seconds(1_437_636_775), b"2015-07-23T07:32:55Z");
        assert_eq!(&rfc3339_seconds(0), b"1970-01-01T00:00:00Z");
        assert_eq!(&rfc3339_seconds(1_709_164_800), b"2024-02-29T00:00:00Z");
    }

    #[test]
    fn fixed_point_numbers() {
        let mut out = Vec::new();
        push_fixed(&mut out, 9_701, 3);
        out.push(b' ');
        push_fixed(&mut out, 1000, 1);
        out.push(b' ');
        push_fixed(&mut out, 5, 2);
        assert_eq!(out, b"9.701 100.0 0.05");
    }

    #[test]
    fn documents_are_well_formed_with_unique_indexes() {
        let mut bridge = CallBridge::new(1, Uuid::from_u128(7), 1_780_000_000_000, shape(0.05));
        let mut indexes = HashSet::new();
        let mut correlators = HashSet::new();
        for size in [1, 50, 7, 1, 50] {
            let mut doc = Vec::new();
            bridge.write_document(size, &mut doc);
            assert!(doc.starts_with(b"<?xml version=\"1.0\"?>\n<records session=\"00000000-0000-0000-0000-000000000007\" callBridge=\""));
            let records = records_of(&doc);
            assert_eq!(records.len(), size);
            for (_, record_index, correlator_index, _) in records {
                assert!(
                    indexes.insert(record_index),
                    "recordIndex {record_index} repeated"
                );
                assert!(correlators.insert(correlator_index));
                assert_eq!(record_index, correlator_index + 1);
            }
        }
    }

    #[test]
    fn in_order_calls_are_complete_and_consistent() {
        let mut bridge = CallBridge::new(3, Uuid::from_u128(1), 1_780_000_000_000, shape(0.0));
        let mut doc = Vec::new();
        bridge.write_document(20_000, &mut doc);
        let records = records_of(&doc);
        // Without swaps, delivery order is generation order.
        for (i, r) in records.iter().enumerate() {
            assert_eq!(r.1, i as u64 + 1);
        }
        // Each leg has exactly start, update, end in that order; each call start before end.
        let mut leg_steps: HashMap<&str, Vec<&str>> = HashMap::new();
        let mut call_steps: HashMap<&str, Vec<&str>> = HashMap::new();
        for (t, _, _, id) in &records {
            let steps = if t.starts_with("callLeg") {
                &mut leg_steps
            } else {
                &mut call_steps
            };
            steps.entry(id.as_str()).or_default().push(t.as_str());
        }
        let finished_calls = call_steps.values().filter(|s| s.len() == 2).count();
        assert!(finished_calls > 100, "only {finished_calls} calls finished");
        for steps in call_steps.values() {
            assert_eq!(steps[0], "callStart");
        }
        for steps in leg_steps.values() {
            let expected = ["callLegStart", "callLegUpdate", "callLegEnd"];
            assert_eq!(steps.as_slice(), &expected[..steps.len()]);
        }
    }

    #[test]
    fn out_of_order_delivery_keeps_generation_indexes() {
        let mut bridge = CallBridge::new(5, Uuid::from_u128(2), 1_780_000_000_000, shape(0.2));
        let mut doc = Vec::new();
        bridge.write_document(5_000, &mut doc);
        let indexes: Vec<u64> = records_of(&doc).iter().map(|r| r.1).collect();
        let swapped = indexes.windows(2).filter(|w| w[0] > w[1]).count();
        assert!(swapped > 500, "{swapped} swaps");
        // Every record is late by at most one place.
        for (pos, index) in indexes.iter().enumerate() {
            assert!(index.abs_diff(pos as u64 + 1) <= 1);
        }
    }

    #[test]
    fn held_back_record_can_be_flushed() {
        let mut bridge = CallBridge::new(9, Uuid::from_u128(3), 1_780_000_000_000, shape(1.0));
        let mut doc = Vec::new();
        bridge.write_document(1, &mut doc);
        assert_eq!(records_of(&doc)[0].1, 2, "record 1 is held back");
        let mut rest = Vec::new();
        assert!(bridge.write_held_back(&mut rest));
        assert_eq!(records_of(&rest)[0].1, 1);
        assert!(!bridge.write_held_back(&mut Vec::new()));
    }

    #[test]
    fn max_active_counts_overlap() {
        let leg = |start_ms, end_ms| Leg {
            id: Uuid::nil(),
            direction: Direction::Incoming,
            party: 1,
            call_known_at_start: false,
            sip_call_id: Uuid::nil(),
            group_id: Uuid::nil(),
            start_ms,
            update_ms: start_ms,
            end_ms,
            outcome: Outcome::Answered,
        };
        assert_eq!(max_active(&[leg(0, 10), leg(5, 20), leg(10, 30)]), 2);
        assert_eq!(max_active(&[leg(0, 10), leg(10, 20)]), 1);
    }
}
