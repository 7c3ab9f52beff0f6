//! Where vmctl's settings come from: the environment and `--table`, or a deployed stack's
//! outputs (`--stack NAME`: `TableName` and `DeploymentId`, read with CloudFormation's
//! DescribeStacks).

use std::collections::HashMap;

use vmapi_config::Env;
use vmapi_models::DeploymentId;

use crate::error::AnyError;

/// The table and the settings that override the environment's.
#[derive(Clone, Debug, Default)]
pub struct Settings {
    /// The DynamoDB table.
    pub table: String,
    /// Variables taken from the stack, consulted before the environment.
    overrides: HashMap<String, String>,
}

impl Settings {
    /// From `--table` and the environment alone.
    pub fn from_table(table: &str) -> Self {
        Settings {
            table: table.to_string(),
            overrides: HashMap::new(),
        }
    }

    /// The settings: the stack's values, else the environment's.
    pub fn env(&self) -> Env<'_> {
        Env::process().overridden_by(|name| self.overrides.get(name).cloned())
    }

    /// From a deployed stack's outputs: `TableName` (required) is the table, `DeploymentId`
    /// (when present) is `DEPLOYMENT_ID`.
    pub async fn from_stack(name: &str) -> Result<Self, AnyError> {
        let client = aws_sdk_cloudformation::Client::new(&vmapi_aws::sdk_config().await);
        let out = client
            .describe_stacks()
            .stack_name(name)
            .send()
            .await
            .map_err(|e| {
                format!(
                    "reading stack {name} (CloudFormation DescribeStacks): {}",
                    aws_sdk_cloudformation::error::DisplayErrorContext(&e)
                )
            })?;
        let stack = out
            .stacks()
            .first()
            .ok_or_else(|| format!("stack {name} not found"))?;
        let outputs: HashMap<&str, &str> = stack
            .outputs()
            .iter()
            .filter_map(|o| Some((o.output_key()?, o.output_value()?)))
            .collect();
        Self::from_outputs(name, &outputs)
    }

    /// The settings a stack's outputs give.
    pub fn from_outputs(name: &str, outputs: &HashMap<&str, &str>) -> Result<Self, AnyError> {
        let table = outputs
            .get("TableName")
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                format!(
                    "stack {name} has no TableName output (outputs: {}); is it a VM API stack?",
                    {
                        let mut keys: Vec<&str> = outputs.keys().copied().collect();
                        keys.sort();
                        keys.join(", ")
                    }
                )
            })?;
        let mut overrides = HashMap::new();
        if let Some(id) = outputs.get("DeploymentId") {
            DeploymentId::parse(id)
                .map_err(|e| format!("stack {name}: output DeploymentId: {e}"))?;
            overrides.insert(DeploymentId::ENV.to_string(), id.to_string());
        }
        Ok(Settings {
            table: table.to_string(),
            overrides,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outputs_name_the_table_and_the_deployment() {
        let outputs = HashMap::from([("TableName", "vm-api-prod"), ("DeploymentId", "prod")]);
        let s = Settings::from_outputs("vm-api", &outputs).unwrap();
        assert_eq!(s.table, "vm-api-prod");
        let deployment = vmapi_aws::settings::DEPLOYMENT_ID;
        assert_eq!(s.env().get(&deployment).as_deref(), Some("prod"));

        let e = Settings::from_outputs("other", &HashMap::from([("ApiUrl", "https://x")]))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("no TableName output") && e.contains("ApiUrl"),
            "{e}"
        );
    }
}
