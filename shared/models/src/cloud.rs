//! The clouds the service drives, and which one a catalog cloud provider is.

use crate::catalog::CloudProvider;

/// Which cloud a catalog cloud provider is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CloudKind {
    /// Kraud.Cloud.
    Kraud,
    /// Microsoft Azure.
    Azure,
    /// Amazon Web Services.
    Aws,
}

impl CloudKind {
    /// Recognizes a cloud provider by its catalog name (`Kraud.Cloud`, `Azure`, `AWS`).
    pub fn of(cloud: &CloudProvider) -> Option<Self> {
        let name = cloud.name.to_ascii_lowercase();
        if name.starts_with("kraud") {
            Some(CloudKind::Kraud)
        } else if name.starts_with("azure") {
            Some(CloudKind::Azure)
        } else if name == "aws" || name.starts_with("amazon") {
            Some(CloudKind::Aws)
        } else {
            None
        }
    }

    /// Whether a VM's size can be changed on this cloud. Kraud.Cloud sets a PVM's resources at
    /// launch and documents no way to change them, so a resize there would be a new VM.
    pub fn can_resize(self) -> bool {
        !matches!(self, CloudKind::Kraud)
    }

    /// The login user on this cloud: Azure reserves `root`, so its VMs use `azureuser`.
    pub fn login_user(kind: Option<Self>) -> &'static str {
        match kind {
            Some(CloudKind::Azure) => "azureuser",
            _ => "root",
        }
    }
}
