//! HEP packets decoded and correlated in process, one thread (issue 6,
//! point 6: at least 100,000 packets a second).
//!
//! The packets are those Kamailio mirrored of a sipp call
//! (tests/data/hep/kamailio-uac-uas.hepstream), each call's Call-ID made
//! its own, so every packet is a HEPv3 packet as Kamailio sends it. Each
//! is decoded (HEP, then SIP and its SDP), its call found by its keys and
//! B2BUA hints, and applied to the call, as the store's correlator does
//! (without the database).
//!
//! `cargo run --release -p cdrhub-correlate --example sip_correlate_speed [CALLS]`

use std::collections::HashMap;
use std::time::Instant;

use cdrhub_correlate::sip::{SipCallGroup, event_of_hep};
use cdrhub_model::Timestamp;
use cdrhub_protocols::hep;

fn template() -> Vec<Vec<u8>> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/data/hep/kamailio-uac-uas.hepstream"
    );
    let data = std::fs::read(path).expect("the Kamailio capture");
    let mut packets = Vec::new();
    let mut at = 0;
    while at + 4 <= data.len() {
        let n = u32::from_be_bytes(data[at..at + 4].try_into().unwrap()) as usize;
        packets.push(data[at + 4..at + 4 + n].to_vec());
        at += 4 + n;
    }
    packets
}

/// The call's packets with its own Call-ID (`old` replaced by `new`, of
/// the same length).
fn call_packets(template: &[Vec<u8>], old: &[u8], new: &[u8]) -> Vec<Vec<u8>> {
    template
        .iter()
        .map(|bytes| {
            let mut packet = hep::decode(bytes).expect("a HEP packet").into_owned();
            if let Some(payload) = packet.payload.as_mut() {
                let p = payload.to_mut();
                let mut i = 0;
                while let Some(at) = p[i..].windows(old.len()).position(|w| w == old) {
                    p[i + at..i + at + old.len()].copy_from_slice(new);
                    i += at + old.len();
                }
            }
            hep::encode_v3(&packet)
        })
        .collect()
}

fn main() {
    let calls: usize = std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(20_000);
    let template = template();
    let first = event_of_hep(&template[0], Timestamp(0)).expect("an INVITE");
    let old = first.signal.call_id.split('@').next().unwrap().to_owned();
    let mut packets = Vec::with_capacity(calls * template.len());
    for n in 0..calls {
        let id = format!("{n:0width$}", width = old.len());
        assert_eq!(
            id.len(),
            old.len(),
            "too many calls for the Call-ID's width"
        );
        packets.extend(call_packets(&template, old.as_bytes(), id.as_bytes()));
    }
    let bytes: usize = packets.iter().map(Vec::len).sum();
    println!(
        "{} packets of {calls} calls, {} bytes on average",
        packets.len(),
        bytes / packets.len()
    );
    for round in 1..=3 {
        let mut calls_by_key: HashMap<i64, usize> = HashMap::with_capacity(calls * 2);
        let mut hints: HashMap<i64, usize> = HashMap::with_capacity(calls * 4);
        let mut groups: Vec<SipCallGroup> = Vec::with_capacity(calls);
        let start = Instant::now();
        let mut skipped = 0;
        for (id, p) in packets.iter().enumerate() {
            let Ok(event) = event_of_hep(p, Timestamp(0)) else {
                skipped += 1;
                continue;
            };
            let keys = event.keys("1@127.0.0.1");
            let (probes, marks) = event.b2bua_hints("1@127.0.0.1");
            let found = keys
                .iter()
                .find_map(|k| calls_by_key.get(k))
                .or_else(|| probes.iter().find_map(|k| hints.get(k)))
                .copied();
            let call = found.unwrap_or_else(|| {
                groups.push(SipCallGroup::default());
                groups.len() - 1
            });
            groups[call].apply(&event, id as i64);
            for k in keys {
                calls_by_key.insert(k, call);
            }
            for m in marks {
                hints.entry(m).or_insert(call);
            }
        }
        let secs = start.elapsed().as_secs_f64();
        let answered = groups
            .iter()
            .filter(|g| g.dialogs.iter().any(|d| d.connect_at.is_some()))
            .count();
        println!(
            "round {round}: {:.0} packets/s ({:.2} µs a packet), {} calls, {answered} answered, {skipped} not SIP",
            packets.len() as f64 / secs,
            secs * 1e6 / packets.len() as f64,
            groups.len()
        );
    }
}
