//! [`LambdaRecord`]: one record as Lambda's destination-record JSON.

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::ser::Error as _;
use serde::{Serialize, Serializer};

use crate::parts::record::{ErrorKind, InvocationRecord};

use super::LambdaJson;

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
    pub(crate) lambda: &'a LambdaJson,
    pub(crate) record: &'a InvocationRecord<P, R>,
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
pub(crate) struct RecordJson<'a, P, R> {
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
pub(crate) struct RequestContextJson {
    request_id: String,
    function_arn: String,
    condition: &'static str,
    approximate_invoke_count: u32,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ResponseContextJson {
    status_code: u16,
    executed_version: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    function_error: Option<&'static str>,
}

#[derive(Serialize)]
#[serde(untagged)]
pub(crate) enum ResponsePayloadJson<'a, R> {
    Response(&'a R),
    Error(ErrorJson<'a>),
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ErrorJson<'a> {
    error_message: &'a str,
    error_type: &'a str,
}

/// `t` as ISO 8601 in UTC with milliseconds (truncated), e.g. `2019-11-14T18:16:05.568Z`.
/// Years outside 0000 to 9999 get a sign and six digits, as JavaScript writes them.
pub(crate) fn iso8601(t: SystemTime) -> String {
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
pub(crate) fn civil_from_days(days: i128) -> (i128, i128, i128) {
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
    use std::time::Duration;

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
