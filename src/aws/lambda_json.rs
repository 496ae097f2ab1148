//! [`LambdaJson`]: the region, account and epoch the JSON needs; records and settings out.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use serde_json::{json, Value};

use crate::engine::Runtime;
use crate::engine::{FunctionConfig, DEFAULT_QUEUE_CAPACITY, DEFAULT_TIMEOUT};
use crate::parts::clock::Timestamp;
use crate::parts::record::{Destination, InvocationRecord};
use crate::parts::retry::RetryPolicy;

use super::{iso8601, AwsExport, AwsWarning, LambdaRecord};
use super::{
    AWS_MAX_AGE_SECS, AWS_MAX_RETRIES, AWS_MAX_TIMEOUT_SECS, AWS_MIN_AGE_SECS, DEFAULT_ACCOUNT_ID,
    DEFAULT_REGION,
};

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
    pub(crate) region: String,
    pub(crate) account_id: String,
    pub(crate) epoch: SystemTime,
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
    /// | `retry_schedule` (a [`RetrySchedule`](crate::RetrySchedule) of one's own) | left out, with a warning: Lambda's retry waits are fixed |
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
        // The order of these calls is the order of the warnings: the builder's settings first,
        // then the destinations.
        let mut warnings = Warnings::default();
        let retries = export_retry_attempts(&config.retry, &mut warnings);
        let age_secs = export_event_age(&config.retry, &mut warnings);
        warn_retry_waits(&config.retry, retries, &mut warnings);
        warn_throttle_settings(&config.retry, &mut warnings);
        warn_timeout(config.timeout, &mut warnings);
        warn_local_settings(config, &mut warnings);
        let on_success =
            self.destination_json("on_success", config.on_success.as_ref(), &mut warnings);
        let on_failure =
            self.destination_json("on_failure", config.on_failure.as_ref(), &mut warnings);

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
            warnings: warnings.0,
        }
    }

    /// One `DestinationConfig` entry: a function's ARN, else `{}` and a warning.
    fn destination_json<P, R>(
        &self,
        setting: &'static str,
        destination: Option<&Destination<P, R>>,
        warnings: &mut Warnings,
    ) -> Value {
        let kind = match destination {
            None => return json!({}),
            Some(Destination::Function { name, .. }) => {
                return json!({ "Destination": self.function_arn(name) });
            }
            Some(Destination::Closure(_)) => "a closure",
            Some(Destination::Channel(_)) => "a crossbeam channel",
            Some(Destination::StdChannel(_)) => "a std channel",
        };
        warnings.push(
            setting,
            kind.to_string(),
            format!(
                "{kind} has no AWS equivalent (Lambda destinations are SQS, SNS, EventBridge, S3 or Lambda ARNs)"
            ),
            None,
        );
        json!({})
    }
}

/// The settings an export could not carry over, in the order it met them.
#[derive(Default)]
struct Warnings(Vec<AwsWarning>);

impl Warnings {
    /// Records that `setting` (the crate's `value`) has no exact AWS equivalent.
    fn push(
        &mut self,
        setting: &'static str,
        value: String,
        reason: String,
        exported: Option<String>,
    ) {
        self.0.push(AwsWarning {
            setting,
            value,
            reason,
            exported,
        });
    }
}

/// `MaximumRetryAttempts`: the policy's retries, capped at Lambda's maximum with a warning.
fn export_retry_attempts(retry: &RetryPolicy, warnings: &mut Warnings) -> u32 {
    let retries = retry.maximum_retry_attempts();
    if retries > AWS_MAX_RETRIES {
        warnings.push(
            "maximum_retry_attempts",
            retries.to_string(),
            format!("Lambda's MaximumRetryAttempts is 0 to {AWS_MAX_RETRIES}"),
            Some(AWS_MAX_RETRIES.to_string()),
        );
    }
    retries.min(AWS_MAX_RETRIES)
}

/// `MaximumEventAgeInSeconds`: the policy's age in whole seconds within Lambda's range, with a
/// warning when that changes it.
fn export_event_age(retry: &RetryPolicy, warnings: &mut Warnings) -> u64 {
    let age = retry.maximum_event_age();
    let age_secs = age.as_secs().clamp(AWS_MIN_AGE_SECS, AWS_MAX_AGE_SECS);
    if Duration::from_secs(age_secs) != age {
        warnings.push(
            "maximum_event_age",
            format!("{age:?}"),
            format!(
                "Lambda's MaximumEventAgeInSeconds is {AWS_MIN_AGE_SECS} to {AWS_MAX_AGE_SECS} whole seconds"
            ),
            Some(age_secs.to_string()),
        );
    }
    age_secs
}

/// Warns when the waits before the `retries` exported retries are not Lambda's fixed ones.
fn warn_retry_waits(retry: &RetryPolicy, retries: u32, warnings: &mut Warnings) {
    // Only the waits this policy can reach matter: retries beyond Lambda's 2 are reported
    // with `maximum_retry_attempts`, and with 0 retries there is no wait at all. A custom
    // schedule replaces the list, so it is the one reported.
    if let Some(schedule) = retry.retry_schedule().filter(|_| retries > 0) {
        warnings.push(
            "retry_schedule",
            format!("{schedule:?}"),
            "a custom retry schedule has no Lambda setting: Lambda's retry waits (about 1 minute, then 2 minutes) are not configurable"
                .to_string(),
            None,
        );
    } else if retry.retry_schedule().is_none() {
        let lambda = RetryPolicy::lambda_default();
        if (1..=retries).any(|n| retry.retry_delay(n) != lambda.retry_delay(n)) {
            warnings.push(
                "retry_delays",
                format!("{:?}", retry.retry_delays()),
                "Lambda's retry waits (about 1 minute, then 2 minutes) are not configurable"
                    .to_string(),
                None,
            );
        }
    }
}

/// Warns when the throttle backoff or jitter differs from Lambda's, which are not settable.
fn warn_throttle_settings(retry: &RetryPolicy, warnings: &mut Warnings) {
    let lambda = RetryPolicy::lambda_default();
    if retry.throttle_backoff() != lambda.throttle_backoff() {
        let (initial, max, factor) = retry.throttle_backoff();
        warnings.push(
            "throttle_backoff",
            format!("initial {initial:?}, max {max:?}, factor {factor}"),
            "Lambda's throttle backoff (1 s doubling to 5 minutes) is not configurable".to_string(),
            None,
        );
    }
    if retry.throttle_jitter() != lambda.throttle_jitter() {
        warnings.push(
            "throttle_jitter",
            retry.throttle_jitter().to_string(),
            "Lambda's throttle jitter is neither documented nor configurable".to_string(),
            None,
        );
    }
}

/// Warns for a timeout other than the default: it belongs to another AWS API.
fn warn_timeout(timeout: Duration, warnings: &mut Warnings) {
    if timeout == DEFAULT_TIMEOUT {
        return;
    }
    // Name Lambda's range only when the timeout is outside it, so the warning says what to
    // change when it has to be changed.
    let fits =
        timeout.subsec_nanos() == 0 && (1..=AWS_MAX_TIMEOUT_SECS).contains(&timeout.as_secs());
    let range = if fits {
        String::new()
    } else {
        format!(", which accepts 1 to {AWS_MAX_TIMEOUT_SECS} whole seconds")
    };
    warnings.push(
        "timeout",
        format!("{timeout:?}"),
        format!(
            "the timeout belongs to UpdateFunctionConfiguration (Timeout{range}), not to these APIs"
        ),
        None,
    );
}

/// Warns for settings that only exist in-process: the queue capacity and the cost model.
fn warn_local_settings<P, R>(config: &FunctionConfig<P, R>, warnings: &mut Warnings) {
    if config.queue_capacity != DEFAULT_QUEUE_CAPACITY {
        warnings.push(
            "queue_capacity",
            config.queue_capacity.to_string(),
            "Lambda's asynchronous queue has no size setting".to_string(),
            None,
        );
    }
    #[cfg(feature = "model")]
    if let Some(cost) = &config.cost {
        warnings.push(
            "cost",
            format!("{cost:?}"),
            "a cost model only describes model mode: Lambda measures the real function".to_string(),
            None,
        );
    }
}
