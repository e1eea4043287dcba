//! The API as an integrator meets it: a call without credentials is a 401 before anything
//! else, and every refusal is JSON in Italian, in our words — never the framework's English
//! text ("Failed to buffer the request body", "Expected request with `Content-Type:
//! application/json`", serde's "unknown field", "invalid type").

use accordo_tests::reqwest::{Client, Method, Response, StatusCode};
use accordo_tests::{both_backends, concrete_path, Browser, TestApp};
use serde_json::{json, Value};

/// Words of the framework's or serde's own messages that must never reach a client.
const FRAMEWORK_WORDS: [&str; 8] = [
    "Failed",
    "Expected",
    "unknown field",
    "invalid type",
    "missing field",
    "expected",
    "Invalid URL",
    "boundary",
];

/// The status and JSON body of an API refusal; asserts the message is ours.
async fn refusal(response: Response) -> (StatusCode, String, String) {
    let status = response.status();
    assert_eq!(
        response.headers()["content-type"],
        "application/json",
        "{status}"
    );
    let body: Value = response.json().await.expect("a JSON refusal");
    let message = body["message"].as_str().unwrap_or_default().to_owned();
    for word in FRAMEWORK_WORDS {
        assert!(!message.contains(word), "framework text leaked: {message}");
    }
    (
        status,
        body["error"].as_str().unwrap_or_default().to_owned(),
        message,
    )
}

/// A request from `browser` with its session and CSRF token.
async fn with_csrf(
    browser: &Browser,
    method: Method,
    path: &str,
) -> accordo_tests::reqwest::RequestBuilder {
    let token = browser.csrf_token().await;
    browser
        .client
        .request(method, browser.url(path))
        .header("x-csrf-token", token)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_without_credentials_is_401_before_csrf_on_every_api_route() {
    let app = accordo_tests::spawn_app(accordo_tests::Backend::Sqlite).await;
    let before = app.audit_actions().await;
    let changing: Vec<_> = web::server::route_table()
        .into_iter()
        .filter(|route| route.changes_state() && route.path.starts_with("/api/"))
        .collect();
    assert!(changing.len() > 20, "the route table was read");
    for route in &changing {
        let method = Method::from_bytes(route.method.as_str().as_bytes()).expect("a method");
        // No cookie at all, no CSRF token; then a credential that is not a bearer token.
        for authorization in [None, Some("Basic YWRtaW46YWRtaW4=")] {
            let mut request = Client::new()
                .request(
                    method.clone(),
                    app.browser().url(&concrete_path(route.path)),
                )
                .header("content-type", "application/json")
                .body("{}");
            if let Some(value) = authorization {
                request = request.header("authorization", value);
            }
            let (status, code, message) = refusal(request.send().await.expect("request")).await;
            assert_eq!(
                (status, code.as_str()),
                (StatusCode::UNAUTHORIZED, "unauthenticated"),
                "{} {} ({authorization:?}): {message}",
                route.method,
                route.path
            );
        }
    }
    // The room-file upload with a bearer token that is no link: 401 too, not 403 `csrf`.
    let response = Client::new()
        .post(app.browser().url("/api/v1/room-files?name=a.pdf"))
        .bearer_auth("not-a-link")
        .body("x")
        .send()
        .await
        .expect("upload");
    assert_eq!(refusal(response).await.0, StatusCode::UNAUTHORIZED);
    // Pages are not the API: a form posted without a session still meets the CSRF check.
    let page = Client::new()
        .post(app.browser().url("/login"))
        .form(&[("username", "admin"), ("password", "x")])
        .send()
        .await
        .expect("login");
    assert_eq!(page.status(), StatusCode::FORBIDDEN);
    assert_eq!(app.audit_actions().await, before, "refusals change nothing");
}

both_backends! {
    async fn every_refusal_of_the_api_is_italian_and_ours(app: TestApp) {
        let admin = app.admin().await;
        let created = admin.post_json("/api/v1/cases", &json!({ "title": "Locazione" })).await;
        assert_eq!(created.status(), StatusCode::CREATED);
        let case: Value = created.json().await.unwrap();
        let case = case["id"].as_str().unwrap().to_owned();
        let before = app.audit_actions().await;

        // A body that is not said to be JSON, is not JSON, or does not have the expected shape.
        let text = with_csrf(&admin, Method::POST, "/api/v1/cases").await
            .header("content-type", "text/plain")
            .body(r#"{"title":"x"}"#);
        let (status, code, message) = refusal(text.send().await.unwrap()).await;
        assert_eq!((status, code.as_str()), (StatusCode::BAD_REQUEST, "bad_request"), "{message}");
        assert!(message.contains("formato JSON"), "{message}");
        let broken = with_csrf(&admin, Method::POST, "/api/v1/cases").await
            .header("content-type", "application/json")
            .body(r#"{"title":"#);
        let (status, _, message) = refusal(broken.send().await.unwrap()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(message, "Il corpo della richiesta non è JSON valido.");
        for body in [json!({ "title": "x", "colore": "blu" }), json!({}), json!({ "title": 7 })] {
            let response = admin.post_json("/api/v1/cases", &body).await;
            let (status, code, message) = refusal(response).await;
            assert_eq!((status, code.as_str()), (StatusCode::BAD_REQUEST, "bad_request"), "{body}");
            assert!(message.starts_with("Il corpo JSON non è valido"), "{body}: {message}");
        }
        let response = admin.post_json("/api/v1/cases", &json!({ "title": 7 })).await;
        assert!(refusal(response).await.2.contains("in `title`"), "the field is named");

        // A body over the limit: 413 `too_large`, JSON, not the framework's plain text.
        let huge = json!({ "title": "x".repeat(3 * 1024 * 1024) });
        let (status, code, message) = refusal(admin.post_json_alone("/api/v1/cases", &huge).await).await;
        assert_eq!((status, code.as_str()), (StatusCode::PAYLOAD_TOO_LARGE, "too_large"), "{message}");

        // A malformed id is a 400, an unknown one a 404.
        let member = json!({ "role": "party", "side": "a", "display_name": "Anna" });
        let (status, code, message) = refusal(admin.post_json("/api/v1/rooms/abc/members", &member).await).await;
        assert_eq!((status, code.as_str()), (StatusCode::BAD_REQUEST, "bad_request"), "{message}");
        assert!(message.starts_with("Identificativo non valido"), "{message}");
        let (status, code, _) = refusal(admin.post_json("/api/v1/rooms/999/members", &member).await).await;
        assert_eq!((status, code.as_str()), (StatusCode::NOT_FOUND, "not_found"));
        let (status, code, _) = refusal(admin.get("/api/v1/cases/%FF").await).await;
        assert_eq!((status, code.as_str()), (StatusCode::BAD_REQUEST, "bad_request"));

        // A query parameter that is malformed is named; a missing one is explained.
        let document = with_csrf(&admin, Method::POST, &format!("/api/v1/cases/{case}/documents?name=a.pdf&shareable=forse")).await
            .body("%PDF");
        let (status, _, message) = refusal(document.send().await.unwrap()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(message, "Parametri della richiesta non validi: `shareable` non è previsto o ha un valore non valido.");
        let document = with_csrf(&admin, Method::POST, &format!("/api/v1/cases/{case}/documents")).await.body("%PDF");
        let (status, _, message) = refusal(document.send().await.unwrap()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(message, "Parametri della richiesta non validi: manca un parametro obbligatorio.");

        // A page's upload form that is not a readable multipart body: the Italian page.
        let csrf = admin.csrf_token().await;
        let page = admin.client
            .post(admin.url(&format!("/pratiche/{case}/documenti?csrf_token={csrf}")))
            .header("content-type", "multipart/form-data")
            .body("x")
            .send()
            .await
            .unwrap();
        let status = page.status();
        let html = page.text().await.unwrap();
        assert_eq!(status, StatusCode::BAD_REQUEST, "{html}");
        assert!(html.contains("Il modulo del documento non è leggibile."), "{html}");

        assert_eq!(app.audit_actions().await, before, "refusals change nothing");
    }
}
