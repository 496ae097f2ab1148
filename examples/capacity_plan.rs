//! Planning capacity with model mode: 50,000 S3 events arrive over 10 s; each handler takes
//! ~200 ms (log-normal), a cold start 400 ms, and 2 % fail; account limit 1,000, today's
//! scaling rate (+1,000 environments every 10 s). How long until all are processed, how many
//! throttles, how old do events get before they first run, with no reservation, reserved
//! concurrency 100, and reserved 1,000?
//!
//! Run with `cargo run --release --example capacity_plan [output-dir]`: it prints a table and
//! writes two timeline charts per plan: the whole run (`<output-dir>/capacity-<plan>.svg`,
//! with its points in `capacity-<plan>.csv`) and its first 20 s
//! (`capacity-<plan>-first-20s.svg`), where the arrivals and the first runs are; the default
//! directory is `target/capacity-plan`. `--small` prints the small cases of the model's tests instead
//! (10 one-second jobs on reserved 2, 100 on reserved 10), each under both throttle models.

use std::time::Duration;

use event_invoke::{
    Arrivals, ChartOptions, CostModel, Function, ModelOptions, ModelReport, Runtime, ScalingRate,
    ThrottledEvents, Timeline,
};

/// One plan: the account limit, the function's reserved concurrency (`None`: the
/// unreserved pool), and whether environments scale at today's rate.
fn run(
    account: u32,
    reserved: Option<u32>,
    scaling: bool,
    arrivals: &Arrivals,
    cost: CostModel,
    mode: ThrottledEvents,
) -> (ModelReport, Timeline) {
    let mut builder = Runtime::builder()
        .model(ModelOptions::new().throttled_events(mode))
        .account_concurrency(account)
        .keep_dead_letters(false);
    if scaling {
        builder = builder.scaling_rate(ScalingRate::lambda_2023()).seed(2023);
    }
    let rt: Runtime<u64> = builder.build().expect("valid settings");
    let mut f = Function::new("thumbnail", |_: &u64, _ctx| Ok(())).cost(cost);
    if let Some(r) = reserved {
        f = f.reserved_concurrency(r);
    }
    rt.register(f).expect("register");
    rt.invoke_arrivals("thumbnail", arrivals, |i| i)
        .expect("every arrival accepted");
    rt.run_until_idle();
    (
        rt.model_report().expect("model mode"),
        rt.timeline().expect("model mode"),
    )
}

fn s(d: Duration) -> String {
    let ms = d.as_millis();
    format!("{}.{:03} s", ms / 1000, ms % 1000)
}

fn row(plan: &str, r: &ModelReport) {
    let all = r.all_ended.map_or("-".to_string(), s);
    println!(
        "{:<18} {:>11} {:>11} {:>9} {:>12} {:>12} {:>11} {:>13}",
        plan,
        s(r.first_attempts_started),
        all,
        r.throttles,
        s(r.first_attempt_age.p99),
        s(r.event_age.p99),
        r.peak_concurrency,
        format!("{:.0}", r.idle_reserved.as_secs_f64()),
    );
}

fn header() {
    println!(
        "{:<18} {:>11} {:>11} {:>9} {:>12} {:>12} {:>11} {:>13}",
        "plan",
        "first runs",
        "all ended",
        "throttles",
        "p99 1st age",
        "p99 any age",
        "peak",
        "idle slot-s"
    );
}

fn small() {
    println!(
        "10 one-second jobs arriving at once on reserved 2, and 100 on reserved 10 \
         (account 1,000, no scaling rate, seed 0)\n"
    );
    header();
    for (n, r) in [(10, 2), (100, 10)] {
        for (mode, name) in [
            (ThrottledEvents::PollerBacksOff, "pollers back off"),
            (ThrottledEvents::EachEventBacksOff, "each backs off"),
        ] {
            let (report, _) = run(
                1_000,
                Some(r),
                false,
                &Arrivals::bursts(n, Duration::ZERO, 1),
                CostModel::fixed(Duration::from_secs(1)),
                mode,
            );
            row(&format!("{n}/{r} {name}"), &report);
        }
    }
}

fn main() {
    let mut args = std::env::args().skip(1).peekable();
    if args.peek().map(String::as_str) == Some("--small") {
        small();
        return;
    }
    let out =
        std::path::PathBuf::from(args.next().unwrap_or_else(|| "target/capacity-plan".into()));
    std::fs::create_dir_all(&out).expect("create the output directory");
    let arrivals = Arrivals::constant(50_000, Duration::from_secs(10));
    let cost = CostModel::log_normal(Duration::from_millis(200), 0.5)
        .cold_start(Duration::from_millis(400))
        .failure_rate(0.02);
    println!(
        "50,000 events over 10 s; ~200 ms handlers (log-normal, sigma 0.5), 400 ms cold starts, \
         2 % failures; account 1,000, scaling +1,000 per 10 s.\n\
         first runs: until every event's first attempt started; all ended: until every event \
         ended (the retries of the 2 % take 1 + 2 min more).\n"
    );
    header();
    // An account keeps 100 unreserved: reserving 1,000 needs a limit of 1,100.
    for (plan, account, reserved) in [
        ("no reservation", 1_000, None),
        ("reserved 100", 1_000, Some(100)),
        ("reserved 1,000 *", 1_100, Some(1_000)),
    ] {
        let (report, timeline) = run(
            account,
            reserved,
            true,
            &arrivals,
            cost.clone(),
            ThrottledEvents::PollerBacksOff,
        );
        row(plan, &report);
        let name = plan
            .trim_end_matches(" *")
            .replace([' ', ','], "-")
            .replace("--", "-");
        let file = out.join(format!("capacity-{name}.svg"));
        let title = format!("50,000 events over 10 s, {}", plan.trim_end_matches(" *"));
        let chart = ChartOptions::new().title(title.clone());
        let svg = timeline.to_svg_with(&chart).expect("a valid chart");
        std::fs::write(&file, svg).expect("write the chart");
        std::fs::write(file.with_extension("csv"), timeline.to_csv()).expect("write the CSV");
        // The whole run squeezes the arrivals and the first runs into the left of the chart
        // (the retry tail lasts minutes): the first 20 s again, on their own.
        let first = ChartOptions::new()
            .title(format!("{title}: the first 20 s"))
            .window(Duration::ZERO..Duration::from_secs(20));
        let svg = timeline.to_svg_with(&first).expect("a valid chart");
        let file = out.join(format!("capacity-{name}-first-20s.svg"));
        std::fs::write(file, svg).expect("write the chart");
    }
    println!(
        "\n* on an account limit of 1,100: Lambda keeps 100 of the account unreserved, so an \
         account of 1,000 can reserve at most 900.\ncharts in {}",
        out.display()
    );
}
