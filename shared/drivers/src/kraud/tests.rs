//! Unit tests of the Kraud driver's files (the Kraud API test server drives it in `tests/kraud/`).

use vmapi_core::cloud::{CloudDriver, CloudState, CloudTarget, DriverError, LoginSpec};
use vmapi_models::{Sensitive, VmId};

use super::config::*;
use super::launch::*;
use super::view::*;
use super::wire::*;
use super::*;

/// A loopback port nobody listens on.
fn closed_port() -> std::net::SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap()
}

fn target() -> CloudTarget {
    CloudTarget {
        vm_id: VmId::new(),
        region: "r".into(),
        provider_id: None,
    }
}

#[tokio::test]
async fn an_unreachable_api_names_the_connection_error() {
    let driver = KraudDriver::new(KraudConfig {
        token: Sensitive::new("kraud-token-value".into()),
        base_url: format!("http://{}", closed_port()),
        deployment: vmapi_models::DeploymentId::local(),
    })
    .unwrap();
    let e = driver.get(&target()).await.expect_err("nobody listens");
    let DriverError::Unreachable(m) = &e else {
        panic!("{e:?}")
    };
    // Not only reqwest's "error sending request": the cause below it.
    assert!(m.contains("error sending request"), "{m}");
    assert!(m.to_lowercase().contains("connection refused"), "{m}");
    assert!(!m.contains("kraud-token-value"), "{m}");
}

#[test]
fn base64_matches_rfc4648_vectors() {
    for (plain, encoded) in [
        ("", ""),
        ("f", "Zg=="),
        ("fo", "Zm8="),
        ("foo", "Zm9v"),
        ("foob", "Zm9vYg=="),
        ("fooba", "Zm9vYmE="),
        ("foobar", "Zm9vYmFy"),
    ] {
        assert_eq!(base64(plain.as_bytes()), encoded);
    }
}

#[test]
fn display_words_map_to_states() {
    assert_eq!(state_of("Running"), CloudState::Running);
    assert_eq!(state_of("Running since 3m"), CloudState::Running);
    assert_eq!(state_of("Starting..."), CloudState::Starting);
    assert_eq!(state_of("Creating..."), CloudState::Provisioning);
    assert_eq!(state_of("Pending"), CloudState::Provisioning);
    assert_eq!(state_of("Scheduling"), CloudState::Provisioning);
    assert_eq!(state_of("Stopping"), CloudState::Stopping);
    assert_eq!(state_of("Stopped"), CloudState::Stopped);
    assert_eq!(state_of("Exited (0)"), CloudState::Stopped);
    assert_eq!(state_of("Terminated"), CloudState::Stopped);
    assert_eq!(
        state_of("Error: image pull failed"),
        CloudState::Failed("Error: image pull failed".into())
    );
    assert_eq!(state_of("Failed"), CloudState::Failed("Failed".into()));
    assert_eq!(state_of(""), CloudState::Unknown);
    assert_eq!(state_of("Hibernating"), CloudState::Unknown);
}

#[test]
fn only_our_namespaces_name_a_vm() {
    let vm = VmId::new();
    let ns = KraudDriver::namespace_of(vm);
    assert_eq!(KraudDriver::vm_of_namespace(&ns), Some(vm));
    assert_eq!(KraudDriver::vm_of_namespace(&ns.to_ascii_uppercase()), None);
    assert_eq!(
        KraudDriver::vm_of_namespace(&format!("vm-{}", vm.to_string().to_ascii_uppercase())),
        None
    );
    assert_eq!(KraudDriver::vm_of_namespace(&format!("{ns}-x")), None);
    assert_eq!(KraudDriver::vm_of_namespace("vm-web"), None);
    assert_eq!(KraudDriver::vm_of_namespace("default"), None);
}

#[test]
fn terminating_namespaces_are_recognized() {
    let parse = |v: serde_json::Value| serde_json::from_value::<Namespace>(v).unwrap();
    assert!(!parse(
        serde_json::json!({ "metadata": { "name": "a" }, "status": { "phase": "Active" } })
    )
    .is_terminating());
    assert!(
        !parse(serde_json::json!({ "metadata": { "name": "a", "deletionTimestamp": null } }))
            .is_terminating()
    );
    assert!(parse(
        serde_json::json!({ "metadata": { "name": "a" }, "status": { "phase": "Terminating" } })
    )
    .is_terminating());
    assert!(parse(serde_json::json!({ "metadata": { "name": "a", "deletionTimestamp": "2024-01-02T03:04:05Z" } })).is_terminating());
}

#[test]
fn regions_map_to_zones() {
    assert_eq!(zone_of("uca"), "uca");
    assert_eq!(zone_of("YCA"), "yca");
    assert_eq!(zone_of("lmu"), "lmu");
    assert_eq!(zone_of("berlin"), "uca");
    assert_eq!(zone_of("westeurope"), DEFAULT_ZONE);
}

#[test]
fn memory_uses_kraud_units() {
    assert_eq!(memory(1), "1G");
    assert_eq!(memory(16), "16G");
    assert_eq!(memory(1024), "1T");
    assert_eq!(memory(1536), "1536G");
}

#[test]
fn overlays_give_public_v6_and_private_v4() {
    let overlays = vec![
        Overlay {
            ip4: Some("10.1.2.3".into()),
            ip6: Some("fd00::1".into()),
        },
        Overlay {
            ip4: Some("198.51.100.7/32".into()),
            ip6: Some("2a0f:85c1::42".into()),
        },
    ];
    let (public4, private4, public6) = addresses(&overlays);
    assert_eq!(public4.as_deref(), Some("198.51.100.7"));
    assert_eq!(private4.as_deref(), Some("10.1.2.3"));
    assert_eq!(public6.as_deref(), Some("2a0f:85c1::42"));
}

#[test]
fn login_script_refuses_what_is_not_a_hash() {
    let login = LoginSpec {
        username: "root".into(),
        public_keys: vec![],
        password_hash: Some("hunter2".into()),
        password: None,
    };
    assert!(matches!(
        login_script(&login),
        Err(DriverError::InvalidSpec(_))
    ));
    let login = LoginSpec {
        username: "root; rm -rf /".into(),
        public_keys: vec!["ssh-ed25519 AAAA x".into()],
        password_hash: None,
        password: None,
    };
    assert!(matches!(
        login_script(&login),
        Err(DriverError::InvalidSpec(_))
    ));
}
