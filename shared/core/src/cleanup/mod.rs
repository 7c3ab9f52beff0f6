//! The cleanup job: finds stale VMs through the sparse stale index (never a scan) and the
//! tombstones of removed teams and projects, and repairs or removes them; then reconciles the
//! secret store and the clouds against the table (logins and cloud VMs of ours with no VM
//! left). The definition of "stale" is in `docs/cleanup.md`.

mod base;
mod candidates;
mod reconcile;
mod run;
mod verdict;

pub use base::{emf_line, Cleanup, CleanupPolicy, Summary};
pub use candidates::Candidate;
pub(crate) use reconcile::describe;
pub(crate) use verdict::rearmed;
