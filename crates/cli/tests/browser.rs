//! The console in a real browser (headless Chromium over WebDriver) against
//! the real binary: the first login with the generated password, a lockout
//! after repeated failures, and its unblocking by the admin.
//!
//! With CDRHUB_SCREENSHOTS=DIR set, the pages are saved there as PNG (the
//! README's pictures come from here).

mod common;

use common::Server;
use common::webdriver::Browser;

async fn log_in(browser: &Browser, base: &str, user: &str, password: &str) {
    browser.goto(&format!("{base}/login")).await;
    browser.type_into("#user", user).await;
    browser.type_into("#password", password).await;
    browser.click("button[type=submit]").await;
}

async fn screenshot(browser: &Browser, name: &str) {
    if let Some(dir) = std::env::var_os("CDRHUB_SCREENSHOTS") {
        std::fs::create_dir_all(&dir).unwrap();
        browser
            .screenshot(&std::path::Path::new(&dir).join(name))
            .await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn first_login_lockout_and_unblock_in_a_real_browser() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let password = server
        .admin_password
        .clone()
        .expect("the first start logs a password");
    let base = format!("http://{}", server.addr);

    let admin = Browser::start().await;
    admin.goto(&base).await;
    assert!(
        admin.url().await.ends_with("/login"),
        "{}",
        admin.url().await
    );
    screenshot(&admin, "console-login.png").await;
    log_in(&admin, &base, "admin", &password).await;
    assert!(admin.text("nav .who").await.contains("admin"));

    // Another browser guesses: the fourth and fifth failures are audited,
    // the fifth blocks the address.
    let attacker = Browser::start().await;
    for _ in 0..4 {
        log_in(&attacker, &base, "admin", "guess").await;
        assert!(
            attacker
                .text(".error")
                .await
                .contains("Wrong user name or password")
        );
    }
    log_in(&attacker, &base, "admin", "guess").await;
    assert!(attacker.text(".error").await.contains("refused until"));
    log_in(&attacker, &base, "admin", &password).await;
    assert!(
        attacker.text(".error").await.contains("refused until"),
        "blocked, right password or not"
    );

    // The admin, still signed in, sees the block and lifts it.
    admin.goto(&format!("{base}/admin/blocked")).await;
    let table = admin.text("#blocked").await;
    assert!(
        table.contains("127.0.0.1") && table.contains("admin"),
        "{table}"
    );
    screenshot(&admin, "console-blocked-ips.png").await;
    admin.click("#blocked button[type=submit]").await;
    assert!(admin.text("main").await.contains("No address is blocked"));

    log_in(&attacker, &base, "admin", &password).await;
    assert!(attacker.text("nav .who").await.contains("admin"));

    admin.goto(&format!("{base}/audit")).await;
    let audit = admin.text("#audit").await;
    for operation in [
        "login failed",
        "address blocked",
        "unblock address",
        "login",
    ] {
        assert!(audit.contains(operation), "{operation} in {audit}");
    }
    screenshot(&admin, "console-audit.png").await;
}
