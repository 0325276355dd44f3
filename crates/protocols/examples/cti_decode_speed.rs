//! How many CTI call-event frames one thread decodes per second.
//!
//! The frames are the Unified CCX call flow of seed 003 ("Queued and
//! Answered Call"): BEGIN_CALL, SERVICE_INITIATED, ORIGINATED, DELIVERED to
//! the trigger, ESTABLISHED, QUEUED, AGENT_STATE, DELIVERED to the agent,
//! CALL_DATA_UPDATE, ESTABLISHED, DEQUEUED, three CONNECTION_CLEARED,
//! CLEARED and END_CALL, in the 1-byte floating-field width (version 14),
//! repeated for many calls.
//!
//! Run with `cargo run --release -p cdrhub-protocols --example cti_decode_speed`.

use cdrhub_protocols::cti::{
    AgentStateEvent, CallEvent, CallEventKind, CtiBody, CtiMessage, DeviceRole, FloatValue,
    Floating, decode, encode, message_type, tags,
};
use std::hint::black_box;
use std::time::{Duration, Instant};

const VERSION: u32 = 14;

fn call_event(
    kind: CallEventKind,
    call_id: u32,
    devices: &[(DeviceRole, u16)],
    lcs: u16,
    cause: u16,
    floating: &[(u16, &str)],
) -> CtiMessage {
    let mut event = CallEvent::new(kind, call_id);
    event.connection_device_id_type = 0;
    event.device_types = devices.to_vec();
    event.local_connection_state = Some(lcs);
    event.event_cause = Some(cause);
    event.service_number = Some(2);
    event.skill_group_number = Some(1);
    event.call_type = Some(1);
    event.floating = Floating {
        fields: floating
            .iter()
            .map(|(tag, value)| (*tag, FloatValue::Str((*value).to_owned())))
            .collect(),
    };
    CtiMessage {
        message_type: 0, // encode takes the type from the kind
        body: CtiBody::Call(Box::new(event)),
    }
}

/// The frames of one queued and answered call.
fn call_flow(call_id: u32) -> Vec<Vec<u8>> {
    use CallEventKind as K;
    use DeviceRole as R;
    let caller = "2005";
    let port = "9019";
    let agent = "2006";
    let mut messages = vec![
        call_event(
            K::BeginCall,
            call_id,
            &[],
            0,
            0,
            &[
                (tags::ANI, caller),
                (tags::DIALED_NUMBER, "7000"),
                (tags::CONNECTION_DEVID, caller),
                (tags::DNIS, "7000"),
                (tags::CALL_VAR_1, "account 12345678"),
                (tags::CALL_VAR_1 + 1, "priority"),
            ],
        ),
        call_event(
            K::ServiceInitiated,
            call_id,
            &[(R::Calling, 76)],
            1,
            0xFFFF,
            &[
                (tags::CONNECTION_DEVID, caller),
                (tags::CALLING_DEVID, caller),
            ],
        ),
        call_event(
            K::Originated,
            call_id,
            &[(R::Calling, 76), (R::Called, 74)],
            1,
            0xFFFF,
            &[
                (tags::CONNECTION_DEVID, caller),
                (tags::CALLING_DEVID, caller),
                (tags::CALLED_DEVID, "7000"),
            ],
        ),
        call_event(
            K::Delivered,
            call_id,
            &[
                (R::Alerting, 73),
                (R::Calling, 76),
                (R::Called, 73),
                (R::LastRedirect, 0xFFFF),
            ],
            2,
            22,
            &[
                (tags::CONNECTION_DEVID, port),
                (tags::ALERTING_DEVID, port),
                (tags::CALLING_DEVID, caller),
                (tags::CALLED_DEVID, port),
                (tags::LAST_REDIRECT_DEVID, ""),
                (tags::ANI, caller),
                (tags::DNIS, "7000"),
                (tags::DIALED_NUMBER, "7000"),
            ],
        ),
        call_event(
            K::Established,
            call_id,
            &[
                (R::Answering, 73),
                (R::Calling, 76),
                (R::Called, 73),
                (R::LastRedirect, 0xFFFF),
            ],
            3,
            22,
            &[
                (tags::CONNECTION_DEVID, port),
                (tags::ANSWERING_DEVID, port),
                (tags::CALLING_DEVID, caller),
                (tags::CALLED_DEVID, port),
                (tags::LAST_REDIRECT_DEVID, ""),
            ],
        ),
        call_event(
            K::Queued,
            call_id,
            &[
                (R::Queue, 77),
                (R::Calling, 76),
                (R::Called, 74),
                (R::LastRedirect, 0xFFFF),
            ],
            5,
            0xFFFF,
            &[
                (tags::CONNECTION_DEVID, port),
                (tags::QUEUE_DEVID, "1"),
                (tags::CALLING_DEVID, caller),
                (tags::CALLED_DEVID, "7000"),
                (tags::LAST_REDIRECT_DEVID, ""),
            ],
        ),
        call_event(
            K::Delivered,
            call_id,
            &[
                (R::Alerting, 76),
                (R::Calling, 76),
                (R::Called, 76),
                (R::LastRedirect, 0xFFFF),
            ],
            2,
            22,
            &[
                (tags::CONNECTION_DEVID, agent),
                (tags::ALERTING_DEVID, agent),
                (tags::CALLING_DEVID, caller),
                (tags::CALLED_DEVID, agent),
                (tags::LAST_REDIRECT_DEVID, ""),
            ],
        ),
        call_event(
            K::CallDataUpdate,
            call_id,
            &[],
            0,
            0,
            &[
                (tags::CONNECTION_DEVID, caller),
                (tags::NEW_CONNECTION_DEVID, caller),
            ],
        ),
        call_event(
            K::Established,
            call_id,
            &[
                (R::Answering, 76),
                (R::Calling, 76),
                (R::Called, 76),
                (R::LastRedirect, 73),
            ],
            3,
            22,
            &[
                (tags::CONNECTION_DEVID, agent),
                (tags::ANSWERING_DEVID, agent),
                (tags::CALLING_DEVID, caller),
                (tags::CALLED_DEVID, agent),
                (tags::LAST_REDIRECT_DEVID, port),
            ],
        ),
        call_event(
            K::Dequeued,
            call_id,
            &[(R::Queue, 0)],
            3,
            0xFFFF,
            &[(tags::CONNECTION_DEVID, ""), (tags::QUEUE_DEVID, "")],
        ),
    ];
    for (device, cause) in [(port, 28), (caller, 0xFFFF), (agent, 0xFFFF)] {
        messages.push(call_event(
            K::ConnectionCleared,
            call_id,
            &[(R::Releasing, 76)],
            0xFFFF,
            cause,
            &[
                (tags::CONNECTION_DEVID, device),
                (tags::RELEASING_DEVID, device),
            ],
        ));
    }
    messages.push(call_event(
        K::Cleared,
        call_id,
        &[],
        0,
        1014,
        &[(tags::CONNECTION_DEVID, caller)],
    ));
    messages.push(call_event(
        K::EndCall,
        call_id,
        &[],
        0,
        0,
        &[(tags::CONNECTION_DEVID, "")],
    ));
    let mut frames: Vec<Vec<u8>> = messages.iter().map(|m| encode(m, VERSION)).collect();
    // The agent goes Talking (seed 003, step 6).
    let agent_state = CtiMessage {
        message_type: message_type::AGENT_STATE_EVENT,
        body: CtiBody::AgentState(Box::new(AgentStateEvent {
            peripheral_id: 1,
            peripheral_type: 21,
            skill_group_state: 4,
            skill_group_number: 0xFFFF_FFFF,
            skill_group_id: 0xFFFF_FFFF,
            agent_state: 4,
            mrd_id: Some(1),
            num_tasks: Some(0),
            agent_mode: Some(0),
            max_task_limit: Some(0),
            icm_agent_id: Some(0),
            agent_availability_status: Some(1),
            num_flt_skill_groups: Some(0),
            floating: Floating {
                fields: vec![
                    (tags::AGENT_EXTENSION, FloatValue::Str(agent.to_owned())),
                    (tags::AGENT_ID_LONG, FloatValue::Str("agt2006".to_owned())),
                    (tags::NEXT_AGENT_STATE, FloatValue::U16(3)),
                ],
            },
            ..AgentStateEvent::default()
        })),
    };
    frames.insert(6, encode(&agent_state, VERSION));
    frames
}

fn main() {
    let frames: Vec<Vec<u8>> = (0..1000u32)
        .flat_map(|i| call_flow(16_777_488 + i))
        .collect();
    let bytes: usize = frames.iter().map(Vec::len).sum();
    println!(
        "{} frames ({} calls), {:.1} bytes a frame on average",
        frames.len(),
        1000,
        bytes as f64 / frames.len() as f64
    );
    // Check them once, then warm up.
    for frame in &frames {
        if let Err(e) = decode(frame, VERSION) {
            eprintln!("a generated frame does not decode: {e}");
            std::process::exit(1);
        }
    }
    for frame in &frames {
        black_box(decode(black_box(frame), VERSION).ok());
    }

    for round in 1..=3 {
        let mut decoded = 0u64;
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(2) {
            for frame in &frames {
                black_box(decode(black_box(frame), VERSION).ok());
            }
            decoded += frames.len() as u64;
        }
        let seconds = start.elapsed().as_secs_f64();
        println!(
            "round {round}: {:.0} messages/s ({:.0} ns a message, {:.0} MB/s), one thread",
            decoded as f64 / seconds,
            seconds * 1e9 / decoded as f64,
            (decoded as f64 / frames.len() as f64) * bytes as f64 / seconds / 1e6
        );
    }
}
