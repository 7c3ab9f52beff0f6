//! The table definition, shared by the code, the tests and `template.yaml` (a test compares them).

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType, StreamSpecification, StreamViewType,
};
use aws_sdk_dynamodb::Client;
use serde_json::{json, Value};

/// Partition key.
pub const PK: &str = "pk";
/// Sort key.
pub const SK: &str = "sk";
/// The project-VMs index.
pub const GSI1: &str = "gsi1";
/// Its partition key.
pub const GSI1_PK: &str = "gsi1pk";
/// Its sort key.
pub const GSI1_SK: &str = "gsi1sk";
/// The sparse stale-VM index (only VMs the cleanup job may have to act on carry its keys).
pub const GSI2: &str = "gsi2";
/// Its partition key: `STALE#{shard}`.
pub const GSI2_PK: &str = "gsi2pk";
/// Its sort key: `{category}#{since}#{vmId}`.
pub const GSI2_SK: &str = "gsi2sk";
/// The team index: every VM of a team that is not deleted, and the deleted ones until they are
/// purged (keys and [`TEAM_INDEX_ATTRIBUTES`]).
pub const GSI3: &str = "gsi3";
/// Its partition key: `TEAM#{teamId}#VMS`.
pub const GSI3_PK: &str = "gsi3pk";
/// Its sort key: `LIVE#{createdAt}#{vmId}`, or `DELETED#{deletedAt}#{vmId}` once deleted.
pub const GSI3_SK: &str = "gsi3sk";
/// What the team index carries beside the keys: a VM's id and what a populated VM names, so a
/// page of an admin list is read (VMs, projects, catalog) in one batch after one query.
pub const TEAM_INDEX_ATTRIBUTES: [&str; 6] = [
    "_id",
    "project",
    "cloudProvider",
    "provider",
    "size",
    "price",
];
/// TTL attribute (Unix seconds) of expiring items.
pub const TTL_ATTRIBUTE: &str = "expiresAtEpoch";

/// Keys and indexes of the table, in CloudFormation's property names.
#[derive(Clone, Debug, PartialEq)]
pub struct TableDefinition(pub Value);

/// The definition: `AttributeDefinitions`, `KeySchema`, `GlobalSecondaryIndexes`, `BillingMode`,
/// `StreamSpecification` and `TimeToLiveSpecification` as in a CloudFormation template.
pub fn table_definition() -> TableDefinition {
    TableDefinition(json!({
        "BillingMode": "PAY_PER_REQUEST",
        "AttributeDefinitions": [
            {"AttributeName": PK, "AttributeType": "S"},
            {"AttributeName": SK, "AttributeType": "S"},
            {"AttributeName": GSI1_PK, "AttributeType": "S"},
            {"AttributeName": GSI1_SK, "AttributeType": "S"},
            {"AttributeName": GSI2_PK, "AttributeType": "S"},
            {"AttributeName": GSI2_SK, "AttributeType": "S"},
            {"AttributeName": GSI3_PK, "AttributeType": "S"},
            {"AttributeName": GSI3_SK, "AttributeType": "S"}
        ],
        "KeySchema": [
            {"AttributeName": PK, "KeyType": "HASH"},
            {"AttributeName": SK, "KeyType": "RANGE"}
        ],
        "GlobalSecondaryIndexes": [
            {
                "IndexName": GSI1,
                "KeySchema": [
                    {"AttributeName": GSI1_PK, "KeyType": "HASH"},
                    {"AttributeName": GSI1_SK, "KeyType": "RANGE"}
                ],
                "Projection": {"ProjectionType": "ALL"}
            },
            {
                "IndexName": GSI2,
                "KeySchema": [
                    {"AttributeName": GSI2_PK, "KeyType": "HASH"},
                    {"AttributeName": GSI2_SK, "KeyType": "RANGE"}
                ],
                "Projection": {"ProjectionType": "KEYS_ONLY"}
            },
            {
                "IndexName": GSI3,
                "KeySchema": [
                    {"AttributeName": GSI3_PK, "KeyType": "HASH"},
                    {"AttributeName": GSI3_SK, "KeyType": "RANGE"}
                ],
                "Projection": {
                    "ProjectionType": "INCLUDE",
                    "NonKeyAttributes": TEAM_INDEX_ATTRIBUTES
                }
            }
        ],
        "StreamSpecification": {"StreamViewType": "NEW_AND_OLD_IMAGES"},
        "TimeToLiveSpecification": {"AttributeName": TTL_ATTRIBUTE, "Enabled": true}
    }))
}

fn key_schema(v: &Value) -> Vec<KeySchemaElement> {
    v.as_array()
        .into_iter()
        .flatten()
        .map(|k| {
            KeySchemaElement::builder()
                .attribute_name(k["AttributeName"].as_str().unwrap_or_default())
                .key_type(if k["KeyType"] == "HASH" {
                    KeyType::Hash
                } else {
                    KeyType::Range
                })
                .build()
                .expect("key schema element is complete")
        })
        .collect()
}

/// Creates the table (and its TTL setting) from [`table_definition`].
pub async fn create_table(client: &Client, name: &str) -> Result<(), aws_sdk_dynamodb::Error> {
    let def = table_definition().0;
    let mut req = client
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .set_key_schema(Some(key_schema(&def["KeySchema"])))
        .stream_specification(
            StreamSpecification::builder()
                .stream_enabled(true)
                .stream_view_type(StreamViewType::NewAndOldImages)
                .build()
                .expect("stream specification is complete"),
        );
    for a in def["AttributeDefinitions"].as_array().into_iter().flatten() {
        req = req.attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name(a["AttributeName"].as_str().unwrap_or_default())
                .attribute_type(ScalarAttributeType::S)
                .build()
                .expect("attribute definition is complete"),
        );
    }
    for g in def["GlobalSecondaryIndexes"]
        .as_array()
        .into_iter()
        .flatten()
    {
        req = req.global_secondary_indexes(
            GlobalSecondaryIndex::builder()
                .index_name(g["IndexName"].as_str().unwrap_or_default())
                .set_key_schema(Some(key_schema(&g["KeySchema"])))
                .projection(
                    Projection::builder()
                        .projection_type(match g["Projection"]["ProjectionType"].as_str() {
                            Some("KEYS_ONLY") => ProjectionType::KeysOnly,
                            Some("INCLUDE") => ProjectionType::Include,
                            _ => ProjectionType::All,
                        })
                        .set_non_key_attributes(g["Projection"]["NonKeyAttributes"].as_array().map(
                            |a| {
                                a.iter()
                                    .filter_map(|v| v.as_str().map(String::from))
                                    .collect()
                            },
                        ))
                        .build(),
                )
                .build()
                .expect("index is complete"),
        );
    }
    match req.send().await {
        Ok(_) => {}
        // A retried create whose first attempt got through (a slow DynamoDB Local): the table
        // is there.
        Err(e)
            if e.as_service_error()
                .is_some_and(|se| se.is_resource_in_use_exception()) => {}
        Err(e) => return Err(e.into()),
    }
    client
        .update_time_to_live()
        .table_name(name)
        .time_to_live_specification(
            aws_sdk_dynamodb::types::TimeToLiveSpecification::builder()
                .attribute_name(TTL_ATTRIBUTE)
                .enabled(true)
                .build()
                .expect("ttl specification is complete"),
        )
        .send()
        .await?;
    Ok(())
}
