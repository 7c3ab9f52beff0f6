//! Unit tests of the use cases over the in-memory repository.

use std::sync::Arc;

use vmapi_core::memory::{MemoryRepository, MemorySecretStore};
use vmapi_core::{Action, ConflictCode, Error, NotFoundKind, Service, SystemClock};
use vmapi_models::OpKind;
use vmapi_models::*;

const CLOUD: &str = "6548a383e2442d14b6bf9685";
const PROVIDER: &str = "6548a383e2442d14b6bf968b";
const SIZE: &str = "6548a383e2442d14b6bf9745";
const PRICE: &str = "6548a383e2442d14b6bf970b";
const TEAM: &str = "6548a41f38406c14db33b61e";
const PROJECT: &str = "6548a41f38406c14db33b62c";

fn ts() -> Timestamp {
    Timestamp::parse("2023-11-06T08:27:47.134Z").unwrap()
}

fn region() -> Region {
    Region {
        datacenter: Datacenter {
            name: "berlin".into(),
            display_name: "Berlin".into(),
        },
        physical_location: "Germany".into(),
    }
}

fn image() -> Image {
    Image {
        version: ImageVersion {
            name: "20_04-lts".into(),
            display_name: "20.04 LTS".into(),
        },
        distribution: "Ubuntu".into(),
    }
}

fn user(s: &str) -> UserId {
    UserId::parse(s).unwrap()
}

fn setup() -> (Arc<MemoryRepository>, Service) {
    let (repo, _store, service) = setup_with(CredentialScope::Team);
    (repo, service)
}

fn setup_with(scope: CredentialScope) -> (Arc<MemoryRepository>, Arc<MemorySecretStore>, Service) {
    let repo = Arc::new(MemoryRepository::new());
    repo.put_cloud_provider(CloudProvider {
        id: CloudProviderId::parse(CLOUD).unwrap(),
        name: "Kraud.Cloud".into(),
        is_disabled: false,
    });
    repo.put_provider(ProviderRecord {
        id: ProviderId::parse(PROVIDER).unwrap(),
        kind: "vm".into(),
        is_disabled: false,
        cloud_provider: CloudProviderId::parse(CLOUD).unwrap(),
        locations: vec![region()],
        images: vec![image()],
        image_refs: Default::default(),
    });
    repo.put_size(Size {
        id: SizeId::parse(SIZE).unwrap(),
        provider: ProviderId::parse(PROVIDER).unwrap(),
        location: "berlin".into(),
        name: "Standart_berlin_1_4_50".into(),
        vcpus: 1,
        memory_gb: 4,
        space_gb: 50,
        group: 0,
        confidential: None,
    });
    repo.put_price(Price {
        id: PriceId::parse(PRICE).unwrap(),
        provider: ProviderId::parse(PROVIDER).unwrap(),
        location_name: "berlin".into(),
        size_name: "Standart_berlin_1_4_50".into(),
        image_name: "Ubuntu".into(),
        price_per_hour: Money::parse("0.04").unwrap(),
        price_per_month: Money::parse("30").unwrap(),
        currency_code: "EUR".into(),
        created_at: ts(),
        updated_at: ts(),
    });
    repo.put_team(Team {
        id: TeamId::parse(TEAM).unwrap(),
        name: "My Team".into(),
        email: "john.doe@mail.com".into(),
        members: vec![
            Member {
                user: user("owner"),
                role: Role::Owner,
            },
            Member {
                user: user("viewer"),
                role: Role::Viewer,
            },
            Member {
                user: user("admin"),
                role: Role::Admin,
            },
            Member {
                user: user("member"),
                role: Role::Member,
            },
        ],
        created_at: ts(),
        updated_at: ts(),
        billing_settings: None,
        quotas: None,
    });
    repo.put_project(Project {
        id: ProjectId::parse(PROJECT).unwrap(),
        name: "first-project".into(),
        description: String::new(),
        environment: "Development".into(),
        purpose: String::new(),
        is_default: false,
        icon: 1,
        owner: user("owner"),
        team: TeamId::parse(TEAM).unwrap(),
        created_at: ts(),
        updated_at: ts(),
    });
    let store = Arc::new(MemorySecretStore::new());
    let service =
        Service::new(repo.clone(), Arc::new(SystemClock)).with_logins(store.clone(), scope);
    (repo, store, service)
}

fn request(names: &[&str]) -> CreateVmRequest {
    CreateVmRequest {
        cloud_provider: CloudProviderId::parse(CLOUD).unwrap(),
        team: TeamId::parse(TEAM).unwrap(),
        project: ProjectId::parse(PROJECT).unwrap(),
        host_names: names.iter().map(|n| HostName::parse(n).unwrap()).collect(),
        provider: ProviderId::parse(PROVIDER).unwrap(),
        size: SizeId::parse(SIZE).unwrap(),
        price: PriceId::parse(PRICE).unwrap(),
        subscription: None,
        tags: Tags::default(),
        access: None,
        region: region(),
        image: image(),
        auth_method: AuthMethod::SshKey,
        quantity: None,
        expires_at: None,
    }
}

#[tokio::test]
async fn create_then_get_populates_everything() {
    let (_repo, svc) = setup();
    let created = svc
        .create(&user("owner"), request(&["web-1"]))
        .await
        .unwrap();
    assert_eq!(created.len(), 1);
    assert_eq!(created[0].status, VmStatus::Creating);
    assert!(matches!(created[0].provider, Ref::Id(_)));
    let got = svc.get(&user("owner"), created[0].id).await.unwrap();
    assert!(matches!(got.team, Ref::Populated(_)));
    assert!(matches!(
        got.provider,
        Ref::Populated(Provider {
            cloud_provider: Ref::Populated(_),
            ..
        })
    ));
    assert_eq!(got.owner, user("owner"));
}

#[tokio::test]
async fn strangers_see_404_and_viewers_cannot_write() {
    let (repo, svc) = setup();
    let err = svc
        .create(&user("stranger"), request(&["a"]))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::NotFound {
                kind: NotFoundKind::Team,
                ..
            }
        ),
        "{err:?}"
    );
    let err = svc
        .create(&user("viewer"), request(&["a"]))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Forbidden(_)), "{err:?}");
    assert_eq!(repo.vm_count(), 0);

    let vm = svc
        .create(&user("owner"), request(&["a"]))
        .await
        .unwrap()
        .remove(0);
    assert!(matches!(
        svc.get(&user("stranger"), vm.id).await,
        Err(Error::NotFound {
            kind: NotFoundKind::Vm,
            ..
        })
    ));
    assert!(svc.get(&user("viewer"), vm.id).await.is_ok());
    assert!(matches!(
        svc.act(&user("viewer"), vm.id, Action::Delete).await,
        Err(Error::Forbidden(_))
    ));
    assert!(matches!(
        svc.act(&user("stranger"), vm.id, Action::Delete).await,
        Err(Error::NotFound { .. })
    ));
}

#[tokio::test]
async fn host_names_are_unique_per_project_and_freed_by_delete() {
    let (repo, svc) = setup();
    let err = svc
        .create(&user("owner"), request(&["a", "a"]))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Conflict {
                code: ConflictCode::DuplicateHostName,
                ..
            }
        ),
        "{err:?}"
    );
    let vm = svc
        .create(&user("owner"), request(&["a"]))
        .await
        .unwrap()
        .remove(0);
    let err = svc
        .create(&user("owner"), request(&["b", "a"]))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Conflict {
                code: ConflictCode::HostNameTaken,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(
        repo.vm_count(),
        1,
        "nothing of the failed request was written"
    );
    let res = svc
        .act(&user("owner"), vm.id, Action::Delete)
        .await
        .unwrap();
    assert_eq!(res.status, VmStatus::Deleting);
    let stored = repo.vm(vm.id).unwrap();
    assert_eq!(stored.pending_op.unwrap().op, OpKind::Delete);
    assert_eq!(
        svc.get(&user("owner"), vm.id).await.unwrap().status,
        VmStatus::Deleting,
        "GET shows a deleting VM until the cloud teardown is done"
    );
    // The name is free as soon as the VM is deleting.
    svc.create(&user("owner"), request(&["a"])).await.unwrap();
}

#[tokio::test]
async fn actions_follow_the_state_table() {
    let (repo, svc) = setup();
    let vm = svc
        .create(&user("owner"), request(&["a"]))
        .await
        .unwrap()
        .remove(0);
    let err = svc
        .act(&user("owner"), vm.id, Action::Start)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Conflict {
                code: ConflictCode::IllegalTransition,
                ..
            }
        ),
        "{err:?}"
    );

    let mut rec = repo.vm(vm.id).unwrap();
    rec.status = VmStatus::Running;
    repo.put_vm(rec);
    assert_eq!(
        svc.act(&user("owner"), vm.id, Action::Start)
            .await
            .unwrap()
            .status,
        VmStatus::Running
    );
    let stop = svc.act(&user("owner"), vm.id, Action::Stop).await.unwrap();
    assert_eq!(stop.status, VmStatus::Stopping);
    assert_eq!(stop.message, "Virtual machine is stopping");
    let stored = repo.vm(vm.id).unwrap();
    assert_eq!(stored.version, 2);
    assert_eq!(
        stored.pending_op.unwrap().op,
        OpKind::Stop,
        "the provisioner's work"
    );
    assert_eq!(
        svc.act(&user("owner"), vm.id, Action::Stop)
            .await
            .unwrap()
            .status,
        VmStatus::Stopping
    );
}

#[tokio::test]
async fn catalog_mismatches_are_named() {
    let (repo, svc) = setup();
    let mut req = request(&["a"]);
    req.region.datacenter.name = "paris".into();
    req.quantity = Some(1);
    let err = svc.create(&user("owner"), req).await.unwrap_err();
    let Error::Invalid { details, .. } = err else {
        panic!("{err:?}")
    };
    assert_eq!(details[0].field, "region");

    let mut req = request(&["a", "b"]);
    req.quantity = Some(3);
    let err = svc.create(&user("owner"), req).await.unwrap_err();
    let Error::Invalid { details, .. } = err else {
        panic!("{err:?}")
    };
    assert_eq!(details[0].field, "quantity");

    let mut req = request(&["a"]);
    req.size = SizeId::new();
    let err = svc.create(&user("owner"), req).await.unwrap_err();
    let Error::Invalid { details, .. } = err else {
        panic!("{err:?}")
    };
    assert_eq!(details[0].field, "size");
    assert_eq!(repo.vm_count(), 0);
}

#[tokio::test]
async fn update_renames_and_retags() {
    let (_repo, svc) = setup();
    let vm = svc
        .create(&user("owner"), request(&["a"]))
        .await
        .unwrap()
        .remove(0);
    svc.create(&user("owner"), request(&["b"])).await.unwrap();
    let patch = UpdateVmRequest {
        name: Some(HostName::parse("b").unwrap()),
        tags: None,
        expires_at: None,
    };
    let err = svc.update(&user("owner"), vm.id, patch).await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::Conflict {
                code: ConflictCode::HostNameTaken,
                ..
            }
        ),
        "{err:?}"
    );
    let patch = UpdateVmRequest {
        name: Some(HostName::parse("c").unwrap()),
        tags: Some(Tags::new(vec![Tag::parse("env:dev").unwrap()]).unwrap()),
        expires_at: None,
    };
    let updated = svc.update(&user("owner"), vm.id, patch).await.unwrap();
    assert_eq!(updated.name.as_str(), "c");
    assert_eq!(updated.tags.as_slice().len(), 1);
    assert!(matches!(
        svc.update(&user("owner"), vm.id, UpdateVmRequest::default())
            .await,
        Err(Error::Invalid { .. })
    ));
}

#[tokio::test]
async fn list_is_newest_first_and_pages() {
    let (_repo, svc) = setup();
    let names: Vec<String> = (0..5).map(|i| format!("vm-{i}")).collect();
    for n in &names {
        svc.create(&user("owner"), request(&[n])).await.unwrap();
    }
    let team = TeamId::parse(TEAM).unwrap();
    let project = ProjectId::parse(PROJECT).unwrap();
    let first = svc
        .list(&user("owner"), team, project, 3, None)
        .await
        .unwrap();
    assert_eq!(first.items.len(), 3);
    let second = svc
        .list(&user("owner"), team, project, 3, first.next.as_ref())
        .await
        .unwrap();
    assert_eq!(second.items.len(), 2);
    assert!(second.next.is_none());
    let all: Vec<String> = first
        .items
        .iter()
        .chain(&second.items)
        .map(|v| v.name.to_string())
        .collect();
    let mut expected = names.clone();
    expected.reverse();
    assert_eq!(all, expected);
    assert!(matches!(
        svc.list(&user("stranger"), team, project, 3, None).await,
        Err(Error::NotFound { .. })
    ));
}

#[tokio::test]
async fn team_scope_makes_one_login_per_team_and_reuses_it() {
    let (repo, store, svc) = setup_with(CredentialScope::Team);
    let a = svc
        .create(&user("owner"), request(&["a-1", "a-2"]))
        .await
        .unwrap();
    let mut pw = request(&["b-1"]);
    pw.auth_method = AuthMethod::Password;
    let b = svc.create(&user("member"), pw).await.unwrap();
    assert_eq!(
        store.paths(),
        vec![CredentialScope::Team.path(TeamId::parse(TEAM).unwrap(), a[0].id)]
    );
    for vm in a.iter().chain(&b) {
        let login = repo.vm(vm.id).unwrap().login.unwrap();
        assert_eq!(login.username, "root");
        assert_eq!(login.secret.unwrap().path, store.paths()[0]);
    }
    let key = svc.credentials(&user("owner"), a[1].id).await.unwrap();
    assert!(key.private_key.is_some() && key.public_key.is_some() && key.password.is_none());
    // The shared login opens every VM of the team: its member creator may not read it.
    assert!(matches!(
        svc.credentials(&user("member"), b[0].id).await,
        Err(Error::Forbidden(m)) if m.contains("shared login")
    ));
    let pass = svc.credentials(&user("owner"), b[0].id).await.unwrap();
    assert!(pass.password.is_some() && pass.private_key.is_none() && pass.public_key.is_none());
}

#[tokio::test]
async fn vm_scope_gives_each_vm_its_login() {
    let (repo, store, svc) = setup_with(CredentialScope::Vm);
    let vms = svc
        .create(&user("owner"), request(&["a-1", "a-2"]))
        .await
        .unwrap();
    assert_eq!(store.paths().len(), 2);
    let one = svc.credentials(&user("owner"), vms[0].id).await.unwrap();
    let two = svc.credentials(&user("owner"), vms[1].id).await.unwrap();
    assert_ne!(
        one.private_key.unwrap().expose(),
        two.private_key.unwrap().expose()
    );
    svc.act(&user("owner"), vms[0].id, Action::Delete)
        .await
        .unwrap();
    assert_eq!(
        store.paths().len(),
        2,
        "removed only after the cloud teardown"
    );
    assert_eq!(repo.vm(vms[0].id).unwrap().status, VmStatus::Deleting);
}

#[tokio::test]
async fn a_failed_vm_write_removes_the_logins_it_made() {
    let (repo, store, svc) = setup_with(CredentialScope::Vm);
    svc.create(&user("owner"), request(&["taken"]))
        .await
        .unwrap();
    let err = svc
        .create(&user("owner"), request(&["fresh", "taken"]))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Conflict {
                code: ConflictCode::HostNameTaken,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(store.paths().len(), 1, "only the first VM's login remains");
    assert_eq!(repo.vm_count(), 1);
}

#[tokio::test]
async fn an_unavailable_secret_store_stops_the_create_before_any_record() {
    for scope in [CredentialScope::Team, CredentialScope::Vm] {
        let (repo, store, svc) = setup_with(scope);
        store.set_down(true);
        let err = svc
            .create(&user("owner"), request(&["web-1"]))
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Unavailable { .. }), "{err:?}");
        assert_eq!(repo.vm_count(), 0);
        store.set_down(false);
        assert!(store.paths().is_empty());
    }
}

#[tokio::test]
async fn credentials_go_to_the_vm_owner_and_team_owners_and_admins_only() {
    let (repo, _store, svc) = setup_with(CredentialScope::Vm);
    let vm = svc
        .create(&user("member"), request(&["web-1"]))
        .await
        .unwrap()[0]
        .id;
    for who in ["member", "owner", "admin"] {
        let c = svc.credentials(&user(who), vm).await.unwrap();
        assert_eq!(c.vm_id, vm);
        assert_eq!(c.port, 22);
    }
    let events = repo.events();
    assert_eq!(
        events[0].kind,
        EventKind::Create,
        "the create is recorded first"
    );
    let reads = &events[1..];
    assert_eq!(reads.len(), 3);
    assert!(reads
        .iter()
        .all(|e| e.kind == EventKind::CredentialsRead && e.vm_id == vm));
    assert_eq!(reads[1].actor, "owner");

    let (_repo, _store, svc2) = setup_with(CredentialScope::Vm);
    let theirs = svc2
        .create(&user("owner"), request(&["web-2"]))
        .await
        .unwrap()[0]
        .id;
    for who in ["member", "viewer"] {
        let err = svc2.credentials(&user(who), theirs).await.unwrap_err();
        assert!(matches!(err, Error::Forbidden(_)), "{who}: {err:?}");
    }
    let err = svc2
        .credentials(&user("stranger"), theirs)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::NotFound {
                kind: NotFoundKind::Vm,
                ..
            }
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn own_public_key_stores_nothing_and_is_returned_as_is() {
    let (_repo, store, svc) = setup_with(CredentialScope::Vm);
    let key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOAKEyfwmZRghqzj9JLL8xl+SfAN+bqcjzApJNJ0S2Ck user@host";
    let mut req = request(&["web-1"]);
    req.access = Some(Access {
        ssh_public_key: SshPublicKey::parse(key).unwrap(),
    });
    let vm = svc.create(&user("owner"), req).await.unwrap()[0].id;
    assert!(store.paths().is_empty());
    let c = svc.credentials(&user("owner"), vm).await.unwrap();
    assert_eq!(c.public_key.as_deref(), Some(key));
    assert!(c.private_key.is_none() && c.password.is_none());
}

// ---- The provisioner, over the in-memory repository and an instant test cloud ----

mod cloud {
    use std::collections::HashMap;
    use std::sync::Mutex;

    use async_trait::async_trait;
    use vmapi_core::cloud::*;
    use vmapi_models::VmId;

    /// A cloud whose operations take effect at once; failures can be switched on.
    #[derive(Default)]
    pub struct InstantCloud {
        pub vms: Mutex<HashMap<VmId, CloudState>>,
        pub calls: Mutex<Vec<String>>,
        pub fail_create: Mutex<Option<DriverError>>,
        pub fail_delete: Mutex<Option<DriverError>>,
        /// Start/stop leave the VM in the transitional state for this many `get`s.
        pub slow_gets: Mutex<u32>,
    }

    impl InstantCloud {
        fn log(&self, s: String) {
            self.calls.lock().unwrap().push(s);
        }
        pub fn calls(&self) -> Vec<String> {
            self.calls.lock().unwrap().clone()
        }
    }

    #[async_trait]
    impl CloudDriver for InstantCloud {
        fn kind(&self) -> DriverKind {
            DriverKind::Simulated
        }
        fn capabilities(&self) -> Capabilities {
            Capabilities {
                confidential: vec![],
                native_idempotency: true,
                password_login: false,
            }
        }
        async fn create(&self, spec: &VmSpec) -> Result<CloudVm, DriverError> {
            self.log(format!("create {}", spec.vm_id));
            if let Some(e) = self.fail_create.lock().unwrap().clone() {
                return Err(e);
            }
            self.vms
                .lock()
                .unwrap()
                .entry(spec.vm_id)
                .or_insert(CloudState::Provisioning);
            Ok(view(spec.vm_id, CloudState::Provisioning))
        }
        async fn get(&self, t: &CloudTarget) -> Result<Option<CloudVm>, DriverError> {
            let mut vms = self.vms.lock().unwrap();
            let Some(state) = vms.get_mut(&t.vm_id) else {
                return Ok(None);
            };
            let mut slow = self.slow_gets.lock().unwrap();
            if *slow > 0 {
                *slow -= 1;
                return Ok(Some(view(t.vm_id, state.clone())));
            }
            // Transitional states settle on the next look.
            let settled = match &*state {
                CloudState::Provisioning | CloudState::Starting => CloudState::Running,
                CloudState::Stopping => CloudState::Stopped,
                other => other.clone(),
            };
            *state = settled;
            if *state == CloudState::Deleting {
                vms.remove(&t.vm_id);
                return Ok(None);
            }
            Ok(Some(view(t.vm_id, state.clone())))
        }
        async fn start(&self, t: &CloudTarget) -> Result<(), DriverError> {
            self.log(format!("start {}", t.vm_id));
            self.vms
                .lock()
                .unwrap()
                .insert(t.vm_id, CloudState::Starting);
            Ok(())
        }
        async fn stop(&self, t: &CloudTarget) -> Result<(), DriverError> {
            self.log(format!("stop {}", t.vm_id));
            self.vms
                .lock()
                .unwrap()
                .insert(t.vm_id, CloudState::Stopping);
            Ok(())
        }
        async fn reboot(&self, t: &CloudTarget) -> Result<(), DriverError> {
            self.log(format!("reboot {}", t.vm_id));
            Ok(())
        }
        async fn delete(&self, t: &CloudTarget) -> Result<(), DriverError> {
            self.log(format!("delete {}", t.vm_id));
            if let Some(e) = self.fail_delete.lock().unwrap().clone() {
                return Err(e);
            }
            if let Some(s) = self.vms.lock().unwrap().get_mut(&t.vm_id) {
                *s = CloudState::Deleting;
            }
            Ok(())
        }
        async fn list_managed(&self, region: &str) -> Result<Vec<ManagedResource>, DriverError> {
            let vms = self.vms.lock().unwrap();
            Ok(vms
                .iter()
                .filter(|(_, s)| **s != CloudState::Deleting)
                .map(|(id, s)| ManagedResource {
                    kind: ManagedKind::Vm,
                    target: CloudTarget {
                        vm_id: *id,
                        region: region.to_string(),
                        provider_id: Some(format!("i-{id}")),
                    },
                    created_at: None,
                    raw_state: format!("{s:?}"),
                    deployment: Some("local".into()),
                })
                .collect())
        }
    }

    fn view(id: VmId, state: CloudState) -> CloudVm {
        let running = state == CloudState::Running;
        CloudVm {
            provider_id: format!("i-{id}"),
            raw_state: format!("{state:?}"),
            public_ipv4: running.then(|| "203.0.113.7".to_string()),
            public_ipv6: None,
            private_ipv4: Some("10.0.0.7".into()),
            confidential: None,
            state,
        }
    }
}

use std::time::Duration;

use cloud::InstantCloud;
use vmapi_core::cloud::DriverError;
use vmapi_core::{Drivers, Outcome, Provisioner, ProvisionerOptions, WorkItem};

fn provisioner(
    repo: &Arc<MemoryRepository>,
    store: &Arc<MemorySecretStore>,
) -> (Arc<InstantCloud>, Provisioner) {
    let cloud = Arc::new(InstantCloud::default());
    let p = Provisioner::new(
        repo.clone(),
        Arc::new(SystemClock),
        Drivers::new().with(CloudKind::Kraud, cloud.clone()),
        Some(store.clone()),
        ProvisionerOptions {
            poll_budget: Duration::from_millis(200),
            poll_interval: Duration::from_millis(5),
            ..ProvisionerOptions::default()
        },
    );
    (cloud, p)
}

/// Runs the provisioner until the VM has nothing pending (as repeated stream deliveries would).
async fn settle(p: &Provisioner, id: VmId) -> Outcome {
    for _ in 0..20 {
        match p.process(id).await.unwrap() {
            Outcome::Waiting => continue,
            other => return other,
        }
    }
    panic!("never settled")
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
