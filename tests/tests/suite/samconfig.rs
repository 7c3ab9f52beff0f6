//! `samconfig.toml`: two environments whose overrides the template accepts, the same
//! architecture for build and deploy, and no secrets.

use std::collections::BTreeMap;

use serde_json::Value;
use vmapi_tests::*;

/// An environment's `parameter_overrides` of one command, as name → value.
fn overrides(config: &toml::Table, env: &str, command: &str) -> BTreeMap<String, String> {
    let list = config[env][command]["parameters"]["parameter_overrides"]
        .as_array()
        .unwrap_or_else(|| panic!("{env}.{command}: parameter_overrides is a list"));
    list.iter()
        .map(|o| {
            let (k, v) = o.as_str().unwrap().split_once('=').unwrap();
            (k.to_string(), v.to_string())
        })
        .collect()
}

fn config() -> toml::Table {
    read("samconfig.toml")
        .parse()
        .expect("samconfig.toml is TOML")
}

/// Whether `value` passes the parameter's constraints (the subset the template uses).
fn accepts(param: &Value, value: &str) -> Result<(), String> {
    if let Some(allowed) = param["AllowedValues"].as_array() {
        if !allowed.iter().any(|a| {
            a.as_str() == Some(value) || a.as_f64().is_some_and(|n| value.parse() == Ok(n))
        }) {
            return Err(format!("'{value}' is not one of {allowed:?}"));
        }
    }
    if let Some(pattern) = param["AllowedPattern"].as_str() {
        if !regex::Regex::new(pattern).unwrap().is_match(value) {
            return Err(format!("'{value}' does not match {pattern}"));
        }
    }
    if param["Type"] == "Number" {
        let n: f64 = value
            .parse()
            .map_err(|_| format!("'{value}' is no number"))?;
        if param["MinValue"].as_f64().is_some_and(|min| n < min) {
            return Err(format!("{n} is below MinValue"));
        }
    }
    Ok(())
}

#[test]
fn both_environments_deploy_apart_with_overrides_the_template_accepts() {
    let config = config();
    let t = template_json();
    let params = t["Parameters"].as_object().unwrap();
    let mut stacks = Vec::new();
    for env in ["default", "staging"] {
        stacks.push(
            config[env]["global"]["parameters"]["stack_name"]
                .as_str()
                .unwrap()
                .to_string(),
        );
        let deploy = overrides(&config, env, "deploy");
        for (name, value) in &deploy {
            let param = params
                .get(name)
                .unwrap_or_else(|| panic!("{env}: {name} is not a template parameter"));
            assert_ne!(
                param["NoEcho"], true,
                "{env}: secret parameter {name} in samconfig"
            );
            accepts(param, value).unwrap_or_else(|e| panic!("{env}: {name}: {e}"));
        }
        for (name, param) in params {
            assert!(
                param.get("Default").is_some() || deploy.contains_key(name),
                "{env}: required parameter {name} is not given"
            );
        }
        // Build and deploy agree on the architecture.
        let build = overrides(&config, env, "build");
        assert_eq!(
            build.get("Architecture"),
            deploy.get("Architecture"),
            "{env}"
        );
    }
    assert_ne!(stacks[0], stacks[1], "two environments, two stacks");
    let ids: Vec<_> = ["default", "staging"]
        .iter()
        .map(|env| overrides(&config, env, "deploy")["DeploymentId"].clone())
        .collect();
    assert_ne!(ids[0], ids[1], "two environments, two deployment ids");
}

#[test]
fn the_default_architecture_is_the_one_the_checks_build() {
    let t = template_json();
    assert_eq!(
        std::env::consts::ARCH,
        "x86_64",
        "the checks build on x86_64"
    );
    assert_eq!(t["Parameters"]["Architecture"]["Default"], "x86_64");
    for env in ["default", "staging"] {
        assert_eq!(
            overrides(&config(), env, "build")["Architecture"],
            "x86_64",
            "{env}"
        );
    }
}

#[test]
fn builds_are_not_cached_by_sam() {
    // SAM's build cache hashes each function's CodeUri, `.` here: the repository with its
    // target/ folder (tens of GB), once per function; a concurrent cargo build makes it fail
    // with FileNotFoundError (found running `sam build` by hand).
    let t = template_json();
    let code_uri = &t["Globals"]["Function"]["CodeUri"];
    assert_eq!(code_uri, ".", "the functions build from the workspace root");
    let config = config();
    for env in ["default", "staging"] {
        let cached = config[env]["build"]["parameters"].get("cached");
        assert!(
            cached.is_none_or(|c| c.as_bool() == Some(false)),
            "{env}: build.cached would hash target/"
        );
    }
}
