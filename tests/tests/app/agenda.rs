//! The agenda: a meeting is refused when its mediator or its room is already taken at that
//! time, with an explanation; back-to-back meetings and online meetings elsewhere are fine.

use accordo_tests::reqwest::StatusCode;
use accordo_tests::{both_backends, Browser, TestApp, TestDb};
use backoffice::mediation::agenda::{self, AgendaError, NewMeeting};
use backoffice::mediation::cases;
use backoffice::mediation::mediators;
use backoffice::platform::access::Role;
use backoffice::platform::audit::Actor;
use backoffice::UnixMillis;
use serde_json::{json, Value};

/// 12 March 2027, 10:00 in Rome (09:00 UTC).
const TEN: i64 = 1_804_842_000_000;
const MINUTE: i64 = 60_000;

async fn post(office: &Browser, path: &str, body: Value) -> (StatusCode, Value) {
    let response = office.post_json(path, &body).await;
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

both_backends! {
    async fn meetings_that_clash_on_mediator_or_room_are_refused_with_the_reason(app: TestApp) {
        let office = app.logged_in("segreteria1", Role::Segreteria).await;
        let (_, room) = post(&office, "/api/v1/places", json!({ "sede": "Sede di Roma", "room": "Sala 1" })).await;
        let room = room["id"].as_str().expect("room").to_owned();
        let mut mediators = Vec::new();
        for name in ["Avv. Anna Neri", "Avv. Bruno Gialli"] {
            let (_, mediator) = post(&office, "/api/v1/mediators", json!({ "display_name": name, "subjects": ["locazione"] })).await;
            mediators.push(mediator["id"].as_str().expect("mediator").to_owned());
        }
        let (_, case) = post(&office, "/api/v1/cases", json!({ "title": "Locazione via Roma" })).await;
        let meetings = format!("/api/v1/cases/{}/meetings", case["id"].as_str().expect("case"));
        let meeting = |starts_at: i64, place: Option<&str>, mediator: &str| {
            json!({ "starts_at": starts_at, "duration_minutes": 60, "place": place, "mediator": mediator })
        };

        let (status, first) = post(&office, &meetings, meeting(TEN, Some(&room), &mediators[0])).await;
        assert_eq!(status, StatusCode::CREATED, "{first}");

        // Anna at 10:30, online: she is busy until 11:00.
        let (status, refused) = post(&office, &meetings, meeting(TEN + 30 * MINUTE, None, &mediators[0])).await;
        assert_eq!(status, StatusCode::CONFLICT, "{refused}");
        assert_eq!(refused["conflicts"][0]["kind"], "mediator");
        assert_eq!(
            refused["conflicts"][0]["explanation"],
            format!("Il mediatore ha già un incontro dal 12/03/2027 10:00 al 12/03/2027 11:00 (pratica {}).", refused["conflicts"][0]["case"].as_str().unwrap_or_default())
        );
        // Bruno at 10:30 in the same room: the room is taken.
        let (status, refused) = post(&office, &meetings, meeting(TEN + 30 * MINUTE, Some(&room), &mediators[1])).await;
        assert_eq!(status, StatusCode::CONFLICT, "{refused}");
        assert_eq!(refused["conflicts"][0]["kind"], "room");

        // Anna right after, in the same room; Bruno online at 10:30: both fine.
        let (status, _) = post(&office, &meetings, meeting(TEN + 60 * MINUTE, Some(&room), &mediators[0])).await;
        assert_eq!(status, StatusCode::CREATED);
        let (status, _) = post(&office, &meetings, meeting(TEN + 30 * MINUTE, None, &mediators[1])).await;
        assert_eq!(status, StatusCode::CREATED);

        // Anna's calendar application reads her two meetings from her feed, and nothing else.
        let (status, feed) = post(&office, &format!("/api/v1/mediators/{}/calendar", mediators[0]), json!({})).await;
        assert_eq!(status, StatusCode::CREATED, "{feed}");
        let url = feed["url"].as_str().expect("url");
        let path = &url[url.find("/calendar/").expect("a feed URL")..];
        let calendar = app.browser().get(path).await;
        assert_eq!(calendar.headers()["content-type"], "text/calendar; charset=utf-8");
        let calendar = calendar.text().await.expect("iCalendar");
        assert_eq!(calendar.matches("BEGIN:VEVENT").count(), 2, "{calendar}");
        assert!(calendar.contains("DTSTART:20270312T090000Z\r\n"), "{calendar}");
        assert!(calendar.contains("LOCATION:Sede di Roma – Sala 1"), "{calendar}");
        // A new feed replaces it; a forged one is unknown.
        let (status, _) = post(&office, &format!("/api/v1/mediators/{}/calendar", mediators[0]), json!({})).await;
        assert_eq!(status, StatusCode::CREATED);
        assert_eq!(app.browser().get(path).await.status(), StatusCode::NOT_FOUND);
        assert_eq!(app.browser().get(&format!("/calendar/{}", "A".repeat(43))).await.status(), StatusCode::NOT_FOUND);

        // Nonsense is refused.
        let (status, _) = post(&office, &meetings, json!({ "starts_at": TEN, "duration_minutes": 0 })).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(app.audit_actions().await.iter().filter(|action| *action == "meeting.scheduled").count(), 3);
    }

    async fn twenty_clerks_booking_one_mediator_at_once_get_one_meeting(db: TestDb) {
        let actor = Actor::system();
        let now = UnixMillis(TEN);
        let mediator = mediators::add(&db.db, &actor, now, None, &mediators::Profile { display_name: "Avv. Anna Neri", subjects: &["locazione".to_owned()], ..Default::default() })
            .await
            .expect("mediator");
        let case = cases::register(&db.db, &actor, now, None, 2027, "Locazione").await.expect("case");
        let bookings = (0..20).map(|_| {
            let (db, actor, case, mediator) = (db.db.clone(), actor.clone(), case.id.clone(), mediator.id.clone());
            tokio::spawn(async move {
                let meeting = NewMeeting {
                    case_id: &case,
                    starts_at: UnixMillis(TEN),
                    ends_at: UnixMillis(TEN + 60 * MINUTE),
                    place: None,
                    mediator: Some(&mediator),
                };
                agenda::schedule(&db, &actor, now, &meeting).await
            })
        });
        let mut booked = 0;
        for booking in bookings.collect::<Vec<_>>() {
            match booking.await.expect("task") {
                Ok(_) => booked += 1,
                Err(AgendaError::Conflicts(_)) => {}
                Err(other) => panic!("a booking failed instead of being refused: {other}"),
            }
        }
        assert_eq!(booked, 1);
    }
}
