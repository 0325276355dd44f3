//! Sequence gaps: CMS numbers each receiver's records from 1 within a session
//! and says how many it discarded with `numPreceedingRecordsMissing`
//! (reference/cms-cdr.md A.1, A.3).

mod common;

use common::{CMS, CmsDoc, TestServer, guid, leg_start};
use serde_json::Value;

/// A document of callLegStart records, one per index, each of its own leg.
fn legs(session: &str, indexes: impl IntoIterator<Item = u64>) -> CmsDoc {
    indexes.into_iter().fold(CmsDoc::new(session), |doc, i| {
        doc.record(
            "callLegStart",
            &format!("2026-01-01T12:00:{i:02}Z"),
            i,
            &leg_start(
                &guid(),
                &guid(),
                &format!("leg{i}@example.com"),
                "gaps@cms.example.com",
                "",
                "incoming",
            ),
        )
    })
}

fn only(gaps: &[Value]) -> &Value {
    assert_eq!(gaps.len(), 1, "{gaps:#?}");
    &gaps[0]
}

#[tokio::test]
async fn a_jump_in_record_index_is_a_sequence_gap_until_the_records_arrive() {
    let mut server = TestServer::start().await;
    let path = format!("{CMS}?system_id=gappy");
    let session = guid();
    server.ingest(&path, legs(&session, 1..=3).build()).await;
    assert!(server.gaps("").await.is_empty(), "1, 2, 3 leave no gap");
    server.ingest(&path, legs(&session, [7]).build()).await;

    let gaps = server.gaps("").await;
    let gap = only(&gaps);
    assert_eq!(gap["kind"], "sequence", "{gap:#}");
    assert_eq!(gap["source"], "cms", "{gap:#}");
    assert_eq!(gap["sender"], "gappy", "{gap:#}");
    assert_eq!(gap["receiver"], path.as_str(), "{gap:#}");
    assert_eq!(gap["session"], session.as_str(), "{gap:#}");
    assert_eq!(gap["first_missing"], 4, "{gap:#}");
    assert_eq!(gap["last_missing"], 6, "{gap:#}");
    assert_eq!(gap["missing"], 3, "{gap:#}");
    assert_eq!(gap["filled"], 0, "{gap:#}");
    assert_eq!(gap["open"], true, "{gap:#}");
    assert_eq!(gap["at_index"], 7, "{gap:#}");
    assert_eq!(server.gaps("open=true").await, gaps);
    assert_eq!(server.gaps("sender=gappy").await, gaps);
    assert!(server.gaps("sender=someone-else").await.is_empty());
    let sender = server.sender("gappy").await.unwrap();
    assert_eq!(sender["gaps"], 1, "{sender:#}");
    assert_eq!(sender["missing_records"], 3, "{sender:#}");

    // The missing records arrive late, out of order, in two POSTs.
    server.ingest(&path, legs(&session, [5, 4]).build()).await;
    let gap = only(&server.gaps("").await).clone();
    assert_eq!(gap["filled"], 2, "{gap:#}");
    assert_eq!(gap["open"], true, "{gap:#}");
    server.ingest(&path, legs(&session, [6]).build()).await;

    let gaps = server.gaps("").await;
    let gap = only(&gaps);
    assert_eq!(gap["kind"], "sequence", "{gap:#}");
    assert_eq!(gap["missing"], 3, "{gap:#}");
    assert_eq!(gap["filled"], 3, "{gap:#}");
    assert_eq!(gap["open"], false, "{gap:#}");
    assert!(server.gaps("open=true").await.is_empty());
    assert_eq!(server.gaps("open=false").await, gaps);
    let sender = server.sender("gappy").await.unwrap();
    assert_eq!(sender["records_total"], 7, "{sender:#}");
    assert_eq!(sender["duplicates"], 0, "{sender:#}");
    let metrics = server.get("/metrics").await.text();
    assert!(
        metrics.lines().any(|l| l == "cdrhub_open_gaps 0"),
        "{metrics}"
    );
}

#[tokio::test]
async fn records_cms_reports_discarded_are_a_reported_gap() {
    let mut server = TestServer::start().await;
    let path = format!("{CMS}?system_id=lossy");
    let session = guid();
    let doc = legs(&session, 1..=2).record_with(
        "callLegStart",
        "2026-01-01T12:00:03Z",
        3,
        " numPreceedingRecordsMissing=\"5\"",
        &leg_start(
            &guid(),
            &guid(),
            "after-loss@example.com",
            "gaps@cms.example.com",
            "",
            "incoming",
        ),
    );
    server.ingest(&path, doc.build()).await;

    let gaps = server.gaps("").await;
    let gap = only(&gaps);
    assert_eq!(gap["kind"], "reported", "{gap:#}");
    assert_eq!(gap["missing"], 5, "{gap:#}");
    assert_eq!(gap["at_index"], 3, "{gap:#}");
    assert_eq!(gap["session"], session.as_str(), "{gap:#}");
    // Discarded records never arrive: the gap stays open.
    assert_eq!(gap["open"], true, "{gap:#}");
    assert_eq!(server.gaps("open=true").await, gaps);

    let metrics = server.get("/metrics").await.text();
    for want in [
        "cdrhub_missing_records_total{source=\"cms\",sender=\"lossy\"} 5",
        "cdrhub_sequence_gaps_total{source=\"cms\",sender=\"lossy\"} 1",
        "cdrhub_records_total{source=\"cms\",sender=\"lossy\"} 3",
        "cdrhub_open_gaps 1",
    ] {
        assert!(
            metrics.lines().any(|l| l == want),
            "no {want:?} in\n{metrics}"
        );
    }
    let sender = server.sender("lossy").await.unwrap();
    assert_eq!(sender["missing_records"], 5, "{sender:#}");
}

#[tokio::test]
async fn a_session_that_does_not_start_at_record_1_has_a_session_start_gap() {
    let mut server = TestServer::start().await;
    let path = format!("{CMS}?system_id=late");
    let session = guid();
    server.ingest(&path, legs(&session, 4..=5).build()).await;
    let gaps = server.gaps("").await;
    let gap = only(&gaps);
    assert_eq!(gap["kind"], "session_start", "{gap:#}");
    assert_eq!(gap["first_missing"], 1, "{gap:#}");
    assert_eq!(gap["last_missing"], 3, "{gap:#}");
    assert_eq!(gap["missing"], 3, "{gap:#}");
    assert_eq!(gap["open"], true, "{gap:#}");
}
