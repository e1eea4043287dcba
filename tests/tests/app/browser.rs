//! The room in real Chromium (Playwright, fake camera and microphone): two people open their
//! personal links and see each other, through the SFU.
//!
//! Needs `/usr/bin/chromium` and `npm ci --prefix tests/browser` (`infra/test` does both).

use std::process::Command;

use accordo_tests::room_client::token_of;
use accordo_tests::{spawn_app, Backend, CAST};
use backoffice::access::Role;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_browsers_negotiate_with_the_sfu_and_see_each_other() {
    let app = spawn_app(Backend::Sqlite).await;
    let office = app.logged_in("segreteria1", Role::Segreteria).await;
    let setup = app.open_room(&office, &CAST[..2], true).await;
    let link = |name: &str| format!("{}/r/{}", app.address, token_of(setup.link(name)));
    let artefacts = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("artifacts");
    std::fs::create_dir_all(&artefacts).expect("artefacts directory");
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("browser/two_browsers.mjs");
    let output = tokio::task::spawn_blocking({
        let (first, second) = (link("mediator"), link("party_a"));
        move || {
            Command::new("node")
                .arg(script)
                .args([first, second])
                .arg(&artefacts)
                .output()
        }
    })
    .await
    .expect("the browser run finishes")
    .expect("node runs (infra/test installs it with the browser tests' packages)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let result: serde_json::Value = stdout
        .lines()
        .last()
        .and_then(|line| serde_json::from_str(line).ok())
        .unwrap_or_else(|| panic!("no result from the browsers:\n{stdout}\n{stderr}"));
    assert_eq!(result["ok"], true, "{result}\n{stderr}");
    assert_eq!(result["names"][0], "Sig. mediator (Mediatore)");
    assert_eq!(result["captions"][0][0], "Sig. party_a (Parte)", "{result}");
    assert_eq!(
        result["captions"][1][0], "Sig. mediator (Mediatore)",
        "{result}"
    );
}
