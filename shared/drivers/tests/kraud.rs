//! Contract tests of the Kraud.Cloud driver against the Kraud API test server in
//! `kraud_api/`: lifecycle, idempotent create, error mapping, confidential read-back and the
//! login injection (hash only, never a plaintext password).

mod kraud_api;
mod kraud_spec;
mod spec_check;

use std::time::Duration;

use axum::http::Method;
use kraud_api::{KraudApi, Options};
use vmapi_core::cloud::{
    CloudDriver, CloudState, CloudTarget, CloudVm, DriverError, LoginSpec, VmSpec,
};
use vmapi_drivers::kraud::{KraudConfig, KraudDriver};
use vmapi_models::{
    CloudKind, ConfidentialTech, PortRange, Ports, Protocol, RuleAccess, RuleName, SecurityRule,
    Sensitive, TeamId, Timestamp, VmId,
};

const PASSWORD: &str = "Plain-Text-Pa55word!";
const HASH: &str = "$6$vmapisalt$Wq0d0fQqJ7bM9cO2R0tTz8c1Y2mFq1l6n3E5s8u9x0A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8S9t0U1v";
const KEY: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHZtYXBpLWtyYXVkLXRlc3Qta2V5LW1hdGVyaWFsLTEyMw user@example";

fn spec(confidential: Option<ConfidentialTech>) -> VmSpec {
    VmSpec {
        vm_id: VmId::new(),
        team: TeamId::new(),
        name: "web-1".into(),
        region: "berlin".into(),
        size: "Standart_berlin_1_4_50".into(),
        memory_gb: 4,
        vcpus: 1,
        disk_gb: 40,
        image: "quay.io/kraudcloud/pvm/ubuntu:22.04".into(),
        login: LoginSpec {
            username: "root".into(),
            public_keys: vec![KEY.into()],
            password_hash: Some(HASH.into()),
            password: Some(Sensitive::new(PASSWORD.into())),
        },
        confidential,
        rules: vec![SecurityRule::default_for(
            Some(CloudKind::Kraud),
            1,
            Timestamp::now(),
        )],
    }
}

fn driver_with(api: &KraudApi, token: &str) -> KraudDriver {
    KraudDriver::new(KraudConfig {
        token: Sensitive::new(token.into()),
        base_url: api.base_url.clone(),
        deployment: vmapi_models::DeploymentId::local(),
    })
    .expect("driver")
    .with_launch_wait(Duration::from_millis(300), Duration::from_millis(10))
}

fn driver(api: &KraudApi) -> KraudDriver {
    driver_with(api, &api.token())
}

async fn poll_until(driver: &KraudDriver, target: &CloudTarget, wanted: CloudState) -> CloudVm {
    let mut seen = Vec::new();
    for _ in 0..20 {
        let vm = driver.get(target).await.expect("get").expect("VM exists");
        if vm.state == wanted {
            return vm;
        }
        seen.push(vm.raw_state.clone());
    }
    panic!("never reached {wanted:?}; saw {seen:?}");
}

/// Standard base64 decoding (the driver's login values are base64 literals).
fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let value = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let bytes = text.as_bytes();
    if !bytes.len().is_multiple_of(4) {
        return None;
    }
    let mut out = Vec::new();
    for chunk in bytes.chunks(4) {
        let pad = chunk.iter().rev().take_while(|b| **b == b'=').count();
        let mut n = 0u32;
        for (i, b) in chunk.iter().enumerate() {
            let v = if i >= 4 - pad { 0 } else { value(*b)? };
            n = (n << 6) | v;
        }
        let decoded = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        out.extend_from_slice(&decoded[..3 - pad]);
    }
    Some(out)
}

/// Every `echo <base64> | base64 -d` value of a login script, decoded.
fn decoded_values(script: &str) -> Vec<String> {
    script
        .split("echo ")
        .skip(1)
        .filter_map(|rest| rest.split_whitespace().next())
        .filter_map(base64_decode)
        .map(|b| String::from_utf8(b).expect("UTF-8"))
        .collect()
}

#[tokio::test]
async fn lifecycle_create_get_stop_start_reboot_delete() {
    let api = KraudApi::start(Options::default()).await;
    let driver = driver(&api);
    let spec = spec(None);
    let target = spec.target();
    let ns = KraudDriver::namespace_of(spec.vm_id);

    let created = driver.create(&spec).await.expect("create");
    assert_eq!(created.provider_id, ns);
    assert_eq!(created.state, CloudState::Provisioning);
    assert_eq!(created.raw_state, "Creating...");
    assert_eq!(created.confidential, None);
    assert_eq!(api.namespaces(), vec![ns.clone()]);

    // The launch as the server received it.
    let launches = api.launches();
    assert_eq!(launches.len(), 1);
    let launch = &launches[0];
    assert_eq!(launch.namespace, ns);
    assert!(launch.accept.contains("application/json"));
    assert_eq!(launch.image, "quay.io/kraudcloud/pvm/ubuntu:22.04");
    assert_eq!(launch.volume_size, "40G");
    for label in ["kr.res.mem=4G", "kr.zone=uca", "kr.network.policy=open"] {
        assert!(
            launch.labels.contains(&label.to_string()),
            "{label} in {:?}",
            launch.labels
        );
    }
    assert!(!launch.labels.iter().any(|l| l.starts_with("kr.res.snp")));
    assert!(launch.env.contains("MEM=4G"));

    // Provisioning, then booting, then running with addresses.
    let booting = driver.get(&target).await.unwrap().unwrap();
    assert_eq!(booting.state, CloudState::Starting);
    assert_eq!(booting.raw_state, "Starting...");
    assert!(booting.state.is_transitional());
    let running = poll_until(&driver, &target, CloudState::Running).await;
    assert_eq!(running.raw_state, "Running");
    assert_eq!(running.public_ipv6.as_deref(), Some("2001:db8:4b::1"));
    assert_eq!(running.private_ipv4.as_deref(), Some("10.0.0.2"));
    assert_eq!(running.public_ipv4, None);

    // Stop (and stop again: 304 is fine).
    driver.stop(&target).await.expect("stop");
    let stopping = driver.get(&target).await.unwrap().unwrap();
    assert_eq!(stopping.state, CloudState::Stopping);
    let stopped = poll_until(&driver, &target, CloudState::Stopped).await;
    assert_eq!(stopped.raw_state, "Stopped");
    assert_eq!(stopped.public_ipv6, None);
    driver.stop(&target).await.expect("stop of a stopped VM");

    // Start (and start again).
    driver.start(&target).await.expect("start");
    poll_until(&driver, &target, CloudState::Running).await;
    driver.start(&target).await.expect("start of a running VM");

    // Reboot through the deployment restart.
    driver.reboot(&target).await.expect("reboot");
    let rebooting = driver.get(&target).await.unwrap().unwrap();
    assert_eq!(rebooting.state, CloudState::Starting);
    poll_until(&driver, &target, CloudState::Running).await;

    // Delete: the namespace goes, recursively; then the VM is gone, and deleting again is fine.
    driver.delete(&target).await.expect("delete");
    assert_eq!(driver.get(&target).await.unwrap(), None);
    assert!(api.namespaces().is_empty());
    driver
        .delete(&target)
        .await
        .expect("delete of a deleted VM");

    let requests = api.requests();
    let has = |needle: &str| requests.iter().any(|r| r.starts_with(needle));
    assert!(has("POST /api/v1/namespaces"));
    assert!(has(&format!(
        "POST /apis/kraudcloud.com/v1/launch?namespace={ns}"
    )));
    assert!(has("GET /apis/kraudcloud.com/v1/pods?status=true"));
    assert!(has("POST /v1.41/containers/p00001/stop?t="));
    assert!(has("POST /v1.41/containers/p00001/start"));
    assert!(has(
        "POST /apis/kr/v1/deployments/by-id/10000000-0000-4000-8000-000000000001/restart"
    ));
    assert!(has(&format!(
        "DELETE /api/v1/namespaces/{ns}?recursive=true"
    )));
    let bearer = format!("Bearer {}", api.token());
    assert!(api.authorizations().iter().all(|a| *a == bearer));
    assert!(
        !format!("{driver:?}").contains(&api.token()),
        "Debug shows the token"
    );
}

#[tokio::test]
async fn create_is_idempotent_by_namespace() {
    let api = KraudApi::start(Options::default()).await;
    let driver = driver(&api);
    let spec = spec(None);

    let first = driver.create(&spec).await.expect("first create");
    let second = driver.create(&spec).await.expect("second create");
    assert_eq!(first.provider_id, second.provider_id);
    assert_eq!(api.launches().len(), 1, "one launch for the same VM");
    assert_eq!(api.pod_count(), 1);

    // Another VM gets its own namespace and launch.
    let other = spec_with_other_id(&spec);
    let third = driver.create(&other).await.expect("other create");
    assert_ne!(third.provider_id, first.provider_id);
    assert_eq!(api.launches().len(), 2);
}

fn spec_with_other_id(spec: &VmSpec) -> VmSpec {
    VmSpec {
        vm_id: VmId::new(),
        ..spec.clone()
    }
}

#[tokio::test]
async fn a_launch_whose_pod_is_not_visible_yet_is_not_repeated() {
    let api = KraudApi::start(Options {
        appear_after: 1_000,
        ..Options::default()
    })
    .await;
    let driver = driver(&api);

    // Without a confidential requirement: reported as provisioning.
    let plain = spec(None);
    let vm = driver.create(&plain).await.expect("create");
    assert_eq!(vm.state, CloudState::Provisioning);
    assert_eq!(vm.raw_state, "Launching");
    assert_eq!(driver.get(&plain.target()).await.unwrap(), None);

    // With SNP nothing reports the technology yet: a retryable conflict.
    let snp = spec(Some(ConfidentialTech::SevSnp));
    let err = driver.create(&snp).await.expect_err("pod not visible");
    assert!(matches!(err, DriverError::Conflict(_)), "{err:?}");
    assert!(err.is_retryable());
    assert_eq!(api.launches().len(), 2);

    // The retries find the deployment and do not launch again.
    driver.create(&plain).await.expect("create again");
    api.reveal_pods();
    let vm = driver.create(&snp).await.expect("create again");
    assert_eq!(vm.confidential, Some(ConfidentialTech::SevSnp));
    assert_eq!(api.launches().len(), 2);
}

#[tokio::test]
async fn a_bad_token_is_unauthorized() {
    let api = KraudApi::start(Options::default()).await;
    let driver = driver_with(&api, "expired-token");
    let spec = spec(None);
    let err = driver.create(&spec).await.expect_err("bad token");
    assert!(matches!(err, DriverError::Unauthorized(_)), "{err:?}");
    assert!(!err.is_retryable());
    let err = driver.get(&spec.target()).await.expect_err("bad token");
    assert!(matches!(err, DriverError::Unauthorized(_)), "{err:?}");
    assert!(api.launches().is_empty());
    // The token never shows up in an error.
    assert!(!format!("{err} {err:?}").contains("expired-token"));

    let empty = KraudDriver::new(KraudConfig {
        token: Sensitive::new("  ".into()),
        base_url: api.base_url.clone(),
        deployment: vmapi_models::DeploymentId::local(),
    });
    assert!(matches!(empty, Err(DriverError::Unauthorized(_))));
}

#[tokio::test]
async fn a_launch_error_carries_the_message() {
    let api = KraudApi::start(Options {
        launch_error: Some((400, "image quay.io/kraudcloud/pvm/nope:1 not found".into())),
        ..Options::default()
    })
    .await;
    let driver = driver(&api);
    let err = driver.create(&spec(None)).await.expect_err("launch fails");
    match &err {
        DriverError::InvalidSpec(m) => assert!(m.contains("pvm/nope:1 not found"), "{m}"),
        other => panic!("expected InvalidSpec, got {other:?}"),
    }
    assert!(err.user_reason().contains("not found"));

    api.set_options(|o| o.launch_error = Some((503, "scheduler unavailable".into())));
    let err = driver.create(&spec(None)).await.expect_err("launch fails");
    assert!(
        matches!(&err, DriverError::Unreachable(m) if m.contains("scheduler unavailable")),
        "{err:?}"
    );
    assert!(err.is_retryable());

    api.set_options(|o| {
        o.launch_error = None;
        o.launch_text = Some(
            "pulling quay.io/kraudcloud/pvm/ubuntu:22.04\nError: volume zone mismatch\n".into(),
        );
    });
    let err = driver
        .create(&spec(None))
        .await
        .expect_err("streamed failure");
    assert_eq!(
        err,
        DriverError::Provider {
            code: "launch_failed".into(),
            message: "volume zone mismatch".into()
        }
    );
    api.set_options(|o| o.launch_text = Some("OK. Launch in progress".into()));
    let vm = driver.create(&spec(None)).await.expect("streamed success");
    assert_eq!(vm.state, CloudState::Provisioning);

    api.set_options(|o| o.launch_error = Some((402, "pool limit reached".into())));
    let err = driver.create(&spec(None)).await.expect_err("launch fails");
    assert!(
        matches!(&err, DriverError::Quota(m) if m.contains("pool limit")),
        "{err:?}"
    );
}

#[tokio::test]
async fn conflicts_throttling_and_outages_map_to_retryable_errors() {
    let api = KraudApi::start(Options::default()).await;
    let driver = driver(&api);
    let spec = spec(None);

    api.inject(
        Method::POST,
        "/apis/kraudcloud.com/v1/launch",
        409,
        "another launch is running",
        None,
        1,
    );
    let err = driver.create(&spec).await.expect_err("conflict");
    assert!(
        matches!(&err, DriverError::Conflict(m) if m.contains("another launch")),
        "{err:?}"
    );

    api.inject(
        Method::GET,
        "/apis/kraudcloud.com/v1/pods",
        429,
        "slow down",
        Some(7),
        1,
    );
    let err = driver.get(&spec.target()).await.expect_err("throttled");
    assert_eq!(
        err,
        DriverError::Throttled {
            retry_after: Duration::from_secs(7)
        }
    );
    assert_eq!(err.retry_after(), Duration::from_secs(7));

    api.inject(
        Method::DELETE,
        "/api/v1/namespaces/",
        500,
        "etcd timeout",
        None,
        1,
    );
    let err = driver
        .delete(&spec.target())
        .await
        .expect_err("server error");
    assert!(matches!(err, DriverError::Unreachable(_)), "{err:?}");

    // After the faults the create goes through, with one launch.
    driver.create(&spec).await.expect("create");
    assert_eq!(api.launches().len(), 1);

    // Nobody listening.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let offline = KraudDriver::new(KraudConfig {
        token: Sensitive::new("t".into()),
        base_url: format!("http://{closed}"),
        deployment: vmapi_models::DeploymentId::local(),
    })
    .unwrap();
    let err = offline.get(&spec.target()).await.expect_err("offline");
    assert!(matches!(err, DriverError::Unreachable(_)), "{err:?}");
}

#[tokio::test]
async fn missing_vms_and_failed_pods() {
    let api = KraudApi::start(Options::default()).await;
    let driver = driver(&api);
    let spec = spec(None);
    let target = spec.target();

    assert_eq!(driver.get(&target).await.unwrap(), None);
    assert!(matches!(
        driver.start(&target).await,
        Err(DriverError::NotFound(_))
    ));
    assert!(matches!(
        driver.stop(&target).await,
        Err(DriverError::NotFound(_))
    ));
    assert!(matches!(
        driver.reboot(&target).await,
        Err(DriverError::NotFound(_))
    ));
    driver
        .delete(&target)
        .await
        .expect("delete of an absent VM");

    driver.create(&spec).await.expect("create");
    let ns = KraudDriver::namespace_of(spec.vm_id);
    api.set_display(&ns, "Error: no capacity in zone uca", false);
    let vm = driver.get(&target).await.unwrap().unwrap();
    assert_eq!(
        vm.state,
        CloudState::Failed("Error: no capacity in zone uca".into())
    );
    assert_eq!(vm.raw_state, "Error: no capacity in zone uca");
    api.set_display(&ns, "Hibernating", true);
    let vm = driver.get(&target).await.unwrap().unwrap();
    assert_eq!(vm.state, CloudState::Unknown);
}

#[tokio::test]
async fn snp_is_requested_by_label_and_reported_from_the_pod() {
    let api = KraudApi::start(Options::default()).await;
    let driver = driver(&api);
    let spec = spec(Some(ConfidentialTech::SevSnp));

    let vm = driver.create(&spec).await.expect("create");
    let launch = &api.launches()[0];
    assert!(
        launch.labels.contains(&"kr.res.snp=1".to_string()),
        "{:?}",
        launch.labels
    );
    assert_eq!(vm.confidential, Some(ConfidentialTech::SevSnp));
    let running = poll_until(&driver, &spec.target(), CloudState::Running).await;
    assert_eq!(running.confidential, Some(ConfidentialTech::SevSnp));
}

#[tokio::test]
async fn a_cloud_that_ignores_snp_reports_no_confidential_technology() {
    let api = KraudApi::start(Options {
        honor_snp: false,
        ..Options::default()
    })
    .await;
    let driver = driver(&api);
    let spec = spec(Some(ConfidentialTech::SevSnp));

    let vm = driver.create(&spec).await.expect("create");
    assert!(api.launches()[0]
        .labels
        .contains(&"kr.res.snp=1".to_string()));
    assert_eq!(
        vm.confidential, None,
        "what was asked is not what the pod reports"
    );
    let running = poll_until(&driver, &spec.target(), CloudState::Running).await;
    assert_eq!(running.confidential, None);
}

#[tokio::test]
async fn tdx_is_refused_before_any_call() {
    let api = KraudApi::start(Options::default()).await;
    let driver = driver(&api);
    let err = driver
        .create(&spec(Some(ConfidentialTech::Tdx)))
        .await
        .expect_err("no TDX");
    assert!(matches!(err, DriverError::InvalidSpec(_)), "{err:?}");
    assert!(api.requests().is_empty());
}

#[tokio::test]
async fn the_compose_carries_keys_and_the_hash_never_a_plaintext_password() {
    let api = KraudApi::start(Options::default()).await;
    let driver = driver(&api);
    driver.create(&spec(None)).await.expect("create");
    let launch = &api.launches()[0];

    for text in [&launch.compose, &launch.env] {
        assert!(!text.contains(PASSWORD), "plaintext password sent");
    }
    assert_eq!(launch.entrypoint.len(), 3, "{:?}", launch.entrypoint);
    assert_eq!(
        &launch.entrypoint[..2],
        &["/bin/sh".to_string(), "-c".to_string()]
    );
    let script = &launch.entrypoint[2];
    assert!(script.trim_end().ends_with("exec /sbin/init"), "{script}");
    assert!(script.contains("chpasswd -e"));
    assert!(script.contains("passwd -l root"));
    let values = decoded_values(script);
    assert!(
        values.iter().all(|v| !v.contains(PASSWORD)),
        "plaintext password in {values:?}"
    );
    assert!(
        values.contains(&format!("root:{HASH}\n")),
        "hash in {values:?}"
    );
    assert!(values.contains(&format!("{KEY}\n")), "key in {values:?}");
    assert!(values.iter().any(|v| v.contains("PermitRootLogin yes")));

    // A key-only login: no password line at all, password authentication off.
    let mut keys_only = spec(None);
    keys_only.login.password_hash = None;
    driver.create(&keys_only).await.expect("create");
    let script = &api.launches()[1].entrypoint[2];
    assert!(!script.contains("chpasswd"));
    assert!(decoded_values(script)
        .iter()
        .any(|v| v.contains("PasswordAuthentication no")));

    // A "hash" that is not one (it could be a plaintext password) is refused, unsent.
    let mut wrong = spec(None);
    wrong.login.password_hash = Some(PASSWORD.into());
    let err = driver.create(&wrong).await.expect_err("not a crypt hash");
    assert!(matches!(err, DriverError::InvalidSpec(_)), "{err:?}");
    assert_eq!(api.launches().len(), 2);
    assert!(api.requests().iter().all(|r| !r.contains(PASSWORD)));
}

#[tokio::test]
async fn list_managed_finds_the_services_namespaces_and_only_those() {
    let api = KraudApi::start(Options::default()).await;
    let driver = driver(&api);
    let (a, b, gone, leaving) = (spec(None), spec(None), spec(None), spec(None));
    for spec in [&a, &b, &gone, &leaving] {
        driver.create(spec).await.expect("create");
    }
    driver.delete(&gone.target()).await.expect("delete");
    // Being deleted: listed by the API as Terminating, not by the driver.
    let leaving_ns = KraudDriver::namespace_of(leaving.vm_id);
    api.set_terminating(&leaving_ns);
    // A namespace of ours whose launch never happened (a partial create) is still ours.
    let empty = VmId::new();
    let empty_ns = KraudDriver::namespace_of(empty);
    api.add_namespace(&empty_ns);
    // Not the service's.
    let foreign = [
        "default".to_string(),
        "vm-web-frontend".to_string(),
        format!("vm-{}-old", VmId::new()),
        format!("VM-{}", VmId::new()),
    ];
    for ns in &foreign {
        api.add_namespace(ns);
    }
    api.add_pod("default");

    let listed = driver.list_managed("berlin").await.expect("list");
    let mut found: Vec<(VmId, String)> = listed
        .iter()
        .map(|r| (r.target.vm_id, r.target.provider_id.clone().unwrap()))
        .collect();
    found.sort();
    let mut expected: Vec<(VmId, String)> = [a.vm_id, b.vm_id, empty]
        .into_iter()
        .map(|id| (id, KraudDriver::namespace_of(id)))
        .collect();
    expected.sort();
    assert_eq!(found, expected);
    for resource in &listed {
        assert_eq!(resource.target.region, "berlin");
        assert!(resource.created_at.is_some(), "creationTimestamp is read");
        if resource.target.vm_id == empty {
            assert_eq!(
                resource.raw_state, "Active",
                "no pod: the namespace's phase"
            );
        } else {
            assert!(
                ["Creating...", "Starting...", "Running"].contains(&resource.raw_state.as_str()),
                "the pod's display: {}",
                resource.raw_state
            );
        }
    }
    assert!(api
        .requests()
        .contains(&"GET /api/v1/namespaces".to_string()));

    // The listed targets are enough to delete the VMs.
    let fresh = driver_with(&api, &api.token());
    for resource in &listed {
        fresh.delete(&resource.target).await.expect("delete listed");
    }
    let mut left = api.namespaces();
    left.sort();
    let mut untouched: Vec<String> = foreign.to_vec();
    untouched.push(leaving_ns);
    untouched.sort();
    assert_eq!(left, untouched);
    assert!(driver.list_managed("berlin").await.unwrap().is_empty());
    assert_eq!(
        api.pod_count(),
        2,
        "the terminating VM's pod and the foreign pod"
    );
}

#[tokio::test]
async fn list_managed_errors_map_like_other_calls() {
    let api = KraudApi::start(Options::default()).await;
    let driver = driver(&api);
    api.inject(
        Method::GET,
        "/api/v1/namespaces",
        503,
        "maintenance",
        None,
        1,
    );
    assert!(matches!(
        driver.list_managed("uca").await,
        Err(DriverError::Unreachable(_))
    ));
    let bad = driver_with(&api, "wrong-token");
    assert!(matches!(
        bad.list_managed("uca").await,
        Err(DriverError::Unauthorized(_))
    ));
    assert!(driver.list_managed("uca").await.unwrap().is_empty());
}

/// A Kraud rule on the address: `Allow` opens it, `Deny` closes it.
fn address_rule(name: &str, access: RuleAccess, priority: u16) -> SecurityRule {
    let mut r = SecurityRule::default_for(Some(CloudKind::Kraud), 2, Timestamp::now());
    r.name = RuleName::parse(name).unwrap();
    r.access = access;
    r.priority = priority;
    r
}

#[tokio::test]
async fn rules_open_and_close_the_address_at_launch_and_later() {
    let api = KraudApi::start(Options::default()).await;
    let driver = driver(&api);

    // Launched without rules: the label is left out, the address stays firewalled.
    let mut closed = spec(None);
    closed.rules.clear();
    driver.create(&closed).await.expect("create");
    let launch = api.launches().pop().unwrap();
    assert!(
        !launch
            .labels
            .iter()
            .any(|l| l.starts_with("kr.network.policy")),
        "{:?}",
        launch.labels
    );
    let ns = KraudDriver::namespace_of(closed.vm_id);
    assert_eq!(api.address_open(&ns), Some(false));

    // Apply an allow rule: the pod's label is set by a merge patch of the k8s-shaped pod.
    let target = closed.target();
    let allow = address_rule("AllowAnyInbound", RuleAccess::Allow, 1000);
    driver
        .apply_rules(&target, std::slice::from_ref(&allow))
        .await
        .expect("apply");
    assert_eq!(api.address_open(&ns), Some(true));
    let patch = api.patches().pop().unwrap();
    assert_eq!(
        (patch.namespace.as_str(), patch.pod.as_str()),
        (ns.as_str(), "vm")
    );
    assert_eq!(patch.content_type, "application/merge-patch+json");
    assert_eq!(
        patch.body,
        serde_json::json!({ "metadata": { "labels": { "kr.network.policy": "open" } } })
    );
    // Repeating it changes nothing.
    driver
        .apply_rules(&target, std::slice::from_ref(&allow))
        .await
        .expect("apply again");
    assert_eq!(api.address_open(&ns), Some(true));

    // A deny rule closes it even next to an allow rule; no rules close it too.
    let deny = address_rule("DenyAll", RuleAccess::Deny, 900);
    driver
        .apply_rules(&target, &[allow.clone(), deny])
        .await
        .expect("apply deny");
    assert_eq!(api.address_open(&ns), Some(false));
    assert_eq!(
        api.patches().pop().unwrap().body,
        serde_json::json!({ "metadata": { "labels": { "kr.network.policy": null } } })
    );
    driver
        .apply_rules(&target, std::slice::from_ref(&allow))
        .await
        .unwrap();
    driver.apply_rules(&target, &[]).await.unwrap();
    assert_eq!(api.address_open(&ns), Some(false));

    // A port rule cannot be expressed: refused before any call.
    let before = api.requests().len();
    let mut ssh = allow.clone();
    ssh.protocol = Protocol::Tcp;
    ssh.port_range = Ports::Ranges(vec![PortRange { from: 22, to: 22 }]);
    assert!(matches!(
        driver.apply_rules(&target, &[ssh]).await,
        Err(DriverError::InvalidSpec(m)) if m.contains("only open or close")
    ));
    assert_eq!(api.requests().len(), before);

    // A VM without a pod: not found.
    let gone = spec(None).target();
    assert!(matches!(
        driver.apply_rules(&gone, &[allow]).await,
        Err(DriverError::NotFound(_))
    ));

    // Launched with the default rule: open from the start; a repeated create re-applies the
    // rules to the pod an earlier attempt launched.
    let mut open = spec(None);
    driver.create(&open).await.unwrap();
    let ns = KraudDriver::namespace_of(open.vm_id);
    assert_eq!(api.address_open(&ns), Some(true));
    open.rules.clear();
    driver.create(&open).await.unwrap();
    assert_eq!(api.address_open(&ns), Some(false));
    assert_eq!(api.launches().len(), 2);
}
