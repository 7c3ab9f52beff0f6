//! The driver's view of a pod: state from its display words, addresses from its overlays,
//! the confidential technology as reported.

use std::net::IpAddr;

use vmapi_core::cloud::{CloudState, CloudVm};
use vmapi_models::ConfidentialTech;

use super::wire::{Overlay, Pod};

/// What we know about a pod, as a [`CloudVm`] whose provider id is the namespace.
pub(super) fn view(ns: &str, pod: &Pod) -> CloudVm {
    let display = pod
        .status
        .as_ref()
        .and_then(|s| s.display.as_deref())
        .unwrap_or("")
        .trim()
        .to_string();
    let (public_ipv4, private_ipv4, public_ipv6) =
        addresses(pod.overlays.as_deref().unwrap_or(&[]));
    CloudVm {
        provider_id: ns.to_string(),
        state: state_of(&display),
        raw_state: display,
        public_ipv4,
        public_ipv6,
        private_ipv4,
        confidential: reported_confidential(pod),
    }
}

/// Maps the first word of `Status.Display` (free text; the CLI shows its first word) to a
/// state. `Status.Healthy` does not change the mapping: an `Error`/`Failed` word is a failure
/// whatever it says, and a `Running` pod that is not healthy yet is still running.
pub fn state_of(display: &str) -> CloudState {
    let word: String = display
        .split_whitespace()
        .next()
        .unwrap_or("")
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric())
        .collect::<String>()
        .to_ascii_lowercase();
    match word.as_str() {
        "running" | "up" => CloudState::Running,
        "starting" | "restarting" | "booting" => CloudState::Starting,
        "creating" | "created" | "pending" | "scheduling" | "scheduled" | "pulling"
        | "launching" | "preparing" | "queued" | "waiting" | "initializing" => {
            CloudState::Provisioning
        }
        "stopping" | "terminating" | "shutting" => CloudState::Stopping,
        "stopped" | "exited" | "terminated" | "completed" | "succeeded" | "dead" => {
            CloudState::Stopped
        }
        "deleting" | "removing" | "descheduling" => CloudState::Deleting,
        "deleted" | "removed" => CloudState::Deleted,
        "error" | "failed" | "failure" | "crashed" | "crashloop" | "crashloopbackoff" => {
            CloudState::Failed(display.trim().to_string())
        }
        _ => CloudState::Unknown,
    }
}

/// Public IPv4, private IPv4 and public IPv6 from the pod's overlays: every pod gets a public
/// IPv6; an IPv4 is public only outside the private, shared and link-local ranges.
pub(super) fn addresses(overlays: &[Overlay]) -> (Option<String>, Option<String>, Option<String>) {
    let (mut public4, mut private4, mut public6) = (None, None, None);
    let candidates = overlays
        .iter()
        .flat_map(|o| [o.ip4.as_deref(), o.ip6.as_deref()]);
    for text in candidates.flatten() {
        let text = text.trim();
        // Some APIs report CIDR notation.
        let bare = text.split('/').next().unwrap_or(text);
        let Ok(ip) = bare.parse::<IpAddr>() else {
            continue;
        };
        match ip {
            IpAddr::V4(v4) => {
                let o = v4.octets();
                let shared = o[0] == 100 && (o[1] & 0xc0) == 64;
                if v4.is_unspecified() || v4.is_loopback() {
                    continue;
                }
                if v4.is_private() || shared || v4.is_link_local() {
                    private4.get_or_insert_with(|| bare.to_string());
                } else {
                    public4.get_or_insert_with(|| bare.to_string());
                }
            }
            IpAddr::V6(v6) => {
                let first = v6.segments()[0];
                let unique_local = (first & 0xfe00) == 0xfc00;
                let link_local = (first & 0xffc0) == 0xfe80;
                if v6.is_unspecified() || v6.is_loopback() || unique_local || link_local {
                    continue;
                }
                public6.get_or_insert_with(|| bare.to_string());
            }
        }
    }
    (public4, private4, public6)
}

/// SEV-SNP when the pod reports it: a `Res` entry `snp` (or `kr.res.snp`, `sev-snp`) with a
/// true value, or a `kr.res.snp` label if the pod carries labels.
pub(super) fn reported_confidential(pod: &Pod) -> Option<ConfidentialTech> {
    const KEYS: &[&str] = &["snp", "kr.res.snp", "sev-snp", "sevsnp", "amd-sev-snp"];
    let truthy = |v: &serde_json::Value| match v {
        serde_json::Value::Bool(b) => *b,
        serde_json::Value::Number(n) => n.as_f64().is_some_and(|n| n != 0.0),
        serde_json::Value::String(s) => {
            let s = s.trim().to_ascii_lowercase();
            !matches!(s.as_str(), "" | "0" | "false" | "no" | "off")
        }
        _ => false,
    };
    let in_res = pod.res.as_ref().is_some_and(|res| {
        res.iter()
            .any(|(k, v)| KEYS.contains(&k.to_ascii_lowercase().as_str()) && truthy(v))
    });
    let in_labels = match &pod.labels {
        Some(serde_json::Value::Object(map)) => map
            .iter()
            .any(|(k, v)| k.eq_ignore_ascii_case("kr.res.snp") && truthy(v)),
        Some(serde_json::Value::Array(list)) => list.iter().any(|l| {
            l.as_str()
                .and_then(|s| s.split_once('='))
                .is_some_and(|(k, v)| {
                    k.trim().eq_ignore_ascii_case("kr.res.snp")
                        && truthy(&serde_json::Value::String(v.to_string()))
                })
        }),
        _ => false,
    };
    (in_res || in_labels).then_some(ConfidentialTech::SevSnp)
}
