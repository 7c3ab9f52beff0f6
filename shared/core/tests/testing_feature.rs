//! The in-memory ports (`vmapi_core::memory`) exist only with the `testing` feature, and only
//! test code asks for it: no crate that goes into a function binary or vmctl enables it in its
//! `[dependencies]` (dev-dependencies and the test crate `vmapi-tests` may).

use std::path::{Path, PathBuf};

fn manifests() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut found = Vec::new();
    for group in ["functions", "shared", "tools"] {
        for entry in std::fs::read_dir(root.join(group)).unwrap().flatten() {
            let manifest = entry.path().join("Cargo.toml");
            if manifest.exists() {
                found.push(manifest);
            }
        }
    }
    assert!(found.len() > 20, "the workspace's crates: {found:?}");
    found
}

/// The lines of the `[dependencies]` table (not dev- or build-dependencies).
fn dependencies(manifest: &str) -> Vec<&str> {
    let mut inside = false;
    let mut lines = Vec::new();
    for line in manifest.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('[') {
            inside = trimmed == "[dependencies]";
        } else if inside {
            lines.push(trimmed);
        }
    }
    lines
}

#[test]
fn no_production_crate_enables_the_testing_feature() {
    for path in manifests() {
        let text = std::fs::read_to_string(&path).unwrap();
        for line in dependencies(&text) {
            assert!(
                !(line.starts_with("vmapi-core") && line.contains("testing")),
                "{}: `{line}` puts the in-memory ports into a release binary",
                path.display()
            );
        }
    }
}

#[test]
fn the_check_reads_the_dependencies_table_only() {
    let manifest = "[package]\nname = \"x\"\n[dependencies]\nvmapi-core = { workspace = true, features = [\"testing\"] }\n[dev-dependencies]\nfoo = \"1\"\n";
    assert_eq!(
        dependencies(manifest),
        vec!["vmapi-core = { workspace = true, features = [\"testing\"] }"]
    );
}
