//! VM logins: generation on create, the credentials endpoint, deletion, failure semantics,
//! both secret stores (Secrets Manager on moto, and OpenBao; Vault's own cases are in `vault/`), and the logs.

use std::sync::Arc;
use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};
use vmapi_core::SecretStore;
use vmapi_models::{CredentialScope, SecretPath};
use vmapi_secrets::config::SecretsManagerConfig;
use vmapi_secrets::SecretsManagerStore;
use vmapi_tests::vault::OpenBao;
use vmapi_tests::*;

const RSA_3072: &str = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABgQCnuUHfAwDitGrdoJLTYC5rEbCDMGSRQ0AbfQPDyvFALl/f22tbV+uG55nxeFXHzduHMRITHyFHga/iqYca+9q5f7/TZUC/pNFn6Xq/Ur/vXgi5zXo/NAfDz4BIkMDlaW4544IVoM2AD3TRJI2tb5E2V9MNsFGEThvwjs8wjeoiIKt4epHgakva29nkvcwbo3/JRvqm6y0H31xkH966PmPQKUX/vDF9c6gjZJ3PNQS3XlsvgHUZ+MOGNPMAvic9tfQzRD4eeEU8JhGf9L3NacH+ma+trUCqObKxRN3BCeA5nIcOBJJNt6ufn4H+X+mXcR3M4kMlEfC8vpDYi2Zi7CnlyueXXlZhIX2AsUQK3rkZEw9jPro/tj1Aa/RitlAY06rDuTZSL294wHjvIJDxbMTnkUOIw0lSAY8ojtLTepUhew+AVIbnRZImfkyeYIfJSsigdLvCzei4wtrHxAqdE2pVFM3SK/K2Wx8p9xl5tQ5+YpCl7us/9zgCmI2mGmtpXss= big";
const RSA_1024: &str = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQDUeV68ACuTkHxjEgNwQG6PQrBL0Wtlcn5KPnVf7G0voWUqlEGCXsIomMwkS8ti/PthGNAYvwRzdIg3QTOo8OCuSlCTIIZaUXaKE+0uuvwplaOdYfo3gY8usyMe26GBBRD0BE6UyIXjOSSrbgZ1EGyzv8LJB5I6ma4J6Lu3teyYBw== small";
const ECDSA: &str = "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBJxQLV8pohV61Y9evXguU96wViq3zoW67cUkjndz+hBMme/FdJV1iz8FzbeyzwyoKBpn4+HdQAfzeCN6bjXhiJA= ec";

pub(crate) fn creds_path(id: &str) -> String {
    format!("/api/virtual-machines/{id}/credentials")
}

/// Creates one VM of the demo project with `authMethod` and returns its id.
pub(crate) async fn create_one(app: &TestApp, name: &str, auth_method: u8) -> String {
    let mut body = spec_create_request();
    body["hostNames"] = json!([name]);
    body["authMethod"] = json!(auth_method);
    app.create_vm_as(OWNER, &body).await
}

/// The body of a create for the demo catalog's Azure offering.
fn azure_request(name: &str) -> Value {
    let mut body = spec_create_request();
    body["cloudProvider"] = json!("6548a383e2442d14b6bf9687");
    body["provider"] = json!("6548a383e2442d14b6bf968d");
    body["size"] = json!("6548a383e2442d14b6bf9748");
    body["price"] = json!("6548a383e2442d14b6bf970e");
    body["region"] = json!({"physicalLocation": "Netherlands", "datacenter": {"name": "westeurope", "displayName": "West Europe"}});
    body["image"] = json!({"distribution": "Ubuntu", "version": {"name": "22_04-lts", "displayName": "22.04 LTS"}});
    body["hostNames"] = json!([name]);
    body
}

fn check_private_key(pem: &str) {
    assert!(
        pem.starts_with("-----BEGIN OPENSSH PRIVATE KEY-----\n"),
        "{pem:.40}"
    );
    assert!(pem
        .trim_end()
        .ends_with("-----END OPENSSH PRIVATE KEY-----"));
}

fn check_password(pw: &str) {
    assert_eq!(pw.len(), 24);
    assert!(pw.chars().any(|c| c.is_ascii_uppercase()));
    assert!(pw.chars().any(|c| c.is_ascii_lowercase()));
    assert!(pw.chars().any(|c| c.is_ascii_digit()));
    assert!(pw.chars().any(|c| !c.is_ascii_alphanumeric()));
}

#[tokio::test]
async fn team_scope_in_secrets_manager_one_login_per_team() {
    let app = TestApp::spawn().await;
    let key_vm = create_one(&app, "key-vm", 1).await;
    let pw_vm = create_one(&app, "pw-vm", 0).await;
    let prefix = app.secrets_prefix.clone().unwrap();
    assert_eq!(
        app.secret_names().await,
        vec![format!("{prefix}{TEAM}/user/root")],
        "one team login, made with the team's first VM and reused"
    );

    let r = app.get(&creds_path(&key_vm), OWNER).await.expect(200);
    assert_eq!(r.headers["cache-control"], "no-store");
    let c = &r.json;
    assert_eq!(c["vmId"], key_vm.as_str());
    assert_eq!(c["username"], "root");
    assert_eq!(c["authMethod"], 1);
    assert_eq!(c["port"], 22);
    assert_eq!(c["host"], Value::Null);
    assert!(c.get("password").is_none(), "{c}");
    check_private_key(c["privateKey"].as_str().unwrap());
    assert!(c["publicKey"].as_str().unwrap().starts_with("ssh-ed25519 "));

    let p = app.get(&creds_path(&pw_vm), OWNER).await.expect(200).json;
    assert_eq!(p["authMethod"], 0);
    check_password(p["password"].as_str().unwrap());
    assert!(
        p.get("privateKey").is_none() && p["publicKey"].is_null(),
        "{p}"
    );

    // The stored secret has the documented fields.
    let stored = app
        .secrets
        .read(&SecretPath::from_text(&format!("{TEAM}/user/root")))
        .await
        .unwrap()
        .expect("stored");
    assert_eq!(
        stored.password.as_ref().unwrap().expose(),
        p["password"].as_str().unwrap()
    );
    assert_eq!(
        stored.private_key.as_ref().unwrap().expose(),
        c["privateKey"].as_str().unwrap()
    );

    // No VM answer carries any of it.
    let vm = app
        .get(&format!("/api/virtual-machines/{key_vm}"), OWNER)
        .await
        .expect(200);
    let list = app
        .get(
            &format!("/api/teams/{TEAM}/projects/{PROJECT}/virtual-machines"),
            OWNER,
        )
        .await
        .expect(200);
    for body in [vm.json.to_string(), list.json.to_string()] {
        assert!(!body.contains(p["password"].as_str().unwrap()));
        assert!(!body.contains("PRIVATE KEY"));
        assert!(!body.contains("user/root"), "no secret path on the wire");
    }

    // Each read is recorded in the VM's history.
    let events: Vec<_> = app
        .dump()
        .await
        .into_iter()
        .filter(|i| {
            i["pk"].as_s().unwrap() == &format!("VM#{key_vm}")
                && i["sk"].as_s().unwrap().starts_with("EVENT#")
                && i["kind"].as_s().unwrap() == "credentials.read"
        })
        .collect();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["actor"].as_s().unwrap(), OWNER);
    assert_eq!(events[0]["kind"].as_s().unwrap(), "credentials.read");
}

#[tokio::test]
async fn azure_vms_log_in_as_azureuser() {
    let app = TestApp::spawn().await;
    let r = app
        .call(
            Method::POST,
            "/api/virtual-machines",
            Some(OWNER),
            Some(&azure_request("az-1")),
        )
        .await
        .expect(201);
    let c = app
        .get(&creds_path(&id_of(&r.json[0])), OWNER)
        .await
        .expect(200);
    assert_eq!(c.json["username"], "azureuser");
}

#[tokio::test]
async fn vm_scope_in_secrets_manager_one_login_per_vm_removed_on_delete() {
    let app = TestApp::spawn_opts(Options {
        scope: CredentialScope::Vm,
        ..Options::default()
    })
    .await;
    let mut body = spec_create_request();
    body["hostNames"] = json!(["vm-a", "vm-b"]);
    body["quantity"] = json!(2);
    let r = app
        .call(
            Method::POST,
            "/api/virtual-machines",
            Some(OWNER),
            Some(&body),
        )
        .await
        .expect(201);
    let (a, b) = (id_of(&r.json[0]), id_of(&r.json[1]));
    let prefix = app.secrets_prefix.clone().unwrap();
    let mut expected = vec![
        format!("{prefix}{TEAM}/vm/{a}/root"),
        format!("{prefix}{TEAM}/vm/{b}/root"),
    ];
    expected.sort();
    assert_eq!(app.secret_names().await, expected);

    // Tagged for the cleanup job.
    let sm = secretsmanager_client().await;
    let described = sm
        .describe_secret()
        .secret_id(format!("{prefix}{TEAM}/vm/{a}/root"))
        .send()
        .await
        .unwrap();
    let tags: std::collections::BTreeMap<_, _> = described
        .tags()
        .iter()
        .map(|t| (t.key().unwrap().to_string(), t.value().unwrap().to_string()))
        .collect();
    assert_eq!(tags["managed-by"], "vm-api");
    assert_eq!(tags["team"], TEAM);
    assert_eq!(tags["vm"], a);
    assert_eq!(tags["scope"], "vm");

    let ca = app.get(&creds_path(&a), OWNER).await.expect(200).json;
    let cb = app.get(&creds_path(&b), OWNER).await.expect(200).json;
    assert_ne!(ca["privateKey"], cb["privateKey"]);

    let (_sim, provisioner) = app.simulated();
    app.settle(&provisioner, &a).await;
    app.call(
        Method::DELETE,
        &format!("/api/virtual-machines/{a}"),
        Some(OWNER),
        None,
    )
    .await
    .expect(200);
    // Deleting: the login stays until the cloud teardown is done, so the VM can be reached.
    assert_eq!(app.secret_names().await.len(), 2);
    app.get(&creds_path(&a), OWNER).await.expect(200);
    app.settle(&provisioner, &a).await;
    assert_eq!(
        app.secret_names().await,
        vec![format!("{prefix}{TEAM}/vm/{b}/root")]
    );
    app.get(&creds_path(&a), OWNER)
        .await
        .expect_error(404, "VM_NOT_FOUND");
}

#[tokio::test]
async fn team_scope_keeps_the_team_login_when_a_vm_goes() {
    let app = TestApp::spawn().await;
    let a = create_one(&app, "a", 1).await;
    let b = create_one(&app, "b", 1).await;
    app.call(
        Method::DELETE,
        &format!("/api/virtual-machines/{a}"),
        Some(OWNER),
        None,
    )
    .await
    .expect(200);
    assert_eq!(app.secret_names().await.len(), 1);
    app.get(&creds_path(&b), OWNER).await.expect(200);
}

#[tokio::test]
async fn a_failed_vm_write_removes_the_logins_it_made_at_once() {
    let app = TestApp::spawn_opts(Options {
        scope: CredentialScope::Vm,
        ..Options::default()
    })
    .await;
    create_one(&app, "taken", 1).await;
    let before = app.dump().await;
    let mut body = spec_create_request();
    body["hostNames"] = json!(["fresh-1", "fresh-2", "taken"]);
    body["quantity"] = json!(3);
    app.call(
        Method::POST,
        "/api/virtual-machines",
        Some(OWNER),
        Some(&body),
    )
    .await
    .expect_error(409, "HOST_NAME_TAKEN");
    assert_eq!(app.dump().await, before, "no VM written");
    assert_eq!(
        app.secret_names().await.len(),
        1,
        "the three new logins were removed"
    );
}

#[tokio::test]
async fn credentials_go_to_the_vm_owner_and_team_owners_and_admins() {
    // In `vm` scope each VM has its own login (a team login is for owners and admins only:
    // authz_matrix has that test).
    let app = TestApp::spawn_opts(Options {
        scope: CredentialScope::Vm,
        ..Options::default()
    })
    .await;
    let (team, project) = app.seed_roles_team().await;
    let mut body = spec_create_request();
    body["team"] = json!(team);
    body["project"] = json!(project);
    let r = app
        .call(
            Method::POST,
            "/api/virtual-machines",
            Some("role-member"),
            Some(&body),
        )
        .await
        .expect(201);
    let mine = id_of(&r.json[0]);
    body["hostNames"] = json!(["owners-vm"]);
    let r = app
        .call(
            Method::POST,
            "/api/virtual-machines",
            Some("role-owner"),
            Some(&body),
        )
        .await
        .expect(201);
    let owners = id_of(&r.json[0]);

    for user in ["role-member", "role-owner", "role-admin"] {
        app.get(&creds_path(&mine), user).await.expect(200);
    }
    for user in ["role-member", "role-viewer"] {
        let r = app
            .get(&creds_path(&owners), user)
            .await
            .expect_error(403, "FORBIDDEN");
        assert!(r.json.get("privateKey").is_none());
    }
    app.get(&creds_path(&owners), "role-viewer")
        .await
        .expect_error(403, "FORBIDDEN");
    app.get(&creds_path(&owners), OTHER_OWNER)
        .await
        .expect_error(404, "VM_NOT_FOUND");
    app.call(Method::GET, &creds_path(&owners), None, None)
        .await
        .expect_error(401, "UNAUTHORIZED");
    app.get(&creds_path("nope"), "role-owner")
        .await
        .expect_error(400, "INVALID_PARAMETER");
    // Refusals are not recorded as reads.
    let reads = app
        .dump()
        .await
        .into_iter()
        .filter(|i| {
            i["sk"].as_s().unwrap().starts_with("EVENT#")
                && i["kind"].as_s().unwrap() == "credentials.read"
        })
        .count();
    assert_eq!(reads, 3);
}

#[tokio::test]
async fn vms_made_before_logins_existed_have_no_credentials() {
    let app = TestApp::spawn().await;
    let vm = demo_vm("old-vm", vmapi_models::VmStatus::Running);
    app.seed_vm(&vm).await;
    app.get(&creds_path(&vm.id.to_string()), OWNER)
        .await
        .expect_error(404, "CREDENTIALS_NOT_FOUND");
}

#[tokio::test]
async fn own_public_keys_are_checked_and_nothing_secret_is_stored() {
    let app = TestApp::spawn_opts(Options {
        scope: CredentialScope::Vm,
        ..Options::default()
    })
    .await;
    let before = app.dump().await;
    for (key, auth, field, needle) in [
        (RSA_1024, 1, "access.sshPublicKey", "at least 3072 bits"),
        (ECDSA, 1, "access.sshPublicKey", "not accepted"),
        ("ssh-ed25519 AAAA", 1, "access.sshPublicKey", "not an OpenSSH public key"),
        ("command=\"rm -rf /\" ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOAKEyfwmZRghqzj9JLL8xl+SfAN+bqcjzApJNJ0S2Ck", 1, "access.sshPublicKey", "not an OpenSSH public key"),
        (RSA_3072, 0, "access", "authMethod 1"),
    ] {
        let mut body = spec_create_request();
        body["access"] = json!({"sshPublicKey": key});
        body["authMethod"] = json!(auth);
        let r = app
            .call(Method::POST, "/api/virtual-machines", Some(OWNER), Some(&body))
            .await
            .expect_error(400, "VALIDATION_FAILED");
        assert_eq!(r.json["details"][0]["field"], field, "{}", r.json);
        assert!(r.json["message"].as_str().unwrap().contains(needle), "{}", r.json);
    }
    assert_eq!(app.dump().await, before);

    let mut body = spec_create_request();
    body["access"] = json!({"sshPublicKey": RSA_3072});
    let r = app
        .call(
            Method::POST,
            "/api/virtual-machines",
            Some(OWNER),
            Some(&body),
        )
        .await
        .expect(201);
    assert_eq!(r.json[0]["access"]["sshPublicKey"], RSA_3072);
    assert!(
        app.secret_names().await.is_empty(),
        "nothing secret to store"
    );
    let c = app
        .get(&creds_path(&id_of(&r.json[0])), OWNER)
        .await
        .expect(200)
        .json;
    assert_eq!(c["publicKey"], RSA_3072);
    assert!(
        c.get("privateKey").is_none() && c.get("password").is_none(),
        "{c}"
    );
}

#[tokio::test]
async fn plaintext_passwords_are_refused_without_being_echoed() {
    let app = TestApp::spawn().await;
    let before = app.dump().await;
    let value = "Sup3r-S3cret-Value!";
    for (path, at) in [
        ("password", json!({"password": value})),
        ("access.password", json!({"access": {"password": value}})),
        ("rootPassword", json!({"rootPassword": value})),
        (
            "access.privateKey",
            json!({"access": {"privateKey": value}}),
        ),
    ] {
        let mut body = spec_create_request();
        for (k, v) in at.as_object().unwrap() {
            body[k] = v.clone();
        }
        let r = app
            .call(
                Method::POST,
                "/api/virtual-machines",
                Some(OWNER),
                Some(&body),
            )
            .await
            .expect_error(400, "VALIDATION_FAILED");
        assert_eq!(r.json["details"][0]["field"], path, "{}", r.json);
        assert!(!r.json.to_string().contains(value));
        let wrapped = json!({ "data": body });
        app.call(
            Method::POST,
            "/api/virtual-machines",
            Some(OWNER),
            Some(&wrapped),
        )
        .await
        .expect_error(400, "VALIDATION_FAILED");
    }
    let id = create_one(&app, "patch-me", 1).await;
    let before_patch = app.dump().await;
    app.call(
        Method::PATCH,
        &format!("/api/virtual-machines/{id}"),
        Some(OWNER),
        Some(&json!({"name": "x", "password": value})),
    )
    .await
    .expect_error(400, "VALIDATION_FAILED");
    assert_eq!(app.dump().await, before_patch);
    assert!(!captured_logs().contains(value));
    drop(before);
}

/// A Secrets Manager client that cannot connect (a closed loopback port).
async fn unreachable_secrets_manager() -> Arc<dyn SecretStore> {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let sdk = vmapi_aws::sdk_config().await;
    let conf = aws_sdk_secretsmanager::config::Builder::from(&sdk)
        .endpoint_url(format!("http://127.0.0.1:{port}"))
        .build();
    Arc::new(SecretsManagerStore::new(
        aws_sdk_secretsmanager::Client::from_conf(conf),
        SecretsManagerConfig {
            prefix: "unreachable/".into(),
            kms_key_id: None,
            recovery_window_days: 0,
        },
        vmapi_models::DeploymentId::local(),
    ))
}

/// The API page's create request, answered 503 `SERVICE_UNAVAILABLE`.
pub(crate) async fn create_unavailable(app: &TestApp) -> Reply {
    app.call(
        Method::POST,
        "/api/virtual-machines",
        Some(OWNER),
        Some(&spec_create_request()),
    )
    .await
    .expect_error(503, "SERVICE_UNAVAILABLE")
}

#[tokio::test]
async fn an_unreachable_secret_store_is_503_and_writes_no_vm() {
    for scope in [CredentialScope::Team, CredentialScope::Vm] {
        let app = TestApp::spawn_opts(Options {
            scope,
            logins: Logins::Store(unreachable_secrets_manager().await),
            ..Options::default()
        })
        .await;
        let before = app.dump().await;
        let r = create_unavailable(&app).await;
        assert_eq!(r.headers["retry-after"], "2");
        assert!(
            r.json["message"].as_str().unwrap().contains("secret store"),
            "{}",
            r.json
        );
        assert!(r.json["requestId"].is_string());
        assert_eq!(app.dump().await, before, "no VM record without its secret");
    }
}

#[tokio::test]
async fn no_log_line_ever_contains_a_generated_secret() {
    let vault = OpenBao::shared().await;
    let apps = [
        TestApp::spawn().await,
        TestApp::spawn_opts(Options {
            scope: CredentialScope::Vm,
            ..Options::default()
        })
        .await,
        crate::vault::app(&vault, CredentialScope::Vm).await,
    ];
    let mut secrets = Vec::new();
    let mut ids = Vec::new();
    for app in &apps {
        for auth in [0, 1] {
            let id = create_one(app, &format!("log-{auth}"), auth).await;
            let c = app.get(&creds_path(&id), OWNER).await.expect(200).json;
            if auth == 0 {
                secrets.push(c["password"].as_str().unwrap().to_string());
            } else {
                let pem = c["privateKey"].as_str().unwrap().to_string();
                // Every line of the key's body, so no fragment slips through either.
                secrets.extend(
                    pem.lines()
                        .filter(|l| !l.starts_with("-----") && l.len() > 16)
                        .map(str::to_string),
                );
                secrets.push(pem);
            }
            app.call(
                Method::DELETE,
                &format!("/api/virtual-machines/{id}"),
                Some(OWNER),
                None,
            )
            .await
            .expect(200);
            ids.push(id);
        }
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    let logs = captured_logs();
    for id in &ids {
        assert!(
            logs.contains(id.as_str()),
            "the capture works: {id} was logged"
        );
    }
    assert!(logs.contains("credentials read"));
    // Every line of a request carries its request id, route, team and VM id (span fields).
    let line = logs
        .lines()
        .find(|l| {
            l.contains("request completed")
                && l.contains("/credentials")
                && l.contains(ids[0].as_str())
        })
        .expect("a completion line of a credentials read");
    for needle in ["request_id", "route", TEAM, ids[0].as_str()] {
        assert!(line.contains(needle), "{needle} missing from {line}");
    }
    for s in &secrets {
        assert!(!logs.contains(s.as_str()), "a secret reached the logs");
    }
    // Nor any escaped form (JSON log lines escape newlines).
    for s in &secrets {
        let escaped = serde_json::to_string(s).unwrap();
        assert!(!logs.contains(escaped.trim_matches('"')));
    }
}
