//! What the server keeps: its resources, running operations, tokens, behaviour settings and
//! the requests it saw.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};

use axum::http::Method;
use serde_json::Value;

/// One request the server saw.
#[derive(Clone, Debug)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub query: String,
    pub body: String,
    pub authorization: Option<String>,
    pub status: u16,
}

/// How POST actions report their operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ActionStyle {
    Location,
    AsyncOperation,
}

pub(super) struct Injection {
    pub(super) method: Method,
    pub(super) path_contains: String,
    pub(super) status: u16,
    pub(super) code: String,
    pub(super) message: String,
    pub(super) retry_after: Option<u64>,
    pub(super) remaining: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum OpKind {
    Create,
    Start,
    Deallocate,
    PowerOff,
    Restart,
    Delete,
    Network,
    /// A PATCH of the VM (its size).
    Update,
}

pub(super) struct Op {
    pub(super) kind: OpKind,
    /// Lower-case VM name (empty for network operations).
    pub(super) vm: String,
    pub(super) remaining: u32,
    pub(super) failure: Option<(String, String)>,
    /// `None` while running.
    pub(super) result: Option<Result<(), (String, String)>>,
    /// Power state to restore when the operation fails.
    pub(super) previous_power: Option<String>,
}

pub(super) struct Vm {
    pub(super) name: String,
    pub(super) model: Value,
    pub(super) provisioning: String,
    pub(super) failure: Option<(String, String)>,
    pub(super) power: Option<String>,
    pub(super) pending: Option<String>,
    pub(super) nic: Option<String>,
    pub(super) number: u32,
    /// `properties.timeCreated`.
    pub(super) created: String,
}

pub(super) struct Resource {
    pub(super) body: Value,
    pub(super) delete_with_vm: bool,
}

pub(super) struct Inner {
    pub(super) base: String,
    // tokens
    pub(super) token_expires_in: u64,
    pub(super) token_requests: u32,
    pub(super) token_forms: Vec<BTreeMap<String, String>>,
    pub(super) valid_tokens: HashSet<String>,
    pub(super) issued_tokens: Vec<String>,
    // compute and network
    pub(super) vms: BTreeMap<String, Vm>,
    pub(super) nics: BTreeMap<String, Resource>,
    pub(super) pips: BTreeMap<String, Resource>,
    pub(super) disks: BTreeMap<String, Resource>,
    pub(super) vnets: BTreeMap<String, Value>,
    pub(super) nsgs: BTreeMap<String, Value>,
    pub(super) ops: HashMap<String, Op>,
    pub(super) counter: u32,
    pub(super) vm_counter: u32,
    pub(super) vm_puts: u32,
    // behaviour
    pub(super) list_page_size: usize,
    pub(super) op_polls: u32,
    pub(super) retry_after: Option<u64>,
    pub(super) action_style: ActionStyle,
    pub(super) fail_next_create: Option<(String, String)>,
    pub(super) fail_next_action: Option<(String, String)>,
    pub(super) drop_security_profile: bool,
    pub(super) secondary_ip_config_first: bool,
    pub(super) operation_base_override: Option<String>,
    pub(super) injections: Vec<Injection>,
    pub(super) requests: Vec<Recorded>,
}

pub(super) type Shared = Arc<Mutex<Inner>>;
