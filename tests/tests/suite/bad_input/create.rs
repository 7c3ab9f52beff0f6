//! Malformed create requests, all mutations of the spec's create body.

use reqwest::Method;
use serde_json::{json, Value};
use vmapi_tests::*;

use super::case::{case, odd_values, raw_body_cases, Case, Payload, Want, CREATE};

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
pub(super) fn create_cases(existing_name: &str) -> Vec<Case> {
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
        .flat_map(|p| {
            p.locations
                .iter()
                .map(|l| serde_json::to_value(&l.region).unwrap())
        })
        .filter(|r| {
            !offering
                .locations
                .iter()
                .any(|l| serde_json::to_value(&l.region).unwrap() == *r)
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
