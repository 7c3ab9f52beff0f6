//! One deployment touches only its own (issue: "cleanup deletes what other deployments own").
//! On moto (EC2, Secrets Manager), OpenBao and the Azure and Kraud.Cloud test
//! servers: a second deployment's VMs, firewalls, namespaces and logins survive this
//! deployment's cleanup; untagged ones (made before deployment ids) are reported, never
//! removed; `vmctl adopt`'s use case tags those whose VM is in this deployment's table, and
//! leaves the rest.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use vmapi_core::adopt::{adopt, AdoptSummary};
use vmapi_core::cloud::{CloudDriver, CloudTarget, LoginSpec, VmSpec};
use vmapi_core::{
    Cleanup, CleanupPolicy, Drivers, Provisioner, Repository, SecretLabels, SecretStore, Summary,
    SystemClock,
};
use vmapi_models::{
    AuthMethod, CloudKind, CredentialScope, DeploymentId, LoginSecret, SecretPath, Sensitive, VmId,
    VmRecord, VmStatus,
};
use vmapi_tests::*;

// Both modules allow dead code themselves.
#[path = "../../../../shared/drivers/tests/azure_arm/mod.rs"]
mod azure_arm;
#[path = "../../../../shared/drivers/tests/kraud_api/mod.rs"]
mod kraud_api;

const KEY: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHZtYXBpLWtyYXVkLXRlc3Qta2V5LW1hdGVyaWFsLTEyMw user@example";

fn ours() -> DeploymentId {
    DeploymentId::local()
}

fn theirs() -> DeploymentId {
    DeploymentId::parse("staging").unwrap()
}

/// This deployment's cleanup over `provisioner`'s drivers in `regions`, with no grace period.
async fn cleanup(app: &TestApp, p: &Provisioner, regions: &[(CloudKind, &str)]) -> Summary {
    Cleanup::new(
        app.repo.clone(),
        Arc::new(SystemClock),
        Some(p.clone()),
        CleanupPolicy {
            orphan_grace: Duration::ZERO,
            regions: owned(regions),
            deployment: ours(),
            ..CleanupPolicy::default()
        },
    )
    .run()
    .await
    .unwrap()
}

/// `vmctl adopt` for this deployment.
async fn adopt_ours(app: &TestApp, p: &Provisioner, regions: &[(CloudKind, &str)]) -> AdoptSummary {
    let repo: Arc<dyn Repository> = app.repo.clone();
    adopt(&repo, p, &owned(regions), &ours(), false).await
}

fn owned(regions: &[(CloudKind, &str)]) -> Vec<(CloudKind, String)> {
    regions.iter().map(|(c, r)| (*c, r.to_string())).collect()
}

fn vm_login(vm: VmId) -> SecretPath {
    SecretPath::from_text(&format!("{TEAM}/vm/{vm}/root"))
}

fn login() -> LoginSecret {
    LoginSecret {
        username: "root".into(),
        auth_method: AuthMethod::Password,
        password: Some(Sensitive::new("Deployment-Pa55word-x".to_string())),
        private_key: None,
        public_key: None,
    }
}

fn labels(vm: VmId) -> SecretLabels {
    SecretLabels {
        team: TEAM.parse().unwrap(),
        vm: Some(vm),
    }
}

/// A VM record in `region` (not stored).
fn vm_in(name: &str, region: &str) -> VmRecord {
    let mut vm = demo_vm(name, VmStatus::Running);
    vm.region.datacenter.name = region.into();
    vm
}

/// Whether any action line names `id` and contains `text`.
fn says(summary: &[String], id: VmId, text: &str) -> bool {
    summary
        .iter()
        .any(|a| a.contains(&id.to_string()) && a.contains(text))
}

// ----- AWS EC2 and Secrets Manager on moto ---------------------------------------------------

mod moto;

// ----- Vault (OpenBao) -------------------------------------------------------------------------

#[tokio::test]
async fn on_vault_another_deployments_login_survives_and_an_unmarked_one_waits_for_adopt() {
    use vmapi_secrets::{VaultAuth, VaultConfig, VaultStore};
    let vault = vault::OpenBao::shared().await;
    let app = crate::vault::app(&vault, CredentialScope::Vm).await;
    let their_store = VaultStore::new(
        VaultConfig {
            address: vault.address.clone(),
            mount: vault.mount.clone(),
            namespace: None,
            auth: VaultAuth::Token(Sensitive::new(vault.token.clone())),
        },
        None,
        theirs(),
    );
    let (their_vm, stray, legacy, unknown) = (VmId::new(), VmId::new(), VmId::new(), VmId::new());
    their_store
        .create(&vm_login(their_vm), &login(), labels(their_vm))
        .await
        .unwrap();
    app.secrets
        .create(&vm_login(stray), &login(), labels(stray))
        .await
        .unwrap();
    let mut record = demo_vm("legacy", VmStatus::Running);
    record.id = legacy;
    app.seed_vm(&record).await;
    for vm in [legacy, unknown] {
        vault
            .insert_unmarked(
                vm_login(vm).as_str(),
                serde_json::to_value(login()).unwrap(),
            )
            .await;
    }
    let marked = async |vm: VmId| -> Option<Value> {
        vault
            .custom_metadata(vm_login(vm).as_str())
            .await
            .map(|m| m[DeploymentId::TAG].clone())
    };
    assert_eq!(marked(their_vm).await, Some(json!("staging")));
    assert_eq!(marked(stray).await, Some(json!("local")));
    assert_eq!(marked(legacy).await, None);

    let p = app.provisioner(Drivers::new());
    let run = cleanup(&app, &p, &[]).await;
    assert_eq!(
        (run.reconciled, run.untagged, run.failed),
        (1, 2, 0),
        "{run:#?}"
    );
    let paths = vault.paths().await;
    for vm in [their_vm, legacy, unknown] {
        assert!(paths.contains(&vm_login(vm).to_string()), "{vm}: {paths:?}");
    }
    assert!(!paths.contains(&vm_login(stray).to_string()), "{paths:?}");

    let adopted = adopt_ours(&app, &p, &[]).await;
    assert_eq!(
        (adopted.adopted, adopted.left, adopted.failed),
        (1, 1, 0),
        "{adopted:#?}"
    );
    assert_eq!(marked(legacy).await, Some(json!("local")));
    assert_eq!(marked(unknown).await, None);
    assert_eq!(marked(their_vm).await, Some(json!("staging")));
    let again = cleanup(&app, &p, &[]).await;
    assert_eq!((again.reconciled, again.untagged), (0, 1), "{again:#?}");
}

#[tokio::test]
async fn a_vault_login_whose_mark_cannot_be_written_is_taken_back() {
    // The metadata write is refused (a Vault policy without `metadata/` update): the login
    // would be nobody's, so the create fails and leaves nothing behind.
    let vault = vault::OpenBao::shared().await;
    let m = &vault.mount;
    let token = vault
        .token_with_policy(
            &format!("{m}-no-marks"),
            &format!(
                r#"path "{m}/data/*" {{ capabilities = ["create"] }}
path "{m}/metadata/*" {{ capabilities = ["delete"] }}"#
            ),
            None,
        )
        .await;
    let store = vault.store(&token);
    let vm = VmId::new();
    let e = store
        .create(&vm_login(vm), &login(), labels(vm))
        .await
        .expect_err("no mark, no login");
    assert!(
        e.to_string().contains("metadata") || format!("{e:?}").contains("metadata"),
        "{e:?}"
    );
    assert!(!vault.paths().await.contains(&vm_login(vm).to_string()));
}

// ----- Azure (ARM test server) ---------------------------------------------------------------

#[tokio::test]
async fn on_arm_another_deployments_vm_and_nsg_survive_and_untagged_vms_wait_for_adopt() {
    use azure_arm::{ArmServer, Fault};
    use vmapi_drivers::azure::AzureDriver;
    let arm = ArmServer::start().await;
    let app = TestApp::spawn().await;
    let driver = |deployment: DeploymentId| {
        let mut config = arm.config();
        config.deployment = deployment;
        AzureDriver::new(config).unwrap()
    };
    let ours_az = Arc::new(driver(ours()));
    let their_az = driver(theirs());
    let azure_spec = |vm: &VmRecord| VmSpec {
        size: "Standard_D2s_v5".into(),
        image: "Canonical:ubuntu-24_04-lts:server:latest".into(),
        login: LoginSpec {
            username: "azureuser".into(),
            public_keys: vec![KEY.into()],
            password_hash: None,
            password: None,
        },
        ..spec_of(vm)
    };
    let name = |vm: &VmRecord| format!("vm-{}", vm.id);
    // Theirs: a VM, and an NSG whose VM's teardown was cut short.
    let (their_vm, their_cut) = (vm_in("theirs", "westeurope"), vm_in("cut", "westeurope"));
    for vm in [&their_vm, &their_cut] {
        their_az.create(&azure_spec(vm)).await.unwrap();
    }
    arm.inject(
        axum::http::Method::DELETE,
        "/networkSecurityGroups/",
        Fault::new(
            400,
            "InUseNetworkSecurityGroupCannotBeDeleted",
            "Network security group cannot be deleted because it is in use by some resources.",
        ),
    );
    their_az
        .delete(&azure_spec(&their_cut).target())
        .await
        .unwrap();
    let their_nsg = format!("{}-nsg", name(&their_cut));
    assert!(arm.nsg_names().contains(&their_nsg));
    // Ours with no record; untagged ones with and without a record.
    let stray = vm_in("stray", "westeurope");
    ours_az.create(&azure_spec(&stray)).await.unwrap();
    let (legacy, unknown) = (
        vm_in("legacy", "westeurope"),
        vm_in("unknown", "westeurope"),
    );
    app.seed_vm(&legacy).await;
    for vm in [&legacy, &unknown] {
        arm.insert_vm(
            &name(vm),
            "westeurope",
            json!({ "managed-by": "vm-api", "vm-id": vm.id.to_string() }),
        );
    }

    let p = app.provisioner(Drivers::new().with(CloudKind::Azure, ours_az.clone()));
    let regions = [(CloudKind::Azure, "westeurope")];
    let run = cleanup(&app, &p, &regions).await;
    assert_eq!(run.failed, 0, "{run:#?}");
    assert!(says(&run.actions, stray.id, "removed"), "{run:#?}");
    assert!(arm.has_vm(&name(&their_vm)), "theirs stays");
    assert!(arm.nsg_names().contains(&their_nsg), "their NSG stays");
    assert!(arm
        .nsg_names()
        .contains(&format!("{}-nsg", name(&their_vm))));
    assert!(arm.has_vm(&name(&legacy)) && arm.has_vm(&name(&unknown)));
    assert_eq!(run.untagged, 2, "{run:#?}");

    let adopted = adopt_ours(&app, &p, &regions).await;
    assert_eq!(
        (adopted.adopted, adopted.left, adopted.failed),
        (1, 1, 0),
        "{adopted:#?}"
    );
    let tags = arm.vm_tags(&name(&legacy)).unwrap();
    assert_eq!(tags[DeploymentId::TAG], json!("local"), "{tags}");
    assert_eq!(
        tags["vm-id"],
        json!(legacy.id.to_string()),
        "merged, not replaced"
    );
    assert_eq!(
        arm.vm_tags(&name(&unknown)).unwrap().get(DeploymentId::TAG),
        None
    );
    let again = cleanup(&app, &p, &regions).await;
    assert_eq!((again.untagged, again.reconciled), (1, 0), "{again:#?}");
    assert!(arm.has_vm(&name(&legacy)));
}

// ----- Kraud.Cloud (test server) -------------------------------------------------------------

#[tokio::test]
async fn on_kraud_another_deployments_namespace_survives_and_unlabelled_ones_wait_for_adopt() {
    use kraud_api::{KraudApi, Options as KraudOptions};
    use vmapi_drivers::kraud::{KraudConfig, KraudDriver};
    let api = KraudApi::start(KraudOptions::default()).await;
    let app = TestApp::spawn().await;
    let driver = |deployment: DeploymentId| {
        KraudDriver::new(KraudConfig {
            token: Sensitive::new(api.token()),
            base_url: api.base_url.clone(),
            deployment,
        })
        .unwrap()
        .with_launch_wait(Duration::from_millis(300), Duration::from_millis(10))
    };
    let ours_kr = Arc::new(driver(ours()));
    let their_kr = driver(theirs());
    let kraud_spec = |vm: &VmRecord| VmSpec {
        region: "berlin".into(),
        size: "Standart_berlin_1_4_50".into(),
        memory_gb: 4,
        disk_gb: 40,
        image: "quay.io/kraudcloud/pvm/ubuntu:22.04".into(),
        login: LoginSpec {
            username: "root".into(),
            public_keys: vec![KEY.into()],
            password_hash: None,
            password: None,
        },
        ..spec_of(vm)
    };
    let ns = |vm: &VmRecord| KraudDriver::namespace_of(vm.id);
    let their_vm = vm_in("theirs", "berlin");
    their_kr.create(&kraud_spec(&their_vm)).await.unwrap();
    let stray = vm_in("stray", "berlin");
    ours_kr.create(&kraud_spec(&stray)).await.unwrap();
    let (legacy, unknown) = (vm_in("legacy", "berlin"), vm_in("unknown", "berlin"));
    app.seed_vm(&legacy).await;
    for vm in [&legacy, &unknown] {
        api.add_namespace(&ns(vm));
    }
    let label = |vm: &VmRecord| {
        api.namespace_labels(&ns(vm))
            .and_then(|l| l.get(DeploymentId::TAG).cloned())
    };
    assert_eq!(label(&their_vm), Some(json!("staging")));
    assert_eq!(label(&stray), Some(json!("local")));

    let p = app.provisioner(Drivers::new().with(CloudKind::Kraud, ours_kr.clone()));
    let regions = [(CloudKind::Kraud, "")];
    let run = cleanup(&app, &p, &regions).await;
    assert_eq!(run.failed, 0, "{run:#?}");
    let names = api.namespaces();
    assert!(!names.contains(&ns(&stray)), "{names:?}");
    for vm in [&their_vm, &legacy, &unknown] {
        assert!(names.contains(&ns(vm)), "{}: {names:?}", vm.name);
    }
    assert_eq!(run.untagged, 2, "{run:#?}");

    let adopted = adopt_ours(&app, &p, &regions).await;
    assert_eq!(
        (adopted.adopted, adopted.left, adopted.failed),
        (1, 1, 0),
        "{adopted:#?}"
    );
    assert_eq!(label(&legacy), Some(json!("local")));
    assert_eq!(label(&unknown), None);
    let again = cleanup(&app, &p, &regions).await;
    assert_eq!((again.untagged, again.reconciled), (1, 0), "{again:#?}");
}
