//! What a rule body may say: the platform's bodies, what a cloud cannot express (422), bad bodies (400).

use super::*;

#[tokio::test]
async fn the_platforms_bodies_create_rules_beside_the_default_one() {
    let app = TestApp::spawn().await;
    let aws = vm_on(&app, AWS_PROVIDER, "rules-aws").await;
    let azure = vm_on(&app, AZURE_PROVIDER, "rules-azure").await;
    let kraud = vm_on(&app, KRAUD_PROVIDER, "rules-kraud").await;

    // Every VM starts with one default rule, not yet applied.
    for (vm, name, protocol, ports) in [
        (&aws, "AllowAnySSHInbound", "Tcp", json!(["22"])),
        (&azure, "AllowAnySSHInbound", "Tcp", json!(["22"])),
        (&kraud, "AllowAnyInbound", "*", json!(["*"])),
    ] {
        let l = list(&app, OWNER, vm).await.expect(200).json;
        assert_eq!(l.as_array().unwrap().len(), 1, "{l}");
        let d = &l[0];
        assert_eq!(d["name"], name);
        assert_eq!(d["protocol"], protocol);
        assert_eq!(d["portRange"], ports);
        assert_eq!(d["direction"], "Inbound");
        assert_eq!(d["access"], "Allow");
        assert_eq!(d["cidrBlock"], "0.0.0.0/0");
        assert_eq!(d["source"], "*");
        assert_eq!(d["priority"], 1000);
        assert_eq!(d["applied"], false);
        assert_eq!(d["virtualMachine"], vm.as_str());
        assert_eq!(d["rule"], d["_id"]);
        let rec = record(&app, vm).await;
        assert_eq!((rec.rules_revision, rec.rules_applied), (1, 0));
        assert_eq!(rec.pending_op.unwrap().op, OpKind::Create);
        assert!(
            pointer(&app, d["_id"].as_str().unwrap()).await.is_some(),
            "the default rule's pointer is written with the VM"
        );
        // The VM itself does not show its rules.
        let got = app
            .get(&format!("/api/virtual-machines/{vm}"), OWNER)
            .await
            .expect(200)
            .json;
        for field in ["rules", "rulesRevision", "rulesApplied"] {
            assert!(got.get(field).is_none(), "{field} in {got}");
        }
    }

    // The AWS example on the AWS VM.
    let r = post(&app, OWNER, &aws_example(&aws)).await.expect(201).json;
    assert_eq!(r["name"], "SSH");
    assert_eq!(r["direction"], "Inbound");
    assert_eq!(r["description"], "");
    assert_eq!(r["virtualMachine"], aws.as_str());
    assert_eq!(r["protocol"], "Tcp");
    assert_eq!(r["portRange"], json!(["22"]));
    assert_eq!(r["cidrBlock"], "0.0.0.0/0");
    assert_eq!(r["source"], "*");
    assert_eq!(r["access"], "Allow");
    assert_eq!(
        r["priority"], 1010,
        "the next free priority after the default"
    );
    assert_eq!(r["applied"], false);
    assert_eq!(r["rule"], r["_id"]);
    assert!(r["createdAt"].is_string() && r["updatedAt"].is_string());
    assert_eq!(
        record(&app, &aws).await.rules_revision,
        2,
        "the change bumps the revision"
    );

    // The Azure example on the Azure VM, and a neutral body wrapped as `data`.
    let r = post(&app, OWNER, &azure_example(&azure))
        .await
        .expect(201)
        .json;
    assert_eq!(r["name"], "Any");
    assert_eq!(r["priority"], 100);
    assert_eq!(r["protocol"], "*");
    assert_eq!(r["portRange"], json!(["8080"]));
    let neutral = json!({"data": {
        "virtualMachine": azure, "name": "dns-out", "direction": "Outbound", "protocol": "udp",
        "portRange": ["53", "8000-8090"], "cidrBlock": "2001:db8::/32", "access": "Deny",
        "description": "resolvers (v6)"
    }});
    let r = post(&app, OWNER, &neutral).await.expect(201).json;
    assert_eq!(r["direction"], "Outbound");
    assert_eq!(r["protocol"], "Udp");
    assert_eq!(r["access"], "Deny");
    assert_eq!(r["portRange"], json!(["53", "8000-8090"]));
    assert_eq!(r["cidrBlock"], "2001:db8::/32");
    assert_eq!(r["source"], "2001:db8::/32");
    assert_eq!(r["priority"], 1000, "priorities are per direction");
    let https = json!({"virtualMachine": azure, "name": "https", "protocol": "Tcp",
        "portRange": "443", "source": "203.0.113.0/24", "priority": 2000});
    let r = post(&app, OWNER, &https).await.expect(201).json;
    assert_eq!(r["cidrBlock"], "203.0.113.0/24");
    assert_eq!(r["source"], "203.0.113.0/24");

    // Inbound first, then by priority.
    let l = list(&app, OWNER, &azure).await.expect(200).json;
    assert_eq!(
        names(&l),
        ["Any", "AllowAnySSHInbound", "https", "dns-out"],
        "{l}"
    );
    assert!(l.as_array().unwrap().iter().all(|r| r["applied"] == false));
    let aws_list = list(&app, OWNER, &aws).await.expect(200).json;
    assert_eq!(names(&aws_list), ["AllowAnySSHInbound", "SSH"]);

    // Once the provisioner has applied the revision, the rules show as applied.
    let mut rec = record(&app, &azure).await;
    rec.rules_applied = rec.rules_revision;
    rec.version += 1;
    app.repo
        .replace_vm(&rec, rec.version - 1, &NameChange::default(), None)
        .await
        .unwrap();
    let l = list(&app, OWNER, &azure).await.expect(200).json;
    assert!(l.as_array().unwrap().iter().all(|r| r["applied"] == true));

    // Each change is in the VM's history with the rule's name.
    let events = app
        .get(&format!("/api/virtual-machines/{azure}/activity"), OWNER)
        .await
        .expect(200)
        .json;
    let created: Vec<&Value> = events
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "rule.create")
        .collect();
    assert_eq!(created.len(), 3, "{events}");
    assert_eq!(created[0]["detail"], "https");
    assert_eq!(created[0]["actor"], OWNER);
}

#[tokio::test]
async fn what_a_cloud_cannot_express_is_a_422_and_writes_nothing() {
    let app = TestApp::spawn().await;
    let kraud = vm_on(&app, KRAUD_PROVIDER, "unsupported-kraud").await;
    let aws = vm_on(&app, AWS_PROVIDER, "unsupported-aws").await;
    let before = app.dump().await;
    // A per-port rule on Kraud.Cloud (the platform's AWS example).
    let r = post(&app, OWNER, &aws_example(&kraud))
        .await
        .expect_error(422, "UNSUPPORTED_BY_PROVIDER");
    assert!(
        r.json["message"].as_str().unwrap().contains("Kraud.Cloud"),
        "{}",
        r.json
    );
    post(&app, OWNER, &azure_example(&kraud))
        .await
        .expect_error(422, "UNSUPPORTED_BY_PROVIDER");
    // Deny and outbound rules on AWS.
    let mut deny = aws_example(&aws);
    deny["access"] = json!("Deny");
    let r = post(&app, OWNER, &deny)
        .await
        .expect_error(422, "UNSUPPORTED_BY_PROVIDER");
    assert!(r.json["message"].as_str().unwrap().contains("Deny"));
    let mut outbound = aws_example(&aws);
    outbound["direction"] = json!("Outbound");
    outbound["name"] = json!("out");
    post(&app, OWNER, &outbound)
        .await
        .expect_error(422, "UNSUPPORTED_BY_PROVIDER");
    assert!(app.dump().await == before, "a refused rule wrote nothing");

    // What Kraud.Cloud can do: close (Deny) or open the address.
    let close = json!({"virtualMachine": kraud, "name": "close", "protocol": "*",
        "portRange": ["*"], "cidrBlock": "0.0.0.0/0", "access": "Deny"});
    post(&app, OWNER, &close).await.expect(201);
}

#[tokio::test]
async fn bad_bodies_are_400s_naming_every_field_and_write_nothing() {
    let app = TestApp::spawn().await;
    let vm = vm_on(&app, AZURE_PROVIDER, "bad-bodies").await;
    let valid =
        json!({"virtualMachine": vm, "name": "web", "protocol": "Tcp", "portRange": ["80"]});
    let with = |field: &str, value: Value| {
        let mut b = valid.clone();
        b[field] = value;
        b
    };
    let without = |field: &str| {
        let mut b = valid.clone();
        b.as_object_mut().unwrap().remove(field);
        b
    };
    let cases: Vec<(&str, Value, Vec<&str>)> = vec![
        ("no VM", without("virtualMachine"), vec!["virtualMachine"]),
        ("no name", without("name"), vec!["name"]),
        ("no protocol", without("protocol"), vec!["protocol"]),
        ("no ports", without("portRange"), vec!["portRange"]),
        (
            "bad VM id",
            with("virtualMachine", json!("xyz")),
            vec!["virtualMachine"],
        ),
        (
            "name with a space",
            with("name", json!("a b")),
            vec!["name"],
        ),
        (
            "name too long",
            with("name", json!("n".repeat(81))),
            vec!["name"],
        ),
        ("name a number", with("name", json!(5)), vec!["name"]),
        (
            "protocol gre",
            with("protocol", json!("gre")),
            vec!["protocol"],
        ),
        (
            "direction sideways",
            with("direction", json!("sideways")),
            vec!["direction"],
        ),
        (
            "access maybe",
            with("access", json!("maybe")),
            vec!["access"],
        ),
        ("port 0", with("portRange", json!(["0"])), vec!["portRange"]),
        (
            "port 70000",
            with("portRange", json!("70000")),
            vec!["portRange"],
        ),
        (
            "reversed range",
            with("portRange", json!(["90-80"])),
            vec!["portRange"],
        ),
        (
            "overlapping ranges",
            with("portRange", json!(["80-90", "85"])),
            vec!["portRange"],
        ),
        (
            "ports a number",
            with("portRange", json!(22)),
            vec!["portRange"],
        ),
        (
            "host bits",
            with("cidrBlock", json!("10.0.0.1/8")),
            vec!["cidrBlock"],
        ),
        (
            "prefix 33",
            with("cidrBlock", json!("10.0.0.0/33")),
            vec!["cidrBlock"],
        ),
        ("priority 99", with("priority", json!(99)), vec!["priority"]),
        (
            "priority 4097",
            with("priority", json!(4097)),
            vec!["priority"],
        ),
        (
            "priority negative",
            with("priority", json!(-1)),
            vec!["priority"],
        ),
        (
            "description é",
            with("description", json!("é")),
            vec!["description"],
        ),
        (
            "source port",
            with("sourcePortRange", json!("1024")),
            vec!["sourcePortRange"],
        ),
        (
            "ports twice",
            with("destinationPortRange", json!("80")),
            vec!["destinationPortRange"],
        ),
        (
            "unknown field",
            with("fromPort", json!(22)),
            vec!["fromPort"],
        ),
        (
            "several at once",
            json!({"virtualMachine": vm, "name": "-x", "protocol": "gre", "portRange": "0",
                "priority": 1}),
            vec!["name", "protocol", "portRange", "priority"],
        ),
    ];
    let before = app.dump().await;
    for (what, body, fields) in cases {
        let r = post(&app, OWNER, &body)
            .await
            .expect_error(400, "VALIDATION_FAILED");
        // Each detail's field (an unknown field is named in its message).
        let named: Vec<String> = r.json["details"]
            .as_array()
            .unwrap_or_else(|| panic!("{what}: no details: {}", r.json))
            .iter()
            .map(|d| format!("{} {}", d["field"], d["message"]))
            .collect();
        for f in fields {
            assert!(
                named.iter().any(|n| n.contains(f)),
                "{what}: {f} not named in {}",
                r.json
            );
        }
    }
    app.call(Method::POST, RULES, Some(OWNER), Some(&json!([valid])))
        .await
        .expect_error(400, "VALIDATION_FAILED");
    app.call_with(
        Method::POST,
        RULES,
        Some(OWNER),
        None,
        &[("content-type", b"application/json")],
    )
    .await
    .expect_error(400, "INVALID_JSON");
    for bad in [
        "nope",
        "654a11e60b23ef1b0f36d44",
        "654a11e60b23ef1b0f36d44eX",
    ] {
        delete(&app, OWNER, bad)
            .await
            .expect_error(400, "INVALID_PARAMETER");
        list(&app, OWNER, bad)
            .await
            .expect_error(400, "INVALID_PARAMETER");
    }
    assert!(app.dump().await == before, "bad requests wrote nothing");
    // Unknown VM: 404.
    let mut missing = valid.clone();
    missing["virtualMachine"] = json!(VmId::new().to_string());
    post(&app, OWNER, &missing)
        .await
        .expect_error(404, "VM_NOT_FOUND");
    assert!(app.dump().await == before);
}
