//! Every state-changing route is behind the CSRF check: the test walks the server's own route
//! table (`web::server::route_table()`), not a few examples, so a route added tomorrow is
//! covered too. The only exemption is an `/api/` call with an `Authorization: Bearer` header
//! (an API token, or a room link's token on the room-file routes named here): no ambient
//! credential, judged by the token alone (`web::http::csrf::credential`).

use accordo_tests::reqwest::{Method, StatusCode};
use accordo_tests::{concrete_path, spawn_app, Backend};

/// The routes that authenticate with a link token in `Authorization: Bearer` and are therefore
/// exempt from CSRF when (and only when) that header is present.
const LINK_TOKEN_ROUTES: [&str; 2] = [
    "/api/v1/room-files",
    "/api/v1/room-case-documents/{document}/copy",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_state_changing_route_refuses_a_request_without_a_valid_token() {
    let app = spawn_app(Backend::Sqlite).await;
    let admin = app.admin().await;
    let foreign_token = app.browser().csrf_token().await;
    let table = web::server::route_table();
    let changing: Vec<_> = table.iter().filter(|route| route.changes_state()).collect();
    assert!(
        changing.len() > 40,
        "the route table was read: {} state-changing routes",
        changing.len()
    );
    let before = app.audit_actions().await;
    for route in changing {
        let url = admin.url(&concrete_path(route.path));
        let method = Method::from_bytes(route.method.as_str().as_bytes()).expect("a method");
        let cookies = admin.cookie_header();
        for token in [None, Some(foreign_token.as_str())] {
            let client = accordo_tests::reqwest::Client::new();
            let mut request = client
                .request(method.clone(), &url)
                .header("cookie", &cookies)
                .header("content-type", "application/json")
                .body("{}");
            if let Some(token) = token {
                request = request.header("x-csrf-token", token);
            }
            let response = request.send().await.expect("request");
            let status = response.status();
            let body = response.text().await.unwrap_or_default();
            assert_eq!(
                status,
                StatusCode::FORBIDDEN,
                "{} {} with token {token:?} answered {status}: {body}",
                route.method,
                route.path
            );
            assert!(
                body.contains("\"csrf\"") || body.contains("Modulo scaduto"),
                "{} {} was refused for another reason: {body}",
                route.method,
                route.path
            );
        }
    }
    assert_eq!(
        app.audit_actions().await,
        before,
        "refused requests change nothing"
    );
    // The exemption is exactly the link-token routes, and only with their header.
    for path in LINK_TOKEN_ROUTES {
        assert!(
            table
                .iter()
                .any(|route| route.path == path && route.method.as_str() == "POST"),
            "{path} is a route"
        );
        let response = accordo_tests::reqwest::Client::new()
            .post(admin.url(&concrete_path(path)))
            .header("authorization", "Bearer not-a-link")
            .send()
            .await
            .expect("request");
        assert_ne!(
            response.status(),
            StatusCode::FORBIDDEN,
            "{path} with a bearer token is judged by the token, not by CSRF"
        );
    }
}
