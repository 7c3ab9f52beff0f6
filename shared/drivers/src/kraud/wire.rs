//! Wire types: the parts of Kraud's answers the driver reads.

use std::collections::BTreeMap;

use serde::Deserialize;

#[derive(Deserialize)]
pub(super) struct ItemList<T> {
    /// Missing or `null` is an empty list.
    pub(super) items: Option<Vec<T>>,
}

#[derive(Deserialize, Default)]
pub(super) struct Pod {
    #[serde(rename = "ID", default)]
    pub(super) id: Option<String>,
    #[serde(rename = "AID", default)]
    pub(super) aid: Option<String>,
    #[serde(rename = "Name", default)]
    pub(super) name: Option<String>,
    #[serde(rename = "Namespace", default)]
    pub(super) namespace: Option<String>,
    #[serde(rename = "Res", default)]
    pub(super) res: Option<BTreeMap<String, serde_json::Value>>,
    /// Not in the published schema; read if a later API adds it.
    #[serde(rename = "Labels", default)]
    pub(super) labels: Option<serde_json::Value>,
    #[serde(rename = "Overlays", default)]
    pub(super) overlays: Option<Vec<Overlay>>,
    #[serde(rename = "Status", default)]
    pub(super) status: Option<PodStatus>,
}

impl Pod {
    /// The id the Docker API takes for the pod (the CLI uses the AID).
    pub(super) fn container_id(&self) -> Option<&str> {
        self.aid
            .as_deref()
            .filter(|s| !s.is_empty())
            .or(self.id.as_deref().filter(|s| !s.is_empty()))
    }
}

#[derive(Deserialize, Default)]
pub(super) struct Overlay {
    #[serde(rename = "IP4", default)]
    pub(super) ip4: Option<String>,
    #[serde(rename = "IP6", default)]
    pub(super) ip6: Option<String>,
}

#[derive(Deserialize, Default)]
pub(super) struct PodStatus {
    #[serde(rename = "Display", default)]
    pub(super) display: Option<String>,
}

#[derive(Deserialize)]
pub(super) struct Deployment {
    #[serde(rename = "ID", default)]
    pub(super) id: Option<String>,
    #[serde(rename = "AID", default)]
    pub(super) aid: Option<String>,
    #[serde(rename = "Namespace", default)]
    pub(super) namespace: Option<String>,
}

/// A namespace of the k8s-shaped emulation (`k8s.Namespace`).
#[derive(Deserialize)]
pub(super) struct Namespace {
    #[serde(default)]
    pub(super) metadata: Option<ObjectMeta>,
    #[serde(default)]
    pub(super) status: Option<NamespaceStatus>,
}

impl Namespace {
    /// Whether its deletion has begun.
    pub(super) fn is_terminating(&self) -> bool {
        self.metadata
            .as_ref()
            .and_then(|m| m.deletion_timestamp.as_deref())
            .is_some_and(|t| !t.trim().is_empty())
            || self
                .status
                .as_ref()
                .and_then(|s| s.phase.as_deref())
                .is_some_and(|p| p.eq_ignore_ascii_case("Terminating"))
    }
}

#[derive(Deserialize)]
pub(super) struct ObjectMeta {
    #[serde(default)]
    pub(super) name: Option<String>,
    #[serde(rename = "creationTimestamp", default)]
    pub(super) creation_timestamp: Option<String>,
    #[serde(rename = "deletionTimestamp", default)]
    pub(super) deletion_timestamp: Option<String>,
    #[serde(default)]
    pub(super) labels: Option<BTreeMap<String, String>>,
}

#[derive(Deserialize)]
pub(super) struct NamespaceStatus {
    #[serde(default)]
    pub(super) phase: Option<String>,
}

#[derive(Deserialize)]
pub(super) struct LaunchAnswer {
    #[serde(default)]
    pub(super) launch_id: Option<String>,
    #[serde(default)]
    pub(super) error: Option<String>,
}

#[derive(Deserialize)]
pub(super) struct ErrorBody {
    #[serde(default)]
    pub(super) message: Option<String>,
}
