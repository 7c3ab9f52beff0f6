//! The mapping is the template's, and every item kind the service writes reads back from the
//! stream.

use super::*;

#[test]
fn the_consumer_follows_the_templates_event_source_mapping() {
    let t = template_json();
    let props =
        &t["Resources"]["ProvisionerFunction"]["Properties"]["Events"]["Stream"]["Properties"];
    let m = Mapping::provisioner();
    assert_eq!(props["StartingPosition"], m.starting_position.as_str());
    // BatchSize is a parameter; its default is what a deployment gets.
    let batch_param = props["BatchSize"]
        .as_str()
        .expect("BatchSize: !Ref a parameter");
    assert_eq!(
        t["Parameters"][batch_param]["Default"].as_u64(),
        Some(m.batch_size as u64)
    );
    assert_eq!(
        props["ParallelizationFactor"].as_u64(),
        Some(m.parallelization_factor as u64)
    );
    assert_eq!(props["BisectBatchOnFunctionError"], m.bisect_on_error);
    assert_eq!(props["MaximumRetryAttempts"], m.maximum_retry_attempts);
    assert_eq!(
        props["MaximumRecordAgeInSeconds"].as_u64(),
        Some(m.maximum_record_age.as_secs())
    );
    let reports = props["FunctionResponseTypes"]
        .as_array()
        .unwrap()
        .contains(&json!("ReportBatchItemFailures"));
    assert_eq!(reports, m.report_batch_item_failures);
    let in_template: Vec<Value> = props["FilterCriteria"]["Filters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| serde_json::from_str(f["Pattern"].as_str().unwrap()).unwrap())
        .collect();
    let in_code: Vec<Value> = m
        .filter_patterns
        .iter()
        .map(|p| serde_json::from_str(p).unwrap())
        .collect();
    assert_eq!(in_code, in_template);
}

// ---------------------------------------------------------------------------------------------
// Everything the service writes can be read back from the stream.

/// Every attribute value in `v` (a stream image or key) has exactly one type; the path of the
/// first one that does not (DynamoDB Local renders an empty map as `{}`).
fn untyped(v: &Value, path: &str) -> Option<String> {
    let map = v.as_object()?;
    for (name, attr) in map {
        let here = format!("{path}.{name}");
        let Some(obj) = attr.as_object() else {
            return Some(here);
        };
        if obj.len() != 1 {
            return Some(here);
        }
        let (kind, inner) = obj.iter().next().unwrap();
        match kind.as_str() {
            "M" => {
                if let Some(p) = untyped(inner, &here) {
                    return Some(p);
                }
            }
            "L" => {
                for (i, item) in inner.as_array().into_iter().flatten().enumerate() {
                    if let Some(p) = untyped(&json!({ i.to_string(): item }), &here) {
                        return Some(p);
                    }
                }
            }
            "S" | "N" | "B" | "BOOL" | "NULL" | "SS" | "NS" | "BS" => {}
            _ => return Some(here),
        }
    }
    None
}

#[tokio::test]
async fn every_item_kind_the_service_writes_reads_back_from_the_stream() {
    let app = TestApp::spawn().await;
    let (_sim, p) = app.simulated();
    let key = |k: &str| vec![("Idempotency-Key", k.as_bytes().to_vec())];
    let with_key = |m: Method, path: String, body: Option<Value>, k: &'static str| {
        let app = &app;
        async move {
            let headers = key(k);
            let headers: Vec<(&str, &[u8])> =
                headers.iter().map(|(n, v)| (*n, v.as_slice())).collect();
            app.call_with(m, &path, Some(OWNER), body.as_ref(), &headers)
                .await
        }
    };
    let mut body = spec_create_request();
    body["hostNames"] = json!(["stream-a"]);
    // An idempotent create (kept answer with no ETag) and an idempotent refusal (409).
    let created = with_key(
        Method::POST,
        "/api/virtual-machines".into(),
        Some(body.clone()),
        "k-create",
    )
    .await
    .expect(201);
    let id = created.json[0]["_id"].as_str().unwrap().to_string();
    with_key(
        Method::POST,
        "/api/virtual-machines".into(),
        Some(body),
        "k-refused",
    )
    .await
    .expect(409);
    app.settle(&p, &id).await;
    // A rule on an Azure VM (its pointer item, the VM's rule set, an activity event), then gone.
    let azure = app.vm_on(OWNER, "968d", "stream-azure").await;
    app.settle(&p, &azure).await;
    let rule = app
        .call(
            Method::POST,
            "/api/security-rules",
            Some(OWNER),
            Some(
                &json!({"virtualMachine": azure, "name": "https", "protocol": "Tcp",
                "portRange": "443", "source": "203.0.113.0/24", "priority": 2000}),
            ),
        )
        .await
        .expect(201);
    let rule_id = rule.json["_id"].as_str().unwrap().to_string();
    app.settle(&p, &azure).await;
    with_key(
        Method::DELETE,
        format!("/api/security-rules/{rule_id}"),
        None,
        "k-rule-del",
    )
    .await
    .expect(200);
    app.call(
        Method::PATCH,
        &format!("/api/virtual-machines/{id}"),
        Some(OWNER),
        Some(&json!({"name": "renamed", "tags": []})),
    )
    .await
    .expect(200);
    with_key(
        Method::PUT,
        format!("/api/virtual-machines/{id}/stop"),
        None,
        "k-stop",
    )
    .await
    .expect(200);
    app.settle(&p, &id).await;
    with_key(
        Method::DELETE,
        format!("/api/virtual-machines/{id}"),
        None,
        "k-delete",
    )
    .await
    .expect(200);
    app.settle(&p, &id).await;
    // The platform removes a project: its record goes, a tombstone is noted.
    app.repo
        .remove_owner(
            vmapi_core::Gone::Project(OTHER_PROJECT.parse().unwrap()),
            vmapi_models::Timestamp::now(),
        )
        .await
        .unwrap();
    p.note_gone(vmapi_core::Gone::Project(OTHER_PROJECT.parse().unwrap()))
        .await
        .unwrap();

    let records = all_records(&app).await;
    let mut kinds = BTreeSet::new();
    for r in &records {
        for image in ["Keys", "NewImage", "OldImage"] {
            if let Some(p) = untyped(&r["dynamodb"][image], image) {
                panic!("a stream record no consumer can decode ({p}): {r}");
            }
        }
        let mut with_arn = r.clone();
        with_arn["eventSourceARN"] = json!("arn:test");
        if let Err(e) = serde_json::from_value::<EventRecord>(with_arn) {
            panic!("a stream record that does not decode as Lambda's event ({e}): {r}");
        }
        let image = match &r["dynamodb"]["NewImage"] {
            Value::Null => &r["dynamodb"]["OldImage"],
            i => i,
        };
        if let Some(entity) = image["entity"]["S"].as_str() {
            kinds.insert(entity.to_string());
        }
    }
    for wanted in ["vm", "idempotency", "event", "team", "project"] {
        assert!(
            kinds.iter().any(|k| k.contains(wanted)),
            "no {wanted} item in the stream; kinds seen: {kinds:?}"
        );
    }
}
