//! What the cleanup tests share: VMs of an age, a cleanup job over the test's table, a VM's
//! status, a running VM in a project.

use std::sync::Arc;
use std::time::Duration;

use vmapi_core::{Cleanup, CleanupPolicy, Provisioner, SystemClock};
use vmapi_models::{CloudKind, Timestamp, VmId, VmRecord, VmStatus};
use vmapi_tests::*;

pub(super) fn hours_ago(h: i64) -> Timestamp {
    Timestamp::from_unix_millis(Timestamp::now().unix_millis() - h * 3600 * 1000).unwrap()
}

pub(super) fn vm(name: &str, status: VmStatus, age_hours: i64) -> VmRecord {
    let mut v = demo_vm(name, status);
    v.created_at = hours_ago(age_hours + 1);
    v.updated_at = hours_ago(age_hours);
    v
}

pub(super) fn cleanup(app: &TestApp, provisioner: Option<Provisioner>, dry_run: bool) -> Cleanup {
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

pub(super) async fn status_of(app: &TestApp, id: VmId) -> Option<VmStatus> {
    use vmapi_core::Repository;
    app.repo.get_vm(id).await.unwrap().map(|v| v.status)
}

/// Creates a VM in `(team, project)` and provisions it until it runs.
pub(super) async fn create_running(
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
