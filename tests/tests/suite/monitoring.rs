//! What an operator watches: every alarm notifies the alarm topic, the alarms cover the stream,
//! the jobs, the API and throttles, stateful resources say what happens on delete, and the
//! dashboard is valid JSON over the metrics the code really emits.

use std::collections::BTreeSet;

use serde_json::{json, Value};
use vmapi_aws::emf;
use vmapi_tests::*;

#[test]
fn every_alarm_notifies_the_alarm_topic_on_alarm_and_on_recovery() {
    let t = template_json();
    let topic = json!([["HasAlarmTopic", "AlarmTopicArn", "AlarmTopic"]]);
    let alarms = resources_of_type(&t, "AWS::CloudWatch::Alarm");
    assert!(alarms.len() >= 7, "{alarms:?}");
    for (id, alarm) in &alarms {
        assert_eq!(alarm["Properties"]["AlarmActions"], topic, "{id}");
        assert_eq!(alarm["Properties"]["OKActions"], topic, "{id}");
    }
    // The stack makes the topic exactly when none is given.
    assert_eq!(
        t["Resources"]["AlarmTopic"]["Condition"],
        "CreatesAlarmTopic"
    );
    assert_eq!(
        t["Conditions"]["CreatesAlarmTopic"],
        json!(["AlarmTopicArn", ""])
    );
    assert_eq!(
        t["Conditions"]["HasAlarmTopic"],
        json!([["AlarmTopicArn", ""]])
    );
}

#[test]
fn the_alarms_cover_the_stream_the_jobs_the_api_and_throttles() {
    let t = template_json();
    let watched: BTreeSet<(String, String, String)> =
        resources_of_type(&t, "AWS::CloudWatch::Alarm")
            .into_iter()
            .map(|(_, a)| {
                let p = &a["Properties"];
                let dimension = p["Dimensions"][0]["Value"]
                    .as_str()
                    .unwrap_or("-")
                    .to_string();
                (
                    p["Namespace"].as_str().unwrap().to_string(),
                    p["MetricName"].as_str().unwrap().to_string(),
                    dimension,
                )
            })
            .collect();
    for (namespace, metric, of) in [
        ("AWS/Lambda", "IteratorAge", "ProvisionerFunction"),
        ("AWS/Lambda", "Errors", "ProvisionerFunction"),
        ("AWS/Lambda", "Errors", "CleanupFunction"),
        ("AWS/Lambda", "Throttles", "-"),
        ("AWS/ApiGateway", "5xx", "HttpApi"),
        (
            "AWS/SQS",
            "ApproximateNumberOfMessagesVisible",
            "ProvisionerDeadLetterQueue.QueueName",
        ),
        (
            "AWS/SQS",
            "ApproximateNumberOfMessagesVisible",
            "CleanupScheduleDeadLetterQueue.QueueName",
        ),
    ] {
        let key = (namespace.to_string(), metric.to_string(), of.to_string());
        assert!(
            watched.contains(&key),
            "no alarm on {key:?}; alarms: {watched:?}"
        );
    }
}

#[test]
fn the_schedule_retries_then_parks_and_the_api_logs_every_request_with_traces_on() {
    let t = template_json();
    let schedule =
        &t["Resources"]["CleanupFunction"]["Properties"]["Events"]["Schedule"]["Properties"];
    assert!(
        schedule["RetryPolicy"]["MaximumRetryAttempts"]
            .as_u64()
            .unwrap()
            >= 1
    );
    assert_eq!(
        schedule["DeadLetterConfig"]["Arn"],
        "CleanupScheduleDeadLetterQueue.Arn"
    );
    // EventBridge may write to that queue, for this rule only.
    let statement = &t["Resources"]["CleanupScheduleDeadLetterQueuePolicy"]["Properties"]
        ["PolicyDocument"]["Statement"][0];
    assert_eq!(statement["Principal"]["Service"], "events.amazonaws.com");
    assert_eq!(
        statement["Condition"]["ArnEquals"]["aws:SourceArn"],
        "CleanupFunctionSchedule.Arn"
    );

    let api = &t["Resources"]["HttpApi"]["Properties"]["AccessLogSettings"];
    assert_eq!(api["DestinationArn"], "ApiAccessLogs.Arn");
    let format: Value = serde_json::from_str(api["Format"].as_str().unwrap())
        .expect("the access log format is one JSON object");
    for field in [
        "requestId",
        "routeKey",
        "status",
        "responseLatency",
        "integrationError",
    ] {
        assert!(format.get(field).is_some(), "access log lacks {field}");
    }
    assert_eq!(t["Globals"]["Function"]["Tracing"], "Active");
}

#[test]
fn stateful_resources_say_what_happens_on_delete_and_on_replace() {
    let t = template_json();
    for kind in [
        "AWS::Logs::LogGroup",
        "AWS::SQS::Queue",
        "AWS::DynamoDB::Table",
        "AWS::SecretsManager::Secret",
    ] {
        for (id, r) in resources_of_type(&t, kind) {
            assert!(r["DeletionPolicy"].is_string(), "{id}: DeletionPolicy");
            assert!(
                r["UpdateReplacePolicy"].is_string(),
                "{id}: UpdateReplacePolicy"
            );
        }
    }
    // Every function has its own log group with the retention parameter.
    let groups: BTreeSet<String> = resources_of_type(&t, "AWS::Logs::LogGroup")
        .into_iter()
        .filter_map(|(_, g)| g["Properties"]["LogGroupName"].as_str().map(String::from))
        .collect();
    for (id, _) in resources_of_type(&t, "AWS::Serverless::Function") {
        assert!(
            groups.contains(&format!("/aws/lambda/${{{id}}}")),
            "{id}: log group"
        );
    }
}

#[test]
fn the_dashboard_is_json_over_every_alarm_and_the_metrics_the_code_emits() {
    let t = template_json();
    let sub = &t["Resources"]["Dashboard"]["Properties"]["DashboardBody"];
    let (body, vars) = (sub[0].as_str().unwrap(), &sub[1]);
    assert_eq!(vars["Ns"], "MetricsNamespace");

    // Every `${...}` names a resource (attribute), a parameter, a pseudo parameter or a variable.
    let names = regex::Regex::new(r"\$\{([^}]+)\}").unwrap();
    for c in names.captures_iter(body) {
        let name = c[1].split('.').next().unwrap();
        let known = t["Resources"].get(name).is_some()
            || t["Parameters"].get(name).is_some()
            || name.starts_with("AWS::")
            || vars.get(name).is_some();
        assert!(known, "dashboard refers to unknown {}", &c[1]);
    }
    let dashboard: Value = serde_json::from_str(&names.replace_all(body, "x"))
        .expect("the dashboard body is JSON once substituted");
    let widgets = dashboard["widgets"].as_array().unwrap();

    let shown: BTreeSet<&str> = widgets
        .iter()
        .filter(|w| w["type"] == "alarm")
        .flat_map(|w| w["properties"]["alarms"].as_array().unwrap().iter())
        .map(|a| a.as_str().unwrap())
        .collect();
    assert_eq!(
        shown,
        BTreeSet::from(["x"]),
        "alarm widget holds only substitutions"
    );
    for (id, _) in resources_of_type(&t, "AWS::CloudWatch::Alarm") {
        assert!(
            body.contains(&format!("${{{id}.Arn}}")),
            "dashboard misses alarm {id}"
        );
    }

    // The searches use the code's metric names with the dimension sets it emits.
    for (dimensions, metric) in [
        ("Deployment,Route", emf::REQUESTS),
        ("Deployment,Route", emf::ERRORS),
        ("Deployment,Route", emf::LATENCY),
        ("Deployment,Cloud,Operation,Outcome", emf::OPERATIONS),
        ("Deployment,Cloud", emf::TIME_TO_RUNNING),
    ] {
        let search = format!(
            "{{${{Ns}},{dimensions}}} Deployment=\\\"${{Dep}}\\\" MetricName=\\\"{metric}\\\""
        );
        assert!(body.contains(&search), "dashboard lacks {search}");
    }
    // The functions write to the namespace the dashboard reads.
    assert_eq!(
        t["Globals"]["Function"]["Environment"]["Variables"]["METRICS_NAMESPACE"],
        "MetricsNamespace"
    );
    assert_eq!(
        t["Parameters"]["MetricsNamespace"]["Default"],
        vmapi_aws::settings::METRICS_NAMESPACE.default.unwrap()
    );
}
