//! VM records, driver specs, a DynamoDB request counter and direct requests into the routers.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use vmapi_http::auth::mint_local_token;
use vmapi_http::{AppState, Config};
use vmapi_models::{HostName, Timestamp, UserId, VmId, VmRecord, VmStatus};
use vmapi_store_dynamodb::DynamoRepository;

use crate::common::*;

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
        billing: None,
        resize_to: None,
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

/// `vm` moved to the AWS demo VM of `data/demo.json` (its id and catalog entries): the VM
/// `events/resize-vm.json` names, since Kraud.Cloud, the other events' cloud, cannot resize.
pub fn as_aws_demo_vm(vm: &VmRecord) -> VmRecord {
    let seed = demo_seed();
    let aws = seed
        .demo_vms
        .iter()
        .find(|d| d.request.cloud_provider.to_string().ends_with("9686"))
        .expect("data/demo.json has an AWS demo VM");
    let mut on_aws = vm.clone();
    on_aws.id = aws.id;
    on_aws.name = HostName::parse("event-aws-vm").expect("a host name");
    on_aws.cloud_provider = aws.request.cloud_provider;
    on_aws.provider = aws.request.provider;
    on_aws.size = aws.request.size;
    on_aws.price = aws.request.price;
    on_aws.region = aws.request.region.clone();
    on_aws.image = aws.request.image.clone();
    // Its own rules (the copied ones' pointers belong to `vm`).
    on_aws.rules = Vec::new();
    on_aws.rules_revision = 0;
    on_aws.rules_applied = 0;
    on_aws
}
