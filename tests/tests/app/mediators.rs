//! The appointment engine: rotation among the mediators qualified for the subject, available
//! on the date and without conflicts with the parties; the clerk may override with a reason.

use accordo_tests::reqwest::StatusCode;
use accordo_tests::{both_backends, Browser, TestApp};
use backoffice::platform::access::Role;
use serde_json::{json, Value};

async fn created(office: &Browser, path: &str, body: Value) -> Value {
    let response = office.post_json(path, &body).await;
    assert_eq!(response.status(), StatusCode::CREATED, "{path} {body}");
    response.json().await.expect("JSON")
}

async fn appoint(office: &Browser, case: &str, body: Value) -> (StatusCode, Value) {
    let response = office
        .post_json(&format!("/api/v1/cases/{case}/appointment"), &body)
        .await;
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

both_backends! {
    async fn mediators_are_proposed_by_rotation_subject_availability_and_conflicts(app: TestApp) {
        let office = app.logged_in("segreteria1", Role::Segreteria).await;
        let anna = created(&office, "/api/v1/mediators", json!({ "display_name": "Avv. Anna Neri", "subjects": ["locazione", "condominio"] })).await;
        let bruno = created(&office, "/api/v1/mediators", json!({ "display_name": "Avv. Bruno Gialli", "subjects": ["locazione"] })).await;
        let carla = created(&office, "/api/v1/mediators", json!({ "display_name": "Avv. Carla Blu", "subjects": ["condominio"] })).await;
        let id = |mediator: &Value| mediator["id"].as_str().unwrap_or_default().to_owned();
        let mut cases = Vec::new();
        for title in ["Uno", "Due", "Tre", "Quattro", "Cinque"] {
            cases.push(created(&office, "/api/v1/cases", json!({ "title": title })).await["id"].as_str().unwrap_or_default().to_owned());
        }
        let lease = |date: &str| json!({ "subject": "locazione", "date": date, "parties": [] });

        // Nobody appointed yet: by name. Then the other one (rotation).
        let (status, first) = appoint(&office, &cases[0], lease("2027-03-10")).await;
        assert_eq!(status, StatusCode::CREATED, "{first}");
        assert_eq!(first["mediator"], json!(id(&anna)), "{first}");
        assert!(first["reason"].as_str().unwrap_or_default().starts_with("Rotazione: tra i 2 mediatori qualificati per «locazione»"), "{first}");
        let (_, second) = appoint(&office, &cases[1], lease("2027-03-10")).await;
        assert_eq!(second["mediator"], json!(id(&bruno)), "{second}");

        // Anna is appointed least recently, but away that day: Bruno.
        let away = office.post_json(&format!("/api/v1/mediators/{}/unavailability", id(&anna)), &json!({ "from": "2027-04-01", "to": "2027-04-15" })).await;
        assert_eq!(away.status(), StatusCode::NO_CONTENT);
        app.clock.advance(std::time::Duration::from_secs(60));
        let (_, third) = appoint(&office, &cases[2], lease("2027-04-02")).await;
        assert_eq!(third["mediator"], json!(id(&bruno)), "{third}");

        // A party Anna declared a conflict with: Bruno again, although Anna's turn.
        let party = created(&office, "/api/v1/people", json!({ "kind": "natural", "given_name": "Mario", "family_name": "Rossi", "fiscal_code": "RSSMRA85T10A562S" })).await;
        let party_id = party["id"].as_str().unwrap_or_default();
        let conflict = office.post_json(&format!("/api/v1/mediators/{}/conflicts", id(&anna)), &json!({ "person": party_id })).await;
        assert_eq!(conflict.status(), StatusCode::NO_CONTENT);
        app.clock.advance(std::time::Duration::from_secs(60));
        let (_, fourth) = appoint(&office, &cases[3], json!({ "subject": "locazione", "date": "2027-05-02", "parties": [party_id] })).await;
        assert_eq!(fourth["mediator"], json!(id(&bruno)), "{fourth}");

        // The clerk prefers Carla: only with a reason, which is kept.
        let choice = json!({ "subject": "locazione", "date": "2027-05-02", "mediator": id(&carla) });
        let (status, refused) = appoint(&office, &cases[4], choice.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{refused}");
        let mut with_reason = choice;
        with_reason["override_reason"] = json!("competenza specifica sul contratto");
        let (status, fifth) = appoint(&office, &cases[4], with_reason).await;
        assert_eq!(status, StatusCode::CREATED, "{fifth}");
        assert_eq!(fifth["overridden"], true);
        assert_eq!(fifth["reason"], "Scelta della segreteria: competenza specifica sul contratto");
        assert_eq!(fifth["proposed"]["mediator"], json!(id(&anna)), "the proposal is recorded too: {fifth}");

        // Nobody qualified: said clearly.
        let (status, _) = appoint(&office, &cases[4], json!({ "subject": "franchising", "date": "2027-05-02" })).await;
        assert_eq!(status, StatusCode::CONFLICT);
        assert!(app.audit_actions().await.iter().filter(|action| *action == "case.mediator_appointed").count() == 5);
    }
}
