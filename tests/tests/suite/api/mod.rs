//! Black-box tests of every endpoint over HTTP against DynamoDB Local, a module per concern.

mod access;
mod activity;
mod changes;
mod create_and_read;
mod invalid_requests;
mod lists;
mod server_errors;
