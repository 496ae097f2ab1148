//! Bad input: every setting that makes no sense is a clear error that names the field and the
//! accepted range, and leaves the runtime as it was. Random settings and calls never panic.

use std::time::Duration;

use event_invoke::{
    Destination, Error, FaultInjection, Function, InvocationQueue, ManualClock, RequestId,
    RetryPolicy, Runtime,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

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

/// Random settings and calls, many of them nonsense: every call returns (Ok or a clear
/// error); none panics, and the books always balance.
#[test]
fn random_settings_and_calls_never_panic() {
    // Handlers panic on purpose here; keep the output readable.
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if info.payload().downcast_ref::<&str>() != Some(&"five") {
            hook(info);
        }
    }));
    let (mut runs, mut received) = (0, 0);
    for seed in 0..300u64 {
        let mut rng = StdRng::seed_from_u64(seed);
        let clock = ManualClock::new();
        // Mostly sensible values, with nonsense mixed in.
        let pick_duration = |rng: &mut StdRng| match rng.random_range(0..10) {
            0 => Duration::ZERO,
            1 => Duration::MAX,
            2 => Duration::from_nanos(rng.random_range(1..1000)),
            _ => Duration::from_millis(rng.random_range(1..20_000)),
        };
        let mostly = |rng: &mut StdRng, good: std::ops::Range<u32>, any: std::ops::Range<u32>| {
            if rng.random_bool(0.9) {
                rng.random_range(good)
            } else {
                rng.random_range(any)
            }
        };
        let built = Runtime::<u32>::builder()
            .clock(clock.clone())
            .account_concurrency(mostly(&mut rng, 100..2000, 0..2_000_000))
            .unreserved_floor(mostly(&mut rng, 0..100, 0..5000))
            .recursion_limit(if rng.random_bool(0.2) {
                None
            } else {
                Some(rng.random_range(0..50))
            })
            .build();
        let Ok(rt) = built else { continue };
        let names = ["a", "b", "c", "a", "b", "c", "bad name", ""];
        for _ in 0..60 {
            let name = names[rng.random_range(0..names.len())];
            match rng.random_range(0..18) {
                0 | 16 | 17 => {
                    let mut f = Function::new(name, |n: &u32, ctx| {
                        if n % 3 == 0 {
                            let _ = ctx.invoke_async("a", n + 1);
                        }
                        if n % 5 == 0 {
                            panic!("five");
                        }
                        Ok(())
                    })
                    .timeout(pick_duration(&mut rng))
                    .queue_capacity(mostly(&mut rng, 1..50, 0..5) as usize)
                    .maximum_retry_attempts(mostly(&mut rng, 0..3, 0..200))
                    .maximum_event_age(pick_duration(&mut rng));
                    if rng.random_bool(0.5) {
                        f = f.reserved_concurrency(mostly(&mut rng, 0..5, 0..5000));
                    }
                    let _ = rt.register(f);
                }
                1 | 14 | 15 => {
                    let _ = rt.invoke_async(name, rng.random());
                }
                2 => {
                    let _ = rt.invoke(name, &rng.random());
                }
                3 => {
                    let _ = rt.pause(name);
                }
                4 => {
                    let _ = rt.resume(name);
                }
                5 => {
                    let _ = rt.purge(name);
                }
                6 => {
                    let _ = rt.delete(name);
                }
                7 => {
                    let n = mostly(&mut rng, 0..5, 0..5000);
                    let _ = rt.set_reserved_concurrency(name, Some(n));
                }
                8 => {
                    let _ = rt.set_account_concurrency(mostly(&mut rng, 100..3000, 0..5_000_000));
                }
                9 => {
                    let d = pick_duration(&mut rng);
                    let _ = rt.update_config(name, |c| {
                        c.timeout = d;
                        c.retry = RetryPolicy::builder()
                            .retry_delays(vec![d])
                            .build()
                            .unwrap_or_default();
                    });
                }
                10 => {
                    let _ = rt.remove_queued(name, RequestId::from_u64(rng.random()));
                    let _ = rt.edit_queued(name, RequestId::from_u64(rng.random()), |p| *p += 1);
                }
                11 => {
                    rt.run_for(pick_duration(&mut rng).min(Duration::from_secs(86_400)));
                }
                12 => {
                    rt.run_until_idle();
                }
                _ => {
                    let _ = rt.queue_snapshot(name);
                    let _ = rt.function_metrics(name);
                    let _ = rt.update_code(name, |_: &u32, _ctx| Ok(()));
                }
            }
        }
        for name in rt.function_names() {
            let _ = rt.resume(&name);
        }
        rt.run_until_idle();
        let m = rt.metrics();
        assert!(m.total.is_balanced(), "seed {seed}: {:?}", m.total);
        runs += 1;
        received += m.total.events_received;
    }
    // The random runs must exercise something: most runtimes build, events flow.
    assert!(runs > 200, "{runs}");
    assert!(received > 500, "{received}");
}
