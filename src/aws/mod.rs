//! Lambda's JSON (cargo feature `serde`): invocation records as Lambda's destination record, and
//! a function's settings as the JSON of `PutFunctionEventInvokeConfig` and
//! `PutFunctionConcurrency`.
//!
//! * [`LambdaJson`] holds what the JSON needs and the crate does not know: the AWS region and
//!   account for ARNs, and the wall-clock time of the runtime clock's epoch for timestamps. It
//!   serializes records ([`LambdaJson::record`]) and exports settings
//!   ([`LambdaJson::export_config`]).
//! * [`AwsFunctionSettings`] imports AWS JSON, checks it against Lambda's ranges, and applies it
//!   to a [`FunctionConfig`](crate::FunctionConfig).
//!
//! With the `lambda` feature, code moves too, both ways:
//!
//! * [`LambdaHandler`] (and `Function::lambda`) runs a handler written for AWS Lambda's Rust
//!   runtime (`lambda_runtime`) under the engine, its future driven on the worker thread
//!   (`block_on`);
//! * [`run_on_lambda`] serves this crate's `Function` on AWS Lambda through
//!   `lambda_runtime::run` (`deploy`).

/// Lambda's most retries after function errors (`MaximumRetryAttempts`).
pub(crate) const AWS_MAX_RETRIES: u32 = 2;
/// Lambda's shortest maximum event age, in seconds (`MaximumEventAgeInSeconds`).
pub(crate) const AWS_MIN_AGE_SECS: u64 = 60;
/// Lambda's longest (and default) maximum event age, in seconds.
pub(crate) const AWS_MAX_AGE_SECS: u64 = 21_600;
/// Lambda's longest function timeout, in seconds.
pub(crate) const AWS_MAX_TIMEOUT_SECS: u64 = 900;
pub(crate) const DEFAULT_REGION: &str = "us-east-1";
pub(crate) const DEFAULT_ACCOUNT_ID: &str = "123456789012";

#[cfg(feature = "lambda")]
mod block_on;
#[cfg(feature = "lambda")]
mod deploy;
#[cfg(feature = "lambda")]
mod lambda_handler;
mod lambda_json;
mod record;
mod settings;

#[cfg(feature = "lambda")]
pub use deploy::{lambda_request_id, run_on_lambda, LambdaRunError};
#[cfg(feature = "lambda")]
pub use lambda_handler::{LambdaHandler, LambdaHandlerError};

pub use lambda_json::LambdaJson;
pub(crate) use record::iso8601;
pub use record::LambdaRecord;
pub use settings::{AwsExport, AwsFunctionSettings, AwsWarning, DestinationArn};
