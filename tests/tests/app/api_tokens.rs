//! API tokens: an integration of the body calls the API with `Authorization: Bearer acc_…`,
//! without CSRF, with the permissions both the token's scopes and its creator's role allow;
//! the secret is shown once and stored hashed; creation, revocation and refusals are audited;
//! a token opens no page and is no credential in another body.

use std::time::Duration;

use accordo_tests::reqwest::{Client, Method, StatusCode};
use accordo_tests::{both_backends, Browser, TestApp};
use backoffice::platform::access::{self, Permission, Role};
use backoffice::platform::audit::{self, Actor};
use backoffice::UnixMillis;
use serde_json::{json, Value};

/// Creates a token with `scopes` as `admin`; answers (status, body).
async fn create(
    admin: &Browser,
    name: &str,
    scopes: &[&str],
    expires_at: Option<i64>,
) -> (StatusCode, Value) {
    let response = admin
        .post_json(
            "/api/v1/api-tokens",
            &json!({ "name": name, "scopes": scopes, "expires_at": expires_at }),
        )
        .await;
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// A call with `token` as its only credential (no cookie, no CSRF token).
async fn call(
    app: &TestApp,
    token: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut request = Client::new()
        .request(method, app.browser().url(path))
        .bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("request");
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// The newest audit record with `action`: (actor, changes as `field=after`).
async fn last_record(app: &TestApp, action: &str) -> Option<(String, Vec<String>)> {
    let records = audit::recent(app.db.pool(), None, 1000)
        .await
        .expect("audit");
    records
        .into_iter()
        .find(|record| record.action == action)
        .map(|record| {
            let changes = record
                .changes
                .iter()
                .map(|change| format!("{}={}", change.field, change.after.as_deref().unwrap_or("")))
                .collect();
            (record.actor, changes)
        })
}

both_backends! {
    async fn an_integration_acts_with_its_token_within_its_scopes_until_revoked(app: TestApp) {
        let admin = app.admin().await;
        let (status, created) = create(&admin, "Gestionale", &["view_cases", "view_all_cases", "manage_cases"], None).await;
        assert_eq!(status, StatusCode::CREATED, "{created}");
        let secret = created["token"].as_str().expect("the secret, once").to_owned();
        let id = created["id"].as_str().expect("an id").to_owned();
        assert!(secret.starts_with("acc_") && secret.len() > 40, "{secret}");

        // Stored hashed; listed without the secret; the creation audited without it.
        let stored: String = sqlx::query_scalar("SELECT token_hash FROM api_tokens WHERE id = $1")
            .bind(&id).fetch_one(app.db.pool()).await.unwrap();
        assert!(stored.len() == 64 && stored.chars().all(|c| c.is_ascii_hexdigit()), "a SHA-256: {stored}");
        assert!(!stored.contains(&secret[4..]));
        let listed = admin.get("/api/v1/api-tokens").await.text().await.unwrap();
        assert!(listed.contains("Gestionale") && !listed.contains(&secret), "{listed}");
        let (_, changes) = last_record(&app, "api_token.created").await.expect("audited");
        assert!(changes.contains(&"token=***".to_owned()) && !changes.iter().any(|c| c.contains(&secret)), "{changes:?}");

        // Within its scopes, without CSRF: the case is registered, by the creator through the token.
        let (status, case) = call(&app, &secret, Method::POST, "/api/v1/cases", Some(json!({ "title": "Locazione" }))).await;
        assert_eq!(status, StatusCode::CREATED, "{case}");
        let (actor, _) = last_record(&app, "case.created").await.expect("audited");
        assert_eq!(actor, "admin (token «Gestionale»)");
        let (status, listed) = call(&app, &secret, Method::GET, "/api/v1/cases", None).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(listed["cases"].as_array().map(Vec::len), Some(1), "{listed}");

        // Outside its scopes: 403, recorded; nothing else changes.
        let before = app.audit_actions().await.len();
        let person = json!({ "kind": "natural", "given_name": "Mario", "family_name": "Rossi", "confirm_not_duplicate": true });
        let (status, body) = call(&app, &secret, Method::POST, "/api/v1/people", Some(person)).await;
        assert_eq!((status, body["error"].as_str()), (StatusCode::FORBIDDEN, Some("forbidden")), "{body}");
        let actions = app.audit_actions().await;
        assert_eq!(actions.len(), before + 1);
        assert_eq!(actions.last().map(String::as_str), Some("api_token.refused"));
        let (_, changes) = last_record(&app, "api_token.refused").await.unwrap();
        assert_eq!(changes, ["reason=manage_people"]);

        // The creator's role bounds the token: a permission the role loses, the token loses.
        let organism = backoffice::platform::accounts::find_by_username(&app.db, "admin").await.unwrap().unwrap().organism_id;
        access::set(&app.db, &Actor::command_line(), UnixMillis::now(), organism.as_deref(), (Role::Admin, Permission::ManageCases, false)).await.unwrap();
        let (status, _) = call(&app, &secret, Method::POST, "/api/v1/cases", Some(json!({ "title": "Altra" }))).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        access::set(&app.db, &Actor::command_line(), UnixMillis::now(), organism.as_deref(), (Role::Admin, Permission::ManageCases, true)).await.unwrap();

        // Never a credential for pages, nor for the token routes of room links.
        let page = Client::builder().redirect(accordo_tests::reqwest::redirect::Policy::none()).build().unwrap()
            .get(app.browser().url("/pratiche")).bearer_auth(&secret).send().await.unwrap();
        assert!(page.status().is_redirection(), "{}", page.status());
        assert_eq!(page.headers()["location"], "/login");
        let (status, _) = call(&app, &secret, Method::GET, "/api/v1/room-case-documents", None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);

        // A token may not give more than its creator has through it.
        let (status, body) = call(&app, &secret, Method::POST, "/api/v1/api-tokens",
            Some(json!({ "name": "Altro", "scopes": ["view_cases"] }))).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{body}");

        // Revoked: refused from then on, and recorded.
        let response = admin.post_json(&format!("/api/v1/api-tokens/{id}/revoke"), &json!({})).await;
        assert_eq!(response.status(), StatusCode::NO_CONTENT);
        let (status, body) = call(&app, &secret, Method::GET, "/api/v1/cases", None).await;
        assert_eq!((status, body["error"].as_str()), (StatusCode::UNAUTHORIZED, Some("unauthenticated")));
        let (_, changes) = last_record(&app, "api_token.refused").await.unwrap();
        assert_eq!(changes, ["reason=revoked"]);
        assert!(last_record(&app, "api_token.revoked").await.is_some());
        let again = admin.post_json(&format!("/api/v1/api-tokens/{id}/revoke"), &json!({})).await;
        assert_eq!(again.status(), StatusCode::NOT_FOUND);

        // An unknown token: 401, and nothing recorded (it belongs to no body).
        let before = app.audit_actions().await;
        let (status, _) = call(&app, "acc_nothing", Method::GET, "/api/v1/cases", None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(app.audit_actions().await, before);
    }

    async fn a_token_expires_and_belongs_to_its_body_alone(app: TestApp) {
        let admin = app.admin().await;
        // The server's clock stands still until the test moves it: its "now" is a creation time.
        let (status, first) = create(&admin, "Primo", &["view_cases"], None).await;
        assert_eq!(status, StatusCode::CREATED, "{first}");
        let now = first["created_at"].as_i64().expect("a time");
        let (status, body) = create(&admin, "Scaduto", &["view_cases"], Some(now)).await;
        assert_eq!((status, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("bad_request")), "{body}");
        let (status, body) = create(&admin, " ", &["view_cases"], None).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        let (status, body) = create(&admin, "Niente", &[], None).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        let (status, body) = create(&admin, "Ignoto", &["fly"], None).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");

        let (status, created) = create(&admin, "Breve", &["view_cases"], Some(now + 1000)).await;
        assert_eq!(status, StatusCode::CREATED, "{created}");
        let secret = created["token"].as_str().unwrap().to_owned();
        let id = created["id"].as_str().unwrap().to_owned();
        assert_eq!(call(&app, &secret, Method::GET, "/api/v1/cases", None).await.0, StatusCode::OK);
        app.clock.advance(Duration::from_secs(2));
        assert_eq!(call(&app, &secret, Method::GET, "/api/v1/cases", None).await.0, StatusCode::UNAUTHORIZED);
        let (_, changes) = last_record(&app, "api_token.refused").await.unwrap();
        assert_eq!(changes, ["reason=expired"]);

        // Another body's administrator sees none of these tokens and cannot revoke them.
        let other = app.other_organism().await;
        let other_admin = app.logged_in_at("amministratore.b", Role::Admin, Some(&other)).await;
        let listed: Value = other_admin.get("/api/v1/api-tokens").await.json().await.unwrap();
        assert_eq!(listed["tokens"], json!([]));
        let response = other_admin.post_json(&format!("/api/v1/api-tokens/{id}/revoke"), &json!({})).await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        // A segreteria may not create tokens.
        let clerk = app.logged_in("segreteria1", Role::Segreteria).await;
        assert_eq!(create(&clerk, "Mio", &["view_cases"], None).await.0, StatusCode::FORBIDDEN);
    }

    async fn the_administrator_creates_and_revokes_tokens_on_a_page(app: TestApp) {
        let admin = app.admin().await;
        let page = admin.get("/admin/token").await;
        assert_eq!(page.status(), StatusCode::OK);
        let page = admin.post_form("/admin/token", &[
            ("name", "Contabilità"), ("scope", "view_cases"), ("scope", "view_outbox"), ("expires_on", "2099-12-31"),
        ]).await;
        assert_eq!(page.status(), StatusCode::OK);
        let html = page.text().await.unwrap();
        let start = html.find("acc_").expect("the secret is shown once");
        let secret: String = html[start..].chars().take_while(|c| c.is_ascii_alphanumeric() || "_-".contains(*c)).collect();
        assert_eq!(call(&app, &secret, Method::GET, "/api/v1/outbox", None).await.0, StatusCode::OK);
        let again = admin.get("/admin/token").await.text().await.unwrap();
        assert!(again.contains("Contabilità") && !again.contains(&secret), "shown once only");

        let refused = admin.post_form("/admin/token", &[("name", "Vuoto")]).await;
        assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert!(refused.text().await.unwrap().contains("i permessi del token"));

        let listed: Value = admin.get("/api/v1/api-tokens").await.json().await.unwrap();
        let id = listed["tokens"][0]["id"].as_str().unwrap().to_owned();
        let revoked = admin.post_form(&format!("/admin/token/{id}/revoca"), &[]).await;
        assert_eq!(revoked.status(), StatusCode::SEE_OTHER);
        assert_eq!(call(&app, &secret, Method::GET, "/api/v1/outbox", None).await.0, StatusCode::UNAUTHORIZED);
    }
}
