//! The per-function Vault policies shipped in `deploy/vault-policies/`, loaded into OpenBao:
//! each function's token does what its function needs and is refused the rest. Only the
//! provisioner and cleanup read the clouds' credentials.

use serde_json::json;
use vmapi_core::credentials::generate_team_login;
use vmapi_core::{SecretLabels, SecretStore};
use vmapi_models::{AuthMethod, SecretPath, TeamId, VmId};
use vmapi_secrets::VaultStore;
use vmapi_tests::vault::OpenBao;

const CLOUDS: &str = "vm-api-clouds/azure";

/// What a function's token may do.
struct Allowed {
    create: bool,
    read: bool,
    delete: bool,
    list: bool,
    clouds: bool,
}

/// A login written with the root token, for the others to read or remove.
async fn seeded(vault: &OpenBao) -> SecretPath {
    let team = TeamId::new();
    let path = SecretPath::from_text(&format!("{team}/vm/{}/root", VmId::new()));
    let login = generate_team_login(team, AuthMethod::Password).unwrap();
    let labels = SecretLabels { team, vm: None };
    vault
        .store(&vault.token)
        .create(&path, &login, labels)
        .await
        .unwrap();
    path
}

async fn check(function: &str, allowed: Allowed) {
    let vault = OpenBao::shared().await;
    vault
        .insert_unmarked(CLOUDS, json!({"clientSecret": "not-a-real-one"}))
        .await;
    let store: VaultStore = vault.store(&vault.token_for(function).await);
    let team = TeamId::new();
    let new = SecretPath::from_text(&format!("{team}/vm/{}/root", VmId::new()));
    let login = generate_team_login(team, AuthMethod::Password).unwrap();
    let labels = SecretLabels { team, vm: None };
    let created = store.create(&new, &login, labels).await;
    assert_eq!(
        created.is_ok(),
        allowed.create,
        "{function} create: {created:?}"
    );
    if allowed.create {
        let meta = vault.custom_metadata(new.as_str()).await;
        assert!(meta.is_some(), "{function}: the create marked the login");
    } else {
        assert!(
            !vault.paths().await.contains(&new.to_string()),
            "{function}: a refused create leaves nothing"
        );
    }

    let existing = seeded(&vault).await;
    let read = store.read(&existing).await;
    assert_eq!(
        read.as_ref().is_ok_and(|l| l.is_some()),
        allowed.read,
        "{function} read: {read:?}"
    );
    let listed = store.list_managed().await;
    assert_eq!(listed.is_ok(), allowed.list, "{function} list: {listed:?}");
    if let Ok(listed) = listed {
        assert!(listed.iter().any(|s| s.path == existing), "{listed:?}");
    }
    let clouds = store.read_document(&SecretPath::from_text(CLOUDS)).await;
    assert_eq!(
        clouds.as_ref().is_ok_and(|d| d.is_some()),
        allowed.clouds,
        "{function} clouds' credentials: {}",
        clouds.is_ok()
    );
    let deleted = store.delete(&existing).await;
    assert_eq!(
        deleted.is_ok(),
        allowed.delete,
        "{function} delete: {deleted:?}"
    );
    assert_eq!(
        vault.latest(existing.as_str()).await.is_none(),
        allowed.delete,
        "{function}: the login is gone exactly when the delete was allowed"
    );
}

#[tokio::test]
async fn get_credentials_reads_logins_and_nothing_else() {
    check(
        "get-credentials",
        Allowed {
            create: false,
            read: true,
            delete: false,
            list: false,
            clouds: false,
        },
    )
    .await;
}

#[tokio::test]
async fn create_vm_writes_and_marks_logins_but_reads_none() {
    check(
        "create-vm",
        Allowed {
            create: true,
            read: false,
            delete: true,
            list: false,
            clouds: false,
        },
    )
    .await;
}

#[tokio::test]
async fn the_provisioner_reads_logins_and_the_clouds_credentials() {
    check(
        "provisioner",
        Allowed {
            create: false,
            read: true,
            delete: true,
            list: false,
            clouds: true,
        },
    )
    .await;
}

#[tokio::test]
async fn cleanup_lists_and_removes_logins_and_reads_the_clouds_credentials_only() {
    check(
        "cleanup",
        Allowed {
            create: false,
            read: false,
            delete: true,
            list: true,
            clouds: true,
        },
    )
    .await;
}
