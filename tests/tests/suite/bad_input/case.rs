//! What a case is (a request and what its answer must be), and the families of cases more than
//! one endpoint gets: odd values, raw bodies gone wrong, path ids that are not VM ids.

use reqwest::Method;
use serde_json::{json, Value};

/// What a case sends as its body.
#[derive(Clone, Debug)]
pub(super) enum Payload {
    /// No body.
    Empty,
    /// JSON, as `application/json`.
    Json(Value),
    /// Bytes with this content type (None: no content type).
    Raw(Vec<u8>, Option<&'static str>),
}

/// What a case expects beyond "a 4xx in the error shape".
#[derive(Clone, Copy, Debug)]
pub(super) enum Want {
    /// Any 4xx.
    Any,
    /// This status.
    Status(u16),
    /// This status and code.
    Code(u16, &'static str),
}

#[derive(Clone, Debug)]
pub(super) struct Case {
    pub(super) label: String,
    pub(super) method: Method,
    pub(super) path: String,
    pub(super) payload: Payload,
    pub(super) want: Want,
}

pub(super) fn case(
    label: impl Into<String>,
    method: Method,
    path: &str,
    payload: Payload,
    want: Want,
) -> Case {
    Case {
        label: label.into(),
        method,
        path: path.to_string(),
        payload,
        want,
    }
}

pub(super) const CREATE: &str = "/api/virtual-machines";

/// Values of the wrong type or out of range for (almost) any field.
pub(super) fn odd_values() -> Vec<(&'static str, Value)> {
    vec![
        ("null", Value::Null),
        ("true", json!(true)),
        ("zero", json!(0)),
        ("negative", json!(-1)),
        ("fraction", json!(1.5)),
        ("huge float", json!(1e308)),
        ("u64 max", json!(u64::MAX)),
        ("i64 min", json!(i64::MIN)),
        ("empty string", json!("")),
        ("short string", json!("x")),
        ("emoji", json!("😀😀😀")),
        ("empty array", json!([])),
        ("array of null", json!([null])),
        ("empty object", json!({})),
        ("operator object", json!({"$gt": ""})),
        ("injection", json!("6548a383e2442d14b6bf968b' OR '1'='1")),
        ("long string", json!("z".repeat(5000))),
    ]
}

/// The same bodies as bytes: invalid JSON, wrong content types, oversized.
pub(super) fn raw_body_cases(method: Method, path: &str, valid: &Value) -> Vec<Case> {
    let valid_bytes = valid.to_string().into_bytes();
    let json_ct = Some("application/json");
    let mut out = Vec::new();
    for (what, bytes) in [
        ("truncated", valid_bytes[..valid_bytes.len() / 2].to_vec()),
        ("trailing comma", b"{\"name\": \"a\",}".to_vec()),
        ("single quotes", b"{'name': 'a'}".to_vec()),
        ("NaN", b"{\"quantity\": NaN}".to_vec()),
        ("comment", b"{/* c */ \"name\": \"a\"}".to_vec()),
        (
            "two objects",
            [valid_bytes.clone(), valid_bytes.clone()].concat(),
        ),
        ("invalid UTF-8", b"{\"name\": \"\xff\xfe\"}".to_vec()),
        (
            "BOM",
            [b"\xef\xbb\xbf".to_vec(), valid_bytes.clone()].concat(),
        ),
        ("lone surrogate", b"{\"name\": \"\\ud800\"}".to_vec()),
        ("empty", Vec::new()),
        ("whitespace", b"  \n\t ".to_vec()),
        ("nested 10000 deep", "[".repeat(10_000).into_bytes()),
        ("unclosed string", b"{\"name\": \"a".to_vec()),
        ("a bare word", b"create".to_vec()),
        (
            "a number over f64",
            format!("{{\"quantity\": 1{}}}", "0".repeat(400)).into_bytes(),
        ),
    ] {
        out.push(case(
            format!("{method} {path}: body {what}"),
            method.clone(),
            path,
            Payload::Raw(bytes, json_ct),
            Want::Status(400),
        ));
    }
    for ct in [
        None,
        Some("text/plain"),
        Some("application/xml"),
        Some("application/x-www-form-urlencoded"),
        Some("multipart/form-data; boundary=x"),
        Some("application/jsonx"),
        Some("json"),
        Some("text/json"),
    ] {
        out.push(case(
            format!("{method} {path}: content type {ct:?}"),
            method.clone(),
            path,
            Payload::Raw(valid_bytes.clone(), ct),
            Want::Code(415, "UNSUPPORTED_MEDIA_TYPE"),
        ));
    }
    let mut big = valid.clone();
    big["padding"] = json!("p".repeat(70 * 1024));
    for (what, bytes) in [
        ("64 KiB + 1 of spaces", vec![b' '; 64 * 1024 + 1]),
        ("a 70 KiB JSON object", big.to_string().into_bytes()),
        ("1 MiB", vec![b'['; 1024 * 1024]),
    ] {
        out.push(case(
            format!("{method} {path}: {what}"),
            method.clone(),
            path,
            Payload::Raw(bytes, json_ct),
            Want::Code(413, "PAYLOAD_TOO_LARGE"),
        ));
    }
    out
}

/// Path ids that are not VM ids, or no VM's.
pub(super) fn bad_ids() -> Vec<(&'static str, String, Want)> {
    let param = Want::Code(400, "INVALID_PARAMETER");
    vec![
        ("a word", "nope".into(), param),
        ("23 hex digits", "0".repeat(23), param),
        ("25 hex digits", "0".repeat(25), param),
        ("24 non-hex", "g".repeat(24), param),
        ("24 with unicode", "654a11e60b23ef1b0f36d4é".into(), param),
        (
            "an encoded slash",
            "654a11e60b23%2F1b0f36d44e".into(),
            param,
        ),
        (
            "an encoded NUL",
            "654a11e60b23ef1b0f36d44e%00".into(),
            param,
        ),
        (
            "an encoded space",
            "%20654a11e60b23ef1b0f36d44e".into(),
            param,
        ),
        ("10000 characters", "a".repeat(10_000), param),
        ("minus one", "-1".into(), param),
        ("null", "null".into(), param),
        ("invalid percent-encoding", "%FF%FE".into(), param),
        (
            "a missing VM",
            "654a11e60b23ef1b0f36d44e".into(),
            Want::Code(404, "VM_NOT_FOUND"),
        ),
        (
            "a missing VM in upper case",
            "654A11E60B23EF1B0F36D44E".into(),
            Want::Code(404, "VM_NOT_FOUND"),
        ),
    ]
}
