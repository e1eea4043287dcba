//! Sessions and login: other sessions end with a password change, locks per account and
//! address with growing delays and one answer for every refusal, the client behind a trusted
//! proxy, the idle timeout, CSRF tokens bound to the session, the limiter shared through Redis.

use std::time::Duration;

use accordo_tests::reqwest::{Response, StatusCode};
use accordo_tests::{
    both_backends, location, spawn_app_custom, spawn_app_with, Backend, Browser, Fixture,
    SignalingSettings, TestApp, TEST_PASSWORD,
};
use backoffice::platform::access::Role;
use backoffice::platform::audit::Actor;
use backoffice::UnixMillis;

/// The proxy the tests' requests come through (the test server sees 127.0.0.1).
fn behind_the_local_proxy(config: &mut web::config::Config) {
    config.trusted_proxies = vec!["127.0.0.1".to_owned()];
}

/// A server that believes `X-Forwarded-For` from 127.0.0.1, so that a test speaks for clients
/// at several addresses.
struct BehindProxy(TestApp);

impl Fixture for BehindProxy {
    async fn create(backend: Backend) -> Self {
        Self(spawn_app_with(backend, behind_the_local_proxy).await)
    }
}

/// Submits the login form from `client` (an address the trusted proxy forwards).
async fn login_from(browser: &Browser, client: &str, username: &str, password: &str) -> Response {
    let token = browser.csrf_token().await;
    browser
        .client
        .post(browser.url("/login"))
        .header("x-forwarded-for", client)
        .form(&[
            ("username", username),
            ("password", password),
            ("csrf_token", &token),
        ])
        .send()
        .await
        .unwrap()
}

/// A refused login: status and the page's text with the echoed username taken out.
async fn refusal(response: Response, username: &str) -> (StatusCode, String) {
    let status = response.status();
    (
        status,
        response.text().await.unwrap().replace(username, "USERNAME"),
    )
}

/// A user past the first password change, with the test password.
async fn user_with_test_password(app: &TestApp, username: &str) -> String {
    let (username, one_time) = app.create_user(username, Role::Segreteria).await;
    let browser = app.browser();
    browser.login(&username, &one_time).await;
    browser.change_password(&one_time, TEST_PASSWORD).await;
    username
}

both_backends! {
    async fn a_password_change_ends_every_other_session_of_the_user(app: TestApp) {
        let username = user_with_test_password(&app, "mario.rossi").await;
        let laptop = app.browser();
        assert_eq!(location(&laptop.login(&username, TEST_PASSWORD).await), "/");
        let stolen = app.browser();
        assert_eq!(location(&stolen.login(&username, TEST_PASSWORD).await), "/");

        laptop.change_password(TEST_PASSWORD, "un'altra frase lunga e nuova").await;
        assert_eq!(laptop.get("/").await.status(), StatusCode::OK, "the changing session stays");
        assert_eq!(location(&stolen.get("/").await), "/login", "every other session ends");

        // An administrator's reset ends every session, the user's own included.
        backoffice::platform::accounts::reset_password(&app.db, &Actor::command_line(), UnixMillis::now(), &username)
            .await
            .unwrap();
        assert_eq!(location(&laptop.get("/").await), "/login");
    }

    async fn an_attacker_locks_only_their_own_address_out_for_growing_delays(app: BehindProxy) {
        let BehindProxy(app) = app;
        let username = user_with_test_password(&app, "mario.rossi").await;
        let attacker = app.browser();
        let wrong = "non è la password";
        for _ in 0..5 {
            let refused = login_from(&attacker, "203.0.113.9", &username, wrong).await;
            assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
        }
        // Locked for a minute: even the right password is refused from the attacker's address…
        let locked = login_from(&attacker, "203.0.113.9", &username, TEST_PASSWORD).await;
        assert_eq!(locked.status(), StatusCode::UNAUTHORIZED);
        // …but not from the owner's.
        let owner = app.browser();
        assert_eq!(location(&login_from(&owner, "198.51.100.20", &username, TEST_PASSWORD).await), "/");

        let records = backoffice::platform::audit::recent(app.db.pool(), None, 100).await.unwrap();
        let lock = records.iter().find(|record| record.action == "user.locked").expect("the lock is audited");
        assert_eq!(lock.ip.as_deref(), Some("203.0.113.9"));

        // After the minute, one more failure locks for two minutes.
        app.clock.advance(Duration::from_secs(61));
        let sixth = login_from(&attacker, "203.0.113.9", &username, wrong).await;
        assert_eq!(sixth.status(), StatusCode::UNAUTHORIZED);
        app.clock.advance(Duration::from_secs(61));
        let still = login_from(&attacker, "203.0.113.9", &username, TEST_PASSWORD).await;
        assert_eq!(still.status(), StatusCode::UNAUTHORIZED, "the second lock lasts two minutes");
        app.clock.advance(Duration::from_secs(60));
        let after = login_from(&attacker, "203.0.113.9", &username, TEST_PASSWORD).await;
        assert_eq!(location(&after), "/");
    }

    async fn an_unknown_user_a_wrong_password_and_a_lock_get_one_answer(app: TestApp) {
        let username = user_with_test_password(&app, "mario.rossi").await;
        let browser = app.browser();
        let unknown = refusal(browser.login("nessuno.qui", "qualunque cosa").await, "nessuno.qui").await;
        let wrong = refusal(browser.login(&username, "qualunque cosa").await, &username).await;
        for _ in 0..4 {
            browser.login(&username, "qualunque cosa").await;
        }
        let locked = refusal(browser.login(&username, TEST_PASSWORD).await, &username).await;
        assert_eq!(unknown.0, StatusCode::UNAUTHORIZED);
        assert_eq!(wrong, unknown);
        assert_eq!(locked, unknown);
        assert!(unknown.1.contains("Nome utente o password non corretti."), "{}", unknown.1);
    }

    async fn without_trusted_proxies_the_forwarded_header_is_ignored(app: TestApp) {
        let browser = app.browser();
        login_from(&browser, "203.0.113.7", "admin", &app.admin_password).await;
        let records = backoffice::platform::audit::recent(app.db.pool(), None, 10).await.unwrap();
        assert_eq!(records.iter().find(|record| record.action == "user.login").unwrap().ip.as_deref(), Some("127.0.0.1"));
    }

    async fn the_client_behind_a_trusted_proxy_is_limited_and_audited(app: BehindProxy) {
        let BehindProxy(app) = app;
        let browser = app.browser();
        for attempt in 0..20 {
            let response = login_from(&browser, "203.0.113.7", &format!("utente{attempt}"), "qualunque").await;
            assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        }
        let limited = login_from(&browser, "203.0.113.7", "utente20", "qualunque").await;
        assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
        // Another client behind the same proxy is not limited for it.
        let other = login_from(&browser, "198.51.100.20", "admin", &app.admin_password).await;
        assert_eq!(location(&other), "/password");
        let records = backoffice::platform::audit::recent(app.db.pool(), None, 10).await.unwrap();
        assert_eq!(records.iter().find(|record| record.action == "user.login").unwrap().ip.as_deref(), Some("198.51.100.20"));
    }

    async fn password_change_attempts_are_limited(app: TestApp) {
        let username = user_with_test_password(&app, "mario.rossi").await;
        let browser = app.browser();
        browser.login(&username, TEST_PASSWORD).await;
        let attempt = |current: &'static str| {
            let browser = browser.clone();
            async move {
                browser
                    .post_form("/password", &[
                        ("current_password", current),
                        ("new_password", "un'altra frase lunga e nuova"),
                        ("confirm_password", "un'altra frase lunga e nuova"),
                    ])
                    .await
                    .status()
            }
        };
        for _ in 0..5 {
            assert_eq!(attempt("non è questa").await, StatusCode::UNPROCESSABLE_ENTITY);
        }
        assert_eq!(attempt(TEST_PASSWORD).await, StatusCode::TOO_MANY_REQUESTS);
        app.clock.advance(Duration::from_secs(61));
        assert_eq!(attempt(TEST_PASSWORD).await, StatusCode::SEE_OTHER);
    }

    async fn a_staff_session_ends_after_thirty_idle_minutes(app: TestApp) {
        let browser = app.logged_in("mario.rossi", Role::Segreteria).await;
        app.clock.advance(Duration::from_secs(29 * 60));
        assert_eq!(browser.get("/").await.status(), StatusCode::OK, "a request resets the idle time");
        app.clock.advance(Duration::from_secs(29 * 60));
        assert_eq!(browser.get("/").await.status(), StatusCode::OK);
        app.clock.advance(Duration::from_secs(31 * 60));
        assert_eq!(location(&browser.get("/").await), "/login");
    }

    async fn the_csrf_token_is_bound_to_the_session_and_renewed_at_login_and_logout(app: TestApp) {
        let browser = app.browser();
        let before_login = browser.csrf_token().await;
        let login = browser.login("admin", &app.admin_password).await;
        let renewed = login.headers().get_all("set-cookie").iter().any(|cookie| cookie.to_str().unwrap().starts_with("accordo_csrf="));
        assert!(renewed, "the login renews the CSRF cookie");
        let after_login = browser.csrf_token().await;
        assert_ne!(after_login, before_login);
        let fields = |token: &str| {
            vec![
                ("current_password".to_owned(), app.admin_password.clone()),
                ("new_password".to_owned(), TEST_PASSWORD.to_owned()),
                ("confirm_password".to_owned(), TEST_PASSWORD.to_owned()),
                ("csrf_token".to_owned(), token.to_owned()),
            ]
        };
        let stale = browser.client.post(browser.url("/password")).form(&fields(&before_login)).send().await.unwrap();
        assert_eq!(stale.status(), StatusCode::FORBIDDEN, "a token from before the login is void");
        let fresh = browser.client.post(browser.url("/password")).form(&fields(&after_login)).send().await.unwrap();
        assert_eq!(location(&fresh), "/");

        // Bound to the session: with this browser's CSRF cookie but another session, this
        // browser's token is void.
        let in_session = browser.csrf_token().await;
        let other = app.logged_in("mario.rossi", Role::Segreteria).await;
        let other_cookies = other.cookie_header();
        let other_session = other_cookies.split("; ").find(|cookie| cookie.starts_with("accordo_session=")).unwrap();
        let own_cookies = browser.cookie_header();
        let own_csrf = own_cookies.split("; ").find(|cookie| cookie.starts_with("accordo_csrf=")).unwrap();
        let mixed = accordo_tests::reqwest::Client::builder()
            .redirect(accordo_tests::reqwest::redirect::Policy::none())
            .build()
            .unwrap()
            .post(browser.url("/logout"))
            .header("cookie", format!("{own_csrf}; {other_session}"))
            .form(&[("csrf_token", in_session.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(mixed.status(), StatusCode::FORBIDDEN, "a token is worth nothing with another session");
        assert_eq!(other.get("/").await.status(), StatusCode::OK);

        let logout = browser.post_form("/logout", &[]).await;
        assert_eq!(location(&logout), "/login");
        let after_logout = browser.csrf_token().await;
        assert_ne!(after_logout, in_session);
        let stale = browser
            .post_form_raw("/login", &[("username", "admin"), ("password", TEST_PASSWORD), ("csrf_token", &in_session)])
            .await;
        assert_eq!(stale.status(), StatusCode::FORBIDDEN, "a token from before the logout is void");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_redis_a_lock_holds_on_every_node() {
    let app = spawn_app_custom(
        Backend::Postgres,
        |config| {
            config.redis_url = Some("redis://127.0.0.1:6379".to_owned());
            behind_the_local_proxy(config);
        },
        SignalingSettings::default(),
    )
    .await;
    let node_b = app.start_node().await;
    let username = user_with_test_password(&app, "mario.rossi").await;
    let on_a = app.browser();
    for _ in 0..5 {
        login_from(&on_a, "203.0.113.9", &username, "non è la password").await;
    }
    let on_b = Browser::new(&node_b.address);
    let refused = login_from(&on_b, "203.0.113.9", &username, TEST_PASSWORD).await;
    assert_eq!(
        refused.status(),
        StatusCode::UNAUTHORIZED,
        "node B sees A's lock"
    );
    let owner = login_from(&on_b, "198.51.100.20", &username, TEST_PASSWORD).await;
    assert_eq!(location(&owner), "/");

    // The attempts of one address are counted over both nodes.
    for attempt in 0..20 {
        let node = if attempt % 2 == 0 { &on_a } else { &on_b };
        let response =
            login_from(node, "192.0.2.50", &format!("utente{attempt}"), "qualunque").await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
    let limited = login_from(&on_b, "192.0.2.50", "utente20", "qualunque").await;
    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_idle_timeout_is_configurable() {
    let app = spawn_app_with(Backend::Sqlite, |config| {
        config.session_idle_timeout_mins = 5
    })
    .await;
    let browser = app.logged_in("mario.rossi", Role::Segreteria).await;
    app.clock.advance(Duration::from_secs(6 * 60));
    assert_eq!(location(&browser.get("/").await), "/login");
}
