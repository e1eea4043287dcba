//! The people registry: tax identifiers checked by their check characters, duplicates found
//! before a second record of the same person is made.

use accordo_tests::reqwest::StatusCode;
use accordo_tests::{both_backends, TestApp};
use backoffice::platform::access::Role;
use serde_json::{json, Value};

both_backends! {
    async fn a_clerk_registers_people_and_is_warned_of_duplicates(app: TestApp) {
        let office = app.logged_in("segreteria1", Role::Segreteria).await;
        let mario = json!({
            "kind": "natural", "given_name": "Mario", "family_name": "Rossi",
            "fiscal_code": "RSSMRA85T10A562S", "birth_date": "1985-12-10",
            "email": "mario.rossi@example.invalid",
        });
        let created = office.post_json("/api/v1/people", &mario).await;
        assert_eq!(created.status(), StatusCode::CREATED);
        let created: Value = created.json().await.expect("person");
        assert_eq!(created["display_name"], "Rossi Mario");

        // The same person typed with an omocodia variant of the code: found, and refused
        // until the clerk confirms.
        let again = json!({ "kind": "natural", "given_name": "Mario", "family_name": "Rossi", "fiscal_code": "RSSMRAURTMLARSNL" });
        let response = office.post_json("/api/v1/people", &again).await;
        assert_eq!(response.status(), StatusCode::CONFLICT);
        let refused: Value = response.json().await.expect("JSON");
        assert_eq!(refused["error"], "possible_duplicates");
        assert_eq!(refused["candidates"][0]["person"]["id"], created["id"]);
        assert_eq!(refused["candidates"][0]["reason"], "same_fiscal_code");

        // As you type: name and birth date are enough.
        let typed = office
            .get("/api/v1/people/duplicates?given_name=mario&family_name=ROSSI&birth_date=1985-12-10")
            .await
            .json::<Value>()
            .await
            .expect("JSON");
        assert_eq!(typed["candidates"][0]["reason"], "same_name_and_birth_date", "{typed}");
        let nobody = office.get("/api/v1/people/duplicates?family_name=Bianchi").await.json::<Value>().await.expect("JSON");
        assert_eq!(nobody["candidates"], json!([]));

        // Wrong identifiers say what is wrong, and store nothing.
        for (body, says) in [
            (json!({ "kind": "natural", "given_name": "A", "family_name": "B", "fiscal_code": "RSSMRA85T10A562T" }), "carattere di controllo"),
            (json!({ "kind": "natural", "given_name": "A", "family_name": "B", "fiscal_code": "RSSMRA85T10A562S", "birth_date": "1985-12-11" }), "non corrisponde al codice fiscale"),
            (json!({ "kind": "legal", "company_name": "Alfa S.r.l.", "vat_number": "01234567898" }), "partita IVA"),
            (json!({ "kind": "legal" }), "denominazione"),
        ] {
            let response = office.post_json("/api/v1/people", &body).await;
            assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{body}");
            let error: Value = response.json().await.expect("JSON");
            assert!(error["message"].as_str().unwrap_or_default().contains(says), "{error}");
        }

        // A company, then the same VAT number again: a duplicate; confirmed, it is added.
        let alfa = json!({ "kind": "legal", "company_name": "Alfa S.r.l.", "vat_number": "IT01234567897" });
        assert_eq!(office.post_json("/api/v1/people", &alfa).await.status(), StatusCode::CREATED);
        let beta = json!({ "kind": "legal", "company_name": "Alfa Servizi S.r.l.", "vat_number": "01234567897" });
        let response = office.post_json("/api/v1/people", &beta).await;
        assert_eq!(response.status(), StatusCode::CONFLICT);
        let mut confirmed = beta.clone();
        confirmed["confirm_not_duplicate"] = json!(true);
        assert_eq!(office.post_json("/api/v1/people", &confirmed).await.status(), StatusCode::CREATED);

        // The clerk confirmed a second Mario Rossi by mistake: merged, the older record stays
        // and points at the one that continues; it is no longer proposed as a duplicate.
        let mut second = mario.clone();
        second["confirm_not_duplicate"] = json!(true);
        second["email"] = json!("m.rossi@example.invalid");
        let second: Value = office.post_json("/api/v1/people", &second).await.json().await.expect("person");
        let (first_id, second_id) = (created["id"].as_str().expect("id"), second["id"].as_str().expect("id"));
        let merge = |from: &str, into: &str| {
            let (path, body) = (format!("/api/v1/people/{from}/merge"), json!({ "into": into }));
            let office = &office;
            async move { office.post_json(&path, &body).await }
        };
        let merged = merge(second_id, first_id).await;
        assert_eq!(merged.status(), StatusCode::OK);
        let kept: Value = office.get(&format!("/api/v1/people/{second_id}")).await.json().await.expect("person");
        assert_eq!(kept["merged_into"], json!(first_id), "{kept}");
        let probe = office.get("/api/v1/people/duplicates?fiscal_code=RSSMRA85T10A562S").await.json::<Value>().await.expect("JSON");
        assert_eq!(probe["candidates"].as_array().map(Vec::len), Some(1), "{probe}");
        assert_eq!(merge(second_id, first_id).await.status(), StatusCode::CONFLICT, "already merged");
        assert_eq!(merge(first_id, first_id).await.status(), StatusCode::BAD_REQUEST);
        assert_eq!(merge(first_id, "nessuno").await.status(), StatusCode::NOT_FOUND);
        assert!(app.audit_actions().await.iter().any(|action| action == "person.merged"));

        // A mediator account may not touch the registry.
        let mediator = app.logged_in("mediatore1", Role::Mediatore).await;
        let response = mediator.post_json("/api/v1/people", &mario).await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
        assert!(app.audit_actions().await.iter().filter(|action| *action == "person.created").count() == 4);
    }

    async fn the_registry_page_searches_registers_and_merges(app: TestApp) {
        let office = app.logged_in("segreteria1", Role::Segreteria).await;
        let person = [
            ("kind", "natural"), ("given_name", "Giulia"), ("family_name", "Conti"),
            ("fiscal_code", ""), ("birth_date", "1990-04-02"), ("email", "giulia@example.invalid"),
            ("address", "Via Appia 1, Roma"),
        ];
        let response = office.post_form("/anagrafica", &person).await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
        // The same name and birth date: the page names the candidate and asks to confirm.
        let response = office.post_form("/anagrafica", &person).await;
        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let page = response.text().await.expect("page");
        assert!(page.contains("Conti Giulia") && page.contains("registrala comunque"), "{page}");
        let mut confirmed = person.to_vec();
        confirmed.push(("confirm_not_duplicate", "1"));
        assert_eq!(office.post_form("/anagrafica", &confirmed).await.status(), StatusCode::SEE_OTHER);
        // A wrong codice fiscale is refused with its reason.
        let mut wrong = person.to_vec();
        wrong[3] = ("fiscal_code", "RSSMRA85T10A562X");
        let response = office.post_form("/anagrafica", &wrong).await;
        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);

        let page = office.get("/anagrafica?q=conti").await.text().await.expect("page");
        let ids: Vec<String> = page
            .split("<option value=\"")
            .skip(1)
            .filter_map(|part| part.split('"').next().map(str::to_owned))
            .filter(|value| value.len() == 36)
            .collect();
        assert_eq!(ids.len(), 4, "two records, each in the two lists of the merge form: {page}");
        let response = office.post_form("/anagrafica/unisci", &[("from", &ids[0]), ("into", &ids[1]), ("q", "conti")]).await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
        let page = office.get("/anagrafica?q=conti").await.text().await.expect("page");
        assert!(page.contains("unita a un"), "{page}");
        let response = office.post_form("/anagrafica/unisci", &[("from", &ids[0]), ("into", &ids[1])]).await;
        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY, "merged already");
        let mediator = app.logged_in("anna.neri", Role::Mediatore).await;
        assert_eq!(mediator.get("/anagrafica?q=conti").await.status(), StatusCode::FORBIDDEN);
    }
}
