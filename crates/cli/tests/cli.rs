//! The command line as a user runs it: config errors, `import cms`.

mod common;

use common::{Server, cdrhub, fixture, get_json};

#[test]
fn unknown_config_key_is_named_with_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("cdrhub.toml");
    std::fs::write(
        &config,
        "[http]\nlisten = \"127.0.0.1:0\"\nlisten_port = 9\n",
    )
    .unwrap();
    let out = cdrhub()
        .arg("--config")
        .arg(&config)
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .arg("serve")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("listen_port") && err.contains(&*config.to_string_lossy()),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn import_cms_files_then_reimport_finds_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let bad = dir.path().join("broken.xml");
    std::fs::write(&bad, "<records session=\"x\"><record type=\"callStart\"").unwrap();
    let mut files: Vec<_> = (1..=6)
        .map(|i| fixture(&format!("seed-000-post{i}.xml")))
        .collect();
    files.push(bad.clone());

    let run = || {
        let out = cdrhub()
            .arg("--data-dir")
            .arg(&data)
            .args(["import", "cms"])
            .args(&files)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let first = run();
    assert!(
        first.contains("imported 7 files: 8 records read, 8 stored, 0 duplicates"),
        "{first}"
    );
    assert!(
        first.contains("1 files rejected") && first.contains("broken.xml"),
        "{first}"
    );
    let second = run();
    assert!(
        second.contains("8 records read, 0 stored, 8 duplicates"),
        "{second}"
    );

    let server = Server::start(&data);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let calls = rt.block_on(get_json(server.addr, "/api/v1/calls"));
    let calls = calls["calls"].as_array().unwrap();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0]["legs"], 2);
    assert_eq!(calls[0]["disposition"], "answered");
}

#[test]
fn import_refuses_a_data_dir_a_server_is_using() {
    let dir = tempfile::tempdir().unwrap();
    let _server = Server::start(dir.path());
    let out = cdrhub()
        .arg("--data-dir")
        .arg(dir.path())
        .args(["import", "cms"])
        .arg(fixture("seed-000-post1.xml"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("another cdrhub process"), "{err}");
}
