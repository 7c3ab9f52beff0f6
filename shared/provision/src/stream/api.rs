//! The DynamoDB Streams API as the local consumer needs it: records come back as their raw
//! JSON, so that filters see what Lambda's filters see and one record the SDK cannot decode
//! does not take the rest of its page down with it (DynamoDB Local, for one, renders an empty
//! map as `{}`, which fails the SDK's decoding of the whole `GetRecords` answer).
//!
//! Plain JSON-over-HTTP calls (`X-Amz-Target: DynamoDBStreams_20120810.*`), signed with SigV4
//! for the `dynamodb` signing name.

use std::time::SystemTime;

use aws_credential_types::provider::ProvideCredentials;
use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use serde_json::{json, Value};

/// A failed call: the service's error code and message, or the transport's cause.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The service answered with an error.
    #[error("DynamoDB Streams {op}: {code}: {message} (HTTP {status})")]
    Service {
        op: &'static str,
        status: u16,
        code: String,
        message: String,
    },
    /// No answer, or one that is not the API's JSON.
    #[error("DynamoDB Streams {op}: {cause}")]
    Transport { op: &'static str, cause: String },
}

impl ApiError {
    /// The service's error code (`ExpiredIteratorException`, ...), without its namespace.
    pub fn code(&self) -> Option<&str> {
        match self {
            ApiError::Service { code, .. } => Some(code),
            ApiError::Transport { .. } => None,
        }
    }
}

/// A shard as `DescribeStream` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardInfo {
    /// Its id.
    pub id: String,
    /// The shard it split from, if any.
    pub parent: Option<String>,
    /// Closed: it has an ending sequence number and takes no new records.
    pub closed: bool,
}

/// Where to take a shard iterator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Position {
    /// After the newest record.
    Latest,
    /// At the oldest record.
    TrimHorizon,
    /// Just after this sequence number.
    After(String),
    /// At this sequence number.
    At(String),
}

/// One `GetRecords` answer.
#[derive(Debug, serde::Deserialize)]
pub struct Page {
    /// The records, as JSON text each: a consumer parses one at a time, so a page of 1000
    /// records with their images is never held as one tree.
    #[serde(rename = "Records", default)]
    pub records: Vec<Box<serde_json::value::RawValue>>,
    /// `None` when the shard is closed and read to its end.
    #[serde(rename = "NextShardIterator", default)]
    pub next_iterator: Option<String>,
}

/// A DynamoDB Streams client that keeps records as JSON.
#[derive(Clone)]
pub struct StreamsApi {
    http: reqwest::Client,
    endpoint: String,
    region: String,
    credentials: Option<aws_credential_types::provider::SharedCredentialsProvider>,
}

impl StreamsApi {
    /// A client for the endpoint DynamoDB uses locally (`AWS_ENDPOINT_URL_DYNAMODB_STREAMS`,
    /// else `AWS_ENDPOINT_URL_DYNAMODB`: DynamoDB Local serves both on one port), else the
    /// region's public endpoint. Empty variables count as unset.
    pub fn new(sdk: &aws_config::SdkConfig) -> StreamsApi {
        let region = sdk
            .region()
            .map(|r| r.to_string())
            .unwrap_or_else(|| "us-east-1".into());
        let env = vmapi_config::Env::process();
        let endpoint = env
            .get(&crate::config::AWS_ENDPOINT_URL_DYNAMODB_STREAMS)
            .or_else(|| env.get(&vmapi_aws::settings::AWS_ENDPOINT_URL_DYNAMODB))
            .unwrap_or_else(|| format!("https://streams.dynamodb.{region}.amazonaws.com"));
        StreamsApi {
            http: reqwest::Client::new(),
            endpoint: endpoint.trim_end_matches('/').to_string(),
            region,
            credentials: sdk.credentials_provider(),
        }
    }

    /// The answer's text of a successful call; an error answer becomes [`ApiError::Service`].
    async fn call_text(&self, op: &'static str, body: Value) -> Result<String, ApiError> {
        let transport = |cause: String| ApiError::Transport { op, cause };
        let body = body.to_string();
        let url = format!("{}/", self.endpoint);
        let target = format!("DynamoDBStreams_20120810.{op}");
        let mut headers: Vec<(String, String)> = vec![
            ("content-type".into(), "application/x-amz-json-1.0".into()),
            ("x-amz-target".into(), target),
        ];
        if let Some(provider) = &self.credentials {
            let credentials = provider
                .provide_credentials()
                .await
                .map_err(|e| transport(format!("loading AWS credentials: {}", chain(&e))))?;
            let identity = Identity::from(credentials);
            let params = v4::SigningParams::builder()
                .identity(&identity)
                .region(&self.region)
                .name("dynamodb")
                .time(SystemTime::now())
                .settings(SigningSettings::default())
                .build()
                .map_err(|e| transport(format!("signing: {e}")))?
                .into();
            let signable = SignableRequest::new(
                "POST",
                url.as_str(),
                headers.iter().map(|(k, v)| (k.as_str(), v.as_str())),
                SignableBody::Bytes(body.as_bytes()),
            )
            .map_err(|e| transport(format!("signing: {e}")))?;
            let (instructions, _) = sign(signable, &params)
                .map_err(|e| transport(format!("signing: {e}")))?
                .into_parts();
            for (name, value) in instructions.headers() {
                headers.push((name.to_string(), value.to_string()));
            }
        }
        let mut request = self.http.post(&url).body(body);
        for (k, v) in &headers {
            request = request.header(k, v);
        }
        let answer = request.send().await.map_err(|e| transport(chain(&e)))?;
        let status = answer.status().as_u16();
        let text = answer.text().await.map_err(|e| transport(chain(&e)))?;
        if status < 300 {
            return Ok(text);
        }
        let value: Value = serde_json::from_str(&text).map_err(|e| {
            transport(format!(
                "HTTP {status}, an answer that is not JSON ({e}): {}",
                text.chars().take(200).collect::<String>()
            ))
        })?;
        let text_of = |k: &str| value.get(k).and_then(Value::as_str).unwrap_or_default();
        let code = text_of("__type");
        let message = match text_of("message") {
            "" => text_of("Message"),
            m => m,
        };
        Err(ApiError::Service {
            op,
            status,
            code: code.rsplit('#').next().unwrap_or(code).to_string(),
            message: message.to_string(),
        })
    }

    async fn call(&self, op: &'static str, body: Value) -> Result<Value, ApiError> {
        let text = self.call_text(op, body).await?;
        serde_json::from_str(&text).map_err(|e| ApiError::Transport {
            op,
            cause: format!("an answer that is not JSON: {e}"),
        })
    }

    /// Every shard of the stream (all pages of `DescribeStream`).
    pub async fn shards(&self, stream_arn: &str) -> Result<Vec<ShardInfo>, ApiError> {
        let mut shards = Vec::new();
        let mut start: Option<String> = None;
        loop {
            let mut body = json!({ "StreamArn": stream_arn });
            if let Some(s) = &start {
                body["ExclusiveStartShardId"] = json!(s);
            }
            let out = self.call("DescribeStream", body).await?;
            let desc = &out["StreamDescription"];
            for shard in desc["Shards"].as_array().into_iter().flatten() {
                let Some(id) = shard["ShardId"].as_str() else {
                    continue;
                };
                shards.push(ShardInfo {
                    id: id.to_string(),
                    parent: shard["ParentShardId"].as_str().map(str::to_string),
                    closed: shard["SequenceNumberRange"]["EndingSequenceNumber"].is_string(),
                });
            }
            match desc["LastEvaluatedShardId"].as_str() {
                Some(last) => start = Some(last.to_string()),
                None => return Ok(shards),
            }
        }
    }

    /// A shard iterator at `position`.
    pub async fn iterator(
        &self,
        stream_arn: &str,
        shard: &str,
        position: &Position,
    ) -> Result<String, ApiError> {
        let mut body = json!({ "StreamArn": stream_arn, "ShardId": shard });
        let (kind, seq) = match position {
            Position::Latest => ("LATEST", None),
            Position::TrimHorizon => ("TRIM_HORIZON", None),
            Position::After(s) => ("AFTER_SEQUENCE_NUMBER", Some(s)),
            Position::At(s) => ("AT_SEQUENCE_NUMBER", Some(s)),
        };
        body["ShardIteratorType"] = json!(kind);
        if let Some(seq) = seq {
            body["SequenceNumber"] = json!(seq);
        }
        let out = self.call("GetShardIterator", body).await?;
        out["ShardIterator"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| ApiError::Transport {
                op: "GetShardIterator",
                cause: "the answer has no ShardIterator".into(),
            })
    }

    /// Up to `limit` records from `iterator`.
    pub async fn records(&self, iterator: &str, limit: usize) -> Result<Page, ApiError> {
        let text = self
            .call_text(
                "GetRecords",
                json!({ "ShardIterator": iterator, "Limit": limit }),
            )
            .await?;
        serde_json::from_str(&text).map_err(|e| ApiError::Transport {
            op: "GetRecords",
            cause: format!("an answer that is not a page of records: {e}"),
        })
    }
}

/// An error with its sources.
pub(crate) fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    vmapi_core::ErrorChain(e).to_string()
}
