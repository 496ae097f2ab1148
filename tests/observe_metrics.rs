//! Feature `metrics`: Lambda's CloudWatch metrics through the `metrics` facade, labelled by
//! function, read back from a `metrics_util` debugging recorder local to each test (the runtime
//! is driven on the test's own thread, under a manual clock).
#![cfg(feature = "metrics")]

mod common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use event_invoke::{
    Condition, Destination, Function, FunctionError, ManualClock, RetryPolicy, Runtime,
    ZeroConcurrency,
};
use metrics::Unit;
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use metrics_util::MetricKind;

/// What a metric read: a counter, a gauge, or a histogram's samples.
#[derive(Debug, Clone, PartialEq)]
enum Value {
    Counter(u64),
    Gauge(f64),
    Histogram(Vec<f64>),
}

/// A snapshot as `"Name{label=value,...}" -> (kind, unit, value)`, labels sorted.
type Readings = BTreeMap<String, (MetricKind, Option<Unit>, Value)>;

fn read(snapshotter: &Snapshotter) -> Readings {
    snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .map(|(key, unit, _description, value)| {
            let (kind, key) = key.into_parts();
            let mut labels: Vec<String> = key
                .labels()
                .map(|l| format!("{}={}", l.key(), l.value()))
                .collect();
            labels.sort();
            let name = format!("{}{{{}}}", key.name(), labels.join(","));
            let value = match value {
                DebugValue::Counter(n) => Value::Counter(n),
                DebugValue::Gauge(g) => Value::Gauge(g.0),
                DebugValue::Histogram(xs) => Value::Histogram(xs.iter().map(|x| x.0).collect()),
            };
            (name, (kind, unit, value))
        })
        .collect()
}

/// Runs `f` with a debugging recorder installed for this thread only, and reads it after.
fn recorded(f: impl FnOnce()) -> Readings {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    metrics::with_local_recorder(&recorder, f);
    read(&snapshotter)
}

fn counter(r: &Readings, key: &str) -> u64 {
    match r.get(key) {
        Some((MetricKind::Counter, _, Value::Counter(n))) => *n,
        other => panic!("no counter {key}: {other:?} in {r:#?}"),
    }
}

fn histogram(r: &Readings, key: &str) -> Vec<f64> {
    match r.get(key) {
        Some((MetricKind::Histogram, _, Value::Histogram(xs))) => xs.clone(),
        other => panic!("no histogram {key}: {other:?} in {r:#?}"),
    }
}

#[test]
fn a_failing_handler_moves_lambdas_metrics_labelled_by_function() {
    let clock = ManualClock::new();
    let mut metrics = None;
    let r = recorded(|| {
        let rt: Runtime<u32> = Runtime::builder().clock(clock.clone()).build().unwrap();
        let (tx, rx) = crossbeam_channel::unbounded();
        drop(rx); // the on-failure destination is gone: its delivery fails
        let handler_clock = clock.clone();
        rt.register(
            Function::new("charge", move |_: &u32, _ctx| {
                handler_clock.advance(Duration::from_millis(250)); // each attempt takes 250 ms
                Err(FunctionError::new("CardDeclined", "declined"))
            })
            .on_failure(Destination::channel(tx)),
        )
        .unwrap();
        rt.register(Function::new("ok", |_: &u32, _ctx| Ok(())))
            .unwrap();
        rt.invoke_async("charge", 500).unwrap();
        rt.invoke_async("ok", 1).unwrap();
        rt.invoke_async("ok", 2).unwrap();
        rt.run_until_idle();
        metrics = Some(rt.metrics());
    });

    assert_eq!(counter(&r, "AsyncEventsReceived{function_name=charge}"), 1);
    assert_eq!(counter(&r, "AsyncEventsReceived{function_name=ok}"), 2);
    assert_eq!(counter(&r, "Invocations{function_name=charge}"), 3);
    assert_eq!(counter(&r, "Invocations{function_name=ok}"), 2);
    assert_eq!(counter(&r, "Errors{function_name=charge}"), 3);
    assert!(!r.contains_key("Errors{function_name=ok}"));
    assert_eq!(
        counter(
            &r,
            "AsyncEventsDropped{condition=RetriesExhausted,function_name=charge}"
        ),
        1
    );
    assert!(!r
        .keys()
        .any(|k| k.starts_with("AsyncEventsDropped{condition=Success")));
    assert_eq!(
        counter(&r, "DestinationDeliveryFailures{function_name=charge}"),
        1
    );
    // Milliseconds: three attempts of 250 ms; the retries start 60 s and 120 s after the
    // previous attempt ended.
    assert_eq!(
        histogram(&r, "Duration{function_name=charge}"),
        [250.0, 250.0, 250.0]
    );
    assert_eq!(
        histogram(&r, "AsyncEventAge{function_name=charge}"),
        [0.0, 60_250.0, 180_500.0]
    );
    assert_eq!(histogram(&r, "Duration{function_name=ok}"), [0.0, 0.0]);
    // Every execution has ended: the gauge is back to 0.
    assert_eq!(
        r.get("ConcurrentExecutions{function_name=charge}"),
        Some(&(MetricKind::Gauge, None, Value::Gauge(0.0)))
    );

    // The same numbers as the runtime's own snapshot.
    let metrics = metrics.unwrap();
    for m in &metrics.functions {
        let label = format!("{{function_name={}}}", m.name);
        let get = |name: &str| {
            r.get(&format!("{name}{label}"))
                .map_or(0, |_| counter(&r, &format!("{name}{label}")))
        };
        assert_eq!(get("AsyncEventsReceived"), m.events_received);
        assert_eq!(get("Invocations"), m.invocations);
        assert_eq!(get("Errors"), m.errors);
        assert_eq!(
            get("DestinationDeliveryFailures"),
            m.destination_delivery_failures
        );
    }
}

#[test]
fn throttles_and_drops_are_counted_by_condition() {
    let clock = ManualClock::new();
    let r = recorded(|| {
        let rt: Runtime<u32> = Runtime::builder()
            .clock(clock.clone())
            .zero_concurrency(ZeroConcurrency::Throttle)
            .recursion_limit(Some(2))
            .build()
            .unwrap();
        let policy = RetryPolicy::builder()
            .throttle_jitter(0.0)
            .maximum_event_age(Duration::from_secs(10))
            .build()
            .unwrap();
        rt.register(
            Function::new("held", |_: &u32, _ctx| Ok(()))
                .retry_policy(policy)
                .reserved_concurrency(0),
        )
        .unwrap();
        // Invokes itself: depths 1 and 2 run, depth 3 is past the limit.
        rt.register(Function::new("loop", |n: &u32, ctx| {
            ctx.invoke_async("loop", n + 1).unwrap();
            Ok(())
        }))
        .unwrap();
        rt.invoke_async("held", 1).unwrap();
        rt.invoke_async("loop", 1).unwrap();
        rt.run_until_idle(); // "held" is throttled at 0, 1, 3 and 7 s, then ages out
        let m = rt.function_metrics("held").unwrap();
        assert_eq!(m.throttles, 4);
        assert_eq!(m.outcome(Condition::EventAgeExceeded), 1);
    });
    // Four throttles, as in the snapshot; the last one ends the event (its next try would be
    // past the 10 s age), which is also counted under AsyncEventsDropped.
    assert_eq!(counter(&r, "Throttles{function_name=held}"), 4);
    assert_eq!(
        counter(
            &r,
            "AsyncEventsDropped{condition=EventAgeExceeded,function_name=held}"
        ),
        1
    );
    assert!(!r.contains_key("Invocations{function_name=held}"));
    assert_eq!(counter(&r, "AsyncEventsReceived{function_name=loop}"), 3);
    assert_eq!(counter(&r, "Invocations{function_name=loop}"), 2);
    assert_eq!(
        counter(
            &r,
            "AsyncEventsDropped{condition=RecursionLimit,function_name=loop}"
        ),
        1
    );
    assert_eq!(
        counter(&r, "RecursiveInvocationsDropped{function_name=loop}"),
        1
    );
    assert!(!r.contains_key("RecursiveInvocationsDropped{function_name=held}"));
}

#[test]
fn concurrent_executions_counts_the_handlers_running_now() {
    let clock = ManualClock::new();
    let during: Arc<Mutex<Vec<Readings>>> = Arc::default();
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    metrics::with_local_recorder(&recorder, || {
        let rt: Runtime<u32> = Runtime::builder().clock(clock.clone()).build().unwrap();
        let (seen, inner) = (Arc::clone(&during), snapshotter.clone());
        rt.register(Function::new("outer", move |_: &u32, ctx| {
            // A synchronous invoke from inside the handler: two executions at once.
            ctx.runtime().unwrap().invoke("inner", &0).unwrap();
            Ok(())
        }))
        .unwrap();
        rt.register(Function::new("inner", move |_: &u32, _ctx| {
            seen.lock().unwrap().push(read(&inner));
            Ok(())
        }))
        .unwrap();
        rt.invoke_async("outer", 1).unwrap();
        rt.run_until_idle();
    });
    let during = during.lock().unwrap();
    let gauge = |name: &str| match during[0].get(name) {
        Some((MetricKind::Gauge, _, Value::Gauge(g))) => *g,
        other => panic!("no gauge {name}: {other:?}"),
    };
    assert_eq!(gauge("ConcurrentExecutions{function_name=outer}"), 1.0);
    assert_eq!(gauge("ConcurrentExecutions{function_name=inner}"), 1.0);
    // The synchronous invoke counts as an invocation, with an event age of 0.
    assert_eq!(counter(&during[0], "Invocations{function_name=inner}"), 1);
    assert_eq!(
        histogram(&during[0], "AsyncEventAge{function_name=inner}"),
        [0.0]
    );
    // (Reading the debugging recorder resets it; after that, only the decrements remain.)
    let after = read(&snapshotter);
    assert_eq!(
        after.get("ConcurrentExecutions{function_name=inner}"),
        Some(&(MetricKind::Gauge, None, Value::Gauge(-1.0)))
    );
}

#[test]
fn describe_metrics_gives_each_metric_its_unit() {
    let r = recorded(|| {
        event_invoke::describe_metrics();
        let rt: Runtime<u32> = Runtime::builder()
            .clock(ManualClock::new())
            .build()
            .unwrap();
        rt.register(Function::new("f", |_: &u32, _ctx| Ok(())))
            .unwrap();
        rt.invoke_async("f", 1).unwrap();
        rt.run_until_idle();
    });
    let unit = |key: &str| r.get(key).and_then(|(_, unit, _)| *unit);
    assert_eq!(unit("Duration{function_name=f}"), Some(Unit::Milliseconds));
    assert_eq!(
        unit("AsyncEventAge{function_name=f}"),
        Some(Unit::Milliseconds)
    );
    assert_eq!(unit("Invocations{function_name=f}"), Some(Unit::Count));
    assert_eq!(
        unit("AsyncEventsReceived{function_name=f}"),
        Some(Unit::Count)
    );
    assert_eq!(
        unit("ConcurrentExecutions{function_name=f}"),
        Some(Unit::Count)
    );
}

/// A broken recorder: registering `AsyncEventsReceived` or `Duration` panics, and every other
/// counter, gauge or histogram it hands out panics when used.
struct Panicking;

struct PanicsWhenUsed;

impl metrics::CounterFn for PanicsWhenUsed {
    fn increment(&self, _: u64) {
        panic!("recorder: counter");
    }
    fn absolute(&self, _: u64) {
        panic!("recorder: counter");
    }
}

impl metrics::GaugeFn for PanicsWhenUsed {
    fn increment(&self, _: f64) {
        panic!("recorder: gauge");
    }
    fn decrement(&self, _: f64) {
        panic!("recorder: gauge");
    }
    fn set(&self, _: f64) {
        panic!("recorder: gauge");
    }
}

impl metrics::HistogramFn for PanicsWhenUsed {
    fn record(&self, _: f64) {
        panic!("recorder: histogram");
    }
}

impl Panicking {
    fn register(key: &metrics::Key) -> Arc<PanicsWhenUsed> {
        if matches!(key.name(), "AsyncEventsReceived" | "Duration") {
            panic!("recorder: register {}", key.name());
        }
        Arc::new(PanicsWhenUsed)
    }
}

impl metrics::Recorder for Panicking {
    fn describe_counter(&self, _: metrics::KeyName, _: Option<Unit>, _: metrics::SharedString) {}
    fn describe_gauge(&self, _: metrics::KeyName, _: Option<Unit>, _: metrics::SharedString) {}
    fn describe_histogram(&self, _: metrics::KeyName, _: Option<Unit>, _: metrics::SharedString) {}
    fn register_counter(&self, key: &metrics::Key, _: &metrics::Metadata<'_>) -> metrics::Counter {
        metrics::Counter::from_arc(Self::register(key))
    }
    fn register_gauge(&self, key: &metrics::Key, _: &metrics::Metadata<'_>) -> metrics::Gauge {
        metrics::Gauge::from_arc(Self::register(key))
    }
    fn register_histogram(
        &self,
        key: &metrics::Key,
        _: &metrics::Metadata<'_>,
    ) -> metrics::Histogram {
        metrics::Histogram::from_arc(Self::register(key))
    }
}

#[test]
fn a_panicking_recorder_loses_its_readings_never_an_event_or_its_record() {
    let clock = ManualClock::new();
    let records: Arc<Mutex<Vec<(String, Condition)>>> = Arc::default();
    let mut accepted = Vec::new();
    let rt: Runtime<u32, u32> = metrics::with_local_recorder(&Panicking, || {
        let seen = Arc::clone(&records);
        let rt: Runtime<u32, u32> = Runtime::builder()
            .clock(clock.clone())
            .on_record(move |r| {
                let entry = (r.request_id.to_string(), r.condition);
                seen.lock().unwrap().push(entry);
            })
            .build()
            .unwrap();
        let (on_failure, failures) = crossbeam_channel::unbounded();
        drop(failures); // a failed delivery: DestinationDeliveryFailures, to a broken recorder
        rt.register(Function::new("quick", |n: &u32, _ctx| Ok(n + 1)))
            .unwrap();
        rt.register(
            Function::new("declined", |_: &u32, _ctx| {
                Err(FunctionError::new("CardDeclined", "declined"))
            })
            .on_failure(Destination::channel(on_failure)),
        )
        .unwrap();
        rt.register(Function::new("boom", |_: &u32, _ctx| -> Result<u32, _> {
            panic!("handler panicked")
        }))
        .unwrap();
        // Quick handlers run in batches of up to 16 on this one thread.
        for n in 0..40 {
            accepted.push(rt.invoke_async("quick", n).unwrap());
        }
        accepted.push(rt.invoke_async("declined", 1).unwrap());
        accepted.push(rt.invoke_async("declined", 2).unwrap());
        accepted.push(rt.invoke_async("boom", 3).unwrap());
        rt.run_until_idle(); // retries at 60 s and 180 s
        assert_eq!(rt.invoke("quick", &41).unwrap(), 42);
        rt
    });

    let records = records.lock().unwrap();
    let failed = common::one_record_each(&records, &accepted, Condition::RetriesExhausted);
    assert_eq!(failed, 3);
    let m = rt.metrics();
    assert!(m.total.is_balanced());
    assert_eq!(m.total.outcome(Condition::Success), 40);
    assert_eq!(m.total.invocations, 40 + 3 * 3 + 1);
    assert_eq!(m.total.destination_delivery_failures, 2);
    assert_eq!(m.total.concurrent_executions, 0);
    assert_eq!(rt.outstanding(), 0);
    // The runtime's own books still see every dead letter.
    assert_eq!(rt.drain_dead_letters().len(), 3);
}
