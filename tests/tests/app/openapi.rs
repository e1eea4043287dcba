//! The OpenAPI document of the JSON API (`web/openapi.json`, served at `/api/v1/openapi.json`)
//! kept true: it is OpenAPI 3.1; it lists exactly the `/api/v1` routes the server answers
//! (`web::server::route_table()`, which every area's routes feed), with the same methods; every operation answers a caller without
//! credentials as its `security` says (401, never 404 or 405); every `$ref` resolves.
//!
//! Adding an API route without documenting it fails `the_document_lists_every_api_route`.

use std::collections::{BTreeMap, BTreeSet};

use accordo_tests::reqwest::{Method, Response, StatusCode};
use accordo_tests::{spawn_app, Backend};
use serde_json::Value;

/// The document as the repository holds it (and as the binary embeds it).
const DOCUMENT: &str = include_str!("../../../web/openapi.json");

/// The methods an OpenAPI path item may hold that the router may register.
const METHODS: [&str; 5] = ["get", "put", "post", "delete", "patch"];
/// The tags that group the operations.
const TAGS: [&str; 12] = [
    "cases",
    "people",
    "mediators",
    "agenda",
    "meetings",
    "rooms",
    "room-files",
    "case-documents",
    "outbox",
    "audit",
    "account",
    "api-tokens",
];
/// Public operations that may answer 404 to a made-up credential in their path.
const NOT_FOUND_FOR_A_DUMMY_TOKEN: [&str; 1] = ["/calendar/{token}"];

fn document() -> Value {
    serde_json::from_str(DOCUMENT).expect("web/openapi.json is JSON")
}

/// `(path, method, operation)` for every operation of the document.
fn operations(document: &Value) -> Vec<(String, String, Value)> {
    let mut all = Vec::new();
    for (path, item) in document["paths"].as_object().expect("paths") {
        for (method, operation) in item.as_object().expect("a path item") {
            if METHODS.contains(&method.as_str()) {
                all.push((path.clone(), method.clone(), operation.clone()));
            }
        }
    }
    all
}

/// Follows a local `$ref` (`#/components/...`), `None` when it leads nowhere.
fn resolve<'a>(document: &'a Value, reference: &str) -> Option<&'a Value> {
    let pointer = reference.strip_prefix('#')?;
    document.pointer(pointer)
}

/// `value`, or what it refers to when it is a `$ref`.
fn dereferenced<'a>(document: &'a Value, value: &'a Value) -> &'a Value {
    match value["$ref"].as_str() {
        Some(reference) => resolve(document, reference).expect("the $ref resolves"),
        None => value,
    }
}

fn parameters<'a>(document: &'a Value, operation: &'a Value) -> Vec<&'a Value> {
    operation["parameters"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|parameter| dereferenced(document, parameter))
        .collect()
}

/// The names of `{name}` segments of a path template.
fn template_names(path: &str) -> BTreeSet<String> {
    path.split('/')
        .filter_map(|segment| segment.strip_prefix('{')?.strip_suffix('}'))
        .map(str::to_owned)
        .collect()
}

/// Every route of the server: path → methods (lower case, as OpenAPI names them).
fn router_routes() -> BTreeMap<String, BTreeSet<String>> {
    let mut routes: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for route in web::server::route_table() {
        let method = route.method.as_str().to_lowercase();
        assert!(
            METHODS.contains(&method.as_str()),
            "a route with method {method}"
        );
        routes
            .entry(route.path.to_owned())
            .or_default()
            .insert(method);
    }
    routes
}

/// `"POST /api/v1/cases"`, one per path and method.
fn listed(routes: &BTreeMap<String, BTreeSet<String>>) -> BTreeSet<String> {
    routes
        .iter()
        .flat_map(|(path, methods)| {
            methods
                .iter()
                .map(move |method| format!("{} {path}", method.to_uppercase()))
        })
        .collect()
}

#[test]
fn the_document_lists_every_api_route() {
    let document = document();
    let mut documented: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (path, method, _) in operations(&document) {
        documented.entry(path).or_default().insert(method);
    }
    let routes = router_routes();
    assert!(
        routes.contains_key("/api/v1/cases") && routes.contains_key("/login"),
        "router() was read: {routes:?}"
    );
    let api_routes: BTreeMap<String, BTreeSet<String>> = routes
        .iter()
        .filter(|(path, _)| path.starts_with("/api/"))
        .map(|(path, methods)| (path.clone(), methods.clone()))
        .collect();
    let undocumented: Vec<String> = listed(&api_routes)
        .difference(&listed(&documented))
        .cloned()
        .collect();
    assert!(
        undocumented.is_empty(),
        "routes of router() missing from web/openapi.json: {undocumented:#?}"
    );
    let unrouted: Vec<String> = listed(&documented)
        .difference(&listed(&routes))
        .cloned()
        .collect();
    assert!(
        unrouted.is_empty(),
        "operations of web/openapi.json that router() does not have: {unrouted:#?}"
    );
}

#[test]
fn every_reference_resolves_and_every_operation_is_described() {
    let document = document();
    let mut references = Vec::new();
    collect_references(&document, &mut references);
    assert!(!references.is_empty());
    for reference in &references {
        assert!(
            reference.starts_with("#/") && resolve(&document, reference).is_some(),
            "$ref {reference} does not resolve"
        );
    }

    let mut operation_ids = BTreeSet::new();
    for (path, method, operation) in operations(&document) {
        let what = format!("{} {path}", method.to_uppercase());
        let id = operation["operationId"].as_str().unwrap_or_default();
        assert!(!id.is_empty(), "{what} has no operationId");
        assert!(
            operation_ids.insert(id.to_owned()),
            "operationId {id} twice"
        );
        for field in ["summary", "description"] {
            let text = operation[field].as_str().unwrap_or_default();
            assert!(!text.is_empty(), "{what} has no {field}");
        }
        let tags = operation["tags"].as_array().expect("tags");
        assert!(
            !tags.is_empty()
                && tags
                    .iter()
                    .all(|tag| TAGS.contains(&tag.as_str().unwrap_or_default())),
            "{what}: tags {tags:?}"
        );
        let schemes = security_schemes(&operation);
        if schemes.contains("sessionCookie") {
            assert!(
                schemes.contains("apiToken"),
                "{what}: an API token is accepted wherever a session is"
            );
            assert!(
                operation["description"]
                    .as_str()
                    .unwrap_or_default()
                    .contains("Requires the `"),
                "{what} does not say which permission it needs"
            );
            assert!(
                operation["responses"]["401"].is_object(),
                "{what} does not document its 401"
            );
        }
        let declared: BTreeSet<String> = parameters(&document, &operation)
            .into_iter()
            .filter(|parameter| parameter["in"] == "path")
            .map(|parameter| parameter["name"].as_str().unwrap_or_default().to_owned())
            .collect();
        assert_eq!(declared, template_names(&path), "{what}: path parameters");
        assert!(
            operation["responses"]
                .as_object()
                .is_some_and(|responses| responses.keys().any(|status| status.starts_with('2'))),
            "{what} documents no success"
        );
    }
}

fn collect_references(value: &Value, references: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, value) in map {
                match (key.as_str(), value) {
                    ("$ref", Value::String(reference)) => references.push(reference.clone()),
                    _ => collect_references(value, references),
                }
            }
        }
        Value::Array(values) => {
            for value in values {
                collect_references(value, references);
            }
        }
        _ => {}
    }
}

/// The security schemes an operation accepts (empty: public).
fn security_schemes(operation: &Value) -> BTreeSet<String> {
    operation["security"]
        .as_array()
        .expect("every operation says its security")
        .iter()
        .flat_map(|requirement| requirement.as_object().expect("a requirement").keys())
        .cloned()
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_served_document_is_openapi_and_every_operation_answers() {
    let app = spawn_app(Backend::Sqlite).await;
    let anonymous = app.browser();

    let served = anonymous.get("/api/v1/openapi.json").await;
    assert_eq!(served.status(), StatusCode::OK);
    assert_eq!(served.headers()["content-type"], "application/json");
    let served = served.text().await.expect("body");
    assert_eq!(served, DOCUMENT, "the binary serves web/openapi.json");
    let document: Value = serde_json::from_str(&served).expect("the document is JSON");
    assert!(
        document["openapi"]
            .as_str()
            .is_some_and(|version| version.starts_with("3.1.")),
        "{}",
        document["openapi"]
    );
    assert_eq!(document["info"]["title"], "Accordo API");
    assert_eq!(document["info"]["version"], "1");
    assert_eq!(document["servers"], serde_json::json!([{ "url": "/" }]));
    for scheme in ["sessionCookie", "apiToken", "linkToken"] {
        assert!(
            document["components"]["securitySchemes"][scheme].is_object(),
            "{scheme}"
        );
    }

    // Without a session and without a CSRF token: every operation is routed, and refuses
    // whoever has no credential with 401 before anything else (CSRF comes second).
    for (path, method, operation) in operations(&document) {
        let what = format!("{} {path}", method.to_uppercase());
        let mut url = path.clone();
        for name in template_names(&path) {
            url = url.replace(&format!("{{{name}}}"), "1");
        }
        let query: Vec<(String, String)> = parameters(&document, &operation)
            .into_iter()
            .filter(|parameter| parameter["in"] == "query" && parameter["required"] == true)
            .map(|parameter| {
                let name = parameter["name"].as_str().expect("a name").to_owned();
                let value = if parameter["schema"]["type"] == "boolean" {
                    "false"
                } else {
                    "1"
                };
                (name, value.to_owned())
            })
            .collect();
        let method_name = Method::from_bytes(method.to_uppercase().as_bytes()).expect("a method");
        let mut request = anonymous
            .client
            .request(method_name, anonymous.url(&url))
            .query(&query);
        let schemes = security_schemes(&operation);
        if schemes.contains("linkToken") {
            request = request.bearer_auth("not-a-link-token");
        }
        let response = request.send().await.expect("the server answers");
        let status = response.status();
        assert!(
            operation["responses"][status.as_str()].is_object(),
            "{what} answered {status}, which the document does not list"
        );
        if schemes.is_empty() {
            if NOT_FOUND_FOR_A_DUMMY_TOKEN.contains(&path.as_str()) {
                assert_eq!(status, StatusCode::NOT_FOUND, "{what}");
            } else {
                assert!(
                    status.is_success(),
                    "{what} is public but answered {status}"
                );
            }
        } else {
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{what}");
            let body: Value = response.json().await.expect("a JSON error");
            assert_eq!(body["error"], "unauthenticated", "{what}: {body}");
        }
    }
}

/// Operations that read an id from their path or a body can be refused for it: the document
/// says so wherever the server does (400 for a malformed value, 413 for a body over the limit,
/// 404 for an unknown id), and every refusal is JSON.
#[test]
fn every_operation_documents_the_refusals_of_reading_its_request() {
    let document = document();
    for (path, method, operation) in operations(&document) {
        if security_schemes(&operation).is_empty() {
            continue;
        }
        let what = format!("{} {path}", method.to_uppercase());
        let parameters = parameters(&document, &operation);
        let reads_path = parameters.iter().any(|parameter| parameter["in"] == "path");
        let reads_query = parameters
            .iter()
            .any(|parameter| parameter["in"] == "query");
        let has_body = operation["requestBody"].is_object();
        let responses = &operation["responses"];
        if reads_path || reads_query || has_body {
            assert!(
                responses["400"].is_object(),
                "{what} does not document its 400"
            );
        }
        if reads_path {
            assert!(
                responses["404"].is_object(),
                "{what} does not document its 404"
            );
        }
        if has_body {
            assert!(
                responses["413"].is_object(),
                "{what} does not document its 413"
            );
        }
        for (status, response) in responses.as_object().expect("responses") {
            let content = &dereferenced(&document, response)["content"];
            if status.starts_with('4') || status.starts_with('5') {
                let types: Vec<&String> = content.as_object().expect("content").keys().collect();
                assert_eq!(types, ["application/json"], "{what} {status}");
            }
        }
    }
}

/// Asserts that the document lists `response` (status and content type) for `method path`.
async fn assert_documented(document: &Value, method: &str, path: &str, response: Response) {
    let status = response.status();
    let documented = &document["paths"][path][method]["responses"][status.as_str()];
    assert!(
        documented.is_object(),
        "{method} {path} answered {status}, which the document does not list"
    );
    let content_type = response.headers()["content-type"]
        .to_str()
        .expect("a content type")
        .to_owned();
    assert!(
        dereferenced(document, documented)["content"][&content_type].is_object(),
        "{method} {path} {status} answered {content_type}, which the document does not list"
    );
    let body: Value = response.json().await.expect("a JSON refusal");
    assert!(
        body["error"].is_string() && body["message"].is_string(),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_of_malformed_and_unknown_ids_and_bodies_are_as_documented() {
    let app = spawn_app(Backend::Sqlite).await;
    let admin = app.admin().await;
    let document = document();
    let member = serde_json::json!({ "role": "party", "side": "a", "display_name": "Anna" });

    let malformed = admin.post_json("/api/v1/rooms/abc/members", &member).await;
    assert_eq!(malformed.status(), StatusCode::BAD_REQUEST);
    assert_documented(&document, "post", "/api/v1/rooms/{room}/members", malformed).await;
    let unknown = admin
        .post_json("/api/v1/rooms/12345/members", &member)
        .await;
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    assert_documented(&document, "post", "/api/v1/rooms/{room}/members", unknown).await;
    let unknown = admin.get("/api/v1/cases/no-such-case").await;
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    assert_documented(&document, "get", "/api/v1/cases/{case}", unknown).await;
    let shapeless = admin
        .post_json("/api/v1/cases", &serde_json::json!({ "titolo": "x" }))
        .await;
    assert_eq!(shapeless.status(), StatusCode::BAD_REQUEST);
    assert_documented(&document, "post", "/api/v1/cases", shapeless).await;
    let huge = serde_json::json!({ "title": "x".repeat(3 * 1024 * 1024) });
    let too_large = admin.post_json_alone("/api/v1/places", &huge).await;
    assert_eq!(too_large.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_documented(&document, "post", "/api/v1/places", too_large).await;
    let bad_query = admin.get("/api/v1/outbox?colore=blu").await;
    assert_eq!(bad_query.status(), StatusCode::BAD_REQUEST);
    assert_documented(&document, "get", "/api/v1/outbox", bad_query).await;
}
