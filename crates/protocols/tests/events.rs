//! The call-event decoder (issue 7) never panics, and what it accepts goes
//! through the journal's copy unchanged.

use cdrhub_protocols::events::{decode, decode_one, encode_one};
use proptest::prelude::*;

/// Bodies that look like events: JSON objects with the vocabulary's keys
/// and values of every kind, one or several a line, some cut short.
fn event_like() -> impl Strategy<Value = Vec<u8>> {
    let key = prop_oneof![
        Just("type"),
        Just("call_id"),
        Just("key"),
        Just("at"),
        Just("leg"),
        Just("caller"),
        Just("direction"),
        Just("media"),
        Just("to"),
        Just("sip_status"),
        Just("q850_cause"),
        Just("by"),
        Just("data"),
        Just("extension"),
        Just("expires_s"),
        Just("disposition"),
        Just("x"),
    ];
    let value = prop_oneof![
        Just("\"setup\"".to_owned()),
        Just("\"ended\"".to_owned()),
        Just("\"registration\"".to_owned()),
        Just("\"in\"".to_owned()),
        Just("\"2026-12-01T10:00:00Z\"".to_owned()),
        Just("1796119204000".to_owned()),
        Just("-1".to_owned()),
        Just("null".to_owned()),
        Just("{}".to_owned()),
        Just("[1,2]".to_owned()),
        Just("\"\"".to_owned()),
        "\"[a-z0-9\\-]{0,12}\"".prop_map(|s| s),
        any::<i64>().prop_map(|n| n.to_string()),
    ];
    let field = (key, value).prop_map(|(k, v)| format!("\"{k}\":{v}"));
    let object =
        proptest::collection::vec(field, 0..10).prop_map(|f| format!("{{{}}}", f.join(",")));
    (
        proptest::collection::vec(object, 1..4),
        any::<u8>(),
        0usize..300,
    )
        .prop_map(|(objects, sep, cut)| {
            let joined = if sep % 3 == 0 {
                format!("[{}]", objects.join(","))
            } else {
                objects.join("\n")
            };
            let mut bytes = joined.into_bytes();
            if sep % 5 == 0 {
                bytes.truncate(cut.min(bytes.len()));
            }
            bytes
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn any_bytes_decode_or_name_their_fault(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        if let Err(e) = decode(&bytes) {
            prop_assert!(e.line >= 1);
            prop_assert!(!e.message.is_empty());
        }
    }

    #[test]
    fn accepted_events_survive_the_journal(body in event_like()) {
        match decode(&body) {
            Ok(events) => {
                prop_assert!(!events.is_empty());
                for e in events {
                    prop_assert!(e.validate().is_ok());
                    prop_assert_eq!(decode_one(&encode_one(&e)).unwrap(), e);
                }
            }
            Err(e) => prop_assert!(!e.message.is_empty()),
        }
    }
}
