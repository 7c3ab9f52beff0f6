//! Stale VMs of every kind handled, healthy ones left alone; dry runs; overlapping runs.

use serde_json::Value;
use vmapi_core::Summary;
use vmapi_models::{OpKind, PendingOp, ProjectId, TeamId, Timestamp, VmStatus};
use vmapi_tests::*;

use super::common::{cleanup, hours_ago, status_of, vm};

/// Past the 48 h retention and in an earlier month (deleted records stay to the end of
/// their month, whose cost estimate bills them).
const OLD_DELETED_HOURS: i64 = 40 * 24;

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
    let old_deleted = vm("old-deleted", VmStatus::Deleted, OLD_DELETED_HOURS);
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
    app.seed_vm(&vm("old-deleted", VmStatus::Deleted, OLD_DELETED_HOURS))
        .await;
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
