//! What every command works with: the settings, and the table's repository.

use std::sync::Arc;

use vmapi_http::state::dynamodb_client;
use vmapi_store_dynamodb::{DynamoRepository, RepositoryOptions};

use crate::stack::Settings;

/// What every command works with: the settings, and the table's repository built on first use.
pub struct Ctx {
    pub(crate) settings: Settings,
    repo: tokio::sync::OnceCell<Arc<DynamoRepository>>,
}

impl Ctx {
    /// A context over `settings`; the repository is built on first use.
    pub fn new(settings: Settings) -> Self {
        Ctx {
            settings,
            repo: tokio::sync::OnceCell::new(),
        }
    }

    /// The repository over the table.
    pub async fn repo(&self) -> Arc<DynamoRepository> {
        self.repo
            .get_or_init(|| async {
                Arc::new(DynamoRepository::new(
                    dynamodb_client().await,
                    &self.settings.table,
                    RepositoryOptions::default(),
                ))
            })
            .await
            .clone()
    }

    /// The onboarding use cases over the table.
    pub async fn accounts(&self) -> vmapi_core::Accounts {
        let repo = self.repo().await;
        vmapi_core::Accounts::new(repo.clone(), repo, Arc::new(vmapi_core::SystemClock))
    }
}
