//! docs/configuration.md's table is generated from the code's declarations (`vmapi_config::Var`,
//! beside each reader): the committed table is current, every declaration is in it, every
//! declared variable is read, and the code reads no variable it has not declared.
//!
//! Regenerate the table with
//! `UPDATE_DOCS=1 cargo test -p vmapi-tests --test suite configuration`.

use std::collections::BTreeSet;
use std::path::Path;

use vmapi_config::{Reader, Var};
use vmapi_http::Endpoint;
use vmapi_tests::{read, root};

const UPDATE_HINT: &str = "UPDATE_DOCS=1 cargo test -p vmapi-tests --test suite configuration";
const BEGIN: &str = "<!-- variable-table:begin (generated from the declarations, \
                     vmapi_config::Var; UPDATE_DOCS=1 cargo test -p vmapi-tests --test suite \
                     configuration) -->";
const END: &str = "<!-- variable-table:end -->";

/// Every declared variable, in the table's order.
fn declared() -> Vec<Var> {
    [
        vmapi_aws::settings::VARS,
        vmapi_http::config::VARS,
        vmapi_secrets::config::VARS,
        vmapi_provision::config::VARS,
        vmapi_config::VARS,
    ]
    .concat()
}

#[test]
fn the_configuration_table_is_generated_from_the_declarations() {
    let generated = vmapi_config::table(&declared());
    let path = root().join("docs/configuration.md");
    let doc = read("docs/configuration.md");
    let (before, rest) = doc
        .split_once(BEGIN)
        .unwrap_or_else(|| panic!("docs/configuration.md has no line {BEGIN}"));
    let (committed, after) = rest
        .split_once(END)
        .unwrap_or_else(|| panic!("docs/configuration.md has no line {END}"));
    if std::env::var_os("UPDATE_DOCS").is_some() {
        let doc = format!("{before}{BEGIN}\n{generated}{END}{after}");
        std::fs::write(&path, doc).expect("writing docs/configuration.md");
        eprintln!("wrote {}", path.display());
        return;
    }
    let committed = committed.strip_prefix('\n').unwrap_or(committed);
    if committed != generated {
        let line = committed
            .lines()
            .zip(generated.lines())
            .position(|(a, b)| a != b)
            .unwrap_or(committed.lines().count().min(generated.lines().count()));
        panic!(
            "docs/configuration.md's table is stale (row {line}: {:?}, generated {:?}); \
             regenerate it with `{UPDATE_HINT}` and commit it",
            committed.lines().nth(line),
            generated.lines().nth(line)
        );
    }
}

#[test]
fn each_variable_is_declared_once_and_readers_are_true() {
    let vars = declared();
    let names: BTreeSet<_> = vars.iter().map(|v| v.name).collect();
    assert_eq!(names.len(), vars.len(), "a variable declared twice");
    assert!(
        names.contains("TABLE_NAME") && names.len() > 50,
        "{names:?}"
    );
    for var in &vars {
        assert!(!var.about.is_empty() && !var.readers.is_empty(), "{var:?}");
    }
    // The label of the functions that keep logins names them.
    let logins: Vec<_> = Endpoint::ALL
        .iter()
        .filter(|e| e.needs_logins())
        .map(|e| e.function())
        .collect();
    assert_eq!(Reader::Logins.label(), logins.join(", "));
}

/// The non-test Rust sources of shared/, functions/ and tools/ (`src/` only, each cut at its
/// first `#[cfg(test)]`), by path from the root.
fn sources() -> Vec<(String, String)> {
    fn walk(dir: &Path, out: &mut Vec<(String, String)>) {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                let cut = text.find("#[cfg(test)]").unwrap_or(text.len());
                let name = path.strip_prefix(root()).unwrap_or(&path);
                out.push((name.display().to_string(), text[..cut].to_string()));
            }
        }
    }
    let mut out = Vec::new();
    for group in ["shared", "functions", "tools"] {
        for krate in std::fs::read_dir(root().join(group)).unwrap().flatten() {
            walk(&krate.path().join("src"), &mut out);
        }
    }
    assert!(out.len() > 50, "the sources were found");
    out
}

/// Files that read the environment by a name they are given, not one of their own.
const GENERIC_READERS: &[&str] = &[
    "shared/config/src/lib.rs",    // `Env::process`
    "shared/aws/src/endpoints.rs", // the SDK's service settings, by the SDK's key
];

#[test]
fn the_code_reads_only_declared_variables_and_every_declared_one() {
    let names: BTreeSet<String> = declared().iter().map(|v| v.name.to_string()).collect();
    let sources = sources();
    let raw = regex::Regex::new(r"env::var(?:_os)?\(").unwrap();
    let literal = regex::Regex::new(
        r#"Var::new\(\s*"([A-Z][A-Z0-9_]+)"|const ENV: &str = "([A-Z][A-Z0-9_]+)"|\benv = "([A-Z][A-Z0-9_]+)""#,
    )
    .unwrap();
    let mut found = BTreeSet::new();
    for (path, text) in &sources {
        assert!(
            GENERIC_READERS.contains(&path.as_str()) || !raw.is_match(text),
            "{path} reads the environment itself: declare a `vmapi_config::Var` and read it \
             through `vmapi_config::Env`"
        );
        for c in literal.captures_iter(text) {
            found.insert((1..=3).find_map(|i| c.get(i)).unwrap().as_str().to_string());
        }
    }
    assert!(
        found.contains("TABLE_NAME"),
        "the reads were found: {found:?}"
    );
    let undeclared: Vec<_> = found.difference(&names).collect();
    assert!(
        undeclared.is_empty(),
        "declared or read but in no crate's `VARS` (so not in docs/configuration.md): \
         {undeclared:?}"
    );
    // Every declaration is used: read through `Env` (`&NAME`) or taken apart (`NAME.name`),
    // but the endpoint overrides, which the SDK reads (through `vmapi_aws::endpoints`).
    let all: String = sources.iter().map(|(_, t)| t.as_str()).collect();
    for name in &names {
        let used = regex::Regex::new(&format!(r"&{name}\b|\b{name}\.[a-z]")).unwrap();
        assert!(
            name.starts_with("AWS_ENDPOINT_URL_") || used.is_match(&all),
            "{name} is declared but nothing reads it"
        );
    }
}
