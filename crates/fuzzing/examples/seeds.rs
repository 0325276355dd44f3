//! Writes the starting corpus of each fuzz target into `fuzz/corpus`, from
//! the project's own test data: the vendor documents' examples, captures
//! from real peers and the simulators' messages. Run once by
//! `scripts/fuzz.sh seed`; the fuzzer grows the corpus from there.

use std::path::{Path, PathBuf};

use cdrhub_protocols::cti;
use cdrhub_sim::cti::flows::{self, Agent, CallIds, InboundCall, Timing};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn write(target: &str, name: &str, bytes: &[u8]) {
    let dir = root().join("fuzz/corpus").join(target);
    std::fs::create_dir_all(&dir).expect("the corpus folder is made");
    std::fs::write(dir.join(format!("seed-{name}")), bytes).expect("a seed is written");
}

/// Every file of `tests/data/<folder>` whose name ends in `suffix`.
fn data_files(folder: &str, suffix: &str) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<_> = std::fs::read_dir(root().join("tests/data").join(folder))
        .expect("test data folder")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.is_file() && p.to_string_lossy().ends_with(suffix))
        .map(|p| {
            let name = p
                .file_name()
                .expect("a name")
                .to_string_lossy()
                .into_owned();
            (name, std::fs::read(&p).expect("test data reads"))
        })
        .collect();
    files.sort();
    files
}

fn hex(text: &str) -> Vec<u8> {
    let digits: Vec<u8> = text.bytes().filter(u8::is_ascii_hexdigit).collect();
    digits
        .chunks(2)
        .map(|pair| u8::from_str_radix(std::str::from_utf8(pair).expect("ascii"), 16).expect("hex"))
        .collect()
}

fn cti_stream(version: u32) -> Vec<u8> {
    let call = InboundCall {
        ani: "4085551212".to_owned(),
        trigger: "8000".to_owned(),
        cti_port: "9001".to_owned(),
        agent: Agent::numbered(2006),
        csq_id: 3,
        application_id: 7,
        timing: Timing::default(),
    };
    let mut ids = CallIds::starting_at(16_777_300);
    let mut messages: Vec<_> = flows::queued_and_answered(&mut ids, &call)
        .into_iter()
        .chain(flows::transferred(&mut ids, &call, &Agent::numbered(2007)))
        .map(|step| step.message)
        .collect();
    messages.push(flows::agent_state_event(&Agent::numbered(2006), 3, 0, 0));
    let mut stream = Vec::new();
    for message in &messages {
        stream.extend(cti::encode(message, version));
    }
    stream
}

fn main() {
    for (name, bytes) in data_files("cms", ".xml") {
        write("cms_xml", &name, &bytes);
    }
    // The first byte picks the width: even narrow (UCCX), odd wide (UCCE).
    for (pick, version) in [(0u8, 15), (1, 24)] {
        let stream = cti_stream(version);
        let mut input = vec![pick];
        input.extend(&stream);
        write("cti_frames", &format!("flows-v{version}"), &input);
        let first = cti::frame_len(&stream).expect("a frame").expect("whole");
        let mut one = vec![pick];
        one.extend(&stream[..first]);
        write("cti_frames", &format!("one-frame-v{version}"), &one);
    }
    for (name, bytes) in data_files("cti", ".log") {
        write("cti_trace", &name, &bytes);
    }
    for (name, bytes) in data_files("radius", ".hex") {
        write("radius", &name, &hex(&String::from_utf8_lossy(&bytes)));
    }
    let feed_doc = std::fs::read_to_string(root().join("docs/gateway-feed.md")).expect("feed doc");
    let lines: Vec<&str> = feed_doc
        .lines()
        .filter(|l| l.starts_with("GWFEED/1 "))
        .collect();
    write("gateway_feed", "doc-lines", lines.join("\n").as_bytes());
    for (n, line) in lines.iter().enumerate() {
        write("gateway_feed", &format!("doc-line-{n:02}"), line.as_bytes());
    }
    for (name, bytes) in data_files("hep", ".hepstream") {
        // Each packet is a 4-byte big-endian length, then the datagram.
        let mut rest = &bytes[..];
        let mut stream = Vec::new();
        let mut n = 0;
        while let [a, b, c, d, tail @ ..] = rest {
            let len = u32::from_be_bytes([*a, *b, *c, *d]) as usize;
            let packet = &tail[..len.min(tail.len())];
            write("hep", &format!("{name}-{n:02}"), packet);
            stream.extend_from_slice(packet);
            rest = &tail[packet.len()..];
            n += 1;
        }
        // As a TCP sender writes them: frames back to back.
        write("hep", &format!("{name}-tcp"), &stream);
    }
    for (name, bytes) in data_files("sip", ".sip") {
        write("sip", &name, &bytes);
    }
    for (name, bytes) in data_files("csv", ".csv") {
        // The first byte picks the format, as csv_import reads it.
        let pick: u8 = match name.split('-').next() {
            Some("asterisk") => 0,
            Some("freeswitch") => 1,
            Some("minisipserver") => 2,
            _ => 3,
        };
        let mut input = vec![pick];
        input.extend(&bytes);
        write("csv_import", &name, &input);
    }
    let readme = std::fs::read_to_string(root().join("README.md")).expect("README");
    let events: Vec<&str> = readme
        .lines()
        .filter(|l| l.starts_with("{\"type\":"))
        .collect();
    write("call_events", "readme-ndjson", events.join("\n").as_bytes());
    for (n, line) in events.iter().enumerate() {
        write("call_events", &format!("readme-{n:02}"), line.as_bytes());
    }
}
