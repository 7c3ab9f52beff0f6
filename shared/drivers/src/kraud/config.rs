//! The Kraud driver's configuration ([`KraudConfig`]), its endpoint and zones, and the
//! timeouts and limits it uses.

use std::time::Duration;

use vmapi_models::{DeploymentId, Sensitive};

/// Label on every namespace the service creates (beside its deployment's
/// [`DeploymentId::TAG`]).
pub const MANAGED_BY: (&str, &str) = ("managed-by", "vm-api");

/// The public API endpoint.
pub const DEFAULT_BASE_URL: &str = "https://api.kraudcloud.com";

/// Zone used when the VM's region names no Kraud zone (`uca`, Berlin).
pub const DEFAULT_ZONE: &str = "uca";

/// Zones the driver knows by name. Regions outside this list (and its aliases) go to
/// [`DEFAULT_ZONE`].
pub const KNOWN_ZONES: &[&str] = &["uca", "yca", "lmu"];

/// Docker Engine API version prefix Kraud serves.
pub(super) const DOCKER_API: &str = "v1.41";

/// Timeout of one HTTP request (and of connecting).
pub(super) const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Seconds a Docker stop waits for a clean shutdown before the cloud kills the pod.
pub(super) const STOP_GRACE_SECS: u64 = 20;

/// How long `create` waits for the launched pod to show up, and how often it looks.
pub(super) const LAUNCH_WAIT: Duration = Duration::from_secs(8);
pub(super) const LAUNCH_POLL: Duration = Duration::from_secs(1);

/// Longest provider text kept in an error message.
pub(super) const MAX_MESSAGE: usize = 300;

/// Configuration of the Kraud.Cloud driver.
#[derive(Clone, Debug)]
pub struct KraudConfig {
    /// API token (sent as `Authorization: Bearer …`; never logged).
    pub token: Sensitive,
    /// API base URL, normally [`DEFAULT_BASE_URL`] (tests point it at a local server).
    pub base_url: String,
    /// This deployment: namespaces are labelled with it, and only those that carry it are this
    /// deployment's (default `local`).
    pub deployment: DeploymentId,
}

impl KraudConfig {
    /// A configuration for the public endpoint.
    pub fn new(token: Sensitive) -> Self {
        KraudConfig {
            token,
            base_url: DEFAULT_BASE_URL.to_string(),
            deployment: DeploymentId::local(),
        }
    }
}
