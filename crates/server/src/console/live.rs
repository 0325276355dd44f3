//! The live status (seed 002, "Diagnostic"): version, start time, what is
//! in progress now, this hour so far and the calls in progress, refreshed
//! every 3 seconds. Supervisors and admins.

use axum::Form;
use axum::Json;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use cdrhub_model::{Role, Timestamp};
use cdrhub_store::{LiveStatus, RecentBody};
use maud::{Markup, html};
use serde_json::{Value, json};

use super::{Signed, page, redirect_after, t};
use crate::AppState;
use crate::api::calls::{FORCE_END_OPERATION, force_end_call};
use crate::api::{blocking, blocking_api};

/// Calls in progress listed at most.
const ACTIVE_CALLS: usize = 50;

async fn status(app: &AppState) -> Result<Value, crate::api::ApiError> {
    let store = app.store.clone();
    let live: LiveStatus =
        blocking(move || store.live_status(Timestamp::now(), ACTIVE_CALLS)).await?;
    let calls: Vec<Value> = live
        .active_calls
        .iter()
        .map(|c| {
            json!({
                "id": c.id, "sender": c.sender, "kind": c.kind,
                "direction": c.direction.map(|d| d.as_str()),
                "caller": c.caller, "dialed": c.dialed, "destination": c.destination,
                "state": if c.answered_at.is_some() { "connected" } else { "setup" },
                "started_at": c.started_at.to_rfc3339(),
                "answered_at": c.answered_at.map(|t| t.to_rfc3339()),
                "legs": c.legs,
            })
        })
        .collect();
    let h = &live.this_hour;
    Ok(json!({
        "version": env!("CARGO_PKG_VERSION"),
        "started_at": app.metrics.started_at.to_rfc3339(),
        "now": Timestamp::now().to_rfc3339(),
        "now-attempts": live.attempts, "now-connected": live.connected,
        "now-video-attempts": live.video_attempts, "now-video-connected": live.video_connected,
        "hour-attempts": h.attempts, "hour-answered": h.answered,
        "hour-peak-attempts": h.peak_attempts, "hour-peak-connected": h.peak_connected,
        "hour-video-attempts": h.video_attempts, "hour-video-peak-connected": h.video_peak_connected,
        "active_calls": calls,
    }))
}

pub(crate) async fn json(State(app): State<AppState>, signed: Signed) -> Response {
    if let Err(refused) = signed.require(Role::Supervisor) {
        return *refused;
    }
    match status(&app).await {
        Ok(v) => Json(v).into_response(),
        Err(e) => e.into_response(),
    }
}

pub(crate) async fn view(State(app): State<AppState>, signed: Signed) -> Response {
    if let Err(refused) = signed.require(Role::Supervisor) {
        return *refused;
    }
    let s = match status(&app).await {
        Ok(v) => v,
        Err(e) => return e.into_response(),
    };
    let l = signed.user.language.clone();
    let l = l.as_str();
    let v = |k: &str| s[k].to_string().trim_matches('"').to_owned();
    let cell = |k: &'static str| html! { td.num id=(k) { (v(k)) } };
    let body = html! {
        table #status {
            tr { th { (t(l, "live_version")) } td #version { (v("version")) } }
            tr { th { (t(l, "live_started")) } td #started_at { (v("started_at")) } }
            tr { th { (t(l, "live_now")) } td #now { (v("now")) } }
        }
        h2 { (t(l, "live_in_progress")) }
        table #levels {
            tr { th {} th { "Attempts" } th { "Connected" } th { "Video attempts" } th { "Video connected" } }
            tr { th { (t(l, "live_current")) } (cell("now-attempts")) (cell("now-connected")) (cell("now-video-attempts")) (cell("now-video-connected")) }
        }
        h2 { (t(l, "live_this_hour")) }
        table #hour {
            tr { th { "Total CA" } th { "Total Call" } th { "Peak CA" } th { "Peak Call" } th { "Video CA" } th { "Video Peak Call" } }
            tr { (cell("hour-attempts")) (cell("hour-answered")) (cell("hour-peak-attempts")) (cell("hour-peak-connected")) (cell("hour-video-attempts")) (cell("hour-video-peak-connected")) }
        }
        h2 { (t(l, "live_active")) }
        table #active {
            thead { tr {
                th { (t(l, "leg_setup")) } th { (t(l, "calls_sender")) } th { (t(l, "calls_kind")) } th { (t(l, "calls_caller")) }
                th { (t(l, "calls_dialed")) } th { (t(l, "calls_destination")) } th { (t(l, "live_state")) }
                th { (t(l, "leg_connect")) } th { (t(l, "calls_legs")) } th {}
            } }
            tbody #active-rows {
                @for c in s["active_calls"].as_array().into_iter().flatten() {
                    tr {
                        @for k in ["started_at", "sender", "kind", "caller", "dialed", "destination", "state", "answered_at", "legs"] {
                            td { (c[k].as_str().map(str::to_owned).unwrap_or_else(|| if c[k].is_null() { String::new() } else { c[k].to_string() })) }
                        }
                        td { (force_end_form(l, &signed.csrf, c["id"].as_str().unwrap_or_default())) }
                    }
                }
            }
        }
        // What the refresh puts in each row, its action set to the call.
        template #force-end-template { (force_end_form(l, &signed.csrf, "")) }
        p.help { (t(l, "live_help")) " " (t(l, "force_end_help")) }
        // Fills every element whose id is a key of the status, and the
        // table of calls in progress, every 3 seconds.
        script src=(super::assets::LIVE_JS) defer {}
    };
    page(l, t(l, "live_title"), Some(&signed), body).into_response()
}

/// The button that ends a call whose end records never came, after the
/// user confirms it.
pub(crate) fn force_end_form(l: &str, csrf: &str, call_id: &str) -> Markup {
    html! {
        form.inline.force-end method="post" action={ "/calls/" (urlencoding(call_id)) "/end" } data-confirm=(t(l, "force_end_confirm")) {
            input type="hidden" name="csrf" value=(csrf);
            button type="submit" title=(t(l, "force_end_help")) { (t(l, "force_end")) }
        }
    }
}

/// A call id as a URL path segment (ids are UUIDs; anything else is escaped).
fn urlencoding(id: &str) -> String {
    id.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b == b'-' {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[derive(serde::Deserialize)]
pub(crate) struct ForceEndForm {
    csrf: String,
}

/// Ends a call whose end records never came (supervisors and admins;
/// audited), then back to the live status.
pub(crate) async fn force_end(
    State(app): State<AppState>,
    signed: Signed,
    Path(id): Path<String>,
    Form(form): Form<ForceEndForm>,
) -> Response {
    if let Err(refused) = signed.may_change(Role::Supervisor, &form.csrf) {
        return *refused;
    }
    let store = app.store.clone();
    let entry = signed.audit(FORCE_END_OPERATION, Some(&id));
    let done = blocking_api(move || force_end_call(&*store, &id, &entry)).await;
    redirect_after(done, "/live")
}

/// The columns of seed 001's real-time event view: time, call reference,
/// event, dialed, caller id, info, port.
fn event_columns(record: &RecentBody, received_at: Timestamp) -> [String; 7] {
    match record {
        RecentBody::Cms(r) => {
            let [reference, dialed, caller, info, port] = cms_columns(r);
            [
                r.time.to_rfc3339(),
                reference,
                r.record_type.clone(),
                dialed,
                caller,
                info,
                port,
            ]
        }
        RecentBody::Cti(m) => {
            let [reference, dialed, caller, info, port] = cti_columns(m);
            [
                received_at.to_rfc3339(),
                reference,
                cdrhub_protocols::cti::message_type_name(m.message_type).into_owned(),
                dialed,
                caller,
                info,
                port,
            ]
        }
        RecentBody::Feed(m) => {
            use cdrhub_protocols::feed::{CallEventKind as K, FeedBody};
            let none = String::new;
            let (reference, event, dialed, caller, info, port) = match &m.body {
                FeedBody::Call(e) => {
                    let text = |v: &Option<String>| v.clone().unwrap_or_default();
                    let (dialed, caller, info) = match &e.kind {
                        K::Dial { digits } | K::PstnDial { digits } => {
                            (digits.clone(), none(), none())
                        }
                        K::CallIn { caller_id } | K::PstnCallIn { caller_id } => {
                            (none(), text(caller_id), none())
                        }
                        K::Talk { codec } => (
                            none(),
                            none(),
                            codec.as_ref().map(|c| c.to_string()).unwrap_or_default(),
                        ),
                        K::CallInReject { caller_id, reason } => {
                            (none(), text(caller_id), text(reason))
                        }
                        K::CallOutFail { reason } => (none(), none(), text(reason)),
                        _ => (none(), none(), none()),
                    };
                    let port = e.port.map(|p| p.to_string()).unwrap_or_default();
                    (
                        e.call_ref.to_string(),
                        e.kind.name().to_owned(),
                        dialed,
                        caller,
                        info,
                        port,
                    )
                }
                FeedBody::Login(_) => (
                    none(),
                    "LOGIN".into(),
                    none(),
                    none(),
                    m.gateway.to_string(),
                    none(),
                ),
                FeedBody::Logout { .. } => (
                    none(),
                    "LOGOUT".into(),
                    none(),
                    none(),
                    m.gateway.to_string(),
                    none(),
                ),
                FeedBody::KeepAlive { .. } => {
                    (none(), "KEEPALIVE".into(), none(), none(), none(), none())
                }
            };
            [
                received_at.to_rfc3339(),
                reference,
                event,
                dialed,
                caller,
                info,
                port,
            ]
        }
    }
}

/// A CMS record: call reference, dialed, caller id, info (CMS has no ports).
fn cms_columns(record: &cdrhub_protocols::cms::CmsRecord) -> [String; 5] {
    use cdrhub_protocols::cms::CmsRecordBody as B;
    let some = |v: &Option<String>| v.clone().unwrap_or_default();
    let reference = record.subject_id().unwrap_or_default().to_owned();
    let (dialed, caller, info) = match &record.body {
        B::CallStart(r) => (some(&r.name), String::new(), some(&r.call_type)),
        B::CallEnd(r) => (
            String::new(),
            String::new(),
            r.duration_seconds
                .map(|d| format!("{d} s"))
                .unwrap_or_default(),
        ),
        B::CallLegStart(r) => (
            some(&r.local_address),
            some(&r.remote_party),
            some(&r.direction),
        ),
        B::CallLegUpdate(r) => (String::new(), some(&r.remote_address), some(&r.state)),
        B::CallLegEnd(r) => (String::new(), String::new(), some(&r.reason)),
        _ => (String::new(), String::new(), String::new()),
    };
    [reference, dialed, caller, info, String::new()]
}

/// A CTI message: call id (or agent), dialed (DNIS, dialed or called
/// number), caller id (ANI or calling device), info (call type, agent
/// state, event cause), port (the device of the event).
fn cti_columns(message: &cdrhub_protocols::cti::CtiMessage) -> [String; 5] {
    use cdrhub_protocols::cti::{CtiBody, tags};
    match &message.body {
        CtiBody::Call(e) => {
            let f = &e.floating;
            let first = |list: &[u16]| {
                list.iter()
                    .find_map(|t| f.str(*t).filter(|s| !s.is_empty()))
                    .unwrap_or_default()
                    .to_owned()
            };
            let info = match (e.call_type, e.event_cause) {
                (Some(t), _) => cdrhub_correlate::cti::call_type_name(t),
                (None, Some(c)) if c != 0xFFFF => format!("cause {c}"),
                _ => String::new(),
            };
            [
                e.connection_call_id.to_string(),
                first(&[tags::DIALED_NUMBER, tags::DNIS, tags::CALLED_DEVID]),
                first(&[tags::ANI, tags::CALLING_DEVID]),
                info,
                first(&[tags::CONNECTION_DEVID]),
            ]
        }
        CtiBody::AgentState(a) => {
            let f = &a.floating;
            [
                f.str(tags::AGENT_ID_LONG)
                    .or_else(|| f.str(tags::AGENT_ID))
                    .unwrap_or_default()
                    .to_owned(),
                String::new(),
                String::new(),
                format!("state {} reason {}", a.agent_state, a.event_reason_code),
                f.str(tags::AGENT_EXTENSION).unwrap_or_default().to_owned(),
            ]
        }
        CtiBody::SystemEvent(e) => [
            String::new(),
            String::new(),
            String::new(),
            format!("system event {}", e.system_event_id),
            String::new(),
        ],
        _ => Default::default(),
    }
}

#[derive(serde::Deserialize)]
pub(crate) struct EventsQuery {
    sender: Option<String>,
}

/// The newest records as they arrive (seed 001, "real-time events"), of one
/// sender or all; the page reloads itself every 3 seconds.
pub(crate) async fn events(
    State(app): State<AppState>,
    signed: Signed,
    axum::extract::Query(query): axum::extract::Query<EventsQuery>,
) -> Response {
    if let Err(refused) = signed.require(Role::Supervisor) {
        return *refused;
    }
    let sender = query.sender.filter(|s| !s.is_empty());
    let store = app.store.clone();
    let wanted = sender.clone();
    let listed = blocking(move || {
        Ok((
            store.recent_records(wanted.as_deref(), 100)?,
            store.senders()?,
        ))
    })
    .await;
    let (records, senders) = match listed {
        Ok(lists) => lists,
        Err(e) => return e.into_response(),
    };
    let l = signed.user.language.clone();
    let l = l.as_str();
    let body = html! {
        meta http-equiv="refresh" content="3";
        form.filters.noprint method="get" action="/live/events" {
            label.inline { (t(l, "calls_sender")) " "
                select name="sender" data-autosubmit {
                    option value="" { (t(l, "all")) }
                    @for s in &senders { option value=(s.sender) selected[sender.as_deref() == Some(s.sender.as_str())] { (s.sender) } }
                }
            }
        }
        table #events {
            tr {
                th { (t(l, "audit_time")) } th { (t(l, "events_reference")) } th { (t(l, "timeline_event")) }
                th { (t(l, "calls_dialed")) } th { (t(l, "events_caller_id")) } th { (t(l, "events_info")) }
                th { (t(l, "events_port")) } th { (t(l, "calls_sender")) }
            }
            @for r in &records {
                @let [time, reference, event, dialed, caller, info, port] = event_columns(&r.record, r.received_at);
                tr {
                    td.time { (time) } td { (reference) } td { (event) }
                    td { (dialed) } td { (caller) } td { (info) } td { (port) } td { (r.sender) }
                }
            }
        }
        p.help { (t(l, "events_help")) }
    };
    page(l, t(l, "events_title"), Some(&signed), body).into_response()
}
