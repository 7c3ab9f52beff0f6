//! A validator for the part of JSON Schema the document uses.

use serde_json::{json, Value};

/// A validator for the part of JSON Schema the document uses (`$ref`, `allOf`, `oneOf`,
/// `anyOf`, `if`/`then`/`else`, `type`, `enum`, `properties`, `required`, `additionalProperties: false`, `items`
/// and the length, size and range keywords). Returns what does not fit.
pub(super) fn validate(doc: &Value, schema: &Value, value: &Value) -> Vec<String> {
    let mut errors = Vec::new();
    check(doc, schema, value, "$", &mut errors);
    errors
}

fn check(doc: &Value, schema: &Value, value: &Value, at: &str, errors: &mut Vec<String>) {
    if let Some(r) = schema["$ref"].as_str() {
        let name = r
            .strip_prefix("#/components/schemas/")
            .unwrap_or_else(|| panic!("unexpected $ref {r}"));
        let target = &doc["components"]["schemas"][name];
        assert!(target.is_object(), "$ref {r} resolves");
        check(doc, target, value, at, errors);
    }
    if let Some(all) = schema["allOf"].as_array() {
        for s in all {
            check(doc, s, value, at, errors);
        }
    }
    if schema["if"].is_object() {
        let branch = if validate(doc, &schema["if"], value).is_empty() {
            "then"
        } else {
            "else"
        };
        if schema[branch].is_object() {
            check(doc, &schema[branch], value, at, errors);
        }
    }
    for (keyword, exactly_one) in [("oneOf", true), ("anyOf", false)] {
        if let Some(options) = schema[keyword].as_array() {
            let fits = options
                .iter()
                .filter(|s| validate(doc, s, value).is_empty())
                .count();
            if (exactly_one && fits != 1) || fits == 0 {
                errors.push(format!("{at}: {fits} of the {keyword} options fit {value}"));
            }
        }
    }
    if let Some(t) = schema.get("type") {
        let types: Vec<&str> = match t {
            Value::String(s) => vec![s.as_str()],
            Value::Array(a) => a.iter().map(|v| v.as_str().unwrap()).collect(),
            other => panic!("bad type {other}"),
        };
        let fits = types.iter().any(|t| match *t {
            "null" => value.is_null(),
            "boolean" => value.is_boolean(),
            "integer" => value.is_i64() || value.is_u64(),
            "number" => value.is_number(),
            "string" => value.is_string(),
            "array" => value.is_array(),
            "object" => value.is_object(),
            other => panic!("unknown type {other}"),
        });
        if !fits {
            errors.push(format!("{at}: {value} is not {types:?}"));
            return;
        }
    }
    if let Some(allowed) = schema["enum"].as_array() {
        if !allowed.contains(value) {
            errors.push(format!("{at}: {value} is not one of {allowed:?}"));
        }
    }
    if let Some(s) = value.as_str() {
        let n = s.chars().count() as u64;
        if schema["minLength"].as_u64().is_some_and(|m| n < m)
            || schema["maxLength"].as_u64().is_some_and(|m| n > m)
        {
            errors.push(format!("{at}: length of {value}"));
        }
    }
    if let Some(x) = value.as_f64() {
        if schema["minimum"].as_f64().is_some_and(|m| x < m)
            || schema["maximum"].as_f64().is_some_and(|m| x > m)
        {
            errors.push(format!("{at}: {value} out of range"));
        }
    }
    if let Some(items) = value.as_array() {
        let n = items.len() as u64;
        if schema["minItems"].as_u64().is_some_and(|m| n < m)
            || schema["maxItems"].as_u64().is_some_and(|m| n > m)
        {
            errors.push(format!("{at}: {n} items"));
        }
        if schema["items"].is_object() {
            for (i, item) in items.iter().enumerate() {
                check(doc, &schema["items"], item, &format!("{at}[{i}]"), errors);
            }
        }
    }
    if let Some(object) = value.as_object() {
        if let Some(required) = schema["required"].as_array() {
            for r in required {
                if !object.contains_key(r.as_str().unwrap()) {
                    errors.push(format!("{at}: required {r} is missing"));
                }
            }
        }
        let properties = schema["properties"].as_object();
        for (key, v) in object {
            match properties.and_then(|p| p.get(key)) {
                Some(s) => check(doc, s, v, &format!("{at}.{key}"), errors),
                None if schema["additionalProperties"] == json!(false) => {
                    errors.push(format!("{at}: {key} is not a documented property"))
                }
                None => {}
            }
        }
    }
}
