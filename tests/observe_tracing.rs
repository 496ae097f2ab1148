//! Feature `tracing`: a span per attempt (request id, function, attempt, code version) around
//! the handler, and events for retries, throttles, drops, duplicates and destination
//! deliveries, captured by a `tracing_subscriber` layer of our own.
#![cfg(feature = "tracing")]

mod common;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use event_invoke::{
    Condition, Destination, FaultInjection, Function, FunctionError, ManualClock, RetryPolicy,
    Runtime, ZeroConcurrency,
};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;

type Fields = BTreeMap<String, String>;

/// A span as it was when it closed.
#[derive(Debug, Clone)]
struct SpanSeen {
    name: &'static str,
    target: String,
    fields: Fields,
}

/// An event with the spans around it, innermost first.
#[derive(Debug, Clone)]
struct EventSeen {
    level: Level,
    target: String,
    message: String,
    fields: Fields,
    spans: Vec<SpanSeen>,
}

#[derive(Default)]
struct Seen {
    spans: Vec<SpanSeen>,
    events: Vec<EventSeen>,
}

/// Collects every span (when it closes) and every event.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Seen>>);

struct Visitor<'a>(&'a mut Fields);

impl Visit for Visitor<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0
            .insert(field.name().to_string(), format!("{value:?}"));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_string(), value.to_string());
    }
}

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Capture {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut fields = Fields::new();
        attrs.record(&mut Visitor(&mut fields));
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(fields);
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(id) {
            if let Some(fields) = span.extensions_mut().get_mut::<Fields>() {
                values.record(&mut Visitor(fields));
            }
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let mut fields = Fields::new();
        event.record(&mut Visitor(&mut fields));
        let message = fields.remove("message").unwrap_or_default();
        let spans = ctx
            .event_scope(event)
            .map(|scope| scope.map(|span| seen(&span)).collect())
            .unwrap_or_default();
        self.0.lock().unwrap().events.push(EventSeen {
            level: *event.metadata().level(),
            target: event.metadata().target().to_string(),
            message,
            fields,
            spans,
        });
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(&id) {
            let span = seen(&span);
            self.0.lock().unwrap().spans.push(span);
        }
    }
}

fn seen<'a, R: LookupSpan<'a>>(span: &tracing_subscriber::registry::SpanRef<'a, R>) -> SpanSeen {
    SpanSeen {
        name: span.name(),
        target: span.metadata().target().to_string(),
        fields: span
            .extensions()
            .get::<Fields>()
            .cloned()
            .unwrap_or_default(),
    }
}

impl Capture {
    /// Runs `f` with this layer as the thread's subscriber (the runtime is driven on this
    /// thread), then returns what it saw.
    fn run(f: impl FnOnce()) -> Seen {
        let capture = Capture::default();
        let subscriber = tracing_subscriber::registry().with(capture.clone());
        tracing::subscriber::with_default(subscriber, f);
        let seen = std::mem::take(&mut *capture.0.lock().unwrap());
        seen
    }
}

impl Seen {
    fn events(&self, message: &str) -> Vec<&EventSeen> {
        self.events
            .iter()
            .filter(|e| e.message == message)
            .collect()
    }

    fn attempt_spans(&self) -> Vec<&SpanSeen> {
        self.spans.iter().filter(|s| s.name == "attempt").collect()
    }
}

fn field<'a>(fields: &'a Fields, name: &str) -> &'a str {
    fields
        .get(name)
        .map(String::as_str)
        .unwrap_or_else(|| panic!("no field {name} in {fields:?}"))
}

fn runtime<P: Send + 'static>(clock: &ManualClock) -> Runtime<P> {
    Runtime::builder().clock(clock.clone()).build().unwrap()
}

#[test]
fn each_attempt_runs_in_a_span_and_the_handlers_own_events_nest_under_it() {
    let clock = ManualClock::new();
    let mut id = None;
    let seen = Capture::run(|| {
        let rt: Runtime<u32> = runtime(&clock);
        rt.register(Function::new("charge", |amount: &u32, _ctx| {
            tracing::info!(amount = *amount, "charging");
            Err(FunctionError::new("CardDeclined", "declined"))
        }))
        .unwrap();
        id = Some(rt.invoke_async("charge", 500).unwrap());
        rt.run_until_idle(); // attempt 1, then retries after 60 s and 120 s
        rt.update_code("charge", |_: &u32, _ctx| Ok(())).unwrap();
        rt.invoke_async("charge", 1).unwrap();
        rt.run_until_idle();
    });
    let id = id.unwrap().to_string();

    let spans = seen.attempt_spans();
    assert_eq!(spans.len(), 4, "{spans:#?}");
    for (n, span) in spans[..3].iter().enumerate() {
        assert_eq!(span.target, "event_invoke");
        assert_eq!(field(&span.fields, "request_id"), id);
        assert_eq!(field(&span.fields, "function"), "charge");
        assert_eq!(field(&span.fields, "attempt"), (n + 1).to_string());
        assert_eq!(field(&span.fields, "code_version"), "1");
        assert_eq!(field(&span.fields, "duplicate"), "false");
        assert_eq!(field(&span.fields, "error_type"), "CardDeclined");
    }
    // The second event ran on code version 2 and succeeded: no error_type.
    assert_eq!(field(&spans[3].fields, "code_version"), "2");
    assert_ne!(field(&spans[3].fields, "request_id"), id);
    assert!(!spans[3].fields.contains_key("error_type"));

    // The handler's own event is inside the attempt's span.
    let charging = seen.events("charging");
    assert_eq!(charging.len(), 3);
    for (n, e) in charging.iter().enumerate() {
        let span = &e.spans[0];
        assert_eq!(span.name, "attempt");
        assert_eq!(field(&span.fields, "request_id"), id);
        assert_eq!(field(&span.fields, "attempt"), (n + 1).to_string());
        assert_eq!(field(&e.fields, "amount"), "500");
    }
}

#[test]
fn retries_failures_drops_and_failed_deliveries_are_events_at_the_expected_levels() {
    let clock = ManualClock::new();
    let mut id = None;
    let seen = Capture::run(|| {
        let rt: Runtime<u32> = runtime(&clock);
        let (tx, rx) = crossbeam_channel::unbounded();
        drop(rx); // the on-failure destination is gone: its delivery fails
        rt.register(
            Function::new("charge", |_: &u32, _ctx| {
                Err(FunctionError::new("CardDeclined", "declined"))
            })
            .on_failure(Destination::channel(tx)),
        )
        .unwrap();
        id = Some(rt.invoke_async("charge", 500).unwrap());
        rt.run_until_idle();
    });
    let id = id.unwrap().to_string();
    for e in &seen.events {
        assert_eq!(e.target, "event_invoke", "{e:?}");
        assert_eq!(field(&e.fields, "request_id"), id, "{e:?}");
        assert_eq!(field(&e.fields, "function"), "charge", "{e:?}");
    }

    let accepted = seen.events("event accepted");
    assert_eq!(accepted.len(), 1);
    assert_eq!(accepted[0].level, Level::DEBUG);
    assert_eq!(field(&accepted[0].fields, "chain_depth"), "1");

    let started = seen.events("attempt started");
    assert_eq!(started.len(), 3);
    assert!(started.iter().all(|e| e.level == Level::DEBUG));

    let failed = seen.events("attempt failed");
    assert_eq!(failed.len(), 3);
    for (n, e) in failed.iter().enumerate() {
        assert_eq!(e.level, Level::INFO);
        assert_eq!(field(&e.fields, "attempt"), (n + 1).to_string());
        assert_eq!(field(&e.fields, "error_type"), "CardDeclined");
        assert_eq!(field(&e.fields, "error_message"), "declined");
    }

    let retries = seen.events("retry scheduled");
    let delays: Vec<_> = retries.iter().map(|e| field(&e.fields, "delay")).collect();
    assert_eq!(delays, ["60s", "120s"]);
    assert!(retries.iter().all(|e| e.level == Level::INFO));
    assert_eq!(field(&retries[1].fields, "at"), "60s");

    let dropped = seen.events("event dropped");
    assert_eq!(dropped.len(), 1);
    assert_eq!(dropped[0].level, Level::WARN);
    assert_eq!(field(&dropped[0].fields, "condition"), "RetriesExhausted");
    assert_eq!(field(&dropped[0].fields, "approximate_invoke_count"), "3");
    assert_eq!(field(&dropped[0].fields, "at"), "180s");

    let delivery = seen.events("destination delivery failed");
    assert_eq!(delivery.len(), 1);
    assert_eq!(delivery[0].level, Level::WARN);
    assert_eq!(field(&delivery[0].fields, "destination"), "OnFailure");
    assert!(seen.events("record delivered").is_empty());
    // The engine's steps are outside the attempt spans.
    assert!(seen.events.iter().all(|e| e.spans.is_empty()));
}

#[test]
fn throttles_are_info_events_and_an_event_that_ages_out_is_a_warning() {
    let clock = ManualClock::new();
    let seen = Capture::run(|| {
        let rt: Runtime<u32> = Runtime::builder()
            .clock(clock.clone())
            .zero_concurrency(ZeroConcurrency::Throttle)
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
        rt.invoke_async("held", 1).unwrap();
        // Throttled at 0, 1, 3 and 7 s; the fourth backoff (8 s) would end past 10 s, so the
        // event ends there, its last throttle still reported.
        rt.run_until_idle();
    });
    let throttled = seen.events("throttled");
    let backoffs: Vec<_> = throttled
        .iter()
        .map(|e| field(&e.fields, "backoff"))
        .collect();
    assert_eq!(backoffs, ["1s", "2s", "4s", "8s"]);
    assert!(throttled.iter().all(|e| e.level == Level::INFO));
    let dropped = seen.events("event dropped");
    assert_eq!(dropped.len(), 1);
    assert_eq!(dropped[0].level, Level::WARN);
    assert_eq!(field(&dropped[0].fields, "condition"), "EventAgeExceeded");
    assert_eq!(field(&dropped[0].fields, "approximate_invoke_count"), "0");
    assert!(seen.attempt_spans().is_empty(), "the handler never ran");
}

#[test]
fn successes_and_delivered_records_are_debug_and_duplicates_are_marked() {
    let clock = ManualClock::new();
    let (tx, records) = crossbeam_channel::unbounded();
    let seen = Capture::run(|| {
        let rt: Runtime<u32> = Runtime::builder()
            .clock(clock.clone())
            .fault_injection(FaultInjection::new(3).duplicates(1.0))
            .build()
            .unwrap();
        rt.register(
            Function::new("f", |_: &u32, _ctx| Ok(())).on_success(Destination::channel(tx)),
        )
        .unwrap();
        rt.invoke_async("f", 1).unwrap();
        rt.run_until_idle();
    });
    assert_eq!(records.len(), 1);
    assert!(
        seen.events
            .iter()
            .all(|e| e.level == Level::DEBUG || e.message == "duplicate delivery injected"),
        "{:#?}",
        seen.events
    );
    let delivered = seen.events("record delivered");
    assert_eq!(delivered.len(), 1);
    assert_eq!(field(&delivered[0].fields, "destination"), "OnSuccess");
    let succeeded = seen.events("event succeeded");
    assert_eq!(succeeded.len(), 1);
    assert_eq!(field(&succeeded[0].fields, "approximate_invoke_count"), "1");
    let duplicate = seen.events("duplicate delivery injected");
    assert_eq!(duplicate.len(), 1);
    assert_eq!(duplicate[0].level, Level::INFO);
    let spans = seen.attempt_spans();
    let flags: Vec<_> = spans
        .iter()
        .map(|s| field(&s.fields, "duplicate"))
        .collect();
    assert_eq!(flags, ["false", "true"]);
    assert_eq!(field(&spans[1].fields, "attempt"), "1");
}

#[test]
fn a_synchronous_invoke_runs_in_an_attempt_span_too() {
    let clock = ManualClock::new();
    let seen = Capture::run(|| {
        let rt: Runtime<u32, u32> = Runtime::builder().clock(clock.clone()).build().unwrap();
        rt.register(Function::new("double", |n: &u32, _ctx| {
            tracing::debug!("doubling");
            Ok(n * 2)
        }))
        .unwrap();
        assert_eq!(rt.invoke("double", &21).unwrap(), 42);
    });
    let spans = seen.attempt_spans();
    assert_eq!(spans.len(), 1);
    assert_eq!(field(&spans[0].fields, "function"), "double");
    assert_eq!(seen.events("doubling")[0].spans[0].name, "attempt");
}

/// A broken subscriber: it panics when told of every second new span, of every field recorded
/// on a span, and of every event.
#[derive(Default)]
struct Panicking {
    spans: std::sync::atomic::AtomicUsize,
}

impl<S: Subscriber> Layer<S> for Panicking {
    fn on_new_span(&self, _: &Attributes<'_>, _: &Id, _: Context<'_, S>) {
        if self
            .spans
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            % 2
            == 1
        {
            panic!("subscriber: new span");
        }
    }

    fn on_record(&self, _: &Id, _: &Record<'_>, _: Context<'_, S>) {
        panic!("subscriber: record");
    }

    fn on_event(&self, _: &Event<'_>, _: Context<'_, S>) {
        panic!("subscriber: event");
    }
}

#[test]
fn a_panicking_subscriber_loses_its_reports_never_an_event_or_its_record() {
    let clock = ManualClock::new();
    let records: Arc<Mutex<Vec<(String, Condition)>>> = Arc::default();
    let mut accepted = Vec::new();
    let subscriber = tracing_subscriber::registry().with(Panicking::default());
    let rt: Runtime<u32, u32> = tracing::subscriber::with_default(subscriber, || {
        let seen = Arc::clone(&records);
        let rt: Runtime<u32, u32> = Runtime::builder()
            .clock(clock.clone())
            .on_record(move |r| {
                let entry = (r.request_id.to_string(), r.condition);
                seen.lock().unwrap().push(entry);
            })
            .build()
            .unwrap();
        let (on_success, delivered) = crossbeam_channel::unbounded();
        rt.register(
            Function::new("quick", |n: &u32, _ctx| Ok(n + 1))
                .on_success(Destination::channel(on_success)),
        )
        .unwrap();
        rt.register(Function::new("declined", |_: &u32, _ctx| {
            Err(FunctionError::new("CardDeclined", "declined"))
        }))
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
        assert_eq!(delivered.len(), 40);
        rt
    });

    let records = records.lock().unwrap();
    let failed = common::one_record_each(&records, &accepted, Condition::RetriesExhausted);
    assert_eq!(failed, 3);
    let m = rt.metrics();
    assert!(m.total.is_balanced());
    assert_eq!(m.total.outcome(Condition::Success), 40);
    assert_eq!(m.total.invocations, 40 + 3 * 3 + 1);
    assert_eq!(m.total.concurrent_executions, 0);
    assert_eq!(rt.outstanding(), 0);
}
