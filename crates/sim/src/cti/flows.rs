//! The call-event message flows of seed 003 (Unified CCX CTI guide,
//! "Call-Event Message Flows as Seen in the Log Files") as timed steps:
//! "Queued and Answered Call", "Transferred Call", "Conferenced Call" and
//! "Outbound Option Call" with the agent's Accept, Skip or Reject.
//!
//! Each flow is the server's messages in the order the seed's tables list
//! them, with the fields the tables show (and cdrhub's correlator reads):
//! device types by role, the device ids of each role, the connected parties
//! of a transfer or conference, the outbound `BA*` named variables, the CSQ
//! in CSQID (SkillGroupNumber) and the application in ApplicationID
//! (ServiceNumber). Where the seed's tables disagree with each other, the
//! flows follow one reading and say which, so that every flow is
//! consistent in itself:
//!
//! * Call ids come from one [`CallIds`] counter. An inbound call takes two
//!   ids, the call and the agent's leg (the seed's SecondaryCallID 16777508
//!   of call 16777507); a consult takes the next one, which gives the seed's
//!   pairs 16777533/16777535 and 16777539/16777541. The conference table's
//!   PrimaryCallID 16777507 is the original call's id here.
//! * Step 4 of the queued flow ("Agent is reserved") prints AgentState 3;
//!   the flows send Reserved (8) there, as the transfer and outbound tables
//!   do for a reserved agent.
//! * The outbound tables use 16800095..16800101 for two calls each; here an
//!   accepted contact is a preview call and a reservation call (the preview's
//!   id first, as 16800096 comes before 16800097 in the seed), a skipped or
//!   rejected one only the reservation call.

use cdrhub_protocols::cti::{
    AgentStateEvent, CallEvent, CallEventKind, CtiBody, CtiMessage, DeviceRole, FloatValue,
    Floating, message_type, tags,
};

/// One message of a flow, sent `after_ms` milliseconds after the step
/// before it (the first step: after the flow starts).
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    pub after_ms: u64,
    pub message: CtiMessage,
}

pub use cdrhub_protocols::cti::{NONE_U16, NONE_U32, agent_state, call_type, device_type};

/// EventReasonCode AGT_CALL_ENDED (reference B.6): the transferred-to agent
/// goes Not Ready with it when the caller hangs up (seed, transfer step 4).
pub const REASON_CALL_ENDED: u16 = 32755;

/// LocalConnectionState (reference B.6).
mod lcs {
    pub const NULL: u16 = 0;
    pub const INITIATE: u16 = 1;
    pub const ALERTING: u16 = 2;
    pub const CONNECT: u16 = 3;
    pub const HOLD: u16 = 4;
    pub const QUEUED: u16 = 5;
}

/// EventCause values of the seed's tables (reference B.6).
mod cause {
    pub const KEY_CONFERENCE: u16 = 17;
    pub const NEW_CALL: u16 = 22;
    pub const REDIRECTED: u16 = 28;
    pub const TRANSFER: u16 = 32;
    /// The extended cause of every CALL_CLEARED after a hang-up in the
    /// inbound tables. The outbound table names CECX_DROP_HANDLED_OTHER
    /// without its number; 1014 is used there too.
    pub const CLEARED: u16 = 1014;
}

/// The outbound dialer's `user.layout` variable in the seed.
const LAYOUT: &str = "OODefault";
/// `BATimeZone` in the seed.
const TIME_ZONE: &str = "-00360";

/// Hands out CTI call ids in increasing order.
#[derive(Debug, Clone)]
pub struct CallIds {
    next: u32,
}

impl CallIds {
    pub fn starting_at(first: u32) -> CallIds {
        CallIds { next: first }
    }

    /// The next id; after `u32::MAX` it wraps to 1 (0 means "no call").
    pub fn next_id(&mut self) -> u32 {
        let id = self.next;
        self.next = self.next.checked_add(1).unwrap_or(1);
        id
    }

    /// The id the next call will get.
    pub fn peek(&self) -> u32 {
        self.next
    }
}

/// An agent: the extension of their phone and their login id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Agent {
    pub extension: String,
    pub id: String,
}

impl Agent {
    /// The agent on `extension` with the seed's naming: `agt2006` on 2006.
    pub fn numbered(extension: u32) -> Agent {
        Agent {
            extension: extension.to_string(),
            id: format!("agt{extension}"),
        }
    }
}

/// How long the parts of a call last, in milliseconds. The defaults are a
/// plausible call; a simulator scales them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timing {
    /// Between the messages of one moment (the seed lists several per step).
    pub step_ms: u64,
    /// From the CTI port accepting the call to the call being queued (the
    /// script's prompts).
    pub ivr_ms: u64,
    /// In queue until an agent is reserved.
    pub queue_ms: u64,
    /// A phone ringing until it is answered; for an outbound contact, the
    /// reservation call until the agent's answer, and the customer's phone.
    pub ring_ms: u64,
    /// The agent talking with the caller (in a transfer or conference: before
    /// the consult, and again afterwards).
    pub talk_ms: u64,
    /// The two agents talking on the consult call.
    pub consult_ms: u64,
    /// After-call work. 0: the agent is Ready as soon as the call ends, as
    /// the seed's agent with "Automatic Available"; otherwise Work (6) for
    /// this long, then Ready.
    pub wrapup_ms: u64,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            step_ms: 20,
            ivr_ms: 3_000,
            queue_ms: 5_000,
            ring_ms: 4_000,
            talk_ms: 60_000,
            consult_ms: 15_000,
            wrapup_ms: 0,
        }
    }
}

/// An inbound call: a caller dials a trigger, a CTI port answers, the call
/// queues to a CSQ and an agent takes it.
#[derive(Debug, Clone, PartialEq)]
pub struct InboundCall {
    /// The caller's number (ANI and CallingDeviceID).
    pub ani: String,
    /// The trigger (route point) dialed: DNIS and DialedNumber.
    pub trigger: String,
    /// The CTI port of the application that answers.
    pub cti_port: String,
    pub agent: Agent,
    /// UCCX CSQID (SkillGroupNumber).
    pub csq_id: u32,
    /// UCCX ApplicationID (ServiceNumber).
    pub application_id: u32,
    pub timing: Timing,
}

/// The agent's answer to an outbound contact (`BAResponse`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PreviewResponse {
    Accept,
    Skip,
    Reject,
}

impl PreviewResponse {
    /// The `BAResponse` value.
    pub fn as_str(self) -> &'static str {
        match self {
            PreviewResponse::Accept => "Accept",
            PreviewResponse::Skip => "Skip",
            PreviewResponse::Reject => "Reject",
        }
    }
}

/// An outbound preview contact offered to an agent.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboundContact {
    pub agent: Agent,
    /// `BACampaign`.
    pub campaign: String,
    /// `BACampaignID` of the preview call.
    pub campaign_id: u32,
    /// `BADialedListID`: the contact's record in the dialing list.
    pub dialing_list_id: u32,
    /// `BAAccountNumber`.
    pub account_number: String,
    /// `BACustomerNumber`: the number the preview call dials.
    pub customer_number: String,
    /// `BABuddyName`.
    pub customer_name: String,
    pub response: PreviewResponse,
    pub timing: Timing,
}

/// Seed, "Queued and Answered Call": the caller dials the trigger, the CTI
/// port answers, the call queues, the agent is reserved and answers, the
/// caller hangs up. Takes two call ids.
pub fn queued_and_answered(ids: &mut CallIds, call: &InboundCall) -> Vec<Step> {
    let id = ids.next_id();
    let agent_leg = ids.next_id();
    let mut s = Script::new(&call.timing);
    answered_by_agent(&mut s, call, id, agent_leg);
    let t = &call.timing;
    // 8: the caller hangs up.
    s.after(t.talk_ms);
    s.send(released(id, &call.ani));
    s.send(back_to_ready(&call.agent, t));
    s.send(released(id, &call.agent.extension));
    s.send(cleared(id, &call.ani));
    s.send(end_call(id));
    ready_after_wrapup(&mut s, &call.agent, t);
    s.steps
}

/// Seed, "Transferred Call": the call of [`queued_and_answered`] until the
/// agent talks; then the agent holds it, consults `to` on a new call and
/// transfers; `to` talks with the caller until the caller hangs up. Takes
/// three call ids.
pub fn transferred(ids: &mut CallIds, call: &InboundCall, to: &Agent) -> Vec<Step> {
    let original = ids.next_id();
    let agent_leg = ids.next_id();
    let consult = ids.next_id();
    let t = &call.timing;
    let from = &call.agent;
    let mut s = Script::new(t);
    answered_by_agent(&mut s, call, original, agent_leg);
    s.after(t.talk_ms);
    consult_call(&mut s, call, original, consult, to);
    // 3: the transfer completes; the consult merges into the original.
    s.after(t.consult_ms);
    s.send(
        event(CallEventKind::CallDataUpdate, original)
            .call_type(call_type::TRANSFER_IN)
            .s(tags::CONNECTION_DEVID, &call.ani)
            .s(tags::NEW_CONNECTION_DEVID, &call.ani)
            .message(),
    );
    s.send(
        event(CallEventKind::Transferred, original)
            .csq(call.csq_id)
            .secondary(consult)
            .dev(DeviceRole::Transferring, device_type::AGENT_DEVICE)
            .dev(DeviceRole::Transferred, device_type::AGENT_DEVICE)
            .state(lcs::CONNECT)
            .cause(cause::TRANSFER)
            .s(tags::PRIMARY_DEVID, &from.extension)
            .s(tags::SECONDARY_DEVID, &to.extension)
            .s(tags::TRANSFERRING_DEVID, &from.extension)
            .s(tags::TRANSFERRED_DEVID, &to.extension)
            .party(original, &call.ani)
            .party(original, &to.extension)
            .message(),
    );
    s.send(
        event(CallEventKind::Established, original)
            .app(NONE_U32)
            .csq(call.csq_id)
            .dev(DeviceRole::Answering, device_type::AGENT_DEVICE)
            .dev(DeviceRole::Calling, device_type::AGENT_DEVICE)
            .dev(DeviceRole::Called, device_type::AGENT_DEVICE)
            .dev(DeviceRole::LastRedirect, device_type::AGENT_DEVICE)
            .state(lcs::CONNECT)
            .cause(cause::NEW_CALL)
            .s(tags::CONNECTION_DEVID, &call.ani)
            .s(tags::ANSWERING_DEVID, &to.extension)
            .s(tags::CALLING_DEVID, &call.ani)
            .s(tags::CALLED_DEVID, &to.extension)
            .s(tags::LAST_REDIRECT_DEVID, &from.extension)
            .message(),
    );
    s.send(released(consult, &from.extension));
    s.send(agent_state_event(from, agent_state::AVAILABLE, 0, NONE_U16));
    s.send(released(consult, &to.extension));
    s.send(cleared(consult, &from.extension));
    s.send(end_call(consult));
    // 4: the caller hangs up; the agent who took the transfer goes Not
    // Ready (AGT_CALL_ENDED), as the seed shows.
    s.after(t.talk_ms);
    s.send(released(original, &call.ani));
    s.send(agent_state_event(
        to,
        agent_state::NOT_READY,
        REASON_CALL_ENDED,
        NONE_U16,
    ));
    s.send(released(original, &to.extension));
    s.send(cleared(original, &call.ani));
    s.send(end_call(original));
    s.steps
}

/// Seed, "Conferenced Call": as [`transferred`] until the consult is
/// answered; then the agent conferences, and the caller, the agent and
/// `with` talk until the caller hangs up. Takes three call ids.
///
/// The seed ends without a state for the added agent; here they go back to
/// Ready when they leave, as the first agent does.
pub fn conferenced(ids: &mut CallIds, call: &InboundCall, with: &Agent) -> Vec<Step> {
    let original = ids.next_id();
    let agent_leg = ids.next_id();
    let consult = ids.next_id();
    let t = &call.timing;
    let from = &call.agent;
    let mut s = Script::new(t);
    answered_by_agent(&mut s, call, original, agent_leg);
    s.after(t.talk_ms);
    consult_call(&mut s, call, original, consult, with);
    // The conference: the consult merges into the original call, whose id
    // names the conference.
    s.after(t.consult_ms);
    s.send(
        event(CallEventKind::CallDataUpdate, original)
            .call_type(call_type::CONFERENCE)
            .s(tags::CONNECTION_DEVID, &call.ani)
            .s(tags::NEW_CONNECTION_DEVID, &call.ani)
            .message(),
    );
    s.send(
        event(CallEventKind::Conferenced, original)
            .csq(call.csq_id)
            .secondary(consult)
            .dev(DeviceRole::Controller, device_type::AGENT_DEVICE)
            .dev(DeviceRole::AddedParty, device_type::AGENT_DEVICE)
            .state(lcs::CONNECT)
            .cause(cause::KEY_CONFERENCE)
            .s(tags::PRIMARY_DEVID, &from.extension)
            .s(tags::SECONDARY_DEVID, &with.extension)
            .s(tags::CONTROLLER_DEVID, &from.extension)
            .s(tags::ADDED_PARTY_DEVID, &with.extension)
            .party(original, &call.ani)
            .party(original, &from.extension)
            .party(original, &with.extension)
            .message(),
    );
    s.send(released(consult, &from.extension));
    s.send(
        event(CallEventKind::Established, original)
            .app(NONE_U32)
            .csq(call.csq_id)
            .dev(DeviceRole::Answering, NONE_U16)
            .dev(DeviceRole::Calling, device_type::AGENT_DEVICE)
            .dev(DeviceRole::Called, NONE_U16)
            .dev(DeviceRole::LastRedirect, device_type::AGENT_DEVICE)
            .state(lcs::CONNECT)
            .cause(cause::NEW_CALL)
            .s(tags::CONNECTION_DEVID, &call.ani)
            .s(tags::ANSWERING_DEVID, "Unknown")
            .s(tags::CALLING_DEVID, &call.ani)
            .s(tags::CALLED_DEVID, "Unknown")
            .s(tags::LAST_REDIRECT_DEVID, &from.extension)
            .message(),
    );
    s.send(released(consult, &with.extension));
    s.send(cleared(consult, &from.extension));
    s.send(end_call(consult));
    // 2, 3: the caller hangs up, then the agents leave.
    s.after(t.talk_ms);
    s.send(released(original, &call.ani));
    s.send(back_to_ready(from, t));
    s.send(released(original, &from.extension));
    s.send(released(original, &with.extension));
    s.send(back_to_ready(with, t));
    s.send(cleared(original, &call.ani));
    s.send(end_call(original));
    ready_after_wrapup(&mut s, from, t);
    ready_after_wrapup(&mut s, with, t);
    s.steps
}

/// Seed, "Outbound Option Call": the agent is reserved for a contact and a
/// reservation call rings their phone; they answer with `BAResponse`.
/// Accept: the reservation call ends and a preview call dials the customer
/// (two call ids: the preview's, then the reservation's). Skip: the agent
/// is Ready again; Reject: the reservation call just ends (one call id).
///
/// The accepted flow ends with the agent in Work Not Ready, as the seed's
/// table does, and with an END_CALL_EVENT of the preview call, which the
/// table leaves out but every other call of the seed has.
pub fn outbound_preview(ids: &mut CallIds, contact: &OutboundContact) -> Vec<Step> {
    let preview = match contact.response {
        PreviewResponse::Accept => Some(ids.next_id()),
        PreviewResponse::Skip | PreviewResponse::Reject => None,
    };
    let reservation = ids.next_id();
    let t = &contact.timing;
    let agent = &contact.agent;
    let ext = agent.extension.as_str();
    let mut s = Script::new(t);
    // 1: the agent is reserved; 2: the reservation call rings their phone.
    s.send(agent_state_event(agent, agent_state::RESERVED, 0, NONE_U16));
    s.send(
        event(CallEventKind::BeginCall, reservation)
            .call_type(call_type::RESERVATION)
            .s(tags::CONNECTION_DEVID, ext)
            .var("BACampaign", &contact.campaign)
            .var("BACampaignID", "")
            .var("BAStatus", "DO")
            .var("BAResponse", "")
            .var("user.layout", LAYOUT)
            .var("BAAccountNumber", &contact.account_number)
            .var("BADialedListID", &contact.dialing_list_id.to_string())
            .var("BABuddyName", &contact.customer_name)
            .message(),
    );
    s.send(
        event(CallEventKind::Delivered, reservation)
            .app(NONE_U32)
            .csq(NONE_U32)
            .dev(DeviceRole::Alerting, device_type::AGENT_DEVICE)
            .dev(DeviceRole::Calling, NONE_U16)
            .dev(DeviceRole::Called, device_type::AGENT_DEVICE)
            .dev(DeviceRole::LastRedirect, NONE_U16)
            .state(lcs::ALERTING)
            .cause(cause::NEW_CALL)
            .s(tags::CONNECTION_DEVID, ext)
            .s(tags::ALERTING_DEVID, ext)
            .s(tags::CALLED_DEVID, ext)
            .message(),
    );
    // 3, 4: the agent answers the contact; the data update carries the
    // answer (for an accepted contact, on the preview call's id, as the
    // seed's 16800096).
    s.after(t.ring_ms);
    let answered_on = preview.unwrap_or(reservation);
    s.send(
        event(CallEventKind::CallDataUpdate, answered_on)
            .call_type(call_type::RESERVATION)
            .s(tags::CONNECTION_DEVID, ext)
            .s(tags::NEW_CONNECTION_DEVID, ext)
            .var("BAResponse", contact.response.as_str())
            .s(tags::CUSTOMER_PHONE_NUMBER, "")
            .s(tags::CUSTOMER_ACCOUNT_NUMBER, "")
            .message(),
    );
    let Some(preview) = preview else {
        if contact.response == PreviewResponse::Skip {
            s.send(agent_state_event(
                agent,
                agent_state::AVAILABLE,
                0,
                NONE_U16,
            ));
        }
        s.send(released(reservation, ext));
        s.send(cleared_with(reservation, ext, NONE_U16));
        s.send(end_call(reservation));
        return s.steps;
    };
    // 5: the preview call begins, under its own id.
    let dialer_variables = |e: Ev| {
        e.var("BACampaign", &contact.campaign)
            .var("BACampaignID", &contact.campaign_id.to_string())
            .var("BATimeZone", TIME_ZONE)
            .var("BAResponse", PreviewResponse::Accept.as_str())
            .var("BAStatus", "CO")
            .var("BACustomerNumber", &contact.customer_number)
            .var("user.layout", LAYOUT)
            .var("BAAccountNumber", &contact.account_number)
            .var("BADialedListID", &contact.dialing_list_id.to_string())
            .var("BABuddyName", &contact.customer_name)
    };
    s.send(
        dialer_variables(
            event(CallEventKind::BeginCall, preview)
                .call_type(call_type::PREVIEW)
                .s(tags::CONNECTION_DEVID, ext)
                .s(tags::DIALED_NUMBER, &contact.customer_number),
        )
        .message(),
    );
    // 6: the reservation call ends.
    s.send(released(reservation, ext));
    s.send(cleared_with(reservation, ext, NONE_U16));
    s.send(end_call(reservation));
    // 7, 8: the preview call starts; the agent's phone dials the customer.
    let update = |e: Ev| {
        e.call_type(call_type::PREVIEW)
            .s(tags::CONNECTION_DEVID, ext)
            .s(tags::NEW_CONNECTION_DEVID, ext)
    };
    s.send(
        dialer_variables(update(event(CallEventKind::CallDataUpdate, preview)))
            .s(tags::CUSTOMER_PHONE_NUMBER, "")
            .s(tags::CUSTOMER_ACCOUNT_NUMBER, "")
            .message(),
    );
    for (name, value) in [
        ("BAStatus", "CO"),
        ("BATimeZone", TIME_ZONE),
        ("BACustomerNumber", contact.customer_number.as_str()),
    ] {
        s.send(
            update(event(CallEventKind::CallDataUpdate, preview))
                .var(name, value)
                .s(tags::CUSTOMER_PHONE_NUMBER, "")
                .message(),
        );
    }
    s.send(
        event(CallEventKind::ServiceInitiated, preview)
            .app(NONE_U32)
            .csq(NONE_U32)
            .dev(DeviceRole::Calling, device_type::AGENT_DEVICE)
            .state(lcs::INITIATE)
            .cause(NONE_U16)
            .s(tags::CONNECTION_DEVID, ext)
            .s(tags::CALLING_DEVID, ext)
            .message(),
    );
    s.send(agent_state_event(
        agent,
        agent_state::TALKING,
        0,
        agent_state::WORK_NOT_READY,
    ));
    s.send(
        event(CallEventKind::Originated, preview)
            .app(NONE_U32)
            .csq(NONE_U32)
            .dev(DeviceRole::Calling, device_type::AGENT_DEVICE)
            .dev(DeviceRole::Called, device_type::DEVICE_IDENTIFIER)
            .state(lcs::INITIATE)
            .cause(NONE_U16)
            .s(tags::CONNECTION_DEVID, ext)
            .s(tags::CALLING_DEVID, ext)
            .s(tags::CALLED_DEVID, &contact.customer_number)
            .message(),
    );
    s.after(t.ring_ms);
    s.send(
        event(CallEventKind::Established, preview)
            .app(NONE_U32)
            .csq(NONE_U32)
            .dev(DeviceRole::Answering, NONE_U16)
            .dev(DeviceRole::Calling, device_type::AGENT_DEVICE)
            .dev(DeviceRole::Called, NONE_U16)
            .dev(DeviceRole::LastRedirect, NONE_U16)
            .state(lcs::CONNECT)
            .cause(cause::NEW_CALL)
            .s(tags::CONNECTION_DEVID, ext)
            .s(tags::ANSWERING_DEVID, "Unknown")
            .s(tags::CALLING_DEVID, ext)
            .s(tags::CALLED_DEVID, "Unknown")
            .message(),
    );
    // 9: the outbound call ends.
    s.after(t.talk_ms);
    s.send(released(preview, ext));
    s.send(agent_state_event(
        agent,
        agent_state::WORK_NOT_READY,
        0,
        NONE_U16,
    ));
    s.send(cleared(preview, ext));
    s.send(end_call(preview));
    s.steps
}

/// Steps 1 to 7 of the queued flow: from the caller dialing to the agent
/// talking and the CTI port leaving the call.
fn answered_by_agent(s: &mut Script, call: &InboundCall, id: u32, agent_leg: u32) {
    let t = &call.timing;
    let ani = call.ani.as_str();
    let port = call.cti_port.as_str();
    let agent = &call.agent;
    let ext = agent.extension.as_str();
    // 1: the caller dials the trigger; the CTI port answers. CallType 9
    // (OUT) as in the seed, whose caller is an extension.
    s.send(
        event(CallEventKind::BeginCall, id)
            .call_type(call_type::OUT)
            .s(tags::CONNECTION_DEVID, ani)
            .s(tags::ANI, ani)
            .message(),
    );
    s.send(
        event(CallEventKind::ServiceInitiated, id)
            .app(NONE_U32)
            .csq(NONE_U32)
            .dev(DeviceRole::Calling, device_type::AGENT_DEVICE)
            .state(lcs::INITIATE)
            .cause(NONE_U16)
            .s(tags::CONNECTION_DEVID, ani)
            .s(tags::CALLING_DEVID, ani)
            .message(),
    );
    s.send(
        event(CallEventKind::Originated, id)
            .app(NONE_U32)
            .csq(NONE_U32)
            .dev(DeviceRole::Calling, device_type::AGENT_DEVICE)
            .dev(DeviceRole::Called, device_type::ROUTE_POINT)
            .state(lcs::INITIATE)
            .cause(NONE_U16)
            .s(tags::CONNECTION_DEVID, ani)
            .s(tags::CALLING_DEVID, ani)
            .s(tags::CALLED_DEVID, &call.trigger)
            .message(),
    );
    s.send(
        event(CallEventKind::Delivered, id)
            .app(call.application_id)
            .csq(NONE_U32)
            .dev(DeviceRole::Alerting, device_type::CTI_PORT)
            .dev(DeviceRole::Calling, device_type::AGENT_DEVICE)
            .dev(DeviceRole::Called, device_type::CTI_PORT)
            .dev(DeviceRole::LastRedirect, NONE_U16)
            .state(lcs::ALERTING)
            .cause(cause::NEW_CALL)
            .s(tags::CONNECTION_DEVID, port)
            .s(tags::ALERTING_DEVID, port)
            .s(tags::CALLING_DEVID, ani)
            .s(tags::CALLED_DEVID, port)
            .s(tags::LAST_REDIRECT_DEVID, "")
            .num(tags::SECONDARY_CONNECTION_CALL_ID, 0)
            .s(tags::ANI, ani)
            .s(tags::DNIS, &call.trigger)
            .s(tags::DIALED_NUMBER, &call.trigger)
            .message(),
    );
    s.send(
        event(CallEventKind::Established, id)
            .app(call.application_id)
            .csq(NONE_U32)
            .dev(DeviceRole::Answering, device_type::CTI_PORT)
            .dev(DeviceRole::Calling, device_type::AGENT_DEVICE)
            .dev(DeviceRole::Called, device_type::CTI_PORT)
            .dev(DeviceRole::LastRedirect, NONE_U16)
            .state(lcs::CONNECT)
            .cause(cause::NEW_CALL)
            .s(tags::CONNECTION_DEVID, port)
            .s(tags::ANSWERING_DEVID, port)
            .s(tags::CALLING_DEVID, ani)
            .s(tags::CALLED_DEVID, port)
            .s(tags::LAST_REDIRECT_DEVID, "")
            .message(),
    );
    // 2: the call queues to the CSQ; 3: the agent becomes Ready.
    s.after(t.ivr_ms);
    s.send(
        event(CallEventKind::Queued, id)
            .app(call.application_id)
            .dev(DeviceRole::Queue, device_type::QUEUE)
            .dev(DeviceRole::Calling, device_type::AGENT_DEVICE)
            .dev(DeviceRole::Called, device_type::ROUTE_POINT)
            .dev(DeviceRole::LastRedirect, NONE_U16)
            .state(lcs::QUEUED)
            .cause(NONE_U16)
            .s(tags::CONNECTION_DEVID, port)
            .s(tags::QUEUE_DEVID, &call.csq_id.to_string())
            .s(tags::CALLING_DEVID, ani)
            .s(tags::CALLED_DEVID, &call.trigger)
            .s(tags::LAST_REDIRECT_DEVID, "")
            .num(tags::SKILL_GROUP_NUMBER, call.csq_id)
            .message(),
    );
    s.send(agent_state_event(
        agent,
        agent_state::AVAILABLE,
        0,
        NONE_U16,
    ));
    // 4: the CSQ reserves the agent; 5: their phone rings.
    s.after(t.queue_ms);
    s.send(agent_state_event(agent, agent_state::RESERVED, 0, NONE_U16));
    s.send(
        event(CallEventKind::Delivered, id)
            .app(call.application_id)
            .csq(call.csq_id)
            .dev(DeviceRole::Alerting, device_type::AGENT_DEVICE)
            .dev(DeviceRole::Calling, device_type::AGENT_DEVICE)
            .dev(DeviceRole::Called, device_type::AGENT_DEVICE)
            .dev(DeviceRole::LastRedirect, NONE_U16)
            .state(lcs::ALERTING)
            .cause(cause::NEW_CALL)
            .s(tags::CONNECTION_DEVID, ext)
            .s(tags::ALERTING_DEVID, ext)
            .s(tags::CALLING_DEVID, ani)
            .s(tags::CALLED_DEVID, ext)
            .s(tags::LAST_REDIRECT_DEVID, "")
            .num(tags::SECONDARY_CONNECTION_CALL_ID, agent_leg)
            .message(),
    );
    // 6: the agent answers; the call leaves the queue.
    s.after(t.ring_ms);
    s.send(agent_state_event(
        agent,
        agent_state::TALKING,
        0,
        agent_state::AVAILABLE,
    ));
    s.send(
        event(CallEventKind::CallDataUpdate, id)
            .call_type(call_type::AGENT_INSIDE)
            .s(tags::CONNECTION_DEVID, ani)
            .s(tags::NEW_CONNECTION_DEVID, ani)
            .message(),
    );
    s.send(
        event(CallEventKind::Established, id)
            .app(NONE_U32)
            .csq(call.csq_id)
            .dev(DeviceRole::Answering, device_type::AGENT_DEVICE)
            .dev(DeviceRole::Calling, device_type::AGENT_DEVICE)
            .dev(DeviceRole::Called, device_type::AGENT_DEVICE)
            .dev(DeviceRole::LastRedirect, device_type::CTI_PORT)
            .state(lcs::CONNECT)
            .cause(cause::NEW_CALL)
            .s(tags::CONNECTION_DEVID, ext)
            .s(tags::ANSWERING_DEVID, ext)
            .s(tags::CALLING_DEVID, ani)
            .s(tags::CALLED_DEVID, ext)
            .s(tags::LAST_REDIRECT_DEVID, port)
            .message(),
    );
    // The seed's CallDequeuedEvent: ConnectionDeviceType none, QueueDeviceType 0.
    let mut dequeued = event(CallEventKind::Dequeued, id)
        .app(NONE_U32)
        .dev(DeviceRole::Queue, device_type::DEVICE_IDENTIFIER)
        .state(lcs::CONNECT)
        .cause(NONE_U16)
        .s(tags::CONNECTION_DEVID, "")
        .s(tags::QUEUE_DEVID, "");
    dequeued.0.connection_device_id_type = NONE_U16;
    s.send(dequeued.message());
    // 7: the CTI port leaves the call.
    s.send(
        event(CallEventKind::ConnectionCleared, id)
            .dev(DeviceRole::Releasing, device_type::CTI_PORT)
            .state(NONE_U16)
            .cause(cause::REDIRECTED)
            .s(tags::CONNECTION_DEVID, port)
            .s(tags::RELEASING_DEVID, port)
            .message(),
    );
}

/// Transfer and conference step 1 and 2: the agent holds the call and
/// consults `to` on a new call, which `to` answers.
fn consult_call(s: &mut Script, call: &InboundCall, original: u32, consult: u32, to: &Agent) {
    let t = &call.timing;
    let from = call.agent.extension.as_str();
    let to_ext = to.extension.as_str();
    s.send(
        event(CallEventKind::Held, original)
            .dev(DeviceRole::Holding, device_type::AGENT_DEVICE)
            .state(lcs::HOLD)
            .cause(NONE_U16)
            .s(tags::CONNECTION_DEVID, from)
            .s(tags::HOLDING_DEVID, from)
            .message(),
    );
    s.send(
        event(CallEventKind::BeginCall, consult)
            .call_type(call_type::CONSULT)
            .s(tags::CONNECTION_DEVID, from)
            .s(tags::ANI, from)
            .message(),
    );
    s.send(
        event(CallEventKind::ServiceInitiated, consult)
            .app(NONE_U32)
            .csq(call.csq_id)
            .dev(DeviceRole::Calling, device_type::AGENT_DEVICE)
            .state(lcs::INITIATE)
            .cause(NONE_U16)
            .s(tags::CONNECTION_DEVID, from)
            .s(tags::CALLING_DEVID, from)
            .message(),
    );
    s.send(agent_state_event(to, agent_state::RESERVED, 0, NONE_U16));
    s.send(
        event(CallEventKind::Originated, consult)
            .app(NONE_U32)
            .csq(call.csq_id)
            .dev(DeviceRole::Calling, device_type::AGENT_DEVICE)
            .dev(DeviceRole::Called, device_type::AGENT_DEVICE)
            .state(lcs::INITIATE)
            .cause(NONE_U16)
            .s(tags::CONNECTION_DEVID, from)
            .s(tags::CALLING_DEVID, from)
            .s(tags::CALLED_DEVID, to_ext)
            .message(),
    );
    s.send(
        event(CallEventKind::Delivered, consult)
            .app(NONE_U32)
            .csq(call.csq_id)
            .dev(DeviceRole::Alerting, device_type::AGENT_DEVICE)
            .dev(DeviceRole::Calling, device_type::AGENT_DEVICE)
            .dev(DeviceRole::Called, device_type::AGENT_DEVICE)
            .dev(DeviceRole::LastRedirect, NONE_U16)
            .state(lcs::ALERTING)
            .cause(cause::NEW_CALL)
            .s(tags::CONNECTION_DEVID, to_ext)
            .s(tags::ALERTING_DEVID, to_ext)
            .s(tags::CALLING_DEVID, from)
            .s(tags::CALLED_DEVID, to_ext)
            .s(tags::LAST_REDIRECT_DEVID, "")
            .num(tags::SECONDARY_CONNECTION_CALL_ID, 0)
            .message(),
    );
    // 2: `to` answers. The seed lists two Talking events for them, the
    // second with NextAgentState Not Ready.
    s.after(t.ring_ms);
    s.send(agent_state_event(
        to,
        agent_state::TALKING,
        0,
        agent_state::AVAILABLE,
    ));
    s.send(agent_state_event(
        to,
        agent_state::TALKING,
        0,
        agent_state::NOT_READY,
    ));
    s.send(
        event(CallEventKind::Established, consult)
            .app(NONE_U32)
            .csq(call.csq_id)
            .dev(DeviceRole::Answering, device_type::AGENT_DEVICE)
            .dev(DeviceRole::Calling, device_type::AGENT_DEVICE)
            .dev(DeviceRole::Called, device_type::AGENT_DEVICE)
            .dev(DeviceRole::LastRedirect, NONE_U16)
            .state(lcs::CONNECT)
            .cause(cause::NEW_CALL)
            .s(tags::CONNECTION_DEVID, to_ext)
            .s(tags::ANSWERING_DEVID, to_ext)
            .s(tags::CALLING_DEVID, from)
            .s(tags::CALLED_DEVID, to_ext)
            .s(tags::LAST_REDIRECT_DEVID, "")
            .message(),
    );
}

/// The agent's state when their call ends: Ready, or Work (then Ready, see
/// [`ready_after_wrapup`]) when the timing has after-call work.
fn back_to_ready(agent: &Agent, t: &Timing) -> CtiMessage {
    if t.wrapup_ms == 0 {
        agent_state_event(agent, agent_state::AVAILABLE, 0, NONE_U16)
    } else {
        agent_state_event(agent, agent_state::WORK_READY, 0, agent_state::AVAILABLE)
    }
}

fn ready_after_wrapup(s: &mut Script, agent: &Agent, t: &Timing) {
    if t.wrapup_ms > 0 {
        s.after(t.wrapup_ms);
        s.send(agent_state_event(
            agent,
            agent_state::AVAILABLE,
            0,
            NONE_U16,
        ));
    }
}

/// CALL_CONNECTION_CLEARED_EVENT: `device` (an agent phone or the caller)
/// leaves call `id`.
fn released(id: u32, device: &str) -> CtiMessage {
    event(CallEventKind::ConnectionCleared, id)
        .dev(DeviceRole::Releasing, device_type::AGENT_DEVICE)
        .state(NONE_U16)
        .cause(NONE_U16)
        .s(tags::CONNECTION_DEVID, device)
        .s(tags::RELEASING_DEVID, device)
        .message()
}

/// CALL_CLEARED_EVENT after a hang-up.
fn cleared(id: u32, device: &str) -> CtiMessage {
    cleared_with(id, device, cause::CLEARED)
}

fn cleared_with(id: u32, device: &str, event_cause: u16) -> CtiMessage {
    event(CallEventKind::Cleared, id)
        .state(lcs::NULL)
        .cause(event_cause)
        .s(tags::CONNECTION_DEVID, device)
        .message()
}

/// END_CALL_EVENT; the seed's ConnectionDeviceID is empty.
fn end_call(id: u32) -> CtiMessage {
    event(CallEventKind::EndCall, id)
        .s(tags::CONNECTION_DEVID, "")
        .message()
}

/// AGENT_STATE_EVENT as the seed lists it: CSQState equal to AgentState,
/// StateDuration 0, CSQID -1, NumCSQs 0, and AgentExtension, AgentID and
/// NextAgentState floating. The agent id goes under both AGENT_ID_LONG
/// (194, UCCX's AgentID) and AGENT_ID (5, ICM's), so clients of either
/// protocol find it. The fixed fields UCCX reserves take the values the
/// UCCX page gives them (reference B.4; the codec's `decode_agent_state`).
pub fn agent_state_event(agent: &Agent, state: u16, reason: u16, next: u16) -> CtiMessage {
    let mut floating = Floating::default();
    floating.push_str(tags::AGENT_EXTENSION, agent.extension.as_str());
    floating.push_str(tags::AGENT_ID_LONG, agent.id.as_str());
    floating.push_str(tags::AGENT_ID, agent.id.as_str());
    floating
        .fields
        .push((tags::NEXT_AGENT_STATE, FloatValue::U16(next)));
    CtiMessage {
        message_type: message_type::AGENT_STATE_EVENT,
        body: CtiBody::AgentState(Box::new(AgentStateEvent {
            monitor_id: 0,
            peripheral_id: 1,
            session_id: 0,
            peripheral_type: 21,
            skill_group_state: state,
            state_duration: 0,
            skill_group_number: NONE_U32,
            skill_group_id: NONE_U32,
            skill_group_priority: 0,
            agent_state: state,
            event_reason_code: reason,
            mrd_id: Some(1),
            num_tasks: Some(0),
            agent_mode: Some(0),
            max_task_limit: Some(0),
            icm_agent_id: Some(0),
            agent_availability_status: Some(0),
            num_flt_skill_groups: Some(0),
            // Sent from version 19 on only (the codec); UCCX has none.
            department_id: Some(0),
            floating,
        })),
    }
}

/// A flow's steps: each message `step_ms` after the one before, unless
/// [`Script::after`] says otherwise.
struct Script {
    steps: Vec<Step>,
    next_after: u64,
    step_ms: u64,
}

impl Script {
    fn new(t: &Timing) -> Script {
        Script {
            steps: Vec::with_capacity(48),
            next_after: 0,
            step_ms: t.step_ms,
        }
    }

    /// The next message comes `ms` after the one before.
    fn after(&mut self, ms: u64) {
        self.next_after = ms;
    }

    fn send(&mut self, message: CtiMessage) {
        self.steps.push(Step {
            after_ms: self.next_after,
            message,
        });
        self.next_after = self.step_ms;
    }
}

/// A call event under construction.
struct Ev(CallEvent);

/// A call event of `kind` on call `id`: the UCCX reserved values (MonitorID
/// 0, PeripheralID 1, PeripheralType 21), ConnectionDeviceType static (0),
/// and every other field absent until set.
fn event(kind: CallEventKind, id: u32) -> Ev {
    Ev(CallEvent {
        connection_device_id_type: 0,
        ..CallEvent::new(kind, id)
    })
}

impl Ev {
    /// UCCX ApplicationID.
    fn app(mut self, id: u32) -> Ev {
        self.0.service_number = Some(id);
        self
    }

    /// UCCX CSQID.
    fn csq(mut self, id: u32) -> Ev {
        self.0.skill_group_number = Some(id);
        self
    }

    fn call_type(mut self, t: u16) -> Ev {
        self.0.call_type = Some(t);
        self
    }

    fn dev(mut self, role: DeviceRole, device_type: u16) -> Ev {
        self.0.device_types.push((role, device_type));
        self
    }

    /// LocalConnectionState.
    fn state(mut self, state: u16) -> Ev {
        self.0.local_connection_state = Some(state);
        self
    }

    fn cause(mut self, cause: u16) -> Ev {
        self.0.event_cause = Some(cause);
        self
    }

    /// The consult call a transfer or conference merges.
    fn secondary(mut self, id: u32) -> Ev {
        self.0.secondary_device_id_type = Some(0);
        self.0.secondary_call_id = Some(id);
        self
    }

    fn s(mut self, tag: u16, value: &str) -> Ev {
        self.0.floating.push_str(tag, value);
        self
    }

    fn num(mut self, tag: u16, value: u32) -> Ev {
        self.0.floating.fields.push((tag, FloatValue::U32(value)));
        self
    }

    /// ConnectedPartyCallID, ConnectedPartyDeviceType (static) and
    /// ConnectedPartyDeviceID of a transfer or conference.
    fn party(mut self, call_id: u32, device: &str) -> Ev {
        let fields = &mut self.0.floating.fields;
        fields.push((tags::PARTY_CALLID, FloatValue::U32(call_id)));
        fields.push((tags::PARTY_DEVID_TYPE, FloatValue::U16(0)));
        fields.push((tags::PARTY_DEVID, FloatValue::Str(device.to_owned())));
        self
    }

    fn var(mut self, name: &str, value: &str) -> Ev {
        self.0.floating.fields.push((
            tags::NAMED_VARIABLE,
            FloatValue::NamedVar {
                name: name.to_owned(),
                value: value.to_owned(),
            },
        ));
        self
    }

    /// The message, with the counts of the fixed part (named variables,
    /// parties, CSQs) taken from the floating part and the reserved fields
    /// UCCX fills.
    fn message(self) -> CtiMessage {
        let mut e = self.0;
        let count = |tag: u16| -> u16 {
            let n = e.floating.fields.iter().filter(|(t, _)| *t == tag).count();
            u16::try_from(n).unwrap_or(u16::MAX)
        };
        let named_variables = count(tags::NAMED_VARIABLE);
        let parties = count(tags::PARTY_CALLID);
        let csqs = count(tags::SKILL_GROUP_NUMBER);
        match e.kind {
            CallEventKind::BeginCall | CallEventKind::CallDataUpdate => {
                e.num_cti_clients = Some(0);
                e.num_named_variables = Some(named_variables);
                e.num_named_arrays = Some(0);
                e.called_party_disposition = Some(0);
                if e.kind == CallEventKind::CallDataUpdate {
                    e.new_connection_device_id_type = Some(e.connection_device_id_type);
                    e.new_connection_call_id = Some(e.connection_call_id);
                    e.campaign_id = Some(0);
                    e.query_rule_id = Some(0);
                }
            }
            CallEventKind::Delivered => {
                e.num_named_variables = Some(named_variables);
                e.num_named_arrays = Some(0);
            }
            CallEventKind::Transferred | CallEventKind::Conferenced => {
                e.num_parties = Some(parties);
            }
            // UCCX call_queued_event and call_dequeued_event: the reserved
            // UINT after ApplicationID is 0xFFFFFFFF, NumQueued 0.
            CallEventKind::Queued | CallEventKind::Dequeued => {
                e.service_id = Some(NONE_U32);
                e.num_queued = Some(0);
                e.num_skill_groups = Some(csqs);
            }
            _ => {}
        }
        CtiMessage {
            message_type: e.kind.message_type(),
            body: CtiBody::Call(Box::new(e)),
        }
    }
}
