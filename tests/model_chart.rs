//! Model mode's timeline chart: round ticks on every axis, every label inside the picture, a
//! title and a window, and the queue split into ready events and delayed ones (waiting out a
//! retry or a throttle backoff).
#![cfg(feature = "model")]

use std::time::Duration;

use event_invoke::{
    ChartOptions, CostModel, Error, Function, FunctionError, ModelOptions, Runtime, Timeline,
};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// One `<text>` element of a chart.
#[derive(Debug)]
struct Label {
    x: f64,
    y: f64,
    anchor: String,
    size: f64,
    rotated: bool,
    text: String,
}

fn attribute(tag: &str, name: &str) -> Option<String> {
    let start = tag.find(&format!(" {name}=\""))? + name.len() + 3;
    let end = start + tag[start..].find('"')?;
    Some(tag[start..end].to_string())
}

/// The chart's size (from its viewBox) and its text elements.
fn labels(svg: &str) -> ((f64, f64), Vec<Label>) {
    let root = &svg[..svg.find('>').unwrap()];
    let view: Vec<f64> = attribute(root, "viewBox")
        .unwrap()
        .split(' ')
        .map(|v| v.parse().unwrap())
        .collect();
    let mut out = Vec::new();
    for piece in svg.split("<text").skip(1) {
        let close = piece.find('>').unwrap();
        let tag = &piece[..close];
        let text = &piece[close + 1..piece.find("</text>").unwrap()];
        out.push(Label {
            x: attribute(tag, "x").unwrap().parse().unwrap(),
            y: attribute(tag, "y").unwrap().parse().unwrap(),
            anchor: attribute(tag, "text-anchor").unwrap_or_else(|| "start".into()),
            size: attribute(tag, "font-size").map_or(12.0, |s| s.parse().unwrap()),
            rotated: tag.contains("rotate(-90"),
            text: text
                .replace("&amp;", "&")
                .replace("&lt;", "<")
                .replace("&gt;", ">"),
        });
    }
    ((view[2], view[3]), out)
}

/// Asserts that every label, at a width generous for any sans-serif font (0.7 em a
/// character), lies inside the chart.
fn assert_labels_inside(svg: &str) {
    let ((width, height), labels) = labels(svg);
    for l in &labels {
        let long = l.text.chars().count() as f64 * l.size * 0.7;
        let (before, after) = match l.anchor.as_str() {
            "middle" => (long / 2.0, long / 2.0),
            "end" => (long, 0.0),
            _ => (0.0, long),
        };
        // Along the text, then across it (the font's height above the baseline).
        let (x0, x1, y0, y1) = if l.rotated {
            (l.x - l.size, l.x, l.y - after, l.y + before)
        } else {
            (l.x - before, l.x + after, l.y - l.size, l.y)
        };
        assert!(
            x0 >= 0.0 && x1 <= width && y0 >= 0.0 && y1 <= height,
            "{l:?} leaves the {width}x{height} chart"
        );
    }
}

/// The time axis' tick labels, as (nanoseconds, text), left to right.
fn time_ticks(svg: &str) -> Vec<(u64, String)> {
    let (_, labels) = labels(svg);
    let axis_y = labels
        .iter()
        .filter(|l| l.anchor == "middle" && !l.rotated)
        .map(|l| l.y)
        .fold(0.0, f64::max);
    labels
        .iter()
        .filter(|l| l.anchor == "middle" && !l.rotated && l.y < axis_y && l.y > axis_y - 30.0)
        .map(|l| {
            let (number, unit) = l.text.rsplit_once(' ').expect("a unit after the number");
            let scale = match unit {
                "s" => 1e9,
                "ms" => 1e6,
                other => panic!("unit {other}"),
            };
            let value: f64 = number.replace(',', "").parse().unwrap();
            ((value * scale).round() as u64, l.text.clone())
        })
        .collect()
}

/// The value ticks of the panels, top panel first: each panel's labels bottom-up.
fn value_ticks(svg: &str) -> Vec<Vec<u64>> {
    let (_, labels) = labels(svg);
    let mut panels: Vec<Vec<(f64, u64)>> = Vec::new();
    for l in labels.iter().filter(|l| l.anchor == "end") {
        let v: u64 = l.text.replace(',', "").parse().unwrap();
        // A tick 0 starts a panel (its ticks are written bottom-up).
        if v == 0 {
            panels.push(Vec::new());
        }
        panels.last_mut().unwrap().push((l.y, v));
    }
    panels
        .into_iter()
        .map(|p| p.into_iter().map(|(_, v)| v).collect())
        .collect()
}

fn is_round(step: u64) -> bool {
    let mut m = step;
    while m >= 10 && m % 10 == 0 {
        m /= 10;
    }
    [1, 2, 5].contains(&m)
}

/// One event whose handler always fails in no time: attempts at 0, 60 and 180 s.
fn retried_for_three_minutes() -> Runtime<u32> {
    let rt: Runtime<u32> = Runtime::builder()
        .model(ModelOptions::new().timeline(secs(1), 1_000))
        .build()
        .unwrap();
    let f = Function::new("fails", |_: &u32, _ctx| {
        Err(FunctionError::new("E", "always"))
    });
    rt.register(f).unwrap();
    rt.invoke_async("fails", 0).unwrap();
    rt
}

/// 200 events 20 ms apart, 300 ms each with 10 % failures, on 5 reserved slots: throttles,
/// backoffs and retries.
fn crowded(seed: u64) -> Timeline {
    let rt: Runtime<u32> = Runtime::builder()
        .model(ModelOptions::new().invoke_latency(ms(20)))
        .seed(seed)
        .build()
        .unwrap();
    let f = Function::new("busy", |_: &u32, _ctx| Ok(()))
        .reserved_concurrency(5)
        .cost(CostModel::fixed(ms(300)).failure_rate(0.1));
    rt.register(f).unwrap();
    for i in 0..200 {
        rt.invoke_async("busy", i).unwrap();
    }
    rt.run_until_idle();
    rt.timeline().unwrap()
}

#[test]
fn time_ticks_are_round_and_every_label_fits_inside_the_chart() {
    let rt = retried_for_three_minutes();
    rt.run_until_idle();
    let timeline = rt.timeline().unwrap();
    // The awkward span, 0..194.944 s, and the whole run (181 buckets of 1 s).
    let awkward = ChartOptions::new().window(Duration::ZERO..ms(194_944));
    for (svg, end) in [
        (timeline.to_svg_with(&awkward).unwrap(), ms(194_944)),
        (timeline.to_svg(), secs(181)),
    ] {
        assert_labels_inside(&svg);
        let ticks = time_ticks(&svg);
        // At most 10 intervals of a round step: 20 s, from 0 to 180 s.
        assert_eq!(ticks.first().unwrap().1, "0 s");
        assert_eq!(ticks.last().unwrap().1, "180 s");
        let step = ticks[1].0 - ticks[0].0;
        assert_eq!(step, 20_000_000_000);
        for pair in ticks.windows(2) {
            assert_eq!(pair[1].0 - pair[0].0, step, "{ticks:?}");
        }
        assert!(ticks.last().unwrap().0 <= end.as_nanos() as u64);
    }
}

#[test]
fn a_short_window_is_labelled_in_round_fractions_or_milliseconds() {
    let rt = retried_for_three_minutes();
    rt.run_until_idle();
    let timeline = rt.timeline().unwrap();
    let svg = timeline
        .to_svg_with(&ChartOptions::new().window(secs(1)..ms(3_500)))
        .unwrap();
    assert_labels_inside(&svg);
    let texts: Vec<String> = time_ticks(&svg).into_iter().map(|t| t.1).collect();
    // 2.5 s in at most 10 intervals: 0.5 s steps from 1 s.
    assert_eq!(
        texts,
        ["1.0 s", "1.5 s", "2.0 s", "2.5 s", "3.0 s", "3.5 s"]
    );
    let svg = timeline
        .to_svg_with(&ChartOptions::new().window(Duration::ZERO..ms(250)))
        .unwrap();
    let texts: Vec<String> = time_ticks(&svg).into_iter().map(|t| t.1).collect();
    assert_eq!(texts.first().map(String::as_str), Some("0 ms"));
    assert_eq!(texts.last().map(String::as_str), Some("250 ms"));
}

#[test]
fn both_value_axes_have_several_round_ticks_and_a_name() {
    let timeline = crowded(1);
    let peak_queue = timeline.points().iter().map(|p| p.queued).max().unwrap();
    let svg = timeline.to_svg();
    assert_labels_inside(&svg);
    let panels = value_ticks(&svg);
    assert_eq!(panels.len(), 2, "{panels:?}");
    // Concurrency peaks at the 5 reserved slots: ticks 0 to 5 by 1.
    assert_eq!(panels[0], [0, 1, 2, 3, 4, 5]);
    // The queue: round steps from 0 up to the first tick at or above its peak.
    let queue = &panels[1];
    assert!(queue.len() >= 3, "{queue:?}");
    let step = queue[1];
    assert!(is_round(step), "{queue:?}");
    assert!(queue.iter().enumerate().all(|(i, v)| *v == i as u64 * step));
    assert!(*queue.last().unwrap() >= peak_queue && queue[queue.len() - 2] < peak_queue);
    // Each value axis is named along it.
    let (_, labels) = labels(&svg);
    for name in ["executions", "queued events"] {
        assert!(
            labels.iter().any(|l| l.rotated && l.text == name),
            "no axis title {name}"
        );
    }
}

#[test]
fn a_chart_carries_its_title_and_a_window_charts_only_its_span() {
    let timeline = crowded(1);
    assert!(timeline
        .to_svg()
        .contains(">Model run: concurrency and queue depth over virtual time</text>"));
    let options = ChartOptions::new()
        .title("reserved 5 & <200> events")
        .window(secs(2)..secs(4));
    let svg = timeline.to_svg_with(&options).unwrap();
    assert!(svg.contains(">reserved 5 &amp; &lt;200&gt; events</text>"));
    assert_labels_inside(&svg);
    let ticks = time_ticks(&svg);
    assert_eq!(ticks.first().unwrap().1, "2.0 s");
    assert_eq!(ticks.last().unwrap().1, "4.0 s");
    // The same window past the timeline's end draws the run, then nothing: no error.
    let past = ChartOptions::new().window(secs(1)..secs(3_600));
    assert_labels_inside(&timeline.to_svg_with(&past).unwrap());
}

#[test]
fn an_empty_window_is_refused_with_what_to_change() {
    let timeline = crowded(1);
    for window in [secs(5)..secs(5), secs(5)..secs(2)] {
        let err = timeline
            .to_svg_with(&ChartOptions::new().window(window))
            .unwrap_err();
        assert!(matches!(
            err,
            Error::InvalidConfig {
                field: "ChartOptions::window",
                ..
            }
        ));
        assert!(err.to_string().contains("start is before its end"), "{err}");
    }
}

#[test]
fn an_event_waiting_out_a_retry_counts_as_delayed_not_ready() {
    let rt = retried_for_three_minutes();
    rt.run_for(secs(30));
    // Mid-wait the engine's own books agree: one event delayed, none ready.
    let m = rt.function_metrics("fails").unwrap();
    assert_eq!((m.queue_ready, m.queue_delayed), (0, 1));
    rt.run_until_idle();
    let timeline = rt.timeline().unwrap();
    let points = timeline.points();
    // Attempts at 0, 60 and 180 s, each in no time; between them the retry is delayed. At 0
    // the bucket keeps its first deepest sample: the event ready on arrival.
    assert_eq!(points.len(), 181);
    assert_eq!((points[0].queued, points[0].delayed), (1, 0));
    for p in points[1..60].iter().chain(&points[61..180]) {
        assert_eq!((p.concurrency, p.queued, p.delayed), (0, 1, 1), "{p:?}");
    }
    let csv = timeline.to_csv();
    assert!(csv.starts_with("time_s,concurrency,queued,delayed\n"));
    assert_eq!(csv.lines().nth(2), Some("1.000000,0,1,1"));
}

#[test]
fn an_event_waiting_out_a_throttle_backoff_counts_as_delayed() {
    // One reserved slot, two events of 1 s at once: the second is throttled at 0 and waits
    // out a backoff of about 1 s (jittered) while the first runs.
    let rt: Runtime<u32> = Runtime::builder()
        .model(
            ModelOptions::new()
                .invoke_latency(Duration::ZERO)
                .timeline(ms(100), 1_000),
        )
        .build()
        .unwrap();
    let f = Function::new("one", |_: &u32, _ctx| Ok(()))
        .reserved_concurrency(1)
        .cost(CostModel::fixed(secs(1)));
    rt.register(f).unwrap();
    rt.invoke_async("one", 0).unwrap();
    rt.invoke_async("one", 1).unwrap();
    rt.run_until_idle();
    assert!(rt.function_metrics("one").unwrap().throttles >= 1);
    let points = rt.timeline().unwrap().points().to_vec();
    // 0.1 to 0.5 s: the first runs, the second waits out its backoff (at least 0.8 s).
    for p in &points[1..5] {
        assert_eq!((p.concurrency, p.queued, p.delayed), (1, 1, 1), "{p:?}");
    }
    let last = points.last().unwrap();
    assert_eq!((last.queued, last.delayed), (0, 0));
}

#[test]
fn ready_and_delayed_add_up_to_the_queue_in_every_bucket_of_a_crowded_run() {
    for seed in 1..=5 {
        let timeline = crowded(seed);
        let points = timeline.points();
        assert!(points.iter().any(|p| p.delayed > 0), "seed {seed}");
        assert!(points.iter().any(|p| p.ready() > 0), "seed {seed}");
        for p in points {
            assert!(p.delayed <= p.queued, "seed {seed}: {p:?}");
            assert_eq!(p.ready() + p.delayed, p.queued, "seed {seed}: {p:?}");
        }
        // The CSV carries the same split.
        for (line, p) in timeline.to_csv().lines().skip(1).zip(points) {
            let cols: Vec<u64> = line
                .split(',')
                .skip(1)
                .map(|c| c.parse().unwrap())
                .collect();
            assert_eq!(cols, [p.concurrency, p.queued, p.delayed]);
        }
        assert_eq!(timeline, crowded(seed).clone(), "same seed, same timeline");
    }
}
