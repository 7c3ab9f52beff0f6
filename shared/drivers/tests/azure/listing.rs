//! Listing the service's VMs and NSGs (`list_managed`), and deleting what it found.

use std::time::Duration;

use axum::http::Method;
use serde_json::json;
use vmapi_core::cloud::{CloudDriver, DriverError, ManagedKind};
use vmapi_models::{TeamId, VmId};

use crate::azure_arm::{ArmServer, Fault, COMPUTE, NETWORK, RESOURCE_GROUP, SUBSCRIPTION};
use crate::common::{driver, spec, vm_path};

#[tokio::test]
async fn list_managed_finds_the_services_vms_and_only_those() {
    let arm = ArmServer::start().await;
    arm.set_list_page_size(2);
    let azure = driver(arm.config());
    let (a, b, gone) = (spec("westeurope"), spec("westeurope"), spec("westeurope"));
    for spec in [&a, &b, &gone] {
        azure.create(spec).await.unwrap();
    }
    azure.delete(&gone.target()).await.unwrap();
    assert!(!arm.has_vm(&format!("vm-{}", gone.vm_id)));
    // Not the service's: untagged, our naming without our tag, another owner's tag.
    arm.insert_vm("web-server", "westeurope", json!({}));
    let foreign_by_name = format!("vm-{}", VmId::new());
    arm.insert_vm(&foreign_by_name, "westeurope", json!({ "env": "prod" }));
    arm.insert_vm(
        "build-agent",
        "westeurope",
        json!({ "managed-by": "terraform", "vm-id": VmId::new().to_string() }),
    );
    // Ours by the tag, but with a VM id that does not parse.
    arm.insert_vm(
        "vm-broken",
        "westeurope",
        json!({ "managed-by": "vm-api", "vm-id": "broken" }),
    );
    // Ours, in another region.
    let north = VmId::new();
    arm.insert_vm(
        &format!("vm-{north}"),
        "northeurope",
        json!({ "managed-by": "vm-api", "vm-id": north.to_string(), "team": TeamId::new().to_string() }),
    );
    arm.clear_requests();

    let listed = azure.list_managed("westeurope").await.unwrap();
    let mut found: Vec<(VmId, String)> = listed
        .iter()
        .map(|r| (r.target.vm_id, r.target.provider_id.clone().unwrap()))
        .collect();
    found.sort();
    let mut expected = vec![(a.vm_id, vm_path(&a)), (b.vm_id, vm_path(&b))];
    expected.sort();
    assert_eq!(found, expected);
    for resource in &listed {
        assert_eq!(resource.target.region, "westeurope");
        assert!(resource.created_at.is_some(), "timeCreated is read");
        assert!(
            resource.raw_state.starts_with("ProvisioningState/"),
            "{}",
            resource.raw_state
        );
    }
    // One documented list call per page (7 VMs, 2 a page), following nextLink.
    let lists: Vec<_> = arm
        .requests()
        .into_iter()
        .filter(|r| r.method == "GET" && r.path.ends_with("/virtualMachines"))
        .collect();
    assert_eq!(lists.len(), 4, "{lists:?}");
    assert_eq!(
        lists[0].path,
        format!("/subscriptions/{SUBSCRIPTION}/resourceGroups/{RESOURCE_GROUP}/providers/Microsoft.Compute/virtualMachines")
    );
    assert_eq!(lists[0].query, format!("api-version={COMPUTE}"));
    assert!(lists[1..].iter().all(|r| r.query.contains("$skiptoken=")));
    // Then the NSGs (a's and b's: 1 page of 2), for those whose VM is gone.
    let nsg_lists: Vec<_> = arm
        .requests()
        .into_iter()
        .filter(|r| r.method == "GET" && r.path.ends_with("/networkSecurityGroups"))
        .collect();
    assert_eq!(nsg_lists.len(), 1, "{nsg_lists:?}");
    assert_eq!(nsg_lists[0].query, format!("api-version={NETWORK}"));
    assert_eq!(arm.requests().len(), 5, "a list is nothing but the pages");

    let elsewhere = azure.list_managed("northeurope").await.unwrap();
    assert_eq!(
        elsewhere.iter().map(|r| r.target.vm_id).collect::<Vec<_>>(),
        [north]
    );

    // The listed target is enough to delete the VM.
    let first = listed.iter().find(|r| r.target.vm_id == a.vm_id).unwrap();
    let fresh = driver(arm.config());
    fresh.delete(&first.target).await.unwrap();
    assert!(!arm.has_vm(&format!("vm-{}", a.vm_id)));
    let left: Vec<VmId> = azure
        .list_managed("westeurope")
        .await
        .unwrap()
        .iter()
        .map(|r| r.target.vm_id)
        .collect();
    assert_eq!(left, [b.vm_id]);

    // A VM whose deletion is running is not listed.
    arm.set_op_polls(1000);
    let mut config = arm.config();
    config.operation_timeout = Duration::from_millis(100);
    let second = listed.iter().find(|r| r.target.vm_id == b.vm_id).unwrap();
    driver(config).delete(&second.target).await.unwrap();
    assert_eq!(
        arm.provisioning_state(&format!("vm-{}", b.vm_id))
            .as_deref(),
        Some("Deleting")
    );
    assert!(azure.list_managed("westeurope").await.unwrap().is_empty());

    // Nothing of anyone else was touched.
    for name in [
        "web-server",
        "build-agent",
        "vm-broken",
        foreign_by_name.as_str(),
    ] {
        assert!(arm.has_vm(name), "{name}");
    }
}

#[tokio::test]
async fn list_managed_names_the_nsgs_whose_vm_is_gone_and_delete_removes_them() {
    let arm = ArmServer::start().await;
    arm.set_list_page_size(1);
    let azure = driver(arm.config());
    let (kept, cut_short) = (spec("westeurope"), spec("westeurope"));
    for spec in [&kept, &cut_short] {
        azure.create(spec).await.unwrap();
    }
    // A teardown cut short: the VM went, its NSG could not (still in use for a moment).
    arm.inject(
        Method::DELETE,
        "/networkSecurityGroups/",
        Fault::new(
            400,
            "InUseNetworkSecurityGroupCannotBeDeleted",
            "Network security group cannot be deleted because it is in use by some resources.",
        ),
    );
    azure.delete(&cut_short.target()).await.unwrap();
    let nsg = format!("vm-{}-nsg", cut_short.vm_id);
    assert!(!arm.has_vm(&format!("vm-{}", cut_short.vm_id)));
    assert!(arm.nsg_names().contains(&nsg), "{:?}", arm.nsg_names());

    let listed = azure.list_managed("westeurope").await.unwrap();
    let firewalls: Vec<_> = listed
        .iter()
        .filter(|r| matches!(r.kind, ManagedKind::Firewall(_)))
        .collect();
    assert_eq!(firewalls.len(), 1, "{listed:?}");
    let orphan = firewalls[0];
    assert_eq!(orphan.target.vm_id, cut_short.vm_id);
    assert_eq!(orphan.target.provider_id, None);
    assert!(
        // ARM ids are case-insensitive.
        matches!(&orphan.kind, ManagedKind::Firewall(id)
            if id.to_ascii_lowercase().ends_with(&format!("/networksecuritygroups/{nsg}"))),
        "{orphan:?}"
    );
    assert!(listed
        .iter()
        .any(|r| r.target.vm_id == kept.vm_id && r.kind == ManagedKind::Vm));
    assert!(
        azure.list_managed("northeurope").await.unwrap().is_empty(),
        "another region's listing does not name it"
    );

    // The listed target is enough: delete finds no VM and removes the NSG.
    driver(arm.config()).delete(&orphan.target).await.unwrap();
    assert!(!arm.nsg_names().contains(&nsg));
    assert!(arm.nsg_names().contains(&format!("vm-{}-nsg", kept.vm_id)));
    let left = azure.list_managed("westeurope").await.unwrap();
    assert_eq!(
        left.iter()
            .map(|r| (r.target.vm_id, r.kind.clone()))
            .collect::<Vec<_>>(),
        [(kept.vm_id, ManagedKind::Vm)]
    );
}

#[tokio::test]
async fn list_managed_errors_map_like_other_calls() {
    let arm = ArmServer::start().await;
    let azure = driver(arm.config());
    arm.inject(
        Method::GET,
        "/virtualMachines",
        Fault::new(429, "TooManyRequests", "slow down").retry_after(3),
    );
    assert_eq!(
        azure.list_managed("westeurope").await.unwrap_err(),
        DriverError::Throttled {
            retry_after: Duration::from_secs(3)
        }
    );
    arm.inject(
        Method::GET,
        "/virtualMachines",
        Fault::new(403, "AuthorizationFailed", "no read on the group"),
    );
    assert!(matches!(
        azure.list_managed("westeurope").await,
        Err(DriverError::Unauthorized(_))
    ));
    assert!(azure.list_managed("westeurope").await.unwrap().is_empty());
}
