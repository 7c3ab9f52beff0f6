//! Lambda's event filtering (the `FilterCriteria` of an event source mapping), applied to a
//! stream record's JSON as Lambda applies it: before anything is decoded, a record passes when
//! any one pattern matches.
//!
//! Supported, as documented for Lambda: nested objects; leaf arrays of literal strings, numbers,
//! booleans and `null`; and the operators `exists`, `prefix`, `suffix`, `equals-ignore-case` and
//! `anything-but` (a literal or a list). Any other operator is refused when the pattern is
//! parsed, so a pattern that cannot be honoured is never silently ignored.

use serde_json::Value;

/// A pattern that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("filter pattern {pattern}: {reason}")]
pub struct PatternError {
    pattern: String,
    reason: String,
}

/// One parsed `Pattern` of a `FilterCriteria`.
#[derive(Debug, Clone)]
pub struct Pattern {
    root: Node,
}

#[derive(Debug, Clone)]
enum Node {
    /// Every key must match.
    Object(Vec<(String, Node)>),
    /// Any condition may match.
    Leaf(Vec<Condition>),
}

#[derive(Debug, Clone)]
enum Condition {
    Equals(Value),
    Exists(bool),
    Prefix(String),
    Suffix(String),
    EqualsIgnoreCase(String),
    AnythingBut(Vec<Value>),
}

impl Pattern {
    /// Parses a pattern as written in the template (a JSON text).
    pub fn parse(text: &str) -> Result<Pattern, PatternError> {
        let err = |reason: String| PatternError {
            pattern: text.to_string(),
            reason,
        };
        let value: Value = serde_json::from_str(text).map_err(|e| err(e.to_string()))?;
        let root = node(&value).map_err(err)?;
        match root {
            Node::Object(_) => Ok(Pattern { root }),
            Node::Leaf(_) => Err(err("a pattern is a JSON object".into())),
        }
    }

    /// Whether `event` (a record's JSON) matches.
    pub fn matches(&self, event: &Value) -> bool {
        matches_node(&self.root, Some(event))
    }
}

fn node(value: &Value) -> Result<Node, String> {
    match value {
        Value::Object(map) => map
            .iter()
            .map(|(k, v)| Ok((k.clone(), node(v)?)))
            .collect::<Result<_, String>>()
            .map(Node::Object),
        Value::Array(items) => items
            .iter()
            .map(condition)
            .collect::<Result<_, String>>()
            .map(Node::Leaf),
        other => Err(format!("{other} must be inside an array")),
    }
}

fn condition(value: &Value) -> Result<Condition, String> {
    let Value::Object(map) = value else {
        return match value {
            Value::Array(_) => Err("nested arrays are not a filter".into()),
            literal => Ok(Condition::Equals(literal.clone())),
        };
    };
    let [(op, arg)] = map.iter().collect::<Vec<_>>()[..] else {
        return Err(format!("{value}: one operator per condition"));
    };
    let text = || {
        arg.as_str()
            .map(str::to_string)
            .ok_or_else(|| format!("{op} takes a string"))
    };
    match op.as_str() {
        "exists" => arg
            .as_bool()
            .map(Condition::Exists)
            .ok_or_else(|| "exists takes true or false".into()),
        "prefix" => text().map(Condition::Prefix),
        "suffix" => text().map(Condition::Suffix),
        "equals-ignore-case" => text().map(Condition::EqualsIgnoreCase),
        "anything-but" => Ok(Condition::AnythingBut(match arg {
            Value::Array(items) => items.clone(),
            literal => vec![literal.clone()],
        })),
        other => Err(format!("operator {other:?} is not supported here")),
    }
}

fn matches_node(node: &Node, value: Option<&Value>) -> bool {
    match node {
        Node::Object(fields) => {
            let Some(Value::Object(map)) = value else {
                // Only `exists: false` conditions can hold below a missing object.
                return fields.iter().all(|(_, n)| matches_node(n, None));
            };
            fields.iter().all(|(k, n)| matches_node(n, map.get(k)))
        }
        Node::Leaf(conditions) => conditions.iter().any(|c| matches_condition(c, value)),
    }
}

fn matches_condition(c: &Condition, value: Option<&Value>) -> bool {
    if let Condition::Exists(wanted) = c {
        return value.is_some() == *wanted;
    }
    let Some(value) = value else { return false };
    // An array in the event matches when any of its elements does.
    if let Value::Array(items) = value {
        return items.iter().any(|v| matches_condition(c, Some(v)));
    }
    match c {
        Condition::Equals(expected) => expected == value,
        Condition::Prefix(p) => value.as_str().is_some_and(|s| s.starts_with(p.as_str())),
        Condition::Suffix(p) => value.as_str().is_some_and(|s| s.ends_with(p.as_str())),
        Condition::EqualsIgnoreCase(p) => value.as_str().is_some_and(|s| s.eq_ignore_ascii_case(p)),
        Condition::AnythingBut(values) => !values.contains(value),
        Condition::Exists(_) => unreachable!("handled above"),
    }
}

/// A record passes when any pattern matches (no patterns: every record passes).
pub fn passes(patterns: &[Pattern], event: &Value) -> bool {
    patterns.is_empty() || patterns.iter().any(|p| p.matches(event))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn p(text: &str) -> Pattern {
        Pattern::parse(text).unwrap()
    }

    #[test]
    fn exists_on_a_nested_leaf() {
        let pat = p(
            r#"{"dynamodb": {"NewImage": {"pendingOp": {"M": {"op": {"S": [{"exists": true}]}}}}}}"#,
        );
        let with = json!({"dynamodb": {"NewImage": {"pendingOp": {"M": {"op": {"S": "create"}}}}}});
        let without = json!({"dynamodb": {"NewImage": {"status": {"N": "3"}}}});
        let removed = json!({"eventName": "REMOVE", "dynamodb": {"Keys": {}}});
        assert!(pat.matches(&with));
        assert!(!pat.matches(&without));
        assert!(!pat.matches(&removed));
        let absent = p(r#"{"dynamodb": {"NewImage": {"pendingOp": [{"exists": false}]}}}"#);
        assert!(!absent.matches(&with));
        assert!(absent.matches(&without));
        assert!(absent.matches(&removed));
    }

    #[test]
    fn literals_are_any_of_and_keys_are_all_of() {
        let pat = p(
            r#"{"eventName": ["REMOVE"], "dynamodb": {"Keys": {"sk": {"S": ["TEAM", "PROJECT"]}}}}"#,
        );
        let rec = |name: &str, sk: &str| json!({"eventName": name, "dynamodb": {"Keys": {"sk": {"S": sk}}}});
        assert!(pat.matches(&rec("REMOVE", "TEAM")));
        assert!(pat.matches(&rec("REMOVE", "PROJECT")));
        assert!(!pat.matches(&rec("MODIFY", "TEAM")));
        assert!(!pat.matches(&rec("REMOVE", "VM")));
        assert!(!pat.matches(&json!({"eventName": "REMOVE"})));
        // Case matters for literals; numbers compare as JSON values.
        assert!(!pat.matches(&rec("remove", "TEAM")));
        assert!(p(r#"{"n": [3]}"#).matches(&json!({"n": 3})));
        assert!(!p(r#"{"n": [3]}"#).matches(&json!({"n": "3"})));
    }

    #[test]
    fn operators() {
        let ev = json!({"a": "vm-api-123", "tags": ["x", "y"]});
        assert!(p(r#"{"a": [{"prefix": "vm-api"}]}"#).matches(&ev));
        assert!(!p(r#"{"a": [{"prefix": "api"}]}"#).matches(&ev));
        assert!(p(r#"{"a": [{"suffix": "123"}]}"#).matches(&ev));
        assert!(p(r#"{"a": [{"equals-ignore-case": "VM-API-123"}]}"#).matches(&ev));
        assert!(p(r#"{"a": [{"anything-but": ["b", "c"]}]}"#).matches(&ev));
        assert!(!p(r#"{"a": [{"anything-but": "vm-api-123"}]}"#).matches(&ev));
        assert!(
            p(r#"{"tags": ["y"]}"#).matches(&ev),
            "an event array matches by element"
        );
    }

    #[test]
    fn unusable_patterns_are_refused() {
        for bad in [
            "[]",
            r#"{"a": "b"}"#,
            r#"{"a": [{"numeric": [">", 1]}]}"#,
            r#"{"a": [{"exists": "yes"}]}"#,
            r#"{"a": [{"prefix": "x", "suffix": "y"}]}"#,
            "not json",
        ] {
            assert!(Pattern::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn no_patterns_pass_everything() {
        assert!(passes(&[], &json!({})));
        let pats = [p(r#"{"a": ["1"]}"#), p(r#"{"b": ["2"]}"#)];
        assert!(passes(&pats, &json!({"b": "2"})));
        assert!(!passes(&pats, &json!({"c": "3"})));
    }
}
