//! A VM's life through the driver: create (the body ARM gets, idempotent by VM id), get,
//! stop, start, restart, delete; VMs that are missing; provider ids.

use axum::http::Method;
use serde_json::Value;
use vmapi_core::cloud::{CloudDriver, CloudState, CloudTarget, DriverError, DriverKind};
use vmapi_models::{ConfidentialTech, VmId};

use crate::azure_arm::{ArmServer, Fault, COMPUTE, NETWORK};
use crate::common::{driver, spec, spec_with_id, vm_path, KEY};

#[tokio::test]
async fn lifecycle_create_get_stop_start_restart_delete() {
    let arm = ArmServer::start().await;
    arm.set_op_polls(1);
    let azure = driver(arm.config());
    assert_eq!(azure.kind(), DriverKind::Azure);
    let caps = azure.capabilities();
    assert_eq!(caps.confidential, vec![ConfidentialTech::SevSnp]);
    assert!(caps.native_idempotency && caps.password_login);

    let spec = spec("westeurope");
    let target = spec.target();

    // Create returns as soon as ARM accepted the PUT.
    let created = azure.create(&spec).await.unwrap();
    assert_eq!(created.provider_id, vm_path(&spec));
    assert_eq!(created.state, CloudState::Provisioning);
    assert_eq!(created.raw_state, "ProvisioningState/creating");
    assert_eq!(created.confidential, None);
    assert_eq!(created.public_ipv4, None);

    // Still creating (no PowerState yet), then running with addresses.
    let vm = azure.get(&target).await.unwrap().unwrap();
    assert_eq!(vm.state, CloudState::Provisioning);
    assert_eq!(vm.raw_state, "ProvisioningState/creating");
    assert_eq!(vm.public_ipv4, None);
    let vm = azure.get(&target).await.unwrap().unwrap();
    assert_eq!(vm.state, CloudState::Running);
    assert_eq!(vm.raw_state, "PowerState/running");
    assert_eq!(vm.public_ipv4.as_deref(), Some("20.50.0.1"));
    assert_eq!(vm.private_ipv4.as_deref(), Some("10.0.0.4"));
    assert_eq!(vm.public_ipv6, None);
    assert_eq!(vm.provider_id, vm_path(&spec));

    // Stop deallocates (not billed) and waits for the Location operation.
    azure.stop(&target).await.unwrap();
    let vm = azure.get(&target).await.unwrap().unwrap();
    assert_eq!(
        (vm.state, vm.raw_state.as_str()),
        (CloudState::Stopped, "PowerState/deallocated")
    );
    assert_eq!(
        vm.public_ipv4.as_deref(),
        Some("20.50.0.1"),
        "static public IP survives deallocation"
    );

    azure.start(&target).await.unwrap();
    let vm = azure.get(&target).await.unwrap().unwrap();
    assert_eq!(
        (vm.state, vm.raw_state.as_str()),
        (CloudState::Running, "PowerState/running")
    );

    azure.reboot(&target).await.unwrap();
    let vm = azure.get(&target).await.unwrap().unwrap();
    assert_eq!(vm.state, CloudState::Running);

    azure.delete(&target).await.unwrap();
    assert_eq!(azure.get(&target).await.unwrap(), None);
    assert_eq!(arm.vm_count(), 0);
    assert!(
        arm.leftovers().is_empty(),
        "OS disk, NIC and public IP go with the VM: {:?}",
        arm.leftovers()
    );
    // Deleting again is fine.
    azure.delete(&target).await.unwrap();

    // The calls: deallocate (never powerOff), start, restart, location polls; pinned versions.
    let requests = arm.requests();
    let posts: Vec<String> = requests
        .iter()
        .filter(|r| r.method == "POST" && !r.path.starts_with("/login/"))
        .map(|r| r.path.rsplit('/').next().unwrap().to_string())
        .collect();
    assert_eq!(posts, ["deallocate", "start", "restart"]);
    assert!(requests
        .iter()
        .any(|r| r.path.contains("/operationResults/")));
    for r in requests.iter().filter(|r| !r.path.starts_with("/login/")) {
        let expected = if r.path.contains("Microsoft.Network") {
            NETWORK
        } else {
            COMPUTE
        };
        assert!(
            r.query.contains(&format!("api-version={expected}")),
            "{} {}?{}",
            r.method,
            r.path,
            r.query
        );
        assert!(
            r.status < 400 || r.status == 404,
            "unexpected {} for {} {}",
            r.status,
            r.method,
            r.path
        );
    }
    assert!(requests.iter().any(|r| r.method == "GET"
        && r.path.ends_with(&format!("vm-{}", spec.vm_id))
        && r.query.contains("$expand=instanceView")));
}

#[tokio::test]
async fn create_body_follows_the_arm_contract() {
    let arm = ArmServer::start().await;
    let azure = driver(arm.config());
    let spec = spec("westeurope");
    azure.create(&spec).await.unwrap();

    let bodies = arm.vm_put_bodies();
    assert_eq!(bodies.len(), 1);
    let body = &bodies[0];
    let name = format!("vm-{}", spec.vm_id);
    assert_eq!(body["location"], "westeurope");
    assert_eq!(body["tags"]["managed-by"], "vm-api");
    assert_eq!(body["tags"]["vm-api-deployment"], "local");
    assert_eq!(body["tags"]["vm-id"], spec.vm_id.to_string());
    assert_eq!(body["tags"]["team"], spec.team.to_string());
    let props = &body["properties"];
    assert_eq!(props["hardwareProfile"]["vmSize"], "Standard_D2s_v5");
    let image = &props["storageProfile"]["imageReference"];
    assert_eq!(
        (
            &image["publisher"],
            &image["offer"],
            &image["sku"],
            &image["version"]
        ),
        (
            &Value::from("Canonical"),
            &Value::from("ubuntu-24_04-lts"),
            &Value::from("server"),
            &Value::from("latest")
        )
    );
    let disk = &props["storageProfile"]["osDisk"];
    assert_eq!(disk["createOption"], "FromImage");
    assert_eq!(disk["deleteOption"], "Delete");
    assert_eq!(disk["diskSizeGB"], 64);
    assert_eq!(disk["name"], format!("{name}-osdisk"));
    assert!(disk["managedDisk"].get("securityProfile").is_none());
    let os = &props["osProfile"];
    assert_eq!(os["adminUsername"], "azureuser");
    assert_eq!(os["computerName"], "web-1");
    assert!(os.get("adminPassword").is_none());
    assert_eq!(
        os["linuxConfiguration"]["disablePasswordAuthentication"],
        true
    );
    assert_eq!(
        os["linuxConfiguration"]["ssh"]["publicKeys"][0],
        serde_json::json!({ "path": "/home/azureuser/.ssh/authorized_keys", "keyData": KEY })
    );
    let network = &props["networkProfile"];
    assert_eq!(network["networkApiVersion"], "2020-11-01");
    let nic = &network["networkInterfaceConfigurations"][0];
    assert_eq!(nic["name"], format!("{name}-nic"));
    assert_eq!(nic["properties"]["deleteOption"], "Delete");
    assert_eq!(nic["properties"]["primary"], true);
    let ip = &nic["properties"]["ipConfigurations"][0]["properties"];
    assert_eq!(ip["subnet"]["id"], arm.shared_subnet_id());
    let pip = &ip["publicIPAddressConfiguration"];
    assert_eq!(pip["name"], format!("{name}-pip"));
    assert_eq!(pip["sku"]["name"], "Standard");
    assert_eq!(pip["properties"]["deleteOption"], "Delete");
    assert_eq!(pip["properties"]["publicIPAllocationMethod"], "Static");
    assert!(props.get("securityProfile").is_none());

    // The PUT went to the deterministic name, after the VM's NSG, which its NIC carries.
    let puts: Vec<_> = arm
        .requests()
        .into_iter()
        .filter(|r| r.method == "PUT")
        .collect();
    let nsg_id = format!(
        "{}/providers/Microsoft.Network/networkSecurityGroups/{name}-nsg",
        arm.group_id()
    );
    assert_eq!(puts.len(), 2);
    assert_eq!(puts[0].path, nsg_id);
    assert_eq!(puts[1].path, vm_path(&spec));
    assert_eq!(nic["properties"]["networkSecurityGroup"]["id"], nsg_id);
    let nsg: serde_json::Value = serde_json::from_str(&puts[0].body).unwrap();
    assert_eq!(
        nsg,
        serde_json::json!({
            "location": "westeurope",
            "tags": { "managed-by": "vm-api", "vm-api-deployment": "local", "vm-id": spec.vm_id.to_string(), "team": spec.team.to_string() },
            "properties": { "securityRules": [{
                "name": "AllowAnySSHInbound",
                "properties": {
                    "priority": 1000, "direction": "Inbound", "access": "Allow", "protocol": "Tcp",
                    "sourceAddressPrefix": "0.0.0.0/0", "sourcePortRange": "*",
                    "destinationAddressPrefix": "*", "destinationPortRange": "22",
                    "description": "Created with the VM"
                }
            }]}
        })
    );
}

#[tokio::test]
async fn create_is_idempotent_by_vm_id() {
    let arm = ArmServer::start().await;
    let azure = driver(arm.config());
    let spec = spec("westeurope");
    let first = azure.create(&spec).await.unwrap();
    let second = azure.create(&spec).await.unwrap();
    assert_eq!(first.provider_id, second.provider_id);
    assert_eq!(arm.vm_count(), 1);
    assert_eq!(arm.vm_puts(), 1, "the second create finds the VM");

    // Two processes racing on the same VM id: PUT by name still makes one VM.
    let other = spec_with_id(spec.vm_id);
    let a = driver(arm.config());
    let b = driver(arm.config());
    let fresh = spec_with_id(VmId::new());
    let fresh_again = fresh.clone();
    let (ra, rb) = tokio::join!(a.create(&fresh), b.create(&fresh_again));
    assert_eq!(ra.unwrap().provider_id, rb.unwrap().provider_id);
    assert_eq!(arm.vm_count(), 2);
    assert_eq!(
        azure.create(&other).await.unwrap().provider_id,
        first.provider_id
    );
    assert_eq!(arm.vm_count(), 2);
}

#[tokio::test]
async fn missing_vms() {
    let arm = ArmServer::start().await;
    let azure = driver(arm.config());
    let target = spec("westeurope").target();
    assert_eq!(azure.get(&target).await.unwrap(), None);
    assert!(matches!(
        azure.start(&target).await,
        Err(DriverError::NotFound(_))
    ));
    azure.delete(&target).await.unwrap();
    arm.inject(
        Method::DELETE,
        "virtualMachines",
        Fault::new(404, "ResourceNotFound", "not found"),
    );
    azure.delete(&target).await.unwrap();
}

#[tokio::test]
async fn provider_ids_are_used_when_known_and_safe() {
    let arm = ArmServer::start().await;
    let azure = driver(arm.config());
    let spec = spec("westeurope");
    let created = azure.create(&spec).await.unwrap();
    let by_id = CloudTarget {
        vm_id: VmId::new(),
        region: "westeurope".into(),
        provider_id: Some(created.provider_id.clone()),
    };
    assert_eq!(
        azure.get(&by_id).await.unwrap().unwrap().provider_id,
        created.provider_id
    );
    // Something that is not a VM resource id falls back to the deterministic name.
    let bogus = CloudTarget {
        provider_id: Some("/subscriptions/x/../../evil?api-version=1".into()),
        ..spec.target()
    };
    assert_eq!(
        azure.get(&bogus).await.unwrap().unwrap().provider_id,
        created.provider_id
    );
}
