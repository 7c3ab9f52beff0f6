//! Use cases of the VM API over ports (repository, clock), with authorization and
//! the one error type every adapter maps from.

pub mod accounts;
pub mod admin_keys;
pub mod adopt;
pub mod authz;
pub mod cleanup;
pub mod credentials;
pub mod error;
pub mod lifecycle;
/// In-memory ports for tests: only with the `testing` feature (never in a release binary).
#[cfg(any(test, feature = "testing"))]
pub mod memory;
pub mod operations;
pub mod ports;
/// The cloud-driver port (also `ports::cloud`).
pub use ports::cloud;
/// The idempotency port and its records (also `ports::idempotency`).
pub use ports::idempotency;
pub mod provisioner;
pub mod quota;
pub mod service;

pub use accounts::{catalog_problems, Accounts, MemberChange, NewProject, NewTeam};
pub use admin_keys::AdminKeys;
pub use cleanup::{Candidate, Cleanup, CleanupPolicy, Summary};
pub use credentials::{CachedSecretStore, Created, ManagedSecret, SecretLabels, SecretStore};
pub use error::{ConflictCode, Error, ErrorChain, FieldError, NotFoundKind, Result};
pub use idempotency::{
    Begin, IdempotencyKey, IdempotencyRecord, IdempotencyStore, Lease, RecordState, StoredResponse,
};
pub use lifecycle::Action;
pub use operations::Operations;
pub use ports::{
    AccountStore, AdminKeyStore, Clock, EventPage, FinishedOp, Found, Gone, Lookup, Metrics,
    NameChange, NoMetrics, PageKey, ProviderOffers, Repository, RuleChange, RuleOwner, SystemClock,
    TeamVmRef, TeamVms, Tombstone, VcpuChange, VmFilter, VmPage,
};
pub use provisioner::{Drivers, Outcome, Provisioner, ProvisionerOptions, WorkItem};
pub use quota::{QuotaLimits, Usage};
pub use service::{IfMatch, ListPage, Logins, Service};
