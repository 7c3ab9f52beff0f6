//! The cleanup job against DynamoDB Local: every kind of staleness, dry runs, overlapping runs,
//! and the read capacity of a run against the size of the table.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use vmapi_core::{Cleanup, CleanupPolicy, Provisioner, Summary, SystemClock};
use vmapi_models::{
    AuthMethod, CloudKind, LoginSecret, OpKind, PendingOp, ProjectId, SecretPath, Sensitive,
    TeamId, Timestamp, VmId, VmRecord, VmStatus,
};
use vmapi_tests::*;

fn hours_ago(h: i64) -> Timestamp {
    Timestamp::from_unix_millis(Timestamp::now().unix_millis() - h * 3600 * 1000).unwrap()
}

fn vm(name: &str, status: VmStatus, age_hours: i64) -> VmRecord {
    let mut v = demo_vm(name, status);
    v.created_at = hours_ago(age_hours + 1);
    v.updated_at = hours_ago(age_hours);
    v
}

fn cleanup(app: &TestApp, provisioner: Option<Provisioner>, dry_run: bool) -> Cleanup {
    Cleanup::new(
        app.repo.clone(),
        Arc::new(SystemClock),
        provisioner,
        CleanupPolicy {
            transitional_after: Duration::from_secs(3600),
            failed_retention: Duration::from_secs(24 * 3600),
            deleted_retention: Duration::from_secs(48 * 3600),
            dry_run,
            concurrency: 4,
            time_budget: Duration::from_secs(60),
            max_candidates: 500,
            orphan_grace: Duration::ZERO,
            regions: vec![
                (CloudKind::Aws, "eu-west-1".into()),
                (CloudKind::Azure, String::new()),
                (CloudKind::Kraud, String::new()),
            ],
            deployment: vmapi_models::DeploymentId::local(),
        },
    )
}

async fn status_of(app: &TestApp, id: VmId) -> Option<VmStatus> {
    use vmapi_core::Repository;
    app.repo.get_vm(id).await.unwrap().map(|v| v.status)
}

#[tokio::test]
async fn every_kind_of_staleness_is_handled_and_healthy_vms_are_left_alone() {
    let app = TestApp::spawn().await;
    let (sim, provisioner) = app.simulated();

    // Stuck: a create whose stream record was lost long ago (no pendingOp), and one with a
    // pendingOp older than the deadline.
    let lost = vm("lost-create", VmStatus::Creating, 3);
    let mut stuck = vm("stuck-stop", VmStatus::Stopping, 3);
    stuck.pending_op = Some(PendingOp::new(OpKind::Stop, hours_ago(3)));
    // Failed long ago, failed recently.
    let mut old_failed = vm("old-failed", VmStatus::Failed, 30);
    old_failed.status_reason = Some("quota".into());
    let new_failed = vm("new-failed", VmStatus::Failed, 1);
    // Deleted long ago (purge), recently (keep).
    let old_deleted = vm("old-deleted", VmStatus::Deleted, 72);
    let new_deleted = vm("new-deleted", VmStatus::Deleted, 1);
    // Past its expiry; expiring later.
    let mut expired = vm("expired", VmStatus::Running, 2);
    expired.expires_at = Some(hours_ago(1));
    let mut later = vm("later", VmStatus::Running, 2);
    later.expires_at =
        Some(Timestamp::from_unix_millis(Timestamp::now().unix_millis() + 3_600_000).unwrap());
    // Orphans: team gone, project gone (only VMs that are candidates anyway are checked).
    let mut orphan_team = vm("orphan-team", VmStatus::Failed, 30);
    orphan_team.team = TeamId::new();
    let mut orphan_project = vm("orphan-project", VmStatus::Running, 2);
    orphan_project.project = ProjectId::new();
    orphan_project.expires_at = Some(hours_ago(1));
    // Healthy and recent.
    let healthy = vm("healthy", VmStatus::Running, 100);
    let fresh = vm("fresh-create", VmStatus::Creating, 0);

    let all = [
        &lost,
        &stuck,
        &old_failed,
        &new_failed,
        &old_deleted,
        &new_deleted,
        &expired,
        &later,
        &orphan_team,
        &orphan_project,
        &healthy,
        &fresh,
    ];
    for v in all {
        app.seed_vm(v).await;
    }
    // The stuck stop needs a VM in the cloud to stop.
    let c = vmapi_core::cloud::CloudDriver::create(sim.as_ref(), &spec_of(&stuck))
        .await
        .unwrap();
    assert_eq!(c.state, vmapi_core::cloud::CloudState::Running);

    let summary = cleanup(&app, Some(provisioner.clone()), false)
        .run()
        .await
        .unwrap();
    assert_eq!(summary.candidates, 7, "{summary:#?}");
    assert_eq!(summary.repaired, 2, "{summary:#?}");
    assert_eq!(summary.deleted, 4, "{summary:#?}");
    assert_eq!(summary.purged, 1, "{summary:#?}");
    assert_eq!(summary.failed, 0, "{summary:#?}");

    assert_eq!(
        status_of(&app, lost.id).await,
        Some(VmStatus::Running),
        "re-armed and provisioned"
    );
    assert_eq!(
        status_of(&app, stuck.id).await,
        Some(VmStatus::Stopped),
        "the stuck stop finished"
    );
    for gone in [&old_failed, &expired, &orphan_team, &orphan_project] {
        assert_eq!(
            status_of(&app, gone.id).await,
            Some(VmStatus::Deleted),
            "{}",
            gone.name
        );
    }
    assert_eq!(status_of(&app, old_deleted.id).await, None, "purged");
    for kept in [&new_failed, &new_deleted, &later, &healthy, &fresh] {
        let st = status_of(&app, kept.id).await;
        assert_eq!(st, Some(kept.status), "{} untouched", kept.name);
    }
    // Each action is recorded on the VM.
    let events: Vec<_> = app
        .dump()
        .await
        .into_iter()
        .filter(|i| i["sk"].as_s().unwrap().starts_with("EVENT#"))
        .map(|i| {
            (
                i["pk"].as_s().unwrap().clone(),
                i["kind"].as_s().unwrap().clone(),
            )
        })
        .collect();
    assert!(
        events.contains(&(format!("VM#{}", expired.id), "cleanup.deleted".into())),
        "{events:?}"
    );
    assert!(
        events.contains(&(format!("VM#{}", lost.id), "cleanup.repaired".into())),
        "{events:?}"
    );
    let reason = app
        .dump()
        .await
        .into_iter()
        .find(|i| {
            i["pk"].as_s().unwrap() == &format!("VM#{}", expired.id)
                && i.get("kind")
                    .and_then(|k| k.as_s().ok())
                    .map(String::as_str)
                    == Some("cleanup.deleted")
        })
        .and_then(|i| i.get("detail").and_then(|d| d.as_s().ok()).cloned())
        .expect("the delete is recorded with its reason");
    assert!(reason.contains("expired"), "{reason}");

    // A second run finds nothing more to do.
    let again = cleanup(&app, Some(provisioner), false).run().await.unwrap();
    assert_eq!(
        (again.repaired, again.deleted, again.purged),
        (0, 0, 0),
        "{again:#?}"
    );
}

#[tokio::test]
async fn a_dry_run_reports_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let (_sim, provisioner) = app.simulated();
    let mut expired = vm("expired", VmStatus::Running, 2);
    expired.expires_at = Some(hours_ago(1));
    app.seed_vm(&expired).await;
    app.seed_vm(&vm("old-failed", VmStatus::Failed, 30)).await;
    app.seed_vm(&vm("old-deleted", VmStatus::Deleted, 72)).await;
    let before = app.dump().await;
    let s: Summary = cleanup(&app, Some(provisioner), true).run().await.unwrap();
    assert!(s.dry_run);
    assert_eq!((s.deleted, s.purged), (2, 1), "{s:#?}");
    assert!(
        s.actions.iter().all(|a| a.contains("would ")),
        "{:?}",
        s.actions
    );
    assert_eq!(app.dump().await, before, "a dry run changes nothing");
    let line: Value =
        serde_json::from_str(&vmapi_core::cleanup::emf_line(&s, Timestamp::now())).unwrap();
    assert_eq!(
        line["_aws"]["CloudWatchMetrics"][0]["Namespace"],
        "VmApi/Cleanup"
    );
    assert_eq!(line["Deleted"], 2);
    assert_eq!(line["DryRun"], "true");
}

#[tokio::test]
async fn overlapping_runs_never_act_twice() {
    let app = TestApp::spawn().await;
    let (sim, provisioner) = app.simulated();
    let mut ids = Vec::new();
    for i in 0..12 {
        let mut v = vm(&format!("expired-{i}"), VmStatus::Running, 2);
        v.expires_at = Some(hours_ago(1));
        app.seed_vm(&v).await;
        vmapi_core::cloud::CloudDriver::create(sim.as_ref(), &spec_of(&v))
            .await
            .unwrap();
        ids.push(v.id);
    }
    let a = cleanup(&app, Some(provisioner.clone()), false);
    let b = cleanup(&app, Some(provisioner), false);
    let (ra, rb) = tokio::join!(a.run(), b.run());
    let (ra, rb) = (ra.unwrap(), rb.unwrap());
    assert_eq!(
        ra.deleted + rb.deleted,
        12,
        "each VM deleted once: {ra:#?} {rb:#?}"
    );
    assert_eq!(ra.failed + rb.failed, 0);
    for id in &ids {
        assert_eq!(status_of(&app, *id).await, Some(VmStatus::Deleted));
    }
    let deletes = sim
        .calls()
        .iter()
        .filter(|c| c.starts_with("delete"))
        .count();
    assert!(deletes >= 12, "every instance torn down");
    let events = app
        .dump()
        .await
        .into_iter()
        .filter(|i| {
            i.get("kind")
                .and_then(|k| k.as_s().ok())
                .map(String::as_str)
                == Some("cleanup.deleted")
        })
        .count();
    assert_eq!(events, 12, "one delete recorded per VM");
}

/// Read capacity of one dry run over a table with `healthy` healthy VMs and 10 stale ones.
async fn capacity_of_a_run(healthy: usize) -> f64 {
    let app = TestApp::spawn().await;
    let mut vms: Vec<VmRecord> = (0..healthy)
        .map(|i| vm(&format!("healthy-{i}"), VmStatus::Running, 100))
        .collect();
    for i in 0..10 {
        let mut v = vm(&format!("stale-{i}"), VmStatus::Failed, 30);
        v.status_reason = Some("test".into());
        vms.push(v);
    }
    app.repo.put_vms_unchecked(&vms).await.unwrap();
    let before = app.repo.consumed_read_capacity();
    let s = cleanup(&app, None, true).run().await.unwrap();
    assert_eq!(
        s.candidates, 10,
        "only the stale VMs are candidates: {s:#?}"
    );
    app.repo.consumed_read_capacity() - before
}

#[tokio::test]
async fn read_capacity_grows_with_candidates_not_with_the_table() {
    let small = capacity_of_a_run(0).await;
    let large = capacity_of_a_run(10_000).await;
    assert!(small > 0.0, "DynamoDB Local reports consumed capacity");
    assert!(
        large <= small * 1.5,
        "10 stale among 10,000 healthy VMs cost {large} RCU, 10 alone {small} RCU"
    );
}

/// Creates a VM in `(team, project)` and provisions it until it runs.
async fn create_running(
    app: &TestApp,
    p: &Provisioner,
    user: &str,
    (team, project): (&str, &str),
    name: &str,
) -> String {
    let mut body = spec_create_request();
    body["hostNames"] = serde_json::json!([name]);
    body["team"] = team.into();
    body["project"] = project.into();
    let r = app
        .call(
            reqwest::Method::POST,
            "/api/virtual-machines",
            Some(user),
            Some(&body),
        )
        .await
        .expect(201);
    let id = r.json[0]["_id"].as_str().expect("an id").to_string();
    app.settle(p, &id).await;
    id
}

#[tokio::test]
async fn healthy_vms_of_a_removed_project_or_team_are_deleted() {
    use vmapi_core::{Gone, Repository};
    let app = TestApp::spawn().await;
    let (sim, provisioner) = app.simulated();
    let own = (TEAM, PROJECT);
    let other = (OTHER_TEAM, OTHER_PROJECT);
    let a = create_running(&app, &provisioner, OWNER, own, "gone-a").await;
    let b = create_running(&app, &provisioner, OWNER, own, "gone-b").await;
    let c = create_running(&app, &provisioner, OTHER_OWNER, other, "stays").await;
    let id = |s: &str| VmId::parse(s).unwrap();
    assert_eq!(status_of(&app, id(&a)).await, Some(VmStatus::Running));

    // Healthy VMs are in no stale category: a run finds nothing to do.
    let quiet = cleanup(&app, Some(provisioner.clone()), false)
        .run()
        .await
        .unwrap();
    assert_eq!((quiet.candidates, quiet.deleted), (0, 0), "{quiet:#?}");

    // The platform removes the project; the stream (as in `make run` and in Lambda) notes it.
    let _stream = app.stream_provisioner(provisioner.clone()).await;
    let client = local_client().await;
    client
        .delete_item()
        .table_name(&app.table)
        .key(
            "pk",
            aws_sdk_dynamodb::types::AttributeValue::S(format!("PROJECT#{PROJECT}")),
        )
        .key(
            "sk",
            aws_sdk_dynamodb::types::AttributeValue::S("PROJECT".into()),
        )
        .send()
        .await
        .unwrap();
    let gone = Gone::Project(PROJECT.parse().unwrap());
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !app
        .repo
        .tombstones(10)
        .await
        .unwrap()
        .iter()
        .any(|t| t.gone == gone)
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the stream noted no tombstone"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // A dry run names both VMs and changes nothing.
    let dry = cleanup(&app, Some(provisioner.clone()), true)
        .run()
        .await
        .unwrap();
    assert_eq!((dry.candidates, dry.deleted), (2, 2), "{dry:#?}");
    assert_eq!(status_of(&app, id(&a)).await, Some(VmStatus::Running));

    let run = cleanup(&app, Some(provisioner.clone()), false)
        .run()
        .await
        .unwrap();
    assert_eq!(
        (run.candidates, run.deleted, run.failed),
        (2, 2, 0),
        "{run:#?}"
    );
    for vm in [&a, &b] {
        assert_eq!(
            status_of(&app, id(vm)).await,
            Some(VmStatus::Deleted),
            "{vm}"
        );
        assert!(
            run.actions
                .iter()
                .any(|l| l.starts_with(vm.as_str()) && l.contains("no longer exists")),
            "{run:#?}"
        );
    }
    assert_eq!(
        status_of(&app, id(&c)).await,
        Some(VmStatus::Running),
        "other team untouched"
    );
    assert_eq!(
        sim.count(),
        1,
        "only the other team's VM is left in the cloud"
    );
    // The demo team has no VMs left but is still in the table: team logins are shared with
    // other deployments, so its login stays until the team itself is gone.
    let names = app.secret_names().await;
    assert!(
        names
            .iter()
            .any(|n| n.contains(&format!("{TEAM}/user/root"))),
        "{names:?}"
    );
    assert!(
        names
            .iter()
            .any(|n| n.contains(&format!("{OTHER_TEAM}/user/root"))),
        "{names:?}"
    );

    // Nothing of the project is left: the next run forgets the tombstone.
    let next = cleanup(&app, Some(provisioner.clone()), false)
        .run()
        .await
        .unwrap();
    assert!(
        next.actions
            .iter()
            .any(|a| a.contains("forget the tombstone")),
        "{next:#?}"
    );
    assert!(app.repo.tombstones(10).await.unwrap().is_empty());

    // A removed team (the operator path: `vmctl remove team`): its VMs go too.
    app.repo
        .remove_owner(Gone::Team(OTHER_TEAM.parse().unwrap()), Timestamp::now())
        .await
        .unwrap();
    let run = cleanup(&app, Some(provisioner.clone()), false)
        .run()
        .await
        .unwrap();
    assert_eq!((run.candidates, run.deleted), (1, 1), "{run:#?}");
    assert_eq!(status_of(&app, id(&c)).await, Some(VmStatus::Deleted));
    assert_eq!(sim.count(), 0);
    // The removed team's login goes with it; the demo team's stays.
    let names = app.secret_names().await;
    assert!(
        !names
            .iter()
            .any(|n| n.contains(&format!("{OTHER_TEAM}/user/root"))),
        "{names:?}"
    );
    assert!(
        names
            .iter()
            .any(|n| n.contains(&format!("{TEAM}/user/root"))),
        "{names:?}"
    );
}

fn login() -> LoginSecret {
    LoginSecret {
        username: "root".into(),
        auth_method: AuthMethod::Password,
        password: Some(Sensitive::new("Orphaned-Pa55word-xx".to_string())),
        private_key: None,
        public_key: None,
    }
}

#[tokio::test]
async fn orphaned_logins_and_cloud_vms_are_removed_after_the_grace_period() {
    use vmapi_core::cloud::CloudDriver;
    use vmapi_core::{Gone, SecretLabels};
    let app = TestApp::spawn().await;
    let (sim, provisioner) = app.simulated();
    let own = (TEAM, PROJECT);
    let live = create_running(&app, &provisioner, OWNER, own, "live").await;

    // A VM login whose VM record never came, a team login of a team without VMs (kept while
    // the team is in the table), and a cloud VM nobody asked for.
    let ghost = VmId::new();
    let ghost_login = SecretPath::from_text(&format!("{TEAM}/vm/{ghost}/root"));
    let other_team = SecretPath::from_text(&format!("{OTHER_TEAM}/user/root"));
    for (path, team, vm) in [
        (&ghost_login, TEAM, Some(ghost)),
        (&other_team, OTHER_TEAM, None),
    ] {
        app.secrets
            .create(
                path,
                &login(),
                SecretLabels {
                    team: team.parse().unwrap(),
                    vm,
                },
            )
            .await
            .unwrap();
    }
    let mut stray = demo_vm("stray", VmStatus::Running);
    stray.id = ghost;
    sim.create(&spec_of(&stray)).await.unwrap();
    assert_eq!(sim.count(), 2);
    let listed = app.secrets.list_managed().await.unwrap();
    assert_eq!(listed.len(), 3, "{listed:?}");
    assert!(
        listed.iter().all(|s| s.created_at.is_some()),
        "moto reports creation dates"
    );

    // Within the grace period nothing is touched.
    let young = Cleanup::new(
        app.repo.clone(),
        Arc::new(SystemClock),
        Some(provisioner.clone()),
        CleanupPolicy {
            orphan_grace: Duration::from_secs(3600),
            regions: vec![(CloudKind::Kraud, String::new())],
            ..CleanupPolicy::default()
        },
    );
    let summary = young.run().await.unwrap();
    assert_eq!(summary.reconciled, 0, "{summary:#?}");

    // A dry run names the ghost login and the stray VM, and changes nothing.
    let dry = cleanup(&app, Some(provisioner.clone()), true)
        .run()
        .await
        .unwrap();
    assert_eq!(dry.reconciled, 2, "{dry:#?}");
    assert_eq!(app.secret_names().await.len(), 3);
    assert_eq!(sim.count(), 2);

    let run = cleanup(&app, Some(provisioner.clone()), false)
        .run()
        .await
        .unwrap();
    assert_eq!((run.reconciled, run.failed), (2, 0), "{run:#?}");
    assert_eq!(
        app.secret_names().await.len(),
        2,
        "the other team's login stays"
    );

    // Once the team itself is removed, its login goes.
    app.repo
        .remove_owner(Gone::Team(OTHER_TEAM.parse().unwrap()), Timestamp::now())
        .await
        .unwrap();
    let gone = cleanup(&app, Some(provisioner.clone()), false)
        .run()
        .await
        .unwrap();
    assert_eq!((gone.reconciled, gone.failed), (1, 0), "{gone:#?}");
    assert!(
        gone.actions
            .iter()
            .any(|a| a.contains(&format!("team {OTHER_TEAM} is removed"))),
        "{gone:#?}"
    );
    let names = app.secret_names().await;
    assert_eq!(names.len(), 1, "{names:?}");
    assert!(
        names[0].ends_with(&format!("{TEAM}/user/root")),
        "the live VM's team login stays"
    );
    let left = sim.list_managed("").await.unwrap();
    assert_eq!(left.len(), 1, "{left:?}");
    assert_eq!(left[0].target.vm_id, VmId::parse(&live).unwrap());
    assert_eq!(
        status_of(&app, VmId::parse(&live).unwrap()).await,
        Some(VmStatus::Running)
    );
    let line = vmapi_core::cleanup::emf_line(&run, Timestamp::now());
    assert!(line.contains("\"Reconciled\":2"), "{line}");
    assert!(
        !line.contains("Orphaned-Pa55word"),
        "no secret in the summary"
    );

    // Idempotent: the next run finds nothing.
    let again = cleanup(&app, Some(provisioner), false).run().await.unwrap();
    assert_eq!(again.reconciled, 0, "{again:#?}");
}

#[tokio::test]
async fn vault_logins_are_listed_and_reconciled() {
    use vmapi_core::SecretLabels;
    let vault = vault::OpenBao::shared().await;
    let app = crate::vault::app(&vault, vmapi_models::CredentialScope::Vm).await;
    let (_sim, provisioner) = app.simulated();
    let own = (TEAM, PROJECT);
    let live = create_running(&app, &provisioner, OWNER, own, "live").await;
    let ghost = SecretPath::from_text(&format!("{TEAM}/vm/{}/root", VmId::new()));
    app.secrets
        .create(
            &ghost,
            &login(),
            SecretLabels {
                team: TEAM.parse().unwrap(),
                vm: None,
            },
        )
        .await
        .unwrap();
    // Not ours: another shape under the same mount.
    app.secrets
        .create(
            &SecretPath::from_text("azure-credentials"),
            &login(),
            SecretLabels {
                team: TEAM.parse().unwrap(),
                vm: None,
            },
        )
        .await
        .unwrap();
    let mut listed: Vec<String> = app
        .secrets
        .list_managed()
        .await
        .unwrap()
        .into_iter()
        .map(|s| {
            assert!(s.created_at.is_some(), "metadata gives created_time");
            s.path.to_string()
        })
        .collect();
    listed.sort();
    let mut expected = vec![format!("{TEAM}/vm/{live}/root"), ghost.to_string()];
    expected.sort();
    assert_eq!(listed, expected);

    let run = cleanup(&app, Some(provisioner), false).run().await.unwrap();
    assert_eq!(run.reconciled, 1, "{run:#?}");
    let paths = vault.paths().await;
    let mut expected = vec![
        "azure-credentials".to_string(),
        format!("{TEAM}/vm/{live}/root"),
    ];
    expected.sort();
    assert_eq!(paths, expected);
}

#[tokio::test]
async fn orphaned_ec2_instances_are_terminated_on_moto() {
    use vmapi_core::cloud::CloudDriver;
    use vmapi_drivers::aws::AwsDriver;
    // A region no other test uses, so other tests' instances are never judged here.
    const REGION: &str = "ap-southeast-2";
    let app = TestApp::spawn().await;
    let sdk = vmapi_aws::sdk_config().await;
    let aws = Arc::new(AwsDriver::new(
        sdk.clone(),
        vmapi_models::DeploymentId::local(),
    ));
    let mut stray = demo_vm("stray", VmStatus::Running);
    stray.region.datacenter.name = REGION.into();
    let mut spec = spec_of(&stray);
    spec.size = "t3.micro".into();
    spec.image = "ami-0d64bb532e0502c46".into();
    let created = aws.create(&spec).await.unwrap();
    // A VM whose record is in place: its instance and security group stay.
    let mut kept = demo_vm("kept", VmStatus::Running);
    kept.region.datacenter.name = REGION.into();
    app.seed_vm(&kept).await;
    let mut kept_spec = spec_of(&kept);
    kept_spec.size = "t3.micro".into();
    kept_spec.image = "ami-0d64bb532e0502c46".into();
    let kept_created = aws.create(&kept_spec).await.unwrap();
    // An instance that is not ours (no managed-by tag).
    let ec2 = aws_sdk_ec2::Client::from_conf(
        aws_sdk_ec2::config::Builder::from(&sdk)
            .region(aws_sdk_ec2::config::Region::new(REGION))
            .build(),
    );
    let foreign = ec2
        .run_instances()
        .image_id("ami-0d64bb532e0502c46")
        .instance_type(aws_sdk_ec2::types::InstanceType::T3Micro)
        .min_count(1)
        .max_count(1)
        .send()
        .await
        .unwrap();
    let foreign_id = foreign.instances()[0].instance_id().unwrap().to_string();
    let listed = aws.list_managed(REGION).await.unwrap();
    assert!(
        listed.iter().any(|r| r.target.vm_id == stray.id
            && r.target.provider_id.as_deref() == Some(created.provider_id.as_str())),
        "{listed:?}"
    );
    assert!(listed
        .iter()
        .all(|r| r.target.provider_id.as_deref() != Some(foreign_id.as_str())));

    let provisioner = app.provisioner(vmapi_core::Drivers::new().with(CloudKind::Aws, aws.clone()));
    let job = || {
        Cleanup::new(
            app.repo.clone(),
            Arc::new(SystemClock),
            Some(provisioner.clone()),
            CleanupPolicy {
                orphan_grace: Duration::ZERO,
                regions: vec![(CloudKind::Aws, REGION.into())],
                ..CleanupPolicy::default()
            },
        )
    };
    let run = job().run().await.unwrap();
    assert!(run.reconciled >= 1, "{run:#?}");
    let state = |id: String| {
        let ec2 = ec2.clone();
        async move {
            let out = ec2
                .describe_instances()
                .instance_ids(id)
                .send()
                .await
                .unwrap();
            out.reservations()[0].instances()[0]
                .state()
                .and_then(|s| s.name())
                .map(|n| n.as_str().to_string())
                .unwrap_or_default()
        }
    };
    let ours = state(created.provider_id.clone()).await;
    assert!(
        matches!(ours.as_str(), "shutting-down" | "terminated"),
        "{ours}"
    );
    assert_eq!(state(foreign_id).await, "running", "not ours: untouched");
    assert_eq!(state(kept_created.provider_id.clone()).await, "running");

    // The stray's security group outlived its instance (it can only go once the instance is
    // terminated): the next listing names it as a firewall without a VM, and the next run
    // removes it. The recorded VM's group stays.
    let groups = |vm: VmId| {
        let ec2 = ec2.clone();
        async move {
            ec2.describe_security_groups()
                .filters(
                    aws_sdk_ec2::types::Filter::builder()
                        .name("group-name")
                        .values(vmapi_drivers::aws::group_name(vm))
                        .build(),
                )
                .send()
                .await
                .unwrap()
                .security_groups()
                .len()
        }
    };
    assert_eq!(groups(stray.id).await, 1);
    let listed = aws.list_managed(REGION).await.unwrap();
    let left: Vec<_> = listed
        .iter()
        .filter(|r| r.target.vm_id == stray.id)
        .collect();
    assert!(
        matches!(left.as_slice(), [r] if matches!(r.kind, vmapi_core::cloud::ManagedKind::Firewall(_))),
        "{listed:?}"
    );
    let again = job().run().await.unwrap();
    assert!(
        again
            .actions
            .iter()
            .any(|a| a.contains("firewall") && a.contains(&stray.id.to_string())),
        "{again:#?}"
    );
    assert_eq!(groups(stray.id).await, 0, "the orphaned group is gone");
    assert_eq!(groups(kept.id).await, 1, "a recorded VM's group stays");
    assert_eq!(state(kept_created.provider_id.clone()).await, "running");
    assert!(aws
        .list_managed(REGION)
        .await
        .unwrap()
        .iter()
        .all(|r| r.target.vm_id != stray.id));
}
