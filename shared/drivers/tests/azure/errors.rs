//! What goes wrong: failed operations, HTTP errors mapped to driver errors, operations that
//! do not end in time.

use std::time::{Duration, Instant};

use axum::http::Method;
use vmapi_core::cloud::{CloudDriver, CloudState, DriverError};
use vmapi_models::{ConfidentialTech, VmId};

use crate::azure_arm::{ActionStyle, ArmServer, Fault};
use crate::common::{driver, spec, spec_with_id};

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
