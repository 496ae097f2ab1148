//! Lambda's JSON (cargo feature `serde`): invocation records as Lambda's destination record, and
//! a function's settings as the JSON of `PutFunctionEventInvokeConfig` and
//! `PutFunctionConcurrency`.
//!
//! * [`LambdaJson`] holds what the JSON needs and the crate does not know: the AWS region and
//!   account for ARNs, and the wall-clock time of the runtime clock's epoch for timestamps. It
//!   serializes records ([`LambdaJson::record`]) and exports settings
//!   ([`LambdaJson::export_config`]).
//! * [`AwsFunctionSettings`] imports AWS JSON, checks it against Lambda's ranges, and applies it
//!   to a [`FunctionConfig`].

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::ser::Error as _;
use serde::{Serialize, Serializer};
use serde_json::{json, Map, Value};

use crate::clock::Timestamp;
use crate::error::Error;
use crate::function::{FunctionConfig, DEFAULT_QUEUE_CAPACITY, DEFAULT_TIMEOUT};
use crate::record::{Destination, ErrorKind, InvocationRecord};
use crate::retry::RetryPolicy;
use crate::runtime::Runtime;

/// Lambda's most retries after function errors (`MaximumRetryAttempts`).
const AWS_MAX_RETRIES: u32 = 2;
/// Lambda's shortest maximum event age, in seconds (`MaximumEventAgeInSeconds`).
const AWS_MIN_AGE_SECS: u64 = 60;
/// Lambda's longest (and default) maximum event age, in seconds.
const AWS_MAX_AGE_SECS: u64 = 21_600;
/// Lambda's longest function timeout, in seconds.
const AWS_MAX_TIMEOUT_SECS: u64 = 900;

const DEFAULT_REGION: &str = "us-east-1";
const DEFAULT_ACCOUNT_ID: &str = "123456789012";

/// Turns records and settings into Lambda's JSON: region and account for ARNs, and the
/// wall-clock time at which the runtime's clock read zero.
///
/// A record's [`timestamp`](InvocationRecord::timestamp) is a [`Timestamp`] on the runtime's
/// clock (nanoseconds since the clock's epoch), not wall time. Give the wall-clock time of that
/// epoch with [`new`](Self::new), or let [`for_runtime`](Self::for_runtime) work it out from a
/// running runtime. The default (`LambdaJson::default()`) puts the epoch at 1970-01-01T00:00:00Z,
/// which keeps timestamps deterministic under a [`ManualClock`](crate::ManualClock).
///
/// Function ARNs are `arn:aws:lambda:REGION:ACCOUNT:function:NAME`, by default with region
/// `us-east-1` and account `123456789012` (the account id AWS's documentation uses). Set your
/// own with [`region`](Self::region) and [`account_id`](Self::account_id).
///
/// # Examples
///
/// A failing handler's record, as Lambda would send it to an on-failure destination:
///
/// ```
/// use event_invoke::{Destination, Function, FunctionError, LambdaJson, ManualClock, Runtime};
/// use std::time::{Duration, UNIX_EPOCH};
///
/// let (tx, rx) = crossbeam_channel::unbounded();
/// let rt: Runtime<serde_json::Value> = Runtime::builder().clock(ManualClock::new()).build()?;
/// rt.register(
///     Function::new("orders", |_: &serde_json::Value, _ctx| {
///         Err(FunctionError::new("OrderRejected", "order 7 is out of stock"))
///     })
///     .on_failure(Destination::channel(tx)),
/// )?;
/// rt.invoke_async("orders", serde_json::json!({ "order": 7 }))?;
/// rt.run_until_idle();
/// let record = rx.try_recv()?;
///
/// // The runtime's clock read zero at 2019-11-14T18:13:05Z.
/// let lambda = LambdaJson::new(UNIX_EPOCH + Duration::from_secs(1_573_755_185))
///     .region("us-east-2");
/// let json = lambda.record_value(&record)?;
/// assert_eq!(json["version"], "1.0");
/// assert_eq!(json["timestamp"], "2019-11-14T18:16:05.000Z"); // 3 minutes of retries later
/// assert_eq!(
///     json["requestContext"]["functionArn"],
///     "arn:aws:lambda:us-east-2:123456789012:function:orders:$LATEST"
/// );
/// assert_eq!(json["requestContext"]["condition"], "RetriesExhausted");
/// assert_eq!(json["requestContext"]["approximateInvokeCount"], 3);
/// assert_eq!(json["requestPayload"]["order"], 7); // embedded JSON, not a string
/// assert_eq!(json["responseContext"]["statusCode"], 200);
/// assert_eq!(json["responseContext"]["functionError"], "Handled");
/// assert_eq!(json["responsePayload"]["errorType"], "OrderRejected");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[cfg_attr(docsrs, doc(cfg(feature = "serde")))]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LambdaJson {
    region: String,
    account_id: String,
    epoch: SystemTime,
}

impl Default for LambdaJson {
    /// Region `us-east-1`, account `123456789012`, epoch 1970-01-01T00:00:00Z.
    fn default() -> Self {
        LambdaJson {
            region: DEFAULT_REGION.to_string(),
            account_id: DEFAULT_ACCOUNT_ID.to_string(),
            epoch: UNIX_EPOCH,
        }
    }
}

impl LambdaJson {
    /// Lambda's JSON for a runtime whose clock read [`Timestamp::ZERO`] at wall-clock time
    /// `epoch`; default region and account.
    pub fn new(epoch: SystemTime) -> Self {
        LambdaJson {
            epoch,
            ..Self::default()
        }
    }

    /// Lambda's JSON for records of `runtime`: the epoch is now minus the runtime clock's
    /// current reading. Right for the default [`SystemClock`](crate::SystemClock); under a
    /// [`ManualClock`](crate::ManualClock) it maps the virtual time of this call to now.
    ///
    /// # Examples
    ///
    /// ```
    /// use event_invoke::{LambdaJson, Runtime};
    /// use std::time::SystemTime;
    ///
    /// let rt: Runtime<()> = Runtime::new();
    /// let lambda = LambdaJson::for_runtime(&rt);
    /// assert!(lambda.epoch() <= SystemTime::now());
    /// ```
    pub fn for_runtime<P: Send + 'static, R: Send + 'static>(runtime: &Runtime<P, R>) -> Self {
        let wall = SystemTime::now();
        let epoch = wall
            .checked_sub(runtime.now().as_duration())
            .unwrap_or(wall);
        Self::new(epoch)
    }

    /// The AWS region of the ARNs (default `us-east-1`).
    pub fn region(mut self, region: impl Into<String>) -> Self {
        self.region = region.into();
        self
    }

    /// The AWS account id of the ARNs (default `123456789012`).
    pub fn account_id(mut self, account_id: impl Into<String>) -> Self {
        self.account_id = account_id.into();
        self
    }

    /// The wall-clock time at which the runtime's clock read [`Timestamp::ZERO`].
    pub fn epoch(&self) -> SystemTime {
        self.epoch
    }

    /// The unqualified ARN of function `name`:
    /// `arn:aws:lambda:REGION:ACCOUNT:function:NAME`.
    pub fn function_arn(&self, name: &str) -> String {
        format!(
            "arn:aws:lambda:{}:{}:function:{name}",
            self.region, self.account_id
        )
    }

    /// The ARN of function `name` qualified with `$LATEST`, as records carry it in
    /// `requestContext.functionArn`.
    pub fn qualified_function_arn(&self, name: &str) -> String {
        format!("{}:$LATEST", self.function_arn(name))
    }

    /// `t` (a time on the runtime's clock) as Lambda writes record timestamps: ISO 8601 in UTC
    /// with milliseconds, e.g. `2019-11-14T18:16:05.568Z`. `None` when the epoch plus `t` is
    /// beyond what [`SystemTime`] can hold.
    ///
    /// # Examples
    ///
    /// ```
    /// use event_invoke::{LambdaJson, Timestamp};
    /// use std::time::{Duration, UNIX_EPOCH};
    ///
    /// let lambda = LambdaJson::new(UNIX_EPOCH + Duration::from_secs(1_709_164_800)); // 2024-02-29
    /// assert_eq!(
    ///     lambda.timestamp(Timestamp::from_millis(86_399_999)).unwrap(),
    ///     "2024-02-29T23:59:59.999Z"
    /// );
    /// ```
    pub fn timestamp(&self, t: Timestamp) -> Option<String> {
        self.epoch.checked_add(t.as_duration()).map(iso8601)
    }

    /// `record` as Lambda's destination record: a view that implements [`Serialize`], for
    /// `serde_json::to_writer` or any other serde format. See
    /// [`record_value`](Self::record_value) for the fields.
    pub fn record<'a, P, R>(
        &'a self,
        record: &'a InvocationRecord<P, R>,
    ) -> LambdaRecord<'a, P, R> {
        LambdaRecord {
            lambda: self,
            record,
        }
    }

    /// `record` as the JSON of Lambda's destination record:
    ///
    /// | field | value |
    /// |---|---|
    /// | `version` | `"1.0"` |
    /// | `timestamp` | when the outcome was decided, by [`timestamp`](Self::timestamp) |
    /// | `requestContext.requestId` | the [`RequestId`](crate::RequestId), in its UUID layout |
    /// | `requestContext.functionArn` | [`qualified_function_arn`](Self::qualified_function_arn) |
    /// | `requestContext.condition` | the [`Condition`](crate::Condition)'s name (`Purged` and `FunctionDeleted` are the crate's own: Lambda never sends them) |
    /// | `requestContext.approximateInvokeCount` | how many times the handler ran (0 if never) |
    /// | `requestPayload` | the payload's own JSON (an object stays an object) |
    /// | `responseContext.statusCode` | `200`, also after a function error, as in Lambda; `responseContext` is in every record, also when the handler never ran (AWS documents no such record; this is the crate's choice) |
    /// | `responseContext.executedVersion` | `"$LATEST"` (the crate's code versions are not published versions) |
    /// | `responseContext.functionError` | `"Handled"` or `"Unhandled"`, only when the last attempt failed |
    /// | `responsePayload` | the response's JSON, or `{errorMessage, errorType}`; left out when the handler never ran |
    ///
    /// # Errors
    ///
    /// When the payload's or response's `Serialize` fails, or the timestamp is beyond
    /// [`SystemTime`].
    pub fn record_value<P: Serialize, R: Serialize>(
        &self,
        record: &InvocationRecord<P, R>,
    ) -> Result<Value, serde_json::Error> {
        serde_json::to_value(self.record(record))
    }

    /// `record` as JSON text, compact (one line, as Lambda sends it). See
    /// [`record_value`](Self::record_value).
    ///
    /// # Errors
    ///
    /// As [`record_value`](Self::record_value).
    pub fn record_string<P: Serialize, R: Serialize>(
        &self,
        record: &InvocationRecord<P, R>,
    ) -> Result<String, serde_json::Error> {
        serde_json::to_string(&self.record(record))
    }

    /// Function `name`'s settings as AWS JSON: the body of `PutFunctionEventInvokeConfig` and,
    /// when the function reserves concurrency, of `PutFunctionConcurrency`. Both name the
    /// function in `FunctionName`, so they work with the AWS CLI's `--cli-input-json`.
    ///
    /// Lambda has no place for some of the crate's settings. Export never fails for them: it
    /// writes the nearest AWS value, or leaves the setting out, and says so in
    /// [`AwsExport::warnings`], one warning per setting:
    ///
    /// | setting | exported as |
    /// |---|---|
    /// | `maximum_retry_attempts` 0 to 2 | `MaximumRetryAttempts` (above 2: 2, with a warning) |
    /// | `maximum_event_age` 60 s to 6 h, whole seconds | `MaximumEventAgeInSeconds` (otherwise the nearest whole second in range, with a warning) |
    /// | `reserved_concurrency` | `PutFunctionConcurrency`'s `ReservedConcurrentExecutions`; `None`: no document (`DeleteFunctionConcurrency`) |
    /// | function destination | `DestinationConfig.OnSuccess` / `OnFailure` with the function's ARN; Lambda then sends the record itself as the payload, so the crate's `map` closure does not carry over |
    /// | closure or channel destination | left out, with a warning |
    /// | `retry_delays`, `throttle_backoff`, `throttle_jitter` other than Lambda's | left out, with a warning: Lambda's are fixed |
    /// | `timeout` other than 3 s | left out, with a warning: it is `UpdateFunctionConfiguration`'s `Timeout` |
    /// | `queue_capacity` other than the default | left out, with a warning: Lambda's queue has no size setting |
    /// | `cost` (model mode) | left out, with a warning: it only describes the model |
    ///
    /// Call [`AwsExport::strict`] to turn any warning into an error instead.
    ///
    /// # Examples
    ///
    /// ```
    /// use event_invoke::{Destination, Function, InvocationRecord, LambdaJson};
    /// use std::time::Duration;
    ///
    /// let forward = |r: &InvocationRecord<String, ()>| r.request_payload.clone();
    /// let f = Function::new("resize", |_: &String, _ctx| Ok(()))
    ///     .maximum_retry_attempts(1)
    ///     .maximum_event_age(Duration::from_secs(3600))
    ///     .reserved_concurrency(10)
    ///     .on_failure(Destination::function("resize-failed", forward));
    /// let export = LambdaJson::default().export_config(f.name(), f.config());
    /// assert!(export.warnings.is_empty());
    /// assert_eq!(
    ///     export.event_invoke_config,
    ///     serde_json::json!({
    ///         "FunctionName": "resize",
    ///         "MaximumRetryAttempts": 1,
    ///         "MaximumEventAgeInSeconds": 3600,
    ///         "DestinationConfig": {
    ///             "OnSuccess": {},
    ///             "OnFailure": {
    ///                 "Destination": "arn:aws:lambda:us-east-1:123456789012:function:resize-failed"
    ///             }
    ///         }
    ///     })
    /// );
    /// assert_eq!(
    ///     export.function_concurrency,
    ///     Some(serde_json::json!({ "FunctionName": "resize", "ReservedConcurrentExecutions": 10 }))
    /// );
    ///
    /// // Settings Lambda cannot take are reported, not silently dropped.
    /// let wide = Function::new("wide", |_: &String, _ctx| Ok(())).maximum_retry_attempts(5);
    /// let export = LambdaJson::default().export_config(wide.name(), wide.config());
    /// assert_eq!(export.event_invoke_config["MaximumRetryAttempts"], 2);
    /// assert_eq!(export.warnings[0].setting, "maximum_retry_attempts");
    /// assert!(export.strict().is_err());
    /// ```
    pub fn export_config<P, R>(&self, name: &str, config: &FunctionConfig<P, R>) -> AwsExport {
        let mut warnings = Vec::new();
        let mut warn = |setting, value: String, reason: String, exported: Option<String>| {
            warnings.push(AwsWarning {
                setting,
                value,
                reason,
                exported,
            });
        };
        let retry = &config.retry;
        let lambda = RetryPolicy::lambda_default();

        let retries = retry.maximum_retry_attempts();
        if retries > AWS_MAX_RETRIES {
            warn(
                "maximum_retry_attempts",
                retries.to_string(),
                format!("Lambda's MaximumRetryAttempts is 0 to {AWS_MAX_RETRIES}"),
                Some(AWS_MAX_RETRIES.to_string()),
            );
        }
        let retries = retries.min(AWS_MAX_RETRIES);

        let age = retry.maximum_event_age();
        let age_secs = age.as_secs().clamp(AWS_MIN_AGE_SECS, AWS_MAX_AGE_SECS);
        if Duration::from_secs(age_secs) != age {
            warn(
                "maximum_event_age",
                format!("{age:?}"),
                format!(
                    "Lambda's MaximumEventAgeInSeconds is {AWS_MIN_AGE_SECS} to {AWS_MAX_AGE_SECS} whole seconds"
                ),
                Some(age_secs.to_string()),
            );
        }

        // Only the waits this policy can reach matter: retries beyond Lambda's 2 are reported
        // above, and with 0 retries there is no wait at all.
        if (1..=retries).any(|n| retry.retry_delay(n) != lambda.retry_delay(n)) {
            warn(
                "retry_delays",
                format!("{:?}", retry.retry_delays()),
                "Lambda's retry waits (about 1 minute, then 2 minutes) are not configurable"
                    .to_string(),
                None,
            );
        }
        if retry.throttle_backoff() != lambda.throttle_backoff() {
            let (initial, max, factor) = retry.throttle_backoff();
            warn(
                "throttle_backoff",
                format!("initial {initial:?}, max {max:?}, factor {factor}"),
                "Lambda's throttle backoff (1 s doubling to 5 minutes) is not configurable"
                    .to_string(),
                None,
            );
        }
        if retry.throttle_jitter() != lambda.throttle_jitter() {
            warn(
                "throttle_jitter",
                retry.throttle_jitter().to_string(),
                "Lambda's throttle jitter is neither documented nor configurable".to_string(),
                None,
            );
        }
        if config.timeout != DEFAULT_TIMEOUT {
            let t = config.timeout;
            let fits = t.subsec_nanos() == 0 && (1..=AWS_MAX_TIMEOUT_SECS).contains(&t.as_secs());
            let range = if fits {
                String::new()
            } else {
                format!(", which accepts 1 to {AWS_MAX_TIMEOUT_SECS} whole seconds")
            };
            warn(
                "timeout",
                format!("{t:?}"),
                format!(
                    "the timeout belongs to UpdateFunctionConfiguration (Timeout{range}), not to these APIs"
                ),
                None,
            );
        }
        if config.queue_capacity != DEFAULT_QUEUE_CAPACITY {
            warn(
                "queue_capacity",
                config.queue_capacity.to_string(),
                "Lambda's asynchronous queue has no size setting".to_string(),
                None,
            );
        }
        if let Some(cost) = &config.cost {
            warn(
                "cost",
                format!("{cost:?}"),
                "a cost model only describes model mode: Lambda measures the real function"
                    .to_string(),
                None,
            );
        }
        let mut destination = |setting, destination: &Option<Destination<P, R>>| {
            let kind = match destination {
                None => return json!({}),
                Some(Destination::Function { name, .. }) => {
                    return json!({ "Destination": self.function_arn(name) });
                }
                Some(Destination::Closure(_)) => "a closure",
                Some(Destination::Channel(_)) => "a crossbeam channel",
            };
            warn(
                setting,
                kind.to_string(),
                format!(
                    "{kind} has no AWS equivalent (Lambda destinations are SQS, SNS, EventBridge, S3 or Lambda ARNs)"
                ),
                None,
            );
            json!({})
        };
        let on_success = destination("on_success", &config.on_success);
        let on_failure = destination("on_failure", &config.on_failure);

        let event_invoke_config = json!({
            "FunctionName": name,
            "MaximumRetryAttempts": retries,
            "MaximumEventAgeInSeconds": age_secs,
            "DestinationConfig": {
                "OnSuccess": on_success,
                "OnFailure": on_failure,
            },
        });
        let function_concurrency = config.reserved_concurrency.map(|n| {
            json!({
                "FunctionName": name,
                "ReservedConcurrentExecutions": n,
            })
        });
        AwsExport {
            event_invoke_config,
            function_concurrency,
            warnings,
        }
    }
}

/// One record as Lambda's destination record: made by [`LambdaJson::record`], serialized with
/// serde.
///
/// # Examples
///
/// ```
/// use event_invoke::{Function, LambdaJson, ManualClock, Runtime};
///
/// let (tx, rx) = crossbeam_channel::unbounded();
/// let rt: Runtime<String, u32> = Runtime::builder().clock(ManualClock::new()).build().unwrap();
/// rt.register(
///     Function::new("length", |s: &String, _ctx| Ok(s.len() as u32))
///         .on_success(event_invoke::Destination::channel(tx)),
/// )
/// .unwrap();
/// rt.invoke_async("length", "four".to_string()).unwrap();
/// rt.run_until_idle();
/// let record = rx.try_recv().unwrap();
///
/// let mut out = Vec::new();
/// serde_json::to_writer(&mut out, &LambdaJson::default().record(&record)).unwrap();
/// let text = String::from_utf8(out).unwrap();
/// assert!(text.contains(r#""requestPayload":"four""#));
/// assert!(text.contains(r#""responsePayload":4"#));
/// ```
#[cfg_attr(docsrs, doc(cfg(feature = "serde")))]
pub struct LambdaRecord<'a, P, R> {
    lambda: &'a LambdaJson,
    record: &'a InvocationRecord<P, R>,
}

impl<P, R> Clone for LambdaRecord<'_, P, R> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<P, R> Copy for LambdaRecord<'_, P, R> {}

impl<P, R> fmt::Debug for LambdaRecord<'_, P, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LambdaRecord")
            .field("request_id", &self.record.request_id)
            .field("function", &self.record.function)
            .field("condition", &self.record.condition)
            .finish_non_exhaustive()
    }
}

impl<P: Serialize, R: Serialize> Serialize for LambdaRecord<'_, P, R> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let r = self.record;
        let timestamp = self.lambda.timestamp(r.timestamp).ok_or_else(|| {
            S::Error::custom(format!(
                "record timestamp {:?} after the epoch {:?} is beyond SystemTime",
                r.timestamp, self.lambda.epoch
            ))
        })?;
        let (function_error, response_payload) = match &r.response {
            None => (None, None),
            Some(Ok(response)) => (None, Some(ResponsePayloadJson::Response(response))),
            Some(Err(e)) => (
                Some(match e.kind() {
                    ErrorKind::Handled => "Handled",
                    ErrorKind::Unhandled => "Unhandled",
                }),
                Some(ResponsePayloadJson::Error(ErrorJson {
                    error_message: e.message(),
                    error_type: e.error_type(),
                })),
            ),
        };
        RecordJson {
            version: "1.0",
            timestamp,
            request_context: RequestContextJson {
                request_id: r.request_id.to_string(),
                function_arn: self.lambda.qualified_function_arn(&r.function),
                condition: r.condition.as_str(),
                approximate_invoke_count: r.approximate_invoke_count,
            },
            request_payload: &r.request_payload,
            response_context: ResponseContextJson {
                status_code: 200,
                executed_version: "$LATEST",
                function_error,
            },
            response_payload,
        }
        .serialize(serializer)
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RecordJson<'a, P, R> {
    version: &'static str,
    timestamp: String,
    request_context: RequestContextJson,
    request_payload: &'a P,
    response_context: ResponseContextJson,
    #[serde(skip_serializing_if = "Option::is_none")]
    response_payload: Option<ResponsePayloadJson<'a, R>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RequestContextJson {
    request_id: String,
    function_arn: String,
    condition: &'static str,
    approximate_invoke_count: u32,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ResponseContextJson {
    status_code: u16,
    executed_version: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    function_error: Option<&'static str>,
}

#[derive(Serialize)]
#[serde(untagged)]
enum ResponsePayloadJson<'a, R> {
    Response(&'a R),
    Error(ErrorJson<'a>),
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ErrorJson<'a> {
    error_message: &'a str,
    error_type: &'a str,
}

/// A function's settings as AWS JSON, from [`LambdaJson::export_config`], with what did not
/// carry over.
#[cfg_attr(docsrs, doc(cfg(feature = "serde")))]
#[derive(Debug, Clone, PartialEq)]
pub struct AwsExport {
    /// The body of `PutFunctionEventInvokeConfig`: `FunctionName`, `MaximumRetryAttempts`,
    /// `MaximumEventAgeInSeconds`, `DestinationConfig`.
    pub event_invoke_config: Value,
    /// The body of `PutFunctionConcurrency` (`FunctionName`, `ReservedConcurrentExecutions`),
    /// or `None` when the function reserves nothing (Lambda's `DeleteFunctionConcurrency`).
    pub function_concurrency: Option<Value>,
    /// One entry per setting with no exact AWS equivalent; empty when the JSON says everything.
    pub warnings: Vec<AwsWarning>,
}

impl AwsExport {
    /// The export, or an [`Error::NoAwsEquivalent`] for its first warning: for callers that
    /// want AWS to behave exactly like the crate did, or not at all.
    ///
    /// # Errors
    ///
    /// [`Error::NoAwsEquivalent`] when [`warnings`](Self::warnings) is not empty.
    pub fn strict(self) -> Result<Self, Error> {
        match self.warnings.first() {
            None => Ok(self),
            Some(w) => Err(Error::NoAwsEquivalent {
                setting: w.setting,
                value: w.value.clone(),
                reason: w.reason.clone(),
            }),
        }
    }
}

/// A crate setting that AWS JSON cannot express, and what the export did with it.
///
/// Displays as one line: `maximum_retry_attempts = 5: Lambda's MaximumRetryAttempts is 0 to 2;
/// exported as 2`.
#[cfg_attr(docsrs, doc(cfg(feature = "serde")))]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsWarning {
    /// The setting, by its builder method name (`maximum_retry_attempts`, `maximum_event_age`,
    /// `retry_delays`, `throttle_backoff`, `throttle_jitter`, `timeout`, `queue_capacity`,
    /// `on_success`, `on_failure`).
    pub setting: &'static str,
    /// The crate's value, as text.
    pub value: String,
    /// Why AWS cannot take it: what Lambda has instead.
    pub reason: String,
    /// The AWS value written in its place (the nearest one in Lambda's range), or `None` when
    /// the setting was left out.
    pub exported: Option<String>,
}

impl fmt::Display for AwsWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} = {}: {}; ", self.setting, self.value, self.reason)?;
        match &self.exported {
            Some(v) => write!(f, "exported as {v}"),
            None => f.write_str("not exported"),
        }
    }
}

/// A destination from AWS JSON: the ARN of an SQS queue, SNS topic, EventBridge bus, S3 bucket
/// or Lambda function.
///
/// The crate's destinations are closures, channels and functions of the same runtime, so an
/// imported ARN becomes a [`Destination`] only the way you say
/// ([`AwsFunctionSettings::apply_with_destinations`]); [`function_name`](Self::function_name)
/// helps for Lambda functions.
///
/// # Examples
///
/// ```
/// use event_invoke::DestinationArn;
///
/// let f = DestinationArn::parse("arn:aws:lambda:eu-west-1:111122223333:function:audit:prod").unwrap();
/// assert_eq!(f.service(), "lambda");
/// assert_eq!(f.region(), "eu-west-1");
/// assert_eq!(f.account_id(), "111122223333");
/// assert_eq!(f.function_name(), Some("audit"));
///
/// let q = DestinationArn::parse("arn:aws:sqs:eu-west-1:111122223333:failures").unwrap();
/// assert_eq!(q.function_name(), None);
///
/// assert!(DestinationArn::parse("failures").is_err());
/// ```
#[cfg_attr(docsrs, doc(cfg(feature = "serde")))]
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DestinationArn(String);

impl DestinationArn {
    /// Checks that `arn` is an ARN (`arn:PARTITION:SERVICE:REGION:ACCOUNT:RESOURCE`) of a
    /// service Lambda sends records to: `sqs`, `sns`, `events`, `s3` or `lambda` (a
    /// `function:NAME` resource).
    ///
    /// # Errors
    ///
    /// [`Error::AwsConfig`] naming the field `Destination` when it is not.
    pub fn parse(arn: &str) -> Result<Self, Error> {
        Self::parse_field("Destination", arn)
    }

    fn parse_field(field: &'static str, arn: &str) -> Result<Self, Error> {
        const ACCEPTED: &str = "the ARN of an SQS queue, SNS topic, EventBridge event bus, S3 bucket or Lambda function (arn:aws:SERVICE:REGION:ACCOUNT:RESOURCE)";
        let parts: Vec<&str> = arn.splitn(6, ':').collect();
        let ok = match parts.as_slice() {
            ["arn", partition, service, _region, _account, resource] => {
                !partition.is_empty()
                    && !resource.is_empty()
                    && match *service {
                        "sqs" | "sns" | "events" | "s3" => true,
                        "lambda" => resource
                            .strip_prefix("function:")
                            .is_some_and(|rest| !rest.is_empty() && !rest.starts_with(':')),
                        _ => false,
                    }
            }
            _ => false,
        };
        if ok {
            Ok(DestinationArn(arn.to_string()))
        } else {
            Err(Error::AwsConfig {
                field,
                value: Value::from(arn).to_string(),
                accepted: ACCEPTED,
            })
        }
    }

    fn part(&self, i: usize) -> &str {
        self.0.splitn(6, ':').nth(i).unwrap_or("")
    }

    /// The ARN as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The service: `sqs`, `sns`, `events`, `s3` or `lambda`.
    pub fn service(&self) -> &str {
        self.part(2)
    }

    /// The region (empty for S3 buckets).
    pub fn region(&self) -> &str {
        self.part(3)
    }

    /// The account id (empty for S3 buckets).
    pub fn account_id(&self) -> &str {
        self.part(4)
    }

    /// For a Lambda function's ARN, the function's name (without a version or alias); `None`
    /// for other services.
    pub fn function_name(&self) -> Option<&str> {
        if self.service() != "lambda" {
            return None;
        }
        let rest = self.part(5).strip_prefix("function:")?;
        rest.split(':').next()
    }
}

impl fmt::Display for DestinationArn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A function's settings imported from AWS JSON and checked against Lambda's ranges.
///
/// Read the body of `PutFunctionEventInvokeConfig` (or the output of
/// `get-function-event-invoke-config`) and, optionally, of `PutFunctionConcurrency`, then
/// [`apply_to`](Self::apply_to) a [`FunctionConfig`]:
///
/// | AWS field | accepted | here |
/// |---|---|---|
/// | `MaximumRetryAttempts` | 0 to 2 | [`maximum_retry_attempts`](Self::maximum_retry_attempts) |
/// | `MaximumEventAgeInSeconds` | 60 to 21,600 | [`maximum_event_age`](Self::maximum_event_age) |
/// | `DestinationConfig.OnSuccess.Destination`, `...OnFailure.Destination` | ARNs ([`DestinationArn`]) | [`on_success`](Self::on_success), [`on_failure`](Self::on_failure) |
/// | `ReservedConcurrentExecutions` | 0 or more | [`reserved_concurrency`](Self::reserved_concurrency) |
/// | `FunctionName` | a string | [`function_name`](Self::function_name) |
/// | `Qualifier`, `FunctionArn`, `LastModified` | anything | ignored (the crate runs `$LATEST` only) |
///
/// Any other field, a wrong type or a value out of range is refused with an
/// [`Error::AwsConfig`] naming the field. `null` counts as absent.
///
/// # Examples
///
/// ```
/// use event_invoke::{AwsFunctionSettings, Error, Function, FunctionConfig};
/// use std::time::Duration;
///
/// let settings = AwsFunctionSettings::import(
///     r#"{ "FunctionName": "resize", "MaximumRetryAttempts": 0, "MaximumEventAgeInSeconds": 300,
///          "DestinationConfig": { "OnFailure": { "Destination": "arn:aws:sqs:us-east-1:123456789012:dlq" } } }"#,
///     Some(r#"{ "FunctionName": "resize", "ReservedConcurrentExecutions": 5 }"#),
/// )?;
/// let mut config: FunctionConfig<String, ()> = FunctionConfig::default();
/// settings.apply_to(&mut config)?;
/// assert_eq!(config.retry.maximum_retry_attempts(), 0);
/// assert_eq!(config.retry.maximum_event_age(), Duration::from_secs(300));
/// assert_eq!(config.reserved_concurrency, Some(5));
/// // The queue ARN is yours to map to a destination.
/// assert_eq!(settings.on_failure.unwrap().service(), "sqs");
///
/// let err = AwsFunctionSettings::import(r#"{ "MaximumRetryAttempts": 3 }"#, None).unwrap_err();
/// assert!(matches!(err, Error::AwsConfig { field: "MaximumRetryAttempts", .. }));
/// println!("{err}"); // invalid AWS setting MaximumRetryAttempts: 3 is not accepted; set MaximumRetryAttempts to an integer from 0 to 2 ...
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[cfg_attr(docsrs, doc(cfg(feature = "serde")))]
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AwsFunctionSettings {
    /// `FunctionName`, when a document names the function.
    pub function_name: Option<String>,
    /// `MaximumRetryAttempts` (0 to 2); `None`: not given, Lambda's default 2 applies.
    pub maximum_retry_attempts: Option<u32>,
    /// `MaximumEventAgeInSeconds` (60 s to 6 h); `None`: not given, Lambda's default 6 h
    /// applies.
    pub maximum_event_age: Option<Duration>,
    /// `DestinationConfig.OnSuccess.Destination`.
    pub on_success: Option<DestinationArn>,
    /// `DestinationConfig.OnFailure.Destination`.
    pub on_failure: Option<DestinationArn>,
    /// `ReservedConcurrentExecutions` from `PutFunctionConcurrency`; `None`: no such document,
    /// no reservation.
    pub reserved_concurrency: Option<u32>,
}

const EVENT_INVOKE_CONFIG: &str = "PutFunctionEventInvokeConfig";
const FUNCTION_CONCURRENCY: &str = "PutFunctionConcurrency";

impl AwsFunctionSettings {
    /// Reads the JSON of `PutFunctionEventInvokeConfig` and, if given, of
    /// `PutFunctionConcurrency`.
    ///
    /// # Errors
    ///
    /// [`Error::AwsConfig`] naming the first field that is unreadable, unknown, of the wrong
    /// type or outside Lambda's range (or the document, when it is not a JSON object).
    pub fn import(
        event_invoke_config: &str,
        function_concurrency: Option<&str>,
    ) -> Result<Self, Error> {
        let eic = parse_document(EVENT_INVOKE_CONFIG, event_invoke_config)?;
        let fc = function_concurrency
            .map(|text| parse_document(FUNCTION_CONCURRENCY, text))
            .transpose()?;
        Self::import_values(&eic, fc.as_ref())
    }

    /// As [`import`](Self::import), from parsed JSON (e.g. an [`AwsExport`]'s fields).
    ///
    /// # Errors
    ///
    /// As [`import`](Self::import).
    pub fn import_values(
        event_invoke_config: &Value,
        function_concurrency: Option<&Value>,
    ) -> Result<Self, Error> {
        let mut settings = AwsFunctionSettings::default();
        let eic = as_object(EVENT_INVOKE_CONFIG, event_invoke_config)?;
        for (key, value) in eic {
            if value.is_null() {
                continue;
            }
            match key.as_str() {
                "FunctionName" => {
                    settings.function_name = Some(function_name(value)?);
                }
                "MaximumRetryAttempts" => {
                    let n = integer_in(
                        "MaximumRetryAttempts",
                        value,
                        0,
                        u64::from(AWS_MAX_RETRIES),
                        "an integer from 0 to 2 (Lambda's range)",
                    )?;
                    settings.maximum_retry_attempts = Some(n as u32);
                }
                "MaximumEventAgeInSeconds" => {
                    let secs = integer_in(
                        "MaximumEventAgeInSeconds",
                        value,
                        AWS_MIN_AGE_SECS,
                        AWS_MAX_AGE_SECS,
                        "an integer from 60 to 21600 seconds (Lambda's range)",
                    )?;
                    settings.maximum_event_age = Some(Duration::from_secs(secs));
                }
                "DestinationConfig" => {
                    let (on_success, on_failure) = destination_config(value)?;
                    settings.on_success = on_success;
                    settings.on_failure = on_failure;
                }
                "Qualifier" | "FunctionArn" | "LastModified" => {}
                _ => {
                    return Err(Error::AwsConfig {
                        field: EVENT_INVOKE_CONFIG,
                        value: format!("unknown field {}", Value::from(key.as_str())),
                        accepted: "a JSON object with only the fields FunctionName, Qualifier, MaximumRetryAttempts, MaximumEventAgeInSeconds, DestinationConfig (and FunctionArn, LastModified from get-function-event-invoke-config)",
                    })
                }
            }
        }
        if let Some(fc) = function_concurrency {
            let fc = as_object(FUNCTION_CONCURRENCY, fc)?;
            let mut reserved = None;
            for (key, value) in fc {
                if value.is_null() {
                    continue;
                }
                match key.as_str() {
                    "FunctionName" => {
                        let name = function_name(value)?;
                        match &settings.function_name {
                            Some(other) if *other != name => {
                                return Err(Error::AwsConfig {
                                    field: "FunctionName",
                                    value: format!(
                                        "{} in {FUNCTION_CONCURRENCY} but {} in {EVENT_INVOKE_CONFIG}",
                                        Value::from(name),
                                        Value::from(other.as_str())
                                    ),
                                    accepted: "the same function in both documents",
                                });
                            }
                            _ => settings.function_name = Some(name),
                        }
                    }
                    "ReservedConcurrentExecutions" => {
                        let n = integer_in(
                            "ReservedConcurrentExecutions",
                            value,
                            0,
                            u64::from(u32::MAX),
                            "an integer of at least 0 (and at most the account's limit minus its unreserved floor)",
                        )?;
                        reserved = Some(n as u32);
                    }
                    _ => {
                        return Err(Error::AwsConfig {
                            field: FUNCTION_CONCURRENCY,
                            value: format!("unknown field {}", Value::from(key.as_str())),
                            accepted: "a JSON object with only the fields FunctionName, ReservedConcurrentExecutions",
                        })
                    }
                }
            }
            match reserved {
                Some(n) => settings.reserved_concurrency = Some(n),
                None => {
                    return Err(Error::AwsConfig {
                        field: "ReservedConcurrentExecutions",
                        value: "nothing (the field is missing)".to_string(),
                        accepted: "an integer of at least 0; leave the whole PutFunctionConcurrency document out for no reservation",
                    })
                }
            }
        }
        Ok(settings)
    }

    /// Sets `config`'s retries, maximum event age and reserved concurrency, like
    /// `PutFunctionEventInvokeConfig` and `PutFunctionConcurrency` would: a retry count or age
    /// not given goes back to Lambda's default (2, 6 h), no concurrency document means no
    /// reservation. The rest of the retry policy (waits, throttle backoff), the timeout, the
    /// queue capacity and the destinations are left as they are; map the destination ARNs
    /// yourself or use [`apply_with_destinations`](Self::apply_with_destinations).
    ///
    /// Whether the reservation fits the account is checked when the config is registered or
    /// applied with [`Runtime::update_config`](crate::Runtime::update_config).
    ///
    /// # Errors
    ///
    /// When `config`'s own retry policy is invalid (the imported values always fit); `config`
    /// is then unchanged.
    pub fn apply_to<P, R>(&self, config: &mut FunctionConfig<P, R>) -> Result<(), Error> {
        config.retry = self.retry_policy(&config.retry)?;
        config.reserved_concurrency = self.reserved_concurrency;
        Ok(())
    }

    /// As [`apply_to`](Self::apply_to), and also sets the destinations: `resolve` turns each
    /// imported ARN into a [`Destination`]; a destination not given is removed (as
    /// `PutFunctionEventInvokeConfig` does).
    ///
    /// # Errors
    ///
    /// [`Error::AwsConfig`] naming the destination's field when `resolve` returns `None` for
    /// it; `config` is then unchanged.
    ///
    /// # Examples
    ///
    /// ```
    /// use event_invoke::{AwsFunctionSettings, Destination, FunctionConfig, InvocationRecord};
    ///
    /// let settings = AwsFunctionSettings::import(
    ///     r#"{ "DestinationConfig": { "OnFailure": {
    ///          "Destination": "arn:aws:lambda:us-east-1:123456789012:function:audit" } } }"#,
    ///     None,
    /// )?;
    /// let mut config: FunctionConfig<String, ()> = FunctionConfig::default();
    /// settings.apply_with_destinations(&mut config, |arn| {
    ///     let name = arn.function_name()?;
    ///     let forward = |r: &InvocationRecord<String, ()>| r.request_payload.clone();
    ///     Some(Destination::function(name, forward))
    /// })?;
    /// assert!(matches!(config.on_failure, Some(Destination::Function { ref name, .. }) if &**name == "audit"));
    /// assert!(config.on_success.is_none());
    /// # Ok::<(), event_invoke::Error>(())
    /// ```
    pub fn apply_with_destinations<P, R>(
        &self,
        config: &mut FunctionConfig<P, R>,
        mut resolve: impl FnMut(&DestinationArn) -> Option<Destination<P, R>>,
    ) -> Result<(), Error> {
        let mut resolve_field = |field: &'static str, arn: &Option<DestinationArn>| {
            match arn {
            None => Ok(None),
            Some(arn) => resolve(arn).map(Some).ok_or_else(|| Error::AwsConfig {
                field,
                value: Value::from(arn.as_str()).to_string(),
                accepted: "an ARN that the resolver given to apply_with_destinations maps to a Destination (or make the resolver map this one)",
            }),
        }
        };
        let on_success =
            resolve_field("DestinationConfig.OnSuccess.Destination", &self.on_success)?;
        let on_failure =
            resolve_field("DestinationConfig.OnFailure.Destination", &self.on_failure)?;
        let retry = self.retry_policy(&config.retry)?;
        config.retry = retry;
        config.reserved_concurrency = self.reserved_concurrency;
        config.on_success = on_success;
        config.on_failure = on_failure;
        Ok(())
    }

    fn retry_policy(&self, current: &RetryPolicy) -> Result<RetryPolicy, Error> {
        current
            .to_builder()
            .maximum_retry_attempts(self.maximum_retry_attempts.unwrap_or(AWS_MAX_RETRIES))
            .maximum_event_age(
                self.maximum_event_age
                    .unwrap_or(Duration::from_secs(AWS_MAX_AGE_SECS)),
            )
            .build()
    }
}

fn parse_document(document: &'static str, text: &str) -> Result<Value, Error> {
    serde_json::from_str(text).map_err(|e| Error::AwsConfig {
        field: document,
        value: format!("unreadable JSON ({e})"),
        accepted: "a JSON object",
    })
}

fn as_object<'a>(
    document: &'static str,
    value: &'a Value,
) -> Result<&'a Map<String, Value>, Error> {
    value.as_object().ok_or_else(|| Error::AwsConfig {
        field: document,
        value: value.to_string(),
        accepted: "a JSON object",
    })
}

fn function_name(value: &Value) -> Result<String, Error> {
    match value.as_str() {
        Some(name) if !name.is_empty() => Ok(name.to_string()),
        _ => Err(Error::AwsConfig {
            field: "FunctionName",
            value: value.to_string(),
            accepted: "a non-empty string (a function's name or ARN)",
        }),
    }
}

fn integer_in(
    field: &'static str,
    value: &Value,
    min: u64,
    max: u64,
    accepted: &'static str,
) -> Result<u64, Error> {
    match value.as_u64() {
        Some(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(Error::AwsConfig {
            field,
            value: value.to_string(),
            accepted,
        }),
    }
}

type DestinationPair = (Option<DestinationArn>, Option<DestinationArn>);

fn destination_config(value: &Value) -> Result<DestinationPair, Error> {
    let map = as_object("DestinationConfig", value)?;
    let mut pair = (None, None);
    for (key, value) in map {
        if value.is_null() {
            continue;
        }
        let (field, slot) = match key.as_str() {
            "OnSuccess" => ("DestinationConfig.OnSuccess.Destination", &mut pair.0),
            "OnFailure" => ("DestinationConfig.OnFailure.Destination", &mut pair.1),
            _ => {
                return Err(Error::AwsConfig {
                    field: "DestinationConfig",
                    value: format!("unknown field {}", Value::from(key.as_str())),
                    accepted: "a JSON object with only the fields OnSuccess, OnFailure",
                })
            }
        };
        let object_field = if key == "OnSuccess" {
            "DestinationConfig.OnSuccess"
        } else {
            "DestinationConfig.OnFailure"
        };
        for (inner, arn) in as_object(object_field, value)? {
            if arn.is_null() {
                continue;
            }
            if inner != "Destination" {
                return Err(Error::AwsConfig {
                    field: object_field,
                    value: format!("unknown field {}", Value::from(inner.as_str())),
                    accepted: "a JSON object with only the field Destination",
                });
            }
            let text = arn.as_str().ok_or_else(|| Error::AwsConfig {
                field,
                value: arn.to_string(),
                accepted: "an ARN, as a string",
            })?;
            *slot = Some(DestinationArn::parse_field(field, text)?);
        }
    }
    Ok(pair)
}

/// `t` as ISO 8601 in UTC with milliseconds (truncated), e.g. `2019-11-14T18:16:05.568Z`.
/// Years outside 0000 to 9999 get a sign and six digits, as JavaScript writes them.
fn iso8601(t: SystemTime) -> String {
    let millis: i128 = match t.duration_since(UNIX_EPOCH) {
        Ok(after) => i128::try_from(after.as_millis()).unwrap_or(i128::MAX),
        // Before 1970: round towards the past, so that -1 ns is 23:59:59.999 the day before.
        Err(e) => -i128::try_from(e.duration().as_nanos().div_ceil(1_000_000)).unwrap_or(i128::MAX),
    };
    let secs = millis.div_euclid(1000);
    let ms = millis.rem_euclid(1000);
    let (year, month, day) = civil_from_days(secs.div_euclid(86_400));
    let of_day = secs.rem_euclid(86_400);
    let year = if (0..=9999).contains(&year) {
        format!("{year:04}")
    } else {
        format!("{year:+07}")
    };
    format!(
        "{year}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{ms:03}Z",
        of_day / 3600,
        of_day % 3600 / 60,
        of_day % 60
    )
}

/// The proleptic Gregorian date of day `days` after 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(days: i128) -> (i128, i128, i128) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i128::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64, millis: u64) -> String {
        let base = if secs >= 0 {
            UNIX_EPOCH + Duration::from_secs(secs.unsigned_abs())
        } else {
            UNIX_EPOCH - Duration::from_secs(secs.unsigned_abs())
        };
        iso8601(base + Duration::from_millis(millis))
    }

    #[test]
    fn iso8601_matches_known_dates() {
        assert_eq!(at(0, 0), "1970-01-01T00:00:00.000Z");
        assert_eq!(at(1_573_755_365, 568), "2019-11-14T18:16:05.568Z");
        assert_eq!(at(951_782_400, 0), "2000-02-29T00:00:00.000Z");
        assert_eq!(at(4_107_542_399, 999), "2100-02-28T23:59:59.999Z");
        assert_eq!(at(4_107_542_400, 0), "2100-03-01T00:00:00.000Z");
        assert_eq!(at(-1, 999), "1969-12-31T23:59:59.999Z");
        assert_eq!(at(-62_167_219_200, 0), "0000-01-01T00:00:00.000Z");
        assert_eq!(at(-62_167_219_201, 0), "-000001-12-31T23:59:59.000Z");
        assert_eq!(at(253_402_300_800, 0), "+010000-01-01T00:00:00.000Z");
    }

    #[test]
    fn iso8601_truncates_to_milliseconds_towards_the_past() {
        let t = UNIX_EPOCH + Duration::from_nanos(1_999_999);
        assert_eq!(iso8601(t), "1970-01-01T00:00:00.001Z");
        let t = UNIX_EPOCH - Duration::from_nanos(1);
        assert_eq!(iso8601(t), "1969-12-31T23:59:59.999Z");
    }
}
