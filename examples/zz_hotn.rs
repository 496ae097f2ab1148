use event_invoke::{Function, ManualClock, Runtime};
use std::hint::black_box;
type Payload = [u64; 2];
fn main() {
    let n: u64 = std::env::args().nth(1).unwrap().parse().unwrap();
    let rt: Runtime<Payload> = Runtime::builder()
        .clock(ManualClock::new())
        .keep_dead_letters(false)
        .build()
        .unwrap();
    let _h = rt
        .register(
            Function::new("noop", |p: &Payload, _ctx| {
                black_box(p);
                Ok(())
            })
            .queue_capacity(usize::MAX),
        )
        .unwrap();
    for _ in 0..n {
        rt.invoke_async(black_box("noop"), *black_box(&[7u64, 42]))
            .unwrap();
        black_box(rt.try_dispatch());
    }
}
