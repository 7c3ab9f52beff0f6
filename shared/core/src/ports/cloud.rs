//! The cloud-driver port: one trait the provisioner drives for Kraud.Cloud, Azure and AWS, a
//! normalized state (with the provider's raw state beside it) and one error taxonomy.

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use vmapi_models::{ConfidentialTech, SecurityRule, Sensitive, TeamId, Timestamp, VmId};

/// Which driver serves a cloud.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DriverKind {
    /// Kraud.Cloud REST API.
    Kraud,
    /// Azure Resource Manager.
    Azure,
    /// AWS EC2.
    Aws,
    /// In-memory simulation for local development only.
    Simulated,
}

impl DriverKind {
    /// Lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            DriverKind::Kraud => "kraud",
            DriverKind::Azure => "azure",
            DriverKind::Aws => "aws",
            DriverKind::Simulated => "simulated",
        }
    }
}

impl fmt::Display for DriverKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The login the cloud installs: public material only (public keys, a password hash).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoginSpec {
    /// User to create or configure.
    pub username: String,
    /// Authorized public keys (OpenSSH lines).
    pub public_keys: Vec<String>,
    /// SHA-512 crypt hash of the password, for password logins.
    pub password_hash: Option<String>,
    /// The plaintext password, only for clouds whose API takes it (Azure `adminPassword`);
    /// never put into user data.
    pub password: Option<Sensitive>,
}

/// Everything a driver needs to create a VM.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VmSpec {
    /// Our VM id: drivers derive names, tags and idempotency keys from it.
    pub vm_id: VmId,
    /// Team (for tags).
    pub team: TeamId,
    /// Host name.
    pub name: String,
    /// Region or datacenter name, e.g. `eu-west-1`, `westeurope`, `berlin`.
    pub region: String,
    /// Provider size name, e.g. `m6a.large`.
    pub size: String,
    /// Memory in GB (clouds that size by memory).
    pub memory_gb: u32,
    /// vCPUs.
    pub vcpus: u32,
    /// Disk in GB.
    pub disk_gb: u32,
    /// Cloud image reference (AMI id, ARM image URN, OCI image), from the catalog.
    pub image: String,
    /// The login to install.
    pub login: LoginSpec,
    /// Confidential-computing technology the size requires, if any.
    pub confidential: Option<ConfidentialTech>,
    /// The VM's security rules: create sets the cloud's firewall up with them (as
    /// [`CloudDriver::apply_rules`] would), also when it finds the VM an earlier attempt made.
    pub rules: Vec<SecurityRule>,
}

impl VmSpec {
    /// The idempotency key of the create: the same for every retry of this VM's create.
    pub fn idempotency_key(&self) -> String {
        idempotency_key(self.vm_id)
    }

    /// The target of later calls.
    pub fn target(&self) -> CloudTarget {
        CloudTarget {
            vm_id: self.vm_id,
            region: self.region.clone(),
            provider_id: None,
        }
    }
}

/// The idempotency key of a VM's create (`vm-api-{vmId}`, 31 ASCII characters).
pub fn idempotency_key(vm: VmId) -> String {
    format!("vm-api-{vm}")
}

/// Which cloud VM a call is about. Drivers find it by our VM id (tag, deterministic name or
/// namespace) when the provider id is not known yet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CloudTarget {
    /// Our VM id.
    pub vm_id: VmId,
    /// Region or datacenter.
    pub region: String,
    /// The provider's id (instance id, resource name, namespace), once known.
    pub provider_id: Option<String>,
}

/// A VM the service created in a cloud, found by its tags, name or namespace (the cleanup job's
/// reconciliation lists these to remove the ones whose VM record is gone), or a firewall of
/// one left without its VM.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ManagedResource {
    /// What it is.
    pub kind: ManagedKind,
    /// Where it is; `vm_id` is the id it was created for. [`CloudDriver::delete`] of it
    /// removes it.
    pub target: CloudTarget,
    /// When the cloud created it, if the cloud says.
    pub created_at: Option<Timestamp>,
    /// The provider's own state text.
    pub raw_state: String,
    /// The value of its [`vmapi_models::DeploymentId::TAG`] tag or label (`None`: untagged,
    /// made before deployment ids). Cleanup touches only its own deployment's.
    pub deployment: Option<String>,
}

/// What a [`ManagedResource`] is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ManagedKind {
    /// A VM (with what goes with it).
    Vm,
    /// A VM's firewall (an AWS security group, an Azure NSG) whose VM is gone, by the
    /// provider's id: what a teardown cut short leaves behind.
    Firewall(String),
}

/// A VM's state as the cloud reports it, normalized.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CloudState {
    /// Being created, not yet booted.
    Provisioning,
    /// Booting after a start.
    Starting,
    /// Powered on.
    Running,
    /// Shutting down.
    Stopping,
    /// Off.
    Stopped,
    /// Teardown running.
    Deleting,
    /// Gone.
    Deleted,
    /// The provider says it failed.
    Failed(String),
    /// Unmapped or transient.
    Unknown,
}

impl CloudState {
    /// Whether the VM is on its way somewhere (worth polling again).
    pub fn is_transitional(&self) -> bool {
        matches!(
            self,
            CloudState::Provisioning
                | CloudState::Starting
                | CloudState::Stopping
                | CloudState::Deleting
                | CloudState::Unknown
        )
    }
}

/// What a driver knows about one VM.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CloudVm {
    /// The provider's id.
    pub provider_id: String,
    /// Normalized state.
    pub state: CloudState,
    /// The provider's own state text (e.g. `running`, `PowerState/deallocated`).
    pub raw_state: String,
    /// Public IPv4 address.
    pub public_ipv4: Option<String>,
    /// Public IPv6 address.
    pub public_ipv6: Option<String>,
    /// Private IPv4 address.
    pub private_ipv4: Option<String>,
    /// Confidential-computing technology the VM really has (as the cloud reports it).
    pub confidential: Option<ConfidentialTech>,
}

/// What a driver can do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Capabilities {
    /// Confidential technologies it can request and verify.
    pub confidential: Vec<ConfidentialTech>,
    /// Whether the cloud de-duplicates creates by the idempotency key itself.
    pub native_idempotency: bool,
    /// Whether it takes a password login.
    pub password_login: bool,
    /// Whether it can change a VM's size ([`CloudDriver::resize`]).
    pub resize: bool,
}

/// How far a resize has come.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResizeProgress {
    /// The VM has the new size, and is running (or stopped) as asked.
    Done,
    /// A step is under way (stopping, changing, starting): call again later.
    Waiting,
}

/// Why a driver call failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DriverError {
    /// The resource does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// Another operation is in progress; retry.
    #[error("conflict: {0}")]
    Conflict(String),
    /// Throttled; retry after the given time.
    #[error("throttled, retry after {retry_after:?}")]
    Throttled {
        /// How long to wait.
        retry_after: Duration,
    },
    /// A quota or capacity limit.
    #[error("quota or capacity: {0}")]
    Quota(String),
    /// The request cannot succeed as given (size, image, region, confidential mismatch).
    #[error("invalid: {0}")]
    InvalidSpec(String),
    /// The service's own cloud credentials were refused.
    #[error("unauthorized: {0}")]
    Unauthorized(String),
    /// The cloud could not be reached or timed out; retry.
    #[error("unreachable: {0}")]
    Unreachable(String),
    /// Anything else the provider said.
    #[error("provider error {code}: {message}")]
    Provider {
        /// Provider's error code.
        code: String,
        /// Provider's message.
        message: String,
    },
}

impl DriverError {
    /// Whether retrying later may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            DriverError::Conflict(_) | DriverError::Throttled { .. } | DriverError::Unreachable(_)
        )
    }

    /// How long to wait before a retry.
    pub fn retry_after(&self) -> Duration {
        match self {
            DriverError::Throttled { retry_after } => *retry_after,
            _ => Duration::from_secs(2),
        }
    }

    /// A reason users can read (no internals beyond the provider's own message).
    pub fn user_reason(&self) -> String {
        match self {
            DriverError::NotFound(m) => format!("the cloud could not find a resource: {m}"),
            DriverError::Conflict(m) => format!("the cloud reported a conflicting operation: {m}"),
            DriverError::Throttled { .. } => "the cloud kept throttling requests".into(),
            DriverError::Quota(m) => format!("the cloud's quota or capacity was exceeded: {m}"),
            DriverError::InvalidSpec(m) => format!("the cloud refused the request: {m}"),
            DriverError::Unauthorized(_) => {
                "the service's credentials for this cloud were refused; contact the operator".into()
            }
            DriverError::Unreachable(_) => "the cloud could not be reached".into(),
            DriverError::Provider { code, message } => {
                format!("the cloud failed ({code}): {message}")
            }
        }
    }
}

/// One cloud. Every call is safe to repeat: create is idempotent by the VM id, start/stop of a
/// VM already there are no-ops, delete of an absent VM succeeds.
#[async_trait]
pub trait CloudDriver: Send + Sync {
    /// Which driver this is.
    fn kind(&self) -> DriverKind;

    /// What it can do.
    fn capabilities(&self) -> Capabilities;

    /// Creates the VM (or finds the one an earlier attempt created) and returns it.
    async fn create(&self, spec: &VmSpec) -> Result<CloudVm, DriverError>;

    /// The VM, or `None` when it does not exist (any more).
    async fn get(&self, target: &CloudTarget) -> Result<Option<CloudVm>, DriverError>;

    /// Powers the VM on.
    async fn start(&self, target: &CloudTarget) -> Result<(), DriverError>;

    /// Powers the VM off, releasing compute where the cloud bills it otherwise.
    async fn stop(&self, target: &CloudTarget) -> Result<(), DriverError>;

    /// Restarts the VM.
    async fn reboot(&self, target: &CloudTarget) -> Result<(), DriverError>;

    /// Removes the VM with its disks, addresses, interfaces and firewall. Called again once the
    /// VM is gone, to remove what can only go after it (a security group, an NSG).
    async fn delete(&self, target: &CloudTarget) -> Result<(), DriverError>;

    /// Makes the cloud's firewall of the VM equal to `rules` (the whole desired set; safe to
    /// repeat). Only rules the cloud can express reach a driver (`NewRule::unsupported_on`).
    /// The default refuses, so a driver that cannot do it never reports success.
    async fn apply_rules(
        &self,
        target: &CloudTarget,
        rules: &[SecurityRule],
    ) -> Result<(), DriverError> {
        let _ = (target, rules);
        Err(DriverError::InvalidSpec(format!(
            "the {} driver cannot apply security rules",
            self.kind()
        )))
    }

    /// Moves the VM to `size` (the cloud's name for it), running afterwards when `running`,
    /// else stopped. Each call looks at the VM and takes the next step (stop, change, start),
    /// so the provisioner calls again until `Done`; safe to repeat. The default refuses, for
    /// drivers without [`Capabilities::resize`].
    async fn resize(
        &self,
        target: &CloudTarget,
        size: &str,
        running: bool,
    ) -> Result<ResizeProgress, DriverError> {
        let _ = (target, size, running);
        Err(DriverError::InvalidSpec(format!(
            "the {} driver cannot change a VM's size",
            self.kind()
        )))
    }

    /// Every VM of this service the cloud holds in `region` (clouds that are not regional
    /// ignore it; an empty region means every region where the cloud can list them all at
    /// once), not counting ones already being removed for good.
    async fn list_managed(&self, region: &str) -> Result<Vec<ManagedResource>, DriverError>;

    /// Tags a listed resource of ours that has no deployment tag with this driver's deployment
    /// (`vmctl adopt`, for resources made before deployment ids); the VM's firewall goes with
    /// the VM. Safe to repeat. The default refuses, so a driver that cannot never reports
    /// success.
    async fn adopt(&self, resource: &ManagedResource) -> Result<(), DriverError> {
        let _ = resource;
        Err(DriverError::InvalidSpec(format!(
            "the {} driver cannot tag resources",
            self.kind()
        )))
    }
}
