//! The functions' IAM roles as CloudFormation deploys them: template.yaml through the SAM
//! transform (scripts/sam-transform.py, run with the SAM CLI's Python that `make test`
//! installs), so the roles SAM makes, the managed policies it adds and the explicit ones are all
//! read as they will be.

use std::sync::OnceLock;

use serde_json::Value;
use vmapi_tests::{root, template_json};

/// One statement of a role.
#[derive(Debug, Clone)]
pub struct Grant {
    pub actions: Vec<String>,
    /// Each resource as the template writes it (a string, or an intrinsic such as `Fn::Sub`).
    pub resources: Vec<Value>,
    /// `Null` when the statement has none.
    pub condition: Value,
    /// The template condition the statement is granted under (`Fn::If`), if any.
    pub when: Option<String>,
    /// The inline policy's name, or the managed policy's logical id.
    pub policy: String,
}

impl Grant {
    /// The resources as text: a `Fn::Sub` as its pattern, other intrinsics as JSON.
    pub fn resource_text(&self) -> Vec<String> {
        self.resources
            .iter()
            .map(|r| match (r, r["Fn::Sub"].as_str()) {
                (Value::String(s), _) => s.clone(),
                (_, Some(sub)) => sub.to_string(),
                (other, None) => other.to_string(),
            })
            .collect()
    }
}

/// A function's role: the AWS managed policies it carries and every statement it grants (inline
/// and from the template's own managed policies).
#[derive(Debug)]
pub struct Role {
    pub aws_managed: Vec<String>,
    pub grants: Vec<Grant>,
}

impl Role {
    /// Every action the role grants.
    pub fn actions(&self) -> std::collections::BTreeSet<String> {
        self.grants
            .iter()
            .flat_map(|g| g.actions.iter().cloned())
            .collect()
    }
}

/// The SAM-transformed template (CloudFormation's own intrinsics kept as JSON), made once per
/// test process.
pub fn transformed() -> &'static Value {
    static T: OnceLock<Value> = OnceLock::new();
    T.get_or_init(|| {
        let python = root().join(".local/sam/bin/python");
        let out = std::process::Command::new(&python)
            .arg(root().join("scripts/sam-transform.py"))
            .arg(root().join("template.yaml"))
            .output()
            .unwrap_or_else(|e| {
                panic!(
                    "running {} (the SAM CLI's Python; `make test` installs it): {e}",
                    python.display()
                )
            });
        assert!(
            out.status.success(),
            "sam-transform.py failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("sam-transform.py prints JSON")
    })
}

/// The binaries the template builds, one per function.
pub fn binaries() -> Vec<String> {
    template_json()["Resources"]
        .as_object()
        .unwrap()
        .values()
        .filter_map(|r| {
            r["Metadata"]["BuildProperties"]["Binary"]
                .as_str()
                .map(String::from)
        })
        .collect()
}

/// Logical id of the function that builds `binary`.
fn function_id(binary: &str) -> String {
    template_json()["Resources"]
        .as_object()
        .unwrap()
        .iter()
        .find(|(_, r)| r["Metadata"]["BuildProperties"]["Binary"] == binary)
        .map(|(id, _)| id.clone())
        .unwrap_or_else(|| panic!("no function builds {binary}"))
}

/// The role of the function that builds `binary`.
pub fn role_of(binary: &str) -> Role {
    let t = transformed();
    let function = &t["Resources"][function_id(binary)];
    assert_eq!(function["Type"], "AWS::Lambda::Function", "{binary}");
    let role_id = function["Properties"]["Role"]["Fn::GetAtt"][0]
        .as_str()
        .unwrap_or_else(|| panic!("{binary}: its role is not a role of the template"));
    let role = &t["Resources"][role_id];
    assert_eq!(role["Type"], "AWS::IAM::Role", "{binary}");
    let props = &role["Properties"];
    let mut grants = Vec::new();
    for policy in props["Policies"].as_array().into_iter().flatten() {
        let name = policy["PolicyName"].as_str().unwrap_or_default();
        statements(&policy["PolicyDocument"], name, None, &mut grants);
    }
    let mut aws_managed = Vec::new();
    for arn in props["ManagedPolicyArns"].as_array().into_iter().flatten() {
        // A policy of the template attached under a condition: its grants carry it.
        if let Some(branches) = arn.get("Fn::If") {
            assert_eq!(
                branches[2],
                serde_json::json!({"Ref": "AWS::NoValue"}),
                "{binary}"
            );
            let id = branches[1]["Ref"]
                .as_str()
                .expect("a policy of the template");
            let when = branches[0].as_str().map(String::from);
            let managed = &t["Resources"][id];
            assert_eq!(
                managed["Condition"], branches[0],
                "{binary}: {id} exists exactly then"
            );
            statements(
                &managed["Properties"]["PolicyDocument"],
                id,
                when,
                &mut grants,
            );
        } else if let Some(s) = arn.as_str() {
            aws_managed.push(s.to_string());
        } else if let Some(s) = arn["Fn::Sub"].as_str() {
            aws_managed.push(s.replace("${AWS::Partition}", "aws"));
        } else if let Some(id) = arn["Ref"].as_str() {
            let managed = &t["Resources"][id];
            assert_eq!(managed["Type"], "AWS::IAM::ManagedPolicy", "{binary}: {id}");
            statements(
                &managed["Properties"]["PolicyDocument"],
                id,
                None,
                &mut grants,
            );
        } else {
            panic!("{binary}: a managed policy this test cannot read: {arn}");
        }
    }
    Role {
        aws_managed,
        grants,
    }
}

/// The statements of a policy document; `outer` is the condition the whole policy is under.
fn statements(document: &Value, policy: &str, outer: Option<String>, out: &mut Vec<Grant>) {
    let list = |v: &Value| -> Vec<Value> {
        match v {
            Value::Array(a) => a.clone(),
            Value::Null => vec![],
            other => vec![other.clone()],
        }
    };
    for s in list(&document["Statement"]) {
        let (s, when) = match s.get("Fn::If") {
            Some(branches) => {
                assert_eq!(
                    branches[2],
                    serde_json::json!({"Ref": "AWS::NoValue"}),
                    "{policy}: a conditional statement grants nothing otherwise"
                );
                (branches[1].clone(), branches[0].as_str().map(String::from))
            }
            None => (s, outer.clone()),
        };
        assert_eq!(s["Effect"], "Allow", "{policy}: {s}");
        out.push(Grant {
            actions: list(&s["Action"])
                .iter()
                .map(|a| a.as_str().expect("actions are names").to_string())
                .collect(),
            resources: list(&s["Resource"]),
            condition: s.get("Condition").cloned().unwrap_or(Value::Null),
            when,
            policy: policy.to_string(),
        });
    }
}
