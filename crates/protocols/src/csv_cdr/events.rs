//! A CSV CDR row as the call events of the open vocabulary
//! (`crate::events`): `cdrhub import csv` journals and correlates imported
//! rows exactly as events posted to the API, so an import is deduplicated
//! by the events' keys and an O-CDR and its T-CDR become one call's legs.

use std::collections::BTreeMap;

use crate::events::{CallEvent, EventType};

use super::CsvCdr;

/// The events of one row: its setup, its answer, a transfer to a final
/// target other than the number dialled, and its end. Each key is
/// `FORMAT:ROW ID:TYPE`, so a row imported again is stored once.
pub fn row_events(format: &str, cdr: &CsvCdr) -> Vec<CallEvent> {
    let mut data: BTreeMap<String, serde_json::Value> = cdr
        .extra
        .iter()
        .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
        .collect();
    if let Some(cause) = &cdr.cause {
        data.insert("cause".into(), serde_json::Value::String(cause.clone()));
    }
    data.insert("line".into(), serde_json::Value::from(cdr.line));
    let event = |kind: EventType, at| CallEvent {
        kind,
        call_id: Some(cdr.call_id.clone()),
        key: format!("{format}:{}:{}", cdr.id, kind.as_str()),
        at,
        leg: cdr.leg.clone(),
        caller: None,
        caller_name: None,
        callee: None,
        direction: None,
        media: None,
        source_address: None,
        sip_call_id: None,
        ucid: None,
        call_type: None,
        to: None,
        sip_status: None,
        q850_cause: None,
        by: None,
        disposition: None,
        extension: None,
        contact: None,
        expires_s: None,
        data: BTreeMap::new(),
        imported: Some(format.to_owned()),
    };
    let mut setup = event(EventType::Setup, cdr.started_at);
    setup.caller.clone_from(&cdr.caller);
    setup.caller_name.clone_from(&cdr.caller_name);
    setup.callee = cdr.dialed.clone().or(cdr.destination.clone());
    setup.direction = cdr.direction.map(|d| d.as_str().to_owned());
    setup.data = data;
    let mut out = vec![setup];
    if let Some(at) = cdr.answered_at {
        out.push(event(EventType::Answered, at));
    }
    if let Some(to) = cdr
        .destination
        .as_ref()
        .filter(|d| cdr.dialed.as_ref() != Some(*d))
        .filter(|_| cdr.dialed.is_some())
    {
        let mut transferred = event(
            EventType::Transferred,
            cdr.answered_at.unwrap_or(cdr.started_at),
        );
        transferred.to = Some(to.clone());
        out.push(transferred);
    }
    // A CDR is written when the call is over: it always ends.
    let end = cdr
        .ended_at
        .or_else(|| {
            cdr.duration_s
                .map(|d| cdrhub_model::Timestamp(cdr.started_at.0 + d * 1000))
        })
        .unwrap_or(cdr.answered_at.unwrap_or(cdr.started_at));
    let mut ended = event(EventType::Ended, end);
    ended.disposition = cdr.disposition;
    ended.sip_status = cdr.sip_status;
    ended.q850_cause = cdr.q850_cause;
    out.push(ended);
    out
}
