//! The virtual machines: create, list, read, change, act on, delete, and their history.

use super::spec::{Auth, Param, RequestBody, Spec, Success, Tag, Verb, VM_READ_ERRORS};

/// The page parameters of a list.
const PAGE: [Param; 2] = [Param::Limit, Param::Cursor];

/// What an action (start, stop, reboot, delete) answers.
const ACTION_ANSWER: Success = Success {
    etag: true,
    ..Success::plain(
        200,
        "ActionResult",
        "The VM's status after the request (also when it was already under way)",
    )
};

/// A VM action: `PUT` (or `DELETE`) on the VM, conditional and idempotent.
const ACTION: Spec = Spec {
    verb: Verb::Put,
    path: "",
    function: "",
    auth: Auth::User,
    tag: Tag::Vms,
    summary: "",
    description: "",
    params: &[Param::Vm],
    request: None,
    success: ACTION_ANSWER,
    errors: &[
        "INVALID_PARAMETER",
        "UNAUTHORIZED",
        "FORBIDDEN",
        "VM_NOT_FOUND",
        "ILLEGAL_TRANSITION",
        "VM_BLOCKED",
        "CONCURRENT_MODIFICATION",
        "PRECONDITION_FAILED",
        "INTERNAL_ERROR",
        "SERVICE_UNAVAILABLE",
    ],
    notes: &[],
    conditional: true,
    idempotent: true,
    logins: false,
};

pub(super) const CREATE_VM: Spec = Spec {
    verb: Verb::Post,
    path: "/api/virtual-machines",
    function: "create-vm",
    auth: Auth::User,
    tag: Tag::Vms,
    summary: "Create virtual machines",
    description: "Creates one VM per `hostNames` entry (1-10), all written in one transaction or none. \
        The body is flat (as on the platform's API page) or wrapped as `{\"data\": {...}}`. \
        Every reference is checked: the provider belongs to the cloud provider, the size and \
        price to the provider, the price is the size's price; `region` and `image` must be a \
        location and an image the provider offers and the price is for; the team and project \
        exist, the project belongs to the team and the caller is a member. `quantity`, when \
        given, must equal the number of host names. `authMethod` 0 gets a generated password, \
        1 a generated Ed25519 key pair (both stored in the secret store before the VM is \
        written), unless `access.sshPublicKey` gives the user's own key (only with \
        `authMethod` 1). A body carrying a plaintext password or private key is a 400.",
    params: &[],
    request: Some(RequestBody {
        schema: "CreateVmBody",
        description: "The request, flat or wrapped as `{\"data\": {...}}`; at most 64 KiB of `application/json` (or another `application/*+json` type)",
    }),
    success: Success::plain(
        201,
        "VirtualMachineList",
        "The new VMs, one per `hostNames` entry, in status 0 (creating)",
    ),
    errors: &[
        "INVALID_JSON",
        "VALIDATION_FAILED",
        "UNAUTHORIZED",
        "FORBIDDEN",
        "TEAM_NOT_FOUND",
        "PROJECT_NOT_FOUND",
        "HOST_NAME_TAKEN",
        "DUPLICATE_HOST_NAME",
        "QUOTA_EXCEEDED",
        "CONCURRENT_MODIFICATION",
        "PAYLOAD_TOO_LARGE",
        "UNSUPPORTED_MEDIA_TYPE",
        "INTERNAL_ERROR",
        "SERVICE_UNAVAILABLE",
    ],
    notes: &[
        (
            "INVALID_PARAMETER",
            "the `Idempotency-Key` header is not 1-255 visible ASCII characters, or is given twice; `details` names it",
        ),
        (
            "CONCURRENT_MODIFICATION",
            "concurrent creates kept changing the team's quota usage at the same moment; nothing was created: retry the request",
        ),
    ],
    conditional: false,
    idempotent: true,
    logins: true,
};

pub(super) const LIST_VMS: Spec = Spec {
    verb: Verb::Get,
    path: "/api/teams/{team}/projects/{project}/virtual-machines",
    function: "list-vms",
    auth: Auth::User,
    tag: Tag::Vms,
    summary: "List a project's virtual machines",
    description: "The project's active VMs (every status but 5 and 8), newest first; `provider` (with \
        `cloudProvider`), `size` and `price` populated, `project` and `team` as ids. The next \
        page, if any, is in `Link: <...>; rel=\"next\"` and `X-Next-Cursor`. Filters \
        (`status`, `tag`, `name` prefix) are applied while the list index is read, in the same \
        single request: a filtered page may hold fewer than `limit` VMs (even none) while a \
        next page follows; follow the cursor until there is none.",
    params: &[
        Param::Team,
        Param::Project,
        PAGE[0],
        PAGE[1],
        Param::Status,
        Param::TagFilter,
        Param::NamePrefix,
    ],
    request: None,
    success: Success {
        paged: true,
        ..Success::plain(
            200,
            "VirtualMachineList",
            "A page of the project's active VMs, newest first",
        )
    },
    errors: &[
        "INVALID_PARAMETER",
        "UNAUTHORIZED",
        "TEAM_NOT_FOUND",
        "PROJECT_NOT_FOUND",
        "INTERNAL_ERROR",
        "SERVICE_UNAVAILABLE",
    ],
    notes: &[(
        "INVALID_PARAMETER",
        "`team` or `project` is not 24 hexadecimal digits, `limit` is not a whole number from 1 to 200, `cursor` is not a cursor of this team and project, a filter (`status`, `tag`, `name`) is malformed, or the query has another or a repeated parameter; `details` names it",
    )],
    conditional: false,
    idempotent: false,
    logins: false,
};

pub(super) const GET_VM: Spec = Spec {
    verb: Verb::Get,
    path: "/api/virtual-machines/{id}",
    function: "get-vm",
    auth: Auth::User,
    tag: Tag::Vms,
    summary: "Get a virtual machine",
    description:
        "The VM with `provider`, `size`, `price`, `project` and `team` populated. A VM being \
        deleted shows status 5 until the cloud teardown is done, then answers 404.",
    params: &[Param::Vm],
    request: None,
    success: Success {
        etag: true,
        ..Success::plain(
            200,
            "VirtualMachine",
            "The VM, with its references populated",
        )
    },
    errors: VM_READ_ERRORS,
    notes: &[],
    conditional: false,
    idempotent: false,
    logins: false,
};

pub(super) const UPDATE_VM: Spec = Spec {
    verb: Verb::Patch,
    path: "/api/virtual-machines/{id}",
    function: "update-vm",
    summary: "Rename, retag or set the expiry of a virtual machine",
    description: "Changes only `name` (unique among the project's active VMs), `tags` (replaced \
        as a whole) and/or `expiresAt` (a time in the future, or `null` to remove it; the \
        cleanup job deletes the VM after it); answers the VM as GET shows it.",
    request: Some(RequestBody {
        schema: "UpdateVmRequest",
        description: "The fields to change (at least one); at most 64 KiB of `application/json` (or another `application/*+json` type)",
    }),
    success: GET_VM.success,
    errors: &[
        "INVALID_JSON",
        "VALIDATION_FAILED",
        "INVALID_PARAMETER",
        "UNAUTHORIZED",
        "FORBIDDEN",
        "VM_NOT_FOUND",
        "ILLEGAL_TRANSITION",
        "HOST_NAME_TAKEN",
        "VM_BLOCKED",
        "CONCURRENT_MODIFICATION",
        "PRECONDITION_FAILED",
        "PAYLOAD_TOO_LARGE",
        "UNSUPPORTED_MEDIA_TYPE",
        "INTERNAL_ERROR",
        "SERVICE_UNAVAILABLE",
    ],
    idempotent: false,
    ..ACTION
};

pub(super) const RESIZE_VM: Spec = Spec {
    path: "/api/virtual-machines/{id}/resize",
    function: "resize-vm",
    summary: "Change a virtual machine's size",
    description: "Moves a running or stopped VM to another `size` with its `price`, both of the \
        VM's provider, location and image (400 otherwise; a confidential VM only to a \
        confidential size). A larger size's extra vCPUs count against the team's quota at once \
        (409 `QUOTA_EXCEEDED`). The VM keeps its status; the provisioner carries the change \
        out in the cloud (EC2: stop, change the type, start; Azure: in place when the VM's \
        hardware offers the size, else deallocate, change, start) and a running VM runs again \
        afterwards. `size` and `price` change only when the cloud confirms; a failure keeps \
        the old ones with a `statusReason`. Meanwhile other actions but delete are 409 \
        `ILLEGAL_TRANSITION`. Kraud.Cloud cannot resize: 422 `UNSUPPORTED_BY_PROVIDER`.",
    request: Some(RequestBody {
        schema: "ResizeVmRequest",
        description: "The new size and price; at most 64 KiB of `application/json` (or another `application/*+json` type)",
    }),
    errors: &[
        "INVALID_JSON",
        "VALIDATION_FAILED",
        "INVALID_PARAMETER",
        "UNAUTHORIZED",
        "FORBIDDEN",
        "VM_NOT_FOUND",
        "ILLEGAL_TRANSITION",
        "VM_BLOCKED",
        "QUOTA_EXCEEDED",
        "CONCURRENT_MODIFICATION",
        "PRECONDITION_FAILED",
        "PAYLOAD_TOO_LARGE",
        "UNSUPPORTED_MEDIA_TYPE",
        "UNSUPPORTED_BY_PROVIDER",
        "INTERNAL_ERROR",
        "SERVICE_UNAVAILABLE",
    ],
    ..ACTION
};

pub(super) const START_VM: Spec = Spec {
    path: "/api/virtual-machines/{id}/start",
    function: "start-vm",
    summary: "Start a virtual machine",
    description:
        "Starts a stopped VM (status 2, then 3 once the cloud is done). Already starting or \
        running: 200 and nothing changes. Creating, provisioning, failed, stopping or \
        deleting: 409 `ILLEGAL_TRANSITION`.",
    ..ACTION
};

pub(super) const STOP_VM: Spec = Spec {
    path: "/api/virtual-machines/{id}/stop",
    function: "stop-vm",
    summary: "Stop a virtual machine",
    description:
        "Stops a running VM (status 4, then 7 once the cloud is done). Already stopping or \
        stopped: 200 and nothing changes. Creating, provisioning, failed, starting or \
        deleting: 409 `ILLEGAL_TRANSITION`.",
    // A blocked VM may still be stopped.
    errors: &[
        "INVALID_PARAMETER",
        "UNAUTHORIZED",
        "FORBIDDEN",
        "VM_NOT_FOUND",
        "ILLEGAL_TRANSITION",
        "CONCURRENT_MODIFICATION",
        "PRECONDITION_FAILED",
        "INTERNAL_ERROR",
        "SERVICE_UNAVAILABLE",
    ],
    ..ACTION
};

pub(super) const REBOOT_VM: Spec = Spec {
    path: "/api/virtual-machines/{id}/reboot",
    function: "reboot-vm",
    summary: "Reboot a virtual machine",
    description: "Restarts a running VM: it stays in status 3 with a pending `reboot` that the \
        provisioner carries out through the VM's cloud. A reboot already pending answers 200 \
        and changes nothing. Any other status: 409 `ILLEGAL_TRANSITION`.",
    ..ACTION
};

pub(super) const DELETE_VM: Spec = Spec {
    verb: Verb::Delete,
    path: "/api/virtual-machines/{id}",
    function: "delete-vm",
    summary: "Delete a virtual machine",
    description:
        "Moves the VM to status 5 (deleting): it leaves the list and its name is free at once; \
        the cloud teardown follows, then GET answers 404. Deleting a VM that is already \
        deleting answers 200; a VM whose teardown failed (status 5 with a `statusReason`) is \
        retried.",
    // Any status may be deleted, a blocked VM too.
    errors: &[
        "INVALID_PARAMETER",
        "UNAUTHORIZED",
        "FORBIDDEN",
        "VM_NOT_FOUND",
        "CONCURRENT_MODIFICATION",
        "PRECONDITION_FAILED",
        "INTERNAL_ERROR",
        "SERVICE_UNAVAILABLE",
    ],
    ..ACTION
};

pub(super) const GET_ACTIVITY: Spec = Spec {
    verb: Verb::Get,
    path: "/api/virtual-machines/{id}/activity",
    function: "get-activity",
    auth: Auth::User,
    tag: Tag::Vms,
    summary: "A virtual machine's history",
    description: "Who did what to the VM and when, newest first: creation, updates, start/stop/reboot/\
        delete requests (with the status they led to), each finished cloud operation of the \
        provisioner (with its result and, on failure, the reason), credential reads and the \
        cleanup job's actions. Paged like the list (`limit`, `cursor`). Readable by every \
        member of the VM's team; a deleted VM's history goes when its record is purged.",
    params: &[Param::Vm, PAGE[0], PAGE[1]],
    request: None,
    success: Success {
        paged: true,
        ..Success::plain(
            200,
            "VmEventList",
            "A page of the VM's history, newest first",
        )
    },
    errors: VM_READ_ERRORS,
    notes: &[(
        "INVALID_PARAMETER",
        "`id` is not 24 hexadecimal digits, `limit` is not a whole number from 1 to 200, `cursor` is not a cursor of this VM's history, or the query has another parameter; `details` names it",
    )],
    conditional: false,
    idempotent: false,
    logins: false,
};
