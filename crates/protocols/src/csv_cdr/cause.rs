//! From the causes CSV files carry (Q.850 numbers, SIP statuses, FreeSWITCH
//! hangup cause names) to a [`Disposition`].

use cdrhub_model::Disposition;

/// How a call that was never answered ended, after its Q.850 cause
/// (ITU-T Q.850 table 1). 16 "normal call clearing" before an answer is
/// the caller hanging up first.
pub(crate) fn unanswered_q850(cause: u16) -> Disposition {
    match cause {
        16 => Disposition::Cancelled,
        17 => Disposition::Busy,
        18 | 19 => Disposition::NoAnswer,
        21 | 52 | 54 => Disposition::Rejected,
        _ => Disposition::Failed,
    }
}

/// How a call ended, after the final SIP status of its INVITE (RFC 3261
/// §21); `None` for a provisional status.
pub(crate) fn sip_status(status: u16) -> Option<Disposition> {
    Some(match status {
        0..=199 => return None,
        200..=299 => Disposition::Answered,
        486 | 600 => Disposition::Busy,
        408 | 480 => Disposition::NoAnswer,
        487 => Disposition::Cancelled,
        403 | 603 => Disposition::Rejected,
        _ => Disposition::Failed,
    })
}

/// A FreeSWITCH hangup cause name (`switch_call_cause_t`, switch_types.h,
/// and the names of `CAUSE_CHART` in switch_channel.c): its Q.850 number,
/// when it has one, and how an unanswered call with it ended.
pub(crate) fn freeswitch(name: &str) -> (Option<u16>, Disposition) {
    if let Some(&(_, q850)) = FREESWITCH_Q850.iter().find(|(n, _)| *n == name) {
        return (Some(q850), unanswered_q850(q850));
    }
    // FreeSWITCH's own causes, numbered 487 and above, are no Q.850 causes.
    let disposition = match name {
        "ORIGINATOR_CANCEL" | "LOSE_RACE" | "PICKED_OFF" => Disposition::Cancelled,
        "NO_PICKUP" | "PROGRESS_TIMEOUT" | "ALLOTTED_TIMEOUT" => Disposition::NoAnswer,
        _ => Disposition::Failed,
    };
    (None, disposition)
}

/// FreeSWITCH cause names that are Q.850 causes, with their numbers.
const FREESWITCH_Q850: &[(&str, u16)] = &[
    ("UNALLOCATED_NUMBER", 1),
    ("UNALLOCATED", 1),
    ("NO_ROUTE_TRANSIT_NET", 2),
    ("NO_ROUTE_DESTINATION", 3),
    ("CHANNEL_UNACCEPTABLE", 6),
    ("CALL_AWARDED_DELIVERED", 7),
    ("NORMAL_CLEARING", 16),
    ("USER_BUSY", 17),
    ("NO_USER_RESPONSE", 18),
    ("NO_ANSWER", 19),
    ("SUBSCRIBER_ABSENT", 20),
    ("CALL_REJECTED", 21),
    ("NUMBER_CHANGED", 22),
    ("REDIRECTION_TO_NEW_DESTINATION", 23),
    ("EXCHANGE_ROUTING_ERROR", 25),
    ("DESTINATION_OUT_OF_ORDER", 27),
    ("INVALID_NUMBER_FORMAT", 28),
    ("FACILITY_REJECTED", 29),
    ("RESPONSE_TO_STATUS_ENQUIRY", 30),
    ("NORMAL_UNSPECIFIED", 31),
    ("NORMAL_CIRCUIT_CONGESTION", 34),
    ("NETWORK_OUT_OF_ORDER", 38),
    ("NORMAL_TEMPORARY_FAILURE", 41),
    ("SWITCH_CONGESTION", 42),
    ("ACCESS_INFO_DISCARDED", 43),
    ("REQUESTED_CHAN_UNAVAIL", 44),
    ("PRE_EMPTED", 45),
    ("FACILITY_NOT_SUBSCRIBED", 50),
    ("OUTGOING_CALL_BARRED", 52),
    ("INCOMING_CALL_BARRED", 54),
    ("BEARERCAPABILITY_NOTAUTH", 57),
    ("BEARERCAPABILITY_NOTAVAIL", 58),
    ("SERVICE_UNAVAILABLE", 63),
    ("BEARERCAPABILITY_NOTIMPL", 65),
    ("CHAN_NOT_IMPLEMENTED", 66),
    ("FACILITY_NOT_IMPLEMENTED", 69),
    ("SERVICE_NOT_IMPLEMENTED", 79),
    ("INVALID_CALL_REFERENCE", 81),
    ("INCOMPATIBLE_DESTINATION", 88),
    ("INVALID_MSG_UNSPECIFIED", 95),
    ("MANDATORY_IE_MISSING", 96),
    ("MESSAGE_TYPE_NONEXIST", 97),
    ("WRONG_MESSAGE", 98),
    ("IE_NONEXIST", 99),
    ("INVALID_IE_CONTENTS", 100),
    ("WRONG_CALL_STATE", 101),
    ("RECOVERY_ON_TIMER_EXPIRE", 102),
    ("MANDATORY_IE_LENGTH_ERROR", 103),
    ("PROTOCOL_ERROR", 111),
    ("INTERWORKING", 127),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn freeswitch_causes() {
        assert_eq!(
            freeswitch("NORMAL_CLEARING"),
            (Some(16), Disposition::Cancelled)
        );
        assert_eq!(freeswitch("USER_BUSY"), (Some(17), Disposition::Busy));
        assert_eq!(freeswitch("NO_ANSWER"), (Some(19), Disposition::NoAnswer));
        assert_eq!(
            freeswitch("NO_USER_RESPONSE"),
            (Some(18), Disposition::NoAnswer)
        );
        assert_eq!(
            freeswitch("CALL_REJECTED"),
            (Some(21), Disposition::Rejected)
        );
        assert_eq!(
            freeswitch("UNALLOCATED_NUMBER"),
            (Some(1), Disposition::Failed)
        );
        assert_eq!(
            freeswitch("ORIGINATOR_CANCEL"),
            (None, Disposition::Cancelled)
        );
        assert_eq!(freeswitch("MEDIA_TIMEOUT"), (None, Disposition::Failed));
        assert_eq!(freeswitch("nonsense"), (None, Disposition::Failed));
    }

    #[test]
    fn sip_statuses() {
        assert_eq!(sip_status(180), None);
        assert_eq!(sip_status(200), Some(Disposition::Answered));
        assert_eq!(sip_status(486), Some(Disposition::Busy));
        assert_eq!(sip_status(480), Some(Disposition::NoAnswer));
        assert_eq!(sip_status(487), Some(Disposition::Cancelled));
        assert_eq!(sip_status(603), Some(Disposition::Rejected));
        assert_eq!(sip_status(503), Some(Disposition::Failed));
    }
}
