//! JSON Schema `if`/`then`/`else` rules between the fields of a request body, which utoipa's
//! builders lack: a placeholder extension in the schema, spliced into the text afterwards.

use utoipa::openapi::extensions::Extensions;
use utoipa::openapi::schema::{Object, Schema};
use utoipa::openapi::RefOr;

/// Key of the placeholder extension that [`to_json`](super::to_json) replaces by JSON Schema `if`/`then`/`else`
/// (keywords utoipa's builders lack). Generators that do not know them leave the model as it is;
/// an `allOf` with an `anyOf` would instead be merged into the model's fields.
pub(super) const CONDITIONAL: &str = "x-vmapi-conditional";

/// The rules between fields of a request body the server checks, as `if`/`then`/`else`.
#[derive(Clone, Copy)]
pub(super) enum Conditional {
    /// `access` (the user's own public key) only with `authMethod` 1 (SSH key).
    AccessNeedsSshKey,
    /// `portRange` (or `destinationPortRange`) unless the protocol is ICMP.
    PortsUnlessIcmp,
}

impl Conditional {
    pub(super) const ALL: [Conditional; 2] =
        [Conditional::AccessNeedsSshKey, Conditional::PortsUnlessIcmp];

    fn marker(self) -> &'static str {
        match self {
            Conditional::AccessNeedsSshKey => "access-needs-ssh-key",
            Conditional::PortsUnlessIcmp => "ports-unless-icmp",
        }
    }

    /// The keywords, in order. Keys of every object are in sorted order, so the text is the same
    /// whether or not serde_json preserves insertion order.
    fn keywords(self) -> [(&'static str, serde_json::Value); 2] {
        use serde_json::json;
        match self {
            Conditional::AccessNeedsSshKey => [
                (
                    "if",
                    json!({"properties": {"access": {"type": "object"}}, "required": ["access"]}),
                ),
                ("then", json!({"properties": {"authMethod": {"enum": [1]}}})),
            ],
            Conditional::PortsUnlessIcmp => [
                (
                    "if",
                    json!({"properties": {"protocol": {"enum": ["Icmp"]}}, "required": ["protocol"]}),
                ),
                (
                    "else",
                    json!({"anyOf": [{"required": ["portRange"]}, {"required": ["destinationPortRange"]}]}),
                ),
            ],
        }
    }

    /// `object` (a derived object schema) with this rule and `sentence` added to its description.
    pub(super) fn apply(self, object: RefOr<Schema>, sentence: &str) -> RefOr<Schema> {
        with_object(object, |o| {
            o.extensions = Some(Extensions::from_iter([(CONDITIONAL, self.marker())]));
            append_description(o, sentence);
        })
    }
}

/// `schema`, an object schema, changed by `change`.
pub(super) fn with_object(
    schema: RefOr<Schema>,
    change: impl FnOnce(&mut Object),
) -> RefOr<Schema> {
    match schema {
        RefOr::T(Schema::Object(mut o)) => {
            change(&mut o);
            RefOr::T(Schema::Object(o))
        }
        _ => panic!("expected an object schema"),
    }
}

pub(super) fn append_description(o: &mut Object, sentence: &str) {
    let text = o.description.take().unwrap_or_default();
    o.description = Some(format!("{text} {sentence}").trim().to_string());
}

/// `text` with each conditional placeholder line replaced by its keywords, at its indentation.
pub(super) fn splice_conditionals(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 1024);
    for line in text.lines() {
        let trimmed = line.trim_start();
        let indent = &line[..line.len() - trimmed.len()];
        let found = Conditional::ALL.into_iter().find(|c| {
            trimmed.trim_end_matches(',') == format!("\"{CONDITIONAL}\": \"{}\"", c.marker())
        });
        let Some(conditional) = found else {
            out.push_str(line);
            out.push('\n');
            continue;
        };
        let keywords: Vec<String> = conditional
            .keywords()
            .iter()
            .map(|(key, value)| {
                let pretty = serde_json::to_string_pretty(value).expect("JSON");
                format!(
                    "{indent}\"{key}\": {}",
                    pretty.replace('\n', &format!("\n{indent}"))
                )
            })
            .collect();
        out.push_str(&keywords.join(",\n"));
        if trimmed.ends_with(',') {
            out.push(',');
        }
        out.push('\n');
    }
    out
}
