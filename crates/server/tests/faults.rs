//! Faults (issue 9, point 3): the disk of the data directory fills up
//! while records arrive. Senders are told to retry (503), nothing they were
//! told was stored is lost, the console shows the alarm, and once space is
//! back the retries are stored, each once.
//!
//! The data directory is put on a small tmpfs of the test's own (the test
//! mounts it: it runs as root, as CI does).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::{CMS, CmsDoc, Options, TestServer, guid};
use hyper::StatusCode;

/// A tmpfs of `size` mounted on a new directory, unmounted when dropped.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Tmpfs {
        let dir = tempfile::tempdir().expect("a mount point");
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .expect("mount runs");
        assert!(
            status.success(),
            "cannot mount a tmpfs on {} (the fault tests run as root)",
            dir.path().display()
        );
        Tmpfs { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

/// Fills the file system of `dir` with one file, until no byte is left.
fn fill(dir: &Path) -> PathBuf {
    use std::io::Write;
    let path = dir.join("ballast");
    let mut file = std::fs::File::create(&path).expect("the ballast file");
    let chunk = vec![0u8; 64 * 1024];
    loop {
        if file.write_all(&chunk).is_err() {
            break;
        }
    }
    // Whatever is left in smaller pieces too.
    let byte = [0u8; 512];
    while file.write_all(&byte).and_then(|_| file.flush()).is_ok() {}
    let _ = file.sync_all();
    path
}

fn doc(name: &str) -> String {
    CmsDoc::new(&guid())
        .record(
            "callStart",
            "2026-01-01T08:00:00Z",
            1,
            &format!(
                "<call id=\"{}\"><name>{name}</name><callCorrelator>{}</callCorrelator></call>",
                uuid::Uuid::new_v4(),
                uuid::Uuid::new_v4()
            ),
        )
        .build()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_gets_503s_and_an_alarm_and_nothing_acknowledged_is_lost() {
    let tmpfs = Tmpfs::mount("24m");
    let mut server = TestServer::start_with(Options {
        sqlite: true,
        dir_in: Some(tmpfs.path().to_owned()),
        ..Options::default()
    })
    .await;
    // Signed in before the disk fills: a login is a write too.
    common::add_user(
        &server,
        "ops",
        cdrhub_model::Role::Admin,
        "a long passphrase",
    );
    let mut console = common::signed_in(&server, "ops", "a long passphrase").await;
    let path = format!("{CMS}?system_id=cb1");

    let mut acknowledged = 0u64;
    for n in 0..20 {
        let r = server.post(&path, doc(&format!("before-{n}"))).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        acknowledged += 1;
    }

    let ballast = fill(tmpfs.path());
    // Until the store's files can grow no more, some may still fit.
    let mut refused = None;
    for n in 0..5_000 {
        let body = doc(&format!("full-{n}"));
        let r = server.post(&path, body.clone()).await;
        match r.status {
            StatusCode::OK => acknowledged += 1,
            StatusCode::SERVICE_UNAVAILABLE => {
                let text = r.text();
                assert!(
                    text.contains("disk is full"),
                    "the 503 names the full disk: {text}"
                );
                assert!(
                    r.header("retry-after").is_some(),
                    "the sender is told when to retry"
                );
                refused = Some(body);
                break;
            }
            other => panic!("{other}: {}", r.text()),
        }
    }
    let refused = refused.expect("the disk filled and a POST was refused");

    // Reads still work, and the console shows why writes do not.
    let r = server.get("/api/v1/calls?limit=1").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let home = console.get("/").await.text();
    assert!(home.contains("Records cannot be stored since"), "{home}");
    let metrics = server.get("/metrics").await.text();
    assert!(
        !metrics.contains("cdrhub_store_write_failures_total 0\n"),
        "{metrics}"
    );

    // Space comes back: the sender's retry is stored, once.
    std::fs::remove_file(ballast).unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let r = server.post(&path, refused.clone()).await;
        if r.status == StatusCode::OK {
            acknowledged += 1;
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never stored again: {}",
            r.text()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let again = server.post(&path, refused.clone()).await;
    assert_eq!(again.status, StatusCode::OK, "a duplicate is acknowledged");
    for n in 0..5 {
        let r = server.post(&path, doc(&format!("after-{n}"))).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        acknowledged += 1;
    }

    assert_eq!(
        server.records_total().await,
        acknowledged,
        "every acknowledged record is stored, and only once"
    );
    assert!(
        acknowledged < 1000,
        "{acknowledged} calls: more than one page"
    );
    let calls = server.calls_where("source=cms").await;
    assert_eq!(calls.len() as u64, acknowledged);
    println!("{acknowledged} records acknowledged, the last ones after the disk filled");
    let home = console.get("/").await.text();
    assert!(
        !home.contains("Records cannot be stored"),
        "the alarm ends with the first commit"
    );
}
