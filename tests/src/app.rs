//! A running API over a table of its own: `TestApp`, its replies and its helpers.

use std::collections::HashMap;
use std::sync::Arc;
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
use vmapi_models::{CredentialScope, Member, Role, Team, TeamId, UserId, VmId, VmRecord};
use vmapi_secrets::config::SecretsManagerConfig;
use vmapi_secrets::{SecretsManagerStore, VaultAuth, VaultConfig, VaultStore};
use vmapi_store_dynamodb::{create_table, DynamoRepository, RepositoryOptions};

use crate::common::*;
use crate::logs::capture_logs;
use crate::options::*;

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
            .find(|l| l.region.datacenter.name == price.location_name)
            .map(|l| &l.region)
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
