//! A 500 shows the client only its request id (ARCHITECTURE.md): the HTML page and the JSON
//! body quote the id of the response's `x-request-id`, and no internal text (SQL, the
//! database's message, the table, paths).

use accordo_tests::reqwest::StatusCode;
use accordo_tests::{both_backends, TestApp};

both_backends! {
    async fn a_500_shows_its_request_id_and_nothing_internal(app: TestApp) {
        let admin = app.admin().await;
        // The outbox's table goes away behind the server's back: listing the mail fails.
        sqlx::query("ALTER TABLE outbox RENAME TO outbox_moved")
            .execute(app.db.pool())
            .await
            .unwrap();
        let data_dir = app.data_dir().display().to_string();
        for path in ["/posta", "/api/v1/outbox"] {
            let response = admin.get(path).await;
            assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR, "{path}");
            let id = response.headers()["x-request-id"].to_str().unwrap().to_owned();
            let body = response.text().await.unwrap();
            if path.starts_with("/api/") {
                let body: serde_json::Value = serde_json::from_str(&body).unwrap();
                assert_eq!(body["error"], "internal", "{body}");
                assert!(body["message"].as_str().unwrap().contains(&id), "{path}: {body}");
            }
            assert!(body.contains(&id), "{path} quotes the request id {id}: {body}");
            let lowercase = body.to_lowercase();
            for internal in [
                "sqlx", "database", "select ", " from ", "outbox", "no such table", "relation",
                "error returned", &data_dir,
            ] {
                assert!(!lowercase.contains(internal), "{path} shows `{internal}`: {body}");
            }
        }
    }
}
