//! Settings in and out: [`AwsFunctionSettings`] imports AWS JSON, [`AwsExport`] is an export.

use std::fmt;
use std::time::Duration;

use serde_json::{Map, Value};

use crate::engine::FunctionConfig;
use crate::parts::error::Error;
use crate::parts::record::Destination;
use crate::parts::retry::RetryPolicy;

use super::{AWS_MAX_AGE_SECS, AWS_MAX_RETRIES, AWS_MIN_AGE_SECS};

/// A function's settings as AWS JSON, from [`LambdaJson::export_config`](crate::LambdaJson::export_config), with what did not
/// carry over.
#[cfg_attr(docsrs, doc(cfg(feature = "serde")))]
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
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
#[non_exhaustive]
pub struct AwsWarning {
    /// The setting, by its builder method name (`maximum_retry_attempts`, `maximum_event_age`,
    /// `retry_delays`, `retry_schedule`, `throttle_backoff`, `throttle_jitter`, `timeout`,
    /// `queue_capacity`, `cost`, `on_success`, `on_failure`).
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
#[non_exhaustive]
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
            settings.import_event_invoke_field(key, value)?;
        }
        if let Some(fc) = function_concurrency {
            settings.import_function_concurrency(fc)?;
        }
        Ok(settings)
    }

    /// Reads one non-null field of `PutFunctionEventInvokeConfig` into these settings.
    fn import_event_invoke_field(&mut self, key: &str, value: &Value) -> Result<(), Error> {
        match key {
            "FunctionName" => {
                self.function_name = Some(function_name(value)?);
            }
            "MaximumRetryAttempts" => {
                let n = integer_in(
                    "MaximumRetryAttempts",
                    value,
                    0,
                    u64::from(AWS_MAX_RETRIES),
                    "an integer from 0 to 2 (Lambda's range)",
                )?;
                self.maximum_retry_attempts = Some(n as u32);
            }
            "MaximumEventAgeInSeconds" => {
                let secs = integer_in(
                    "MaximumEventAgeInSeconds",
                    value,
                    AWS_MIN_AGE_SECS,
                    AWS_MAX_AGE_SECS,
                    "an integer from 60 to 21600 seconds (Lambda's range)",
                )?;
                self.maximum_event_age = Some(Duration::from_secs(secs));
            }
            "DestinationConfig" => {
                let (on_success, on_failure) = destination_config(value)?;
                self.on_success = on_success;
                self.on_failure = on_failure;
            }
            // Accepted and ignored, so that documents written for the AWS CLI, or read back
            // from get-function-event-invoke-config, import as they are.
            "Qualifier" | "FunctionArn" | "LastModified" => {}
            _ => {
                return Err(unknown_field(
                    EVENT_INVOKE_CONFIG,
                    key,
                    "a JSON object with only the fields FunctionName, Qualifier, MaximumRetryAttempts, MaximumEventAgeInSeconds, DestinationConfig (and FunctionArn, LastModified from get-function-event-invoke-config)",
                ))
            }
        }
        Ok(())
    }

    /// Reads `PutFunctionConcurrency`: the reservation it must give, and the function it may name.
    fn import_function_concurrency(&mut self, document: &Value) -> Result<(), Error> {
        let fc = as_object(FUNCTION_CONCURRENCY, document)?;
        let mut reserved = None;
        for (key, value) in fc {
            if value.is_null() {
                continue;
            }
            match key.as_str() {
                "FunctionName" => self.merge_function_name(function_name(value)?)?,
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
                _ => return Err(unknown_field(
                    FUNCTION_CONCURRENCY,
                    key,
                    "a JSON object with only the fields FunctionName, ReservedConcurrentExecutions",
                )),
            }
        }
        // No reservation is said by leaving the document out (as DeleteFunctionConcurrency
        // does in AWS), so a document without a number is a mistake, not "none".
        let n = reserved.ok_or_else(|| Error::AwsConfig {
            field: "ReservedConcurrentExecutions",
            value: "nothing (the field is missing)".to_string(),
            accepted: "an integer of at least 0; leave the whole PutFunctionConcurrency document out for no reservation",
        })?;
        self.reserved_concurrency = Some(n);
        Ok(())
    }

    /// Takes `PutFunctionConcurrency`'s `FunctionName`, which must match the other document's.
    fn merge_function_name(&mut self, name: String) -> Result<(), Error> {
        match &self.function_name {
            Some(other) if *other != name => Err(Error::AwsConfig {
                field: "FunctionName",
                value: format!(
                    "{} in {FUNCTION_CONCURRENCY} but {} in {EVENT_INVOKE_CONFIG}",
                    Value::from(name),
                    Value::from(other.as_str())
                ),
                accepted: "the same function in both documents",
            }),
            _ => {
                self.function_name = Some(name);
                Ok(())
            }
        }
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

pub(crate) fn parse_document(document: &'static str, text: &str) -> Result<Value, Error> {
    serde_json::from_str(text).map_err(|e| Error::AwsConfig {
        field: document,
        value: format!("unreadable JSON ({e})"),
        accepted: "a JSON object",
    })
}

pub(crate) fn as_object<'a>(
    document: &'static str,
    value: &'a Value,
) -> Result<&'a Map<String, Value>, Error> {
    value.as_object().ok_or_else(|| Error::AwsConfig {
        field: document,
        value: value.to_string(),
        accepted: "a JSON object",
    })
}

/// The error for a field `document` does not have; `accepted` names the fields it does.
fn unknown_field(document: &'static str, key: &str, accepted: &'static str) -> Error {
    Error::AwsConfig {
        field: document,
        value: format!("unknown field {}", Value::from(key)),
        accepted,
    }
}

pub(crate) fn function_name(value: &Value) -> Result<String, Error> {
    match value.as_str() {
        Some(name) if !name.is_empty() => Ok(name.to_string()),
        _ => Err(Error::AwsConfig {
            field: "FunctionName",
            value: value.to_string(),
            accepted: "a non-empty string (a function's name or ARN)",
        }),
    }
}

pub(crate) fn integer_in(
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

pub(crate) type DestinationPair = (Option<DestinationArn>, Option<DestinationArn>);

pub(crate) fn destination_config(value: &Value) -> Result<DestinationPair, Error> {
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
