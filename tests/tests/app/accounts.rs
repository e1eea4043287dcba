//! Accounts and access: login, first password change, lockout, CSRF, permissions, audit.

use accordo_tests::reqwest::StatusCode;
use accordo_tests::{both_backends, location, TestApp, TEST_PASSWORD};
use backoffice::platform::access::Role;

both_backends! {
    async fn the_first_admin_changes_the_one_time_password_then_sees_the_dashboard(app: TestApp) {
        let browser = app.browser();
        let login_page = browser.get("/login").await;
        assert_eq!(login_page.status(), StatusCode::OK);
        assert!(login_page.text().await.unwrap().contains("Accesso ad Accordo"));

        let response = browser.login("admin", &app.admin_password).await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
        assert_eq!(location(&response), "/password");
        let cookie = response.headers().get("set-cookie").unwrap().to_str().unwrap().to_owned();
        assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"), "{cookie}");

        // Every page sends a user on a one-time password back to the password form.
        let dashboard = browser.get("/").await;
        assert_eq!(location(&dashboard), "/password");

        let too_short = browser
            .post_form("/password", &[
                ("current_password", &app.admin_password),
                ("new_password", "corta"),
                ("confirm_password", "corta"),
            ])
            .await;
        assert_eq!(too_short.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert!(too_short.text().await.unwrap().contains("almeno 12 caratteri"));

        let wrong_current = browser
            .post_form("/password", &[
                ("current_password", "non è questa"),
                ("new_password", TEST_PASSWORD),
                ("confirm_password", TEST_PASSWORD),
            ])
            .await;
        assert!(wrong_current.text().await.unwrap().contains("La password attuale non è corretta."));

        browser.change_password(&app.admin_password, TEST_PASSWORD).await;
        let dashboard = browser.get("/").await;
        assert_eq!(dashboard.status(), StatusCode::OK);
        let html = dashboard.text().await.unwrap();
        assert!(html.contains("Scrivania") && html.contains("Amministratore"), "{html}");

        // The one-time password no longer works; the new one does.
        let again = app.browser();
        assert_eq!(again.login("admin", &app.admin_password).await.status(), StatusCode::UNAUTHORIZED);
        let ok = again.login("admin", TEST_PASSWORD).await;
        assert_eq!(location(&ok), "/");

        let actions = app.audit_actions().await;
        for expected in ["organism.created", "user.created", "user.login", "user.password_changed", "user.login_failed"] {
            assert!(actions.iter().any(|action| action == expected), "{expected} missing from {actions:?}");
        }
    }

    async fn a_wrong_password_and_an_unknown_user_get_the_same_answer(app: TestApp) {
        let browser = app.browser();
        let wrong = browser.login("admin", "password sbagliata").await;
        assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
        let wrong = wrong.text().await.unwrap();
        let unknown = browser.login("nessuno", "password sbagliata").await;
        assert_eq!(unknown.status(), StatusCode::UNAUTHORIZED);
        let unknown = unknown.text().await.unwrap();
        assert!(wrong.contains("Nome utente o password non corretti."));
        assert!(unknown.contains("Nome utente o password non corretti."));
        // Not logged in: the dashboard redirects to the login page.
        assert_eq!(location(&browser.get("/").await), "/login");
    }

    async fn five_failures_lock_the_account_from_that_address_for_a_minute(app: TestApp) {
        let (username, one_time) = app.create_user("mario.rossi", Role::Segreteria).await;
        let browser = app.browser();
        for _ in 0..5 {
            let response = browser.login(&username, "tentativo sbagliato").await;
            assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        }

        // Even the right password is refused while locked, with the answer of a wrong one.
        let right = browser.login(&username, &one_time).await;
        assert_eq!(right.status(), StatusCode::UNAUTHORIZED);
        assert!(right.text().await.unwrap().contains("Nome utente o password non corretti."));
        assert!(app.audit_actions().await.contains(&"user.locked".to_owned()));

        let reset = backoffice::platform::accounts::reset_password(
            &app.db,
            &backoffice::platform::audit::Actor::command_line(),
            backoffice::UnixMillis::now(),
            &username,
        )
        .await
        .unwrap();
        assert!(app.audit_actions().await.contains(&"user.password_reset".to_owned()));
        app.clock.advance(std::time::Duration::from_secs(61));
        let after_the_lock = browser.login(&username, reset.reveal()).await;
        assert_eq!(location(&after_the_lock), "/password");
    }

    async fn one_address_cannot_try_logins_without_limit(app: TestApp) {
        let browser = app.browser();
        for attempt in 0..20 {
            let response = browser.login(&format!("utente{attempt}"), "qualunque").await;
            assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        }
        let limited = browser.login("utente20", "qualunque").await;
        assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
        assert!(limited.headers().contains_key("retry-after"));
        assert!(limited.text().await.unwrap().contains("Troppi tentativi"));
    }

    async fn a_form_without_a_valid_csrf_token_is_refused_and_changes_nothing(app: TestApp) {
        let browser = app.browser();
        browser.get("/login").await;
        let before = app.audit_actions().await;
        let missing = browser
            .post_form_raw("/login", &[("username", "admin"), ("password", &app.admin_password)])
            .await;
        assert_eq!(missing.status(), StatusCode::FORBIDDEN);
        assert!(missing.text().await.unwrap().contains("Modulo scaduto"));

        // A token from another browser does not fit this browser's cookie.
        let other_token = app.browser().csrf_token().await;
        let foreign = browser
            .post_form_raw("/login", &[
                ("username", "admin"),
                ("password", &app.admin_password),
                ("csrf_token", &other_token),
            ])
            .await;
        assert_eq!(foreign.status(), StatusCode::FORBIDDEN);
        assert_eq!(app.audit_actions().await, before, "a refused form writes nothing");

        // A logged-in administrator's form needs the token too.
        let admin = app.admin().await;
        let users_before = backoffice::platform::accounts::count(&app.db).await.unwrap();
        let forged = admin
            .post_form_raw("/admin/users", &[("username", "intruso"), ("display_name", "X"), ("role", "admin")])
            .await;
        assert_eq!(forged.status(), StatusCode::FORBIDDEN);
        assert_eq!(backoffice::platform::accounts::count(&app.db).await.unwrap(), users_before);
    }

    async fn a_segreteria_clerk_is_denied_the_admin_pages_with_a_clear_page(app: TestApp) {
        let clerk = app.logged_in("segreteria1", Role::Segreteria).await;
        assert_eq!(clerk.get("/").await.status(), StatusCode::OK);
        for path in ["/admin/audit", "/admin/users"] {
            let denied = clerk.get(path).await;
            assert_eq!(denied.status(), StatusCode::FORBIDDEN, "{path}");
            assert!(denied.text().await.unwrap().contains("Accesso negato"));
        }
        let api = clerk.get("/api/v1/audit").await;
        assert_eq!(api.status(), StatusCode::FORBIDDEN);
        let body: serde_json::Value = api.json().await.unwrap();
        assert_eq!(body["error"], "forbidden");
        let me: serde_json::Value = clerk.get("/api/v1/me").await.json().await.unwrap();
        assert_eq!(me["role"], "segreteria");

        let anonymous = app.browser().get("/api/v1/me").await;
        assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
        let body: serde_json::Value = anonymous.json().await.unwrap();
        assert_eq!(body["error"], "unauthenticated");
    }

    async fn a_bodys_administrator_lists_only_the_bodys_users(app: TestApp) {
        let admin = app.admin().await;
        let ours: Option<String> =
            sqlx::query_scalar("SELECT organism_id FROM users WHERE username = 'admin'")
                .fetch_one(app.db.pool())
                .await
                .unwrap();
        app.create_user_in("segreteria.nostra", Role::Segreteria, ours.as_deref())
            .await;
        let other = app.other_organism().await;
        app.create_user_in("segreteria.altrui", Role::Segreteria, Some(&other))
            .await;
        let page = admin.get("/admin/users").await;
        assert_eq!(page.status(), StatusCode::OK);
        let page = page.text().await.unwrap();
        assert!(page.contains("segreteria.nostra"), "{page}");
        assert!(!page.contains("segreteria.altrui"), "another body's user is listed");
    }

    async fn every_change_leaves_an_audit_record_that_cannot_be_altered(app: TestApp) {
        let admin = app.admin().await;
        let created = admin
            .post_form("/admin/users", &[("username", "avv.bianchi"), ("display_name", "Laura Bianchi"), ("role", "mediatore")])
            .await;
        assert_eq!(created.status(), StatusCode::OK);
        let html = created.text().await.unwrap();
        assert!(html.contains("password provvisoria"), "{html}");

        let duplicate = admin
            .post_form("/admin/users", &[("username", "avv.bianchi"), ("display_name", "Altra"), ("role", "mediatore")])
            .await;
        assert_eq!(duplicate.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert!(duplicate.text().await.unwrap().contains("Esiste già un utente con questo nome."));

        let records = backoffice::platform::audit::recent(app.db.pool(), None, 100).await.unwrap();
        let creation = records.iter().find(|record| record.action == "user.created" && record.actor == "admin").unwrap();
        assert_eq!(creation.ip.as_deref(), Some("127.0.0.1"));
        assert!(creation.changes.iter().any(|change| change.field == "role" && change.after.as_deref() == Some("mediatore")));

        let audit_page = admin.get("/admin/audit").await.text().await.unwrap();
        assert!(audit_page.contains("Utente creato") && audit_page.contains("role: — → mediatore"), "{audit_page}");

        let logout = admin.post_form("/logout", &[]).await;
        assert_eq!(location(&logout), "/login");
        assert_eq!(location(&admin.get("/").await), "/login", "the session is over");
        assert_eq!(app.audit_actions().await.last().map(String::as_str), Some("user.logout"));

        // The database itself refuses to rewrite or delete history.
        let update = sqlx::query("UPDATE audit_log SET actor = 'qualcun altro'").execute(app.db.pool()).await;
        assert!(update.is_err(), "audit_log rows cannot be updated");
        let delete = sqlx::query("DELETE FROM audit_log").execute(app.db.pool()).await;
        assert!(delete.is_err(), "audit_log rows cannot be deleted");
        let delete = sqlx::query("DELETE FROM audit_changes").execute(app.db.pool()).await;
        assert!(delete.is_err(), "audit_changes rows cannot be deleted");
    }
}
