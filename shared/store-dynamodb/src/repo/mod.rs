//! The repository over DynamoDB, a file per concern; `port.rs` implements the core's
//! `Repository` with them.

mod backfill;
mod base;
mod catalog;
mod discovery;
mod events;
mod port;
mod rules;
mod seed;
mod stale;
mod team;
mod transact;
mod usage;
mod vms;

pub use backfill::Backfill;
pub(crate) use base::{from_item, to_item};
pub use base::{DynamoRepository, RepositoryOptions};
pub(crate) use transact::TxFailure;
