//! Architecture checks over every workspace member (no dependencies, plain text): no files of a
//! crate's `src` import each other (directly or round a cycle), and no file of its `src`,
//! `tests` or `benches` is over 600 lines; each with an allow-list that may only shrink.
//! `#[cfg(test)] mod` blocks are left out of both.
//!
//! A reference (`use crate::a::B`, `crate::a::b()`, `super::`, `self::`, or a declared child
//! module's name) counts against the file that defines the item, following re-exports
//! (`pub use`, globs), so a `lib.rs` or `mod.rs` that only declares and re-exports is no party
//! to a cycle.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

mod krate;
mod lex;

use krate::*;
use lex::*;

/// The most lines a source file may have outside its `#[cfg(test)] mod` blocks.
const MAX_LINES: usize = 600;

/// Files still over [`MAX_LINES`], relative to the workspace root. Remove a file once it is
/// split; never add one.
const OVER_LIMIT: &[&str] = &[];

/// Cycles still there (each group's files sorted). Remove a group once it is broken; never
/// add one.
const KNOWN_CYCLES: &[&[&str]] = &[];

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The `members` of the root `Cargo.toml`, a `dir/*` glob read as the folders below `dir` that
/// hold a `Cargo.toml`.
fn members(root: &Path) -> Vec<String> {
    let manifest = std::fs::read_to_string(root.join("Cargo.toml")).unwrap();
    let start = manifest.find("members = [").expect("workspace members");
    let list = &manifest[start..start + manifest[start..].find(']').unwrap()];
    let mut members = Vec::new();
    for entry in list.split('"').skip(1).step_by(2) {
        let Some(dir) = entry.strip_suffix("/*") else {
            members.push(entry.to_owned());
            continue;
        };
        let mut found: Vec<String> = std::fs::read_dir(root.join(dir))
            .unwrap()
            .flatten()
            .filter(|e| e.path().join("Cargo.toml").exists())
            .map(|e| format!("{dir}/{}", e.file_name().to_string_lossy()))
            .collect();
        found.sort();
        members.extend(found);
    }
    assert!(members.len() > 20, "the workspace's crates: {members:?}");
    members
}

/// Files may not import each other, directly or round a longer cycle: what two files both
/// need goes into a third.
#[test]
fn no_files_import_each_other() {
    let root = workspace_root();
    let (mut found, mut seen) = (Vec::new(), Vec::new());
    for member in members(&root) {
        let Some(krate) = read_crate(&root, &member) else {
            continue;
        };
        for (group, why) in cycles(&krate) {
            let known = KNOWN_CYCLES.iter().any(|k| k.iter().eq(group.iter()));
            if known {
                seen.push(group.join(" "));
            } else {
                found.push(format!("{}\n    {}", group.join(", "), why.join("\n    ")));
            }
        }
    }
    assert!(
        found.is_empty(),
        "files that import each other (move what they share into a file of its own):\n  {}",
        found.join("\n  ")
    );
    let stale: Vec<_> = KNOWN_CYCLES
        .iter()
        .filter(|k| !seen.contains(&k.join(" ")))
        .collect();
    assert!(
        stale.is_empty(),
        "no longer a cycle: remove from KNOWN_CYCLES: {stale:?}"
    );
}

#[test]
fn no_source_file_is_over_the_line_limit() {
    let root = workspace_root();
    let (mut over, mut seen) = (Vec::new(), BTreeSet::new());
    for member in members(&root) {
        let mut paths = Vec::new();
        for dir in ["src", "tests", "benches"] {
            rust_files(&root.join(&member).join(dir), &mut paths);
        }
        for path in paths {
            let file = read_file(&root, &path);
            if file.lines > MAX_LINES {
                seen.insert(file.rel.clone());
                if !OVER_LIMIT.contains(&file.rel.as_str()) {
                    over.push(format!("{} ({} lines)", file.rel, file.lines));
                }
            }
        }
    }
    assert!(
        over.is_empty(),
        "over {MAX_LINES} lines outside #[cfg(test)] mod blocks (split by concern):\n  {}",
        over.join("\n  ")
    );
    let stale: Vec<_> = OVER_LIMIT.iter().filter(|f| !seen.contains(**f)).collect();
    assert!(
        stale.is_empty(),
        "no longer over {MAX_LINES} lines: remove from OVER_LIMIT: {stale:?}"
    );
}

/// The scanner itself: comments and strings are not code; use trees are flattened.
#[test]
fn scanner_reads_what_it_should() {
    let text = strip("let s = \"crate::a::b\"; // crate::c\nlet r = r#\"x\"#; 'a'; &'static str");
    assert!(!text.contains("crate"));
    assert_eq!(text.lines().count(), 2);
    let mut tree = Vec::new();
    let toks = tokenize("crate::a::{self, b::C as D, e::*}");
    use_tree(&toks, &[], &mut tree);
    let s = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert_eq!(
        tree,
        [
            (s(&["crate", "a"]), "a".to_owned()),
            (s(&["crate", "a", "b", "C"]), "D".to_owned()),
            (s(&["crate", "a", "e"]), "*".to_owned()),
        ]
    );
}

/// Cycles are found through re-exports and `super::`; a hub that only declares and re-exports
/// is in none, and test modules do not count.
#[test]
fn cycles_are_found_through_re_exports() {
    let krate = |sources: &[(&str, &str)]| {
        let files = sources
            .iter()
            .map(|(module, src)| {
                let path = module.split("::").filter(|s| !s.is_empty());
                let path: Vec<String> = path.map(str::to_owned).collect();
                (path, parse_file(format!("{module}.rs"), src))
            })
            .collect();
        build_crate(files)
    };
    let hub = ("", "mod a; mod b; pub use a::A; pub use b::B;");
    let cyclic = krate(&[
        hub,
        ("a", "pub struct A; fn f(_: crate::B) {}"),
        ("b", "use super::A; pub struct B(A);"),
    ]);
    let found = cycles(&cyclic);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].0, ["a.rs", "b.rs"]);
    let fine = krate(&[
        hub,
        (
            "a",
            "pub struct A; #[cfg(test)] mod tests { use crate::B; }",
        ),
        ("b", "use crate::A; pub struct B(A);"),
    ]);
    assert!(cycles(&fine).is_empty());
}
