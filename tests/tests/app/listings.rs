//! The listings an integration reads: people, mediators and meetings of its own body, limited,
//! never another body's.

use accordo_tests::reqwest::StatusCode;
use accordo_tests::{both_backends, Browser, TestApp};
use backoffice::platform::access::Role;
use serde_json::{json, Value};

/// 12 March 2027, 10:00 in Rome (09:00 UTC).
const TEN: i64 = 1_804_842_000_000;
const DAY: i64 = 24 * 60 * 60 * 1000;

async fn post(office: &Browser, path: &str, body: Value) -> Value {
    let response = office.post_json(path, &body).await;
    assert_eq!(response.status(), StatusCode::CREATED, "{path}");
    response.json().await.expect("JSON")
}

async fn get(office: &Browser, path: &str) -> (StatusCode, Value) {
    let response = office.get(path).await;
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// A body's work: two people, a mediator, a case with a meeting at `TEN`; `tag` marks each.
async fn body_work(office: &Browser, tag: &str) {
    for (given, family) in [("Mario", tag), ("Anna", "Bianchi")] {
        let person = json!({ "kind": "natural", "given_name": given, "family_name": family, "confirm_not_duplicate": true });
        post(office, "/api/v1/people", person).await;
    }
    let mediator = post(
        office,
        "/api/v1/mediators",
        json!({ "display_name": format!("Avv. {tag}"), "subjects": ["locazione"] }),
    )
    .await;
    let case = post(
        office,
        "/api/v1/cases",
        json!({ "title": format!("Pratica {tag}") }),
    )
    .await;
    let meetings = format!(
        "/api/v1/cases/{}/meetings",
        case["id"].as_str().expect("case")
    );
    let meeting = json!({ "starts_at": TEN, "duration_minutes": 60, "mediator": mediator["id"] });
    post(office, &meetings, meeting).await;
}

fn names(listed: &Value, key: &str, field: &str) -> Vec<String> {
    listed[key]
        .as_array()
        .into_iter()
        .flatten()
        .map(|item| item[field].as_str().unwrap_or_default().to_owned())
        .collect()
}

both_backends! {
    async fn each_body_lists_its_own_people_mediators_and_meetings(app: TestApp) {
        let a = app.logged_in("segreteria.a", Role::Segreteria).await;
        let other = app.other_organism().await;
        let b = app.logged_in_at("segreteria.b", Role::Segreteria, Some(&other)).await;
        body_work(&a, "Rossi").await;
        body_work(&b, "Verdi").await;

        let (status, people) = get(&a, "/api/v1/people").await;
        assert_eq!(status, StatusCode::OK, "{people}");
        assert_eq!(names(&people, "people", "display_name"), ["Bianchi Anna", "Rossi Mario"]);
        assert_eq!(people["more"], false);
        let (_, people) = get(&b, "/api/v1/people?q=mario").await;
        assert_eq!(names(&people, "people", "display_name"), ["Verdi Mario"]);
        let (_, people) = get(&a, "/api/v1/people?limit=1").await;
        assert_eq!((names(&people, "people", "display_name").len(), &people["more"]), (1, &json!(true)));
        for bad in ["/api/v1/people?limit=0", "/api/v1/people?limit=201", "/api/v1/people?limit=tanti"] {
            let (status, body) = get(&a, bad).await;
            assert_eq!((status, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("bad_request")), "{bad}: {body}");
        }

        let (status, mediators) = get(&a, "/api/v1/mediators").await;
        assert_eq!(status, StatusCode::OK, "{mediators}");
        assert_eq!(names(&mediators, "mediators", "display_name"), ["Avv. Rossi"]);
        let (_, mediators) = get(&b, "/api/v1/mediators").await;
        assert_eq!(names(&mediators, "mediators", "display_name"), ["Avv. Verdi"]);

        let window = format!("/api/v1/meetings?from={}&to={}", TEN - DAY, TEN + DAY);
        let (status, meetings) = get(&a, &window).await;
        assert_eq!(status, StatusCode::OK, "{meetings}");
        assert_eq!(names(&meetings, "meetings", "case_title"), ["Pratica Rossi"]);
        assert_eq!(meetings["meetings"][0]["mediator"], "Avv. Rossi");
        let (_, meetings) = get(&b, &window).await;
        assert_eq!(names(&meetings, "meetings", "case_title"), ["Pratica Verdi"]);
        let (_, meetings) = get(&a, &format!("/api/v1/meetings?from={}&to={}", TEN + DAY, TEN + 2 * DAY)).await;
        assert_eq!(meetings["meetings"], json!([]));
        for bad in [
            format!("/api/v1/meetings?from={TEN}&to={TEN}"),
            format!("/api/v1/meetings?from={TEN}&to={}", TEN + 400 * DAY),
            format!("/api/v1/meetings?from={TEN}"),
        ] {
            let (status, body) = get(&a, &bad).await;
            assert_eq!((status, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("bad_request")), "{bad}: {body}");
        }

        // A mediator's login (no `view_all_cases`) reads no meeting of others.
        let mediator = app.logged_in("mediatore.a", Role::Mediatore).await;
        let (status, meetings) = get(&mediator, &window).await;
        assert_eq!(status, StatusCode::OK, "{meetings}");
        assert_eq!(meetings["meetings"], json!([]));
        let (status, _) = get(&mediator, "/api/v1/people").await;
        assert_eq!(status, StatusCode::FORBIDDEN);
    }
}
