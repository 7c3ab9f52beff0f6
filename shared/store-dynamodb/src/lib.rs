//! DynamoDB adapter of the repository port: one table, keys `pk`/`sk`, one sparse GSI
//! for each project's active VMs. Access patterns are listed in `docs/dynamodb.md`.

mod accounts;
mod admin_keys;
mod cache;
mod errors;
mod idempotency;
mod keys;
mod repo;
pub mod table;

pub use repo::{Backfill, DynamoRepository, RepositoryOptions};
pub use table::{create_table, table_definition, TableDefinition};
