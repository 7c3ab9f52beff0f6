//! What the use-case and provisioner tests share: the demo catalog's ids, a seeded in-memory
//! repository and service, a create request, and a fast provisioner over the instant cloud.

use std::sync::Arc;
use std::time::Duration;

use vmapi_core::memory::{MemoryRepository, MemorySecretStore};
use vmapi_core::{Clock, Drivers, Outcome, Provisioner, ProvisionerOptions, Service, SystemClock};
use vmapi_models::*;

use crate::cloud::InstantCloud;

pub(crate) const CLOUD: &str = "6548a383e2442d14b6bf9685";
pub(crate) const PROVIDER: &str = "6548a383e2442d14b6bf968b";
pub(crate) const SIZE: &str = "6548a383e2442d14b6bf9745";
pub(crate) const LOCATION: &str = "6548a383e2442d14b6bf96a1";
pub(crate) const PRICE: &str = "6548a383e2442d14b6bf970b";
pub(crate) const TEAM: &str = "6548a41f38406c14db33b61e";
pub(crate) const PROJECT: &str = "6548a41f38406c14db33b62c";

pub(crate) fn ts() -> Timestamp {
    Timestamp::parse("2023-11-06T08:27:47.134Z").unwrap()
}

pub(crate) fn region() -> Region {
    Region {
        datacenter: Datacenter {
            name: "berlin".into(),
            display_name: "Berlin".into(),
        },
        physical_location: "Germany".into(),
    }
}

pub(crate) fn image() -> Image {
    Image {
        version: ImageVersion {
            name: "20_04-lts".into(),
            display_name: "20.04 LTS".into(),
        },
        distribution: "Ubuntu".into(),
    }
}

pub(crate) fn user(s: &str) -> UserId {
    UserId::parse(s).unwrap()
}

pub(crate) fn setup() -> (Arc<MemoryRepository>, Service) {
    let (repo, _store, service) = setup_with(CredentialScope::Team);
    (repo, service)
}

pub(crate) fn setup_with(
    scope: CredentialScope,
) -> (Arc<MemoryRepository>, Arc<MemorySecretStore>, Service) {
    setup_with_clock(scope, Arc::new(SystemClock))
}

/// A clock the test sets.
#[derive(Debug)]
pub(crate) struct ManualClock(std::sync::Mutex<Timestamp>);

impl ManualClock {
    pub(crate) fn at(at: &str) -> Arc<Self> {
        Arc::new(ManualClock(std::sync::Mutex::new(
            Timestamp::parse(at).unwrap(),
        )))
    }

    pub(crate) fn set(&self, at: &str) {
        *self.0.lock().unwrap() = Timestamp::parse(at).unwrap();
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        *self.0.lock().unwrap()
    }
}

pub(crate) fn setup_with_clock(
    scope: CredentialScope,
    clock: Arc<dyn Clock>,
) -> (Arc<MemoryRepository>, Arc<MemorySecretStore>, Service) {
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
        locations: vec![Location {
            id: LocationId::parse(LOCATION).unwrap(),
            region: region(),
        }],
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
    let service = Service::new(repo.clone(), clock).with_logins(store.clone(), scope);
    (repo, store, service)
}

pub(crate) fn request(names: &[&str]) -> CreateVmRequest {
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

/// A provisioner over `repo` with `cloud` as the driver of `kind`, polling every 5 ms for at most
/// 200 ms per delivery.
pub(crate) fn provisioner_with(
    repo: Arc<MemoryRepository>,
    clock: Arc<dyn Clock>,
    kind: CloudKind,
    cloud: Arc<InstantCloud>,
    store: Arc<MemorySecretStore>,
) -> Provisioner {
    Provisioner::new(
        repo,
        clock,
        Drivers::new().with(kind, cloud),
        Some(store),
        ProvisionerOptions {
            poll_budget: Duration::from_millis(200),
            poll_interval: Duration::from_millis(5),
            ..ProvisionerOptions::default()
        },
    )
}

/// Runs the provisioner until the VM has nothing pending (as repeated stream deliveries would).
pub(crate) async fn settle(p: &Provisioner, id: VmId) -> Outcome {
    for _ in 0..20 {
        match p.process(id).await.unwrap() {
            Outcome::Waiting => continue,
            other => return other,
        }
    }
    panic!("never settled")
}

/// The status `id` settles in; anything but a finished operation fails the test.
pub(crate) async fn settled_status(p: &Provisioner, id: VmId) -> VmStatus {
    match settle(p, id).await {
        Outcome::Finished(status) => status,
        other => panic!("unexpected {other:?}"),
    }
}

/// A VM named `name`, created by "owner" and settled running.
pub(crate) async fn running(svc: &Service, p: &Provisioner, name: &str) -> VmId {
    let id = svc.create(&user("owner"), request(&[name])).await.unwrap()[0].id;
    assert_eq!(settled_status(p, id).await, VmStatus::Running);
    id
}
