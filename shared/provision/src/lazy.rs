//! A driver built on first use. The Azure and Kraud.Cloud drivers need credentials from the
//! secret store; reading them at start-up put a secret-store round trip into every cold start,
//! also of runs that never touch those clouds. A `LazyDriver` reads them with the first call
//! that needs the cloud, once per process (a failed read is retried by the next call).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use async_trait::async_trait;
use tokio::sync::OnceCell;
use vmapi_core::cloud::{
    Capabilities, CloudDriver, CloudTarget, CloudVm, DriverError, DriverKind, ManagedResource,
    VmSpec,
};

type InitFuture = Pin<Box<dyn Future<Output = Result<Arc<dyn CloudDriver>, DriverError>> + Send>>;
type Init = Box<dyn Fn() -> InitFuture + Send + Sync>;

/// A [`CloudDriver`] whose real driver is built by the first call that needs it.
pub struct LazyDriver {
    kind: DriverKind,
    capabilities: Capabilities,
    init: Init,
    driver: OnceCell<Arc<dyn CloudDriver>>,
}

impl LazyDriver {
    /// A driver of `kind` with `capabilities` (known before it is built), built by `init`.
    pub fn new<F, Fut>(kind: DriverKind, capabilities: Capabilities, init: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Arc<dyn CloudDriver>, DriverError>> + Send + 'static,
    {
        LazyDriver {
            kind,
            capabilities,
            init: Box::new(move || Box::pin(init())),
            driver: OnceCell::new(),
        }
    }

    /// Whether the real driver has been built.
    pub fn is_built(&self) -> bool {
        self.driver.initialized()
    }

    async fn driver(&self) -> Result<&Arc<dyn CloudDriver>, DriverError> {
        self.driver.get_or_try_init(|| (self.init)()).await
    }
}

#[async_trait]
impl CloudDriver for LazyDriver {
    fn kind(&self) -> DriverKind {
        self.kind
    }

    fn capabilities(&self) -> Capabilities {
        self.capabilities.clone()
    }

    async fn create(&self, spec: &VmSpec) -> Result<CloudVm, DriverError> {
        self.driver().await?.create(spec).await
    }

    async fn get(&self, target: &CloudTarget) -> Result<Option<CloudVm>, DriverError> {
        self.driver().await?.get(target).await
    }

    async fn start(&self, target: &CloudTarget) -> Result<(), DriverError> {
        self.driver().await?.start(target).await
    }

    async fn stop(&self, target: &CloudTarget) -> Result<(), DriverError> {
        self.driver().await?.stop(target).await
    }

    async fn reboot(&self, target: &CloudTarget) -> Result<(), DriverError> {
        self.driver().await?.reboot(target).await
    }

    async fn delete(&self, target: &CloudTarget) -> Result<(), DriverError> {
        self.driver().await?.delete(target).await
    }

    async fn list_managed(&self, region: &str) -> Result<Vec<ManagedResource>, DriverError> {
        self.driver().await?.list_managed(region).await
    }

    async fn adopt(&self, resource: &ManagedResource) -> Result<(), DriverError> {
        self.driver().await?.adopt(resource).await
    }

    async fn apply_rules(
        &self,
        target: &CloudTarget,
        rules: &[vmapi_models::SecurityRule],
    ) -> Result<(), DriverError> {
        self.driver().await?.apply_rules(target, rules).await
    }

    async fn resize(
        &self,
        target: &CloudTarget,
        size: &str,
        running: bool,
    ) -> Result<vmapi_core::cloud::ResizeProgress, DriverError> {
        self.driver().await?.resize(target, size, running).await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    /// A driver that knows no VM.
    struct Empty;

    #[async_trait]
    impl CloudDriver for Empty {
        fn kind(&self) -> DriverKind {
            DriverKind::Kraud
        }
        fn capabilities(&self) -> Capabilities {
            Capabilities {
                confidential: vec![],
                native_idempotency: false,
                password_login: false,
                resize: false,
            }
        }
        async fn create(&self, _: &VmSpec) -> Result<CloudVm, DriverError> {
            Err(DriverError::InvalidSpec("empty".into()))
        }
        async fn get(&self, _: &CloudTarget) -> Result<Option<CloudVm>, DriverError> {
            Ok(None)
        }
        async fn start(&self, _: &CloudTarget) -> Result<(), DriverError> {
            Ok(())
        }
        async fn stop(&self, _: &CloudTarget) -> Result<(), DriverError> {
            Ok(())
        }
        async fn reboot(&self, _: &CloudTarget) -> Result<(), DriverError> {
            Ok(())
        }
        async fn delete(&self, _: &CloudTarget) -> Result<(), DriverError> {
            Ok(())
        }
        async fn list_managed(&self, _: &str) -> Result<Vec<ManagedResource>, DriverError> {
            Ok(vec![])
        }
    }

    fn caps() -> Capabilities {
        Capabilities {
            confidential: vec![],
            native_idempotency: true,
            password_login: true,
            resize: false,
        }
    }

    #[tokio::test]
    async fn builds_once_on_first_use_and_retries_a_failed_build() {
        let calls = Arc::new(AtomicU32::new(0));
        let counter = calls.clone();
        let lazy = LazyDriver::new(DriverKind::Kraud, caps(), move || {
            let n = counter.fetch_add(1, Ordering::SeqCst);
            async move {
                if n == 0 {
                    Err(DriverError::Unreachable("secret store".into()))
                } else {
                    Ok(Arc::new(Empty) as Arc<dyn CloudDriver>)
                }
            }
        });
        // Nothing is read before a call needs the cloud; kind and capabilities need no build.
        assert_eq!(lazy.kind(), DriverKind::Kraud);
        assert!(lazy.capabilities().password_login);
        assert_eq!(calls.load(Ordering::SeqCst), 0);
        assert!(!lazy.is_built());

        let target = CloudTarget {
            vm_id: vmapi_models::VmId::new(),
            region: "berlin".into(),
            provider_id: None,
        };
        assert_eq!(
            lazy.get(&target).await,
            Err(DriverError::Unreachable("secret store".into()))
        );
        assert!(!lazy.is_built());
        assert_eq!(lazy.get(&target).await, Ok(None));
        assert_eq!(lazy.start(&target).await, Ok(()));
        assert!(lazy.is_built());
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }
}
