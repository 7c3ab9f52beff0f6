//! Golden tests: every JSON example of the API page parses into the models and
//! re-serializes to the same JSON, apart from the documented additions (a VM's `statusName`,
//! which the models also read, is added to the page's VMs before they are parsed).

use serde_json::{json, Value};
use vmapi_models::{ActionResult, CreateVmRequest, VirtualMachine, VmId, VmStatus};

fn fixture(name: &str) -> Value {
    let path = format!("{}/tests/fixtures/{name}.json", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

/// A VM of the API page, parsed with its `statusName` added.
fn parse_vm(spec: &Value) -> VirtualMachine {
    let mut vm = spec.clone();
    let status = VmStatus::from_code(spec["status"].as_u64().unwrap()).unwrap();
    vm["statusName"] = json!(status.name());
    serde_json::from_value(vm).expect("spec VM parses")
}

/// Re-serializes one VM and removes the documented additions.
fn round_trip_vm(original: &Value, additions: &[&str]) -> Value {
    let vm = parse_vm(original);
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
    let vm = parse_vm(&vms[0]);
    assert_eq!(vm.status, VmStatus::Creating);
    assert_eq!(vm.attestation_id.get_version_num(), 4);
}

#[test]
fn list_response_round_trips_with_populated_references() {
    let spec = fixture("list-response");
    let vm = &spec.as_array().unwrap()[0];
    assert_eq!(round_trip_vm(vm, &["statusName"]), *vm);
    let parsed = parse_vm(vm);
    assert!(matches!(parsed.provider, vmapi_models::Ref::Populated(_)));
    assert!(matches!(parsed.project, vmapi_models::Ref::Id(_)));
}

#[test]
fn get_response_round_trips_with_project_and_team() {
    let spec = fixture("get-response");
    assert_eq!(round_trip_vm(&spec, &["statusName"]), spec);
    let parsed = parse_vm(&spec);
    assert!(matches!(parsed.team, vmapi_models::Ref::Populated(_)));
    assert_eq!(parsed.status, VmStatus::Running);
    // Money keeps its form: 30 stays 30, 0.04 stays 0.04.
    let out = serde_json::to_string(&parsed).unwrap();
    assert!(out.contains(r#""pricePerMonth":30,"#), "{out}");
    assert!(out.contains(r#""pricePerHour":0.04,"#), "{out}");
}

#[test]
fn status_name_is_read_by_name() {
    let spec = fixture("get-response");
    let mut vm = spec.clone();
    vm["statusName"] = json!("runing");
    let err = serde_json::from_value::<VirtualMachine>(vm)
        .unwrap_err()
        .to_string();
    assert!(err.contains("'runing' is not a VmStatus name"), "{err}");
    assert!(
        serde_json::from_value::<VirtualMachine>(spec).is_err(),
        "statusName is required"
    );
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
