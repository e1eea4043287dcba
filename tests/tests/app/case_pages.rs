//! The segreteria's pages over plain HTTP forms (no JavaScript): registering a case, adding
//! people with the duplicate check, the case file, meetings in an office's room, the agenda
//! views, the history in Italian, and the same permissions as the JSON API.

use accordo_tests::reqwest::StatusCode;
use accordo_tests::{both_backends, location, Browser, TestApp, SAMPLE_PDF};
use backoffice::platform::access::Role;
use backoffice::platform::rome_time;
use backoffice::UnixMillis;
use serde_json::json;
use signaling::clock::Clock;

async fn text(response: accordo_tests::reqwest::Response) -> (StatusCode, String) {
    let status = response.status();
    (status, response.text().await.unwrap_or_default())
}

/// Registers a case through the form; returns its page path.
async fn register(office: &Browser) -> String {
    let response = office
        .post_form(
            "/pratiche",
            &[
                ("title", "Condominio di via Verdi 3"),
                ("kind", "mandatory"),
                ("subject", "condominio"),
                ("filed_on", "2026-11-20"),
                ("value", "8.400,50"),
            ],
        )
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let path = location(&response).to_owned();
    assert!(path.starts_with("/pratiche/"), "{path}");
    path
}

fn days_ahead(app: &TestApp, days: u64) -> String {
    let now = UnixMillis(i64::try_from(app.clock.now().as_unix_millis()).expect("time"));
    rome_time::date(now.plus(std::time::Duration::from_secs(days * 24 * 3600)))
}

both_backends! {
    async fn a_clerk_works_a_case_from_the_pages_without_javascript(app: TestApp) {
        let office = app.logged_in("segreteria1", Role::Segreteria).await;
        let (status, page) = text(office.get("/pratiche").await).await;
        assert_eq!(status, StatusCode::OK);
        assert!(page.contains("Registra una nuova pratica"));

        // A refused registration says why and registers nothing.
        let response = office.post_form("/pratiche", &[("title", "Senza importo giusto"), ("value", "dieci euro")]).await;
        let (status, page) = text(response).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(page.contains("Scriva il valore in euro"), "{page}");
        let response = office.post_form("/pratiche", &[("title", "Modulo incompleto"), ("kind", "mandatory"), ("subject", "condominio"), ("filed_on", "20/11/2026")]).await;
        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert!(app.audit_actions().await.iter().all(|action| action != "case.created"), "a refused form registers nothing");

        let case = register(&office).await;
        let (_, page) = text(office.get(&case).await).await;
        let year = rome_time::year(UnixMillis(i64::try_from(app.clock.now().as_unix_millis()).expect("time")));
        assert!(page.contains(&format!("Pratica n. 1/{year}")), "{page}");
        assert!(page.contains("8.400,50 €"), "{page}");

        // A party, then the same person typed again: the page offers the existing record.
        let mario = [
            ("role", "party"), ("side", "istante"), ("kind", "natural"), ("given_name", "Mario"),
            ("family_name", "Rossi"), ("fiscal_code", "RSSMRA85T10A562S"), ("email", "mario@example.invalid"),
        ];
        let response = office.post_form(&format!("{case}/partecipanti"), &mario).await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
        let mut again = mario.to_vec();
        again[1] = ("side", "chiamata");
        let (status, page) = text(office.post_form(&format!("{case}/partecipanti"), &again).await).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(page.contains("Rossi Mario") && page.contains("stesso codice fiscale"), "{page}");
        assert!(page.contains("value=\"RSSMRA85T10A562S\""), "what was typed is kept: {page}");
        // A wrong codice fiscale is refused with its reason, the typed values kept.
        let mut wrong = mario.to_vec();
        wrong[5] = ("fiscal_code", "RSSMRA85T10A562X");
        let (status, page) = text(office.post_form(&format!("{case}/partecipanti"), &wrong).await).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(page.contains("class=\"error\""), "{page}");

        // A lawyer for him; a form with a value that is not a number gets the Italian page.
        let lawyer = [("role", "lawyer"), ("kind", "natural"), ("given_name", "Carlo"), ("family_name", "Verdi")];
        let (status, page) = text(office.post_form(&format!("{case}/partecipanti"), &lawyer).await).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "who does he assist?");
        assert!(page.contains("parte assistita"), "{page}");
        let response = office.post_form(&format!("{case}/incontri"), &[("date", "2027-01-01"), ("time", "10:00"), ("duration_minutes", "un'ora")]).await;
        let (status, page) = text(response).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(page.contains("Il modulo inviato non è completo"), "{page}");

        // The case file: a PDF kept for the mediator; a text file refused.
        let response = office.post_file(&format!("{case}/documenti"), ("verbale.pdf", SAMPLE_PDF), &[]).await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
        let (status, page) = text(office.post_file(&format!("{case}/documenti"), ("note.txt", b"solo testo"), &[("shareable", "1")]).await).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(page.contains("Sono accettati PDF e immagini"), "{page}");
        let forged = office.post_file_raw(&format!("{case}/documenti"), ("verbale.pdf", SAMPLE_PDF), &[]).await;
        assert_eq!(forged.status(), StatusCode::FORBIDDEN, "an upload without the CSRF token");
        let (_, page) = text(office.get(&case).await).await;
        assert!(page.contains("verbale.pdf") && page.contains("solo per il mediatore"), "{page}");
        let href = page.split("href=\"").find(|part| part.contains("/documenti/")).and_then(|part| part.split('"').next()).expect("document link").to_owned();
        let document = office.get(&href).await;
        assert_eq!(document.status(), StatusCode::OK);
        assert_eq!(document.headers()["content-type"], "application/pdf");
        assert_eq!(document.bytes().await.expect("bytes").as_ref(), SAMPLE_PDF);

        // A room of the Rome office, a meeting there, and the agenda in three views.
        let response = office.post_form("/sedi", &[("sede", "Sede di Roma"), ("room", "Sala 1")]).await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
        let (status, page) = text(office.post_form("/sedi", &[("sede", "Sede di Roma"), ("room", "sala 1")]).await).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(page.contains("già registrata"), "{page}");
        let (_, page) = text(office.get(&case).await).await;
        let place = page.split("<option value=\"").find(|part| part.contains("Sede di Roma – Sala 1")).and_then(|part| part.split('"').next()).expect("the room in the form").to_owned();
        let date = days_ahead(&app, 3);
        let meeting = [("place", place.as_str()), ("date", date.as_str()), ("time", "15:30"), ("duration_minutes", "60")];
        let response = office.post_form(&format!("{case}/incontri"), &meeting).await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
        let (status, page) = text(office.post_form(&format!("{case}/incontri"), &meeting).await).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "the room is taken");
        assert!(page.contains("La sala ospita già un incontro"), "{page}");
        for view in ["giorno", "settimana", "mese"] {
            let (status, page) = text(office.get(&format!("/agenda?vista={view}&data={date}")).await).await;
            assert_eq!(status, StatusCode::OK, "{view}");
            assert!(page.contains("15:30–16:30"), "{view}: {page}");
        }
        let (_, page) = text(office.get(&format!("/agenda?vista=giorno&data={}", days_ahead(&app, 4))).await).await;
        assert!(page.contains("Nessun incontro in questo periodo"), "{page}");

        // The history, in Italian.
        let (_, page) = text(office.get(&case).await).await;
        for line in ["Pratica registrata", "Tipo: Obbligatoria (art. 5, c. 1, d.lgs. 28/2010)", "Valore: 8.400,50 €", "Partecipante aggiunto", "Nome: Mario Rossi", "Documento aggiunto al fascicolo", "Incontro fissato"] {
            assert!(page.contains(line), "{line}: {page}");
        }
    }

    async fn the_pages_check_the_same_permissions_as_the_api(app: TestApp) {
        let office = app.logged_in("segreteria1", Role::Segreteria).await;
        let anna = app.logged_in("anna.neri", Role::Mediatore).await;
        let guest = app.logged_in("consigliere1", Role::Consigliere).await;
        let response = office.post_json("/api/v1/mediators", &json!({ "display_name": "Avv. Anna Neri", "subjects": ["condominio"], "username": "anna.neri" })).await;
        assert_eq!(response.status(), StatusCode::CREATED);
        let mediator: serde_json::Value = response.json().await.expect("mediator");
        let mediator = mediator["id"].as_str().expect("id").to_owned();
        // Her calendar feed, from the register's page: the address is shown once and works.
        let (status, page) = text(office.post_form(&format!("/mediatori/{mediator}/calendario"), &[]).await).await;
        assert_eq!(status, StatusCode::OK);
        let feed = page.split("/calendar/").nth(1).and_then(|rest| rest.split('<').next()).expect("feed address").to_owned();
        let calendar = app.browser().get(&format!("/calendar/{feed}")).await;
        assert_eq!(calendar.status(), StatusCode::OK);
        assert!(calendar.text().await.expect("calendar").starts_with("BEGIN:VCALENDAR"));
        assert_eq!(anna.post_form(&format!("/mediatori/{mediator}/calendario"), &[]).await.status(), StatusCode::FORBIDDEN);
        let hers = register(&office).await;
        let other = register(&office).await;
        let response = office.post_form(&format!("{hers}/mediatore"), &[]).await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER);

        let (status, page) = text(anna.get("/pratiche").await).await;
        assert_eq!(status, StatusCode::OK);
        assert!(page.contains(hers.trim_start_matches("/pratiche/")) && !page.contains(other.trim_start_matches("/pratiche/")), "{page}");
        assert!(!page.contains("Registra una nuova pratica"));
        assert_eq!(anna.get(&hers).await.status(), StatusCode::OK);
        assert_eq!(anna.get(&other).await.status(), StatusCode::NOT_FOUND);
        let (_, page) = text(anna.get(&hers).await).await;
        assert!(!page.contains("Aggiungi alla pratica") && !page.contains("Fissa l'incontro"), "a mediator reads: {page}");
        for (path, fields) in [
            ("/pratiche", vec![("title", "Mia")]),
            (&format!("{hers}/dati")[..], vec![("title", "Cambiata")]),
            (&format!("{hers}/incontri")[..], vec![("date", "2030-01-01"), ("time", "10:00"), ("duration_minutes", "60")]),
            (&format!("{hers}/mediatore")[..], vec![]),
            ("/sedi", vec![("sede", "Roma"), ("room", "Sala")]),
            ("/mediatori", vec![("display_name", "Io")]),
        ] {
            assert_eq!(anna.post_form(path, &fields).await.status(), StatusCode::FORBIDDEN, "{path}");
        }
        assert_eq!(guest.get("/pratiche").await.status(), StatusCode::FORBIDDEN);
        assert_eq!(guest.get("/agenda").await.status(), StatusCode::FORBIDDEN);
        assert_eq!(guest.get(&hers).await.status(), StatusCode::FORBIDDEN);
        assert_eq!(office.get("/admin/permessi").await.status(), StatusCode::FORBIDDEN);
        let (status, page) = text(app.logged_in("amministratore1", Role::Admin).await.get("/admin/permessi").await).await;
        assert_eq!(status, StatusCode::OK);
        assert!(page.contains("Consultare tutte le pratiche dell"), "{page}");
    }
}
