//! The admin API from a test: a working key, and requests that carry it.

use std::sync::Arc;

use reqwest::Method;
use vmapi_core::{AdminKeys, SystemClock};
use vmapi_models::AdminKeyName;

use crate::app::{Reply, TestApp};

impl TestApp {
    /// A working admin key named `name` (as `vmctl admin-key create` makes one), with the
    /// keys' use case to revoke it.
    pub async fn admin_key(&self, name: &str) -> (AdminKeys, String) {
        let keys = AdminKeys::new(self.repo.clone(), Arc::new(SystemClock));
        let (_, key) = keys
            .create(AdminKeyName::parse(name).unwrap(), None)
            .await
            .unwrap();
        (keys, key)
    }

    /// `method path` with `key` in the `Api-Key` header and no user token.
    pub async fn as_admin(&self, method: Method, path: &str, key: &str) -> Reply {
        self.call_with(method, path, None, None, &[("api-key", key.as_bytes())])
            .await
    }
}
