//! The route table and the handlers. Each Lambda function mounts its own endpoint(s);
//! the local server mounts all of them.

mod admin;
mod catalog;
mod context;
mod costs;
mod paging;
mod rules;
mod table;
mod vms;

pub use crate::endpoints::Endpoint;
pub use paging::{DEFAULT_LIMIT, MAX_LIMIT};
pub use table::{router, single_router};
