//! A VM's security rules.

use super::spec::{Auth, Param, RequestBody, Spec, Success, Tag, Verb, VM_READ_ERRORS};

const RULE_CHANGE_ILLEGAL: (&str, &str) = (
    "ILLEGAL_TRANSITION",
    "the VM failed (status 6) or is being deleted (status 5): its rules cannot change",
);

pub(super) const CREATE_SECURITY_RULE: Spec = Spec {
    verb: Verb::Post,
    path: "/api/security-rules",
    function: "create-security-rule",
    auth: Auth::User,
    tag: Tag::Rules,
    summary: "Add a security rule to a virtual machine",
    description: "Adds a firewall rule to the VM named by `virtualMachine`, for the VM's team's owners, \
        admins and members (viewers: 403). One body for every cloud; the platform's Azure \
        (NSG: `destinationPortRange`, `sourceAddressPrefix`, `sourcePortRange`, `destination`, \
        `destinationAddressPrefix`) and AWS (security group: `portRange`, `cidrBlock`, `source`) \
        shapes are accepted too. Defaults: `direction` Inbound, `access` Allow, `cidrBlock` \
        0.0.0.0/0, `priority` the next free multiple of 10 from 1000 in the direction (100-4096, \
        unique per direction); names are unique per VM, ignoring case; at most 50 rules per VM. \
        What the VM's cloud cannot express is a 422 `UNSUPPORTED_BY_PROVIDER`. The change bumps \
        the VM's `rulesRevision`; a running or stopped VM with nothing pending gets `pendingOp` \
        `apply-rules`, and the provisioner makes the cloud's firewall equal to the rules \
        (`applied` turns true). The body may also be wrapped as `{\"data\": {...}}`.",
    params: &[],
    request: Some(RequestBody {
        schema: "CreateRuleBody",
        description: "The rule in one of three shapes, flat or wrapped as `{\"data\": {...}}`; at most 64 KiB of `application/json`. Neutral: `portRange` (a string or an array of `\"22\"`, `\"8000-8090\"`, `\"*\"`) and `cidrBlock`. Azure (NSG): `destinationPortRange` and `sourceAddressPrefix` for the same, with `sourcePortRange`, `destination` and `destinationAddressPrefix` accepted only as `*`. AWS (security group): `portRange`, `cidrBlock` and `source` (`*` or the same network). Giving the ports or the addresses twice (e.g. `portRange` and `destinationPortRange`) is a 400",
    }),
    success: Success::plain(
        201,
        "SecurityRuleView",
        "The new rule (`applied` false until the provisioner has applied it)",
    ),
    errors: &[
        "INVALID_JSON",
        "VALIDATION_FAILED",
        "UNAUTHORIZED",
        "FORBIDDEN",
        "VM_NOT_FOUND",
        "ILLEGAL_TRANSITION",
        "RULE_NAME_TAKEN",
        "PRIORITY_TAKEN",
        "RULE_LIMIT_REACHED",
        "VM_BLOCKED",
        "CONCURRENT_MODIFICATION",
        "PAYLOAD_TOO_LARGE",
        "UNSUPPORTED_MEDIA_TYPE",
        "UNSUPPORTED_BY_PROVIDER",
        "INTERNAL_ERROR",
        "SERVICE_UNAVAILABLE",
    ],
    notes: &[
        (
            "INVALID_PARAMETER",
            "the `Idempotency-Key` header is not 1-255 visible ASCII characters, or is given twice; `details` names it",
        ),
        RULE_CHANGE_ILLEGAL,
        (
            "VM_NOT_FOUND",
            "no such VM as `virtualMachine`, or a VM of a team the caller is not in (never 403, so ids cannot be probed)",
        ),
        (
            "VALIDATION_FAILED",
            "a field is missing, of the wrong type, unknown or invalid (name, direction, protocol, access, ports, CIDR, priority 100-4096, description); `details` names every offending field",
        ),
    ],
    conditional: false,
    idempotent: true,
    logins: false,
};

pub(super) const LIST_SECURITY_RULES: Spec = Spec {
    verb: Verb::Get,
    path: "/api/virtual-machines/{id}/security-rules",
    function: "list-security-rules",
    auth: Auth::User,
    tag: Tag::Rules,
    summary: "A virtual machine's security rules",
    description:
        "The VM's security rules, inbound first, then by priority, including the default rule \
        every VM gets (`AllowAnySSHInbound`, or `AllowAnyInbound` on Kraud.Cloud). `applied` \
        tells whether the VM's cloud firewall has the rule yet. Readable by every member of \
        the VM's team.",
    params: &[Param::Vm],
    request: None,
    success: Success::plain(
        200,
        "SecurityRuleList",
        "The VM's rules, inbound first, then by priority",
    ),
    errors: VM_READ_ERRORS,
    notes: &[],
    conditional: false,
    idempotent: false,
    logins: false,
};

pub(super) const DELETE_SECURITY_RULE: Spec = Spec {
    verb: Verb::Delete,
    path: "/api/security-rules/{id}",
    function: "delete-security-rule",
    auth: Auth::User,
    tag: Tag::Rules,
    summary: "Remove a security rule",
    description:
        "Removes the rule (the default rule too) from its VM, for the VM's team's owners, \
        admins and members (viewers: 403); the provisioner then removes it from the cloud's \
        firewall. An unknown rule, or one of a VM of a team the caller is not in, is a 404 \
        `SECURITY_RULE_NOT_FOUND`.",
    params: &[Param::Rule],
    request: None,
    success: Success::plain(
        200,
        "RuleDeleted",
        "The rule is gone from the VM (the cloud follows)",
    ),
    errors: &[
        "INVALID_PARAMETER",
        "UNAUTHORIZED",
        "FORBIDDEN",
        "SECURITY_RULE_NOT_FOUND",
        "ILLEGAL_TRANSITION",
        "VM_BLOCKED",
        "CONCURRENT_MODIFICATION",
        "INTERNAL_ERROR",
        "SERVICE_UNAVAILABLE",
    ],
    notes: &[RULE_CHANGE_ILLEGAL],
    conditional: false,
    idempotent: true,
    logins: false,
};
