//! The OpenAPI 3.1 document served at `/api/v1/openapi.json`. A test requests
//! every path it lists from a running server, so it cannot drift from the router.

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

use crate::AppState;

pub(crate) async fn document(State(app): State<AppState>) -> Json<Value> {
    Json(spec(
        &app.config.sources.cms.path,
        app.config.metrics.require_token,
    ))
}

fn str_prop(description: &str) -> Value {
    json!({ "type": ["string", "null"], "description": description })
}
fn time_prop(description: &str) -> Value {
    json!({ "type": ["string", "null"], "format": "date-time", "description": description })
}
fn int_prop(description: &str) -> Value {
    json!({ "type": ["integer", "null"], "description": description })
}

fn filter_params() -> Vec<Value> {
    vec![
        json!({"name": "from", "in": "query", "schema": {"type": "string", "format": "date-time"}, "description": "Calls that started at or after this RFC 3339 time."}),
        json!({"name": "to", "in": "query", "schema": {"type": "string", "format": "date-time"}, "description": "Calls that started before this RFC 3339 time."}),
        json!({"name": "source", "in": "query", "schema": {"type": "string", "examples": ["cms"]}, "description": "Source family."}),
        json!({"name": "sender", "in": "query", "schema": {"type": "string"}, "description": "The system that sent the call (Call Bridge, gateway, CTI server)."}),
        json!({"name": "kind", "in": "query", "schema": {"type": "string", "examples": ["click_to_call"]}, "description": "The call's kind: conference, p2p, acd, gateway, sip, call, or the call_type a system sent with its call events."}),
        json!({"name": "answered", "in": "query", "schema": {"type": "boolean"}, "description": "true: answered calls; false: calls that ended unanswered."}),
        json!({"name": "call_type", "in": "query", "schema": {"type": "string", "enum": ["call_in", "call_out", "call_out_failed", "call_in_reject", "only_pstn", "other"]}, "description": "Call in, call out, call out failed (unanswered), call in reject (rejected or busy), only PSTN (gateway calls), other (no direction)."}),
        json!({"name": "direction", "in": "query", "schema": {"type": "string", "enum": ["in", "out", "internal"]}}),
        json!({"name": "disposition", "in": "query", "schema": {"$ref": "#/components/schemas/Disposition"}}),
        json!({"name": "q", "in": "query", "schema": {"type": "string"}, "description": "Substring of the caller, dialed or destination number, or of any leg's remote party, local address or display name."}),
    ]
}

fn call_schema() -> Value {
    json!({"type": "object", "required": ["id", "source", "sender", "kind", "started_at", "legs"], "properties": {
        "id": {"type": "string"},
        "source": {"type": "string", "description": "Source family: cms, cti, radius, feed, sip, events (the call-event API), csv (imported CDR files)."},
        "sender": {"type": "string", "description": "The system that sent the records."},
        "kind": {"type": "string", "description": "conference, p2p, ivr, leg, recording, ..."},
        "caller": str_prop("Who called: the remote party of the first incoming leg."),
        "dialed": str_prop("What was dialed."),
        "destination": str_prop("The final target (for CMS, the conference name)."),
        "direction": {"type": ["string", "null"], "enum": ["in", "out", "internal", null]},
        "started_at": {"type": "string", "format": "date-time"},
        "answered_at": time_prop("First leg connected."),
        "ended_at": time_prop("Null while the call is in progress."),
        "duration_s": int_prop("Seconds from start to end."),
        "talk_s": int_prop("Seconds from answer to end."),
        "disposition": {"oneOf": [{"$ref": "#/components/schemas/Disposition"}, {"type": "null"}]},
        "cause": str_prop("The raw cause the disposition came from."),
        "media": {"type": ["string", "null"], "enum": ["audio", "video", null]},
        "legs": {"type": "integer"},
        "legs_completed": int_prop("CMS callEnd callLegsCompleted (summed over Call Bridges)."),
        "max_active_legs": int_prop("CMS callEnd callLegsMaxActive (summed over Call Bridges)."),
        "flags": {"type": "array", "items": {"type": "string"}},
        "details": {"type": "object", "description": "Source-specific fields."}
    }})
}

/// A call with its legs (an array here, where the list has a count) and timeline.
fn call_detail_schema() -> Value {
    let mut schema = call_schema();
    schema["properties"]["legs"] =
        json!({"type": "array", "items": {"$ref": "#/components/schemas/Leg"}});
    schema["properties"]["events"] =
        json!({"type": "array", "items": {"$ref": "#/components/schemas/CallEvent"}});
    schema
}

/// The document. Every operation needs an API token (`security` at the
/// top) except `/healthz`, the CMS receiver and, unless `metrics_token`,
/// `/metrics`.
pub(crate) fn spec(cms_path: &str, metrics_token: bool) -> Value {
    let mut spec = operations(cms_path);
    spec["paths"]["/api/v1/stats"] = stats_operation();
    spec["paths"]["/api/v1/calls/{id}/end"] = force_end_operation();
    spec["components"]["schemas"]["CtiServer"] = cti_server_schema();
    spec["paths"]["/api/v1/cc"] = contact_centre_operation();
    gateway_operations(&mut spec);
    sip_operations(&mut spec);
    event_operations(&mut spec);
    spec["components"]["schemas"]["ContactCentreDay"] = contact_centre_schema();
    spec["components"]["schemas"]["DayStats"] = day_stats_schema();
    spec["security"] = json!([{"bearer": []}]);
    spec["components"]["securitySchemes"] = json!({"bearer": {"type": "http", "scheme": "bearer", "description": "An API token from `cdrhub token create`. Roles: viewer (reports), supervisor (and exports), admin (everything)."}});
    let open = |spec: &mut Value, path: &str, method: &str| {
        spec["paths"][path][method]["security"] = json!([]);
    };
    open(&mut spec, "/healthz", "get");
    open(&mut spec, cms_path, "post");
    if !metrics_token {
        open(&mut spec, "/metrics", "get");
    }
    let unauthorized = json!({"description": "No API token, or one that is unknown or revoked (`WWW-Authenticate: Bearer`).", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}});
    if let Some(paths) = spec["paths"].as_object_mut() {
        for operation in paths
            .values_mut()
            .filter_map(Value::as_object_mut)
            .flat_map(|p| p.values_mut())
        {
            if operation.get("security") != Some(&json!([])) {
                operation["responses"]["401"] = unauthorized.clone();
            }
        }
    }
    spec["paths"]["/api/v1/calls.csv"]["get"]["responses"]["403"] = json!({"description": "The token's role is viewer: exports need supervisor or admin.", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}});
    spec
}

/// The answer of a refused request: one sentence naming the problem.
fn error_response() -> Value {
    json!({"description": "One sentence naming the problem.", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}})
}

/// `GET /api/v1/cc`.
fn contact_centre_operation() -> Value {
    let error = error_response();
    json!({"get": {
        "summary": "A day's contact-centre reports: per agent (calls handled, talk, hold, ready, not ready by reason code, wrap-up) and per CSQ per hour (offered, answered, abandoned, waits)",
        "parameters": [
            {"name": "day", "in": "query", "schema": {"type": "string", "format": "date"}, "description": "YYYY-MM-DD (UTC); default today."},
            {"name": "sender", "in": "query", "schema": {"type": "string"}, "description": "A configured CTI server's name."}
        ],
        "responses": {"200": {"description": "The day.", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ContactCentreDay"}}}}, "400": error}
    }})
}

fn contact_centre_schema() -> Value {
    let secs = |d: &str| json!({"type": "number", "description": d});
    json!({"type": "object", "properties": {
        "day": {"type": "string", "format": "date-time"},
        "agents": {"type": "array", "items": {"type": "object", "properties": {
            "sender": {"type": "string"}, "agent": {"type": "string"}, "extension": str_prop(""),
            "calls_handled": {"type": "integer"}, "talk_s": secs("Talk on answered calls, hold excluded."),
            "hold_s": secs(""), "ready_s": secs(""), "not_ready_s": secs(""),
            "wrapup_s": secs("WORK_READY and WORK_NOT_READY."), "talking_s": secs(""), "reserved_s": secs(""),
            "not_ready_reasons": {"type": "array", "items": {"type": "array", "prefixItems": [{"type": "integer"}, {"type": "number"}]}, "description": "[reason code, seconds]"}
        }}},
        "csqs": {"type": "array", "items": {"type": "object", "properties": {
            "sender": {"type": "string"}, "csq": {"type": "integer"}, "hour": {"type": "string", "format": "date-time"},
            "offered": {"type": "integer"}, "answered": {"type": "integer"}, "abandoned": {"type": "integer"},
            "average_wait_s": {"type": ["number", "null"]}, "longest_wait_s": {"type": ["number", "null"]}
        }}}
    }})
}

/// `/api/v1/events` and its WebSocket (issue 7): the open call-event API.
fn event_operations(spec: &mut Value) {
    let error = error_response();
    let system = json!({"name": "system", "in": "query", "schema": {"type": "string"}, "description": "The sending system's name (the calls' sender); default the API token's name."});
    let event = json!({"type": "object", "required": ["type", "key", "at"], "additionalProperties": false, "properties": {
        "type": {"type": "string", "enum": ["setup", "ringing", "answered", "held", "resumed", "transferred", "ended", "registration", "unregistration"]},
        "call_id": {"type": "string", "description": "The sender's id of the call; required except for (un)registration."},
        "key": {"type": "string", "description": "The event's idempotency key, unique per sender: sent again, it is stored once."},
        "at": {"oneOf": [{"type": "string", "format": "date-time"}, {"type": "integer", "description": "Milliseconds since the epoch."}]},
        "leg": {"type": "string", "description": "The leg the event is about (A, B, a channel); one leg when absent."},
        "caller": {"type": "string"}, "caller_name": {"type": "string"}, "callee": {"type": "string"},
        "direction": {"type": "string", "enum": ["in", "out", "internal"]},
        "media": {"type": "string", "enum": ["audio", "video"]},
        "source_address": {"type": "string"}, "sip_call_id": {"type": "string"}, "ucid": {"type": "string", "description": "A universal call id across systems."},
        "call_type": {"type": "string", "description": "The call's kind (click_to_call, queue ...)."},
        "to": {"type": "string", "description": "transferred: the new target."},
        "sip_status": {"type": "integer"}, "q850_cause": {"type": "integer"},
        "by": {"type": "string", "enum": ["caller", "callee", "system"], "description": "ended: who hung up."},
        "disposition": {"$ref": "#/components/schemas/Disposition"},
        "extension": {"type": "string"}, "contact": {"type": "string"}, "expires_s": {"type": "integer"},
        "data": {"type": "object", "description": "Anything else (CTI or skill data, a click-to-call page's fields): kept with the call."},
        "imported": {"type": "string", "description": "Set by `cdrhub import csv`: the file format; the call is then of source csv."}
    }});
    spec["paths"]["/api/v1/events"] = json!({"post": {
        "summary": "Call events from any system: one JSON event, a JSON array, or NDJSON (one event a line). Answered after the commit; a bad event refuses the whole batch. Needs the supervisor or admin role.",
        "parameters": [system],
        "requestBody": {"required": true, "content": {
            "application/x-ndjson": {"schema": event.clone()},
            "application/json": {"schema": {"oneOf": [event.clone(), {"type": "array", "items": event}]}}
        }},
        "responses": {
            "200": {"description": "Committed.", "content": {"application/json": {"schema": {"type": "object", "properties": {
                "accepted": {"type": "integer", "description": "Events stored now."},
                "duplicates": {"type": "integer", "description": "Events whose key was stored before: nothing changed."}
            }}}}},
            "400": error.clone(), "403": error.clone(), "413": error.clone(),
            "503": {"description": "Not stored: send again (Retry-After)."}
        }
    }});
    spec["paths"]["/api/v1/events/ws"] = json!({"get": {
        "summary": "A WebSocket for long-lived feeds: each text message is one event or an NDJSON batch; each is answered, in order and after its commit, with {ok, accepted, duplicates, keys} or {ok: false, error}. The token goes in the Authorization header of the upgrade request.",
        "parameters": [system],
        "responses": {"101": {"description": "Switching protocols."}, "400": error.clone(), "401": {"description": "No API token in an Authorization: Bearer header (a console session does not open a feed)."}, "403": error}
    }});
}

/// `/api/v1/sip/...` (issue 6; seed 002's register status and statistic).
fn sip_operations(spec: &mut Value) {
    let error = error_response();
    let sender = json!({"name": "sender", "in": "query", "schema": {"type": "string"}, "description": "One capture agent (`capture id@address`); every one by default."});
    spec["paths"]["/api/v1/sip/registrations"] = json!({"get": {
        "summary": "SIP extensions registered now: each binding made by a REGISTER and its 2xx, as mirrored over HEP",
        "parameters": [sender],
        "responses": {"200": {"description": "The bindings in force, by extension.", "content": {"application/json": {"schema": {"type": "array", "items": {"type": "object", "properties": {
            "sender": {"type": "string", "description": "The capture agent."},
            "extension": {"type": "string", "description": "The user of the address-of-record (To)."},
            "contact": {"type": "string"},
            "source": str_prop("The address the REGISTER came from."),
            "user_agent": str_prop(""),
            "login_at": {"type": "string", "format": "date-time", "description": "The REGISTER that made the binding; refreshes keep it."},
            "refreshed_at": {"type": "string", "format": "date-time"},
            "expires_at": {"type": "string", "format": "date-time"}
        }}}}}}, "400": error}
    }});
    spec["paths"]["/api/v1/sip/register-stats"] = json!({"get": {
        "summary": "Seed 002's Register Statistic Report: per hour of a UTC day, the peak of extensions registered at once and the logins",
        "parameters": [
            {"name": "day", "in": "query", "schema": {"type": "string", "format": "date"}, "description": "YYYY-MM-DD (UTC); default today."},
            sender
        ],
        "responses": {"200": {"description": "24 hours.", "content": {"application/json": {"schema": {"type": "object", "properties": {
            "day": {"type": "string", "format": "date"},
            "peak": {"type": "integer", "description": "The day's highest hourly peak."},
            "hours": {"type": "array", "items": {"type": "object", "properties": {
                "hour": {"type": "string", "format": "date-time"},
                "peak": {"type": "integer", "description": "The most bindings in force at once during the hour."},
                "logins": {"type": "integer", "description": "Bindings made during the hour, refreshes not counted."}
            }}}
        }}}}}, "400": error}
    }});
}

/// `/api/v1/gateways...` (issue 5; seed 001's gateway report) and their
/// schemas.
fn gateway_operations(spec: &mut Value) {
    let error = error_response();
    let name = json!({"name": "name", "in": "path", "required": true, "schema": {"type": "string"}, "description": "The gateway: `id_MAC` of a feed gateway (`8200_000C2A020082`), the NAS address of a RADIUS gateway."});
    let period = json!([
        name,
        {"name": "from", "in": "query", "schema": {"type": "string"}, "description": "A date (YYYY-MM-DD, UTC) or an RFC 3339 time; default today."},
        {"name": "to", "in": "query", "schema": {"type": "string"}, "description": "A date (that day is in the period) or an RFC 3339 time (excluded); default the end of today."},
        {"name": "filter", "in": "query", "schema": {"type": "string", "enum": ["all", "call_in", "call_out", "only_pstn", "call_out_failed", "call_in_reject", "other"]}, "description": "The seed's filters: All, Call In, Call Out, Only PSTN, Call Out Failed, Call In Reject, Other (Hook On/Off)."}
    ]);
    let mut paged = period.clone();
    if let Some(p) = paged.as_array_mut() {
        p.push(json!({"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100}}));
        p.push(json!({"name": "offset", "in": "query", "schema": {"type": "integer", "minimum": 0, "default": 0}}));
    }
    spec["paths"]["/api/v1/gateways"] = json!({"get": {
        "summary": "Every gateway: those of the event feed (id, MAC, address, ports, call reference, clock, last login, online or offline) and the RADIUS gateways that have sent accounting",
        "responses": {"200": {"description": "The gateways.", "content": {"application/json": {"schema": {"type": "array", "items": {"$ref": "#/components/schemas/Gateway"}}}}}}
    }});
    spec["paths"]["/api/v1/gateways/log"] = json!({"get": {
        "summary": "The gateway log, newest first: Login, Re-Login, Relogin Kickout, Gateway Disconnect, Bad Packet, Logout",
        "parameters": [
            {"name": "gateway", "in": "query", "schema": {"type": "string"}, "description": "`id_MAC`."},
            {"name": "kind", "in": "query", "schema": {"type": "string", "enum": ["Login", "Re-Login", "Relogin Kickout", "Gateway Disconnect", "Bad Packet", "Logout"]}},
            {"name": "q", "in": "query", "schema": {"type": "string"}, "description": "Text the line or its source address contains."},
            {"name": "from", "in": "query", "schema": {"type": "string"}, "description": "A date or an RFC 3339 time."},
            {"name": "to", "in": "query", "schema": {"type": "string"}, "description": "A date (included) or an RFC 3339 time (excluded)."},
            {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100}},
            {"name": "offset", "in": "query", "schema": {"type": "integer", "minimum": 0, "default": 0}}
        ],
        "responses": {"200": {"description": "A page of the log and the number of lines that match.", "content": {"application/json": {"schema": {"type": "object", "properties": {
            "total": {"type": "integer"},
            "entries": {"type": "array", "items": {"type": "object", "properties": {
                "at": {"type": "string", "format": "date-time"}, "gateway": str_prop("`id_MAC`; null when the line named no gateway."),
                "kind": {"type": "string"}, "address": {"type": "string", "description": "The source address the server saw."},
                "text": {"type": "string", "description": "The line as seed 001's log prints it."}
            }}}
        }}}}}, "400": error}
    }});
    spec["paths"]["/api/v1/gateways/{name}/events"] = json!({"get": {
        "summary": "A feed gateway's newest call events, newest first, in the seed's real-time columns",
        "parameters": [name, {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100}}],
        "responses": {"200": {"description": "The events.", "content": {"application/json": {"schema": {"type": "array", "items": {"type": "object", "properties": {
            "journal_id": {"type": "integer"}, "received_at": {"type": "string", "format": "date-time", "description": "The server's clock."},
            "gateway_clock": {"type": "string", "description": "The gateway's own clock, as sent."}, "gateway": {"type": "string"},
            "call_ref": {"type": "integer"}, "port": int_prop(""), "event": {"type": "string", "description": "HOOK_OFF, DIAL, RING_BACK, TALK, HOOK_ON, CALL_IN, PSTN_CALL_IN, PSTN_HOOK_OFF, PSTN_DIAL, PSTN_CONNECTED, REMOTE_HOOK_ON, PSTN_HOOK_ON, CALL_IN_REJECT, CALL_OUT_FAIL"},
            "dialed": str_prop(""), "caller_id": str_prop(""), "info": str_prop("Codec of TALK, reason of a reject or failure."), "pstn_port": int_prop("")
        }}}}}}, "400": error}
    }});
    let report = json!({"type": "object", "properties": {
        "total": {"type": "integer", "description": "Calls of the gateway that began in the period."},
        "filtered": {"type": "integer", "description": "Those the filter keeps."},
        "rows": {"type": "array", "items": {"type": "object", "properties": {
            "call_id": {"type": "string"}, "call_ref": str_prop("Call reference (feed) or h323 conference id (RADIUS)."),
            "port": int_prop(""), "notation": {"type": "string", "enum": ["Call out", "Call in", "Hook On/Off", "Call in reject", "Call out failed"]},
            "dialed": str_prop("Every DIAL's digits, joined by ', '."), "time_s": int_prop("Talk seconds."),
            "begin": {"type": "string", "format": "date-time"}, "pstn_dial": str_prop(""), "pstn_time_s": int_prop(""),
            "caller_id": str_prop(""), "pstn_caller_id": str_prop(""), "end": time_prop("")
        }}}
    }});
    spec["paths"]["/api/v1/gateways/{name}/report"] = json!({"get": {
        "summary": "A gateway's CDR report over a period with the seed's columns (Port, Date, Notation, Dialed, Time, Begin, PSTN Dial, PSTN Time, Caller ID, PSTN Caller ID, End), oldest first",
        "parameters": paged,
        "responses": {"200": {"description": "The counts and a page of rows.", "content": {"application/json": {"schema": report}}}, "400": error}
    }});
    spec["paths"]["/api/v1/gateways/{name}/report.csv"] = json!({"get": {
        "summary": "The same report as CSV (UTF-8 with a byte-order mark, CRLF), every row the filter keeps",
        "parameters": period,
        "responses": {"200": {"description": "The report.", "content": {"text/csv": {"schema": {"type": "string"}}}}, "400": error}
    }});
    spec["components"]["schemas"]["Gateway"] = json!({"type": "object", "properties": {
        "name": {"type": "string"}, "source": {"type": "string", "enum": ["feed", "radius"]},
        "gateway_id": str_prop(""), "mac": str_prop(""), "address": str_prop("The source address of its last login (feed) or its NAS address."),
        "public_address": str_prop("The address the gateway says it has."),
        "fxs": int_prop(""), "fxo": int_prop(""), "isdn": int_prop(""), "call_ref": int_prop("Its call-reference counter at login."),
        "clock": str_prop("Its clock at login, as sent."), "clock_offset_s": int_prop("Its clock less the server's, in seconds."),
        "last_login": time_prop(""), "last_seen": time_prop(""),
        "state": {"type": "string", "enum": ["online", "offline", "sending"]}
    }});
}

/// A CTI server pair in `/api/v1/sources`.
fn cti_server_schema() -> Value {
    json!({"type": "object", "properties": {
        "name": {"type": "string"}, "primary": {"type": "string"}, "secondary": str_prop("host:port"),
        "protocol_version": {"type": "integer"},
        "connection": {"type": ["object", "null"], "properties": {
            "state": {"type": "string", "enum": ["connecting", "open", "waiting"]},
            "node": str_prop("The node connected to, or last tried."),
            "protocol_version": {"type": "integer"},
            "connected_since": time_prop(""), "last_message_at": time_prop(""),
            "messages": {"type": "integer", "description": "Messages read since cdrhub started."},
            "stored": {"type": "integer", "description": "Call events, agent states and system events committed."},
            "heartbeats_answered": {"type": "integer"}, "reconnects": {"type": "integer"},
            "last_error": str_prop("Why the last session ended.")
        }},
        "stats": {"oneOf": [{"$ref": "#/components/schemas/SenderStats"}, {"type": "null"}]}
    }})
}

/// `POST /api/v1/calls/{id}/end`.
fn force_end_operation() -> Value {
    let error = error_response();
    json!({"post": {
        "summary": "End a call whose end records never came (supervisor or admin; audited)",
        "description": "The call ends now: its parts and legs without an end of their own end with the reason forcedEnd, and the call gets the flag forced_end. The end is kept with the journal, so it survives rebuilding the calls; end records that arrive later take its place.",
        "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}],
        "responses": {
            "200": {"description": "The call as it is now.", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/CallDetail"}}}},
            "403": error.clone(),
            "404": error.clone(),
            "409": {"description": "The call has ended already.", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
        }
    }})
}

/// `GET /api/v1/stats` (apart: one `json!` of everything is too deep).
fn stats_operation() -> Value {
    let error = error_response();
    json!({"get": {
        "summary": "A day's statistics: per hour attempts, answered and peaks (all and video), and per source and sender ASR, ACD and NER",
        "parameters": [
            {"name": "day", "in": "query", "schema": {"type": "string", "format": "date"}, "description": "YYYY-MM-DD (UTC); default today."},
            {"name": "source", "in": "query", "schema": {"type": "string"}},
            {"name": "sender", "in": "query", "schema": {"type": "string"}}
        ],
        "responses": {"200": {"description": "The day.", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/DayStats"}}}}, "400": error}
    }})
}

fn day_stats_schema() -> Value {
    json!({"type": "object", "properties": {
        "day": {"type": "string", "format": "date-time"},
        "hours": {"type": "array", "items": {"type": "object", "properties": {
            "hour": {"type": "string", "format": "date-time"},
            "attempts": {"type": "integer", "description": "Total CA: calls attempted in the hour."},
            "answered": {"type": "integer", "description": "Total Call: of those, answered."},
            "peak_attempts": {"type": "integer", "description": "Peak CA: most attempts in progress at once."},
            "peak_connected": {"type": "integer", "description": "Peak Call: most connected calls at once."},
            "video_attempts": {"type": "integer"}, "video_answered": {"type": "integer"},
            "video_peak_attempts": {"type": "integer"}, "video_peak_connected": {"type": "integer"}
        }}},
        "senders": {"type": "array", "items": {"type": "object", "properties": {
            "source": {"type": "string"}, "sender": {"type": "string"},
            "attempts": {"type": "integer"}, "answered": {"type": "integer"}, "busy": {"type": "integer"},
            "no_answer": {"type": "integer"}, "rejected": {"type": "integer"}, "failed": {"type": "integer"},
            "cancelled": {"type": "integer"}, "talk_s": {"type": "integer"},
            "asr": {"type": ["number", "null"]}, "acd_s": {"type": ["number", "null"]},
            "ner": {"type": ["number", "null"]}, "pdd_s": {"type": ["number", "null"]}
        }}}
    }})
}

fn operations(cms_path: &str) -> Value {
    let mut list_params = filter_params();
    list_params.push(json!({"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100}}));
    list_params.push(json!({"name": "cursor", "in": "query", "schema": {"type": "string"}, "description": "`next_cursor` of the previous page."}));
    let error = error_response();

    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "cdrhub API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Calls and legs correlated from every source cdrhub receives, their timelines, per-sender health and sequence gaps. Send an API token as `Authorization: Bearer TOKEN` (create one with `cdrhub token create NAME --role ROLE`)."
        },
        "paths": {
            "/api/v1/calls": {"get": {
                "summary": "Search calls, newest first",
                "parameters": list_params,
                "responses": {
                    "200": {"description": "A page of calls.", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/CallPage"}}}},
                    "400": error,
                    "503": error
                }
            }},
            "/api/v1/calls.csv": {"get": {
                "summary": "Every call matching the filters as CSV (UTF-8 with BOM, CRLF), streamed",
                "parameters": filter_params(),
                "responses": {"200": {"description": "CSV file.", "content": {"text/csv": {"schema": {"type": "string"}}}}, "400": error, "503": error}
            }},
            "/api/v1/calls/{id}": {"get": {
                "summary": "One call with its legs and event timeline",
                "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}],
                "responses": {
                    "200": {"description": "The call.", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/CallDetail"}}}},
                    "404": error
                }
            }},
            "/api/v1/sources": {"get": {
                "summary": "Per source and sender: last record, rates, totals, rejections, duplicates, gaps",
                "responses": {"200": {"description": "Sources.", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Sources"}}}}}
            }},
            "/api/v1/gaps": {"get": {
                "summary": "Records known to be missing from senders' sequences",
                "parameters": [
                    {"name": "source", "in": "query", "schema": {"type": "string"}},
                    {"name": "sender", "in": "query", "schema": {"type": "string"}},
                    {"name": "open", "in": "query", "schema": {"type": "boolean"}, "description": "Only gaps whose records have not all arrived."},
                    {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 10000, "default": 1000}}
                ],
                "responses": {"200": {"description": "Gaps, newest first.", "content": {"application/json": {"schema": {"type": "object", "properties": {"gaps": {"type": "array", "items": {"$ref": "#/components/schemas/Gap"}}}}}}}, "400": error}
            }},
            "/api/v1/openapi.json": {"get": {"summary": "This document", "responses": {"200": {"description": "OpenAPI 3.1 document."}}}},
            "/healthz": {"get": {"summary": "200 when the store answers", "responses": {"200": {"description": "Healthy."}, "503": {"description": "The store is unavailable."}}}},
            "/metrics": {"get": {"summary": "Prometheus metrics (when metrics.enabled)", "responses": {"200": {"description": "Prometheus text format.", "content": {"text/plain": {}}}}}},
            cms_path: {"post": {
                "summary": "Cisco Meeting Server CDR receiver",
                "description": "Point a Call Bridge's CDR receiver URI here. The body is a `<records>` XML document of one or more records. 200 is sent only after every record is committed; a re-sent record is acknowledged and stored once. `?system_id=NAME` in the receiver URI names the sender.",
                "parameters": [{"name": "system_id", "in": "query", "schema": {"type": "string"}, "description": "Names the sending system."}],
                "requestBody": {"required": true, "content": {"application/xml": {"schema": {"type": "string"}}, "text/xml": {"schema": {"type": "string"}}}},
                "responses": {
                    "200": {"description": "Every record is committed (or was already)."},
                    "400": {"description": "Malformed XML or a record missing a required attribute; nothing of the POST was stored.", "content": {"text/plain": {}}},
                    "413": {"description": "Body larger than sources.cms.max_body_bytes.", "content": {"text/plain": {}}},
                    "503": {"description": "The store cannot commit now; the Call Bridge keeps the records and retries.", "content": {"text/plain": {}}}
                }
            }}
        },
        "components": {"schemas": {
            "Call": call_schema(),
            "Error": {"type": "object", "properties": {"error": {"type": "string"}}, "required": ["error"]},
            "Disposition": {"type": "string", "enum": ["answered", "busy", "no_answer", "rejected", "cancelled", "failed"]},
            "Leg": {"type": "object", "required": ["id", "call_id", "source_leg_id"], "properties": {
                "id": {"type": "string"}, "call_id": {"type": "string"}, "source_leg_id": {"type": "string"},
                "remote_party": str_prop(""), "local_address": str_prop(""), "display_name": str_prop(""),
                "direction": str_prop("incoming or outgoing"), "leg_type": str_prop("sip, acano, ..."),
                "sip_call_id": str_prop(""),
                "started_at": time_prop(""), "connected_at": time_prop(""), "ended_at": time_prop(""),
                "duration_s": int_prop(""), "reason": str_prop("Raw end reason."),
                "remote_teardown": {"type": ["boolean", "null"]},
                "disposition": {"oneOf": [{"$ref": "#/components/schemas/Disposition"}, {"type": "null"}]},
                "media": {"type": "object", "description": "Codecs, resolutions, packet statistics, media usage."},
                "alarms": {"type": "array", "items": {"type": "object", "properties": {"type": {"type": "string"}, "duration_percentage": {"type": ["number", "null"]}}}},
                "details": {"type": "object"}
            }},
            "CallEvent": {"type": "object", "properties": {
                "time": {"type": "string", "format": "date-time"},
                "received_at": {"type": "string", "format": "date-time"},
                "type": {"type": "string"},
                "source_leg_id": str_prop(""),
                "record": {"type": "object", "description": "The decoded record."}
            }},
            "CallPage": {"type": "object", "properties": {
                "calls": {"type": "array", "items": {"$ref": "#/components/schemas/Call"}},
                "next_cursor": {"type": ["string", "null"]}
            }},
            "CallDetail": call_detail_schema(),
            "SenderStats": {"type": "object", "properties": {
                "source": {"type": "string"}, "sender": {"type": "string"},
                "first_seen": time_prop(""), "last_record_at": time_prop(""),
                "records_last_minute": {"type": "integer"}, "records_total": {"type": "integer"},
                "duplicates": {"type": "integer"}, "rejected_documents": {"type": "integer"},
                "last_rejection": str_prop(""), "gaps": {"type": "integer"}, "missing_records": {"type": "integer"}
            }},
            "Sources": {"type": "object", "properties": {"sources": {"type": "array", "items": {"type": "object", "properties": {
                "source": {"type": "string"}, "enabled": {"type": "boolean"}, "endpoint": {"type": "string", "description": "cms: the receiver path."},
                "senders": {"type": "array", "items": {"$ref": "#/components/schemas/SenderStats"}},
                "servers": {"type": "array", "description": "cti: each configured server pair with its connection.", "items": {"$ref": "#/components/schemas/CtiServer"}},
                "clients": {"type": "object", "description": "radius: per declared client (address or subnet): requests, answered, bad_authenticator (dropped unanswered: wrong secret), malformed, last_request_at.", "additionalProperties": {"type": "object"}},
                "unknown_clients": {"type": "object", "description": "radius: requests dropped from addresses no client covers, by address.", "additionalProperties": {"type": "integer"}},
                "counters": {"type": "object", "description": "feed: lines read, taken (answered OK), bad_packets, store_errors (answered ERR store unavailable), online (gateways with a session), connections (TCP, open now), not_allowed (TCP connections and datagrams from outside sources.feed.allow), refused_connections (TCP, over max_connections). sip: HEP packets read, bad_header, bad_auth_key, unknown_agent (capture id not allowed), not_allowed (packets and TCP connections from outside sources.hep.allow), refused_connections (TCP, over max_connections), idle_closed (TCP, no whole frame for idle_timeout_s), store_errors.", "additionalProperties": {"type": "integer"}},
                "kernel_drops": {"type": ["integer", "null"], "description": "radius, feed, sip: datagrams the kernel dropped for the UDP socket since it opened (its receive buffer was full), from /proc/net/udp; null when unknown."},
                "agents": {"type": "object", "description": "sip: per capture agent (`capture id@address`): packets, last_packet_at, bad_sip (packets whose SIP does not parse: kept, no call).", "additionalProperties": {"type": "object"}}
            }}},
            "bus": {"type": ["object", "null"], "description": "With [bus]: nats, stream, roles, and counters: published and publish_failures (collector), stored, redelivered (delivered more than once, stored once), unreadable, commit_failures (worker).", "properties": {
                "nats": {"type": "string"}, "stream": {"type": "string"},
                "roles": {"type": "array", "items": {"type": "string", "enum": ["collector", "worker"]}},
                "counters": {"type": "object", "additionalProperties": {"type": "integer"}}
            }}}},
            "Gap": {"type": "object", "properties": {
                "id": {"type": "integer"}, "source": {"type": "string"}, "sender": {"type": "string"},
                "receiver": {"type": "string"}, "session": {"type": "string"},
                "kind": {"type": "string", "enum": ["sequence", "reported", "session_start"]},
                "first_missing": int_prop(""), "last_missing": int_prop(""),
                "missing": {"type": "integer"}, "filled": {"type": "integer"}, "open": {"type": "boolean"},
                "detected_at": {"type": "string", "format": "date-time"}, "at_index": {"type": "integer"}
            }}
        }}
    })
}
