//! Case numbers: per organism and year, from 1, without gaps or duplicates.

use std::collections::BTreeSet;

use accordo_tests::reqwest::StatusCode;
use accordo_tests::{both_backends, TestApp, TestDb};
use backoffice::mediation::cases;
use backoffice::platform::access::Role;
use backoffice::platform::audit::Actor;
use backoffice::UnixMillis;
use serde_json::{json, Value};

both_backends! {
    async fn two_hundred_cases_registered_at_once_get_numbers_one_to_two_hundred(db: TestDb) {
        let actor = Actor::system();
        let now = UnixMillis(1_790_000_000_000);
        let registrations = (0..200).map(|i| {
            let db = db.db.clone();
            let actor = actor.clone();
            tokio::spawn(async move {
                cases::register(&db, &actor, now, None, 2026, &format!("Pratica {i}")).await
            })
        });
        let mut numbers = BTreeSet::new();
        for registration in registrations.collect::<Vec<_>>() {
            let case = registration.await.expect("task").expect("registered");
            let (number, year) = case.reference.as_str().split_once('/').expect("NUMBER/YEAR");
            assert_eq!(year, "2026");
            assert!(numbers.insert(number.parse::<u32>().expect("a number")), "{number} twice");
        }
        assert_eq!(numbers, (1..=200).collect::<BTreeSet<u32>>(), "no gaps, no duplicates");

        // A new year starts again from 1.
        let next_year = cases::register(&db.db, &actor, now, None, 2027, "Prima del 2027").await.expect("registered");
        assert_eq!(next_year.reference.as_str(), "1/2027");
        // A registration that fails after taking its number gives it back (one transaction).
        let unknown = cases::register(&db.db, &actor, now, Some("nessun-organismo"), 2027, "X").await;
        assert!(matches!(unknown, Err(backoffice::StoreError::NotFound)), "{unknown:?}");
        let counters: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM case_counters WHERE organism_key = 'nessun-organismo'")
            .fetch_one(db.db.pool())
            .await
            .expect("count");
        assert_eq!(counters, 0, "the number was given back");
        // A blank title is refused and takes no number.
        assert!(cases::register(&db.db, &actor, now, None, 2027, "  ").await.is_err());
        let second = cases::register(&db.db, &actor, now, None, 2027, "Seconda").await.expect("registered");
        assert_eq!(second.reference.as_str(), "2/2027");
    }

    async fn a_case_opened_without_a_reference_gets_the_next_number_of_the_year(app: TestApp) {
        let office = app.logged_in("segreteria1", Role::Segreteria).await;
        let mut references = Vec::new();
        for title in ["Locazione via Roma", "Condominio Verdi"] {
            let response = office.post_json("/api/v1/cases", &json!({ "title": title })).await;
            assert_eq!(response.status(), StatusCode::CREATED);
            let case: Value = response.json().await.expect("case");
            references.push(case["reference"].as_str().unwrap_or_default().to_owned());
        }
        let year = references[0].split_once('/').map(|(_, year)| year.to_owned()).expect("NUMBER/YEAR");
        assert_eq!(references, vec![format!("1/{year}"), format!("2/{year}")]);
    }
}
