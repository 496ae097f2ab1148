//! The engine's own reliability suite: many seeds of random functions, limits, retry policies,
//! failures, panics, duplicates, pauses, purges, deletions and limit changes, run on several
//! worker threads and again on one thread under the manual clock, where a seed replays
//! exactly. After each run nothing is lost and nothing is doubled; on one thread the books
//! balance after every step.
//!
//! A failing seed prints how to run it alone: `RELIABILITY_SEED=<seed> cargo test --test
//! reliability` (on one thread it replays exactly). `RELIABILITY_SEEDS=<n>` runs more seeds
//! (500 by default). The proptest property at the end draws scenarios of its own and shrinks
//! a failing one to a minimal sequence of operations.

mod scenario;

use proptest::prelude::*;
use scenario::{
    quiet_random_panics, run_single_threaded, run_threaded, scenario, scenario_from_seed, seeds,
};

fn replay_hint(seed: u64) -> String {
    format!(
        "seed {seed} failed. Run it alone, on threads and on one thread, with\n  \
         RELIABILITY_SEED={seed} cargo test --test reliability\n\
         On one thread it replays exactly (the same steps, the same timelines):\n  \
         RELIABILITY_SEED={seed} cargo test --test reliability the_same_random_runs_on_one_thread\n\
         Its scenario: {:?}",
        scenario_from_seed(seed)
    )
}

#[test]
fn random_runs_on_worker_threads_lose_nothing_double_nothing_and_keep_every_limit() {
    quiet_random_panics();
    for seed in seeds("RELIABILITY_SEED", "RELIABILITY_SEEDS", 500) {
        if let Err(e) = run_threaded(&scenario_from_seed(seed), 3, 0) {
            panic!("on worker threads: {e}\n{}", replay_hint(seed));
        }
    }
}

#[test]
fn the_same_random_runs_on_one_thread_balance_the_books_at_every_step() {
    quiet_random_panics();
    for seed in seeds("RELIABILITY_SEED", "RELIABILITY_SEEDS", 500) {
        if let Err(e) = run_single_threaded(&scenario_from_seed(seed)) {
            panic!("on one thread: {e}\n{}", replay_hint(seed));
        }
    }
}

#[test]
fn a_seed_replays_exactly_on_one_thread() {
    quiet_random_panics();
    let mut differ = 0;
    for seed in 0..20 {
        let s = scenario_from_seed(seed);
        assert_eq!(s.seed, seed);
        assert_eq!(format!("{s:?}"), format!("{:?}", scenario_from_seed(seed)));
        let first = run_single_threaded(&s).unwrap_or_else(|e| panic!("{e}"));
        let again = run_single_threaded(&s).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(first, again, "seed {seed} did not replay");
        let next = run_single_threaded(&scenario_from_seed(seed + 1)).unwrap();
        differ += usize::from(first != next);
    }
    assert!(differ >= 18, "seeds draw different runs ({differ} of 20)");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Random operation sequences keep the books after every step, and end everything once.
    #[test]
    fn random_operation_sequences_keep_the_books_at_every_step(s in scenario()) {
        quiet_random_panics();
        if let Err(e) = run_single_threaded(&s) {
            return Err(TestCaseError::fail(e));
        }
    }
}
