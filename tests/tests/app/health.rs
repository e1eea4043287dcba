//! Health, readiness, metrics, request ids, security headers, TLS.

use accordo_tests::reqwest::{Method, StatusCode};
use accordo_tests::{both_backends, spawn_app_with, Backend, TestApp, TEST_METRICS_TOKEN};

both_backends! {
    async fn health_readiness_and_metrics_answer(app: TestApp) {
        let browser = app.browser();
        assert_eq!(browser.get("/healthz").await.text().await.unwrap(), "ok");
        let ready = browser.get("/readyz").await;
        assert_eq!(ready.status(), StatusCode::OK);
        assert_eq!(ready.text().await.unwrap(), "database: ok\nfiles: ok\n");

        browser.get("/login").await;
        browser.get("/nowhere").await;
        let metrics = app.metrics().await;
        assert!(metrics.contains(r#"accordo_http_requests_total{method="GET",route="/login",status="200"} 1"#), "{metrics}");
        assert!(metrics.contains(r#"route="unmatched",status="404""#), "{metrics}");
        assert!(metrics.contains("accordo_http_request_duration_seconds_bucket"));
    }

    async fn requests_carry_an_id_and_security_headers(app: TestApp) {
        let browser = app.browser();
        let generated = browser.get("/login").await;
        let id = generated.headers()["x-request-id"].to_str().unwrap();
        assert_eq!(id.len(), 36, "a UUID: {id}");
        assert_eq!(generated.headers()["referrer-policy"], "no-referrer");
        assert_eq!(generated.headers()["x-frame-options"], "DENY");

        let kept = browser.client.get(browser.url("/healthz")).header("x-request-id", "prova-123").send().await.unwrap();
        assert_eq!(kept.headers()["x-request-id"], "prova-123");
        let replaced = browser.client.get(browser.url("/healthz")).header("x-request-id", "<script>").send().await.unwrap();
        assert_ne!(replaced.headers()["x-request-id"], "<script>");

        let missing = browser.get("/nowhere").await;
        assert_eq!(missing.status(), StatusCode::NOT_FOUND);
        assert!(missing.text().await.unwrap().contains("Pagina non trovata"));
    }

    async fn readiness_fails_when_the_database_is_gone(app: TestApp) {
        app.db.close().await;
        let ready = app.browser().get("/readyz").await;
        assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(ready.text().await.unwrap().contains("database: unavailable"));
    }
}

#[tokio::test]
async fn a_self_signed_certificate_serves_https_with_secure_cookies() {
    let app = spawn_app_with(Backend::Sqlite, |config| {
        config.tls = web::config::TlsMode::SelfSigned;
    })
    .await;
    assert!(app.address.starts_with("https://"));
    let response = app.browser().get("/login").await;
    assert_eq!(response.status(), StatusCode::OK);
    let cookie = response.headers()["set-cookie"].to_str().unwrap();
    assert!(cookie.ends_with("; Secure"), "{cookie}");
    assert!(response.headers().contains_key("strict-transport-security"));
    assert!(app.data_dir().join("tls/self-signed.crt").is_file());
}

#[tokio::test]
async fn metrics_are_for_the_scraper_with_the_token_only() {
    let app = spawn_app_with(Backend::Sqlite, |_| {}).await;
    let browser = app.browser();
    let metrics = |token: Option<&'static str>| {
        let mut request = browser.client.get(browser.url("/metrics"));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        async move { request.send().await.unwrap() }
    };
    assert_eq!(metrics(None).await.status(), StatusCode::UNAUTHORIZED);
    let wrong = metrics(Some("token-di-prova-per-le-metrichE")).await;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(wrong.headers()["www-authenticate"], "Bearer");
    assert_eq!(
        metrics(Some(TEST_METRICS_TOKEN)).await.status(),
        StatusCode::OK
    );

    // A method nobody uses counts as `other`: clients cannot add series at will.
    let invented = Method::from_bytes(b"INVENTATO").unwrap();
    browser
        .client
        .request(invented, browser.url("/login"))
        .send()
        .await
        .unwrap();
    let text = app.metrics().await;
    assert!(text.contains(r#"method="other""#), "{text}");
    assert!(!text.contains("INVENTATO"), "{text}");

    // Without a token configured there is nothing to scrape.
    let closed = spawn_app_with(Backend::Sqlite, |config| config.metrics_token = None).await;
    let answer = closed.browser().get("/metrics").await;
    assert_eq!(answer.status(), StatusCode::NOT_FOUND);
}
