//! Bad input: every setting that makes no sense is a clear error that names the field and the
//! accepted range, and leaves the runtime as it was. Random settings and calls never panic.
//!
//! The random cases are proptest properties: a failure is shrunk to a minimal case, printed,
//! and kept in `tests/bad_input.proptest-regressions` so that it is tried first from then on.
//! `PROPTEST_CASES=<n>` runs more cases than the modest default.

use std::time::Duration;

use event_invoke::{
    Destination, Error, FaultInjection, Function, InvocationQueue, ManualClock, RequestId,
    RetryPolicy, Runtime,
};
use proptest::prelude::*;

fn rt() -> Runtime<u32> {
    Runtime::builder()
        .clock(ManualClock::new())
        .build()
        .unwrap()
}

fn ok_fn(name: &str) -> Function<u32, ()> {
    Function::new(name, |_: &u32, _ctx| Ok(()))
}

/// Asserts `err` is an `InvalidConfig` for `field` whose message shows the accepted range.
fn names_field(err: Error, field: &str) {
    let message = err.to_string();
    match err {
        Error::InvalidConfig {
            field: f, accepted, ..
        } => {
            assert_eq!(f, field, "{message}");
            assert!(message.contains(accepted), "{message}");
            assert!(message.contains("accepted"), "{message}");
        }
        other => panic!("expected InvalidConfig for {field}, got {other:?}"),
    }
}

#[test]
fn each_function_setting_out_of_range_is_refused_naming_the_field_and_nothing_changes() {
    let rt = rt();
    rt.register(ok_fn("existing")).unwrap();
    let before = rt.config("existing").unwrap().timeout;
    let cases: Vec<(Function<u32, ()>, &str)> = vec![
        (ok_fn("f").timeout(Duration::ZERO), "timeout"),
        (ok_fn("f").timeout(Duration::from_secs(100_000)), "timeout"),
        (ok_fn("f").queue_capacity(0), "queue_capacity"),
        (
            ok_fn("f").maximum_retry_attempts(101),
            "maximum_retry_attempts",
        ),
        (
            ok_fn("f").maximum_event_age(Duration::ZERO),
            "maximum_event_age",
        ),
        (
            ok_fn("f").maximum_event_age(Duration::MAX),
            "maximum_event_age",
        ),
        (ok_fn(""), "name"),
        (ok_fn("has space"), "name"),
        (ok_fn(&"x".repeat(65)), "name"),
    ];
    for (function, field) in cases {
        names_field(rt.register(function).unwrap_err(), field);
        assert_eq!(rt.function_names(), vec!["existing".to_string()]);
    }
    for (edit, field) in [
        (
            Box::new(|c: &mut event_invoke::FunctionConfig<u32, ()>| c.timeout = Duration::ZERO)
                as Box<dyn FnOnce(&mut event_invoke::FunctionConfig<u32, ()>)>,
            "timeout",
        ),
        (Box::new(|c| c.queue_capacity = 0), "queue_capacity"),
    ] {
        names_field(rt.update_config("existing", edit).unwrap_err(), field);
        assert_eq!(rt.config("existing").unwrap().timeout, before);
    }
}

#[test]
fn each_retry_setting_out_of_range_is_refused_naming_the_field() {
    let b = RetryPolicy::builder;
    let d = Duration::from_secs;
    names_field(
        b().retry_delays(vec![]).build().unwrap_err(),
        "retry_delays",
    );
    names_field(
        b().retry_delays(vec![d(0)]).build().unwrap_err(),
        "retry_delays",
    );
    names_field(
        b().retry_delays(vec![d(90_000)]).build().unwrap_err(),
        "retry_delays",
    );
    names_field(
        b().throttle_backoff(d(0), d(1), 2).build().unwrap_err(),
        "throttle_backoff",
    );
    names_field(
        b().throttle_backoff(d(1), d(1), 0).build().unwrap_err(),
        "throttle_backoff",
    );
    names_field(
        b().throttle_jitter(-0.1).build().unwrap_err(),
        "throttle_jitter",
    );
    names_field(
        b().throttle_jitter(f64::NAN).build().unwrap_err(),
        "throttle_jitter",
    );
}

#[test]
fn each_runtime_setting_out_of_range_is_refused_naming_the_field() {
    let b = Runtime::<u32>::builder;
    names_field(
        b().account_concurrency(0).build().unwrap_err(),
        "account_concurrency",
    );
    names_field(
        b().account_concurrency(2_000_000).build().unwrap_err(),
        "account_concurrency",
    );
    names_field(
        b().account_concurrency(50)
            .unreserved_floor(51)
            .build()
            .unwrap_err(),
        "unreserved_floor",
    );
    names_field(
        b().recursion_limit(Some(0)).build().unwrap_err(),
        "recursion_limit",
    );
    names_field(
        b().fault_injection(FaultInjection::new(1).duplicates(1.5))
            .build()
            .unwrap_err(),
        "duplicates",
    );
    names_field(
        b().fault_injection(FaultInjection::new(1).reorder(f64::NAN))
            .build()
            .unwrap_err(),
        "reorder",
    );
}

#[test]
fn reservations_over_the_account_and_unknown_destinations_are_refused_and_change_nothing() {
    let rt = rt();
    let err = rt
        .register(ok_fn("big").reserved_concurrency(901))
        .unwrap_err();
    assert!(matches!(
        err,
        Error::ReservedConcurrencyExceeded { available: 900, .. }
    ));
    assert!(err
        .to_string()
        .contains("reserve less or raise the account limit"));
    let err = rt
        .register(ok_fn("f").on_failure(Destination::function("nowhere", |_| 0)))
        .unwrap_err();
    assert!(matches!(err, Error::UnknownDestination { .. }));
    assert!(err.to_string().contains("nowhere"));
    assert!(rt.function_names().is_empty());
    rt.register(ok_fn("f")).unwrap();
    assert!(matches!(
        rt.register(ok_fn("f")).unwrap_err(),
        Error::FunctionExists(_)
    ));
    assert_eq!(rt.account_concurrency(), 1000);
    assert!(matches!(
        rt.pause("ghost").unwrap_err(),
        Error::UnknownFunction(_)
    ));
    assert!(InvocationQueue::<u32>::new(0).is_err());
}

// ----- Properties: random settings and calls ---------------------------------------------------

const DAY: Duration = Duration::from_secs(24 * 3600);

/// Durations across every range a setting checks: zero, nanoseconds, sensible ones, past a
/// day, past two weeks, the largest, and each side of the limits (a day, two weeks).
fn any_duration() -> impl Strategy<Value = Duration> {
    let nano = Duration::from_nanos(1);
    prop_oneof![
        1 => Just(Duration::ZERO),
        1 => Just(Duration::MAX),
        2 => prop_oneof![
            Just(DAY),
            Just(DAY + nano),
            Just(14 * DAY),
            Just(14 * DAY + nano)
        ],
        1 => (1..1_000u64).prop_map(Duration::from_nanos),
        4 => (1..20_000u64).prop_map(Duration::from_millis),
        2 => (1..30 * 86_400u64).prop_map(Duration::from_secs),
    ]
}

/// A probability or jitter: mostly in `[0, 1]`, else negative, over 1, infinite or NaN.
fn any_fraction() -> impl Strategy<Value = f64> {
    prop_oneof![
        4 => 0.0..=1.0f64,
        1 => prop_oneof![
            Just(f64::NAN),
            Just(f64::INFINITY),
            Just(-0.1),
            1.0001..10.0f64
        ],
    ]
}

/// Function names: mostly Lambda's rule, else empty, too long, or with other characters.
fn any_name() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[a-zA-Z0-9_-]{1,64}",
        1 => Just(String::new()),
        1 => "[a-z]{65,70}",
        1 => "[a-z]{0,4}[ .:/é*][a-z]{0,4}",
    ]
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Asserts that `err` is an `InvalidConfig` naming one of the `bad` fields, with the accepted
/// range in its message.
fn names_a_bad_field(err: &Error, bad: &[&str]) -> Result<(), TestCaseError> {
    let message = err.to_string();
    match err {
        Error::InvalidConfig {
            field, accepted, ..
        } => {
            prop_assert!(bad.contains(field), "{field} named, the bad ones: {bad:?}");
            prop_assert!(message.contains(accepted) && message.contains("accepted"));
            Ok(())
        }
        other => Err(TestCaseError::fail(format!(
            "expected InvalidConfig for one of {bad:?}, got {other:?}"
        ))),
    }
}

/// What a refused call must leave as it was.
fn snapshot(rt: &Runtime<u32>) -> String {
    format!(
        "{:?} {} {:?} {:?}",
        rt.function_names(),
        rt.account_concurrency(),
        rt.config("existing").ok(),
        rt.metrics()
    )
}

/// A runtime with one function, `existing`, reserving 100, and an event waiting for it.
fn rt_with_existing() -> Runtime<u32> {
    let rt = rt();
    rt.register(ok_fn("existing").reserved_concurrency(100))
        .unwrap();
    rt.invoke_async("existing", 1).unwrap();
    rt
}

#[derive(Debug, Clone)]
struct FnSettings {
    name: String,
    timeout: Duration,
    queue_capacity: usize,
    retries: u32,
    max_age: Duration,
    reserved: Option<u32>,
}

fn fn_settings() -> impl Strategy<Value = FnSettings> {
    (
        any_name(),
        any_duration(),
        prop_oneof![Just(0usize), 1..100usize],
        prop_oneof![0..=3u32, 0..=200u32],
        any_duration(),
        prop::option::of(prop_oneof![0..5u32, 0..2_000u32]),
    )
        .prop_map(
            |(name, timeout, queue_capacity, retries, max_age, reserved)| FnSettings {
                name,
                timeout,
                queue_capacity,
                retries,
                max_age,
                reserved,
            },
        )
}

impl FnSettings {
    /// The fields out of their documented ranges.
    fn bad_fields(&self) -> Vec<&'static str> {
        let mut bad = Vec::new();
        if !valid_name(&self.name) {
            bad.push("name");
        }
        if self.timeout.is_zero() || self.timeout > DAY {
            bad.push("timeout");
        }
        if self.queue_capacity == 0 {
            bad.push("queue_capacity");
        }
        if self.retries > 100 {
            bad.push("maximum_retry_attempts");
        }
        if self.max_age.is_zero() || self.max_age > 14 * DAY {
            bad.push("maximum_event_age");
        }
        bad
    }

    fn function(&self) -> Function<u32, ()> {
        let mut f = ok_fn(&self.name)
            .timeout(self.timeout)
            .queue_capacity(self.queue_capacity)
            .maximum_retry_attempts(self.retries)
            .maximum_event_age(self.max_age);
        if let Some(n) = self.reserved {
            f = f.reserved_concurrency(n);
        }
        f
    }
}

/// Quiets the handlers' deliberate panics (`"five"`); other panics still show.
fn quiet_five() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if info.payload().downcast_ref::<&str>() != Some(&"five") {
                hook(info);
            }
        }));
    });
}

/// The nonsense-capable calls of a random run; names index `CALL_NAMES`.
#[derive(Debug, Clone)]
enum Call {
    Register(usize, FnSettings),
    InvokeAsync(usize, u32),
    Invoke(usize, u32),
    Pause(usize),
    Resume(usize),
    Purge(usize),
    Delete(usize),
    SetReserved(usize, u32),
    SetAccount(u32),
    UpdateConfig(usize, Duration),
    EditQueued(usize, u64),
    RunFor(Duration),
    RunUntilIdle,
    Inspect(usize),
}

const CALL_NAMES: [&str; 5] = ["a", "b", "c", "bad name", ""];

fn call() -> impl Strategy<Value = Call> {
    let name = 0..CALL_NAMES.len();
    prop_oneof![
        3 => (name.clone(), fn_settings()).prop_map(|(n, s)| Call::Register(n, s)),
        3 => (name.clone(), any::<u32>()).prop_map(|(n, p)| Call::InvokeAsync(n, p)),
        1 => (name.clone(), any::<u32>()).prop_map(|(n, p)| Call::Invoke(n, p)),
        1 => name.clone().prop_map(Call::Pause),
        1 => name.clone().prop_map(Call::Resume),
        1 => name.clone().prop_map(Call::Purge),
        1 => name.clone().prop_map(Call::Delete),
        1 => (name.clone(), prop_oneof![0..5u32, 0..5_000u32])
            .prop_map(|(n, r)| Call::SetReserved(n, r)),
        1 => prop_oneof![100..3_000u32, 0..5_000_000u32].prop_map(Call::SetAccount),
        1 => (name.clone(), any_duration()).prop_map(|(n, d)| Call::UpdateConfig(n, d)),
        1 => (name.clone(), any::<u64>()).prop_map(|(n, id)| Call::EditQueued(n, id)),
        1 => any_duration().prop_map(Call::RunFor),
        1 => Just(Call::RunUntilIdle),
        1 => name.prop_map(Call::Inspect),
    ]
}

fn make_call(rt: &Runtime<u32>, call: &Call) {
    let name = |n: usize| CALL_NAMES[n];
    match call {
        Call::Register(n, s) => {
            let f = Function::new(name(*n), |n: &u32, ctx| {
                if n % 3 == 0 {
                    let _ = ctx.invoke_async("a", n.wrapping_add(1));
                }
                if n % 5 == 0 {
                    panic!("five");
                }
                Ok(())
            });
            let FnSettings {
                timeout,
                queue_capacity,
                retries,
                max_age,
                reserved,
                ..
            } = s.clone();
            let mut f = f
                .timeout(timeout)
                .queue_capacity(queue_capacity)
                .maximum_retry_attempts(retries)
                .maximum_event_age(max_age);
            if let Some(r) = reserved {
                f = f.reserved_concurrency(r);
            }
            let _ = rt.register(f);
        }
        Call::InvokeAsync(n, p) => {
            let _ = rt.invoke_async(name(*n), *p);
        }
        Call::Invoke(n, p) => {
            let _ = rt.invoke(name(*n), p);
        }
        Call::Pause(n) => {
            let _ = rt.pause(name(*n));
        }
        Call::Resume(n) => {
            let _ = rt.resume(name(*n));
        }
        Call::Purge(n) => {
            let _ = rt.purge(name(*n));
        }
        Call::Delete(n) => {
            let _ = rt.delete(name(*n));
        }
        Call::SetReserved(n, r) => {
            let _ = rt.set_reserved_concurrency(name(*n), Some(*r));
        }
        Call::SetAccount(a) => {
            let _ = rt.set_account_concurrency(*a);
        }
        Call::UpdateConfig(n, d) => {
            let d = *d;
            let _ = rt.update_config(name(*n), |c| {
                c.timeout = d;
                c.retry = RetryPolicy::builder()
                    .retry_delays(vec![d])
                    .build()
                    .unwrap_or_default();
            });
        }
        Call::EditQueued(n, id) => {
            let _ = rt.remove_queued(name(*n), RequestId::from_u64(*id));
            let _ = rt.edit_queued(name(*n), RequestId::from_u64(*id), |p| {
                *p = p.wrapping_add(1)
            });
        }
        Call::RunFor(d) => {
            rt.run_for((*d).min(DAY));
        }
        Call::RunUntilIdle => {
            rt.run_until_idle();
        }
        Call::Inspect(n) => {
            let _ = rt.queue_snapshot(name(*n));
            let _ = rt.function_metrics(name(*n));
            let _ = rt.update_code(name(*n), |_: &u32, _ctx| Ok(()));
        }
    }
}

/// The books with nothing running: every function's and the total's balance, nothing in flight.
fn books_balance(rt: &Runtime<u32>) -> Result<(), TestCaseError> {
    let m = rt.metrics();
    for f in m.functions.iter().chain([&m.total]) {
        prop_assert!(f.is_balanced(), "unbalanced: {f:?}");
    }
    prop_assert_eq!(m.total.in_flight_events, 0);
    prop_assert_eq!(m.total.concurrent_executions, 0);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// A random function registers, or is refused naming a field that is out of range (or for
    /// a reservation that does not fit), and a refusal changes nothing.
    #[test]
    fn a_random_function_registers_or_is_refused_naming_a_bad_field(s in fn_settings()) {
        let rt = rt_with_existing();
        let before = snapshot(&rt);
        let bad = s.bad_fields();
        match rt.register(s.function()) {
            Ok(_) => {
                prop_assert!(bad.is_empty(), "accepted with {bad:?} out of range");
                prop_assert!(s.reserved.unwrap_or(0) <= 800);
                prop_assert!(rt.function_names().contains(&s.name));
            }
            Err(err @ Error::ReservedConcurrencyExceeded { .. }) => {
                prop_assert!(bad.is_empty(), "{err} before {bad:?}");
                prop_assert!(s.reserved.unwrap_or(0) > 800, "{err}");
                prop_assert_eq!(snapshot(&rt), before);
            }
            Err(err) => {
                names_a_bad_field(&err, &bad)?;
                prop_assert_eq!(snapshot(&rt), before);
            }
        }
    }

    /// Random settings applied to a registered function: accepted, or refused naming the field
    /// with the function's settings as they were.
    #[test]
    fn random_settings_update_a_function_or_are_refused_and_change_nothing(
        timeout in any_duration(),
        queue_capacity in prop_oneof![Just(0usize), 1..100usize],
        reserved in prop::option::of(prop_oneof![0..5u32, 0..2_000u32]),
    ) {
        let rt = rt_with_existing();
        let before = snapshot(&rt);
        let mut bad = Vec::new();
        if timeout.is_zero() || timeout > DAY {
            bad.push("timeout");
        }
        if queue_capacity == 0 {
            bad.push("queue_capacity");
        }
        let result = rt.update_config("existing", |c| {
            c.timeout = timeout;
            c.queue_capacity = queue_capacity;
            c.reserved_concurrency = reserved;
        });
        match result {
            Ok(()) => {
                prop_assert!(bad.is_empty(), "accepted with {bad:?} out of range");
                let c = rt.config("existing").unwrap();
                prop_assert_eq!((c.timeout, c.queue_capacity, c.reserved_concurrency), (timeout, queue_capacity, reserved));
            }
            Err(err @ Error::ReservedConcurrencyExceeded { .. }) => {
                prop_assert!(bad.is_empty() && reserved.unwrap_or(0) > 900, "{err}");
                prop_assert_eq!(snapshot(&rt), before);
            }
            Err(err) => {
                names_a_bad_field(&err, &bad)?;
                prop_assert_eq!(snapshot(&rt), before);
            }
        }
    }

    /// A random retry policy builds with the values given, or is refused naming a field out of
    /// range.
    #[test]
    fn a_random_retry_policy_builds_or_is_refused_naming_a_bad_field(
        retries in prop_oneof![0..=3u32, 0..=200u32],
        delays in prop::collection::vec(any_duration(), 0..4),
        initial in any_duration(),
        max in any_duration(),
        factor in 0..20u32,
        jitter in any_fraction(),
        age in any_duration(),
    ) {
        let mut bad = Vec::new();
        if retries > 100 {
            bad.push("maximum_retry_attempts");
        }
        if delays.is_empty() || delays.iter().any(|d| d.is_zero() || *d > DAY) {
            bad.push("retry_delays");
        }
        if initial.is_zero() || initial > max || max > DAY || !(1..=16).contains(&factor) {
            bad.push("throttle_backoff");
        }
        if !(0.0..=1.0).contains(&jitter) {
            bad.push("throttle_jitter");
        }
        if age.is_zero() || age > 14 * DAY {
            bad.push("maximum_event_age");
        }
        let built = RetryPolicy::builder()
            .maximum_retry_attempts(retries)
            .retry_delays(delays.clone())
            .throttle_backoff(initial, max, factor)
            .throttle_jitter(jitter)
            .maximum_event_age(age)
            .build();
        match built {
            Ok(p) => {
                prop_assert!(bad.is_empty(), "accepted with {bad:?} out of range");
                prop_assert_eq!(p.maximum_retry_attempts(), retries);
                prop_assert_eq!(p.retry_delays(), &delays[..]);
                prop_assert_eq!(p.throttle_backoff(), (initial, max, factor));
                prop_assert_eq!(p.throttle_jitter(), jitter);
                prop_assert_eq!(p.maximum_event_age(), age);
            }
            Err(err) => names_a_bad_field(&err, &bad)?,
        }
    }

    /// Random runtime settings build a runtime with them, or are refused naming a field out
    /// of range.
    #[test]
    fn random_runtime_settings_build_or_are_refused_naming_a_bad_field(
        account in prop_oneof![1..2_000u32, 0..2_000_000u32],
        floor in prop_oneof![0..100u32, 0..5_000u32],
        recursion in prop::option::of(prop_oneof![1..50u32, 0..20_000u32]),
        probabilities in [any_fraction(), any_fraction(), any_fraction(), any_fraction()],
        retry_delay in any_duration(),
    ) {
        let fields = ["duplicates", "function_errors", "system_errors", "reorder"];
        let mut bad: Vec<&str> = fields
            .iter()
            .zip(probabilities)
            .filter(|(_, p)| !(0.0..=1.0).contains(p))
            .map(|(f, _)| *f)
            .collect();
        if retry_delay > DAY {
            bad.push("retry_delay");
        }
        if !(1..=1_000_000).contains(&account) {
            bad.push("account_concurrency");
        }
        if floor > account {
            bad.push("unreserved_floor");
        }
        if recursion.is_some_and(|l| !(1..=10_000).contains(&l)) {
            bad.push("recursion_limit");
        }
        let [dup, fn_err, sys_err, reorder] = probabilities;
        let built = Runtime::<u32>::builder()
            .clock(ManualClock::new())
            .account_concurrency(account)
            .unreserved_floor(floor)
            .recursion_limit(recursion)
            .fault_injection(
                FaultInjection::new(1)
                    .duplicates(dup)
                    .function_errors(fn_err)
                    .system_errors(sys_err)
                    .reorder(reorder)
                    .retry_delay(retry_delay),
            )
            .build();
        match built {
            Ok(rt) => {
                prop_assert!(bad.is_empty(), "built with {bad:?} out of range");
                prop_assert_eq!(rt.account_concurrency(), account);
            }
            Err(err) => names_a_bad_field(&err, &bad)?,
        }
    }

    /// Random account and reservation changes are applied exactly when they fit (the account
    /// covers every reservation and the unreserved floor), and a refused one changes nothing.
    #[test]
    fn random_limit_changes_apply_when_they_fit_and_change_nothing_when_refused(
        changes in prop::collection::vec(
            prop_oneof![
                prop_oneof![0..3_000u32, 900..1_100u32, Just(1_000_001u32)]
                    .prop_map(|n| (None, Some(n))),
                (0..3usize, prop::option::of(prop_oneof![0..10u32, 0..1_000u32]))
                    .prop_map(|(f, n)| (Some(f), n)),
            ],
            1..30,
        )
    ) {
        let rt = rt();
        let names = ["a", "b", "c"];
        for n in names {
            rt.register(ok_fn(n)).unwrap();
        }
        let floor = 100;
        let (mut account, mut reserved) = (1_000u32, [None::<u32>; 3]);
        for change in changes {
            let sum = |r: &[Option<u32>; 3]| r.iter().flatten().sum::<u32>();
            match change {
                (None, Some(n)) => {
                    let fits = n <= 1_000_000 && n >= (sum(&reserved) + floor).max(1);
                    let result = rt.set_account_concurrency(n);
                    prop_assert_eq!(result.is_ok(), fits, "account {} -> {}: {:?}", account, n, result);
                    if fits {
                        account = n;
                    }
                }
                (Some(f), n) => {
                    let others = sum(&reserved) - reserved[f].unwrap_or(0);
                    let fits = n.unwrap_or(0) <= account.saturating_sub(floor).saturating_sub(others);
                    let result = rt.set_reserved_concurrency(names[f], n);
                    prop_assert_eq!(result.is_ok(), fits, "{} -> {:?}: {:?}", names[f], n, result);
                    if let Err(err) = result {
                        let refused = matches!(err, Error::ReservedConcurrencyExceeded { .. });
                        prop_assert!(refused, "{:?}", err);
                    } else {
                        reserved[f] = n;
                    }
                }
                (None, None) => unreachable!(),
            }
            prop_assert_eq!(rt.account_concurrency(), account);
            for (f, name) in names.iter().enumerate() {
                prop_assert_eq!(rt.config(name).unwrap().reserved_concurrency, reserved[f]);
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Random settings and calls, many of them nonsense: every call returns (Ok or a clear
    /// error); none panics, the books balance after every call, and every event ends once
    /// everything is resumed and run.
    #[test]
    fn random_calls_with_nonsense_mixed_in_never_panic_and_keep_the_books(
        account in prop_oneof![9 => 100..2_000u32, 1 => 0..2_000_000u32],
        floor in prop_oneof![9 => 0..100u32, 1 => 0..5_000u32],
        recursion in prop::option::of(0..50u32),
        calls in prop::collection::vec(call(), 0..60),
    ) {
        quiet_five();
        let built = Runtime::<u32>::builder()
            .clock(ManualClock::new())
            .account_concurrency(account)
            .unreserved_floor(floor)
            .recursion_limit(recursion)
            .build();
        let Ok(rt) = built else { return Ok(()) };
        for call in &calls {
            make_call(&rt, call);
            books_balance(&rt)?;
        }
        for name in rt.function_names() {
            let _ = rt.resume(&name);
        }
        rt.run_until_idle();
        books_balance(&rt)?;
        prop_assert_eq!(rt.outstanding(), 0);
        let m = rt.metrics().total;
        prop_assert_eq!(m.finished(), m.events_received);
    }
}
