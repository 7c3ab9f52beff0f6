//! The endpoint list in docs/api.md is generated from the endpoint table: this test renders it
//! and fails when the committed list differs. Rewrite it with
//! `UPDATE_DOCS=1 cargo test -p vmapi-http --test endpoint_docs`.

use std::path::PathBuf;

use vmapi_http::endpoints::{Auth, Endpoint};

const DOC: &str = "docs/api.md";
const BEGIN: &str = "<!-- endpoint-table:begin (generated from shared/http/src/endpoints; UPDATE_DOCS=1 cargo test -p vmapi-http --test endpoint_docs) -->";
const END: &str = "<!-- endpoint-table:end -->";

/// The Markdown table of every endpoint, in table order.
fn render() -> String {
    let mut out = String::from(
        "| method | path | function | what | answer | token | `If-Match` | `Idempotency-Key` | error codes |\n\
         |---|---|---|---|---|---|---|---|---|\n",
    );
    let yes = |b: bool| if b { "yes" } else { "" };
    for endpoint in Endpoint::ALL {
        let spec = endpoint.spec();
        let codes: Vec<String> = spec.errors.iter().map(|c| format!("`{c}`")).collect();
        out.push_str(&format!(
            "| {} | `{}` | `{}` | {} | {} `{}` | {} | {} | {} | {} |\n",
            spec.verb.method(),
            spec.path,
            spec.function,
            spec.summary,
            spec.success.status,
            spec.success.schema,
            match spec.auth {
                Auth::Public => "none",
                Auth::User => "user",
                Auth::Admin => "admin key",
            },
            yes(spec.conditional),
            yes(spec.idempotent),
            codes.join(", "),
        ));
    }
    out
}

#[test]
fn the_endpoint_list_in_the_docs_is_the_table() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(DOC);
    let text = std::fs::read_to_string(&path).expect("docs/api.md");
    let (start, end) = (
        text.find(BEGIN).expect("the begin marker") + BEGIN.len(),
        text.find(END).expect("the end marker"),
    );
    let generated = format!("{}\n{}", &text[..start], render()) + &text[end..];
    if std::env::var_os("UPDATE_DOCS").is_some() {
        std::fs::write(&path, &generated).expect("writing docs/api.md");
        return;
    }
    assert!(
        text == generated,
        "{DOC}'s endpoint list is stale: run `UPDATE_DOCS=1 cargo test -p vmapi-http --test endpoint_docs` and commit it"
    );
}
