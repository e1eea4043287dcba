//! The dependency-direction invariants of ARCHITECTURE.md, checked on `cargo metadata`.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

use serde_json::Value;

/// Normal (non-dev) dependencies: package name → direct dependency names, for every package.
struct Graph {
    direct: BTreeMap<String, BTreeSet<String>>,
}

impl Graph {
    fn load() -> Self {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
        let output = Command::new(cargo)
            .args(["metadata", "--format-version", "1"])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .expect("cargo metadata runs");
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let metadata: Value = serde_json::from_slice(&output.stdout).expect("metadata is JSON");
        let names: BTreeMap<&str, &str> = metadata["packages"]
            .as_array()
            .expect("packages")
            .iter()
            .map(|package| {
                (
                    package["id"].as_str().unwrap(),
                    package["name"].as_str().unwrap(),
                )
            })
            .collect();
        let mut direct = BTreeMap::new();
        for node in metadata["resolve"]["nodes"]
            .as_array()
            .expect("resolve nodes")
        {
            let name = names[node["id"].as_str().unwrap()].to_owned();
            let deps = node["deps"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|dep| {
                    dep["dep_kinds"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .any(|kind| kind["kind"].is_null())
                })
                .map(|dep| names[dep["pkg"].as_str().unwrap()].to_owned())
                .collect::<BTreeSet<_>>();
            direct
                .entry(name)
                .or_insert_with(BTreeSet::new)
                .extend(deps);
        }
        Self { direct }
    }

    fn direct(&self, package: &str) -> &BTreeSet<String> {
        &self.direct[package]
    }

    fn transitive(&self, package: &str) -> BTreeSet<String> {
        let mut seen = BTreeSet::new();
        let mut stack = vec![package.to_owned()];
        while let Some(next) = stack.pop() {
            for dep in self.direct.get(&next).into_iter().flatten() {
                if seen.insert(dep.clone()) {
                    stack.push(dep.clone());
                }
            }
        }
        seen
    }
}

#[test]
fn dependencies_point_in_the_documented_direction() {
    let graph = Graph::load();

    // rooms is a pure state machine: no async runtime, no database, no JSON, nothing of ours.
    let rooms = graph.transitive("rooms");
    for forbidden in [
        "tokio",
        "async-std",
        "smol",
        "sqlx",
        "sqlx-core",
        "serde_json",
        "axum",
        "backoffice",
        "sfu",
        "signaling",
        "web",
    ] {
        assert!(
            !rooms.contains(forbidden),
            "rooms must not depend on {forbidden}"
        );
    }

    // sfu knows media, not people: no database, no HTTP framework, no back office.
    let sfu = graph.transitive("sfu");
    for forbidden in ["sqlx", "sqlx-core", "axum", "backoffice", "web"] {
        assert!(
            !sfu.contains(forbidden),
            "sfu must not depend on {forbidden}"
        );
    }

    // Only web and signaling speak HTTP and JSON themselves.
    for package in ["rooms", "sfu", "backoffice"] {
        for forbidden in ["axum", "serde_json", "tungstenite", "tokio-tungstenite"] {
            assert!(
                !graph.direct(package).contains(forbidden),
                "{package} must not depend on {forbidden} directly"
            );
        }
    }

    // web is the one composition root: no library crate depends on it.
    for package in ["rooms", "sfu", "backoffice", "signaling"] {
        assert!(
            !graph.transitive(package).contains("web"),
            "{package} must not depend on web"
        );
    }
    assert!(
        !graph.transitive("backoffice").contains("signaling"),
        "backoffice must not depend on signaling"
    );
}

/// The modules of the crate whose sources are under `src` (`http::error`, `cases`, …) and,
/// for each, the modules of the same crate its source names through `crate::` or `super::`.
fn module_uses(src: &std::path::Path) -> BTreeMap<String, BTreeSet<String>> {
    let mut sources = BTreeMap::new();
    let mut pending = vec![src.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).expect("source directory") {
            let path = entry.expect("directory entry").path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|ext| ext == "rs") {
                let relative = path
                    .strip_prefix(src)
                    .expect("under src")
                    .with_extension("");
                let mut parts: Vec<String> = relative
                    .components()
                    .map(|part| part.as_os_str().to_string_lossy().into_owned())
                    .collect();
                if parts.last().is_some_and(|last| last == "mod") {
                    parts.pop();
                }
                if parts == ["lib"] || parts == ["main"] {
                    continue;
                }
                let text = std::fs::read_to_string(&path).expect("readable source");
                sources.insert(parts.join("::"), text);
            }
        }
    }
    let modules: BTreeSet<String> = sources.keys().cloned().collect();
    let mut uses = BTreeMap::new();
    for (module, text) in &sources {
        let parent = module.rsplit_once("::").map_or("", |(parent, _)| parent);
        let mut named = BTreeSet::new();
        for line in text
            .lines()
            .filter(|line| !line.trim_start().starts_with("//"))
        {
            for (prefix, base) in [("crate::", ""), ("super::", parent)] {
                for (at, _) in line.match_indices(prefix) {
                    let rest = &line[at + prefix.len()..];
                    let path: String = rest
                        .chars()
                        .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':')
                        .collect();
                    if prefix == "super::" && path.is_empty() {
                        // `use super::*` in an inline `mod tests` names its own file.
                        continue;
                    }
                    let mut segments: Vec<&str> = base
                        .split("::")
                        .filter(|segment| !segment.is_empty())
                        .collect();
                    segments.extend(path.split("::").filter(|segment| !segment.is_empty()));
                    // The longest prefix that is a module; `{a, b}` groups name each item.
                    let groups: Vec<String> = match rest[path.len()..].strip_prefix('{') {
                        Some(group) => group
                            .split(['}', ','])
                            .map(|item| item.trim().split("::").next().unwrap_or("").to_owned())
                            .take_while(|item| !item.is_empty())
                            .map(|item| [segments.join("::"), item].join("::"))
                            .collect(),
                        None => vec![segments.join("::")],
                    };
                    for candidate in groups {
                        let mut candidate = candidate.trim_start_matches("::").to_owned();
                        while !candidate.is_empty() && !modules.contains(&candidate) {
                            candidate = candidate
                                .rsplit_once("::")
                                .map_or(String::new(), |(head, _)| head.to_owned());
                        }
                        if !candidate.is_empty() && &candidate != module {
                            named.insert(candidate);
                        }
                    }
                }
            }
        }
        uses.insert(module.clone(), named);
    }
    uses
}

/// The groups of modules that name each other in a circle.
fn circles(uses: &BTreeMap<String, BTreeSet<String>>) -> Vec<BTreeSet<String>> {
    let reaches = |from: &String| {
        let mut seen = BTreeSet::new();
        let mut pending = vec![from.clone()];
        while let Some(module) = pending.pop() {
            for next in uses.get(&module).into_iter().flatten() {
                if seen.insert(next.clone()) {
                    pending.push(next.clone());
                }
            }
        }
        seen
    };
    let reach: BTreeMap<&String, BTreeSet<String>> = uses
        .keys()
        .map(|module| (module, reaches(module)))
        .collect();
    let mut found: Vec<BTreeSet<String>> = Vec::new();
    for (module, reached) in &reach {
        if !reached.contains(*module) {
            continue;
        }
        let circle: BTreeSet<String> = reached
            .iter()
            .filter(|other| reach[other].contains(*module))
            .cloned()
            .collect();
        if !found.contains(&circle) {
            found.push(circle);
        }
    }
    found
}

#[test]
fn no_module_of_web_names_another_that_names_it_back() {
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../web/src");
    let uses = module_uses(&src);
    assert!(
        uses["cases::pages"].contains("cases::meetings") && uses["server"].contains("cases"),
        "the sources were read: {uses:?}"
    );
    assert_eq!(circles(&uses), Vec::<BTreeSet<String>>::new());
}

#[test]
fn the_back_office_has_no_import_circle_but_the_known_one() {
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../backoffice/src");
    let known: BTreeSet<String> = ["mediation::case_documents", "rooms::room_files"]
        .map(str::to_owned)
        .into();
    assert_eq!(circles(&module_uses(&src)), vec![known]);
}

#[test]
fn a_circle_is_found() {
    let uses: BTreeMap<String, BTreeSet<String>> = [
        ("a", vec!["b"]),
        ("b", vec!["c"]),
        ("c", vec!["a"]),
        ("d", vec!["a"]),
    ]
    .into_iter()
    .map(|(module, named)| {
        (
            module.to_owned(),
            named.into_iter().map(str::to_owned).collect(),
        )
    })
    .collect();
    let circle: BTreeSet<String> = ["a", "b", "c"].map(str::to_owned).into();
    assert_eq!(circles(&uses), vec![circle]);
}
