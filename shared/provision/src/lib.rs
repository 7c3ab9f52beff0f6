//! Runs the provisioner: builds the drivers from configuration (real clouds, or the simulated
//! one where asked for, announced at start-up), and feeds it from the DynamoDB Stream, as a
//! Lambda handler or, locally, by polling DynamoDB Local's stream.

pub mod cleanup;
pub mod config;
pub mod lambda;
pub mod lazy;
#[cfg(feature = "local-stream")]
pub mod stream;

use std::future::Future;
use std::sync::Arc;

use vmapi_core::cloud::{Capabilities, CloudDriver, DriverError, DriverKind};
use vmapi_core::{Drivers, ErrorChain, Provisioner, Repository, SecretStore, SystemClock};
use vmapi_drivers::aws::AwsDriver;
use vmapi_drivers::azure::{AzureConfig, AzureDriver};
use vmapi_drivers::kraud::{KraudConfig, KraudDriver};
use vmapi_drivers::SimulatedDriver;
use vmapi_models::{CloudKind, SecretPath, Sensitive};

pub use config::{Choice, ProvisionConfig};
pub use lazy::LazyDriver;

/// The Azure service principal as stored in the secret store (JSON).
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct AzureCredentials {
    tenant_id: String,
    client_id: String,
    client_secret: String,
    subscription_id: String,
    resource_group: String,
    #[serde(default)]
    management_base: Option<String>,
    #[serde(default)]
    login_base: Option<String>,
}

/// The Kraud.Cloud token as stored in the secret store (JSON).
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct KraudCredentials {
    token: String,
    #[serde(default)]
    base_url: Option<String>,
}

/// Reads and parses a cloud-credential document; errors name the path, never the content. An
/// unreachable secret store is retryable; a missing or malformed document is not.
async fn read_credentials<T: serde::de::DeserializeOwned>(
    secrets: &Arc<dyn SecretStore>,
    path: &str,
) -> Result<T, DriverError> {
    let doc = match secrets.read_document(&SecretPath::from_text(path)).await {
        Ok(Some(doc)) => doc,
        Ok(None) => {
            return Err(DriverError::Unauthorized(format!(
                "cloud credentials {path} are not in the secret store"
            )))
        }
        // The store's error with its cause (an Unavailable's own text is only the generic
        // message users read); neither kind of driver error is shown to users.
        Err(e @ vmapi_core::Error::Unavailable { .. }) => {
            return Err(DriverError::Unreachable(format!(
                "reading cloud credentials {path}: {}",
                ErrorChain(&e)
            )))
        }
        Err(e) => {
            return Err(DriverError::Unauthorized(format!(
                "reading cloud credentials {path}: {}",
                ErrorChain(&e)
            )))
        }
    };
    serde_json::from_str(doc.expose()).map_err(|e| {
        DriverError::Unauthorized(format!(
            "cloud credentials {path} are not the expected JSON (line {}, column {})",
            e.line(),
            e.column()
        ))
    })
}

/// Builds the drivers the configuration names and logs which cloud is served by what. The Azure
/// and Kraud.Cloud drivers are built lazily (see [`LazyDriver`]): start-up does no network I/O,
/// and a cloud whose credentials cannot be read fails only its own VMs' operations, with a
/// reason, while every other cloud goes on.
pub fn drivers(
    config: &ProvisionConfig,
    sdk: &aws_config::SdkConfig,
    secrets: &Arc<dyn SecretStore>,
) -> Drivers {
    let simulated = Arc::new(
        SimulatedDriver::new(config.simulated_delay).for_deployment(config.deployment.clone()),
    );
    let pick = |choice: Choice, real: &dyn Fn() -> Arc<dyn CloudDriver>| match choice {
        Choice::Real => real(),
        Choice::Simulated => simulated.clone() as Arc<dyn CloudDriver>,
    };
    let drivers = Drivers::new()
        .with(
            CloudKind::Aws,
            pick(config.aws, &|| {
                Arc::new(AwsDriver::new(sdk.clone(), config.deployment.clone()))
            }),
        )
        .with(
            CloudKind::Azure,
            pick(config.azure, &|| {
                let caps = AzureDriver::static_capabilities();
                lazy(DriverKind::Azure, caps, config, secrets, azure_driver)
            }),
        )
        .with(
            CloudKind::Kraud,
            pick(config.kraud, &|| {
                let caps = KraudDriver::static_capabilities();
                lazy(DriverKind::Kraud, caps, config, secrets, kraud_driver)
            }),
        );
    tracing::info!(drivers = %drivers.describe(), "cloud drivers (simulated ones are for local development only; Azure and Kraud.Cloud read their credentials on first use)");
    drivers
}

/// A driver that reads its cloud's credentials from `secrets` with `build` on first use
/// ([`LazyDriver`]); a failed build is logged once per attempt (the operation's error carries
/// only a generic reason to users).
fn lazy<Fut>(
    kind: DriverKind,
    capabilities: Capabilities,
    config: &ProvisionConfig,
    secrets: &Arc<dyn SecretStore>,
    build: fn(ProvisionConfig, Arc<dyn SecretStore>) -> Fut,
) -> Arc<dyn CloudDriver>
where
    Fut: Future<Output = Result<Arc<dyn CloudDriver>, DriverError>> + Send + 'static,
{
    let (config, secrets) = (config.clone(), secrets.clone());
    Arc::new(LazyDriver::new(kind, capabilities, move || {
        let built = build(config.clone(), secrets.clone());
        async move {
            let built = built.await;
            if let Err(e) = &built {
                tracing::error!(cloud = %kind, error = %e, "cannot build the cloud driver; this cloud's VM operations fail until its credentials can be read");
            }
            built
        }
    }))
}

async fn azure_driver(
    config: ProvisionConfig,
    secrets: Arc<dyn SecretStore>,
) -> Result<Arc<dyn CloudDriver>, DriverError> {
    let path = config.cloud_secret_path(&config.azure_credentials_secret);
    let doc: AzureCredentials = read_credentials(&secrets, &path).await?;
    let mut azure = AzureConfig::new(
        doc.tenant_id,
        doc.client_id,
        Sensitive::new(doc.client_secret),
        doc.subscription_id,
        doc.resource_group,
    );
    if let Some(base) = doc.management_base {
        azure.management_base = base;
    }
    if let Some(base) = doc.login_base {
        azure.login_base = base;
    }
    azure.deployment = config.deployment.clone();
    let driver = AzureDriver::new(azure)
        .map_err(|e| DriverError::Unauthorized(format!("Azure driver: {e}")))?;
    Ok(Arc::new(driver))
}

async fn kraud_driver(
    config: ProvisionConfig,
    secrets: Arc<dyn SecretStore>,
) -> Result<Arc<dyn CloudDriver>, DriverError> {
    let path = config.cloud_secret_path(&config.kraud_credentials_secret);
    let doc: KraudCredentials = read_credentials(&secrets, &path).await?;
    let mut kraud = KraudConfig::new(Sensitive::new(doc.token));
    kraud.deployment = config.deployment.clone();
    if let Some(base) = doc.base_url {
        kraud.base_url = base;
    }
    let driver = KraudDriver::new(kraud)
        .map_err(|e| DriverError::Unauthorized(format!("Kraud.Cloud driver: {e}")))?;
    Ok(Arc::new(driver))
}

/// The store of the clouds' own credentials: the logins' backend, without the logins' name
/// prefix (the cloud paths carry their own, [`ProvisionConfig::cloud_secret_path`]).
pub fn cloud_store(
    secrets: &vmapi_secrets::SecretsConfig,
    sdk: &aws_config::SdkConfig,
) -> Arc<dyn SecretStore> {
    let mut config = secrets.clone();
    if let vmapi_secrets::Backend::SecretsManager(sm) = &mut config.backend {
        sm.prefix = String::new();
    }
    vmapi_secrets::build(&config, sdk)
}

/// The provisioner over a repository and the logins' secret store; the drivers read the
/// clouds' credentials through [`cloud_store`].
pub async fn provisioner(
    config: &ProvisionConfig,
    secrets_config: &vmapi_secrets::SecretsConfig,
    sdk: &aws_config::SdkConfig,
    repo: Arc<dyn Repository>,
    secrets: Arc<dyn SecretStore>,
) -> Result<Provisioner, vmapi_config::ConfigError> {
    let drivers = drivers(config, sdk, &cloud_store(secrets_config, sdk));
    Ok(Provisioner::new(
        repo,
        Arc::new(SystemClock),
        drivers,
        Some(secrets),
        config.options.clone(),
    ))
}

/// What the provisioner and cleanup functions build once per cold start from `env`: the
/// table's repository and the provisioner over it.
pub async fn from_env(
    env: &vmapi_config::Env<'_>,
) -> Result<(Arc<vmapi_store_dynamodb::DynamoRepository>, Provisioner), vmapi_config::ConfigError> {
    let secrets_config = vmapi_secrets::SecretsConfig::read(env)?;
    let config = ProvisionConfig::read(env)?;
    let sdk = vmapi_aws::sdk_config().await;
    let repo = Arc::new(vmapi_store_dynamodb::DynamoRepository::new(
        aws_sdk_dynamodb::Client::new(&sdk),
        env.string(&vmapi_aws::settings::TABLE_NAME)
            .unwrap_or_default(),
        vmapi_store_dynamodb::RepositoryOptions::default(),
    ));
    let secrets = vmapi_secrets::build(&secrets_config, &sdk);
    let provisioner = provisioner(&config, &secrets_config, &sdk, repo.clone(), secrets).await?;
    Ok((repo, provisioner))
}

#[cfg(test)]
mod tests {
    use async_trait::async_trait;
    use vmapi_core::{Created, Error, ManagedSecret, SecretLabels};
    use vmapi_models::LoginSecret;

    use super::*;

    /// A secret store whose documents come from a function (the drivers only read those).
    struct Documents<F>(F);

    #[async_trait]
    impl<F> SecretStore for Documents<F>
    where
        F: Fn(&SecretPath) -> vmapi_core::Result<Option<Sensitive>> + Send + Sync,
    {
        async fn read(&self, _: &SecretPath) -> vmapi_core::Result<Option<LoginSecret>> {
            unreachable!("the drivers read only documents")
        }
        async fn create(
            &self,
            _: &SecretPath,
            _: &LoginSecret,
            _: SecretLabels,
        ) -> vmapi_core::Result<Created> {
            unreachable!("the drivers only read")
        }
        async fn delete(&self, _: &SecretPath) -> vmapi_core::Result<()> {
            unreachable!("the drivers only read")
        }
        async fn read_document(&self, path: &SecretPath) -> vmapi_core::Result<Option<Sensitive>> {
            (self.0)(path)
        }
        async fn list_managed(&self) -> vmapi_core::Result<Vec<ManagedSecret>> {
            unreachable!("the drivers list no secrets")
        }
        fn backend(&self) -> &'static str {
            "documents"
        }
    }

    #[tokio::test]
    async fn azure_and_kraud_read_their_credentials_on_first_use() {
        let config = ProvisionConfig::read(&vmapi_config::Env::from_pairs(&[
            ("AWS_DRIVER", "simulated"),
            ("CLOUD_SECRETS_PREFIX", "clouds/"),
        ]))
        .unwrap();
        let reads = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
        let seen = reads.clone();
        let store: Arc<dyn SecretStore> = Arc::new(Documents(move |path: &SecretPath| {
            seen.lock().unwrap().push(path.as_str().to_string());
            Ok(None)
        }));
        let drivers = drivers(&config, &aws_config::SdkConfig::builder().build(), &store);
        assert_eq!(
            drivers.get(CloudKind::Aws).unwrap().kind(),
            DriverKind::Simulated
        );
        let target = vmapi_core::cloud::CloudTarget {
            vm_id: vmapi_models::VmId::new(),
            region: "r".into(),
            provider_id: None,
        };
        for (cloud, kind, path) in [
            (CloudKind::Azure, DriverKind::Azure, "clouds/azure"),
            (CloudKind::Kraud, DriverKind::Kraud, "clouds/kraud"),
        ] {
            let driver = drivers.get(cloud).unwrap();
            assert_eq!(driver.kind(), kind);
            assert!(reads.lock().unwrap().iter().all(|p| p != path), "{path}");
            let e = driver.get(&target).await.unwrap_err();
            assert!(
                matches!(&e, DriverError::Unauthorized(m) if m.contains(path)),
                "{e:?}"
            );
            assert_eq!(reads.lock().unwrap().last().map(String::as_str), Some(path));
        }
    }

    async fn read(fail: fn() -> Error) -> DriverError {
        let store: Arc<dyn SecretStore> = Arc::new(Documents(move |_: &SecretPath| Err(fail())));
        read_credentials::<KraudCredentials>(&store, "vm-api-clouds/kraud")
            .await
            .err()
            .expect("the read fails")
    }

    #[tokio::test]
    async fn an_unreadable_credential_secret_names_the_store_error() {
        // Unreachable: the store's cause, not only its generic "unavailable" message.
        let e = read(|| {
            vmapi_aws::unavailable(
                vmapi_aws::Dependency::SecretStore,
                "GetSecretValue",
                std::io::Error::new(
                    std::io::ErrorKind::ConnectionRefused,
                    "Connection refused (os error 111)",
                ),
            )
        })
        .await;
        let DriverError::Unreachable(m) = &e else {
            panic!("{e:?}")
        };
        assert!(
            m.starts_with("reading cloud credentials vm-api-clouds/kraud: "),
            "{m}"
        );
        assert!(
            m.contains("Secrets Manager GetSecretValue: Connection refused (os error 111)"),
            "{m}"
        );

        // Refused: the store's answer, not only "internal error: <where>".
        let e = read(|| {
            Error::internal(
                "Secrets Manager GetSecretValue",
                "AccessDeniedException: not authorized to perform secretsmanager:GetSecretValue",
            )
        })
        .await;
        let DriverError::Unauthorized(m) = &e else {
            panic!("{e:?}")
        };
        assert!(
            m.contains("AccessDeniedException: not authorized to perform"),
            "{m}"
        );
        // Users read a generic reason either way.
        assert_eq!(
            e.user_reason(),
            "the service's credentials for this cloud were refused; contact the operator"
        );
    }
}
