//! Input that must never be stored: a name or title over several lines (or with any control
//! character), and the NUL character anywhere (PostgreSQL refuses it in text, so it used to
//! answer 500 there). Each refusal is a 400 (or the form again) with an Italian reason, and
//! changes nothing: the audit log, which records every change, stays as it was.

use accordo_tests::reqwest::{Response, StatusCode};
use accordo_tests::{both_backends, TestApp, CAST};
use backoffice::platform::access::Role;
use serde_json::{json, Value};

async fn refused_as_json(response: Response, says: &str) {
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: Value = response.json().await.unwrap();
    assert!(body["message"].as_str().unwrap().contains(says), "{body}");
}

async fn cases_stored(app: &TestApp) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM cases")
        .fetch_one(app.db.pool())
        .await
        .unwrap()
}

const ONE_LINE: &str = "sola riga";
const NUL: &str = "carattere nullo";

both_backends! {
    async fn names_and_titles_over_several_lines_are_refused_and_nothing_is_stored(app: TestApp) {
        let office = app.admin().await;
        let case = office.post_json("/api/v1/cases", &json!({ "reference": "MED-1", "title": "Locazione" })).await;
        assert_eq!(case.status(), StatusCode::CREATED);
        let case: Value = case.json().await.unwrap();
        let case = case["id"].as_str().unwrap().to_owned();
        let room = office.post_json(&format!("/api/v1/cases/{case}/room"), &json!({ "auto_admit": false })).await;
        assert_eq!(room.status(), StatusCode::CREATED);
        let room: Value = room.json().await.unwrap();
        let room = room["room"].as_str().unwrap().to_owned();
        let audit_before = app.audit_actions().await.len();
        let cases_before = cases_stored(&app).await;

        let response = office.post_json("/api/v1/cases", &json!({ "reference": "MED-2", "title": "Lite\r\ncondominiale" })).await;
        refused_as_json(response, "oggetto della pratica").await;
        let response = office.post_form("/pratiche", &[("title", "Lite\ncondominiale")]).await;
        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let mut details = json!({ "title": "Locazione\r\nvia Roma" });
        refused_as_json(office.put_json(&format!("/api/v1/cases/{case}"), &details).await, ONE_LINE).await;
        details = json!({ "title": "Locazione", "sede": "Roma\u{7}" });
        refused_as_json(office.put_json(&format!("/api/v1/cases/{case}"), &details).await, ONE_LINE).await;
        let person = json!({ "kind": "natural", "given_name": "Mario\r\nBcc: altri@example.invalid", "family_name": "Rossi" });
        refused_as_json(office.post_json("/api/v1/people", &person).await, ONE_LINE).await;
        let company = json!({ "kind": "legal", "company_name": "Alfa\tServizi S.r.l." });
        refused_as_json(office.post_json("/api/v1/people", &company).await, ONE_LINE).await;
        let mediator = json!({ "display_name": "Avv.\nAnna Neri", "subjects": ["condominio"] });
        refused_as_json(office.post_json("/api/v1/mediators", &mediator).await, ONE_LINE).await;
        let place = json!({ "sede": "Sede\ndi Roma", "room": "Sala 1" });
        refused_as_json(office.post_json("/api/v1/places", &place).await, ONE_LINE).await;
        let member = json!({ "role": "party", "side": "istante", "display_name": "Sig.\r\nRossi" });
        refused_as_json(office.post_json(&format!("/api/v1/rooms/{room}/members"), &member).await, ONE_LINE).await;
        let user = office
            .post_form("/admin/users", &[("username", "avv.bianchi"), ("display_name", "Laura\r\nBianchi"), ("role", "mediatore")])
            .await;
        assert_eq!(user.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert!(user.text().await.unwrap().contains(ONE_LINE));

        assert_eq!(app.audit_actions().await.len(), audit_before, "nothing changed");
        assert_eq!(cases_stored(&app).await, cases_before);
    }

    async fn nul_is_refused_in_paths_queries_and_bodies_and_nothing_is_stored(app: TestApp) {
        let office = app.logged_in("segreteria1", Role::Segreteria).await;
        let setup = app.open_room(&office, &CAST[..1], false).await;
        let audit_before = app.audit_actions().await.len();
        let cases_before = cases_stored(&app).await;

        refused_as_json(office.get("/api/v1/cases/%00/history").await, NUL).await;
        refused_as_json(office.get(&format!("/api/v1/cases/{}/history?x=%00", setup.case)).await, NUL).await;
        let page = office.get("/pratiche/%00").await;
        assert_eq!(page.status(), StatusCode::BAD_REQUEST);
        assert!(page.text().await.unwrap().contains(NUL));
        let response = office.post_json("/api/v1/cases", &json!({ "reference": "MED-9", "title": "Lite\u{0}condominiale" })).await;
        refused_as_json(response, NUL).await;
        let person = json!({ "kind": "natural", "given_name": "Mario", "family_name": "Rossi", "email": "mario\u{0}@example.invalid" });
        refused_as_json(office.post_json("/api/v1/people", &person).await, NUL).await;
        let form = office.post_form("/pratiche", &[("title", "Lite\0condominiale")]).await;
        assert_eq!(form.status(), StatusCode::BAD_REQUEST);
        assert!(form.text().await.unwrap().contains(NUL));

        assert_eq!(app.audit_actions().await.len(), audit_before, "nothing changed");
        assert_eq!(cases_stored(&app).await, cases_before);

        // The text `\u0000` (an escaped backslash, then u0000) is no NUL and is kept as typed.
        let response = office.post_json("/api/v1/cases", &json!({ "reference": "MED-10", "title": "Percorso C:\\u0000" })).await;
        assert_eq!(response.status(), StatusCode::CREATED);
        let created: Value = response.json().await.unwrap();
        assert_eq!(created["title"], "Percorso C:\\u0000");
    }
}
