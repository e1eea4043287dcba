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
