//! Bad-input corpus: hundreds of malformed requests, generated in code from the spec's create
//! body and from the other endpoints' inputs, against create, PATCH, list and the actions.
//!
//! Every answer must be a 4xx (no 5xx at all) in the API's one error shape (`statusCode` equal to
//! the status, a documented `code` of that status, `error`, `message`), and the table must be
//! exactly as before (a full dump compared). Some families also pin the exact status or code.

use std::sync::Arc;

use reqwest::Method;
use serde_json::{json, Value};
use vmapi_tests::*;

/// What a case sends as its body.
#[derive(Clone, Debug)]
enum Payload {
    /// No body.
    Empty,
    /// JSON, as `application/json`.
    Json(Value),
    /// Bytes with this content type (None: no content type).
    Raw(Vec<u8>, Option<&'static str>),
}

/// What a case expects beyond "a 4xx in the error shape".
#[derive(Clone, Copy, Debug)]
enum Want {
    /// Any 4xx.
    Any,
    /// This status.
    Status(u16),
    /// This status and code.
    Code(u16, &'static str),
}

#[derive(Clone, Debug)]
struct Case {
    label: String,
    method: Method,
    path: String,
    payload: Payload,
    want: Want,
}

fn case(
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

const CREATE: &str = "/api/virtual-machines";

/// Values of the wrong type or out of range for (almost) any field.
fn odd_values() -> Vec<(&'static str, Value)> {
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

/// Values of the odd ones that are valid for the field (optional fields, the other login
/// method): those are not bad input.
fn valid_variant(field: &str, value: &Value) -> bool {
    match field {
        "subscription" => value.is_null() || value == "",
        "access" | "quantity" => value.is_null(),
        "tags" => *value == json!([]),
        "authMethod" => *value == json!(0) || *value == json!(1),
        _ => false,
    }
}

/// Malformed create requests, all mutations of the spec's create body.
fn create_cases(existing_name: &str) -> Vec<Case> {
    let spec = spec_create_request();
    let seed = demo_seed();
    let post = |label: String, body: Value, want: Want| {
        case(label, Method::POST, CREATE, Payload::Json(body), want)
    };
    let with = |key: &str, value: Value| {
        let mut b = spec.clone();
        b[key] = value;
        b
    };
    let mut out = Vec::new();

    // Every field × every odd value (skipping the few that are valid for optional fields).
    let fields: Vec<String> = spec.as_object().unwrap().keys().cloned().collect();
    for field in &fields {
        for (what, value) in odd_values() {
            if valid_variant(field, &value) {
                continue;
            }
            out.push(post(
                format!("create: {field} = {what}"),
                with(field, value),
                Want::Any,
            ));
        }
    }

    // Each required field missing.
    for field in [
        "cloudProvider",
        "team",
        "project",
        "hostNames",
        "provider",
        "size",
        "price",
        "region",
        "image",
        "authMethod",
    ] {
        let mut b = spec.clone();
        b.as_object_mut().unwrap().remove(field);
        out.push(post(
            format!("create: without {field}"),
            b,
            Want::Code(400, "VALIDATION_FAILED"),
        ));
    }

    // Ids of the wrong kind: every id field given every other id of the request.
    let id_fields = [
        "cloudProvider",
        "team",
        "project",
        "provider",
        "size",
        "price",
    ];
    for field in id_fields {
        for other in id_fields.iter().filter(|o| **o != field) {
            out.push(post(
                format!("create: {field} = the {other} id"),
                with(field, spec[*other].clone()),
                Want::Any,
            ));
        }
        for (what, id) in [
            ("zero id", "000000000000000000000000"),
            ("unknown id", "ffffffffffffffffffffffff"),
            ("23 hex digits", "6548a383e2442d14b6bf968"),
            ("25 hex digits", "6548a383e2442d14b6bf968bb"),
            ("non-hex", "6548a383e2442d14b6bf968g"),
        ] {
            out.push(post(
                format!("create: {field} = {what}"),
                with(field, json!(id)),
                Want::Any,
            ));
        }
    }

    // Catalog references that exist but do not belong together: every combination of cloud
    // provider, provider, size and price of the demo catalog but the spec's own one.
    for cloud in &seed.cloud_providers {
        for provider in &seed.providers {
            for size in &seed.sizes {
                for price in &seed.prices {
                    let ids = [
                        cloud.id.to_string(),
                        provider.id.to_string(),
                        size.id.to_string(),
                        price.id.to_string(),
                    ];
                    if ids
                        == [
                            spec["cloudProvider"].as_str().unwrap(),
                            spec["provider"].as_str().unwrap(),
                            spec["size"].as_str().unwrap(),
                            spec["price"].as_str().unwrap(),
                        ]
                    {
                        continue;
                    }
                    let mut b = spec.clone();
                    b["cloudProvider"] = json!(ids[0]);
                    b["provider"] = json!(ids[1]);
                    b["size"] = json!(ids[2]);
                    b["price"] = json!(ids[3]);
                    out.push(post(
                        format!(
                            "create: catalog {} / {} / {} / {}",
                            ids[0], ids[1], ids[2], ids[3]
                        ),
                        b,
                        Want::Code(400, "VALIDATION_FAILED"),
                    ));
                }
            }
        }
    }
    // Regions and images of other providers (or altered ones) with the spec's offering.
    let offering = seed
        .providers
        .iter()
        .find(|p| p.id.to_string() == spec["provider"])
        .expect("the spec's provider is in the demo catalog");
    let mut regions: Vec<Value> = seed
        .providers
        .iter()
        .flat_map(|p| p.locations.iter().map(|l| serde_json::to_value(l).unwrap()))
        .filter(|r| {
            !offering
                .locations
                .iter()
                .any(|l| serde_json::to_value(l).unwrap() == *r)
        })
        .collect();
    let mut renamed = spec["region"].clone();
    renamed["physicalLocation"] = json!("France");
    regions.push(renamed);
    let mut relabelled = spec["region"].clone();
    relabelled["datacenter"]["displayName"] = json!("Berlin-Mitte");
    regions.push(relabelled);
    let mut moved = spec["region"].clone();
    moved["datacenter"]["name"] = json!("ber".repeat(3000));
    regions.push(moved);
    for region in regions {
        out.push(post(
            format!("create: region {region:.60}"),
            with("region", region),
            Want::Code(400, "VALIDATION_FAILED"),
        ));
    }
    let mut images: Vec<Value> = seed
        .providers
        .iter()
        .flat_map(|p| p.images.iter().map(|i| serde_json::to_value(i).unwrap()))
        .filter(|i| {
            !offering
                .images
                .iter()
                .any(|o| serde_json::to_value(o).unwrap() == *i)
        })
        .collect();
    let mut other_distribution = spec["image"].clone();
    other_distribution["distribution"] = json!("Debian");
    images.push(other_distribution);
    let mut other_version = spec["image"].clone();
    other_version["version"]["name"] = json!("99_99-lts");
    images.push(other_version);
    for image in images {
        out.push(post(
            format!("create: image {image}"),
            with("image", image),
            Want::Code(400, "VALIDATION_FAILED"),
        ));
    }

    // Nested fields of the wrong type or with extra keys.
    for (label, pointer, value) in [
        (
            "region.datacenter a string",
            "/region/datacenter",
            json!("berlin"),
        ),
        (
            "region.datacenter.name a number",
            "/region/datacenter/name",
            json!(5),
        ),
        (
            "region.datacenter.name null",
            "/region/datacenter/name",
            Value::Null,
        ),
        (
            "region.physicalLocation an array",
            "/region/physicalLocation",
            json!(["Germany"]),
        ),
        ("region extra key", "/region/zone", json!("a")),
        ("image.version null", "/image/version", Value::Null),
        (
            "image.version.name an object",
            "/image/version/name",
            json!({}),
        ),
        (
            "image.distribution an array",
            "/image/distribution",
            json!([]),
        ),
        ("image extra key", "/image/arch", json!("arm64")),
        (
            "region.datacenter extra key",
            "/region/datacenter/rack",
            json!(1),
        ),
    ] {
        let mut b = spec.clone();
        let (parent, key) = pointer.rsplit_once('/').unwrap();
        b.pointer_mut(parent).unwrap()[key] = value;
        out.push(post(
            format!("create: {label}"),
            b,
            Want::Code(400, "VALIDATION_FAILED"),
        ));
    }

    // Host names: invalid labels, too many, duplicates, taken.
    let names = |names: Vec<String>| {
        let mut b = spec.clone();
        b["quantity"] = json!(names.len());
        b["hostNames"] = json!(names);
        b
    };
    for bad in [
        "",
        "UPPER",
        "-lead",
        "trail-",
        "under_score",
        "dot.ted",
        "spa ce",
        "höst",
        "名前",
        "emoji-😀",
        "tab\tname",
        "new\nline",
        "nul\u{0}byte",
    ] {
        out.push(post(
            format!("create: host name {bad:?}"),
            names(vec![bad.to_string()]),
            Want::Code(400, "VALIDATION_FAILED"),
        ));
    }
    out.push(post(
        "create: host name of 64 characters".into(),
        names(vec!["a".repeat(64)]),
        Want::Code(400, "VALIDATION_FAILED"),
    ));
    out.push(post(
        "create: host name of 10000 characters".into(),
        names(vec!["a".repeat(10_000)]),
        Want::Code(400, "VALIDATION_FAILED"),
    ));
    out.push(post(
        "create: 11 host names".into(),
        names((0..11).map(|i| format!("many-{i}")).collect()),
        Want::Code(400, "VALIDATION_FAILED"),
    ));
    out.push(post(
        "create: 1000 host names".into(),
        names((0..1000).map(|i| format!("many-{i}")).collect()),
        Want::Code(400, "VALIDATION_FAILED"),
    ));
    out.push(post(
        "create: no host names".into(),
        names(vec![]),
        Want::Code(400, "VALIDATION_FAILED"),
    ));
    for dup in [
        vec!["twin", "twin"],
        vec!["a-1", "b-1", "a-1"],
        vec!["same"; 10],
    ] {
        out.push(post(
            format!("create: duplicate host names {dup:?}"),
            names(dup.iter().map(|s| s.to_string()).collect()),
            Want::Code(409, "DUPLICATE_HOST_NAME"),
        ));
    }
    out.push(post(
        format!("create: taken host name {existing_name}"),
        names(vec![existing_name.to_string()]),
        Want::Code(409, "HOST_NAME_TAKEN"),
    ));
    out.push(post(
        "create: a taken host name among new ones".into(),
        names(vec![
            "fresh-1".into(),
            existing_name.into(),
            "fresh-2".into(),
        ]),
        Want::Code(409, "HOST_NAME_TAKEN"),
    ));
    out.push(post(
        "create: host names an array of numbers".into(),
        with("hostNames", json!([1, 2])),
        Want::Code(400, "VALIDATION_FAILED"),
    ));
    out.push(post(
        "create: host names a string".into(),
        with("hostNames", json!("kraud-1")),
        Want::Code(400, "VALIDATION_FAILED"),
    ));

    // Quantity: zero, negative, mismatched, huge, the wrong type.
    for (what, q) in [
        ("0", json!(0)),
        ("-1", json!(-1)),
        ("2 for one name", json!(2)),
        ("11", json!(11)),
        ("1.0", json!(1.0)),
        ("1.5", json!(1.5)),
        ("\"1\"", json!("1")),
        ("1e40", json!(1e40)),
        ("u32 max + 1", json!(u32::MAX as u64 + 1)),
        (
            "u32 max + 2 (wraps to 1 if truncated)",
            json!(u32::MAX as u64 + 2),
        ),
        ("u64 max", json!(u64::MAX)),
        ("i64 min", json!(i64::MIN)),
        ("true", json!(true)),
        ("[1]", json!([1])),
    ] {
        out.push(post(
            format!("create: quantity {what}"),
            with("quantity", q),
            Want::Code(400, "VALIDATION_FAILED"),
        ));
    }
    {
        let mut b = names((0..10).map(|i| format!("ten-{i}")).collect());
        b["quantity"] = json!(11);
        out.push(post(
            "create: quantity 11 with 10 names".into(),
            b,
            Want::Code(400, "VALIDATION_FAILED"),
        ));
    }

    // Teams and projects that do not exist, are another team's, or do not fit together.
    for (label, team, project, code) in [
        (
            "unknown team",
            "6548a41f38406c14db33b6ff",
            PROJECT,
            "TEAM_NOT_FOUND",
        ),
        ("another team", OTHER_TEAM, OTHER_PROJECT, "TEAM_NOT_FOUND"),
        (
            "unknown project",
            TEAM,
            "6548a41f38406c14db33b6ff",
            "PROJECT_NOT_FOUND",
        ),
        (
            "another team's project",
            TEAM,
            OTHER_PROJECT,
            "PROJECT_NOT_FOUND",
        ),
    ] {
        let mut b = spec.clone();
        b["team"] = json!(team);
        b["project"] = json!(project);
        out.push(post(format!("create: {label}"), b, Want::Code(404, code)));
    }

    // Secrets in the body, at any depth.
    for (label, pointer, value) in [
        ("password", "/password", json!("hunter2")),
        ("rootPassword", "/rootPassword", json!("hunter2")),
        (
            "privateKey",
            "/privateKey",
            json!("-----BEGIN OPENSSH PRIVATE KEY-----"),
        ),
        ("access.password", "/access", json!({"password": "x"})),
        ("region.secret", "/region/secret", json!("x")),
        ("client_secret", "/client_secret", json!("x")),
    ] {
        let mut b = spec.clone();
        let (parent, key) = pointer.rsplit_once('/').unwrap();
        let parent = if parent.is_empty() {
            &mut b
        } else {
            b.pointer_mut(parent).unwrap()
        };
        parent[key] = value;
        out.push(post(
            format!("create: carries {label}"),
            b,
            Want::Code(400, "VALIDATION_FAILED"),
        ));
    }

    // Own public keys that are not acceptable.
    let ed25519 =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOAKEyfwmZRghqzj9JLL8xl+SfAN+bqcjzApJNJ0S2Ck";
    for (label, access, auth_method) in [
        ("garbage key", json!({"sshPublicKey": "hello world"}), 1),
        (
            "truncated key",
            json!({"sshPublicKey": "ssh-ed25519 AAAA"}),
            1,
        ),
        (
            "ecdsa key",
            json!({"sshPublicKey": "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBEmKSENjQEezOmxkZMy7opKgwFB9nkt5YRrYMjNuG5N87uRgg6CLrbo5wAdT/y6v0mKV0U2w0WZ2YjMGKWo=" }),
            1,
        ),
        (
            "key with options",
            json!({"sshPublicKey": format!("command=\"id\" {ed25519}")}),
            1,
        ),
        (
            "two lines",
            json!({"sshPublicKey": format!("{ed25519}\n{ed25519}")}),
            1,
        ),
        (
            "key for a password login",
            json!({"sshPublicKey": ed25519}),
            0,
        ),
        ("key a number", json!({"sshPublicKey": 5}), 1),
        ("access without a key", json!({}), 1),
        (
            "access extra key",
            json!({"sshPublicKey": ed25519, "user": "root"}),
            1,
        ),
        ("access a string", json!(ed25519), 1),
    ] {
        let mut b = with("access", access);
        b["authMethod"] = json!(auth_method);
        out.push(post(
            format!("create: {label}"),
            b,
            Want::Code(400, "VALIDATION_FAILED"),
        ));
    }

    // Fields the request may not carry.
    for field in [
        "status",
        "owner",
        "_id",
        "version",
        "pendingOp",
        "isBlocked",
        "ipConfigurations",
        "Team",
    ] {
        out.push(post(
            format!("create: unknown field {field}"),
            with(field, json!(1)),
            Want::Code(400, "VALIDATION_FAILED"),
        ));
    }

    // Expiry in the past or not a timestamp.
    for (what, at) in [
        ("in the past", json!("2000-01-01T00:00:00.000Z")),
        ("now-ish in 1970", json!("1970-01-01T00:00:00Z")),
        ("garbage", json!("tomorrow")),
        ("a number", json!(1_900_000_000)),
        ("year 10000", json!("10000-01-01T00:00:00Z")),
    ] {
        out.push(post(
            format!("create: expiresAt {what}"),
            with("expiresAt", at),
            Want::Code(400, "VALIDATION_FAILED"),
        ));
    }

    // Tags: too many, too long, empty, control characters, wrong types.
    for (what, tags) in [
        (
            "21 tags",
            json!((0..21).map(|i| format!("t{i}")).collect::<Vec<_>>()),
        ),
        ("an empty tag", json!([""])),
        ("a tag of 65 characters", json!(["t".repeat(65)])),
        ("a tag of 65 unicode characters", json!(["ü".repeat(65)])),
        ("a tag with a bell", json!(["a\u{7}b"])),
        ("a tag with a newline", json!(["a\nb"])),
        ("a number tag", json!([5])),
        ("a nested array", json!([["a"]])),
        ("an object", json!({"env": "dev"})),
    ] {
        out.push(post(
            format!("create: tags {what}"),
            with("tags", tags),
            Want::Code(400, "VALIDATION_FAILED"),
        ));
    }

    // Wrapped bodies gone wrong.
    let mut bad_inner = spec.clone();
    bad_inner["team"] = json!("xyz");
    for (what, body) in [
        ("data null", json!({"data": null})),
        ("data an array", json!({"data": [spec.clone()]})),
        ("data a string", json!({"data": "spec"})),
        ("data with a bad field", json!({"data": bad_inner})),
        (
            "data beside another key",
            json!({"data": spec.clone(), "meta": 1}),
        ),
        ("doubly wrapped", json!({"data": {"data": spec.clone()}})),
    ] {
        out.push(post(
            format!("create: {what}"),
            body,
            Want::Code(400, "VALIDATION_FAILED"),
        ));
    }

    // Bodies that are not objects.
    for (what, body) in [
        ("an array", json!([spec.clone()])),
        ("a number", json!(42)),
        ("a string", json!("create")),
        ("null", Value::Null),
        ("true", json!(true)),
    ] {
        out.push(post(
            format!("create: body {what}"),
            body,
            Want::Code(400, "VALIDATION_FAILED"),
        ));
    }

    out.extend(raw_body_cases(Method::POST, CREATE, &spec));
    out
}

/// The same bodies as bytes: invalid JSON, wrong content types, oversized.
fn raw_body_cases(method: Method, path: &str, valid: &Value) -> Vec<Case> {
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
fn bad_ids() -> Vec<(&'static str, String, Want)> {
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

/// PATCH, actions and credentials with bad bodies or bad ids.
fn vm_cases(target: &str, taken: &str, creating: &str) -> Vec<Case> {
    let path = format!("/api/virtual-machines/{target}");
    let patch = |label: String, body: Value, want: Want| {
        case(label, Method::PATCH, &path, Payload::Json(body), want)
    };
    let invalid = Want::Code(400, "VALIDATION_FAILED");
    let mut out = Vec::new();
    for (what, body, want) in [
        ("nothing", json!({}), invalid),
        ("name null only", json!({"name": null}), invalid),
        ("tags null only", json!({"tags": null}), invalid),
        ("empty name", json!({"name": ""}), invalid),
        ("upper-case name", json!({"name": "UPPER"}), invalid),
        ("numeric name", json!({"name": 5}), invalid),
        ("array name", json!({"name": ["a"]}), invalid),
        ("object name", json!({"name": {"first": "a"}}), invalid),
        ("name of 64", json!({"name": "a".repeat(64)}), invalid),
        ("unicode name", json!({"name": "höst"}), invalid),
        ("emoji name", json!({"name": "😀"}), invalid),
        (
            "taken name",
            json!({"name": taken}),
            Want::Code(409, "HOST_NAME_TAKEN"),
        ),
        ("tags a string", json!({"tags": "x"}), invalid),
        ("empty tag", json!({"tags": [""]}), invalid),
        ("numeric tag", json!({"tags": [1]}), invalid),
        (
            "21 tags",
            json!({"tags": (0..21).map(|i| i.to_string()).collect::<Vec<_>>()}),
            invalid,
        ),
        (
            "1000 tags",
            json!({"tags": (0..1000).map(|i| i.to_string()).collect::<Vec<_>>()}),
            invalid,
        ),
        ("tag of 65", json!({"tags": ["x".repeat(65)]}), invalid),
        (
            "tag with a control character",
            json!({"tags": ["a\u{1b}[31m"]}),
            invalid,
        ),
        (
            "expiry in the past",
            json!({"expiresAt": "2000-01-01T00:00:00.000Z"}),
            invalid,
        ),
        ("expiry garbage", json!({"expiresAt": "soon"}), invalid),
        ("expiry a number", json!({"expiresAt": 5}), invalid),
        ("status", json!({"status": 3}), invalid),
        ("owner", json!({"owner": "me"}), invalid),
        ("team", json!({"team": TEAM}), invalid),
        ("version", json!({"version": 99}), invalid),
        (
            "a valid name beside an unknown field",
            json!({"name": "fine-name", "x": 1}),
            invalid,
        ),
        ("password", json!({"tags": ["a"], "password": "x"}), invalid),
        ("an array", json!([{"name": "a"}]), invalid),
        ("null", Value::Null, invalid),
        ("a number", json!(1), invalid),
        (
            "wrapped",
            json!({"data": {"name": "wrapped-name"}}),
            invalid,
        ),
    ] {
        out.push(patch(format!("PATCH: {what}"), body, want));
    }
    out.extend(raw_body_cases(
        Method::PATCH,
        &path,
        &json!({"tags": ["from-raw"]}),
    ));

    // Every VM route with a bad id (valid bodies where there are bodies).
    for (what, id, want) in bad_ids() {
        let vm = format!("/api/virtual-machines/{id}");
        for (method, p, payload) in [
            (Method::GET, vm.clone(), Payload::Empty),
            (
                Method::PATCH,
                vm.clone(),
                Payload::Json(json!({"tags": ["x"]})),
            ),
            (Method::DELETE, vm.clone(), Payload::Empty),
            (Method::PUT, format!("{vm}/start"), Payload::Empty),
            (Method::PUT, format!("{vm}/stop"), Payload::Empty),
            (Method::GET, format!("{vm}/credentials"), Payload::Empty),
        ] {
            out.push(case(
                format!("{method} with {what} as id"),
                method,
                &p,
                payload,
                want,
            ));
        }
    }
    // Empty ids (no route, or an invalid id) and extra segments (no route).
    for (p, want) in [
        ("/api/virtual-machines//start".to_string(), Want::Any),
        ("/api/virtual-machines//stop".to_string(), Want::Any),
        (
            format!("/api/virtual-machines/{target}/hibernate"),
            Want::Code(404, "ROUTE_NOT_FOUND"),
        ),
        (
            format!("/api/virtual-machines/{target}/start/now"),
            Want::Code(404, "ROUTE_NOT_FOUND"),
        ),
    ] {
        out.push(case(
            format!("PUT {p}"),
            Method::PUT,
            &p,
            Payload::Empty,
            want,
        ));
    }
    // Known paths, wrong methods.
    for (method, p) in [
        (
            Method::POST,
            format!("/api/virtual-machines/{target}/start"),
        ),
        (Method::GET, format!("/api/virtual-machines/{target}/stop")),
        (
            Method::DELETE,
            format!("/api/virtual-machines/{target}/credentials"),
        ),
        (Method::PUT, CREATE.to_string()),
        (Method::POST, format!("/api/virtual-machines/{target}")),
        (
            Method::DELETE,
            format!("/api/teams/{TEAM}/projects/{PROJECT}/virtual-machines"),
        ),
    ] {
        out.push(case(
            format!("{method} {p}"),
            method,
            &p,
            Payload::Empty,
            Want::Code(405, "METHOD_NOT_ALLOWED"),
        ));
    }
    // Start and stop of a VM still being created.
    for action in ["start", "stop"] {
        out.push(case(
            format!("{action} while creating"),
            Method::PUT,
            &format!("/api/virtual-machines/{creating}/{action}"),
            Payload::Empty,
            Want::Code(409, "ILLEGAL_TRANSITION"),
        ));
    }
    out
}

/// List requests with bad query parameters or path ids.
fn list_cases() -> Vec<Case> {
    let base = format!("/api/teams/{TEAM}/projects/{PROJECT}/virtual-machines");
    let param = Want::Code(400, "INVALID_PARAMETER");
    let mut out = Vec::new();
    let long_cursor = "A".repeat(8000);
    for query in [
        "limit=0",
        "limit=-1",
        "limit=201",
        "limit=1000000000000000000000000",
        "limit=abc",
        "limit=",
        "limit=1.5",
        "limit=%205",
        "limit=0x10",
        "limit=1e2",
        "limit=%ZZ",
        "limit=1&limit=2",
        "cursor=",
        "cursor=garbage",
        "cursor=%FF%FE",
        "cursor=AAAAAAAAAAAAAAAAAAAAAAAA",
        "cursor=eyJ0ZWFtIjoiNjU0OGE0MWYzODQwNmMxNGRiMzNiNjFlIn0",
        "cursor=..%2F..%2Fetc%2Fpasswd",
        &format!("cursor={long_cursor}"),
        "cursor=a&cursor=b",
        "color=red",
        "LIMIT=5",
        "limit=5&sort=name",
        "limit",
        "=5",
    ] {
        out.push(case(
            format!("list ?{query:.60}"),
            Method::GET,
            &format!("{base}?{query}"),
            Payload::Empty,
            param,
        ));
    }
    for (what, team, project, want) in [
        ("team not an id", "x", PROJECT, param),
        ("project not an id", TEAM, "y", param),
        ("team invalid percent-encoding", "%C3%28", PROJECT, param),
        ("project invalid percent-encoding", TEAM, "%FF", param),
        (
            "team of 25 digits",
            "6548a41f38406c14db33b61e0",
            PROJECT,
            param,
        ),
        (
            "unknown team",
            "6548a41f38406c14db33b6ff",
            PROJECT,
            Want::Code(404, "TEAM_NOT_FOUND"),
        ),
        (
            "unknown project",
            TEAM,
            "6548a41f38406c14db33b6ff",
            Want::Code(404, "PROJECT_NOT_FOUND"),
        ),
        (
            "another team's project",
            TEAM,
            OTHER_PROJECT,
            Want::Code(404, "PROJECT_NOT_FOUND"),
        ),
        (
            "another team",
            OTHER_TEAM,
            OTHER_PROJECT,
            Want::Code(404, "TEAM_NOT_FOUND"),
        ),
    ] {
        out.push(case(
            format!("list: {what}"),
            Method::GET,
            &format!("/api/teams/{team}/projects/{project}/virtual-machines"),
            Payload::Empty,
            want,
        ));
    }
    out
}

/// The documented status of every error code (`shared/http/src/error.rs`).
const RULES: &str = "/api/security-rules";

/// Values of the odd ones that are valid for a security-rule field (optional fields; a short
/// name or description): those are not bad input.
fn valid_rule_variant(field: &str, value: &Value) -> bool {
    match field {
        "virtualMachine" | "protocol" | "portRange" | "name" => {
            field == "name" && *value == json!("x")
        }
        "description" => value.is_null() || *value == json!("") || *value == json!("x"),
        _ => value.is_null(),
    }
}

/// Malformed security-rule requests: mutations of a valid rule for `target` (a running
/// Kraud.Cloud VM), rules Kraud.Cloud cannot express, raw bodies, and bad ids on the rule routes.
fn rule_cases(target: &str) -> Vec<Case> {
    let valid = json!({"virtualMachine": target, "name": "corpus-rule", "protocol": "*",
        "portRange": ["*"]});
    let invalid = Want::Code(400, "VALIDATION_FAILED");
    let post = |label: String, body: Value, want: Want| {
        case(label, Method::POST, RULES, Payload::Json(body), want)
    };
    let mut out = Vec::new();
    for field in [
        "virtualMachine",
        "name",
        "description",
        "direction",
        "protocol",
        "portRange",
        "cidrBlock",
        "source",
        "priority",
        "access",
        "destinationPortRange",
        "sourceAddressPrefix",
        "sourcePortRange",
        "destination",
        "destinationAddressPrefix",
    ] {
        for (what, value) in odd_values() {
            if valid_rule_variant(field, &value) {
                continue;
            }
            let mut body = valid.clone();
            body[field] = value;
            out.push(post(format!("rule: {field} {what}"), body, Want::Any));
        }
    }
    for field in ["virtualMachine", "name", "protocol", "portRange"] {
        let mut body = valid.clone();
        body.as_object_mut().unwrap().remove(field);
        out.push(post(format!("rule: without {field}"), body, invalid));
    }
    for field in [
        "fromPort",
        "ipProtocol",
        "rules",
        "_id",
        "createdAt",
        "applied",
    ] {
        let mut body = valid.clone();
        body[field] = json!(1);
        out.push(post(format!("rule: unknown field {field}"), body, invalid));
    }
    for (what, patch) in [
        ("port 22", json!({"protocol": "Tcp", "portRange": ["22"]})),
        ("udp", json!({"protocol": "Udp"})),
        ("outbound", json!({"direction": "Outbound"})),
        ("one network", json!({"cidrBlock": "203.0.113.0/24"})),
        ("IPv6", json!({"cidrBlock": "::/0"})),
    ] {
        let mut body = valid.clone();
        for (k, v) in patch.as_object().unwrap() {
            body[k] = v.clone();
        }
        out.push(post(
            format!("rule: Kraud.Cloud cannot filter by {what}"),
            body,
            Want::Code(422, "UNSUPPORTED_BY_PROVIDER"),
        ));
    }
    let mut missing = valid.clone();
    missing["virtualMachine"] = json!("654a11e60b23ef1b0f36d44e");
    out.push(post(
        "rule: a missing VM".into(),
        missing,
        Want::Code(404, "VM_NOT_FOUND"),
    ));
    out.push(post("rule: an array".into(), json!([valid]), invalid));
    out.extend(raw_body_cases(Method::POST, RULES, &valid));
    for (what, id, want) in bad_ids() {
        out.push(case(
            format!("list rules of {what}"),
            Method::GET,
            &format!("/api/virtual-machines/{id}/security-rules"),
            Payload::Empty,
            want,
        ));
        let want = match want {
            Want::Code(404, _) => Want::Code(404, "SECURITY_RULE_NOT_FOUND"),
            other => other,
        };
        out.push(case(
            format!("delete rule {what}"),
            Method::DELETE,
            &format!("{RULES}/{id}"),
            Payload::Empty,
            want,
        ));
    }
    out
}

fn status_of_code(code: &str) -> Option<u16> {
    vmapi_http::error::ALL_CODES
        .iter()
        .find(|(c, _)| *c == code)
        .map(|(_, s)| *s)
}

/// Sends a case as OWNER; returns a problem, if any.
async fn run(app: &TestApp, token: &str, c: &Case) -> Option<String> {
    let mut req = app
        .http
        .request(c.method.clone(), format!("{}{}", app.base, c.path))
        .bearer_auth(token);
    match &c.payload {
        Payload::Empty => {}
        Payload::Json(v) => req = req.json(v),
        Payload::Raw(bytes, ct) => {
            req = req.body(bytes.clone());
            if let Some(ct) = ct {
                req = req.header("content-type", *ct);
            }
        }
    }
    let resp = match req.send().await {
        Ok(r) => r,
        Err(e) => return Some(format!("{}: no answer: {e}", c.label)),
    };
    let status = resp.status().as_u16();
    let bytes = resp.bytes().await.unwrap_or_default();
    let text = String::from_utf8_lossy(&bytes);
    let shown: String = text.chars().take(300).collect();
    let body: Value = match serde_json::from_slice(&bytes) {
        Ok(v) => v,
        Err(_) => {
            return Some(format!(
                "{}: {status} with a body that is not JSON: {shown:?}",
                c.label
            ))
        }
    };
    if !(400..500).contains(&status) {
        return Some(format!("{}: status {status}: {shown}", c.label));
    }
    let code = body["code"].as_str().unwrap_or("");
    if body["statusCode"] != status
        || status_of_code(code) != Some(status)
        || !body["error"].is_string()
        || !body["message"].is_string()
    {
        return Some(format!(
            "{}: not the error shape: {status} {shown}",
            c.label
        ));
    }
    match c.want {
        Want::Any => None,
        Want::Status(s) if s == status => None,
        Want::Code(s, want) if s == status && want == code => None,
        other => Some(format!(
            "{}: expected {other:?}, got {status} {code}: {shown}",
            c.label
        )),
    }
}

#[tokio::test]
async fn a_corpus_of_bad_requests_is_refused_with_4xx_and_writes_nothing() {
    let app = Arc::new(TestApp::spawn().await);
    // A VM to aim at, one whose name is taken, and one still being created.
    let created = app
        .create(OWNER, &["corpus-target", "corpus-taken"])
        .await
        .expect(201)
        .json;
    let target = created[0]["_id"].as_str().unwrap().to_string();
    let running = demo_vm("corpus-running", vmapi_models::VmStatus::Running);
    app.seed_vm(&running).await;

    let mut corpus = create_cases("corpus-taken");
    let creating_vm = target.clone();
    // PATCH and actions aim at the running VM; start/stop "while creating" at the new one.
    corpus.extend(vm_cases(
        &running.id.to_string(),
        "corpus-taken",
        &creating_vm,
    ));
    corpus.extend(list_cases());
    corpus.extend(rule_cases(&running.id.to_string()));
    let by_family = |prefix: &str| {
        corpus
            .iter()
            .filter(|c| c.label.starts_with(prefix))
            .count()
    };
    let (creates, patches, lists) = (by_family("create:"), by_family("PATCH"), by_family("list"));
    eprintln!(
        "bad-input corpus: {} requests ({creates} create, {patches} PATCH, {lists} list, {} other)",
        corpus.len(),
        corpus.len() - creates - patches - lists
    );
    assert!(corpus.len() >= 200, "corpus has {} cases", corpus.len());

    let before = app.dump().await;
    let token = app.token(OWNER);
    // Eight at a time.
    let mut problems = Vec::new();
    for chunk in corpus.chunks(8) {
        let mut set = tokio::task::JoinSet::new();
        for c in chunk {
            let c = c.clone();
            let app = app.clone();
            let token = token.clone();
            set.spawn(async move { run(&app, &token, &c).await });
        }
        while let Some(r) = set.join_next().await {
            if let Some(p) = r.expect("case task") {
                problems.push(p);
            }
        }
    }
    let after = app.dump().await;
    assert!(
        problems.is_empty(),
        "{} of {} bad requests were not answered as they should be:\n{}",
        problems.len(),
        corpus.len(),
        problems.join("\n")
    );
    assert_eq!(after.len(), before.len(), "no item added or removed");
    assert!(after == before, "the table changed");
    // The targets are as they were.
    let vm = app
        .get(&format!("/api/virtual-machines/{}", running.id), OWNER)
        .await
        .expect(200)
        .json;
    assert_eq!(vm["name"], "corpus-running");
    assert_eq!(vm["status"], 3);
}
