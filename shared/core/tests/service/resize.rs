//! Resize over the in-memory ports: what the request checks, the quota it reserves, and what
//! the provisioner writes when the cloud confirms or refuses.

use std::sync::Arc;

use vmapi_core::{Action, ConflictCode, Error, IfMatch, Provisioner, QuotaLimits};
use vmapi_models::*;

use crate::cloud::InstantCloud;
use crate::fixtures::*;

const BIG: &str = "6548a383e2442d14b6bf9746";
const BIG_PRICE: &str = "6548a383e2442d14b6bf970c";
const REFUSED: &str = "6548a383e2442d14b6bf9747";
const REFUSED_PRICE: &str = "6548a383e2442d14b6bf970d";

struct World {
    repo: Arc<vmapi_core::memory::MemoryRepository>,
    svc: vmapi_core::Service,
    provisioner: Provisioner,
    cloud: Arc<InstantCloud>,
}

/// The fixtures' catalog as an AWS one (Kraud.Cloud cannot resize), with a 4-vCPU size and a
/// size the test cloud refuses, and a team quota of `max_vcpus`.
fn world(max_vcpus: u32) -> World {
    let (repo, store, svc) = setup_with(CredentialScope::Team);
    let svc = svc.with_quotas(QuotaLimits {
        max_active_vms: 10,
        max_vcpus,
    });
    repo.put_cloud_provider(CloudProvider {
        id: CloudProviderId::parse(CLOUD).unwrap(),
        name: "AWS".into(),
        is_disabled: false,
    });
    for (id, price_id, name, vcpus, per_hour) in [
        (BIG, BIG_PRICE, "big", 4, "0.16"),
        (REFUSED, REFUSED_PRICE, "refused", 2, "0.08"),
    ] {
        repo.put_size(Size {
            id: SizeId::parse(id).unwrap(),
            provider: ProviderId::parse(PROVIDER).unwrap(),
            location: "berlin".into(),
            name: name.into(),
            vcpus,
            memory_gb: 16,
            space_gb: 50,
            group: 0,
            confidential: None,
        });
        repo.put_price(Price {
            id: PriceId::parse(price_id).unwrap(),
            provider: ProviderId::parse(PROVIDER).unwrap(),
            location_name: "berlin".into(),
            size_name: name.into(),
            image_name: "Ubuntu".into(),
            price_per_hour: Money::parse(per_hour).unwrap(),
            price_per_month: Money::parse("100").unwrap(),
            currency_code: "EUR".into(),
            created_at: ts(),
            updated_at: ts(),
        });
    }
    let cloud = Arc::new(InstantCloud::default());
    let provisioner = provisioner_with(
        repo.clone(),
        Arc::new(vmapi_core::SystemClock),
        CloudKind::Aws,
        cloud.clone(),
        store,
    );
    World {
        repo,
        svc,
        provisioner,
        cloud,
    }
}

impl World {
    async fn settle(&self, id: VmId) -> VmStatus {
        settled_status(&self.provisioner, id).await
    }

    async fn running(&self, name: &str) -> VmId {
        running(&self.svc, &self.provisioner, name).await
    }

    async fn resize(&self, id: VmId, size: &str, price: &str) -> Result<ActionResult, Error> {
        let req = ResizeVmRequest {
            size: SizeId::parse(size).unwrap(),
            price: PriceId::parse(price).unwrap(),
        };
        self.svc
            .resize_if(&user("member"), id, &req, &IfMatch::Any)
            .await
            .map(|(r, _)| r)
    }

    fn vcpus_used(&self) -> u64 {
        self.repo.usage(TeamId::parse(TEAM).unwrap()).vcpus
    }
}

#[tokio::test]
async fn a_running_vm_gets_the_new_size_when_the_cloud_confirms_and_runs_on() {
    let w = world(100);
    let id = w.running("web-1").await;
    assert_eq!(w.vcpus_used(), 1);
    let r = w.resize(id, BIG, BIG_PRICE).await.unwrap();
    assert_eq!(r.message, "Virtual machine is being resized");
    assert_eq!(r.status, VmStatus::Running);
    // Asked, not done: the old size until the cloud confirms; the larger size counts already.
    let rec = w.repo.vm(id).unwrap();
    assert_eq!(rec.size, SizeId::parse(SIZE).unwrap());
    assert_eq!(rec.pending_op.as_ref().unwrap().op, OpKind::Resize);
    assert_eq!(w.vcpus_used(), 4);
    // Other actions wait; a second resize too.
    let stop = w
        .svc
        .act(&user("owner"), id, Action::Stop)
        .await
        .unwrap_err();
    assert!(
        matches!(
            stop,
            Error::Conflict {
                code: ConflictCode::IllegalTransition,
                ..
            }
        ),
        "{stop:?}"
    );
    assert!(matches!(
        w.resize(id, BIG, BIG_PRICE).await,
        Err(Error::Conflict {
            code: ConflictCode::IllegalTransition,
            ..
        })
    ));

    assert_eq!(w.settle(id).await, VmStatus::Running);
    let rec = w.repo.vm(id).unwrap();
    assert_eq!(rec.size, SizeId::parse(BIG).unwrap());
    assert_eq!(rec.price, PriceId::parse(BIG_PRICE).unwrap());
    assert_eq!(rec.vcpus, Some(4));
    assert_eq!(rec.resize_to, None);
    assert_eq!(
        rec.billing.as_ref().unwrap().price_per_hour.to_string(),
        "0.16"
    );
    assert_eq!(w.vcpus_used(), 4);
    assert!(w.cloud.calls().contains(&format!("resize {id} big")));
    let kinds: Vec<EventKind> = w
        .repo
        .events()
        .iter()
        .filter(|e| e.vm_id == id)
        .map(|e| e.kind)
        .collect();
    assert!(
        kinds.ends_with(&[EventKind::Resize, EventKind::ProvisioningDone]),
        "{kinds:?}"
    );

    // Back to the small size: its vCPUs are freed when the cloud confirms.
    w.resize(id, SIZE, PRICE).await.unwrap();
    assert_eq!(w.vcpus_used(), 4);
    w.settle(id).await;
    assert_eq!(w.vcpus_used(), 1);
}

#[tokio::test]
async fn a_refused_resize_keeps_the_old_size_and_gives_the_vcpus_back() {
    let w = world(100);
    let id = w.running("web-1").await;
    w.resize(id, REFUSED, REFUSED_PRICE).await.unwrap();
    assert_eq!(w.vcpus_used(), 2);
    assert_eq!(w.settle(id).await, VmStatus::Running);
    let rec = w.repo.vm(id).unwrap();
    assert_eq!(rec.size, SizeId::parse(SIZE).unwrap());
    assert_eq!(rec.vcpus, Some(1));
    assert!(
        rec.status_reason
            .as_deref()
            .is_some_and(|r| r.starts_with("the resize to refused failed")),
        "{:?}",
        rec.status_reason
    );
    assert_eq!(w.vcpus_used(), 1);
}

#[tokio::test]
async fn the_quota_counts_the_difference_and_bad_sizes_change_nothing() {
    let w = world(3);
    let id = w.running("web-1").await;
    let before = w.repo.vm(id).unwrap();
    // 1 → 4 vCPUs would need 3 more with 1 of 3 used.
    let err = w.resize(id, BIG, BIG_PRICE).await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::Conflict {
                code: ConflictCode::QuotaExceeded,
                ..
            }
        ),
        "{err:?}"
    );
    // A price of another size, a size of nowhere.
    let err = w.resize(id, BIG, PRICE).await.unwrap_err();
    assert!(
        matches!(&err, Error::Invalid { details, .. } if details[0].field == "price"),
        "{err:?}"
    );
    let err = w
        .resize(id, "6548a383e2442d14b6bf9999", BIG_PRICE)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Invalid { details, .. } if details[0].field == "size"),
        "{err:?}"
    );
    assert_eq!(w.repo.vm(id).unwrap(), before, "nothing changed");
    assert_eq!(w.vcpus_used(), 1);
    // The same size and price: nothing to do.
    let r = w.resize(id, SIZE, PRICE).await.unwrap();
    assert_eq!(r.message, "Virtual machine is running");
    assert_eq!(w.repo.vm(id).unwrap(), before);
    // A viewer may not.
    let req = ResizeVmRequest {
        size: SizeId::parse(REFUSED).unwrap(),
        price: PriceId::parse(REFUSED_PRICE).unwrap(),
    };
    assert!(matches!(
        w.svc
            .resize_if(&user("viewer"), id, &req, &IfMatch::Any)
            .await,
        Err(Error::Forbidden(_))
    ));
}

#[tokio::test]
async fn kraud_cannot_resize() {
    let (_, svc) = setup();
    let id = svc
        .create(&user("owner"), request(&["web-1"]))
        .await
        .unwrap()[0]
        .id;
    let req = ResizeVmRequest {
        size: SizeId::parse(SIZE).unwrap(),
        price: PriceId::parse(PRICE).unwrap(),
    };
    assert!(matches!(
        svc.resize_if(&user("owner"), id, &req, &IfMatch::Any).await,
        Err(Error::UnsupportedByProvider(_))
    ));
}
