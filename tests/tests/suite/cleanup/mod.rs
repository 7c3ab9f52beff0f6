//! The cleanup job against DynamoDB Local: every kind of staleness, dry runs, overlapping runs,
//! and the read capacity of a run against the size of the table; a module per concern.

mod capacity;
mod common;
mod orphans;
mod removed_owners;
mod staleness;
