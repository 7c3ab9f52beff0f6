//! Where and how logins are kept: the platform's paths, check-and-set writes, reads, and the
//! removal of every version.

use reqwest::Method;
use vmapi_models::CredentialScope;
use vmapi_tests::vault::OpenBao;
use vmapi_tests::{OWNER, TEAM};

use crate::credentials::{create_one, creds_path};

#[tokio::test]
async fn team_scope_uses_the_platform_layout_and_writes_once() {
    let vault = OpenBao::shared().await;
    let app = super::app(&vault, CredentialScope::Team).await;
    let pw_vm = create_one(&app, "pw-vm", 0).await;
    let key_vm = create_one(&app, "key-vm", 1).await;
    let path = format!("{TEAM}/user/root");
    assert_eq!(vault.paths().await, vec![path.clone()]);
    let stored = vault.latest(&path).await.expect("stored");
    assert_eq!(stored["username"], "root");
    for field in ["authMethod", "password", "privateKey", "publicKey"] {
        assert!(!stored[field].is_null(), "{field} in {stored}");
    }
    let p = app.get(&creds_path(&pw_vm), OWNER).await.expect(200).json;
    assert_eq!(p["password"], stored["password"]);
    let k = app.get(&creds_path(&key_vm), OWNER).await.expect(200).json;
    assert_eq!(k["privateKey"], stored["privateKey"]);
    // The second VM found the team's login (check-and-set 0 refused a second write), so there
    // is still one version.
    let (_, meta) = vault
        .call(
            Method::GET,
            &format!("{}/metadata/{path}", vault.mount),
            None,
        )
        .await;
    assert_eq!(meta["data"]["current_version"], 1, "{meta}");
    assert_eq!(
        meta["data"]["custom_metadata"]["managed-by"], "vm-api",
        "{meta}"
    );
    // As OpenBao's audit log saw them: written through the data path, read back through it.
    let requests = vault.requests();
    let data = format!("{}/data/{path}", vault.mount);
    assert!(requests.contains(&format!("create {data}")), "{requests:?}");
    assert!(requests.contains(&format!("read {data}")), "{requests:?}");
}

#[tokio::test]
async fn the_platforms_read_request_works_as_written() {
    // The API page's request, verbatim, against the platform's mount: `?version=0` is the latest.
    let vault = OpenBao::platform_mount().await;
    let team = vmapi_models::TeamId::new();
    let path = format!("{team}/user/root");
    let store = vault.store(&vault.token);
    let login =
        vmapi_core::credentials::generate_team_login(team, vmapi_models::AuthMethod::Password)
            .unwrap();
    let labels = vmapi_core::SecretLabels { team, vm: None };
    vmapi_core::SecretStore::create(
        &store,
        &vmapi_models::SecretPath::from_text(&path),
        &login,
        labels,
    )
    .await
    .unwrap();
    let (status, body) = vault
        .call(
            Method::GET,
            &format!("enclaive-static/data/{team}/user/root?version=0"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["data"]["username"], "root");
    assert_eq!(
        body["data"]["data"]["password"].as_str(),
        login.password.as_ref().map(|p| p.expose()),
        "the stored password is the one generated"
    );
}

#[tokio::test]
async fn vm_scope_delete_removes_every_version() {
    let vault = OpenBao::shared().await;
    let app = super::app(&vault, CredentialScope::Vm).await;
    let id = create_one(&app, "vm-1", 1).await;
    let path = format!("{TEAM}/vm/{id}/root");
    assert_eq!(vault.paths().await, vec![path.clone()]);
    app.call(
        Method::DELETE,
        &format!("/api/virtual-machines/{id}"),
        Some(OWNER),
        None,
    )
    .await
    .expect(200);
    assert_eq!(
        vault.paths().await.len(),
        1,
        "kept until the cloud teardown"
    );
    let (_sim, provisioner) = app.simulated();
    app.settle(&provisioner, &id).await;
    assert!(
        vault.paths().await.is_empty(),
        "metadata delete removes all versions"
    );
    assert!(vault
        .requests()
        .contains(&format!("delete {}/metadata/{path}", vault.mount)));
}
