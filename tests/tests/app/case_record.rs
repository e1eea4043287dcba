//! The full case record: details checked field by field, participants on each side with their
//! lawyers and representatives, accounts, the history of every change, and who may see what
//! (a mediator sees only their cases; the administrator may change what a role may do).

use accordo_tests::reqwest::StatusCode;
use accordo_tests::{both_backends, Browser, TestApp};
use backoffice::platform::access::Role;
use serde_json::{json, Value};

async fn send(response: accordo_tests::reqwest::Response) -> (StatusCode, Value) {
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn post(browser: &Browser, path: &str, body: Value) -> (StatusCode, Value) {
    send(browser.post_json(path, &body).await).await
}

async fn get(browser: &Browser, path: &str) -> (StatusCode, Value) {
    send(browser.get(path).await).await
}

/// Adds a natural person to the registry; returns their id.
pub async fn person(office: &Browser, given: &str, family: &str, email: Option<&str>) -> String {
    let body = json!({
        "kind": "natural", "given_name": given, "family_name": family, "email": email,
        "confirm_not_duplicate": true,
    });
    let (status, person) = post(office, "/api/v1/people", body).await;
    assert_eq!(status, StatusCode::CREATED, "{person}");
    person["id"].as_str().expect("person id").to_owned()
}

/// Adds a participant to a case; returns its id.
pub async fn participant(office: &Browser, case: &str, body: Value) -> String {
    let (status, added) = post(office, &format!("/api/v1/cases/{case}/participants"), body).await;
    assert_eq!(status, StatusCode::CREATED, "{added}");
    added["id"].as_str().expect("participant id").to_owned()
}

/// Registers a case; returns its id.
pub async fn case(office: &Browser, title: &str) -> String {
    let (status, case) = post(office, "/api/v1/cases", json!({ "title": title })).await;
    assert_eq!(status, StatusCode::CREATED, "{case}");
    case["id"].as_str().expect("case id").to_owned()
}

fn details() -> Value {
    json!({
        "title": "Locazione via Roma 10",
        "filed_on": "2026-11-20",
        "kind": "mandatory",
        "subject": "locazione",
        "value_cents": 1_250_000,
        "communication_sent_on": "2026-11-23",
        "response": "accepted",
        "response_on": "2026-11-26",
        "sede": "Sede di Roma",
    })
}

both_backends! {
    async fn the_case_record_is_checked_and_every_change_is_in_its_history(app: TestApp) {
        let office = app.logged_in("segreteria1", Role::Segreteria).await;
        let case = case(&office, "Locazione").await;
        let path = format!("/api/v1/cases/{case}");

        let (status, updated) = send(office.put_json(&path, &details()).await).await;
        assert_eq!(status, StatusCode::OK, "{updated}");
        assert_eq!(updated["details"]["kind"], "mandatory");

        // Every wrong field is refused with its reason, and nothing changes.
        for (field, value, reason) in [
            ("filed_on", json!("20/11/2026"), "data di deposito"),
            ("subject", json!("astrologia"), "materia sconosciuta"),
            ("kind", json!("obbligatorissima"), "tipo di mediazione"),
            ("value_indeterminate", json!(true), "non entrambi"),
            ("value_cents", json!(-1), "negativo"),
            ("outcome", json!("agreement"), "vanno indicati insieme"),
            ("title", json!("  "), "oggetto"),
        ] {
            let mut wrong = details();
            wrong[field] = value;
            let (status, refused) = send(office.put_json(&path, &wrong).await).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{field}: {refused}");
            assert!(refused["message"].as_str().unwrap_or_default().contains(reason), "{field}: {refused}");
        }
        let mut closing = details();
        closing["outcome"] = json!("agreement");
        closing["closed_on"] = json!("2026-11-10");
        let (status, refused) = send(office.put_json(&path, &closing).await).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "closed before it was filed: {refused}");

        // Parties on both sides, each lawyer acting for one of them, a CTU.
        let mario = person(&office, "Mario", "Rossi", Some("mario@example.invalid")).await;
        let lucia = person(&office, "Lucia", "Bianchi", None).await;
        let avv_verdi = person(&office, "Carlo", "Verdi", Some("verdi@example.invalid")).await;
        let ctu = person(&office, "Paola", "Neri", None).await;
        let applicant = participant(&office, &case, json!({ "person": mario, "role": "party", "side": "istante" })).await;
        let called = participant(&office, &case, json!({ "person": lucia, "role": "party", "side": "chiamata" })).await;
        participant(&office, &case, json!({ "person": avv_verdi, "role": "lawyer", "represents": called })).await;
        participant(&office, &case, json!({ "person": ctu, "role": "expert" })).await;
        for (wrong, reason) in [
            (json!({ "person": avv_verdi, "role": "lawyer" }), "parte assistita"),
            (json!({ "person": avv_verdi, "role": "lawyer", "represents": "nessuno" }), "non è tra le parti"),
            (json!({ "person": mario, "role": "party" }), "istante o chiamata"),
            (json!({ "person": mario, "role": "party", "side": "istante" }), "partecipa già"),
            (json!({ "person": "sconosciuto", "role": "party", "side": "istante" }), "persona sconosciuta"),
            (json!({ "person": mario, "role": "giudice" }), "ruolo sconosciuto"),
        ] {
            let (status, refused) = post(&office, &format!("/api/v1/cases/{case}/participants"), wrong.clone()).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{wrong}: {refused}");
            assert!(refused["message"].as_str().unwrap_or_default().contains(reason), "{wrong}: {refused}");
        }

        // The lawyer is listed after the party they act for, on that party's side.
        let (_, record) = get(&office, &path).await;
        let listed: Vec<(String, String, String)> = record["participants"]
            .as_array()
            .expect("participants")
            .iter()
            .map(|p| (
                p["display_name"].as_str().unwrap_or_default().to_owned(),
                p["role"].as_str().unwrap_or_default().to_owned(),
                p["side"].as_str().unwrap_or("-").to_owned(),
            ))
            .collect();
        let expected = [
            ("Mario Rossi", "party", "istante"),
            ("Lucia Bianchi", "party", "chiamata"),
            ("Carlo Verdi", "lawyer", "chiamata"),
            ("Paola Neri", "expert", "-"),
        ];
        assert_eq!(listed.len(), expected.len(), "{listed:?}");
        for ((name, role, side), expected) in listed.iter().zip(expected) {
            assert_eq!((name.as_str(), role.as_str(), side.as_str()), expected);
        }

        // Accounts.
        let (status, _) = post(&office, &format!("/api/v1/cases/{case}/ledger"), json!({
            "direction": "income", "amount_cents": 4_000, "description": "Spese di avvio", "on_date": "2026-11-20",
        })).await;
        assert_eq!(status, StatusCode::CREATED);
        let (status, _) = post(&office, &format!("/api/v1/cases/{case}/ledger"), json!({
            "direction": "income", "amount_cents": 0, "description": "Niente", "on_date": "2026-11-20",
        })).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);

        // Removing a party removes whoever acts for them.
        let response = office.delete(&format!("/api/v1/cases/{case}/participants/{called}")).await;
        assert_eq!(response.status(), StatusCode::NO_CONTENT);
        let (_, record) = get(&office, &path).await;
        assert_eq!(record["participants"].as_array().map(Vec::len), Some(2), "{record}");
        assert_eq!(record["participants"][0]["id"], applicant.as_str());
        assert_eq!(record["ledger"][0]["amount_cents"], 4_000);

        // The history: who changed what, before and after.
        let (_, history) = get(&office, &format!("{path}/history")).await;
        let actions: Vec<&str> = history["history"].as_array().expect("history").iter().filter_map(|r| r["action"].as_str()).collect();
        for action in ["case.created", "case.updated", "case.participant_added", "case.participant_removed", "case.ledger_entry"] {
            assert!(actions.contains(&action), "{action} in {actions:?}");
        }
        let update = history["history"].as_array().expect("history").iter().find(|r| r["action"] == "case.updated").expect("update");
        let title = update["changes"].as_array().expect("changes").iter().find(|c| c["field"] == "title").expect("title change");
        assert_eq!(title["before"], "Locazione");
        assert_eq!(title["after"], "Locazione via Roma 10");
        assert!(update["changes"].as_array().expect("changes").iter().all(|c| c["field"] != "outcome"), "only changed fields: {update}");
    }

    async fn merging_people_moves_their_case_participations(app: TestApp) {
        let office = app.logged_in("segreteria1", Role::Segreteria).await;
        let case = case(&office, "Condominio").await;
        let older = person(&office, "Anna", "Gallo", None).await;
        let newer = person(&office, "Anna", "Gallo", Some("anna@example.invalid")).await;
        participant(&office, &case, json!({ "person": older, "role": "party", "side": "istante" })).await;
        let (status, _) = post(&office, &format!("/api/v1/people/{older}/merge"), json!({ "into": newer })).await;
        assert_eq!(status, StatusCode::OK);
        let (_, record) = get(&office, &format!("/api/v1/cases/{case}")).await;
        assert_eq!(record["participants"][0]["person"], newer.as_str(), "{record}");
        // The merged record is not offered any more.
        let (status, refused) = post(&office, &format!("/api/v1/cases/{case}/participants"), json!({ "person": older, "role": "party", "side": "chiamata" })).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(refused["message"].as_str().unwrap_or_default().contains("unita"), "{refused}");
    }

    async fn a_mediator_sees_only_their_cases_unless_the_administrator_decides_otherwise(app: TestApp) {
        let office = app.logged_in("segreteria1", Role::Segreteria).await;
        let anna = app.logged_in("anna.neri", Role::Mediatore).await;
        let guest = app.logged_in("consigliere1", Role::Consigliere).await;
        let (status, mediator) = post(&office, "/api/v1/mediators", json!({
            "display_name": "Avv. Anna Neri", "subjects": ["locazione"], "email": "anna@example.invalid", "username": "anna.neri",
        })).await;
        assert_eq!(status, StatusCode::CREATED, "{mediator}");
        let hers = case(&office, "Locazione con Anna").await;
        let other = case(&office, "Altra pratica").await;
        let (status, appointed) = post(&office, &format!("/api/v1/cases/{hers}/appointment"), json!({ "subject": "locazione" })).await;
        assert_eq!(status, StatusCode::CREATED, "{appointed}");
        assert_eq!(appointed["mediator"], mediator["id"], "the only qualified mediator");

        let (status, listed) = get(&anna, "/api/v1/cases").await;
        assert_eq!(status, StatusCode::OK);
        let ids: Vec<&str> = listed["cases"].as_array().expect("cases").iter().filter_map(|c| c["id"].as_str()).collect();
        assert_eq!(ids, vec![hers.as_str()]);
        assert_eq!(get(&anna, &format!("/api/v1/cases/{hers}")).await.0, StatusCode::OK);
        assert_eq!(get(&anna, &format!("/api/v1/cases/{other}")).await.0, StatusCode::NOT_FOUND);
        assert_eq!(get(&anna, &format!("/api/v1/cases/{other}/history")).await.0, StatusCode::NOT_FOUND);
        // She reads, the segreteria writes.
        let (status, _) = send(anna.put_json(&format!("/api/v1/cases/{hers}"), &details()).await).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert_eq!(get(&guest, "/api/v1/cases").await.0, StatusCode::FORBIDDEN);
        let (status, _) = post(&anna, &format!("/api/v1/cases/{hers}/online-meetings"), json!({ "starts_at": 0, "duration_minutes": 60 })).await;
        assert_eq!(status, StatusCode::FORBIDDEN);

        // The administrator (of the same organism) lets mediators see every case.
        let admin = app.logged_in("amministratore1", Role::Admin).await;
        let response = admin.post_form("/admin/permessi", &[("role", "mediatore"), ("permission", "view_all_cases"), ("allowed", "1")]).await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
        let (_, listed) = get(&anna, "/api/v1/cases").await;
        assert_eq!(listed["cases"].as_array().map(Vec::len), Some(2), "{listed}");
        // Nobody can take the administrator's own powers away.
        let response = admin.post_form("/admin/permessi", &[("role", "admin"), ("permission", "manage_users"), ("allowed", "0")]).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        assert_eq!(admin.get("/admin/users").await.status(), StatusCode::OK);
        // Segreteria cannot change permissions.
        let response = office.post_form("/admin/permessi", &[("role", "segreteria"), ("permission", "manage_users"), ("allowed", "1")]).await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
        assert!(app.audit_actions().await.contains(&"role.permission_changed".to_owned()));
    }
}

both_backends! {
    async fn one_organism_cannot_read_or_touch_another_organisms_work(app: TestApp) {
        let a = app.logged_in("segreteria.a", Role::Segreteria).await;
        let b_id = app.other_organism().await;
        let b = app.logged_in_at("segreteria.b", Role::Segreteria, Some(&b_id)).await;
        let b_admin = app.logged_in_at("amministratore.b", Role::Admin, Some(&b_id)).await;

        let case = case(&a, "Pratica di A").await;
        let mario = person(&a, "Mario", "Rossi", None).await;
        participant(&a, &case, json!({ "person": mario, "role": "party", "side": "istante" })).await;
        let (_, mediator) = post(&a, "/api/v1/mediators", json!({ "display_name": "Avv. Anna Neri", "subjects": ["locazione"] })).await;
        let mediator = mediator["id"].as_str().expect("mediator").to_owned();
        let (status, room) = post(&a, &format!("/api/v1/cases/{case}/room"), json!({})).await;
        assert_eq!(status, StatusCode::CREATED);
        let room = room["room"].as_str().expect("room").to_owned();

        let (_, listed) = get(&b, "/api/v1/cases").await;
        assert_eq!(listed["cases"].as_array().map(Vec::len), Some(0), "{listed}");
        let path = format!("/api/v1/cases/{case}");
        for (status, what) in [
            (get(&b, &path).await.0, "read the case"),
            (get(&b, &format!("{path}/history")).await.0, "read its history"),
            (send(b.put_json(&path, &details()).await).await.0, "change it"),
            (post(&b, &format!("{path}/participants"), json!({ "person": mario, "role": "party", "side": "chiamata" })).await.0, "add to it"),
            (send(b.delete(&format!("{path}/participants/x")).await).await.0, "remove from it"),
            (post(&b, &format!("{path}/ledger"), json!({ "direction": "income", "amount_cents": 1, "description": "x", "on_date": "2026-11-20" })).await.0, "book money"),
            (post(&b, &format!("{path}/room"), json!({})).await.0, "open its room"),
            (post(&b, &format!("{path}/meetings"), json!({ "starts_at": 4_000_000_000_000_i64, "duration_minutes": 60 })).await.0, "book a meeting"),
            (post(&b, &format!("{path}/online-meetings"), json!({ "starts_at": 4_000_000_000_000_i64, "duration_minutes": 60 })).await.0, "schedule online"),
            (post(&b, &format!("{path}/appointment"), json!({ "subject": "locazione" })).await.0, "appoint"),
            (send(b.post_bytes(&format!("{path}/documents?name=a.pdf&shareable=true"), accordo_tests::SAMPLE_PDF).await).await.0, "add a document"),
            (post(&b, &format!("/api/v1/rooms/{room}/members"), json!({ "role": "party", "display_name": "Intruso" })).await.0, "invite into its room"),
            (post(&b, &format!("/api/v1/mediators/{mediator}/unavailability"), json!({ "from": "2027-01-01", "to": "2027-01-02" })).await.0, "mark its mediator away"),
            (post(&b, &format!("/api/v1/mediators/{mediator}/conflicts"), json!({ "person": mario })).await.0, "declare a conflict"),
        ] {
            assert_eq!(status, StatusCode::NOT_FOUND, "B may not {what}");
        }
        assert_eq!(b.get(&format!("/pratiche/{case}")).await.status(), StatusCode::NOT_FOUND);
        // B's administrator reads B's audit log only.
        let (_, audit) = get(&b_admin, "/api/v1/audit").await;
        let records = audit["records"].as_array().cloned().expect("records");
        assert!(records.iter().any(|r| r["action"] == "user.login"), "B's own records: {audit}");
        assert!(records.iter().all(|r| r["entity_id"] != case.as_str() && r["entity_id"] != room.as_str()), "{audit}");
        assert!(records.iter().all(|r| r["actor"] != "segreteria.a"), "{audit}");
        // Nothing of A changed.
        let (_, record) = get(&a, &path).await;
        assert_eq!(record["participants"].as_array().map(Vec::len), Some(1));
        assert_eq!(record["meetings"].as_array().map(Vec::len), Some(0));
    }

    async fn malformed_addresses_and_parameters_get_typed_errors(app: TestApp) {
        let office = app.logged_in("segreteria1", Role::Segreteria).await;
        let (status, body) = post(&office, "/api/v1/rooms/not-a-number/members", json!({ "role": "party", "display_name": "X" })).await;
        // A malformed id is a 400 (an unknown one, well formed, a 404).
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body["error"], "bad_request", "{body}");
        assert!(body["message"].as_str().unwrap_or_default().starts_with("Identificativo non valido"), "{body}");
        let (status, body) = get(&office, "/api/v1/outbox?cas=1").await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert!(body["message"].as_str().unwrap_or_default().starts_with("Parametri della richiesta non validi"), "{body}");
        let case = case(&office, "Documenti").await;
        let (status, body) = send(office.post_bytes(&format!("/api/v1/cases/{case}/documents?name=a.pdf"), accordo_tests::SAMPLE_PDF).await).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "shareable is required: {body}");
        assert_eq!(body["error"], "bad_request");
    }
}
