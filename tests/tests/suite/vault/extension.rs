//! `VAULT_AUTH=lambda-extension`: the functions talk to the Vault Lambda Extension's local proxy
//! (which adds its own token and forwards to the Vault it logged in to), while `VAULT_ADDR`, the
//! extension's own setting, names the real Vault. Here the proxy is a forwarding server that
//! adds OpenBao's root token, as the extension does with its login's.

use std::sync::{Arc, Mutex};

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::HeaderMap;
use axum::response::Response;
use vmapi_core::credentials::generate_team_login;
use vmapi_core::SecretLabels;
use vmapi_models::{AuthMethod, CredentialScope, DeploymentId, TeamId, VmId};
use vmapi_secrets::{Backend, SecretsConfig};
use vmapi_tests::vault::OpenBao;

/// What the proxy saw of each request: the token and namespace the function sent.
type Seen = Arc<Mutex<Vec<(Option<String>, Option<String>)>>>;

#[derive(Clone)]
struct Proxy {
    vault: String,
    token: String,
    seen: Seen,
    client: reqwest::Client,
}

async fn forward(State(p): State<Proxy>, req: Request) -> Response {
    let header = |h: &HeaderMap, name: &str| h.get(name).map(|v| v.to_str().unwrap().to_string());
    let (parts, body) = req.into_parts();
    p.seen.lock().unwrap().push((
        header(&parts.headers, "x-vault-token"),
        header(&parts.headers, "x-vault-namespace"),
    ));
    let body: Bytes = axum::body::to_bytes(body, 1 << 20).await.unwrap();
    let url = format!("{}{}", p.vault, parts.uri);
    let upstream = p
        .client
        .request(parts.method, url)
        .header("x-vault-token", &p.token)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = upstream.status();
    let bytes = upstream.bytes().await.unwrap();
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Body::from(bytes))
        .unwrap()
}

async fn start_proxy(vault: &OpenBao) -> (String, Seen) {
    let seen: Seen = Arc::default();
    let state = Proxy {
        vault: vault.address.clone(),
        token: vault.token.clone(),
        seen: seen.clone(),
        client: reqwest::Client::new(),
    };
    let app = axum::Router::new().fallback(forward).with_state(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (address, seen)
}

#[tokio::test]
async fn the_extension_mode_goes_through_the_proxy_whatever_vault_addr_says() {
    let vault = OpenBao::shared().await;
    let (proxy, seen) = start_proxy(&vault).await;
    // As the template sets it: VAULT_ADDR for the extension (unreachable from here, so a
    // request sent there would fail), the proxy's address only where it is not the default.
    let env = [
        ("SECRET_BACKEND", "vault"),
        ("VAULT_AUTH", "lambda-extension"),
        ("VAULT_ADDR", "https://vault.invalid:8200"),
        ("VAULT_PROXY_ADDR", proxy.as_str()),
        ("VAULT_MOUNT", vault.mount.as_str()),
        ("VAULT_NAMESPACE", ""),
        ("VAULT_AUTH_PROVIDER", "aws"),
        ("VAULT_AUTH_ROLE", "vm-api"),
    ];
    let config = SecretsConfig::read(&vmapi_config::Env::from_pairs(&env)).unwrap();
    assert!(matches!(&config.backend, Backend::Vault(v) if v.address == proxy));
    assert_eq!(config.deployment, DeploymentId::local());
    let store = vmapi_secrets::build(&config, &vmapi_aws::sdk_config().await);

    let team: TeamId = "6548a41f38406c14db33b61e".parse().unwrap();
    let path = CredentialScope::Team.path(team, VmId::parse("654a11e60b23ef1b0f36d44e").unwrap());
    let login = generate_team_login(team, AuthMethod::Password).unwrap();
    let labels = SecretLabels { team, vm: None };
    store.create(&path, &login, labels).await.unwrap();
    let read = store
        .read(&path)
        .await
        .unwrap()
        .expect("the login is there");
    assert_eq!(read, login);
    assert!(
        vault.latest(&path.to_string()).await.is_some(),
        "stored in Vault"
    );

    let seen = seen.lock().unwrap();
    assert!(
        seen.len() >= 2,
        "every call went through the proxy: {seen:?}"
    );
    for (token, namespace) in seen.iter() {
        assert!(
            token.as_deref().unwrap_or("").is_empty(),
            "the function sends no token of its own: {token:?}"
        );
        assert_eq!(namespace, &None, "an empty VAULT_NAMESPACE is no namespace");
    }
}
