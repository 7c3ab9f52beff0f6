//! AWS Secrets Manager backend: one secret per login, named `{prefix}{path}`.

use async_trait::async_trait;
use aws_sdk_secretsmanager::types::Tag;
use aws_sdk_secretsmanager::types::{Filter, FilterNameStringType};
use aws_sdk_secretsmanager::Client;
use uuid::Uuid;
use vmapi_aws::{map_sdk, Dependency};
use vmapi_core::{Created, Error, ManagedSecret, Result, SecretLabels, SecretStore};
use vmapi_models::{DeploymentId, LoginSecret, SecretPath, Sensitive, Timestamp};

use crate::config::SecretsManagerConfig;

/// Tag every secret of the service carries (`managed-by = vm-api`), so the cleanup job can
/// find logins whose VM is gone.
pub const MANAGED_BY_TAG: (&str, &str) = ("managed-by", "vm-api");

/// Logins in AWS Secrets Manager.
pub struct SecretsManagerStore {
    client: Client,
    config: SecretsManagerConfig,
    deployment: DeploymentId,
}

impl SecretsManagerStore {
    /// A store over `client` whose new secrets carry `deployment`'s tag.
    pub fn new(client: Client, config: SecretsManagerConfig, deployment: DeploymentId) -> Self {
        SecretsManagerStore {
            client,
            config,
            deployment,
        }
    }

    /// The secret name of a path.
    pub fn name(&self, path: &SecretPath) -> String {
        format!("{}{}", self.config.prefix, path)
    }
}

fn tag(key: &str, value: impl Into<String>) -> Tag {
    Tag::builder().key(key).value(value).build()
}

#[async_trait]
impl SecretStore for SecretsManagerStore {
    async fn read(&self, path: &SecretPath) -> Result<Option<LoginSecret>> {
        let Some(text) = self.read_document(path).await? else {
            return Ok(None);
        };
        let secret =
            serde_json::from_str::<LoginSecret>(text.expose()).map_err(|e| Error::Internal {
                // Not serde_json's message: it can quote the offending value.
                context: format!(
                    "the stored login at {path} is not a login secret: it is {}",
                    crate::json_problem(&e)
                ),
                source: None,
            })?;
        Ok(Some(secret))
    }

    async fn read_document(&self, path: &SecretPath) -> Result<Option<Sensitive>> {
        let out = match self
            .client
            .get_secret_value()
            .secret_id(self.name(path))
            .send()
            .await
        {
            Ok(out) => out,
            Err(e)
                if e.as_service_error().is_some_and(|se| {
                    // Absent, or scheduled for deletion (a soft-deleted login is gone for us).
                    se.is_resource_not_found_exception() || se.is_invalid_request_exception()
                }) =>
            {
                return Ok(None)
            }
            Err(e) => return Err(map_sdk(Dependency::SecretStore, "GetSecretValue", e)),
        };
        Ok(Some(Sensitive::new(out.secret_string.unwrap_or_default())))
    }

    async fn create(
        &self,
        path: &SecretPath,
        secret: &LoginSecret,
        labels: SecretLabels,
    ) -> Result<Created> {
        let value = Sensitive::new(
            serde_json::to_string(secret).map_err(|e| Error::internal("encoding a login", e))?,
        );
        let mut tags = vec![
            tag(MANAGED_BY_TAG.0, MANAGED_BY_TAG.1),
            tag(DeploymentId::TAG, self.deployment.as_str()),
            tag("team", labels.team.to_string()),
            tag("scope", if labels.vm.is_some() { "vm" } else { "team" }),
        ];
        if let Some(vm) = labels.vm {
            tags.push(tag("vm", vm.to_string()));
        }
        let result = self
            .client
            .create_secret()
            .name(self.name(path))
            .description("VM login managed by vm-api")
            .secret_string(value.expose())
            // The SDK retries a timed-out create with the same token, so it is idempotent.
            .client_request_token(Uuid::new_v4().to_string())
            .set_kms_key_id(self.config.kms_key_id.clone())
            .set_tags(Some(tags))
            .send()
            .await;
        match result {
            Ok(_) => Ok(Created::Created),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|se| se.is_resource_exists_exception()) =>
            {
                Ok(Created::AlreadyExists)
            }
            Err(e) => Err(map_sdk(Dependency::SecretStore, "CreateSecret", e)),
        }
    }

    async fn delete(&self, path: &SecretPath) -> Result<()> {
        let mut req = self.client.delete_secret().secret_id(self.name(path));
        req = match self.config.recovery_window_days {
            0 => req.force_delete_without_recovery(true),
            days => req.recovery_window_in_days(i64::from(days)),
        };
        match req.send().await {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error().is_some_and(|se| {
                    // Absent, or already scheduled for deletion.
                    se.is_resource_not_found_exception() || se.is_invalid_request_exception()
                }) =>
            {
                Ok(())
            }
            Err(e) => Err(map_sdk(Dependency::SecretStore, "DeleteSecret", e)),
        }
    }

    async fn list_managed(&self) -> Result<Vec<ManagedSecret>> {
        let mut found = Vec::new();
        let mut next: Option<String> = None;
        loop {
            let out = self
                .client
                .list_secrets()
                .filters(
                    Filter::builder()
                        .key(FilterNameStringType::Name)
                        .values(self.config.prefix.clone())
                        .build(),
                )
                .filters(
                    Filter::builder()
                        .key(FilterNameStringType::TagKey)
                        .values(MANAGED_BY_TAG.0)
                        .build(),
                )
                .max_results(100)
                .set_next_token(next.take())
                .send()
                .await
                .map_err(|e| map_sdk(Dependency::SecretStore, "ListSecrets", e))?;
            for entry in out.secret_list() {
                let ours = entry.tags().iter().any(|t| {
                    t.key() == Some(MANAGED_BY_TAG.0) && t.value() == Some(MANAGED_BY_TAG.1)
                });
                let path = entry
                    .name()
                    .and_then(|n| n.strip_prefix(self.config.prefix.as_str()))
                    .map(SecretPath::from_text);
                let Some(path) = path.filter(|p| ours && p.owner().is_some()) else {
                    continue;
                };
                let deployment = entry
                    .tags()
                    .iter()
                    .find(|t| t.key() == Some(DeploymentId::TAG))
                    .and_then(|t| t.value())
                    .map(str::to_string);
                found.push(ManagedSecret {
                    path,
                    deployment,
                    created_at: entry
                        .created_date()
                        .and_then(|d| Timestamp::from_unix_millis(d.secs() * 1000).ok()),
                });
            }
            match out.next_token() {
                Some(t) if !t.is_empty() => next = Some(t.to_string()),
                _ => break,
            }
        }
        Ok(found)
    }

    async fn adopt(&self, path: &SecretPath) -> Result<()> {
        self.client
            .tag_resource()
            .secret_id(self.name(path))
            .tags(tag(DeploymentId::TAG, self.deployment.as_str()))
            .send()
            .await
            .map_err(|e| map_sdk(Dependency::SecretStore, "TagResource", e))?;
        Ok(())
    }

    fn backend(&self) -> &'static str {
        "secretsmanager"
    }
}
