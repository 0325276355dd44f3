//! Documents the receiver must refuse whole, and a store that cannot commit.
//! A Call Bridge deletes records once it gets 200 (reference/cms-cdr.md A.1),
//! so a refusal must store nothing of the POST, and a store that cannot
//! commit must answer 503 so that the records are sent again.

mod common;

use std::time::Duration;

use common::{
    CMS, CmsDoc, Options, TestServer, call_end, call_start, guid, leg_connected, leg_end, leg_start,
};
use hyper::StatusCode;

/// A valid document of one answered call: 5 records.
fn valid_call(session: &str, name: &str) -> CmsDoc {
    let (call, leg) = (guid(), guid());
    let t0 = "2026-01-01T09:00:00Z";
    let t1 = "2026-01-01T09:01:00Z";
    CmsDoc::new(session)
        .record("callStart", t0, 1, &call_start(&call, name))
        .record(
            "callLegStart",
            t0,
            2,
            &leg_start(
                &leg,
                &call,
                "bob@example.com",
                "lab@cms.example.com",
                "Bob",
                "incoming",
            ),
        )
        .record("callLegUpdate", t0, 3, &leg_connected(&leg, &call))
        .record("callLegEnd", t1, 4, &leg_end(&leg, "remoteTeardown", 60))
        .record("callEnd", t1, 5, &call_end(&call, 1, 60))
}

/// Asserts a refusal: its status, and a text/plain body of one sentence on
/// one line that contains `names` (case-insensitive).
fn assert_refused(case: &str, r: &common::Reply, status: StatusCode, names: &str) {
    let text = r.text();
    assert_eq!(r.status, status, "{case}: {text}");
    assert!(
        r.content_type().starts_with("text/plain"),
        "{case}: content-type {:?}",
        r.content_type()
    );
    let sentence = text.strip_suffix('\n').unwrap_or(&text);
    assert!(
        !sentence.trim().is_empty() && !sentence.contains('\n'),
        "{case}: not one sentence: {text:?}"
    );
    assert!(
        sentence.to_lowercase().contains(&names.to_lowercase()),
        "{case}: {text:?} does not name {names:?}"
    );
}

#[tokio::test]
async fn malformed_documents_get_400_and_nothing_of_them_is_stored() {
    let mut server = TestServer::start().await;
    let path = format!("{CMS}?system_id=lab");

    let session = guid();
    let orphan_leg = guid();
    let truncated = {
        let full = valid_call(&guid(), "truncated").build();
        let cut = full.find("<callLeg id").unwrap() + 30;
        full[..cut].to_owned()
    };
    let missing_leg_id = CmsDoc::new(&session)
        .record(
            "callLegStart",
            "2026-01-01T08:00:00Z",
            1,
            &format!(
                "<callLeg id=\"{orphan_leg}\">\n<remoteParty>first-record-is-valid@example.com</remoteParty>\n<direction>incoming</direction>\n</callLeg>"
            ),
        )
        .record(
            "callLegEnd",
            "2026-01-01T08:00:05Z",
            2,
            "<callLeg>\n<reason>remoteTeardown</reason>\n</callLeg>",
        )
        .build();
    let no_session =
        valid_call(&guid(), "no-session")
            .build()
            .replacen(" session=\"", " sessionx=\"", 1);
    let no_record_index =
        valid_call(&guid(), "no-index")
            .build()
            .replacen(" recordIndex=\"3\"", "", 1);
    let wrong_root = valid_call(&guid(), "wrong-root")
        .build()
        .replace("<records ", "<cdrs ")
        .replace("</records>", "</cdrs>");
    let invalid_utf8 = {
        let text = valid_call(&guid(), "Caf@@").build();
        let at = text.find("@@").unwrap();
        let mut bytes = text.into_bytes();
        bytes.splice(at..at + 2, [0xE9]); // Latin-1 é: not UTF-8
        bytes
    };

    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "malformed xml",
            b"<records session=\"s\"><record".to_vec(),
            "xml",
        ),
        ("truncated mid-record", truncated.into_bytes(), "xml"),
        (
            "second record without callLeg id",
            missing_leg_id.into_bytes(),
            "id attribute",
        ),
        (
            "records without session",
            no_session.into_bytes(),
            "session",
        ),
        (
            "record without recordIndex",
            no_record_index.into_bytes(),
            "recordIndex",
        ),
        ("wrong root element", wrong_root.into_bytes(), "<cdrs>"),
        ("empty body", Vec::new(), "empty"),
        ("invalid UTF-8", invalid_utf8, "utf-8"),
    ];
    let rejected = cases.len();
    for (case, body, names) in cases {
        let r = server.post(&path, body).await;
        assert_refused(case, &r, StatusCode::BAD_REQUEST, names);
        assert!(server.calls().await.is_empty(), "{case}: a call was stored");
        assert_eq!(
            server.records_total().await,
            0,
            "{case}: records were stored"
        );
    }
    assert!(
        server.gaps("").await.is_empty(),
        "a refused document left a gap behind"
    );

    // The server still serves, on the same connection or a new one.
    let good = valid_call(&guid(), "after-the-bad-ones");
    server.ingest(&path, good.build()).await;
    let calls = server.calls().await;
    assert_eq!(calls.len(), 1, "{calls:#?}");
    assert_eq!(calls[0]["destination"], "after-the-bad-ones");
    assert!(
        server.records_total().await == good.len() as u64,
        "the valid first record of a refused document was stored"
    );

    // The writer counts rejections in order with the records, so after the
    // good POST's 200 every rejection before it is counted.
    let lab = server.sender("lab").await.expect("sender lab");
    assert_eq!(lab["records_total"], good.len(), "{lab:#}");
    assert_eq!(lab["rejected_documents"], rejected, "{lab:#}");
    let last = lab["last_rejection"].as_str().unwrap_or_default();
    assert!(
        last.to_lowercase().contains("utf-8"),
        "last_rejection names the last refusal: {lab:#}"
    );
    let metrics = server.get("/metrics").await.text();
    assert!(
        metrics.contains(&format!(
            "cdrhub_rejected_documents_total{{source=\"cms\",sender=\"lab\"}} {rejected}"
        )),
        "{metrics}"
    );
    assert!(
        metrics.contains(&format!(
            "cdrhub_ingest_responses_total{{source=\"cms\",status=\"400\"}} {rejected}"
        )),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_refusal_without_system_id_is_counted_for_the_peer_address() {
    let mut server = TestServer::start().await;
    let r = server.post(CMS, "<records session=\"s\"><record").await;
    assert_refused("malformed xml", &r, StatusCode::BAD_REQUEST, "xml");
    server
        .ingest(CMS, valid_call(&guid(), "flush").build())
        .await;
    let peer = server.sender("127.0.0.1").await.expect("sender 127.0.0.1");
    assert_eq!(peer["rejected_documents"], 1, "{peer:#}");
    assert!(peer["last_rejection"].is_string(), "{peer:#}");
}

#[tokio::test]
async fn a_body_over_max_body_bytes_gets_413_and_one_at_the_limit_is_stored() {
    const LIMIT: usize = 4096;
    let mut server = TestServer::start_with(Options {
        max_body_bytes: Some(LIMIT),
        ..Options::default()
    })
    .await;
    let path = format!("{CMS}?system_id=small");

    // A valid document padded with whitespace between its records to `size` bytes.
    let padded = |name: &str, size: usize| {
        let doc = valid_call(&guid(), name).build();
        let end = doc.rfind("</records>").unwrap();
        assert!(
            doc.len() <= size,
            "the document alone is {} bytes",
            doc.len()
        );
        let mut body = doc[..end].to_owned();
        body.push_str(&" ".repeat(size - doc.len()));
        body.push_str(&doc[end..]);
        assert_eq!(body.len(), size);
        body
    };

    let r = server.post(&path, padded("ten-kb", 10 * 1024)).await;
    assert_refused("10 KiB body", &r, StatusCode::PAYLOAD_TOO_LARGE, "4096");
    let r = server.post(&path, padded("one-over", LIMIT + 1)).await;
    assert_refused("limit + 1", &r, StatusCode::PAYLOAD_TOO_LARGE, "4096");
    assert!(server.calls().await.is_empty());
    assert_eq!(server.records_total().await, 0);

    server.ingest(&path, padded("at-the-limit", LIMIT)).await;
    server.ingest(&path, padded("just-under", LIMIT - 1)).await;
    let mut names: Vec<String> = server
        .calls()
        .await
        .iter()
        .map(|c| c["destination"].as_str().unwrap().to_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["at-the-limit", "just-under"]);
    let small = server.sender("small").await.expect("sender small");
    assert_eq!(small["records_total"], 10, "{small:#}");
    assert_eq!(small["rejected_documents"], 2, "{small:#}");
}

#[tokio::test]
async fn a_locked_store_gets_503_with_retry_after_then_the_retry_is_stored_once() {
    let mut server = TestServer::start_with(Options {
        sqlite: true,
        busy_timeout: Some(Duration::from_millis(200)),
        ..Options::default()
    })
    .await;
    let path = format!("{CMS}?system_id=locked");
    let doc = valid_call(&guid(), "retried").build();

    // Another process holds the write lock of the database.
    let other = rusqlite::Connection::open(server.db_path()).expect("open cdrhub.db");
    other
        .execute_batch("BEGIN EXCLUSIVE")
        .expect("lock cdrhub.db");

    let r = server.post(&path, doc.clone()).await;
    assert_refused("store locked", &r, StatusCode::SERVICE_UNAVAILABLE, "retry");
    let retry_after = r.header("retry-after").expect("a Retry-After header");
    assert!(
        retry_after.parse::<u64>().is_ok_and(|s| s > 0),
        "Retry-After {retry_after:?} is a number of seconds"
    );
    assert!(
        server.calls().await.is_empty(),
        "nothing stored while locked"
    );

    other.execute_batch("COMMIT").expect("unlock cdrhub.db");
    drop(other);

    server.ingest(&path, doc).await;
    let calls = server.calls().await;
    assert_eq!(calls.len(), 1, "{calls:#?}");
    assert_eq!(calls[0]["destination"], "retried");
    assert_eq!(calls[0]["legs"], 1);
    let detail = server.call(calls[0]["id"].as_str().unwrap()).await;
    assert_eq!(detail["events"].as_array().unwrap().len(), 5, "{detail:#}");
    let sender = server.sender("locked").await.expect("sender locked");
    assert_eq!(sender["records_total"], 5, "{sender:#}");
    assert_eq!(sender["duplicates"], 0, "{sender:#}");
    assert!(server.gaps("").await.is_empty());
}

#[tokio::test]
async fn a_locked_store_is_named_in_the_503_answer() {
    let mut server = TestServer::start_with(Options {
        sqlite: true,
        busy_timeout: Some(Duration::from_millis(200)),
        ..Options::default()
    })
    .await;
    let other = rusqlite::Connection::open(server.db_path()).expect("open cdrhub.db");
    other
        .execute_batch("BEGIN EXCLUSIVE")
        .expect("lock cdrhub.db");
    let r = server
        .post(CMS, valid_call(&guid(), "locked").build())
        .await;
    assert_refused(
        "store locked",
        &r,
        StatusCode::SERVICE_UNAVAILABLE,
        "locked",
    );
    other.execute_batch("COMMIT").expect("unlock cdrhub.db");
}
