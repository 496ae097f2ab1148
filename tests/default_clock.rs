//! The runtime's clock: the system clock is made only when the caller gave no clock.
//!
//! One test in its own binary, so that no other test makes system clocks meanwhile.

use event_invoke::{Function, ManualClock, Runtime, SystemClock};

#[test]
fn a_builder_given_a_clock_never_makes_the_system_clock_and_one_given_none_makes_one() {
    let before = SystemClock::made_so_far();

    let clock = ManualClock::new();
    let rt: Runtime<u8> = Runtime::builder().clock(clock.clone()).build().unwrap();
    rt.register(Function::new("f", |_: &u8, _ctx| Ok(())))
        .unwrap();
    rt.invoke_async("f", 1).unwrap();
    assert_eq!(rt.run_until_idle(), 1);
    assert!(rt.clock().is_virtual());
    #[cfg(feature = "model")]
    {
        // Model mode makes its own virtual clock when given none: no system clock either.
        let model: Runtime<u8> = Runtime::builder()
            .model(event_invoke::ModelOptions::default())
            .build()
            .unwrap();
        assert!(model.clock().is_virtual());
    }
    assert_eq!(
        SystemClock::made_so_far(),
        before,
        "a system clock was made"
    );

    // Given none, the runtime makes exactly one, and runs on real time.
    let rt: Runtime<u8> = Runtime::builder().build().unwrap();
    assert_eq!(SystemClock::made_so_far(), before + 1);
    assert!(!rt.clock().is_virtual());
    let (a, b) = (rt.now(), rt.now());
    assert!(b >= a);
}
