//! Store-only ingest rate: realistic CMS calls straight into the writer, no
//! HTTP. Shows the ceiling the HTTP benchmark can reach.
//! `cargo run --release -p cdrhub-store --example ingest_rate -- [RECORDS] [PER_DOC] [IN_FLIGHT]`

use std::time::Instant;

use cdrhub_model::Timestamp;
use cdrhub_protocols::cms;
use cdrhub_store::{CmsIngest, IngestBatch, IngestPayload, SqliteOptions, SqliteStore, Store};

fn records(n: usize) -> Vec<String> {
    let mut out = Vec::with_capacity(n);
    let mut c = 0;
    while out.len() < n {
        let call = format!("c{c}-0000-0000-0000-000000000000");
        out.push(format!("<call id=\"{call}\"><name>room {c}</name><callType>coSpace</callType><coSpace>s{c}</coSpace><callCorrelator>x{c}</callCorrelator></call>|callStart"));
        let legs = 2 + c % 9;
        for l in 0..legs {
            let leg = format!("l{c}-{l}-0000-0000-000000000000");
            out.push(format!("<callLeg id=\"{leg}\"><remoteParty>{c}{l}@example.com</remoteParty><localAddress>room{c}@cms</localAddress><displayName>User {l}</displayName><type>sip</type><direction>incoming</direction><sipCallId>{leg}</sipCallId></callLeg>|callLegStart"));
            out.push(format!("<callLeg id=\"{leg}\"><state>connected</state><call>{call}</call></callLeg>|callLegUpdate"));
            out.push(format!("<callLeg id=\"{leg}\"><reason>remoteTeardown</reason><remoteTeardown>true</remoteTeardown><durationSeconds>60</durationSeconds><mediaUsagePercentages><mainVideoViewer>100.0</mainVideoViewer></mediaUsagePercentages><unencryptedMedia>true</unencryptedMedia><rxAudio><codec>opus</codec><packetStatistics><packetLossBursts><duration>0.0</duration><density>0.0</density></packetLossBursts><packetGap><duration>1.0</duration><density>0.0</density></packetGap></packetStatistics></rxAudio><txAudio><codec>opus</codec></txAudio><rxVideo><codec>h264</codec><maxSizeWidth>1280</maxSizeWidth><maxSizeHeight>720</maxSizeHeight></rxVideo><txVideo><codec>h264</codec><maxSizeWidth>1280</maxSizeWidth><maxSizeHeight>720</maxSizeHeight></txVideo></callLeg>|callLegEnd"));
        }
        out.push(format!("<call id=\"{call}\"><callLegsCompleted>{legs}</callLegsCompleted><callLegsMaxActive>{legs}</callLegsMaxActive><durationSeconds>61</durationSeconds></call>|callEnd"));
        c += 1;
    }
    out.truncate(n);
    out
}

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| a.parse().unwrap())
        .collect();
    let n = *args.first().unwrap_or(&200_000);
    let per_doc = *args.get(1).unwrap_or(&50);
    let in_flight = *args.get(2).unwrap_or(&64);
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path(), SqliteOptions::default()).unwrap();
    let docs: Vec<Vec<u8>> = records(n)
        .chunks(per_doc)
        .enumerate()
        .map(|(d, chunk)| {
            let mut s = String::from("<?xml version=\"1.0\"?>\n<records session=\"bench\">");
            for (i, r) in chunk.iter().enumerate() {
                let (body, kind) = r.split_once('|').unwrap();
                let idx = d * per_doc + i + 1;
                s.push_str(&format!("<record type=\"{kind}\" time=\"2026-01-01T00:00:00Z\" recordIndex=\"{idx}\" correlatorIndex=\"{}\">{body}</record>", idx - 1));
            }
            s.push_str("</records>");
            s.into_bytes()
        })
        .collect();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let start = Instant::now();
    let cpu_start = cpu_seconds();
    rt.block_on(async {
        use futures_util::StreamExt;
        let mut acks = futures_util::stream::iter(docs.into_iter().map(|body| {
            let batch = cms::decode(&body).unwrap();
            store.submit(IngestBatch {
                sender: "bench".into(),
                received_at: Timestamp::now(),
                payload: IngestPayload::Cms(CmsIngest {
                    receiver: "/r".into(),
                    body: body.into(),
                    batch,
                }),
            })
        }))
        .buffer_unordered(in_flight);
        while let Some(a) = acks.next().await {
            a.unwrap();
        }
    });
    let secs = start.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu_start;
    println!(
        "{n} records in {per_doc}-record documents, {in_flight} in flight: {:.0} records/s ({secs:.2} s), {:.1} us CPU per record",
        n as f64 / secs,
        cpu * 1e6 / n as f64
    );
}

/// User + system CPU seconds of this process (all threads), from /proc.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap()
        .split_whitespace()
        .collect();
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    ticks / 100.0
}
