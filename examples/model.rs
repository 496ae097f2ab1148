//! The seed's table, from the model: how long do 10,000 Lambda executions take when each
//! invoke costs 10 ms? One by one, 100 s; fanned out 1 -> 100 -> 100, 2.01 s. Beside them, how
//! the answer moves with other shapes, the account limit and scaling rate, cold starts and a
//! failure rate. Every row runs the real engine in virtual time, in milliseconds of real time.
//!
//! Run with `cargo run --release --example model [output-dir]`; it writes the timeline of the
//! fan-out with a scaling rate as CSV and as an SVG chart to `output-dir` (default
//! `target/model`).

use std::time::{Duration, Instant};

use event_invoke::{
    CostModel, Function, ModelOptions, ModelReport, Runtime, ScalingRate, Timeline,
};

const LATENCY: Duration = Duration::from_millis(10);

struct Scenario {
    name: &'static str,
    /// The client invokes the first function this many times, one call after the other.
    client_calls: u32,
    /// Each level's fan-out: `[100, 100]` is function_1 -> 100 x function_2 -> 100 x function_3.
    fan_out: &'static [u32],
    /// What a leaf execution costs.
    leaf: CostModel,
    /// The timeout of the functions that fan out (Lambda's default is 3 s).
    timeout: Duration,
    account: u32,
    scaling: Option<ScalingRate>,
}

impl Scenario {
    fn new(name: &'static str, fan_out: &'static [u32]) -> Self {
        Scenario {
            name,
            client_calls: 1,
            fan_out,
            leaf: CostModel::fixed(Duration::ZERO),
            timeout: Duration::from_secs(900),
            account: 1_000,
            scaling: None,
        }
    }

    fn run(&self) -> (ModelReport, Timeline) {
        let mut builder = Runtime::builder()
            .model(ModelOptions::new().invoke_latency(LATENCY))
            .account_concurrency(self.account)
            .keep_dead_letters(false)
            .seed(2018);
        if let Some(rate) = self.scaling {
            builder = builder.scaling_rate(rate);
        }
        let rt: Runtime<u32> = builder.build().expect("valid settings");
        let levels = self.fan_out.len() + 1;
        let name = |level: usize| format!("function_{}", level + 1);
        let leaf = Function::new(name(levels - 1), |_: &u32, _ctx| Ok(()))
            .cost(self.leaf.clone())
            .timeout(Duration::from_secs(900));
        rt.register(leaf).expect("register the leaf");
        for level in (0..levels - 1).rev() {
            let (child, n) = (name(level + 1), self.fan_out[level]);
            let f = Function::new(name(level), move |_: &u32, ctx| {
                for i in 0..n {
                    ctx.invoke_async(&child, i)?;
                }
                Ok(())
            })
            .timeout(self.timeout);
            rt.register(f).expect("register a fan-out level");
        }
        for i in 0..self.client_calls {
            rt.invoke_async("function_1", i).expect("invoke");
        }
        rt.run_until_idle();
        let report = rt.model_report().expect("model mode");
        let timeline = rt.timeline().expect("model mode");
        (report, timeline)
    }
}

fn main() {
    let out = std::path::PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or_else(|| "target/model".into()),
    );
    let ms = Duration::from_millis;
    let secs = Duration::from_secs;
    let scenarios = [
        Scenario {
            client_calls: 10_000,
            ..Scenario::new("sequential: 10,000 invokes from the client", &[])
        },
        Scenario::new("fan-out 1 -> 100 -> 100", &[100, 100]),
        Scenario::new("fan-out 1 -> 10 -> 1,000", &[10, 1_000]),
        Scenario::new("fan-out 1 -> 1,000 -> 10", &[1_000, 10]),
        Scenario::new("fan-out 1 -> 10 -> 10 -> 100", &[10, 10, 100]),
        Scenario {
            timeout: secs(3),
            ..Scenario::new(
                "1 -> 10 -> 1,000, Lambda's default 3 s timeout",
                &[10, 1_000],
            )
        },
        Scenario {
            leaf: CostModel::fixed(secs(1)),
            ..Scenario::new("1 -> 100 -> 100, leaves take 1 s", &[100, 100])
        },
        Scenario {
            leaf: CostModel::fixed(secs(1)),
            account: 10_000,
            ..Scenario::new("  ... account limit raised to 10,000", &[100, 100])
        },
        Scenario {
            leaf: CostModel::fixed(secs(1)),
            account: 10_000,
            scaling: Some(ScalingRate::lambda_2018(500).expect("a valid burst")),
            ..Scenario::new("  ... and 2018 scaling (burst 500, +500/min)", &[100, 100])
        },
        Scenario {
            leaf: CostModel::fixed(secs(1)),
            account: 10_000,
            scaling: Some(ScalingRate::lambda_2023()),
            ..Scenario::new("  ... and today's scaling (+1,000/10 s)", &[100, 100])
        },
        Scenario {
            leaf: CostModel::fixed(ms(100)),
            account: 10_000,
            ..Scenario::new(
                "1 -> 100 -> 100, 100 ms leaves, account 10,000",
                &[100, 100],
            )
        },
        Scenario {
            leaf: CostModel::fixed(ms(100)).cold_start(ms(250)),
            account: 10_000,
            ..Scenario::new("  ... with 250 ms cold starts", &[100, 100])
        },
        Scenario {
            leaf: CostModel::fixed(ms(100)).failure_rate(0.05),
            account: 10_000,
            ..Scenario::new("  ... with 5 % of leaves failing", &[100, 100])
        },
    ];

    println!("10 ms per invoke; makespan from the client's first call to the last end.\n");
    println!(
        "{:<52} {:>10} {:>10} {:>6} {:>9} {:>7} {:>6} {:>7}",
        "scenario", "makespan", "executions", "peak", "throttles", "retries", "cold", "dropped"
    );
    let started = Instant::now();
    let mut chart = None;
    for s in &scenarios {
        let (r, timeline) = s.run();
        let dropped: u64 = r.dropped.iter().map(|(_, n)| n).sum();
        println!(
            "{:<52} {:>8.3} s {:>10} {:>6} {:>9} {:>7} {:>6} {:>7}",
            s.name,
            r.makespan.as_secs_f64(),
            r.executions,
            r.peak_concurrency,
            r.throttles,
            r.retries,
            r.cold_starts,
            dropped
        );
        if s.scaling == Some(ScalingRate::lambda_2023()) {
            chart = Some((r, timeline));
        }
    }
    println!(
        "\n{} scenarios modelled in {:.0?} of real time.",
        scenarios.len(),
        started.elapsed()
    );
    println!("The seed's post rounds the fan-out's 2.01 s to 2.1 s.");
    println!(
        "With the default 3 s timeout, each function_2 is cut off after 300 of its 1,000 calls \
         (3 s from its start), fails, and is retried: handlers must be idempotent."
    );
    println!("Cold starts add environments, not time, here: the last leaves find a warm one.");
    println!(
        "A failed leaf is retried a minute later (and two minutes after a second failure): \
         the failure row's makespan is the retry schedule, not the fan-out."
    );

    if let Some((report, timeline)) = chart {
        println!("\nThe run with today's scaling rate, in full:\n\n{report}");
        let written = std::fs::create_dir_all(&out).and_then(|()| {
            std::fs::write(out.join("fanout-timeline.csv"), timeline.to_csv())?;
            std::fs::write(out.join("fanout-timeline.svg"), timeline.to_svg())
        });
        match written {
            Ok(()) => println!(
                "Timeline written to {} and {}",
                out.join("fanout-timeline.csv").display(),
                out.join("fanout-timeline.svg").display()
            ),
            Err(e) => eprintln!("could not write the timeline to {}: {e}", out.display()),
        }
    }
}
