//! Files in the room: uploaded with the personal link's token, offered to a session with
//! `share_file`, readable only by the people of that session.

use accordo_tests::reqwest::{Client, StatusCode};
use accordo_tests::room_client::{token_of, RoomClient};
use accordo_tests::{both_backends, TestApp, CAST, SAMPLE_PDF};
use backoffice::platform::access::Role;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const PDF: &[u8] = SAMPLE_PDF;

async fn upload(app: &TestApp, link: &str, name: &str, bytes: &[u8]) -> (StatusCode, Value) {
    let response = Client::new()
        .post(format!("{}/api/v1/room-files", app.address))
        .query(&[("name", name)])
        .bearer_auth(token_of(link))
        .body(bytes.to_vec())
        .send()
        .await
        .expect("upload");
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn download(app: &TestApp, link: &str, file: &str) -> (StatusCode, Vec<u8>) {
    let response = Client::new()
        .get(format!("{}/api/v1/room-files/{file}", app.address))
        .bearer_auth(token_of(link))
        .send()
        .await
        .expect("download");
    let status = response.status();
    (
        status,
        response
            .bytes()
            .await
            .map(|b| b.to_vec())
            .unwrap_or_default(),
    )
}

both_backends! {
    async fn a_document_shared_in_a_caucus_reaches_its_members_and_nobody_else(app: TestApp) {
        let office = app.logged_in("segreteria1", Role::Segreteria).await;
        let people = [CAST[0], CAST[1], CAST[3]];
        let setup = app.open_room(&office, &people, true).await;
        let mut mediator = RoomClient::join("mediator", &app.address, setup.link("mediator")).await.expect("mediator");
        let mut party_a = RoomClient::join("party_a", &app.address, setup.link("party_a")).await.expect("party_a");
        let mut party_b = RoomClient::join("party_b", &app.address, setup.link("party_b")).await.expect("party_b");
        mediator.command(json!({ "type": "start_caucus", "members": [setup.member("party_a")] })).await;

        // Refused, and nothing stored: a forged token, a text file named .pdf, an empty file.
        let (status, _) = upload(&app, &format!("/r/{}", "A".repeat(43)), "x.pdf", PDF).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        let (status, body) = upload(&app, setup.link("party_a"), "contratto.pdf", b"<html>not a pdf</html>").await;
        assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{body}");
        assert_eq!(body["error"], "unsupported_type");
        let (status, _) = upload(&app, setup.link("party_a"), "vuoto.pdf", b"").await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        // Over the limit: refused on the declared length, before the body is read (a client still
        // sending may see the connection closed rather than the answer, so it is read by hand).
        for length in [20 * 1024 * 1024 + 1, 21 * 1024 * 1024] {
            let mut stream = begin_upload(&app, setup.link("party_a"), length).await;
            let answer = answer_of(&mut stream).await.unwrap_or_default();
            assert!(answer.starts_with("HTTP/1.1 413 ") && answer.contains("too_large"), "{answer}");
        }
        // Without a valid token the answer is 401, whatever else is wrong (here: no name).
        let response = Client::new()
            .post(format!("{}/api/v1/room-files", app.address))
            .bearer_auth("A".repeat(43))
            .body(PDF.to_vec())
            .send()
            .await
            .expect("upload");
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        let stored: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM room_files").fetch_one(app.db.pool()).await.expect("count");
        assert_eq!(stored, 0, "a refused upload stores nothing");

        // party_a uploads and shares the proposal inside the caucus.
        let (status, file) = upload(&app, setup.link("party_a"), "proposta riservata.pdf", PDF).await;
        assert_eq!(status, StatusCode::CREATED, "{file}");
        assert_eq!(file["media_type"], "application/pdf");
        assert_eq!(file["size"], PDF.len());
        let id = file["id"].as_str().expect("file id").to_owned();
        // Not shared yet: only the uploader may read it.
        assert_eq!(download(&app, setup.link("mediator"), &id).await.0, StatusCode::NOT_FOUND);
        party_a.command(json!({ "type": "share_file", "file": id, "name": "proposta riservata.pdf" })).await;
        let shared = mediator.event("file_shared").await;
        assert_eq!(shared["file"], id.as_str());
        assert_eq!(shared["name"], "proposta riservata.pdf");

        let (status, bytes) = download(&app, setup.link("mediator"), &id).await;
        assert_eq!((status, bytes.as_slice()), (StatusCode::OK, PDF));
        assert_eq!(download(&app, setup.link("party_a"), &id).await.0, StatusCode::OK);
        // Outside the caucus: neither the event nor the file.
        assert_eq!(download(&app, setup.link("party_b"), &id).await.0, StatusCode::NOT_FOUND);
        party_b.drain(std::time::Duration::from_millis(300)).await;
        assert!(!party_b.ever_saw(&id), "party_b heard of the file");

        // Nobody shares a file they did not upload, nor one that does not exist.
        let refused = mediator.refused(json!({ "type": "share_file", "file": id, "name": "copia.pdf" })).await;
        assert_eq!(refused["code"], "invalid_command");
        let refused = party_b.refused(json!({ "type": "share_file", "file": "inventato", "name": "x.pdf" })).await;
        assert_eq!(refused["code"], "invalid_command");

        // A room that holds its quota of files takes no more.
        sqlx::query("INSERT INTO room_files (id, room_id, member_id, name, media_type, size_bytes, sha256, uploaded_at) VALUES ('pieno', $1, $2, 'x', 'application/pdf', $3, '', 0)")
            .bind(setup.room.parse::<i64>().expect("room id"))
            .bind(setup.member("party_b").parse::<i64>().expect("member id"))
            .bind(i64::try_from(backoffice::rooms::room_files::ROOM_QUOTA_BYTES).expect("fits"))
            .execute(app.db.pool())
            .await
            .expect("a full room");
        let (status, body) = upload(&app, setup.link("party_b"), "altro.pdf", PDF).await;
        assert_eq!(status, StatusCode::CONFLICT, "{body}");
        assert!(body["message"].as_str().unwrap_or_default().contains("spazio massimo"), "{body}");

        // The audit log says a file came, never its name.
        let audit = app.audit_text().await;
        assert!(audit.contains("room.file_uploaded"));
        assert!(!audit.contains("proposta riservata"), "the audit log holds no file name");
    }

    async fn the_mediator_shows_a_shareable_document_of_the_case_file_and_nothing_else(app: TestApp) {
        let office = app.logged_in("segreteria1", Role::Segreteria).await;
        let people = [CAST[0], CAST[1]];
        let setup = app.open_room(&office, &people, true).await;
        let add = |name: &str, shareable: bool| {
            format!("/api/v1/cases/{}/documents?name={name}&shareable={shareable}", setup.case)
        };
        let response = office.post_bytes(&add("perizia.pdf", true), PDF).await;
        assert_eq!(response.status(), StatusCode::CREATED);
        let shareable: Value = response.json().await.expect("document");
        let response = office.post_bytes(&add("appunti.pdf", false), PDF).await;
        assert_eq!(response.status(), StatusCode::CREATED);
        let private: Value = response.json().await.expect("document");
        let response = office.post_bytes(&add("virus.pdf", true), b"MZ\x90\x00").await;
        assert_eq!(response.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
        // A mediator account (not the segreteria) may not add documents.
        let mediator_user = app.logged_in("mediatore1", Role::Mediatore).await;
        let response = mediator_user.post_bytes(&add("x.pdf", true), PDF).await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN);

        let list = |link: &str| {
            Client::new()
                .get(format!("{}/api/v1/room-case-documents", app.address))
                .bearer_auth(token_of(link).to_owned())
                .send()
        };
        let listed: Value = list(setup.link("mediator")).await.expect("list").json().await.expect("JSON");
        assert_eq!(listed["documents"].as_array().map(Vec::len), Some(1), "{listed}");
        assert_eq!(listed["documents"][0]["name"], "perizia.pdf");
        // A party learns nothing of the case file.
        assert_eq!(list(setup.link("party_a")).await.expect("list").status(), StatusCode::NOT_FOUND);

        let copy = |link: &str, document: &str| {
            Client::new()
                .post(format!("{}/api/v1/room-case-documents/{document}/copy", app.address))
                .bearer_auth(token_of(link).to_owned())
                .send()
        };
        let private_id = private["id"].as_str().expect("id");
        assert_eq!(copy(setup.link("mediator"), private_id).await.expect("copy").status(), StatusCode::NOT_FOUND);
        let shareable_id = shareable["id"].as_str().expect("id");
        assert_eq!(copy(setup.link("party_a"), shareable_id).await.expect("copy").status(), StatusCode::NOT_FOUND);
        let response = copy(setup.link("mediator"), shareable_id).await.expect("copy");
        assert_eq!(response.status(), StatusCode::CREATED);
        let file: Value = response.json().await.expect("file");
        assert_eq!(file["sha256"], shareable["sha256"]);

        // Shared in the plenary, the party reads it.
        let mut mediator = RoomClient::join("mediator", &app.address, setup.link("mediator")).await.expect("mediator");
        let mut party_a = RoomClient::join("party_a", &app.address, setup.link("party_a")).await.expect("party_a");
        party_a.event("view").await;
        mediator.command(json!({ "type": "share_file", "file": file["id"], "name": "perizia.pdf" })).await;
        assert_eq!(party_a.event("file_shared").await["name"], "perizia.pdf");
        let (status, bytes) = download(&app, setup.link("party_a"), file["id"].as_str().expect("id")).await;
        assert_eq!((status, bytes.as_slice()), (StatusCode::OK, PDF));
        assert!(app.audit_actions().await.iter().any(|action| action == "case.document_added"));
    }
}

/// Whether the room page of `link` opens with the lobby (the link works and the room is open).
async fn page_opens_lobby(app: &TestApp, link: &str) -> bool {
    let page = Client::new()
        .get(format!("{}/r/{}", app.address, token_of(link)))
        .send()
        .await
        .expect("room page")
        .text()
        .await
        .expect("room page text");
    page.contains("data-lobby=\"1\"")
}

both_backends! {
    async fn room_files_follow_admission_removal_revocation_and_expiry(app: TestApp) {
        let office = app.logged_in("segreteria1", Role::Segreteria).await;
        let people = [CAST[0], CAST[1], CAST[3]];
        let setup = app.open_room(&office, &people, false).await;
        let mut mediator = RoomClient::join("mediator", &app.address, setup.link("mediator")).await.expect("mediator");
        mediator.event("view").await;
        let mut party_a = RoomClient::join("party_a", &app.address, setup.link("party_a")).await.expect("party_a");
        party_a.event("view").await;
        let mut party_b = RoomClient::join("party_b", &app.address, setup.link("party_b")).await.expect("party_b");
        party_b.event("view").await;

        // Still in the waiting room: the link opens the page, but no file goes in.
        assert!(page_opens_lobby(&app, setup.link("party_a")).await);
        let (status, body) = upload(&app, setup.link("party_a"), "prima.pdf", PDF).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "a party never admitted uploads: {body}");

        for name in ["party_a", "party_b"] {
            mediator.command(json!({ "type": "admit", "member": setup.member(name) })).await;
        }
        let (status, file) = upload(&app, setup.link("party_a"), "proposta.pdf", PDF).await;
        assert_eq!(status, StatusCode::CREATED, "{file}");
        let id = file["id"].as_str().expect("file id").to_owned();
        party_a.command(json!({ "type": "share_file", "file": id, "name": "proposta.pdf" })).await;
        assert_eq!(download(&app, setup.link("party_b"), &id).await.0, StatusCode::OK);

        // Removed with the link revoked: the link stops working everywhere, in the same save.
        mediator.command(json!({ "type": "remove", "member": setup.member("party_b"), "revoke_invite": true })).await;
        assert_eq!(download(&app, setup.link("party_b"), &id).await.0, StatusCode::UNAUTHORIZED);
        assert_eq!(upload(&app, setup.link("party_b"), "dopo.pdf", PDF).await.0, StatusCode::UNAUTHORIZED);
        assert!(!page_opens_lobby(&app, setup.link("party_b")).await);
        let revoked: Option<i64> = sqlx::query_scalar("SELECT revoked_at FROM room_invites WHERE room_id = $1 AND member_id = $2")
            .bind(setup.room.parse::<i64>().expect("room id"))
            .bind(setup.member("party_b").parse::<i64>().expect("member id"))
            .fetch_one(app.db.pool())
            .await
            .expect("invite");
        assert!(revoked.is_some(), "the removal revoked the stored link");

        // Removed without revocation: back in the waiting room, no files until admitted again.
        mediator.command(json!({ "type": "remove", "member": setup.member("party_a"), "revoke_invite": false })).await;
        assert_eq!(download(&app, setup.link("party_a"), &id).await.0, StatusCode::FORBIDDEN);
        assert_eq!(upload(&app, setup.link("party_a"), "dopo.pdf", PDF).await.0, StatusCode::FORBIDDEN);
        let stored: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM room_files").fetch_one(app.db.pool()).await.expect("count");
        assert_eq!(stored, 1, "refused uploads store nothing");

        // Day 91: the room is closed, for its files too.
        assert_eq!(download(&app, setup.link("mediator"), &id).await.0, StatusCode::OK);
        app.clock.advance(std::time::Duration::from_secs(91 * 24 * 60 * 60));
        assert_eq!(download(&app, setup.link("mediator"), &id).await.0, StatusCode::UNAUTHORIZED);
        assert!(!page_opens_lobby(&app, setup.link("mediator")).await);
    }
}

/// An upload begun by hand: the request head declaring `length` bytes and the first bytes of a
/// PDF, the rest never sent.
async fn begin_upload(app: &TestApp, link: &str, length: usize) -> TcpStream {
    let address = app.address.trim_start_matches("http://");
    let mut stream = TcpStream::connect(address).await.expect("connect");
    let head = format!(
        "POST /api/v1/room-files?name=grande.pdf HTTP/1.1\r\nHost: {address}\r\n\
         Authorization: Bearer {}\r\nContent-Type: application/pdf\r\n\
         Content-Length: {length}\r\n\r\n%PDF-",
        token_of(link)
    );
    stream
        .write_all(head.as_bytes())
        .await
        .expect("request head");
    stream
}

/// The answer on `stream` (head and the start of the body), if one comes within two seconds.
async fn answer_of(stream: &mut TcpStream) -> Option<String> {
    let mut answer = vec![0_u8; 4096];
    let read =
        tokio::time::timeout(std::time::Duration::from_secs(2), stream.read(&mut answer)).await;
    let read = read.ok()?.ok().filter(|read| *read > 0)?;
    Some(String::from_utf8_lossy(&answer[..read]).into_owned())
}

/// The status line of an answer.
fn status_line(answer: &Option<String>) -> Option<&str> {
    answer.as_deref().and_then(|answer| answer.lines().next())
}

/// A PDF of exactly the largest size a room file may have.
fn largest_pdf() -> Vec<u8> {
    let mut bytes = PDF.to_vec();
    bytes.resize(backoffice::rooms::room_files::MAX_ROOM_FILE_BYTES, b' ');
    bytes
}

both_backends! {
    async fn concurrent_uploads_never_exceed_the_room_quota(app: TestApp) {
        let office = app.logged_in("segreteria1", Role::Segreteria).await;
        let mut people = CAST.to_vec();
        people.push(("expert", "expert", None));
        let setup = app.open_room(&office, &people, true).await;
        // Everybody comes into the plenary once (the mediator stays, so nobody is held).
        let mut mediator = RoomClient::join("mediator", &app.address, setup.link("mediator")).await.expect("mediator");
        mediator.event("view").await;
        for (name, _, _) in &people[1..] {
            let mut client = RoomClient::join(name, &app.address, setup.link(name)).await.expect("joins");
            client.event("view").await;
            client.leave().await;
        }
        // 12 uploads of 20 MiB at once (two per link) into a room that holds 200 MiB.
        let bytes = largest_pdf();
        let uploads = people.iter().flat_map(|(name, _, _)| [*name, *name]).map(|name| {
            let (app, setup, bytes) = (&app, &setup, &bytes);
            async move { upload(app, setup.link(name), "perizia.pdf", bytes).await.0 }
        });
        let statuses = futures_util::future::join_all(uploads).await;
        let created = statuses.iter().filter(|status| **status == StatusCode::CREATED).count();
        assert!(statuses.iter().all(|status| [StatusCode::CREATED, StatusCode::CONFLICT].contains(status)), "{statuses:?}");
        let stored: i64 = sqlx::query_scalar("SELECT CAST(COALESCE(SUM(size_bytes), 0) AS BIGINT) FROM room_files")
            .fetch_one(app.db.pool())
            .await
            .expect("sum");
        assert!(u64::try_from(stored).expect("positive") <= backoffice::rooms::room_files::ROOM_QUOTA_BYTES, "{stored} bytes stored");
        assert_eq!(created, 10, "{statuses:?}");
    }

    async fn uploads_are_refused_before_their_body_is_read(app: TestApp) {
        let office = app.logged_in("segreteria1", Role::Segreteria).await;
        let setup = app.open_room(&office, &[CAST[0], CAST[1]], true).await;
        let mut mediator = RoomClient::join("mediator", &app.address, setup.link("mediator")).await.expect("mediator");
        mediator.event("view").await;
        let mut party_a = RoomClient::join("party_a", &app.address, setup.link("party_a")).await.expect("party_a");
        party_a.event("view").await;

        // Declared too large: the answer comes while the body has barely begun.
        let mut stream = begin_upload(&app, setup.link("party_a"), 100 * 1024 * 1024).await;
        let answer = answer_of(&mut stream).await;
        assert_eq!(status_line(&answer), Some("HTTP/1.1 413 Payload Too Large"));

        // Three uploads begun from one link: two go on, the third is refused at once.
        let mut begun = Vec::new();
        for _ in 0..3 {
            begun.push(begin_upload(&app, setup.link("party_a"), 1000).await);
        }
        let answers = futures_util::future::join_all(begun.iter_mut().map(answer_of)).await;
        let refused = answers.iter().filter(|answer| status_line(answer) == Some("HTTP/1.1 429 Too Many Requests")).count();
        let waiting = answers.iter().filter(|answer| answer.is_none()).count();
        assert_eq!((refused, waiting), (1, 2), "{answers:?}");
        // Meanwhile, a fourth: refused, in Italian.
        let (status, body) = upload(&app, setup.link("party_a"), "x.pdf", PDF).await;
        assert_eq!((status, body["error"].as_str()), (StatusCode::TOO_MANY_REQUESTS, Some("too_many_uploads")), "{body}");
        assert!(body["message"].as_str().unwrap_or_default().contains("troppi caricamenti"), "{body}");

        // Once they end, the link uploads again.
        drop(begun);
        let mut status = StatusCode::TOO_MANY_REQUESTS;
        for _ in 0..50 {
            status = upload(&app, setup.link("party_a"), "x.pdf", PDF).await.0;
            if status != StatusCode::TOO_MANY_REQUESTS {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        assert_eq!(status, StatusCode::CREATED);
    }
}
