//! Contract tests of the Azure driver against the ARM test server in `azure_arm`.

mod azure_arm;
mod azure_spec;
mod spec_check;

use std::time::{Duration, Instant};

use axum::http::Method;
use azure_arm::{
    ActionStyle, ArmServer, Fault, CLIENT_SECRET, COMPUTE, NETWORK, RESOURCE_GROUP, SUBSCRIPTION,
};
use serde_json::{json, Value};
use vmapi_core::cloud::{
    CloudDriver, CloudState, CloudTarget, DriverError, DriverKind, LoginSpec, ManagedKind, VmSpec,
};
use vmapi_drivers::azure::{AzureConfig, AzureDriver};
use vmapi_models::{
    CloudKind, ConfidentialTech, Direction, Ports, Protocol, RuleAccess, RuleName, SecurityRule,
    Sensitive, TeamId, Timestamp, VmId,
};

const KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGb0Fz4vS2Yq1l0h7u0m0Zq3pV1m9cJtY2r3WkZ7xQmF alice@laptop";
const PASSWORD: &str = "Tr0ub4dor&3-Horse!";

fn spec(region: &str) -> VmSpec {
    VmSpec {
        vm_id: VmId::new(),
        team: TeamId::new(),
        name: "web-1".into(),
        region: region.into(),
        size: "Standard_D2s_v5".into(),
        memory_gb: 8,
        vcpus: 2,
        disk_gb: 64,
        image: "Canonical:ubuntu-24_04-lts:server:latest".into(),
        login: LoginSpec {
            username: "azureuser".into(),
            public_keys: vec![KEY.into()],
            password_hash: None,
            password: None,
        },
        confidential: None,
        rules: vec![SecurityRule::default_for(
            Some(CloudKind::Azure),
            1,
            Timestamp::now(),
        )],
    }
}

fn driver(config: AzureConfig) -> AzureDriver {
    AzureDriver::new(config).expect("driver")
}

fn vm_path(spec: &VmSpec) -> String {
    format!(
        "/subscriptions/{SUBSCRIPTION}/resourceGroups/{RESOURCE_GROUP}/providers/Microsoft.Compute/virtualMachines/vm-{}",
        spec.vm_id
    )
}

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

fn spec_with_id(id: VmId) -> VmSpec {
    let mut s = spec("westeurope");
    s.vm_id = id;
    s
}

#[tokio::test]
async fn token_is_cached_refreshed_early_and_after_401() {
    let arm = ArmServer::start().await;
    let azure = driver(arm.config());
    let spec = spec("westeurope");
    let target = spec.target();
    azure.create(&spec).await.unwrap();
    azure.get(&target).await.unwrap();
    azure.get(&target).await.unwrap();
    assert_eq!(arm.token_requests(), 1, "one token for many calls");
    let form = &arm.token_forms()[0];
    assert_eq!(form["grant_type"], "client_credentials");
    assert_eq!(form["client_id"], azure_arm::CLIENT_ID);
    assert_eq!(form["scope"], "https://management.azure.com/.default");
    let first = arm.issued_tokens()[0].clone();
    assert!(arm
        .requests()
        .iter()
        .filter(|r| !r.path.starts_with("/login/"))
        .all(|r| r.authorization.as_deref() == Some(&format!("Bearer {first}"))));

    // ARM refuses the token: the driver fetches a new one and repeats the call once.
    arm.expire_tokens();
    arm.clear_requests();
    let vm = azure.get(&target).await.unwrap();
    assert!(vm.is_some());
    assert_eq!(arm.token_requests(), 2);
    let requests = arm.requests();
    assert_eq!(requests[0].status, 401);
    assert!(requests[1].path.starts_with("/login/"));
    let second = arm.issued_tokens()[1].clone();
    assert_eq!(
        requests[2].authorization.as_deref(),
        Some(format!("Bearer {second}").as_str())
    );
    azure.get(&target).await.unwrap();
    assert_eq!(arm.token_requests(), 2);

    // A token is replaced five minutes before it expires: one valid for 301 s is used for a
    // second, then replaced although ARM would still take it.
    arm.set_token_expires_in(301);
    let early = driver(arm.config());
    early.get(&target).await.unwrap();
    early.get(&target).await.unwrap();
    assert_eq!(arm.token_requests(), 3);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    early.get(&target).await.unwrap();
    assert_eq!(arm.token_requests(), 4);

    // Refused credentials: Unauthorized, and the secret appears nowhere.
    let mut config = arm.config();
    config.client_secret = Sensitive::new("wrong-secret-value".into());
    let refused = driver(config);
    let error = refused.get(&target).await.unwrap_err();
    assert!(
        matches!(&error, DriverError::Unauthorized(m) if m.contains("AADSTS7000215")),
        "{error:?}"
    );
    assert!(!error.is_retryable());
    let shown = format!("{error:?} {error} {refused:?}");
    assert!(
        !shown.contains("wrong-secret-value") && !shown.contains("Trace ID"),
        "{shown}"
    );
}

#[tokio::test]
async fn failed_operations_report_the_arm_error() {
    let arm = ArmServer::start().await;
    arm.set_op_polls(2);
    let mut config = arm.config();
    config.create_wait = Duration::from_secs(5);
    let azure = driver(config);

    // A create whose operation fails: the ARM code and message come back.
    let spec = spec("westeurope");
    arm.fail_next_create(
        "OSProvisioningInternalError",
        "OS Provisioning failed for VM due to an internal error.",
    );
    let error = azure.create(&spec).await.unwrap_err();
    assert_eq!(
        error,
        DriverError::Provider {
            code: "OSProvisioningInternalError".into(),
            message: "OS Provisioning failed for VM due to an internal error.".into()
        }
    );
    let vm = azure.get(&spec.target()).await.unwrap().unwrap();
    assert_eq!(
        vm.state,
        CloudState::Failed(
            "OSProvisioningInternalError: OS Provisioning failed for VM due to an internal error."
                .into()
        )
    );
    assert_eq!(
        vm.raw_state,
        "ProvisioningState/failed/OSProvisioningInternalError"
    );

    // Capacity failures are quota errors.
    let spec = spec_with_id(VmId::new());
    arm.fail_next_create(
        "AllocationFailed",
        "Allocation failed. We do not have sufficient capacity for the requested VM size in this region.",
    );
    let error = azure.create(&spec).await.unwrap_err();
    assert!(
        matches!(&error, DriverError::Quota(m) if m.contains("sufficient capacity")),
        "{error:?}"
    );

    // A successful create followed within create_wait returns the running VM.
    let spec = spec_with_id(VmId::new());
    let vm = azure.create(&spec).await.unwrap();
    assert_eq!(vm.state, CloudState::Running);
    assert_eq!(vm.public_ipv4.as_deref(), Some("20.50.0.3"));

    // An action whose Azure-AsyncOperation fails.
    arm.set_action_style(ActionStyle::AsyncOperation);
    arm.fail_next_action(
        "VMAgentStatusCommunicationError",
        "VM did not report status in time.",
    );
    let error = azure.stop(&spec.target()).await.unwrap_err();
    assert_eq!(
        error,
        DriverError::Provider {
            code: "VMAgentStatusCommunicationError".into(),
            message: "VM did not report status in time.".into()
        }
    );
    assert_eq!(
        azure.get(&spec.target()).await.unwrap().unwrap().state,
        CloudState::Running
    );

    // An action whose Location result fails.
    arm.set_action_style(ActionStyle::Location);
    arm.fail_next_action(
        "InternalExecutionError",
        "An internal execution error occurred.",
    );
    let error = azure.reboot(&spec.target()).await.unwrap_err();
    assert!(
        matches!(&error, DriverError::Provider { code, message } if code == "InternalExecutionError" && message.contains("internal execution error")),
        "{error:?}"
    );
}

#[tokio::test]
async fn http_errors_map_to_driver_errors() {
    let arm = ArmServer::start().await;
    let azure = driver(arm.config());
    let spec = spec("westeurope");
    let target = spec.target();
    let name = format!("vm-{}", spec.vm_id);

    arm.inject(
        Method::GET,
        &name,
        Fault::new(429, "TooManyRequests", "Too many requests.").retry_after(7),
    );
    let error = azure.get(&target).await.unwrap_err();
    assert_eq!(
        error,
        DriverError::Throttled {
            retry_after: Duration::from_secs(7)
        }
    );
    assert!(error.is_retryable());
    assert_eq!(error.retry_after(), Duration::from_secs(7));

    arm.inject(Method::PUT, &name, Fault::new(409, "OperationNotAllowed", "Operation could not be completed as it results in exceeding approved standardDSv5Family Cores quota."));
    assert!(matches!(azure.create(&spec).await, Err(DriverError::Quota(m)) if m.contains("quota")));

    arm.inject(
        Method::PUT,
        &name,
        Fault::new(
            409,
            "SkuNotAvailable",
            "The requested size is not available in location 'westeurope'.",
        ),
    );
    assert!(matches!(
        azure.create(&spec).await,
        Err(DriverError::Quota(_))
    ));

    arm.inject(
        Method::PUT,
        &name,
        Fault::new(
            400,
            "InvalidParameter",
            "The value of parameter imageReference.sku is invalid.",
        ),
    );
    assert!(
        matches!(azure.create(&spec).await, Err(DriverError::InvalidSpec(m)) if m.contains("imageReference.sku"))
    );

    arm.inject(
        Method::PUT,
        &name,
        Fault::new(
            403,
            "AuthorizationFailed",
            "The client does not have authorization.",
        ),
    );
    assert!(matches!(
        azure.create(&spec).await,
        Err(DriverError::Unauthorized(_))
    ));

    arm.inject(
        Method::GET,
        &name,
        Fault::new(503, "ServiceUnavailable", "The service is unavailable."),
    );
    let error = azure.get(&target).await.unwrap_err();
    assert!(
        matches!(error, DriverError::Unreachable(_)) && error.is_retryable(),
        "{error:?}"
    );

    azure.create(&spec).await.unwrap();
    arm.inject(
        Method::POST,
        &format!("{name}/start"),
        Fault::new(
            409,
            "Conflict",
            "Another operation is in progress on the VM.",
        ),
    );
    let error = azure.start(&target).await.unwrap_err();
    assert!(
        matches!(&error, DriverError::Conflict(m) if m.contains("in progress")),
        "{error:?}"
    );
    assert!(error.is_retryable());

    // A VM still being created conflicts with actions (the server's own 409).
    let error = azure.start(&target).await.unwrap_err();
    assert!(matches!(error, DriverError::Conflict(_)), "{error:?}");

    // Malformed specs are refused before any request.
    let before = arm.requests().len();
    let mut bad = spec_with_id(VmId::new());
    bad.image = "Canonical:ubuntu".into();
    assert!(matches!(
        azure.create(&bad).await,
        Err(DriverError::InvalidSpec(_))
    ));
    let mut bad = spec_with_id(VmId::new());
    bad.confidential = Some(ConfidentialTech::Tdx);
    assert!(matches!(
        azure.create(&bad).await,
        Err(DriverError::InvalidSpec(_))
    ));
    let mut bad = spec_with_id(VmId::new());
    bad.region = "west europe/../x".into();
    assert!(matches!(
        azure.create(&bad).await,
        Err(DriverError::InvalidSpec(_))
    ));
    assert_eq!(arm.requests().len(), before);

    // Nothing listening: unreachable.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let mut config = arm.config();
    config.login_base = format!("http://{closed}");
    config.management_base = format!("http://{closed}");
    let error = driver(config).get(&target).await.unwrap_err();
    assert!(matches!(error, DriverError::Unreachable(_)), "{error:?}");
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
async fn confidential_vms_report_what_azure_created() {
    let arm = ArmServer::start().await;
    arm.set_op_polls(0);
    let mut config = arm.config();
    config.create_wait = Duration::from_secs(5);
    let azure = driver(config);

    let mut cvm = spec("westeurope");
    cvm.size = "Standard_DC2as_v5".into();
    cvm.image = "Canonical:0001-com-ubuntu-confidential-vm-jammy:22_04-lts-cvm:latest".into();
    cvm.confidential = Some(ConfidentialTech::SevSnp);
    let vm = azure.create(&cvm).await.unwrap();
    assert_eq!(vm.confidential, Some(ConfidentialTech::SevSnp));
    assert_eq!(vm.state, CloudState::Running);
    let body = &arm.vm_put_bodies()[0];
    assert_eq!(
        body["properties"]["securityProfile"]["securityType"],
        "ConfidentialVM"
    );
    assert_eq!(
        body["properties"]["securityProfile"]["uefiSettings"]["secureBootEnabled"],
        true
    );
    assert_eq!(
        body["properties"]["securityProfile"]["uefiSettings"]["vTpmEnabled"],
        true
    );
    assert_eq!(
        body["properties"]["storageProfile"]["osDisk"]["managedDisk"]["securityProfile"]
            ["securityEncryptionType"],
        "VMGuestStateOnly"
    );
    assert_eq!(
        azure
            .get(&cvm.target())
            .await
            .unwrap()
            .unwrap()
            .confidential,
        Some(ConfidentialTech::SevSnp)
    );

    // A cloud that silently drops the security profile: the result says so (no fallback lie).
    arm.drop_security_profile(true);
    let mut dropped = cvm.clone();
    dropped.vm_id = VmId::new();
    let vm = azure.create(&dropped).await.unwrap();
    assert_eq!(vm.confidential, None);
    assert_eq!(
        azure
            .get(&dropped.target())
            .await
            .unwrap()
            .unwrap()
            .confidential,
        None
    );
    // Also when create returns right after the PUT (the PUT response is read, not the request).
    let mut config = arm.config();
    config.create_wait = Duration::ZERO;
    let quick = driver(config);
    let mut dropped = cvm.clone();
    dropped.vm_id = VmId::new();
    let vm = quick.create(&dropped).await.unwrap();
    assert_eq!(
        (vm.state, vm.confidential),
        (CloudState::Provisioning, None)
    );
}

#[tokio::test]
async fn password_login_sends_admin_password_but_never_shows_it() {
    let arm = ArmServer::start().await;
    let azure = driver(arm.config());
    let mut spec = spec("westeurope");
    spec.login.public_keys.clear();
    spec.login.password = Some(Sensitive::new(PASSWORD.into()));
    spec.login.password_hash = Some("$6$salt$hash".into());

    let vm = azure.create(&spec).await.unwrap();
    let body = &arm.vm_put_bodies()[0];
    assert_eq!(body["properties"]["osProfile"]["adminPassword"], PASSWORD);
    assert_eq!(
        body["properties"]["osProfile"]["linuxConfiguration"]["disablePasswordAuthentication"],
        false
    );
    assert!(body["properties"]["osProfile"]["linuxConfiguration"]
        .get("ssh")
        .is_none());

    let got = azure.get(&spec.target()).await.unwrap().unwrap();
    // An error after the password went out.
    arm.inject(
        Method::PUT,
        "virtualMachines",
        Fault::new(
            400,
            "InvalidParameter",
            "The supplied password must be between 6-72 characters long.",
        ),
    );
    let mut other = spec.clone();
    other.vm_id = VmId::new();
    let error = azure.create(&other).await.unwrap_err();

    let tokens = arm.issued_tokens();
    let shown = format!(
        "{azure:?} {vm:?} {got:?} {error:?} {error} {spec:?} {:?} {:?}",
        spec.login,
        arm.config()
    );
    assert!(!shown.contains(PASSWORD), "{shown}");
    assert!(!shown.contains(CLIENT_SECRET), "{shown}");
    for token in tokens {
        assert!(!shown.contains(&token), "{shown}");
    }
    assert!(shown.contains("[redacted]"));

    // Neither a password nor a key: refused before any request.
    let mut none = spec_with_id(VmId::new());
    none.login.public_keys.clear();
    assert!(matches!(
        azure.create(&none).await,
        Err(DriverError::InvalidSpec(_))
    ));
}

#[tokio::test]
async fn operations_are_polled_for_a_bounded_time() {
    let arm = ArmServer::start().await;
    arm.set_op_polls(0);
    let mut config = arm.config();
    config.operation_timeout = Duration::from_millis(400);
    let azure = driver(config);
    let spec = spec("westeurope");
    azure.create(&spec).await.unwrap();
    assert_eq!(
        azure.get(&spec.target()).await.unwrap().unwrap().state,
        CloudState::Running
    );

    // A deallocation that takes long: stop returns after the timeout, the state shows Stopping.
    arm.set_op_polls(1000);
    let started = Instant::now();
    azure.stop(&spec.target()).await.unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    let vm = azure.get(&spec.target()).await.unwrap().unwrap();
    assert_eq!(
        (vm.state, vm.raw_state.as_str()),
        (CloudState::Stopping, "PowerState/deallocating")
    );

    // Retry-After is honoured: two polls one second apart.
    let arm = ArmServer::start().await;
    arm.set_op_polls(0);
    let azure = driver(arm.config());
    let spec = spec_with_id(VmId::new());
    azure.create(&spec).await.unwrap();
    azure.get(&spec.target()).await.unwrap();
    arm.set_op_polls(1);
    arm.set_retry_after(Some(1));
    let started = Instant::now();
    azure.stop(&spec.target()).await.unwrap();
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(1900) && took < Duration::from_secs(4),
        "{took:?}"
    );
    assert_eq!(
        azure.get(&spec.target()).await.unwrap().unwrap().state,
        CloudState::Stopped
    );

    // Without Retry-After the driver backs off on its own and still finishes.
    arm.set_retry_after(None);
    azure.start(&spec.target()).await.unwrap();
    assert_eq!(
        azure.get(&spec.target()).await.unwrap().unwrap().state,
        CloudState::Running
    );

    // Operation URLs on another origin are not followed with the token.
    arm.set_operation_base(Some("http://127.0.0.1:9"));
    let mut config = arm.config();
    config.create_wait = Duration::from_secs(5);
    let other = driver(config);
    let spec = spec_with_id(VmId::new());
    arm.clear_requests();
    let started = Instant::now();
    let vm = other.create(&spec).await.unwrap();
    assert_eq!(vm.state, CloudState::Provisioning);
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn managed_networks_are_created_once_per_region() {
    let arm = ArmServer::start().await;
    let azure = driver(arm.config());
    let spec = spec("northeurope");
    azure.create(&spec).await.unwrap();
    assert_eq!(
        arm.vnet_names(),
        ["shared-westeurope", "vm-api-northeurope"]
    );
    // No region-wide NSG any more: the NIC carries the VM's own.
    assert_eq!(arm.nsg_names(), [format!("vm-{}-nsg", spec.vm_id)]);
    let body = &arm.vm_put_bodies()[0];
    let nic =
        &body["properties"]["networkProfile"]["networkInterfaceConfigurations"][0]["properties"];
    let group = arm.group_id();
    assert_eq!(
        nic["ipConfigurations"][0]["properties"]["subnet"]["id"],
        format!("{group}/providers/Microsoft.Network/virtualNetworks/vm-api-northeurope/subnets/default")
    );
    assert_eq!(
        nic["networkSecurityGroup"]["id"],
        format!(
            "{group}/providers/Microsoft.Network/networkSecurityGroups/vm-{}-nsg",
            spec.vm_id
        )
    );
    let network_puts = |arm: &ArmServer| {
        arm.requests()
            .iter()
            .filter(|r| r.method == "PUT" && r.path.contains("/virtualNetworks/"))
            .count()
    };
    assert_eq!(network_puts(&arm), 1);

    // Same process: no network calls at all. New process: found by GET, not rewritten.
    azure.create(&spec_in("northeurope")).await.unwrap();
    let fresh = driver(arm.config());
    fresh.create(&spec_in("northeurope")).await.unwrap();
    assert_eq!(network_puts(&arm), 1);
    assert_eq!(arm.vm_count(), 3);

    // Without managed networks, an unconfigured region is refused.
    let mut config = arm.config();
    config.managed_networks = false;
    let strict = driver(config);
    assert!(matches!(
        strict.create(&spec_in("eastus2")).await,
        Err(DriverError::InvalidSpec(_))
    ));
}

fn spec_in(region: &str) -> VmSpec {
    spec(region)
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

#[test]
fn configuration_is_checked() {
    let config = AzureConfig::new(
        "tenant",
        "client",
        Sensitive::new("s3cret-value".into()),
        "sub",
        "rg",
    );
    assert_eq!(config.login_base, "https://login.microsoftonline.com");
    assert_eq!(config.management_base, "https://management.azure.com");
    assert!(!format!("{config:?}").contains("s3cret-value"));
    assert!(AzureDriver::new(config.clone()).is_ok());
    let mut bad = config.clone();
    bad.resource_group = "rg/../other".into();
    assert!(matches!(
        AzureDriver::new(bad),
        Err(DriverError::InvalidSpec(_))
    ));
    let mut bad = config;
    bad.client_secret = Sensitive::new(String::new());
    assert!(AzureDriver::new(bad).is_err());
}

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

fn rule(
    name: &str,
    direction: Direction,
    protocol: Protocol,
    ports: &[&str],
    cidr: &str,
    priority: u16,
    access: RuleAccess,
) -> SecurityRule {
    let mut r = SecurityRule::default_for(Some(CloudKind::Azure), 2, Timestamp::now());
    r.name = RuleName::parse(name).unwrap();
    r.description = String::new();
    r.direction = direction;
    r.protocol = protocol;
    r.port_range = Ports::parse(ports).unwrap();
    r.cidr_block = cidr.parse().unwrap();
    r.priority = priority;
    r.access = access;
    r
}

#[tokio::test]
async fn security_rules_are_put_whole_on_the_vms_nsg_which_goes_after_the_vm() {
    let arm = ArmServer::start().await;
    let azure = driver(arm.config());
    let spec = spec("westeurope");
    let target = spec.target();
    let nsg_name = format!("vm-{}-nsg", spec.vm_id);
    azure.create(&spec).await.unwrap();
    while azure.get(&target).await.unwrap().unwrap().state != CloudState::Running {}
    let nsg_id = format!(
        "{}/providers/Microsoft.Network/networkSecurityGroups/{nsg_name}",
        arm.group_id()
    );
    assert_eq!(
        arm.nic_nsg(&format!("vm-{}-nic", spec.vm_id)).as_deref(),
        Some(nsg_id.as_str())
    );

    let rules = vec![
        rule(
            "Web",
            Direction::Inbound,
            Protocol::Tcp,
            &["80", "8000-8090"],
            "203.0.113.0/24",
            1010,
            RuleAccess::Allow,
        ),
        rule(
            "NoDns6",
            Direction::Outbound,
            Protocol::Udp,
            &["53"],
            "2001:db8::/32",
            1000,
            RuleAccess::Deny,
        ),
        rule(
            "Ping",
            Direction::Inbound,
            Protocol::Icmp,
            &["*"],
            "0.0.0.0/0",
            1000,
            RuleAccess::Allow,
        ),
        rule(
            "DenyRest",
            Direction::Inbound,
            Protocol::Any,
            &["*"],
            "0.0.0.0/0",
            4096,
            RuleAccess::Deny,
        ),
    ];
    arm.clear_requests();
    azure.apply_rules(&target, &rules).await.unwrap();
    let expected = serde_json::json!([
        { "name": "Ping", "properties": {
            "priority": 1000, "direction": "Inbound", "access": "Allow", "protocol": "Icmp",
            "sourceAddressPrefix": "0.0.0.0/0", "sourcePortRange": "*",
            "destinationAddressPrefix": "*", "destinationPortRange": "*" } },
        { "name": "Web", "properties": {
            "priority": 1010, "direction": "Inbound", "access": "Allow", "protocol": "Tcp",
            "sourceAddressPrefix": "203.0.113.0/24", "sourcePortRange": "*",
            "destinationAddressPrefix": "*", "destinationPortRanges": ["80", "8000-8090"] } },
        { "name": "DenyRest", "properties": {
            "priority": 4096, "direction": "Inbound", "access": "Deny", "protocol": "*",
            "sourceAddressPrefix": "0.0.0.0/0", "sourcePortRange": "*",
            "destinationAddressPrefix": "*", "destinationPortRange": "*" } },
        { "name": "NoDns6", "properties": {
            "priority": 1000, "direction": "Outbound", "access": "Deny", "protocol": "Udp",
            "sourceAddressPrefix": "*", "sourcePortRange": "*",
            "destinationAddressPrefix": "2001:db8::/32", "destinationPortRange": "53" } },
    ]);
    let put = arm
        .requests()
        .into_iter()
        .find(|r| r.method == "PUT")
        .expect("an NSG PUT");
    assert_eq!(put.path, nsg_id);
    assert!(
        put.query.contains("api-version=2024-05-01"),
        "{}",
        put.query
    );
    let body: serde_json::Value = serde_json::from_str(&put.body).unwrap();
    assert_eq!(body["properties"]["securityRules"], expected);
    // The NSG keeps its location and tags.
    assert_eq!(body["location"], "westeurope");
    assert_eq!(body["tags"]["team"], spec.team.to_string());
    let stored = arm.nsg(&nsg_name).unwrap();
    assert_eq!(stored["properties"]["securityRules"], expected);

    // Idempotent: the same set again is the same NSG.
    azure.apply_rules(&target, &rules).await.unwrap();
    assert_eq!(
        arm.nsg(&nsg_name).unwrap()["properties"]["securityRules"],
        expected
    );
    // Removing every rule empties the NSG (Azure's default rules then deny inbound).
    azure.apply_rules(&target, &[]).await.unwrap();
    assert_eq!(
        arm.nsg(&nsg_name).unwrap()["properties"]["securityRules"],
        serde_json::json!([])
    );
    // Two rules of one direction with one priority: refused before any call.
    let twice = vec![rules[0].clone(), {
        let mut r = rules[0].clone();
        r.name = RuleName::parse("Web2").unwrap();
        r
    }];
    assert!(matches!(
        azure.apply_rules(&target, &twice).await,
        Err(DriverError::InvalidSpec(_))
    ));

    // Delete: the VM (with NIC and public IP), then the NSG. A VM whose delete is not seen to
    // finish keeps its NSG until the next delete (the provisioner's call once the VM is gone).
    let mut slow = arm.config();
    slow.operation_timeout = Duration::from_millis(100);
    arm.set_op_polls(50);
    arm.set_retry_after(Some(0));
    driver(slow).delete(&target).await.unwrap();
    assert!(arm.nsg(&nsg_name).is_some());
    arm.set_op_polls(0);
    azure.delete(&target).await.unwrap();
    assert_eq!(arm.vm_count(), 0);
    assert!(arm.nsg(&nsg_name).is_none(), "{:?}", arm.nsg_names());
    // Repeating it (the VM and the NSG are gone) is fine.
    azure.delete(&target).await.unwrap();
    // Rules of a VM without its NSG: not found.
    assert!(matches!(
        azure.apply_rules(&target, &rules).await,
        Err(DriverError::NotFound(_))
    ));
}
