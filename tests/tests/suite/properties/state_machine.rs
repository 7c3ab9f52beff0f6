//! 1. The VM state machine under random actions, provisioner runs and cloud faults.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use vmapi_core::cloud::{CloudDriver, CloudTarget, DriverError};
use vmapi_core::memory::{MemoryRepository, MemorySecretStore};
use vmapi_core::{
    Action, ConflictCode, Drivers, Error, NotFoundKind, Provisioner, ProvisionerOptions, Service,
    SystemClock,
};
use vmapi_drivers::SimulatedDriver;
use vmapi_models::*;
use vmapi_tests::{demo_seed, spec_create_request, OTHER_OWNER, OWNER};

const MEMBER: &str = "prop-member";
const VIEWER: &str = "prop-viewer";

/// Who acts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Who {
    TeamOwner,
    Member,
    Viewer,
    Outsider,
}

impl Who {
    fn user(self) -> UserId {
        UserId::parse(match self {
            Who::TeamOwner => OWNER,
            Who::Member => MEMBER,
            Who::Viewer => VIEWER,
            Who::Outsider => OTHER_OWNER,
        })
        .unwrap()
    }
}

/// One step of a scenario.
#[derive(Clone, Debug)]
enum Op {
    /// A user starts, stops or deletes the VM.
    Act(Who, Action),
    /// A user changes the VM's tags.
    Patch(Who, u8),
    /// One provisioner run (a stream delivery).
    Provision,
    /// A provisioner run and the team owner's action at the same time.
    ActDuringProvision(Action),
    /// The cloud refuses creates (true) or works again (false).
    FailCreates(bool),
    /// The cloud refuses deletes (true) or works again (false).
    FailDeletes(bool),
    /// The VM disappears from the cloud behind the service's back.
    CloudLosesVm,
}

fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        Just(Action::Start),
        Just(Action::Stop),
        Just(Action::Reboot),
        Just(Action::Delete)
    ]
}

fn who() -> impl Strategy<Value = Who> {
    prop_oneof![
        5 => Just(Who::TeamOwner),
        2 => Just(Who::Member),
        1 => Just(Who::Viewer),
        1 => Just(Who::Outsider),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (who(), action()).prop_map(|(w, a)| Op::Act(w, a)),
        1 => (who(), 0u8..4).prop_map(|(w, n)| Op::Patch(w, n)),
        6 => Just(Op::Provision),
        2 => action().prop_map(Op::ActDuringProvision),
        1 => any::<bool>().prop_map(Op::FailCreates),
        1 => any::<bool>().prop_map(Op::FailDeletes),
        1 => Just(Op::CloudLosesVm),
    ]
}

/// What the API's state table (docs/api.md "Status codes of a VM") says an action does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expect {
    /// 200, nothing changes.
    NoOp,
    /// 200, the VM moves to this status with the action pending.
    To(VmStatus),
    /// 409 ILLEGAL_TRANSITION.
    Illegal,
    /// 404.
    Gone,
}

/// The table, written from the documentation (independently of `lifecycle::decide`).
fn spec_table(action: Action, vm: &VmRecord) -> Expect {
    use VmStatus::*;
    match (action, vm.status) {
        (_, Deleted) => Expect::Gone,
        (Action::Start, Starting | Running) => Expect::NoOp,
        (Action::Start, Stopped) => Expect::To(Starting),
        (Action::Start, _) => Expect::Illegal,
        (Action::Stop, Stopping | Stopped) => Expect::NoOp,
        (Action::Stop, Running) => Expect::To(Stopping),
        (Action::Stop, _) => Expect::Illegal,
        // A reboot keeps a running VM running; one already pending is not asked twice.
        (Action::Reboot, Running)
            if vm.pending_op.as_ref().map(|p| p.op) == Some(vmapi_models::OpKind::Reboot) =>
        {
            Expect::NoOp
        }
        (Action::Reboot, Running) => Expect::To(Running),
        (Action::Reboot, _) => Expect::Illegal,
        // A teardown that failed (deleting, nothing pending) is retried by a new delete.
        (Action::Delete, Deleting) if vm.pending_op.is_some() => Expect::NoOp,
        (Action::Delete, _) => Expect::To(Deleting),
    }
}

/// Status changes the provisioner may make in one write.
fn provisioner_edge(from: VmStatus, to: VmStatus) -> bool {
    use VmStatus::*;
    from == to
        || matches!(
            (from, to),
            (Creating, Provisioning | Running | Failed)
                | (Provisioning, Running | Failed | Creating)
                | (Starting, Running | Failed)
                | (Stopping, Stopped | Failed)
                | (Deleting, Deleted)
        )
}

/// Status changes a user action may make in one write.
fn user_edge(from: VmStatus, to: VmStatus) -> bool {
    use VmStatus::*;
    matches!((from, to), (Running, Stopping) | (Stopped, Starting))
        || (to == Deleting && from != Deleted)
}

/// Whether `to` is reachable from `from` through edges allowed by `edge` (any number of writes).
fn reachable(from: VmStatus, to: VmStatus, edge: &dyn Fn(VmStatus, VmStatus) -> bool) -> bool {
    let mut seen = BTreeSet::from([from]);
    let mut frontier = vec![from];
    while let Some(s) = frontier.pop() {
        if s == to {
            return true;
        }
        for &n in VmStatus::ALL {
            if edge(s, n) && seen.insert(n) {
                frontier.push(n);
            }
        }
    }
    false
}

/// What must hold of every stored VM record.
fn record_invariant(vm: &VmRecord) -> Result<(), String> {
    use VmStatus::*;
    let op = vm.pending_op.as_ref().map(|p| p.op);
    let ok_op = match op {
        None => !matches!(vm.status, Creating | Provisioning | Starting | Stopping),
        Some(OpKind::Create) => matches!(vm.status, Creating | Provisioning),
        Some(OpKind::Start) => vm.status == Starting,
        Some(OpKind::Stop) => vm.status == Stopping,
        Some(OpKind::Delete) => vm.status == Deleting,
        Some(OpKind::Reboot) => vm.status == Running,
        Some(OpKind::ApplyRules) => matches!(vm.status, Running | Stopped),
        Some(OpKind::Resize) => matches!(vm.status, Running | Stopped) && vm.resize_to.is_some(),
    };
    if !ok_op {
        return Err(format!("status {} with pending {:?}", vm.status, op));
    }
    if vm.status == Failed && vm.status_reason.is_none() {
        return Err("failed without a reason".into());
    }
    if vm.status_reason.is_some() && !matches!(vm.status, Failed | Deleting) {
        return Err(format!(
            "status {} with a reason {:?}",
            vm.status, vm.status_reason
        ));
    }
    if vm.status == Deleting && vm.pending_op.is_none() && vm.status_reason.is_none() {
        return Err("deleting, nothing pending and no reason: stuck".into());
    }
    if vm.status == Deleted && (!vm.ip_configurations.is_empty() || vm.purge_after_epoch.is_none())
    {
        return Err("deleted with addresses or without a purge time".into());
    }
    if vm.status == Stopped && vm.ip_configurations.iter().any(|ip| ip.kind == "public") {
        return Err("stopped with a public address".into());
    }
    if vm.status == Running && (vm.cloud.is_none() || vm.ip_configurations.is_empty()) {
        return Err("running without a cloud reference or addresses".into());
    }
    if vm.version == 0 {
        return Err("version 0".into());
    }
    Ok(())
}

/// A repository with the demo catalog, the demo team (plus a member and a viewer), the use
/// cases, a provisioner over the simulated cloud (every run does one step), and one new VM.
struct World {
    repo: Arc<MemoryRepository>,
    service: Service,
    provisioner: Provisioner,
    sim: Arc<SimulatedDriver>,
    id: VmId,
    /// Whether the cloud lost the VM behind the service's back (then a running or stopped
    /// record may disagree with the cloud until the next operation looks).
    lost: std::sync::atomic::AtomicBool,
}

async fn world() -> World {
    let seed = demo_seed();
    let repo = Arc::new(MemoryRepository::new());
    for c in seed.cloud_providers {
        repo.put_cloud_provider(c);
    }
    for p in seed.providers {
        repo.put_provider(p);
    }
    for s in seed.sizes {
        repo.put_size(s);
    }
    for p in seed.prices {
        repo.put_price(p);
    }
    for mut t in seed.teams {
        if t.role_of(&UserId::parse(OWNER).unwrap()) == Some(Role::Owner) {
            t.members.push(Member {
                user: UserId::parse(MEMBER).unwrap(),
                role: Role::Member,
            });
            t.members.push(Member {
                user: UserId::parse(VIEWER).unwrap(),
                role: Role::Viewer,
            });
        }
        repo.put_team(t);
    }
    for p in seed.projects {
        repo.put_project(p);
    }
    let store = Arc::new(MemorySecretStore::new());
    let service = Service::new(repo.clone(), Arc::new(SystemClock))
        .with_logins(store.clone(), CredentialScope::Vm);
    let sim = Arc::new(SimulatedDriver::new(Duration::ZERO));
    let drivers = Drivers::new()
        .with(CloudKind::Kraud, sim.clone())
        .with(CloudKind::Azure, sim.clone())
        .with(CloudKind::Aws, sim.clone());
    let provisioner = Provisioner::new(
        repo.clone(),
        Arc::new(SystemClock),
        drivers,
        Some(store),
        ProvisionerOptions {
            // Every run does one step and hands the VM on (as the stream would deliver it again).
            poll_budget: Duration::ZERO,
            poll_interval: Duration::from_millis(1),
            ..ProvisionerOptions::default()
        },
    );
    let req: CreateVmRequest = serde_json::from_value(spec_create_request()).unwrap();
    let created = service
        .create(&UserId::parse(MEMBER).unwrap(), req)
        .await
        .expect("create");
    World {
        repo,
        service,
        provisioner,
        sim,
        id: created[0].id,
        lost: Default::default(),
    }
}

fn is_conflict(e: &Error, code: ConflictCode) -> bool {
    matches!(e, Error::Conflict { code: c, .. } if *c == code)
}

fn is_vm_not_found(e: &Error) -> bool {
    matches!(
        e,
        Error::NotFound {
            kind: NotFoundKind::Vm,
            ..
        }
    )
}

/// Runs one op and checks what it did against the rules; returns an error describing a
/// violation.
async fn step(w: &World, op: &Op) -> Result<(), String> {
    let before = w.repo.vm(w.id).expect("the record is never purged here");
    match op {
        Op::Act(who, action) => {
            let got = w.service.act(&who.user(), w.id, *action).await;
            let after = w.repo.vm(w.id).unwrap();
            let expect = if before.status == VmStatus::Deleted || *who == Who::Outsider {
                Expect::Gone
            } else if *who == Who::Viewer {
                // 403, nothing changes.
                return match got {
                    Err(Error::Forbidden(_)) if after == before => Ok(()),
                    other => Err(format!("viewer {action:?}: {other:?}")),
                };
            } else {
                spec_table(*action, &before)
            };
            match (expect, got) {
                (Expect::NoOp, Ok(r)) if r.status == before.status && after == before => Ok(()),
                (Expect::To(s), Ok(r))
                    if r.status == s
                        && after.status == s
                        && after.version == before.version + 1
                        && after.pending_op.as_ref().map(|p| p.op) == Some(action.op()) =>
                {
                    Ok(())
                }
                (Expect::Illegal, Err(e))
                    if is_conflict(&e, ConflictCode::IllegalTransition) && after == before =>
                {
                    Ok(())
                }
                (Expect::Gone, Err(e)) if is_vm_not_found(&e) && after == before => Ok(()),
                (expect, got) => Err(format!(
                    "{who:?} {action:?} in {}: expected {expect:?}, got {got:?}; version {} -> {}",
                    before.status, before.version, after.version
                )),
            }
        }
        Op::Patch(who, n) => {
            let tags = Tags::new(vec![Tag::parse(&format!("p{n}")).unwrap()]).unwrap();
            let patch = UpdateVmRequest {
                tags: Some(tags.clone()),
                ..Default::default()
            };
            let got = w.service.update(&who.user(), w.id, patch).await;
            let after = w.repo.vm(w.id).unwrap();
            let ok = match (&got, who) {
                _ if before.status == VmStatus::Deleted || *who == Who::Outsider => {
                    got.as_ref().is_err_and(is_vm_not_found) && after == before
                }
                (Err(Error::Forbidden(_)), Who::Viewer) => after == before,
                (Err(e), _) if before.status == VmStatus::Deleting => {
                    is_conflict(e, ConflictCode::IllegalTransition) && after == before
                }
                (Ok(vm), Who::TeamOwner | Who::Member) if before.status != VmStatus::Deleting => {
                    vm.tags == tags
                        && after.tags == tags
                        && after.status == before.status
                        && after.pending_op == before.pending_op
                        && after.version == before.version + 1
                }
                _ => false,
            };
            if ok {
                Ok(())
            } else {
                Err(format!(
                    "{who:?} PATCH in {}: {got:?}; version {} -> {}",
                    before.status, before.version, after.version
                ))
            }
        }
        Op::Provision => {
            let got = w.provisioner.process(w.id).await;
            let after = w.repo.vm(w.id).unwrap();
            if got.is_err() {
                return Err(format!(
                    "provisioner run in {} failed: {got:?}",
                    before.status
                ));
            }
            if before.pending_op.is_none() && after != before {
                return Err(format!(
                    "the provisioner changed a VM with nothing pending: {} -> {}",
                    before.status, after.status
                ));
            }
            if after.version < before.version
                || !reachable(before.status, after.status, &provisioner_edge)
            {
                return Err(format!(
                    "provisioner: {} v{} -> {} v{}",
                    before.status, before.version, after.status, after.version
                ));
            }
            Ok(())
        }
        Op::ActDuringProvision(action) => {
            let owner = Who::TeamOwner.user();
            let (p, a) = tokio::join!(
                w.provisioner.process(w.id),
                w.service.act(&owner, w.id, *action)
            );
            let after = w.repo.vm(w.id).unwrap();
            if let Err(e) = &p {
                return Err(format!("racing provisioner run failed: {e:?}"));
            }
            match &a {
                Ok(r)
                    if r.status == after.status
                        || reachable(r.status, after.status, &provisioner_edge) => {}
                Err(e)
                    if is_conflict(e, ConflictCode::IllegalTransition)
                        || is_conflict(e, ConflictCode::ConcurrentModification)
                        || is_vm_not_found(e) => {}
                other => {
                    return Err(format!(
                        "racing {action:?} in {}: {other:?}, now {}",
                        before.status, after.status
                    ))
                }
            }
            let either = |x: VmStatus, y: VmStatus| provisioner_edge(x, y) || user_edge(x, y);
            if after.version < before.version || !reachable(before.status, after.status, &either) {
                return Err(format!(
                    "racing {action:?}: {} v{} -> {} v{}",
                    before.status, before.version, after.status, after.version
                ));
            }
            Ok(())
        }
        Op::FailCreates(on) => {
            w.sim.fail_creates(
                on.then(|| DriverError::InvalidSpec("the test refuses creates".into())),
            );
            Ok(())
        }
        Op::FailDeletes(on) => {
            w.sim.fail_deletes(on.then(|| DriverError::Provider {
                code: "TestRefusal".into(),
                message: "the test refuses deletes".into(),
            }));
            Ok(())
        }
        Op::CloudLosesVm => {
            let target = CloudTarget {
                vm_id: w.id,
                region: before.region.datacenter.name.clone(),
                provider_id: before.cloud.as_ref().map(|c| c.id.clone()),
            };
            // Refused while deletes fail: then the VM simply stays.
            if w.sim.delete(&target).await.is_ok() {
                w.lost.store(true, std::sync::atomic::Ordering::SeqCst);
            }
            Ok(())
        }
    }
}

/// After the scenario, with a well-behaved cloud: the VM settles within a bounded number of
/// runs (a failed teardown retried by the user, as documented), in a stable status that agrees
/// with the cloud.
async fn settles(w: &World) -> Result<(), String> {
    w.sim.fail_creates(None);
    w.sim.fail_deletes(None);
    let owner = Who::TeamOwner.user();
    for _ in 0..40 {
        let vm = w.repo.vm(w.id).unwrap();
        record_invariant(&vm)?;
        if vm.pending_op.is_none() {
            if vm.status == VmStatus::Deleting {
                w.service
                    .act(&owner, w.id, Action::Delete)
                    .await
                    .map_err(|e| format!("retrying a failed teardown: {e:?}"))?;
                continue;
            }
            let target = CloudTarget {
                vm_id: w.id,
                region: vm.region.datacenter.name.clone(),
                provider_id: vm.cloud.as_ref().map(|c| c.id.clone()),
            };
            let cloud = w
                .sim
                .get(&target)
                .await
                .map_err(|e| format!("cloud: {e}"))?;
            let state = cloud.as_ref().map(|c| c.state.clone());
            use vmapi_core::cloud::CloudState as C;
            let drifted = w.lost.load(std::sync::atomic::Ordering::SeqCst);
            let agrees = match vm.status {
                VmStatus::Running => drifted || state == Some(C::Running),
                VmStatus::Stopped => drifted || state == Some(C::Stopped),
                VmStatus::Deleted => state.is_none(),
                VmStatus::Failed => true,
                other => return Err(format!("settled in a transitional status {other}")),
            };
            return if agrees {
                Ok(())
            } else {
                Err(format!(
                    "settled {} but the cloud says {state:?}",
                    vm.status
                ))
            };
        }
        w.provisioner
            .process(w.id)
            .await
            .map_err(|e| format!("settling: {e:?}"))?;
    }
    Err(format!(
        "never settled: {:?}",
        w.repo.vm(w.id).map(|v| (v.status, v.pending_op))
    ))
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    /// Random API actions and provisioner steps never reach an illegal state.
    #[test]
    fn the_state_machine_holds_under_random_actions_and_provisioner_steps(
        ops in proptest::collection::vec(op(), 1..40)
    ) {
        runtime().block_on(async {
            let w = world().await;
            let first = w.repo.vm(w.id).unwrap();
            prop_assert_eq!(first.status, VmStatus::Creating);
            prop_assert_eq!(first.version, 1);
            for (i, op) in ops.iter().enumerate() {
                let before = w.repo.vm(w.id).unwrap();
                step(&w, op).await.map_err(|e| TestCaseError::fail(format!("op {i} {op:?}: {e}")))?;
                let after = w.repo.vm(w.id).unwrap();
                record_invariant(&after)
                    .map_err(|e| TestCaseError::fail(format!("after op {i} {op:?}: {e}: {after:?}")))?;
                // What never changes.
                prop_assert_eq!(&after.id, &before.id);
                prop_assert_eq!(&after.name, &before.name);
                prop_assert_eq!(&after.owner, &before.owner);
                prop_assert_eq!(after.team, before.team);
                prop_assert_eq!(after.created_at, before.created_at);
                prop_assert_eq!(after.attestation_id, before.attestation_id);
                prop_assert!(after.updated_at >= before.updated_at);
                if before.status == VmStatus::Deleted {
                    prop_assert_eq!(&after, &before, "a deleted VM never changes");
                }
            }
            settles(&w).await.map_err(TestCaseError::fail)?;
            Ok(())
        })?;
    }
}
