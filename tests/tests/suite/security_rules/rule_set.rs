//! The rule set as a whole: unique names and priorities, the limit, who may change it, delete, concurrent creates.

use super::*;

#[tokio::test]
async fn names_and_priorities_are_unique_and_the_rule_set_is_bounded() {
    let app = TestApp::spawn().await;
    let vm = vm_on(&app, AZURE_PROVIDER, "conflicts").await;
    post(&app, OWNER, &azure_example(&vm)).await.expect(201);
    let before = app.dump().await;
    for name in ["any", "ANY", "allowanysshinbound"] {
        let mut body = azure_example(&vm);
        body["name"] = json!(name);
        body["priority"] = json!(300);
        post(&app, OWNER, &body)
            .await
            .expect_error(409, "RULE_NAME_TAKEN");
    }
    let mut same_priority = azure_example(&vm);
    same_priority["name"] = json!("other");
    post(&app, OWNER, &same_priority)
        .await
        .expect_error(409, "PRIORITY_TAKEN");
    let mut taken_default = azure_example(&vm);
    taken_default["name"] = json!("other");
    taken_default["priority"] = json!(1000);
    post(&app, OWNER, &taken_default)
        .await
        .expect_error(409, "PRIORITY_TAKEN");
    assert!(app.dump().await == before, "conflicts wrote nothing");
    // The same priority in the other direction is free.
    same_priority["direction"] = json!("Outbound");
    post(&app, OWNER, &same_priority).await.expect(201);

    // A VM with the most rules it may have.
    let mut full = demo_vm("full-of-rules", VmStatus::Running);
    full.cloud_provider = CloudProviderId::parse(AZURE_CLOUD).unwrap();
    let user = UserId::parse(OWNER).unwrap();
    let now = Timestamp::now();
    for i in 0..vmapi_models::rules::MAX_RULES_PER_VM {
        let body: CreateRuleRequest = serde_json::from_value(json!({
            "virtualMachine": full.id, "name": format!("r{i}"), "protocol": "Tcp",
            "portRange": [format!("{}", 1000 + i)]
        }))
        .unwrap();
        let rule = body
            .parse()
            .unwrap()
            .into_rule(&full.rules, &user, 1, now)
            .unwrap();
        full.rules.push(rule);
    }
    full.rules_revision = 1;
    app.seed_vm(&full).await;
    let before = app.dump().await;
    let body = json!({"virtualMachine": full.id, "name": "one-more", "protocol": "Tcp",
        "portRange": "22"});
    let r = post(&app, OWNER, &body)
        .await
        .expect_error(409, "RULE_LIMIT_REACHED");
    assert!(r.json["message"].as_str().unwrap().contains("50"));
    assert!(app.dump().await == before);
    // Deleting one makes room.
    let first = full.rules[0].id.to_string();
    delete(&app, OWNER, &first).await.expect(200);
    post(&app, OWNER, &body).await.expect(201);
}

#[tokio::test]
async fn viewers_get_403_and_other_teams_404_on_every_rule_endpoint() {
    let app = TestApp::spawn().await;
    let (team, project) = app.seed_roles_team().await;
    let mut vm = demo_vm("authz-rules", VmStatus::Running);
    vm.team = team.parse().unwrap();
    vm.project = project.parse().unwrap();
    vm.rules = vec![SecurityRule::default_for(
        Some(CloudKind::Kraud),
        1,
        Timestamp::now(),
    )];
    vm.rules_revision = 1;
    app.seed_vm(&vm).await;
    let rule = vm.rules[0].id.to_string();
    let id = vm.id.to_string();
    let body = json!({"virtualMachine": id, "name": "open", "protocol": "*", "portRange": "*",
        "access": "Deny"});
    let before = app.dump().await;

    post(&app, "role-viewer", &body)
        .await
        .expect_error(403, "FORBIDDEN");
    delete(&app, "role-viewer", &rule)
        .await
        .expect_error(403, "FORBIDDEN");
    for outsider in [OWNER, OTHER_OWNER] {
        let r = post(&app, outsider, &body)
            .await
            .expect_error(404, "VM_NOT_FOUND");
        assert!(!r.json.to_string().contains("authz-rules"));
        list(&app, outsider, &id)
            .await
            .expect_error(404, "VM_NOT_FOUND");
        // The same answer as for a rule that does not exist.
        let r = delete(&app, outsider, &rule)
            .await
            .expect_error(404, "SECURITY_RULE_NOT_FOUND");
        assert!(!r.json.to_string().contains(&id), "{}", r.json);
        delete(
            &app,
            outsider,
            &vmapi_models::SecurityRuleId::new().to_string(),
        )
        .await
        .expect_error(404, "SECURITY_RULE_NOT_FOUND");
    }
    assert!(app.dump().await == before, "refusals wrote nothing");

    // Every member reads; owners, admins and members change.
    for user in ["role-owner", "role-admin", "role-member", "role-viewer"] {
        let l = list(&app, user, &id).await.expect(200).json;
        assert_eq!(names(&l)[0], "AllowAnyInbound");
    }
    for (i, user) in ["role-owner", "role-admin", "role-member"]
        .iter()
        .enumerate()
    {
        let mut b = body.clone();
        b["name"] = json!(format!("open-{i}"));
        let made = post(&app, user, &b).await.expect(201).json;
        delete(&app, user, made["_id"].as_str().unwrap())
            .await
            .expect(200);
    }
}

#[tokio::test]
async fn delete_answers_200_then_404_and_removes_the_pointer() {
    let app = TestApp::spawn().await;
    let vm = vm_on(&app, AWS_PROVIDER, "delete-rules").await;
    let made = post(&app, OWNER, &aws_example(&vm)).await.expect(201).json;
    let rule = made["_id"].as_str().unwrap().to_string();
    let default = list(&app, OWNER, &vm).await.json[0]["_id"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(pointer(&app, &rule).await.is_some());

    let r = delete(&app, OWNER, &rule).await.expect(200).json;
    assert_eq!(
        r,
        json!({"message": "Security rule deleted", "ruleId": rule, "vmId": vm})
    );
    assert!(
        pointer(&app, &rule).await.is_none(),
        "the pointer goes with the rule"
    );
    delete(&app, OWNER, &rule)
        .await
        .expect_error(404, "SECURITY_RULE_NOT_FOUND");
    // The default rule may go too.
    delete(&app, OWNER, &default).await.expect(200);
    let l = list(&app, OWNER, &vm).await.expect(200).json;
    assert_eq!(l, json!([]));
    let rec = record(&app, &vm).await;
    assert!(rec.rules.is_empty());
    assert_eq!(rec.rules_revision, 4);
    let events = app
        .get(&format!("/api/virtual-machines/{vm}/activity"), OWNER)
        .await
        .json;
    let deleted: Vec<&Value> = events
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "rule.delete")
        .collect();
    assert_eq!(deleted.len(), 2);
    assert_eq!(deleted[1]["detail"], "SSH");
    assert_eq!(deleted[0]["detail"], "AllowAnySSHInbound");

    // Purging a VM's record removes its rules' pointers.
    let mut gone = demo_vm("purged-rules", VmStatus::Deleted);
    gone.rules = vec![SecurityRule::default_for(
        Some(CloudKind::Kraud),
        1,
        Timestamp::now(),
    )];
    app.seed_vm(&gone).await;
    let rule = gone.rules[0].id.to_string();
    assert!(pointer(&app, &rule).await.is_some());
    app.repo.purge_vm(gone.id, gone.version).await.unwrap();
    assert!(pointer(&app, &rule).await.is_none());
}

#[tokio::test]
async fn concurrent_creates_of_one_name_make_exactly_one_rule() {
    let app = std::sync::Arc::new(TestApp::spawn().await);
    let vm = vm_on(&app, AZURE_PROVIDER, "race-rules").await;
    for round in 0..4 {
        let mut set = tokio::task::JoinSet::new();
        for i in 0..2 {
            let app = app.clone();
            let body = json!({"virtualMachine": vm, "name": format!("race-{round}"),
                "protocol": "Tcp", "portRange": [format!("{}", 2000 + round * 10 + i)]});
            set.spawn(async move { post(&app, OWNER, &body).await });
        }
        let mut statuses = Vec::new();
        while let Some(r) = set.join_next().await {
            let r = r.unwrap();
            if r.status.as_u16() == 409 {
                assert_eq!(r.json["code"], "RULE_NAME_TAKEN", "{}", r.json);
            }
            statuses.push(r.status.as_u16());
        }
        statuses.sort();
        assert_eq!(statuses, [201, 409], "round {round}");
    }
    let rec = record(&app, &vm).await;
    assert_eq!(rec.rules.len(), 5);
    assert_eq!(rec.rules_revision, 5);
}
