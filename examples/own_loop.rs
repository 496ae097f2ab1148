//! A worker loop of your own, built from the card's four parts: no `Runtime`.
//!
//! `InvocationQueue` holds the events, `ConcurrencyLimiter` the execution slots, `RetryPolicy`
//! says when to retry and when an event is too old, and `Function` is the handler, called
//! with a context made by `TestContext`. Each attempt runs on a thread of its own, holding an
//! `OwnedPermit` until its outcome is settled (a permit is released when dropped, also when a
//! thread holding it panics).
//!
//! Two events, one slot: the second is throttled at first (back after Lambda's 1 s backoff,
//! no retry used up). The first fails twice and succeeds on its third attempt, on Lambda's
//! schedule: 0 s, 60 s, 180 s. The clock is a manual one, so three minutes take microseconds.
//!
//! ```sh
//! cargo run --example own_loop
//! ```

use std::sync::Arc;

use event_invoke::{
    ConcurrencyLimiter, Context, Function, FunctionError, InvocationQueue, ManualClock,
    QueuedEvent, RequestId, RetryPolicy, TestContext,
};

type Ctx<'a> = Context<'a, String, ()>;

fn main() {
    let clock = ManualClock::new();
    let policy = RetryPolicy::lambda_default();
    let slots = Arc::new(ConcurrencyLimiter::new(1));
    let mut queue = InvocationQueue::new(1_000).expect("a capacity of at least 1");

    // The first address meets a flaky mail server: it fails on its first two attempts.
    let send_email = Arc::new(Function::new("send-email", |to: &String, ctx: &Ctx<'_>| {
        if to.starts_with("ana") && ctx.approximate_invoke_count() < 3 {
            return Err(FunctionError::new(
                "MailerDown",
                format!("cannot mail {to}"),
            ));
        }
        Ok(())
    }));

    for (id, to) in [(1, "ana@example.com"), (2, "bob@example.com")] {
        let event = QueuedEvent::new(RequestId::from_u64(id), to.to_string(), clock.now());
        queue.push(event).expect("the queue has room");
    }

    let mut running = Vec::new();
    loop {
        let now = clock.now();
        while let Some(mut event) = queue.pop_due(now) {
            // No free slot is a throttle: back with Lambda's backoff, no retry used up.
            let Some(permit) = slots.try_acquire_owned() else {
                let throttles = event.record_throttle();
                let due = now + policy.throttle_delay(throttles, 0.0);
                let (at, id) = (now.as_duration().as_secs(), event.request_id().as_u64());
                println!("{at:>5} s  event {id}: throttled");
                queue.push_delayed(event, due);
                continue;
            };
            let attempt = event.record_attempt();
            let function = Arc::clone(&send_email);
            // The attempt runs on its own thread; the owned permit goes with it, and comes back
            // with the result: the slot is free once the outcome is settled below.
            running.push(std::thread::spawn(move || {
                let test = TestContext::new(function.name())
                    .request_id(event.request_id())
                    .approximate_invoke_count(attempt)
                    .enqueued_at(event.enqueued_at())
                    .started_at(now);
                let result = function.call(event.payload(), &test.context());
                (event, attempt, result, permit)
            }));
        }
        // Attempts end here, in the order they started (a real loop would not wait for all).
        for worker in running.drain(..) {
            let (mut event, attempt, result, _slot) = worker.join().expect("the attempt's thread");
            let at = now.as_duration().as_secs();
            let id = event.request_id().as_u64();
            match result {
                Ok(()) => println!("{at:>5} s  event {id}: attempt {attempt}: success"),
                Err(error) => {
                    println!("{at:>5} s  event {id}: attempt {attempt}: {error}");
                    match policy.retry_delay_after(attempt, &error) {
                        Some(wait) if !policy.is_expired(event.enqueued_at(), now + wait) => {
                            event.set_last_error(error);
                            queue.push_delayed(event, now + wait);
                        }
                        _ => println!("{at:>5} s  event {id}: gave up after {attempt} attempts"),
                    }
                }
            }
        }
        // Nothing ready: jump the manual clock to the next due retry or backoff, or stop.
        match queue.next_due() {
            Some(due) if queue.ready_len() == 0 => clock.set(due),
            Some(_) => {}
            None if queue.is_empty() => break,
            None => {}
        }
    }
}
