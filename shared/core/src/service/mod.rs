//! The use cases: create, list, get, update, start, stop, delete, credentials and security
//! rules, as methods of one [`Service`] spread over a file per concern.

mod act;
mod admin;
mod base;
mod catalog;
mod checks;
mod costs;
mod create;
mod logins;
mod read;
mod resize;
mod rules;
mod update;
mod writes;

pub use admin::MAX_ADMIN_LIMIT;
pub use base::{Logins, Service};
pub use checks::MAX_VMS_PER_REQUEST;
pub use read::ListPage;
pub use writes::IfMatch;
