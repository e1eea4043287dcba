//! Headers every answer carries: no page may be cached and no page may use the camera, the
//! microphone or the screen, except the room page for itself; static assets keep their caching.

use accordo_tests::reqwest::{Response, StatusCode};
use accordo_tests::room_client::token_of;
use accordo_tests::{both_backends, TestApp, CAST};

fn header<'a>(response: &'a Response, name: &str) -> &'a str {
    response
        .headers()
        .get(name)
        .map(|value| value.to_str().unwrap())
        .unwrap_or_else(|| panic!("{} has no {name}", response.url()))
}

fn assert_private_and_without_devices(response: &Response) {
    assert_eq!(
        header(response, "cache-control"),
        "no-store",
        "{}",
        response.url()
    );
    let policy = header(response, "permissions-policy");
    for feature in [
        "camera=()",
        "microphone=()",
        "display-capture=()",
        "geolocation=()",
    ] {
        assert!(policy.contains(feature), "{}: {policy}", response.url());
    }
}

both_backends! {
    async fn pages_and_api_answers_are_not_cached_and_use_no_devices(app: TestApp) {
        let anonymous = app.browser();
        for path in ["/login", "/nowhere", "/api/v1/me", "/healthz"] {
            assert_private_and_without_devices(&anonymous.get(path).await);
        }
        let admin = app.admin().await;
        for path in ["/", "/pratiche", "/api/v1/me", "/api/v1/cases", "/nowhere"] {
            let response = admin.get(path).await;
            assert_private_and_without_devices(&response);
        }
        let stylesheet = admin.get("/static/accordo.css").await;
        assert_eq!(stylesheet.status(), StatusCode::OK);
        assert_eq!(header(&stylesheet, "cache-control"), "public, max-age=3600");
    }

    async fn only_the_room_page_may_use_camera_microphone_and_screen(app: TestApp) {
        let office = app.admin().await;
        let setup = app.open_room(&office, &CAST, true).await;
        let room_page = app.browser().get(&format!("/r/{}", token_of(setup.link("party_a")))).await;
        assert_eq!(room_page.status(), StatusCode::OK);
        assert_eq!(header(&room_page, "cache-control"), "no-store");
        let policy = header(&room_page, "permissions-policy");
        for feature in ["camera=(self)", "microphone=(self)", "display-capture=(self)", "geolocation=()"] {
            assert!(policy.contains(feature), "{policy}");
        }
        assert!(!policy.contains("camera=()"), "{policy}");
    }
}
