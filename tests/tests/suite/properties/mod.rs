//! Property tests (proptest):
//!
//! 1. The VM state machine, over the use cases (`Service`) and the provisioner with the in-memory
//!    repository and the simulated cloud: random sequences of user actions (by every role),
//!    provisioner runs (also racing a user action), cloud failures and a cloud that loses the VM
//!    never reach an illegal state or transition, answer as the API's state table says, never
//!    lose a write, and always settle once the cloud behaves.
//! 2. Wire and stored models round-trip through JSON unchanged (`VmRecord`, `VirtualMachine`,
//!    `CreateVmRequest`, `UpdateVmRequest`), and the parsers of host names and statuses accept
//!    exactly what the API documents.
//!
//! No database is involved: this module needs neither DynamoDB Local nor moto.

mod state_machine;
mod wire;
