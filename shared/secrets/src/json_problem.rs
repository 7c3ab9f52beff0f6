//! Describing a stored secret that does not decode, without quoting it.

/// What is wrong with a stored secret's JSON, for the logs: the kind of problem and where, and
/// the name of a missing field, but never serde_json's message otherwise, which can quote the
/// offending value (`invalid type: string "…"`, `unknown variant `…``), i.e. the secret.
pub(crate) fn json_problem(e: &serde_json::Error) -> String {
    use serde_json::error::Category;
    let text = e.to_string();
    let what = match e.classify() {
        Category::Io => "unreadable".to_string(),
        Category::Syntax => "not valid JSON".to_string(),
        Category::Eof => "cut short".to_string(),
        // A field of our own schema, not a value.
        Category::Data if text.starts_with("missing field `") => {
            let field = text.split('`').nth(1).unwrap_or_default();
            format!("not the expected shape (missing field `{field}`)")
        }
        Category::Data => "not the expected shape".to_string(),
    };
    if e.line() == 0 {
        what
    } else {
        format!("{what} at line {}, column {}", e.line(), e.column())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vmapi_models::LoginSecret;

    fn problem(json: &str) -> String {
        json_problem(&serde_json::from_str::<LoginSecret>(json).unwrap_err())
    }

    #[test]
    fn a_stored_secret_that_does_not_decode_is_described_without_its_values() {
        let wrong_type = problem(r#"{"username":"root","authMethod":1,"password":918273645}"#);
        assert!(
            wrong_type.starts_with("not the expected shape at line 1"),
            "{wrong_type}"
        );
        assert!(!wrong_type.contains("918273645"), "{wrong_type}");
        let wrong_variant = problem(r#"{"username":"root","authMethod":"s3cr3t-Passw0rd"}"#);
        assert!(
            !wrong_variant.contains("s3cr3t-Passw0rd"),
            "{wrong_variant}"
        );
        assert_eq!(
            problem(r#"{"username":"root"}"#),
            "not the expected shape (missing field `authMethod`) at line 1, column 19"
        );
        assert_eq!(problem("{"), "cut short at line 1, column 1");
        assert!(problem("{x").starts_with("not valid JSON at line 1"));
        // Decoded from a value (as vaultrs does), there is no position.
        let from_value = serde_json::from_value::<LoginSecret>(
            serde_json::json!({"username": "root", "authMethod": 1, "password": 918273645}),
        )
        .unwrap_err();
        assert_eq!(json_problem(&from_value), "not the expected shape");
    }
}
