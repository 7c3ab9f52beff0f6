//! The provisioner over the in-memory repository and an instant test cloud.

use std::sync::Arc;
use std::time::Duration;

use vmapi_core::memory::{MemoryRepository, MemorySecretStore};
use vmapi_core::{Action, ConflictCode, Error, SystemClock};
use vmapi_models::*;

use crate::cloud::InstantCloud;
use crate::fixtures::*;
use vmapi_core::cloud::DriverError;
use vmapi_core::{Outcome, Provisioner, WorkItem};

fn provisioner(
    repo: &Arc<MemoryRepository>,
    store: &Arc<MemorySecretStore>,
) -> (Arc<InstantCloud>, Provisioner) {
    let cloud = Arc::new(InstantCloud::default());
    let p = provisioner_with(
        repo.clone(),
        Arc::new(SystemClock),
        CloudKind::Kraud,
        cloud.clone(),
        store.clone(),
    );
    (cloud, p)
}

#[tokio::test]
async fn provisioner_drives_the_whole_lifecycle() {
    let (repo, store, svc) = setup_with(CredentialScope::Vm);
    let (cloud, p) = provisioner(&repo, &store);
    let vm = svc
        .create(&user("owner"), request(&["web-1"]))
        .await
        .unwrap()[0]
        .id;
    assert_eq!(repo.vm(vm).unwrap().pending_op.unwrap().op, OpKind::Create);

    assert_eq!(settle(&p, vm).await, Outcome::Finished(VmStatus::Running));
    let rec = repo.vm(vm).unwrap();
    assert_eq!(rec.status, VmStatus::Running);
    assert!(rec.pending_op.is_none());
    assert_eq!(rec.cloud.as_ref().unwrap().id, format!("i-{vm}"));
    let public: Vec<_> = rec
        .ip_configurations
        .iter()
        .filter(|i| i.kind == "public")
        .collect();
    assert_eq!(public.len(), 1);
    assert_eq!(public[0].address, "203.0.113.7");
    assert_eq!(public[0].version, "IPv4");
    assert_eq!(
        svc.credentials(&user("owner"), vm)
            .await
            .unwrap()
            .host
            .as_deref(),
        Some("203.0.113.7")
    );

    svc.act(&user("owner"), vm, Action::Stop).await.unwrap();
    assert_eq!(settle(&p, vm).await, Outcome::Finished(VmStatus::Stopped));
    let rec = repo.vm(vm).unwrap();
    assert!(
        rec.ip_configurations.iter().all(|i| i.kind != "public"),
        "public address released"
    );

    svc.act(&user("owner"), vm, Action::Start).await.unwrap();
    assert_eq!(settle(&p, vm).await, Outcome::Finished(VmStatus::Running));

    svc.act(&user("owner"), vm, Action::Delete).await.unwrap();
    assert_eq!(
        store.paths().len(),
        1,
        "the login stays until the teardown is done"
    );
    assert_eq!(settle(&p, vm).await, Outcome::Finished(VmStatus::Deleted));
    assert!(
        store.paths().is_empty(),
        "VM login removed after the teardown"
    );
    assert!(matches!(
        svc.get(&user("owner"), vm).await,
        Err(Error::NotFound { .. })
    ));
    assert_eq!(
        cloud.calls(),
        vec![
            format!("create {vm}"),
            format!("stop {vm}"),
            format!("start {vm}"),
            format!("delete {vm}"),
            // Once the VM is gone: what only goes after it (security group, NSG).
            format!("delete {vm}")
        ]
    );
}

#[tokio::test]
async fn redelivered_records_change_nothing_twice() {
    let (repo, store, svc) = setup_with(CredentialScope::Team);
    let (cloud, p) = provisioner(&repo, &store);
    let vm = svc
        .create(&user("owner"), request(&["web-1"]))
        .await
        .unwrap()[0]
        .id;
    settle(&p, vm).await;
    let after = repo.vm(vm).unwrap();
    // The same record delivered again, twice in one batch and once more later.
    let item = WorkItem {
        sequence: "1".into(),
        vm,
    };
    let failed = p.process_batch(&[item.clone(), item.clone()]).await;
    assert!(failed.is_empty());
    assert_eq!(p.process(vm).await.unwrap(), Outcome::Idle);
    assert_eq!(repo.vm(vm).unwrap(), after, "no second write");
    assert_eq!(cloud.calls().len(), 1, "one create call");
}

#[tokio::test]
async fn a_failing_create_ends_failed_with_a_reason() {
    let (repo, store, svc) = setup_with(CredentialScope::Team);
    let (cloud, p) = provisioner(&repo, &store);
    *cloud.fail_create.lock().unwrap() =
        Some(DriverError::Quota("standardDCasv5Family quota is 0".into()));
    let vm = svc
        .create(&user("owner"), request(&["web-1"]))
        .await
        .unwrap()[0]
        .id;
    assert_eq!(settle(&p, vm).await, Outcome::Finished(VmStatus::Failed));
    let shown = svc.get(&user("owner"), vm).await.unwrap();
    assert_eq!(shown.status, VmStatus::Failed);
    let reason = shown.status_reason.unwrap();
    assert!(
        reason.contains("quota") && reason.contains("standardDCasv5Family"),
        "{reason}"
    );
    // A failed VM can be deleted; the teardown of nothing succeeds.
    svc.act(&user("owner"), vm, Action::Delete).await.unwrap();
    assert_eq!(settle(&p, vm).await, Outcome::Finished(VmStatus::Deleted));
}

/// What the code under test logs.
mod captured_log {
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    pub struct Log(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Log {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Log {
        /// The process-wide log. A global subscriber, not a per-thread default: with a
        /// per-thread default, a callsite first reached by a parallel test without one could
        /// be cached as uninteresting, and the line went missing (seen in CI). Other tests'
        /// lines land here too, which the `contains` checks allow.
        pub fn start() -> Log {
            static LOG: std::sync::OnceLock<Log> = std::sync::OnceLock::new();
            LOG.get_or_init(|| {
                let log = Log::default();
                let writer = log.clone();
                let subscriber = tracing_subscriber::fmt()
                    .with_ansi(false)
                    .with_writer(move || writer.clone())
                    .finish();
                tracing::subscriber::set_global_default(subscriber)
                    .expect("no other global subscriber in this test binary");
                log
            })
            .clone()
        }

        pub fn text(&self) -> String {
            String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
        }
    }
}

#[tokio::test]
async fn a_refused_create_logs_the_cloud_error_users_do_not_see() {
    let log = captured_log::Log::start();
    let (repo, store, svc) = setup_with(CredentialScope::Team);
    let (cloud, p) = provisioner(&repo, &store);
    *cloud.fail_create.lock().unwrap() = Some(DriverError::Unauthorized(
        "AuthFailure: AWS was not able to validate the provided access credentials".into(),
    ));
    let vm = svc
        .create(&user("owner"), request(&["web-1"]))
        .await
        .unwrap()[0]
        .id;
    assert_eq!(settle(&p, vm).await, Outcome::Finished(VmStatus::Failed));
    // Users read a generic reason…
    let reason = svc
        .get(&user("owner"), vm)
        .await
        .unwrap()
        .status_reason
        .unwrap();
    assert!(reason.contains("contact the operator"), "{reason}");
    assert!(!reason.contains("AuthFailure"), "{reason}");
    // …and the operator finds the cloud's own words in the log.
    let logged = log.text();
    assert!(
        logged.contains(
            "unauthorized: AuthFailure: AWS was not able to validate the provided access credentials"
        ),
        "{logged}"
    );
    assert!(logged.contains(&vm.to_string()), "{logged}");
}

#[tokio::test]
async fn a_failing_teardown_stays_deleting_with_the_login_and_can_be_retried() {
    let (repo, store, svc) = setup_with(CredentialScope::Vm);
    let (cloud, p) = provisioner(&repo, &store);
    let vm = svc
        .create(&user("owner"), request(&["web-1"]))
        .await
        .unwrap()[0]
        .id;
    settle(&p, vm).await;
    *cloud.fail_delete.lock().unwrap() = Some(DriverError::Provider {
        code: "InternalError".into(),
        message: "disk is locked".into(),
    });
    svc.act(&user("owner"), vm, Action::Delete).await.unwrap();
    assert_eq!(settle(&p, vm).await, Outcome::Finished(VmStatus::Deleting));
    let rec = repo.vm(vm).unwrap();
    assert_eq!(rec.status, VmStatus::Deleting);
    assert!(rec.pending_op.is_none());
    assert!(rec
        .status_reason
        .as_deref()
        .unwrap()
        .contains("disk is locked"));
    assert_eq!(
        store.paths().len(),
        1,
        "the login stays: the VM can still be reached"
    );
    svc.credentials(&user("owner"), vm).await.unwrap();

    // Deleting again retries the teardown.
    *cloud.fail_delete.lock().unwrap() = None;
    svc.act(&user("owner"), vm, Action::Delete).await.unwrap();
    assert_eq!(repo.vm(vm).unwrap().pending_op.unwrap().op, OpKind::Delete);
    assert_eq!(settle(&p, vm).await, Outcome::Finished(VmStatus::Deleted));
    assert!(store.paths().is_empty());
}

#[tokio::test]
async fn a_slow_cloud_hands_over_to_the_next_run() {
    let (repo, store, svc) = setup_with(CredentialScope::Team);
    let (cloud, p) = provisioner(&repo, &store);
    let vm = svc
        .create(&user("owner"), request(&["web-1"]))
        .await
        .unwrap()[0]
        .id;
    *cloud.slow_gets.lock().unwrap() = 1000;
    let before = repo.vm(vm).unwrap().version;
    assert_eq!(p.process(vm).await.unwrap(), Outcome::Waiting);
    let rec = repo.vm(vm).unwrap();
    assert_eq!(rec.status, VmStatus::Provisioning);
    assert!(
        rec.version > before,
        "touched, so the stream delivers it again"
    );
    assert!(rec.pending_op.unwrap().attempt >= 1);
    *cloud.slow_gets.lock().unwrap() = 0;
    assert_eq!(settle(&p, vm).await, Outcome::Finished(VmStatus::Running));
}

#[tokio::test]
async fn delete_during_create_tears_down_what_exists() {
    let (repo, store, svc) = setup_with(CredentialScope::Team);
    let (cloud, p) = provisioner(&repo, &store);
    let vm = svc
        .create(&user("owner"), request(&["web-1"]))
        .await
        .unwrap()[0]
        .id;
    *cloud.slow_gets.lock().unwrap() = 1000;
    assert_eq!(p.process(vm).await.unwrap(), Outcome::Waiting);
    svc.act(&user("owner"), vm, Action::Delete).await.unwrap();
    *cloud.slow_gets.lock().unwrap() = 0;
    assert_eq!(settle(&p, vm).await, Outcome::Finished(VmStatus::Deleted));
    assert!(cloud.vms.lock().unwrap().is_empty());
}

#[tokio::test]
async fn quotas_count_creates_and_each_deleted_vm_once() {
    let (repo, svc) = setup();
    let svc = svc.with_quotas(vmapi_core::QuotaLimits {
        max_active_vms: 3,
        max_vcpus: 100,
    });
    let team = TeamId::parse(TEAM).unwrap();
    let owner = user("owner");
    let first = svc.create(&owner, request(&["q-1", "q-2"])).await.unwrap();
    assert_eq!(repo.usage(team).active_vms, 2);
    assert_eq!(repo.usage(team).vcpus, 2, "the size has 1 vCPU");
    let refused = svc.create(&owner, request(&["q-3", "q-4"])).await;
    match refused {
        Err(Error::Conflict {
            code: ConflictCode::QuotaExceeded,
            message,
        }) => assert!(
            message.contains("at most 3 active VMs; it has 2 and asked for 2 more"),
            "{message}"
        ),
        other => panic!("expected QUOTA_EXCEEDED, got {other:?}"),
    }
    assert_eq!(repo.vm_count(), 2, "nothing was written");

    svc.act(&owner, first[0].id, Action::Delete).await.unwrap();
    assert_eq!(repo.usage(team).active_vms, 1);
    // A retried teardown (deleting, nothing pending) frees nothing a second time.
    let mut stuck = repo.vm(first[0].id).unwrap();
    stuck.pending_op = None;
    repo.put_vm(stuck);
    svc.act(&owner, first[0].id, Action::Delete).await.unwrap();
    assert_eq!(repo.usage(team).active_vms, 1);
    assert_eq!(repo.usage(team).vcpus, 1);

    svc.create(&owner, request(&["q-3", "q-4"])).await.unwrap();
    assert_eq!(repo.usage(team).active_vms, 3);
}

#[tokio::test]
async fn a_request_larger_than_the_whole_quota_is_refused_before_anything_is_stored() {
    let (repo, store, svc) = setup_with(CredentialScope::Vm);
    let svc = svc.with_quotas(vmapi_core::QuotaLimits {
        max_active_vms: 10,
        max_vcpus: 2,
    });
    let e = svc
        .create(&user("owner"), request(&["v-1", "v-2", "v-3"]))
        .await
        .unwrap_err();
    assert!(
        e.to_string()
            .contains("at most 2 vCPUs in active VMs; the request asks for 3"),
        "{e}"
    );
    assert_eq!(repo.vm_count(), 0);
    assert!(store.paths().is_empty(), "no login was stored");
}

/// Every finished operation is measured: its cloud, whether it reached its goal, how long.
#[tokio::test]
async fn finished_operations_are_measured_by_cloud_and_outcome() {
    #[derive(Default)]
    struct Recorded(std::sync::Mutex<Vec<vmapi_core::FinishedOp>>);
    impl vmapi_core::Metrics for Recorded {
        fn operation_finished(&self, op: &vmapi_core::FinishedOp) {
            self.0.lock().unwrap().push(op.clone());
        }
    }
    let (repo, store, svc) = setup_with(CredentialScope::Team);
    let (cloud, p) = provisioner(&repo, &store);
    let metrics = Arc::new(Recorded::default());
    let p = p.with_metrics(metrics.clone());
    let owner = user("owner");

    let vm = svc.create(&owner, request(&["web-1"])).await.unwrap()[0].id;
    settle(&p, vm).await;
    svc.act(&owner, vm, Action::Stop).await.unwrap();
    settle(&p, vm).await;
    *cloud.fail_create.lock().unwrap() = Some(DriverError::Quota("quota is 0".into()));
    let refused = svc.create(&owner, request(&["web-2"])).await.unwrap()[0].id;
    settle(&p, refused).await;

    let seen: Vec<(String, OpKind, bool)> = metrics
        .0
        .lock()
        .unwrap()
        .iter()
        .map(|m| (m.cloud.clone(), m.op, m.succeeded))
        .collect();
    assert_eq!(
        seen,
        [
            ("simulated".to_string(), OpKind::Create, true),
            ("simulated".to_string(), OpKind::Stop, true),
            ("none".to_string(), OpKind::Create, false),
        ]
    );
    let created = &metrics.0.lock().unwrap()[0];
    let record = repo.vm(vm).unwrap();
    assert!(
        created.duration <= Duration::from_secs(60) && record.created_at <= record.updated_at,
        "{created:?}"
    );
}
