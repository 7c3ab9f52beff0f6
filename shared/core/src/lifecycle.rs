//! The VM state machine: which user action is allowed in which status. One table.

use vmapi_models::VmStatus;

/// A user action on a VM.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Start a stopped VM.
    Start,
    /// Stop a running VM.
    Stop,
    /// Delete a VM (accepted in every state but deleting/deleted).
    Delete,
    /// Restart a running VM (it stays running; the provisioner reboots it in the cloud).
    Reboot,
}

impl Action {
    /// The cloud operation it asks the provisioner for.
    pub fn op(self) -> vmapi_models::OpKind {
        match self {
            Action::Start => vmapi_models::OpKind::Start,
            Action::Stop => vmapi_models::OpKind::Stop,
            Action::Delete => vmapi_models::OpKind::Delete,
            Action::Reboot => vmapi_models::OpKind::Reboot,
        }
    }

    /// The verb, for messages.
    pub fn verb(self) -> &'static str {
        match self {
            Action::Start => "start",
            Action::Stop => "stop",
            Action::Delete => "delete",
            Action::Reboot => "reboot",
        }
    }
}

/// What an action does in a status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Already satisfied or under way: answer 200 and change nothing.
    NoOp,
    /// Move to this status.
    To(VmStatus),
    /// The status forbids it: 409.
    Illegal,
    /// The VM is gone: 404.
    Gone,
}

/// The transition table for user actions.
pub fn decide(action: Action, status: VmStatus) -> Decision {
    use Decision::*;
    use VmStatus::*;
    match (action, status) {
        (_, Deleted) => Gone,

        (Action::Start, Starting | Running) => NoOp,
        (Action::Start, Stopped) => To(Starting),
        (Action::Start, Creating | Provisioning | Failed | Stopping | Deleting) => Illegal,

        (Action::Stop, Stopping | Stopped) => NoOp,
        (Action::Stop, Running) => To(Stopping),
        (Action::Stop, Creating | Provisioning | Failed | Starting | Deleting) => Illegal,

        (Action::Reboot, Running) => To(Running),
        (
            Action::Reboot,
            Creating | Provisioning | Starting | Stopping | Stopped | Failed | Deleting,
        ) => Illegal,

        (Action::Delete, Deleting) => NoOp,
        (
            Action::Delete,
            Creating | Provisioning | Starting | Running | Stopping | Failed | Stopped,
        ) => To(Deleting),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use VmStatus::*;

    #[test]
    fn design_rules_hold() {
        assert_eq!(decide(Action::Start, Running), Decision::NoOp);
        assert_eq!(decide(Action::Start, Starting), Decision::NoOp);
        assert_eq!(decide(Action::Start, Stopped), Decision::To(Starting));
        assert_eq!(decide(Action::Stop, Running), Decision::To(Stopping));
        assert_eq!(decide(Action::Stop, Stopped), Decision::NoOp);
        assert_eq!(decide(Action::Delete, Deleting), Decision::NoOp);
        for s in [Creating, Provisioning, Failed] {
            assert_eq!(decide(Action::Start, s), Decision::Illegal, "start {s}");
            assert_eq!(decide(Action::Stop, s), Decision::Illegal, "stop {s}");
        }
        for s in VmStatus::ALL
            .iter()
            .copied()
            .filter(|s| !matches!(s, Deleting | Deleted))
        {
            assert_eq!(
                decide(Action::Delete, s),
                Decision::To(Deleting),
                "delete {s}"
            );
        }
        for a in [Action::Start, Action::Stop, Action::Delete, Action::Reboot] {
            assert_eq!(decide(a, Deleted), Decision::Gone);
        }
        assert_eq!(decide(Action::Reboot, Running), Decision::To(Running));
        for s in [
            Creating,
            Provisioning,
            Starting,
            Stopping,
            Stopped,
            Failed,
            Deleting,
        ] {
            assert_eq!(decide(Action::Reboot, s), Decision::Illegal, "reboot {s}");
        }
    }

    #[test]
    fn transitions_only_lead_to_transitional_states() {
        // (A reboot keeps a running VM running, with the reboot pending.)
        for a in [Action::Start, Action::Stop, Action::Delete] {
            for s in VmStatus::ALL.iter().copied() {
                if let Decision::To(next) = decide(a, s) {
                    assert!(
                        matches!(next, Starting | Stopping | Deleting),
                        "{a:?} {s} -> {next}"
                    );
                }
            }
        }
    }
}
