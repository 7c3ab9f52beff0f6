//! Summaries and descriptions of the operations.

use crate::routes::Endpoint;

pub(super) fn summary(endpoint: Endpoint) -> &'static str {
    match endpoint {
        Endpoint::Health => "Health check",
        Endpoint::CreateVm => "Create virtual machines",
        Endpoint::ListVms => "List a project's virtual machines",
        Endpoint::GetVm => "Get a virtual machine",
        Endpoint::UpdateVm => "Rename or retag a virtual machine",
        Endpoint::StartVm => "Start a virtual machine",
        Endpoint::StopVm => "Stop a virtual machine",
        Endpoint::RebootVm => "Reboot a virtual machine",
        Endpoint::DeleteVm => "Delete a virtual machine",
        Endpoint::GetCredentials => "Read a virtual machine's login",
        Endpoint::GetActivity => "A virtual machine's history",
        Endpoint::CreateSecurityRule => "Add a security rule to a virtual machine",
        Endpoint::ListSecurityRules => "A virtual machine's security rules",
        Endpoint::DeleteSecurityRule => "Remove a security rule",
    }
}

pub(super) fn description(endpoint: Endpoint) -> &'static str {
    match endpoint {
        Endpoint::Health => "Answers `{\"status\": \"ok\"}`; needs no token.",
        Endpoint::CreateVm => {
            "Creates one VM per `hostNames` entry (1-10), all written in one transaction or none. \
             The body is flat (as on the platform's API page) or wrapped as `{\"data\": {...}}`. \
             Every reference is checked: the provider belongs to the cloud provider, the size and \
             price to the provider, the price is the size's price; `region` and `image` must be a \
             location and an image the provider offers and the price is for; the team and project \
             exist, the project belongs to the team and the caller is a member. `quantity`, when \
             given, must equal the number of host names. `authMethod` 0 gets a generated password, \
             1 a generated Ed25519 key pair (both stored in the secret store before the VM is \
             written), unless `access.sshPublicKey` gives the user's own key (only with \
             `authMethod` 1). A body carrying a plaintext password or private key is a 400."
        }
        Endpoint::ListVms => {
            "The project's active VMs (every status but 5 and 8), newest first; `provider` (with \
             `cloudProvider`), `size` and `price` populated, `project` and `team` as ids. The next \
             page, if any, is in `Link: <...>; rel=\"next\"` and `X-Next-Cursor`. Filters \
             (`status`, `tag`, `name` prefix) are applied while the list index is read, in the same \
             single request: a filtered page may hold fewer than `limit` VMs (even none) while a \
             next page follows; follow the cursor until there is none."
        }
        Endpoint::GetVm => {
            "The VM with `provider`, `size`, `price`, `project` and `team` populated. A VM being \
             deleted shows status 5 until the cloud teardown is done, then answers 404."
        }
        Endpoint::UpdateVm => {
            "Changes only `name` (unique among the project's active VMs) and/or `tags` (replaced \
             as a whole); answers the VM as GET shows it."
        }
        Endpoint::StartVm => {
            "Starts a stopped VM (status 2, then 3 once the cloud is done). Already starting or \
             running: 200 and nothing changes. Creating, provisioning, failed, stopping or \
             deleting: 409 `ILLEGAL_TRANSITION`."
        }
        Endpoint::StopVm => {
            "Stops a running VM (status 4, then 7 once the cloud is done). Already stopping or \
             stopped: 200 and nothing changes. Creating, provisioning, failed, starting or \
             deleting: 409 `ILLEGAL_TRANSITION`."
        }
        Endpoint::RebootVm => {
            "Restarts a running VM: it stays in status 3 with a pending `reboot` that the \
             provisioner carries out through the VM's cloud. A reboot already pending answers 200 \
             and changes nothing. Any other status: 409 `ILLEGAL_TRANSITION`."
        }
        Endpoint::DeleteVm => {
            "Moves the VM to status 5 (deleting): it leaves the list and its name is free at once; \
             the cloud teardown follows, then GET answers 404. Deleting a VM that is already \
             deleting answers 200; a VM whose teardown failed (status 5 with a `statusReason`) is \
             retried."
        }
        Endpoint::GetActivity => {
            "Who did what to the VM and when, newest first: creation, updates, start/stop/reboot/\
             delete requests (with the status they led to), each finished cloud operation of the \
             provisioner (with its result and, on failure, the reason), credential reads and the \
             cleanup job's actions. Paged like the list (`limit`, `cursor`). Readable by every \
             member of the VM's team; a deleted VM's history goes when its record is purged."
        }
        Endpoint::CreateSecurityRule => {
            "Adds a firewall rule to the VM named by `virtualMachine`, for the VM's team's owners, \
             admins and members (viewers: 403). One body for every cloud; the platform's Azure \
             (NSG: `destinationPortRange`, `sourceAddressPrefix`, `sourcePortRange`, `destination`, \
             `destinationAddressPrefix`) and AWS (security group: `portRange`, `cidrBlock`, `source`) \
             shapes are accepted too. Defaults: `direction` Inbound, `access` Allow, `cidrBlock` \
             0.0.0.0/0, `priority` the next free multiple of 10 from 1000 in the direction (100-4096, \
             unique per direction); names are unique per VM, ignoring case; at most 50 rules per VM. \
             What the VM's cloud cannot express is a 422 `UNSUPPORTED_BY_PROVIDER`. The change bumps \
             the VM's `rulesRevision`; a running or stopped VM with nothing pending gets `pendingOp` \
             `apply-rules`, and the provisioner makes the cloud's firewall equal to the rules \
             (`applied` turns true). The body may also be wrapped as `{\"data\": {...}}`."
        }
        Endpoint::ListSecurityRules => {
            "The VM's security rules, inbound first, then by priority, including the default rule \
             every VM gets (`AllowAnySSHInbound`, or `AllowAnyInbound` on Kraud.Cloud). `applied` \
             tells whether the VM's cloud firewall has the rule yet. Readable by every member of \
             the VM's team."
        }
        Endpoint::DeleteSecurityRule => {
            "Removes the rule (the default rule too) from its VM, for the VM's team's owners, \
             admins and members (viewers: 403); the provisioner then removes it from the cloud's \
             firewall. An unknown rule, or one of a VM of a team the caller is not in, is a 404 \
             `SECURITY_RULE_NOT_FOUND`."
        }
        Endpoint::GetCredentials => {
            "The VM's login: `password` (authMethod 0) or `privateKey` and `publicKey` \
             (authMethod 1 with a generated key pair), or only `publicKey` (the user's own key), \
             with `host` and `port`. For the VM's owner and the team's owners and admins (other \
             members: 403). Every read is recorded on the VM. Never cached (`Cache-Control: \
             no-store`)."
        }
    }
}
