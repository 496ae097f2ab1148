//! A worker loop of your own, built from the four parts alone: no `Runtime`.
//!
//! `InvocationQueue` holds the events, `ConcurrencyLimiter` the execution slots, `RetryPolicy`
//! says when to retry, and `Function` is the handler, called with a context made by
//! `TestContext`. The loop reproduces Lambda's schedule for an event whose handler fails
//! twice: attempts at 0 s, 60 s and 180 s on a manual clock, so it runs in microseconds.
//!
//! ```sh
//! cargo run --example own_loop
//! ```

use std::sync::Arc;

use event_invoke::{
    ConcurrencyLimiter, Context, Function, FunctionError, InvocationQueue, ManualClock,
    QueuedEvent, RequestId, RetryPolicy, TestContext,
};

fn main() {
    let clock = ManualClock::new();
    let policy = RetryPolicy::lambda_default();
    let slots = Arc::new(ConcurrencyLimiter::new(1));
    let mut queue = InvocationQueue::new(1_000).expect("a capacity of at least 1");

    // Fails on its first two attempts, as a flaky downstream service would.
    let send_email = Function::new(
        "send-email",
        |to: &String, ctx: &Context<'_, String, ()>| {
            if ctx.approximate_invoke_count() < 3 {
                return Err(FunctionError::new(
                    "MailerDown",
                    format!("cannot mail {to}"),
                ));
            }
            Ok(())
        },
    );

    let event = QueuedEvent::new(
        RequestId::from_u64(1),
        "ana@example.com".into(),
        clock.now(),
    );
    queue.push(event).expect("the queue has room");

    loop {
        let now = clock.now();
        let Some(mut event) = queue.pop_due(now) else {
            // Nothing ready: jump the manual clock to the next due retry, or stop.
            match queue.next_due() {
                Some(due) => {
                    clock.set(due);
                    continue;
                }
                None => break,
            }
        };
        // No free slot is a throttle: back with Lambda's backoff, no retry used up.
        let Some(permit) = slots.try_acquire() else {
            let throttles = event.record_throttle();
            queue.push_delayed(event, now + policy.throttle_delay(throttles, 0.0));
            continue;
        };
        let attempt = event.record_attempt();
        let test = TestContext::new(send_email.name())
            .request_id(event.request_id())
            .approximate_invoke_count(attempt)
            .event_age(event.age(now));
        let result = send_email.call(event.payload(), &test.context());
        drop(permit);

        let at = now.as_duration().as_secs();
        match result {
            Ok(()) => {
                println!("{at:>4} s  attempt {attempt}: success");
            }
            Err(error) => {
                println!("{at:>4} s  attempt {attempt}: {error}");
                match policy.retry_delay_after(attempt, &error) {
                    Some(wait) if !policy.is_expired(event.enqueued_at(), now + wait) => {
                        event.set_last_error(error);
                        queue.push_delayed(event, now + wait);
                    }
                    _ => println!("{at:>4} s  gave up after {attempt} attempts"),
                }
            }
        }
    }
}
