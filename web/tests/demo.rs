//! `accordo demo room`: a demo case with its room and three personal links that work.

use std::process::Command;

use backoffice::rooms::invites;
use backoffice::rooms::room_store;
use backoffice::Db;

#[tokio::test]
async fn demo_room_prints_three_links_that_open_the_room_as_each_person() {
    let dir = tempfile::tempdir().expect("temp dir");
    let output = Command::new(env!("CARGO_BIN_EXE_accordo"))
        .args(["demo", "room"])
        .env("ACCORDO_DATA_DIR", dir.path())
        .env("ACCORDO_PUBLIC_URL", "http://localhost:8080")
        .current_dir(dir.path())
        .output()
        .expect("accordo runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );

    let db = Db::connect(&format!(
        "sqlite://{}",
        dir.path().join("accordo.db").display()
    ))
    .await
    .expect("the demo database");
    let links: Vec<(&str, &str)> = stdout
        .lines()
        .filter_map(|line| line.trim().split_once(": http://localhost:8080/r/"))
        .collect();
    assert_eq!(links.len(), 3, "{stdout}");
    for (name, token) in links {
        let (room, member) = invites::resolve(&db, token).await.expect("a working link");
        let snapshot = room_store::load(&db, room)
            .await
            .expect("load")
            .expect("the room");
        let record = snapshot
            .members
            .iter()
            .find(|record| record.id == member)
            .expect("the member");
        assert_eq!(record.display_name.expose(), name);
    }
}
