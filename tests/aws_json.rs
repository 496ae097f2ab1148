//! Feature `serde`: records as Lambda's destination record, settings as the JSON of
//! `PutFunctionEventInvokeConfig` / `PutFunctionConcurrency`, import checks and round trips.
#![cfg(feature = "serde")]

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use event_invoke::{
    AwsFunctionSettings, Condition, Destination, Error, Function, FunctionConfig, FunctionError,
    InvocationRecord, LambdaJson, RetryPolicy, Timestamp,
};
use serde::Serialize;
use serde_json::{json, Value};

mod common;
use common::{manual_runtime as runtime, sink};

/// The structure of a value: objects keep their keys, arrays the shape of their elements,
/// leaves become their JSON type.
fn shape(v: &Value) -> Value {
    match v {
        Value::Null => json!("null"),
        Value::Bool(_) => json!("boolean"),
        Value::Number(_) => json!("number"),
        Value::String(_) => json!("string"),
        Value::Array(items) => Value::Array(items.iter().map(shape).collect()),
        Value::Object(map) => {
            Value::Object(map.iter().map(|(k, v)| (k.clone(), shape(v))).collect())
        }
    }
}

fn is_iso8601_millis_utc(s: &str) -> bool {
    let b = s.as_bytes();
    let digits = |r: std::ops::Range<usize>| r.into_iter().all(|i| b[i].is_ascii_digit());
    b.len() == 24
        && digits(0..4)
        && b[4] == b'-'
        && digits(5..7)
        && b[7] == b'-'
        && digits(8..10)
        && b[10] == b'T'
        && digits(11..13)
        && b[13] == b':'
        && digits(14..16)
        && b[16] == b':'
        && digits(17..19)
        && b[19] == b'.'
        && digits(20..23)
        && b[23] == b'Z'
}

fn is_uuid_layout(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.iter().map(|g| g.len()).eq([8, 4, 4, 4, 12])
        && groups
            .iter()
            .all(|g| g.bytes().all(|c| c.is_ascii_hexdigit()))
}

fn config_of(f: &Function<String, ()>) -> FunctionConfig<String, ()> {
    f.config().clone()
}

// ----- records --------------------------------------------------------------------------------

/// The payload of the AWS documentation's example: an object holding a list of order ids.
#[derive(Debug, Clone, Serialize)]
struct Orders {
    #[serde(rename = "ORDER_IDS")]
    order_ids: Vec<String>,
}

#[test]
fn a_failing_handlers_record_has_the_shape_of_the_aws_documentation_example() {
    // The structure of "Example invocation record" in the Lambda developer guide ("Capturing
    // records of Lambda asynchronous invocations": an event that failed three processing
    // attempts because of a function error), with placeholder values of the same types.
    let documented = json!({
        "version": "1.0",
        "timestamp": "2020-01-01T00:00:00.000Z",
        "requestContext": {
            "requestId": "00000000-0000-0000-0000-000000000000",
            "functionArn": "arn:aws:lambda:us-east-2:123456789012:function:my-function:$LATEST",
            "condition": "RetriesExhausted",
            "approximateInvokeCount": 3
        },
        "requestPayload": { "ORDER_IDS": ["a", "b", "c"] },
        "responseContext": {
            "statusCode": 200,
            "executedVersion": "$LATEST",
            "functionError": "Unhandled"
        },
        "responsePayload": { "errorMessage": "the process exited before completing the request" }
    });

    let (_clock, rt) = runtime::<Orders, ()>();
    let (on_failure, failed) = sink();
    rt.register(
        Function::new(
            "my-function",
            |_: &Orders, _ctx| -> Result<(), FunctionError> {
                panic!("the process exited before completing the request")
            },
        )
        .on_failure(on_failure),
    )
    .unwrap();
    let orders = Orders {
        order_ids: vec!["o-1".into(), "o-2".into(), "o-3".into()],
    };
    let id = rt.invoke_async("my-function", orders).unwrap();
    rt.run_until_idle();
    let record = failed.try_recv().unwrap();
    let ours = LambdaJson::default()
        .region("us-east-2")
        .record_value(&record)
        .unwrap();

    // Field by field: the same keys, nesting and value types as the documented record, except
    // that the crate also names the error's type (Lambda does too for errors a runtime
    // reports; the documented crash has only a message).
    let mut expected = shape(&documented);
    expected["responsePayload"]["errorType"] = json!("string");
    assert_eq!(shape(&ours), expected);

    // And the values that are fixed by the format, or by what happened.
    assert_eq!(ours["version"], "1.0");
    assert!(is_iso8601_millis_utc(ours["timestamp"].as_str().unwrap()));
    assert_eq!(ours["requestContext"]["requestId"], id.to_string());
    assert!(is_uuid_layout(&id.to_string()));
    assert_eq!(
        ours["requestContext"]["functionArn"],
        documented["requestContext"]["functionArn"]
    );
    assert_eq!(ours["requestContext"]["condition"], "RetriesExhausted");
    assert_eq!(ours["requestContext"]["approximateInvokeCount"], 3);
    assert_eq!(
        ours["requestPayload"],
        json!({ "ORDER_IDS": ["o-1", "o-2", "o-3"] })
    );
    assert_eq!(ours["responseContext"], documented["responseContext"]);
    assert_eq!(
        ours["responsePayload"]["errorMessage"],
        "the process exited before completing the request"
    );
    assert_eq!(ours["responsePayload"]["errorType"], FunctionError::PANIC);
}

#[test]
fn the_request_payload_is_embedded_as_json_not_as_a_string() {
    let (_clock, rt) = runtime::<Value, ()>();
    let (on_success, done) = sink();
    rt.register(Function::new("echo", |_: &Value, _ctx| Ok(())).on_success(on_success))
        .unwrap();
    rt.invoke_async("echo", json!({ "bucket": "photos", "keys": [1, 2] }))
        .unwrap();
    rt.run_until_idle();
    let record = done.try_recv().unwrap();

    let text = LambdaJson::default().record_string(&record).unwrap();
    assert!(
        text.contains(r#""requestPayload":{"bucket":"photos","keys":[1,2]}"#),
        "{text}"
    );
    let value = LambdaJson::default().record_value(&record).unwrap();
    assert!(value["requestPayload"].is_object());
}

#[test]
fn a_handled_error_gives_function_error_handled_with_error_message_and_error_type() {
    let (_clock, rt) = runtime::<u32, ()>();
    let (on_failure, failed) = sink();
    rt.register(
        Function::new("charge", |_: &u32, _ctx| {
            Err(FunctionError::new(
                "CardDeclined",
                "card ending 4242 declined",
            ))
        })
        .maximum_retry_attempts(0)
        .on_failure(on_failure),
    )
    .unwrap();
    rt.invoke_async("charge", 500).unwrap();
    rt.run_until_idle();
    let json = LambdaJson::default()
        .record_value(&failed.try_recv().unwrap())
        .unwrap();

    assert_eq!(json["requestContext"]["approximateInvokeCount"], 1);
    assert_eq!(
        json["responseContext"],
        json!({ "statusCode": 200, "executedVersion": "$LATEST", "functionError": "Handled" })
    );
    assert_eq!(
        json["responsePayload"],
        json!({ "errorMessage": "card ending 4242 declined", "errorType": "CardDeclined" })
    );
}

#[test]
fn a_success_record_has_no_function_error_and_carries_the_response_as_json() {
    #[derive(Serialize)]
    struct Size {
        width: u32,
        height: u32,
    }
    let (_clock, rt) = runtime::<String, Size>();
    let (on_success, done) = sink();
    rt.register(
        Function::new("measure", |_: &String, _ctx| {
            Ok(Size {
                width: 640,
                height: 480,
            })
        })
        .on_success(on_success),
    )
    .unwrap();
    rt.invoke_async("measure", "cat.png".to_string()).unwrap();
    rt.run_until_idle();
    let json = LambdaJson::default()
        .record_value(&done.try_recv().unwrap())
        .unwrap();

    assert_eq!(json["requestContext"]["condition"], "Success");
    assert_eq!(json["requestPayload"], "cat.png");
    assert_eq!(
        json["responseContext"],
        json!({ "statusCode": 200, "executedVersion": "$LATEST" })
    );
    assert_eq!(
        json["responsePayload"],
        json!({ "width": 640, "height": 480 })
    );
}

#[test]
fn a_handler_returning_nothing_gives_a_null_response_payload() {
    let (_clock, rt) = runtime::<u8, ()>();
    let (on_success, done) = sink();
    rt.register(Function::new("noop", |_: &u8, _ctx| Ok(())).on_success(on_success))
        .unwrap();
    rt.invoke_async("noop", 1).unwrap();
    rt.run_until_idle();
    let json = LambdaJson::default()
        .record_value(&done.try_recv().unwrap())
        .unwrap();
    let body = json.as_object().unwrap();
    assert_eq!(body.get("responsePayload"), Some(&Value::Null));
}

#[test]
fn a_record_of_an_event_that_never_ran_has_no_response_payload_and_no_function_error() {
    let (_clock, rt) = runtime::<u8, ()>();
    let (on_failure, failed) = sink();
    rt.register(
        Function::new("stopped", |_: &u8, _ctx| Ok(()))
            .reserved_concurrency(0)
            .on_failure(on_failure),
    )
    .unwrap();
    rt.invoke_async("stopped", 1).unwrap();
    rt.run_until_idle();
    let json = LambdaJson::default()
        .record_value(&failed.try_recv().unwrap())
        .unwrap();

    assert_eq!(
        json["requestContext"]["condition"],
        "ZeroReservedConcurrency"
    );
    assert_eq!(json["requestContext"]["approximateInvokeCount"], 0);
    assert_eq!(
        json["responseContext"],
        json!({ "statusCode": 200, "executedVersion": "$LATEST" })
    );
    assert!(json.as_object().unwrap().get("responsePayload").is_none());
}

#[test]
fn a_purged_event_keeps_the_crates_own_condition_name() {
    let (_clock, rt) = runtime::<u8, ()>();
    let (on_failure, failed) = sink();
    rt.register(Function::new("held", |_: &u8, _ctx| Ok(())).on_failure(on_failure))
        .unwrap();
    rt.pause("held").unwrap();
    rt.invoke_async("held", 1).unwrap();
    assert_eq!(rt.purge("held").unwrap(), 1);
    let record = failed.try_recv().unwrap();
    assert_eq!(record.condition, Condition::Purged);
    let json = LambdaJson::default().record_value(&record).unwrap();
    assert_eq!(json["requestContext"]["condition"], "Purged");
}

#[test]
fn the_timestamp_is_the_wall_clock_epoch_plus_the_record_timestamp_in_iso_8601_utc() {
    let (clock, rt) = runtime::<u8, ()>();
    let (on_failure, failed) = sink();
    rt.register(
        Function::new("late", |_: &u8, _ctx| Err(FunctionError::new("Boom", "no")))
            .on_failure(on_failure),
    )
    .unwrap();
    clock.advance(Duration::from_millis(1_257));
    rt.invoke_async("late", 1).unwrap();
    rt.run_until_idle(); // retries after 60 s and 120 s more: decided at 181.257 s
    let record = failed.try_recv().unwrap();
    assert_eq!(record.timestamp, Timestamp::from_millis(181_257));

    // 2024-02-29T23:57:00Z: the outcome falls on the next day, 1 March (2024 is a leap year).
    let epoch = UNIX_EPOCH + Duration::from_secs(1_709_164_800 + 86_220);
    let json = LambdaJson::new(epoch).record_value(&record).unwrap();
    assert_eq!(json["timestamp"], "2024-03-01T00:00:01.257Z");

    // The default epoch is 1970, so virtual-time records stay reproducible.
    let json = LambdaJson::default().record_value(&record).unwrap();
    assert_eq!(json["timestamp"], "1970-01-01T00:03:01.257Z");
}

#[test]
fn for_runtime_maps_the_runtime_clock_to_the_current_wall_clock() {
    let (clock, rt) = runtime::<u8, ()>();
    clock.advance(Duration::from_secs(3600));
    let before = SystemTime::now();
    let lambda = LambdaJson::for_runtime(&rt);
    let after = SystemTime::now();
    // The runtime's "now" (virtual 1 h) is mapped to the wall clock's now.
    let now = lambda.epoch() + Duration::from_secs(3600);
    assert!(before <= now && now <= after);
}

#[test]
fn the_function_arn_uses_the_configured_region_and_account() {
    let default = LambdaJson::default();
    assert_eq!(
        default.qualified_function_arn("resize"),
        "arn:aws:lambda:us-east-1:123456789012:function:resize:$LATEST"
    );
    let mine = LambdaJson::default()
        .region("eu-west-1")
        .account_id("111122223333");
    assert_eq!(
        mine.function_arn("resize"),
        "arn:aws:lambda:eu-west-1:111122223333:function:resize"
    );

    let (_clock, rt) = runtime::<u8, ()>();
    let (on_success, done) = sink();
    rt.register(Function::new("resize", |_: &u8, _ctx| Ok(())).on_success(on_success))
        .unwrap();
    rt.invoke_async("resize", 1).unwrap();
    rt.run_until_idle();
    let json = mine.record_value(&done.try_recv().unwrap()).unwrap();
    assert_eq!(
        json["requestContext"]["functionArn"],
        "arn:aws:lambda:eu-west-1:111122223333:function:resize:$LATEST"
    );
}

#[test]
fn a_record_serializes_through_serde_as_one_line_of_the_same_json() {
    let (_clock, rt) = runtime::<String, ()>();
    let (on_success, done) = sink();
    rt.register(Function::new("f", |_: &String, _ctx| Ok(())).on_success(on_success))
        .unwrap();
    rt.invoke_async("f", "x".to_string()).unwrap();
    rt.run_until_idle();
    let record = done.try_recv().unwrap();
    let lambda = LambdaJson::default();

    let text = lambda.record_string(&record).unwrap();
    assert!(!text.contains('\n'));
    assert!(
        text.starts_with(r#"{"version":"1.0","timestamp":"#),
        "{text}"
    );
    let via_serde = serde_json::to_string(&lambda.record(&record)).unwrap();
    assert_eq!(via_serde, text);
    let parsed: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(parsed, lambda.record_value(&record).unwrap());
}

// ----- import ---------------------------------------------------------------------------------

#[test]
fn importing_event_invoke_config_and_concurrency_sets_retries_age_and_reservation() {
    let settings = AwsFunctionSettings::import(
        r#"{
            "FunctionName": "resize",
            "MaximumRetryAttempts": 1,
            "MaximumEventAgeInSeconds": 900,
            "DestinationConfig": {
                "OnSuccess": { "Destination": "arn:aws:sns:us-east-1:123456789012:done" },
                "OnFailure": { "Destination": "arn:aws:sqs:us-east-1:123456789012:failed" }
            }
        }"#,
        Some(r#"{ "FunctionName": "resize", "ReservedConcurrentExecutions": 12 }"#),
    )
    .unwrap();
    assert_eq!(settings.function_name.as_deref(), Some("resize"));
    assert_eq!(settings.maximum_retry_attempts, Some(1));
    assert_eq!(settings.maximum_event_age, Some(Duration::from_secs(900)));
    assert_eq!(settings.reserved_concurrency, Some(12));
    assert_eq!(
        settings.on_success.as_ref().unwrap().as_str(),
        "arn:aws:sns:us-east-1:123456789012:done"
    );
    assert_eq!(settings.on_failure.as_ref().unwrap().service(), "sqs");

    let mut config: FunctionConfig<String, ()> = FunctionConfig::default();
    config.timeout = Duration::from_secs(30);
    settings.apply_to(&mut config).unwrap();
    assert_eq!(config.retry.maximum_retry_attempts(), 1);
    assert_eq!(config.retry.maximum_event_age(), Duration::from_secs(900));
    assert_eq!(config.reserved_concurrency, Some(12));
    assert_eq!(config.timeout, Duration::from_secs(30)); // not AWS's to change here
    assert!(config.on_success.is_none() && config.on_failure.is_none()); // ARNs are the caller's
}

#[test]
fn importing_retries_outside_zero_to_two_names_maximum_retry_attempts() {
    for bad in ["3", "-1", "100"] {
        let err =
            AwsFunctionSettings::import(&format!(r#"{{"MaximumRetryAttempts": {bad}}}"#), None)
                .unwrap_err();
        assert_eq!(
            err,
            Error::AwsConfig {
                field: "MaximumRetryAttempts",
                value: bad.to_string(),
                accepted: "an integer from 0 to 2 (Lambda's range)",
            }
        );
        let message = err.to_string();
        assert!(message.contains("MaximumRetryAttempts"), "{message}");
        assert!(message.contains("0 to 2"), "{message}");
    }
    for good in 0..=2 {
        let s =
            AwsFunctionSettings::import(&format!(r#"{{"MaximumRetryAttempts": {good}}}"#), None)
                .unwrap();
        assert_eq!(s.maximum_retry_attempts, Some(good));
    }
}

#[test]
fn importing_an_event_age_outside_60_to_21600_seconds_names_maximum_event_age_in_seconds() {
    for bad in [0, 59, 21_601, 86_400] {
        let err =
            AwsFunctionSettings::import(&format!(r#"{{"MaximumEventAgeInSeconds": {bad}}}"#), None)
                .unwrap_err();
        assert!(
            matches!(&err, Error::AwsConfig { field: "MaximumEventAgeInSeconds", value, .. } if *value == bad.to_string()),
            "{err:?}"
        );
        assert!(
            err.to_string()
                .contains("set MaximumEventAgeInSeconds to an integer from 60 to 21600"),
            "{err}"
        );
    }
    for good in [60, 21_600] {
        let s = AwsFunctionSettings::import(
            &format!(r#"{{"MaximumEventAgeInSeconds": {good}}}"#),
            None,
        )
        .unwrap();
        assert_eq!(s.maximum_event_age, Some(Duration::from_secs(good)));
    }
}

#[test]
fn importing_a_value_of_the_wrong_type_names_the_field() {
    let cases = [
        (
            r#"{"MaximumRetryAttempts": "2"}"#,
            None,
            "MaximumRetryAttempts",
        ),
        (
            r#"{"MaximumEventAgeInSeconds": 90.5}"#,
            None,
            "MaximumEventAgeInSeconds",
        ),
        (r#"{"FunctionName": 7}"#, None, "FunctionName"),
        (r#"{"DestinationConfig": []}"#, None, "DestinationConfig"),
        (
            r#"{"DestinationConfig": {"OnFailure": {"Destination": 1}}}"#,
            None,
            "DestinationConfig.OnFailure.Destination",
        ),
        (
            "{}",
            Some(r#"{"ReservedConcurrentExecutions": -1}"#),
            "ReservedConcurrentExecutions",
        ),
        (
            "{}",
            Some(r#"{"ReservedConcurrentExecutions": "5"}"#),
            "ReservedConcurrentExecutions",
        ),
        (
            "{}",
            Some(r#"{"FunctionName": "f"}"#),
            "ReservedConcurrentExecutions",
        ),
    ];
    for (eic, fc, field) in cases {
        match AwsFunctionSettings::import(eic, fc) {
            Err(Error::AwsConfig { field: got, .. }) => assert_eq!(got, field, "{eic} / {fc:?}"),
            other => {
                panic!("{eic} / {fc:?}: expected an AwsConfig error on {field}, got {other:?}")
            }
        }
    }
}

#[test]
fn importing_an_unknown_field_is_refused_rather_than_ignored() {
    let err = AwsFunctionSettings::import(r#"{"MaximumRetryAttempt": 1}"#, None).unwrap_err();
    assert!(
        matches!(&err, Error::AwsConfig { field: "PutFunctionEventInvokeConfig", value, .. } if value.contains("MaximumRetryAttempt")),
        "{err:?}"
    );
    let err =
        AwsFunctionSettings::import(r#"{"DestinationConfig": {"OnFail": {}}}"#, None).unwrap_err();
    assert!(
        matches!(
            err,
            Error::AwsConfig {
                field: "DestinationConfig",
                ..
            }
        ),
        "{err:?}"
    );
    let err = AwsFunctionSettings::import("{}", Some(r#"{"Reserved": 1}"#)).unwrap_err();
    assert!(
        matches!(
            err,
            Error::AwsConfig {
                field: "PutFunctionConcurrency",
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn importing_unreadable_json_names_the_document() {
    let err = AwsFunctionSettings::import(r#"{"MaximumRetryAttempts": "#, None).unwrap_err();
    assert!(
        matches!(&err, Error::AwsConfig { field: "PutFunctionEventInvokeConfig", value, .. } if value.contains("unreadable JSON")),
        "{err:?}"
    );
    let err = AwsFunctionSettings::import("[1, 2]", None).unwrap_err();
    assert!(matches!(
        err,
        Error::AwsConfig {
            field: "PutFunctionEventInvokeConfig",
            ..
        }
    ));
    let err = AwsFunctionSettings::import("{}", Some("12")).unwrap_err();
    assert!(matches!(
        err,
        Error::AwsConfig {
            field: "PutFunctionConcurrency",
            ..
        }
    ));
}

#[test]
fn importing_a_destination_that_is_not_an_arn_names_the_destination_field() {
    for bad in [
        "failed-events",
        "arn:aws:sqs:us-east-1:123456789012",
        "arn:aws:dynamodb:us-east-1:123456789012:table/t",
        "arn:aws:lambda:us-east-1:123456789012:layer:x",
        "arn:aws:lambda:us-east-1:123456789012:function:",
    ] {
        let doc = json!({ "DestinationConfig": { "OnSuccess": { "Destination": bad } } });
        let err = AwsFunctionSettings::import(&doc.to_string(), None).unwrap_err();
        assert!(
            matches!(&err, Error::AwsConfig { field: "DestinationConfig.OnSuccess.Destination", value, .. } if value.contains(bad)),
            "{bad}: {err:?}"
        );
    }
}

#[test]
fn function_names_that_differ_between_the_two_documents_are_refused() {
    let err = AwsFunctionSettings::import(
        r#"{"FunctionName": "a"}"#,
        Some(r#"{"FunctionName": "b", "ReservedConcurrentExecutions": 1}"#),
    )
    .unwrap_err();
    assert!(
        matches!(
            err,
            Error::AwsConfig {
                field: "FunctionName",
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn get_function_event_invoke_config_output_imports_with_its_read_only_fields_ignored() {
    // The shape `aws lambda get-function-event-invoke-config` prints.
    let settings = AwsFunctionSettings::import(
        r#"{
            "LastModified": 1700000000.123,
            "FunctionArn": "arn:aws:lambda:us-east-2:123456789012:function:error:$LATEST",
            "MaximumRetryAttempts": 0,
            "MaximumEventAgeInSeconds": 3600,
            "DestinationConfig": {
                "OnSuccess": {},
                "OnFailure": { "Destination": "arn:aws:sqs:us-east-2:123456789012:destination" }
            }
        }"#,
        None,
    )
    .unwrap();
    assert_eq!(settings.maximum_retry_attempts, Some(0));
    assert_eq!(settings.maximum_event_age, Some(Duration::from_secs(3600)));
    assert_eq!(settings.on_success, None);
    assert_eq!(settings.on_failure.unwrap().region(), "us-east-2");
    assert_eq!(settings.function_name, None);
}

#[test]
fn missing_settings_go_back_to_lambdas_defaults_like_put_function_event_invoke_config() {
    let f = Function::new("f", |_: &String, _ctx| Ok(()))
        .maximum_retry_attempts(0)
        .maximum_event_age(Duration::from_secs(60))
        .reserved_concurrency(3);
    let mut config = config_of(&f);
    AwsFunctionSettings::import("{}", None)
        .unwrap()
        .apply_to(&mut config)
        .unwrap();
    assert_eq!(config.retry, RetryPolicy::lambda_default());
    assert_eq!(config.reserved_concurrency, None);
}

#[test]
fn destination_arns_become_destinations_only_through_the_callers_resolver() {
    let settings = AwsFunctionSettings::import(
        r#"{ "MaximumRetryAttempts": 0, "DestinationConfig": {
               "OnSuccess": { "Destination": "arn:aws:lambda:us-east-1:123456789012:function:notify:prod" },
               "OnFailure": { "Destination": "arn:aws:sqs:us-east-1:123456789012:failed" } } }"#,
        None,
    )
    .unwrap();
    assert_eq!(
        settings.on_success.as_ref().unwrap().function_name(),
        Some("notify")
    );
    assert_eq!(settings.on_failure.as_ref().unwrap().function_name(), None);

    // A resolver that only knows functions cannot place the queue: refused, config unchanged.
    let mut config: FunctionConfig<String, ()> = FunctionConfig::default();
    let err = settings
        .apply_with_destinations(&mut config, |arn| arn.function_name().map(forward))
        .unwrap_err();
    assert!(
        matches!(&err, Error::AwsConfig { field: "DestinationConfig.OnFailure.Destination", value, .. } if value.contains("arn:aws:sqs")),
        "{err:?}"
    );
    assert_eq!(config.retry.maximum_retry_attempts(), 2);
    assert!(config.on_success.is_none());

    // A resolver that also maps the queue (here to a channel) applies everything.
    let (tx, _rx) = crossbeam_channel::unbounded();
    settings
        .apply_with_destinations(&mut config, |arn| match arn.function_name() {
            Some(name) => Some(forward(name)),
            None if arn.service() == "sqs" => Some(Destination::channel(tx.clone())),
            None => None,
        })
        .unwrap();
    assert_eq!(config.retry.maximum_retry_attempts(), 0);
    assert!(
        matches!(&config.on_success, Some(Destination::Function { name, .. }) if &**name == "notify")
    );
    assert!(matches!(config.on_failure, Some(Destination::Channel(_))));
}

// ----- export and round trips -----------------------------------------------------------------

/// A function destination that passes the event's payload on.
fn forward(name: &str) -> Destination<String, ()> {
    Destination::function(name, |r: &InvocationRecord<String, ()>| {
        r.request_payload.clone()
    })
}

fn resolve_functions(arn: &event_invoke::DestinationArn) -> Option<Destination<String, ()>> {
    arn.function_name().map(forward)
}

fn destination_name<P, R>(d: &Option<Destination<P, R>>) -> Option<String> {
    match d {
        Some(Destination::Function { name, .. }) => Some(name.to_string()),
        Some(other) => Some(format!("{other:?}")),
        None => None,
    }
}

#[test]
fn a_config_round_trips_through_aws_json_unchanged() {
    let lambda = LambdaJson::default()
        .region("eu-central-1")
        .account_id("210987654321");
    let f = Function::new("thumbnail", |_: &String, _ctx| Ok(()))
        .maximum_retry_attempts(1)
        .maximum_event_age(Duration::from_secs(1800))
        .reserved_concurrency(7)
        .on_success(forward("notify"))
        .on_failure(forward("audit"));
    let original = config_of(&f);

    let export = lambda.export_config("thumbnail", &original);
    assert!(export.warnings.is_empty(), "{:?}", export.warnings);
    // Through text, as it would travel to AWS and back.
    let eic = serde_json::to_string_pretty(&export.event_invoke_config).unwrap();
    let fc = serde_json::to_string(export.function_concurrency.as_ref().unwrap()).unwrap();
    let settings = AwsFunctionSettings::import(&eic, Some(&fc)).unwrap();
    assert_eq!(settings.function_name.as_deref(), Some("thumbnail"));

    let mut back: FunctionConfig<String, ()> = FunctionConfig::default();
    settings
        .apply_with_destinations(&mut back, resolve_functions)
        .unwrap();
    assert_eq!(back.retry, original.retry);
    assert_eq!(back.reserved_concurrency, original.reserved_concurrency);
    assert_eq!(back.timeout, original.timeout);
    assert_eq!(back.queue_capacity, original.queue_capacity);
    assert_eq!(
        destination_name(&back.on_success),
        Some("notify".to_string())
    );
    assert_eq!(
        destination_name(&back.on_failure),
        Some("audit".to_string())
    );

    // And the JSON of the re-imported config is the JSON that went out.
    assert_eq!(lambda.export_config("thumbnail", &back), export);
}

#[test]
fn aws_json_round_trips_through_import_and_export_unchanged() {
    let eic = json!({
        "FunctionName": "ingest",
        "MaximumRetryAttempts": 0,
        "MaximumEventAgeInSeconds": 60,
        "DestinationConfig": {
            "OnSuccess": {},
            "OnFailure": { "Destination": "arn:aws:lambda:us-east-1:123456789012:function:ingest-failures" }
        }
    });
    let fc = json!({ "FunctionName": "ingest", "ReservedConcurrentExecutions": 0 });
    let settings = AwsFunctionSettings::import_values(&eic, Some(&fc)).unwrap();
    let mut config: FunctionConfig<String, ()> = FunctionConfig::default();
    settings
        .apply_with_destinations(&mut config, resolve_functions)
        .unwrap();

    let export = LambdaJson::default().export_config("ingest", &config);
    assert!(export.warnings.is_empty(), "{:?}", export.warnings);
    assert_eq!(export.event_invoke_config, eic);
    assert_eq!(export.function_concurrency, Some(fc));

    // Without a reservation there is no PutFunctionConcurrency document, and none comes back.
    let settings = AwsFunctionSettings::import_values(&eic, None).unwrap();
    settings.apply_to(&mut config).unwrap();
    let export = LambdaJson::default().export_config("ingest", &config);
    assert_eq!(export.event_invoke_config, eic);
    assert_eq!(export.function_concurrency, None);
}

#[test]
fn a_config_within_lambdas_ranges_exports_without_warnings() {
    let config: FunctionConfig<String, ()> = FunctionConfig::default();
    let export = LambdaJson::default().export_config("plain", &config);
    assert!(export.warnings.is_empty(), "{:?}", export.warnings);
    assert_eq!(
        export.event_invoke_config,
        json!({
            "FunctionName": "plain",
            "MaximumRetryAttempts": 2,
            "MaximumEventAgeInSeconds": 21600,
            "DestinationConfig": { "OnSuccess": {}, "OnFailure": {} }
        })
    );
    assert_eq!(export.function_concurrency, None);
    assert!(export.strict().is_ok());
}

#[test]
#[cfg(feature = "model")] // the cost model is one of the settings exported
fn exporting_settings_lambda_cannot_express_warns_once_for_each() {
    let (tx, _rx) = crossbeam_channel::unbounded();
    let policy = RetryPolicy::builder()
        .maximum_retry_attempts(5)
        .maximum_event_age(Duration::from_secs(30))
        .retry_delays(vec![Duration::from_secs(1)])
        .throttle_backoff(Duration::from_millis(10), Duration::from_secs(1), 2)
        .throttle_jitter(0.0)
        .build()
        .unwrap();
    let f = Function::new("wide", |_: &String, _ctx| Ok(()))
        .retry_policy(policy)
        .timeout(Duration::from_secs(3600))
        .queue_capacity(10)
        .cost(event_invoke::CostModel::fixed(Duration::from_millis(5)))
        .on_success(Destination::closure(|_| {}))
        .on_failure(Destination::channel(tx));
    let export = LambdaJson::default().export_config("wide", f.config());

    let settings: Vec<&str> = export.warnings.iter().map(|w| w.setting).collect();
    assert_eq!(
        settings,
        [
            "maximum_retry_attempts",
            "maximum_event_age",
            "retry_delays",
            "throttle_backoff",
            "throttle_jitter",
            "timeout",
            "queue_capacity",
            "cost",
            "on_success",
            "on_failure",
        ]
    );
    // The nearest AWS values are written, and each warning says so.
    assert_eq!(export.event_invoke_config["MaximumRetryAttempts"], 2);
    assert_eq!(export.event_invoke_config["MaximumEventAgeInSeconds"], 60);
    assert_eq!(
        export.event_invoke_config["DestinationConfig"],
        json!({ "OnSuccess": {}, "OnFailure": {} })
    );
    assert!(export.warnings[0].to_string().contains("exported as 2"));
    assert_eq!(export.warnings[1].exported.as_deref(), Some("60"));
    assert!(export.warnings[5]
        .reason
        .contains("UpdateFunctionConfiguration"));
    assert!(export.warnings[5].reason.contains("1 to 900"));
    assert!(export.warnings[8].reason.contains("closure"));
    assert!(export.warnings[7].reason.contains("model mode"));

    // Too old an age is capped at 6 h; a fraction of a second is cut.
    let f = Function::new("long", |_: &String, _ctx| Ok(()))
        .maximum_event_age(Duration::from_secs(24 * 3600));
    let export = LambdaJson::default().export_config("long", f.config());
    assert_eq!(
        export.event_invoke_config["MaximumEventAgeInSeconds"],
        21_600
    );
    assert_eq!(export.warnings.len(), 1);
    let f = Function::new("odd", |_: &String, _ctx| Ok(()))
        .maximum_event_age(Duration::from_millis(90_500));
    let export = LambdaJson::default().export_config("odd", f.config());
    assert_eq!(export.event_invoke_config["MaximumEventAgeInSeconds"], 90);
    assert_eq!(export.warnings[0].setting, "maximum_event_age");
}

#[test]
fn strict_export_refuses_a_setting_without_an_aws_equivalent() {
    let f = Function::new("small", |_: &String, _ctx| Ok(())).queue_capacity(5);
    let err = LambdaJson::default()
        .export_config("small", f.config())
        .strict()
        .unwrap_err();
    assert!(
        matches!(&err, Error::NoAwsEquivalent { setting: "queue_capacity", value, .. } if value == "5"),
        "{err:?}"
    );
    assert!(
        err.to_string().contains("no AWS Lambda equivalent"),
        "{err}"
    );
}

/// A schedule of the user's own: a fixed wait.
#[derive(Debug)]
struct FixedWait(Duration);

impl event_invoke::RetrySchedule for FixedWait {
    fn delay(&self, _retry: u32) -> Option<Duration> {
        Some(self.0)
    }
}

#[test]
fn exporting_a_custom_retry_schedule_warns_and_strict_export_refuses_it() {
    let policy = RetryPolicy::builder()
        .retry_schedule(std::sync::Arc::new(FixedWait(Duration::from_secs(5))))
        .build()
        .unwrap();
    let f = Function::new("scheduled", |_: &String, _ctx| Ok(())).retry_policy(policy);
    let export = LambdaJson::default().export_config("scheduled", f.config());

    // One warning, for the schedule: the retry_delays list it replaces is not reported.
    assert_eq!(export.warnings.len(), 1, "{:?}", export.warnings);
    let warning = &export.warnings[0];
    assert_eq!(warning.setting, "retry_schedule");
    assert!(warning.value.contains("FixedWait"), "{}", warning.value);
    assert!(
        warning.reason.contains("no Lambda setting"),
        "{}",
        warning.reason
    );
    assert_eq!(warning.exported, None);
    // The settings Lambda has are still written.
    assert_eq!(export.event_invoke_config["MaximumRetryAttempts"], 2);
    assert_eq!(
        export.event_invoke_config["MaximumEventAgeInSeconds"],
        21_600
    );

    let err = export.strict().unwrap_err();
    assert!(
        matches!(
            &err,
            Error::NoAwsEquivalent {
                setting: "retry_schedule",
                ..
            }
        ),
        "{err:?}"
    );

    // With no retries the schedule is never asked, so there is nothing to report.
    let never = f.maximum_retry_attempts(0);
    let export = LambdaJson::default().export_config("scheduled", never.config());
    assert!(export.warnings.is_empty(), "{:?}", export.warnings);
}

/// Property tests of the import (proptest): random documents of valid and invalid fields.
mod import_properties {
    use event_invoke::{AwsFunctionSettings, Error};
    use proptest::prelude::*;
    use serde_json::{json, Map, Value};

    /// A field's JSON value, and the fields an error may name when the value is refused
    /// (none: accepted).
    type Field = (Value, Vec<&'static str>);

    fn refused(field: &'static str, values: Vec<Value>) -> impl Strategy<Value = Field> {
        prop::sample::select(values).prop_map(move |v| (v, vec![field]))
    }

    fn retries() -> impl Strategy<Value = Field> {
        const F: &str = "MaximumRetryAttempts";
        prop_oneof![
            3 => (0..=2u64).prop_map(|n| (json!(n), vec![])),
            1 => Just((Value::Null, vec![])),
            1 => (3..1_000u64).prop_map(|n| (json!(n), vec![F])),
            1 => refused(F, vec![json!(-1), json!(1.0), json!("2"), json!(true), json!([2])]),
        ]
    }

    fn age() -> impl Strategy<Value = Field> {
        const F: &str = "MaximumEventAgeInSeconds";
        prop_oneof![
            3 => (60..=21_600u64).prop_map(|n| (json!(n), vec![])),
            1 => Just((Value::Null, vec![])),
            1 => prop_oneof![0..60u64, 21_601..10_000_000u64].prop_map(|n| (json!(n), vec![F])),
            1 => refused(F, vec![json!(-60), json!(600.5), json!("600"), json!({})]),
        ]
    }

    fn name() -> impl Strategy<Value = Field> {
        prop_oneof![
            3 => "[a-zA-Z0-9_:-]{1,20}".prop_map(|n| (json!(n), vec![])),
            1 => refused("FunctionName", vec![json!(""), json!(5), json!({}), json!(["f"])]),
        ]
    }

    const GOOD_ARNS: [&str; 5] = [
        "arn:aws:sqs:us-east-1:123456789012:failures",
        "arn:aws:sns:eu-west-1:123456789012:topic",
        "arn:aws:lambda:eu-west-1:111122223333:function:audit:prod",
        "arn:aws:events:us-east-1:123456789012:event-bus/default",
        "arn:aws:s3:::bucket",
    ];

    fn destination(key: &'static str) -> impl Strategy<Value = Option<Field>> {
        let field = if key == "OnSuccess" {
            "DestinationConfig.OnSuccess.Destination"
        } else {
            "DestinationConfig.OnFailure.Destination"
        };
        let object = if key == "OnSuccess" {
            "DestinationConfig.OnSuccess"
        } else {
            "DestinationConfig.OnFailure"
        };
        prop::option::of(prop_oneof![
            4 => prop::sample::select(GOOD_ARNS.to_vec())
                .prop_map(|arn| (json!({ "Destination": arn }), vec![])),
            1 => prop::sample::select(vec![
                json!({ "Destination": "failures" }),
                json!({ "Destination": 7 }),
                json!({ "Destination": "arn:aws:dynamodb:us-east-1:1:table/t" }),
                json!({ "Destination": "arn:aws:lambda:us-east-1:1:layer:x" }),
            ])
            .prop_map(move |v| (v, vec![field])),
            1 => refused(object, vec![json!(5), json!({ "Dest": "x" })]),
        ])
    }

    fn destination_config() -> impl Strategy<Value = Field> {
        prop_oneof![
            4 => (destination("OnSuccess"), destination("OnFailure")).prop_map(|(s, f)| {
                let mut map = Map::new();
                let mut bad = Vec::new();
                for (key, part) in [("OnSuccess", s), ("OnFailure", f)] {
                    if let Some((value, refused)) = part {
                        map.insert(key.to_string(), value);
                        bad.extend(refused);
                    }
                }
                (Value::Object(map), bad)
            }),
            1 => refused(
                "DestinationConfig",
                vec![json!("x"), json!(3), json!({ "OnTimeout": {} })],
            ),
        ]
    }

    /// A `PutFunctionEventInvokeConfig` document, the fields an error may name, and a
    /// `PutFunctionConcurrency` document with the same.
    #[derive(Debug, Clone)]
    struct Docs {
        eic: Map<String, Value>,
        fc: Option<Value>,
        bad: Vec<&'static str>,
    }

    fn docs() -> impl Strategy<Value = Docs> {
        (
            prop::option::of(name()),
            prop::option::of(retries()),
            prop::option::of(age()),
            prop::option::of(destination_config()),
            prop::option::of(any::<u32>().prop_map(|n| json!(n))),
            prop::bool::weighted(0.1),
            prop::option::of(prop_oneof![
                3 => (0..5_000u64).prop_map(|n| (json!({ "ReservedConcurrentExecutions": n }), vec![])),
                1 => prop::sample::select(vec![
                    json!({ "ReservedConcurrentExecutions": -1 }),
                    json!({ "ReservedConcurrentExecutions": 1.5 }),
                    json!({ "ReservedConcurrentExecutions": "3" }),
                    json!({}),
                ])
                .prop_map(|v| (v, vec!["ReservedConcurrentExecutions"])),
                1 => Just((json!({ "Reserved": 1 }), vec!["PutFunctionConcurrency"])),
            ]),
        )
            .prop_map(|(name, retries, age, dest, qualifier, unknown, fc)| {
                let mut eic = Map::new();
                let mut bad = Vec::new();
                for (key, field) in [
                    ("FunctionName", name),
                    ("MaximumRetryAttempts", retries),
                    ("MaximumEventAgeInSeconds", age),
                    ("DestinationConfig", dest),
                ] {
                    if let Some((value, refused)) = field {
                        eic.insert(key.to_string(), value);
                        bad.extend(refused);
                    }
                }
                if let Some(q) = qualifier {
                    eic.insert("Qualifier".to_string(), q); // accepted and ignored
                }
                if unknown {
                    eic.insert("Unknown".to_string(), json!(1));
                    bad.push("PutFunctionEventInvokeConfig");
                }
                let fc = fc.map(|(doc, refused)| {
                    bad.extend(refused);
                    doc
                });
                Docs { eic, fc, bad }
            })
    }

    fn arn_at(eic: &Map<String, Value>, key: &str) -> Option<String> {
        eic.get("DestinationConfig")?
            .get(key)?
            .get("Destination")?
            .as_str()
            .map(String::from)
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

        /// A random document imports with exactly its values, or is refused naming one of its
        /// refused fields; the text and the parsed form agree.
        #[test]
        fn a_random_document_imports_its_values_or_names_a_refused_field(d in docs()) {
            let eic = Value::Object(d.eic.clone());
            let fc_text = d.fc.as_ref().map(Value::to_string);
            let imported = AwsFunctionSettings::import(&eic.to_string(), fc_text.as_deref());
            prop_assert_eq!(
                format!("{imported:?}"),
                format!("{:?}", AwsFunctionSettings::import_values(&eic, d.fc.as_ref()))
            );
            match imported {
                Ok(s) => {
                    prop_assert!(d.bad.is_empty(), "imported with {:?} refused", d.bad);
                    let num = |key: &str| d.eic.get(key).and_then(Value::as_u64);
                    prop_assert_eq!(s.maximum_retry_attempts.map(u64::from), num("MaximumRetryAttempts"));
                    prop_assert_eq!(
                        s.maximum_event_age.map(|a| a.as_secs()),
                        num("MaximumEventAgeInSeconds")
                    );
                    prop_assert_eq!(
                        s.function_name.as_deref(),
                        d.eic.get("FunctionName").and_then(Value::as_str)
                    );
                    prop_assert_eq!(s.on_success.map(|a| a.to_string()), arn_at(&d.eic, "OnSuccess"));
                    prop_assert_eq!(s.on_failure.map(|a| a.to_string()), arn_at(&d.eic, "OnFailure"));
                    let reserved = d.fc.as_ref().and_then(|fc| fc["ReservedConcurrentExecutions"].as_u64());
                    prop_assert_eq!(s.reserved_concurrency.map(u64::from), reserved);
                }
                Err(Error::AwsConfig { field, accepted, .. }) => {
                    prop_assert!(d.bad.contains(&field), "{field} named, refused: {:?}", d.bad);
                    prop_assert!(!accepted.is_empty());
                }
                Err(other) => prop_assert!(false, "not an AwsConfig error: {other:?}"),
            }
        }

        /// Any text at all: an import or an `AwsConfig` error, never a panic.
        #[test]
        fn any_text_imports_or_is_refused_without_a_panic(
            eic in prop_oneof![any::<String>(), "\\{[\"A-Za-z:0-9, {}\\[\\]-]{0,40}\\}"],
            fc in prop::option::of(any::<String>()),
        ) {
            match AwsFunctionSettings::import(&eic, fc.as_deref()) {
                Ok(_) | Err(Error::AwsConfig { .. }) => {}
                Err(other) => prop_assert!(false, "not an AwsConfig error: {other:?}"),
            }
        }
    }
}
