//! `--stack`: the table name from the CloudFormation stack's outputs (on moto).

use super::*;

#[tokio::test]
async fn stack_option_reads_the_table_from_the_stack_outputs() {
    init_env();
    let cfn_url = endpoint("AWS_ENDPOINT_URL_CLOUDFORMATION");
    let (table, repo) = fresh_table().await;
    let stack = format!("vm-api-{}", vmapi_models::ObjectId::new());
    let template = serde_json::json!({
        "AWSTemplateFormatVersion": "2010-09-09",
        "Resources": {"Topic": {"Type": "AWS::SNS::Topic"}},
        "Outputs": {
            "TableName": {"Value": table},
            "DeploymentId": {"Value": "staging-1"},
            "ApiUrl": {"Value": "https://example.invalid"}
        }
    });
    let config = vmapi_aws::sdk_config().await;
    let cfn = aws_sdk_cloudformation::Client::from_conf(
        aws_sdk_cloudformation::config::Builder::from(&config)
            .endpoint_url(cfn_url)
            .build(),
    );
    cfn.create_stack()
        .stack_name(&stack)
        .template_body(template.to_string())
        .send()
        .await
        .expect("moto creates the stack");

    // No --table: the stack names it.
    let out = vmctl(
        None,
        &[
            "--stack",
            &stack,
            "team",
            "create",
            "--owner",
            "alice",
            "--name",
            "Acme",
            "--email",
            "ops@acme.example",
        ],
    );
    assert!(out.ok, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stderr.contains(&format!(
            "stack {stack}: table {table}, deployment staging-1"
        )),
        "{}",
        out.stderr
    );
    assert!(
        stored_team(&repo, out.stdout.trim()).await.is_some(),
        "written to the stack's table"
    );
    assert!(ok(None, &["--stack", &stack, "vms", "stale"]).starts_with("ID"));

    let e = refused(None, &["--stack", "no-such-stack", "catalog", "list"]);
    assert!(e.contains("no-such-stack"), "{e}");
}
