//! Golden tests: every JSON example of the API page parses into the models and
//! re-serializes to the same JSON, apart from the documented additions.

use serde_json::{json, Value};
use vmapi_models::{ActionResult, CreateVmRequest, VirtualMachine, VmId, VmStatus};

fn fixture(name: &str) -> Value {
    let path = format!("{}/tests/fixtures/{name}.json", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

/// Re-serializes one VM and removes the documented additions.
fn round_trip_vm(original: &Value, additions: &[&str]) -> Value {
    let vm: VirtualMachine = serde_json::from_value(original.clone()).expect("spec VM parses");
    let mut out = serde_json::to_value(&vm).unwrap();
    let obj = out.as_object_mut().unwrap();
    assert_eq!(
        obj["statusName"],
        json!(vm.status.name()),
        "statusName matches status"
    );
    for key in additions {
        assert!(obj.remove(*key).is_some(), "{key} is written");
    }
    out
}

#[test]
fn create_response_round_trips() {
    let spec = fixture("create-response");
    let vms = spec.as_array().unwrap();
    assert_eq!(vms.len(), 1);
    // `attestation` (null) is written on every VM, the create answer included.
    assert_eq!(
        round_trip_vm(&vms[0], &["statusName", "attestation"]),
        vms[0]
    );
    let vm: VirtualMachine = serde_json::from_value(vms[0].clone()).unwrap();
    assert_eq!(vm.status, VmStatus::Creating);
    assert_eq!(vm.attestation_id.get_version_num(), 4);
}

#[test]
fn list_response_round_trips_with_populated_references() {
    let spec = fixture("list-response");
    let vm = &spec.as_array().unwrap()[0];
    assert_eq!(round_trip_vm(vm, &["statusName"]), *vm);
    let parsed: VirtualMachine = serde_json::from_value(vm.clone()).unwrap();
    assert!(matches!(parsed.provider, vmapi_models::Ref::Populated(_)));
    assert!(matches!(parsed.project, vmapi_models::Ref::Id(_)));
}

#[test]
fn get_response_round_trips_with_project_and_team() {
    let spec = fixture("get-response");
    assert_eq!(round_trip_vm(&spec, &["statusName"]), spec);
    let parsed: VirtualMachine = serde_json::from_value(spec.clone()).unwrap();
    assert!(matches!(parsed.team, vmapi_models::Ref::Populated(_)));
    assert_eq!(parsed.status, VmStatus::Running);
    // Money keeps its form: 30 stays 30, 0.04 stays 0.04.
    let out = serde_json::to_string(&parsed).unwrap();
    assert!(out.contains(r#""pricePerMonth":30,"#), "{out}");
    assert!(out.contains(r#""pricePerHour":0.04,"#), "{out}");
}

#[test]
fn create_request_parses_and_round_trips() {
    let spec = fixture("create-request");
    let req: CreateVmRequest = serde_json::from_value(spec.clone()).expect("spec request parses");
    assert_eq!(req.host_names.len(), 1);
    assert_eq!(req.subscription, None, "\"\" is read as no subscription");
    assert_eq!(req.quantity, Some(1));
    let mut out = serde_json::to_value(&req).unwrap();
    // The only normalization: "" subscription becomes null.
    out["subscription"] = json!("");
    assert_eq!(out, spec);
}

#[test]
fn action_responses_keep_spec_fields() {
    for (name, status) in [
        ("stop-response", VmStatus::Stopped),
        ("start-response", VmStatus::Running),
        ("delete-response", VmStatus::Deleted),
    ] {
        let spec = fixture(name);
        let id = VmId::parse(spec["vmId"].as_str().unwrap()).unwrap();
        let mut out = serde_json::to_value(ActionResult::new(id, status)).unwrap();
        let obj = out.as_object_mut().unwrap();
        assert_eq!(obj.remove("status"), Some(json!(status.code())));
        assert_eq!(obj.remove("statusName"), Some(json!(status.name())));
        assert_eq!(out, spec, "{name}");
    }
}

#[test]
fn create_request_rejects_unknown_fields_and_bad_ids() {
    let mut spec = fixture("create-request");
    spec["password"] = json!("hunter2");
    let err = serde_json::from_value::<CreateVmRequest>(spec)
        .unwrap_err()
        .to_string();
    assert!(err.contains("unknown field `password`"), "{err}");

    let mut spec = fixture("create-request");
    spec["team"] = json!("not-an-id");
    let err = serde_json::from_value::<CreateVmRequest>(spec)
        .unwrap_err()
        .to_string();
    assert!(err.contains("not a valid id"), "{err}");

    let mut spec = fixture("create-request");
    spec["access"] = json!({"password": "x"});
    assert!(serde_json::from_value::<CreateVmRequest>(spec).is_err());
}
