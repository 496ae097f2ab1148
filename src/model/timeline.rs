//! [`Timeline`]: concurrency and queue depth over virtual time, as CSV or SVG.

use std::fmt::Write as _;
use std::ops::Range;
use std::time::Duration;

use crate::parts::clock::{duration_nanos, Timestamp};
use crate::parts::error::Error;

/// A bounded timeline: buckets of a resolution that doubles whenever the run outgrows them.
pub(crate) struct TimelineBuf {
    origin: Option<u64>,
    width: u64,
    max: usize,
    /// Per bucket: the most executions running within it, and the sample where the most events
    /// were queued within it.
    buckets: Vec<Bucket>,
    current: Bucket,
    /// The virtual times of the last bucket sampled, and its index: samples come mostly in
    /// time order, and one in the same bucket needs no division.
    last: (Range<u64>, usize),
}

/// One bucket of the buffer: the peak concurrency, and the queue at its peak depth.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Bucket {
    running: u64,
    queue: Queue,
}

/// The queue at one sample: every event waiting, and how many of them wait out a delay.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Queue {
    pub(crate) queued: u64,
    pub(crate) delayed: u64,
}

impl Bucket {
    /// Folds a sample (or another bucket) in: the larger concurrency, the deeper queue (the
    /// earlier on a tie).
    fn fold(&mut self, running: u64, queue: Queue) {
        self.running = self.running.max(running);
        if queue.queued > self.queue.queued {
            self.queue = queue;
        }
    }
}

impl TimelineBuf {
    pub(crate) fn new(width: u64, max: usize) -> Self {
        TimelineBuf {
            origin: None,
            width,
            max,
            buckets: Vec::new(),
            current: Bucket::default(),
            last: (0..0, 0),
        }
    }

    pub(crate) fn start(&mut self, t: u64) {
        self.origin.get_or_insert(t);
    }

    /// A sample at `t`: `running` executions, and the queue (`queue.delayed <= queue.queued`).
    pub(crate) fn record(&mut self, t: u64, running: u64, queue: Queue) {
        let index = if self.last.0.contains(&t) {
            self.last.1
        } else {
            let origin = *self.origin.get_or_insert(t);
            let mut index = t.saturating_sub(origin) / self.width;
            while index >= self.max as u64 {
                self.coarsen();
                index = t.saturating_sub(origin) / self.width;
            }
            let start = origin.saturating_add(index * self.width);
            self.last = (start..start.saturating_add(self.width), index as usize);
            index as usize
        };
        while self.buckets.len() <= index {
            // A bucket nothing happened in holds what held at its start.
            self.buckets.push(self.current);
        }
        self.buckets[index].fold(running, queue);
        self.current = Bucket { running, queue };
    }

    pub(crate) fn coarsen(&mut self) {
        self.width = self.width.saturating_mul(2);
        self.last = (0..0, 0);
        let merged = self
            .buckets
            .chunks(2)
            .map(|c| {
                c.iter().fold(Bucket::default(), |mut m, b| {
                    m.fold(b.running, b.queue);
                    m
                })
            })
            .collect();
        self.buckets = merged;
    }

    pub(crate) fn export(&self) -> Timeline {
        let origin = self.origin.unwrap_or(0);
        Timeline {
            origin: Timestamp::from_nanos(origin),
            resolution: Duration::from_nanos(self.width),
            points: self
                .buckets
                .iter()
                .enumerate()
                .map(|(i, b)| TimelinePoint {
                    at: Duration::from_nanos(self.width.saturating_mul(i as u64)),
                    concurrency: b.running,
                    queued: b.queue.queued,
                    delayed: b.queue.delayed,
                })
                .collect(),
        }
    }
}

/// The SVG chart's width, in pixels.
const SVG_WIDTH: u64 = 960;
/// The height of each of the two panels.
const PANEL_HEIGHT: u64 = 180;
/// Left of the panels: room for the axis title and the value ticks ("1,000,000").
const LEFT_MARGIN: u64 = 100;
/// Right of the panels: room for half of the last time label.
const RIGHT_MARGIN: u64 = 50;
/// Above the upper panel: room for the title and that panel's legend.
const TOP_MARGIN: u64 = 64;
/// Between the panels: room for the lower panel's legend.
const PANEL_GAP: u64 = 48;
/// The width the panels are drawn in.
const PLOT_WIDTH: u64 = SVG_WIDTH - LEFT_MARGIN - RIGHT_MARGIN;
/// Where the time axis starts: under the lower panel.
const TIME_AXIS: u64 = TOP_MARGIN + 2 * PANEL_HEIGHT + PANEL_GAP;
/// The chart's height: the panels, then two lines of text for the time axis.
const SVG_HEIGHT: u64 = TIME_AXIS + 44;
/// The most intervals between time ticks, and between value ticks.
const TIME_TICKS: u64 = 10;
const VALUE_TICKS: u64 = 5;
/// The chart's default title.
const DEFAULT_TITLE: &str = "Model run: concurrency and queue depth over virtual time";

/// One bucket of a [`Timeline`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimelinePoint {
    /// The bucket's start, from the timeline's origin.
    pub at: Duration,
    /// The most executions running at once in the bucket.
    pub concurrency: u64,
    /// The most events waiting in queues (ready, delayed for a retry or backoff, or held) in
    /// the bucket, sampled at each execution start, end and throttle.
    pub queued: u64,
    /// Of [`queued`](Self::queued), at the same sample: the events waiting out a retry delay
    /// or a throttle backoff (due later than the sample). The rest are
    /// [`ready`](Self::ready). An event purged or deleted while delayed counts as delayed
    /// until its delay ends, at most up to `queued`.
    pub delayed: u64,
}

impl TimelinePoint {
    /// The events of [`queued`](Self::queued) that could run now (or are held by a paused
    /// function): those not [`delayed`](Self::delayed).
    pub fn ready(&self) -> u64 {
        self.queued.saturating_sub(self.delayed)
    }
}

/// How [`Timeline::to_svg_with`] draws a chart: its title and the span of virtual time shown.
///
/// # Examples
///
/// ```
/// use event_invoke::ChartOptions;
/// use std::time::Duration;
///
/// let zoom = ChartOptions::new()
///     .title("reserved 100: the first 20 s")
///     .window(Duration::ZERO..Duration::from_secs(20));
/// assert_eq!(zoom.title_text(), "reserved 100: the first 20 s");
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChartOptions {
    title: Option<String>,
    window: Option<Range<Duration>>,
}

impl ChartOptions {
    /// The default title, the whole timeline.
    pub fn new() -> Self {
        Self::default()
    }

    /// The title above the chart, so that two charts can be told apart.
    pub fn title(mut self, title: impl Into<String>) -> Self {
        self.title = Some(title.into());
        self
    }

    /// Shows only this span of virtual time (from the timeline's origin), e.g. the first 20 s
    /// of a run whose retry tail lasts minutes. It may reach past the timeline's end; it must
    /// not be empty.
    pub fn window(mut self, window: Range<Duration>) -> Self {
        self.window = Some(window);
        self
    }

    /// The title the chart gets.
    pub fn title_text(&self) -> &str {
        self.title.as_deref().unwrap_or(DEFAULT_TITLE)
    }
}

/// Concurrency and queue depth over the virtual time of a model run, from
/// [`Runtime::timeline`](crate::Runtime::timeline): export it as CSV or as an SVG chart.
///
/// # Examples
///
/// ```
/// use event_invoke::{ChartOptions, CostModel, Function, ModelOptions, Runtime};
/// use std::time::Duration;
///
/// let rt: Runtime<u32> = Runtime::builder().model(ModelOptions::new()).build().unwrap();
/// let f = Function::new("f", |_: &u32, _ctx| Ok(())).cost(CostModel::fixed(Duration::from_millis(5)));
/// rt.register(f).unwrap();
/// for i in 0..3 {
///     rt.invoke_async("f", i).unwrap();
/// }
/// rt.run_until_idle();
/// let timeline = rt.timeline().unwrap();
/// assert_eq!(timeline.points()[0].concurrency, 3);
/// // All three were queued (ready, none delayed), then all three started, at 0.
/// assert!(timeline.to_csv().starts_with("time_s,concurrency,queued,delayed\n0.000000,3,3,0\n"));
/// assert!(timeline.to_svg().starts_with("<svg"));
/// let svg = timeline
///     .to_svg_with(&ChartOptions::new().title("three events").window(Duration::ZERO..Duration::from_millis(10)))
///     .unwrap();
/// assert!(svg.contains(">three events</text>"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timeline {
    origin: Timestamp,
    resolution: Duration,
    points: Vec<TimelinePoint>,
}

impl Timeline {
    /// When the timeline starts (the first invoke call) on the runtime's clock.
    pub fn origin(&self) -> Timestamp {
        self.origin
    }

    /// The width of each bucket.
    pub fn resolution(&self) -> Duration {
        self.resolution
    }

    /// The buckets, in time order.
    pub fn points(&self) -> &[TimelinePoint] {
        &self.points
    }

    /// The timeline as CSV: `time_s,concurrency,queued,delayed`, one row per bucket, the time
    /// in seconds from the origin with microsecond precision.
    pub fn to_csv(&self) -> String {
        let mut out = String::from("time_s,concurrency,queued,delayed\n");
        for p in &self.points {
            let us = p.at.as_micros();
            let _ = writeln!(
                out,
                "{}.{:06},{},{},{}",
                us / 1_000_000,
                us % 1_000_000,
                p.concurrency,
                p.queued,
                p.delayed
            );
        }
        out
    }

    /// The timeline as an SVG chart with the default title over its whole span: see
    /// [`to_svg_with`](Self::to_svg_with).
    pub fn to_svg(&self) -> String {
        self.render(DEFAULT_TITLE, 0, self.span_nanos())
    }

    /// The timeline as an SVG chart: concurrency above; below, the queue depth split into
    /// ready events and events delayed (waiting out a retry or a throttle backoff); round
    /// ticks on both value axes and on the time axis.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] when the options' window is empty (its start not before its
    /// end).
    pub fn to_svg_with(&self, options: &ChartOptions) -> Result<String, Error> {
        let (from, to) = match &options.window {
            None => (0, self.span_nanos()),
            Some(w) if w.start < w.end => (duration_nanos(w.start), duration_nanos(w.end)),
            Some(w) => {
                return Err(Error::InvalidConfig {
                    field: "ChartOptions::window",
                    value: format!("{:?}..{:?}", w.start, w.end),
                    accepted: "a span whose start is before its end, e.g. 0 s..20 s",
                })
            }
        };
        Ok(self.render(options.title_text(), from, to))
    }

    /// The span the buckets cover (at least one bucket, even when empty), in nanoseconds.
    fn span_nanos(&self) -> u64 {
        duration_nanos(self.resolution).saturating_mul(self.points.len().max(1) as u64)
    }

    fn render(&self, title: &str, from: u64, to: u64) -> String {
        let frame = Frame::new(from, to, duration_nanos(self.resolution), &self.points);
        let mut out = String::new();
        svg_header(&mut out, title);
        frame.time_grid(&mut out);
        // The upper panel: concurrency.
        let top = TOP_MARGIN;
        let peak = frame
            .points()
            .map(|(_, p)| p.concurrency)
            .max()
            .unwrap_or(0);
        let scale = frame.value_axis(&mut out, top, peak, "executions");
        let line = frame.steps(top, scale, |p| p.concurrency);
        let _ = writeln!(
            out,
            r##"<path d="{}" fill="#1f77b4" fill-opacity="0.15" stroke="#1f77b4" stroke-width="1.5"/>"##,
            line.area(top + PANEL_HEIGHT)
        );
        legend(
            &mut out,
            top,
            &[(
                "#1f77b4",
                &format!("concurrent executions (peak {})", grouped(peak)),
            )],
        );
        // The lower panel: the queue, delayed events below, ready ones stacked on them.
        let top = TOP_MARGIN + PANEL_HEIGHT + PANEL_GAP;
        let peak = frame.points().map(|(_, p)| p.queued).max().unwrap_or(0);
        let peak_delayed = frame.points().map(|(_, p)| p.delayed).max().unwrap_or(0);
        let peak_ready = frame.points().map(|(_, p)| p.ready()).max().unwrap_or(0);
        let scale = frame.value_axis(&mut out, top, peak, "queued events");
        let delayed = frame.steps(top, scale, |p| p.delayed);
        let queued = frame.steps(top, scale, |p| p.queued);
        let _ = writeln!(
            out,
            r##"<path d="{}" fill="#ff7f0e" fill-opacity="0.45" stroke="none"/>"##,
            delayed.area(top + PANEL_HEIGHT)
        );
        let _ = writeln!(
            out,
            r##"<path d="{}" fill="#d62728" fill-opacity="0.3" stroke="none"/>"##,
            queued.band(&delayed)
        );
        let _ = writeln!(
            out,
            r##"<path d="{}" fill="none" stroke="#d62728" stroke-width="1.5"/>"##,
            queued.line()
        );
        legend(
            &mut out,
            top,
            &[
                (
                    "#d62728",
                    &format!("ready or held (peak {})", grouped(peak_ready)),
                ),
                (
                    "#ff7f0e",
                    &format!(
                        "delayed: waiting out a retry or a throttle backoff (peak {})",
                        grouped(peak_delayed)
                    ),
                ),
            ],
        );
        frame.time_axis(&mut out, self.resolution);
        out.push_str("</svg>\n");
        out
    }
}

/// The window of virtual time a chart shows, mapped onto the panels' width.
struct Frame<'a> {
    from: u64,
    to: u64,
    width: u64,
    points: &'a [TimelinePoint],
}

impl<'a> Frame<'a> {
    fn new(from: u64, to: u64, width: u64, points: &'a [TimelinePoint]) -> Self {
        Frame {
            from,
            to,
            width: width.max(1),
            points,
        }
    }

    /// The x of virtual time `t` (nanoseconds from the origin), clamped to the window.
    fn x(&self, t: u64) -> f64 {
        let t = t.clamp(self.from, self.to);
        LEFT_MARGIN as f64
            + PLOT_WIDTH as f64 * (t - self.from) as f64 / (self.to - self.from) as f64
    }

    /// The buckets that overlap the window, each with its span clipped to it.
    fn points(&self) -> impl Iterator<Item = ((u64, u64), &'a TimelinePoint)> + '_ {
        let first = (self.from / self.width) as usize;
        self.points
            .iter()
            .enumerate()
            .skip(first)
            .map(move |(i, p)| {
                let start = self.width.saturating_mul(i as u64);
                let end = start.saturating_add(self.width);
                ((start.max(self.from), end.min(self.to)), p)
            })
            .take_while(|((start, end), _)| start < end)
    }

    /// A step line of `value` in the panel at `top`, `scale` reaching the panel's top.
    fn steps(&self, top: u64, scale: u64, value: fn(&TimelinePoint) -> u64) -> Steps {
        let bottom = (top + PANEL_HEIGHT) as f64;
        let mut points: Vec<(f64, f64)> = Vec::new();
        for ((start, end), p) in self.points() {
            let y = bottom - PANEL_HEIGHT as f64 * value(p) as f64 / scale as f64;
            for point in [(self.x(start), y), (self.x(end), y)] {
                // Points on the last pixel drawn are skipped: a long timeline stays a short path.
                let same = points
                    .last()
                    .is_some_and(|l| (l.0 - point.0).abs() < 0.05 && (l.1 - point.1).abs() < 0.05);
                if !same {
                    points.push(point);
                }
            }
        }
        Steps(points)
    }

    /// Draws the panel at `top`: its frame, grid lines and round value ticks up to the first
    /// tick at or above `peak`, and the axis title. Returns the value at the panel's top.
    fn value_axis(&self, out: &mut String, top: u64, peak: u64, title: &str) -> u64 {
        let step = round_step(peak.max(1), VALUE_TICKS);
        let scale = peak.max(1).div_ceil(step) * step;
        let bottom = top + PANEL_HEIGHT;
        let mut v = 0;
        while v <= scale {
            let y = bottom as f64 - PANEL_HEIGHT as f64 * v as f64 / scale as f64;
            let _ = writeln!(
                out,
                r##"<line x1="{LEFT_MARGIN}" y1="{y:.1}" x2="{}" y2="{y:.1}" stroke="#e5e5e5"/>"##,
                LEFT_MARGIN + PLOT_WIDTH
            );
            let _ = writeln!(
                out,
                r#"<text x="{}" y="{:.1}" text-anchor="end">{}</text>"#,
                LEFT_MARGIN - 6,
                y + 4.0,
                grouped(v)
            );
            v += step;
        }
        let _ = writeln!(
            out,
            r##"<rect x="{LEFT_MARGIN}" y="{top}" width="{PLOT_WIDTH}" height="{PANEL_HEIGHT}" fill="none" stroke="#999999"/>"##
        );
        let middle = top + PANEL_HEIGHT / 2;
        let _ = writeln!(
            out,
            r#"<text x="18" y="{middle}" text-anchor="middle" transform="rotate(-90 18 {middle})">{}</text>"#,
            escape(title)
        );
        scale
    }

    /// The round time ticks in the window (nanoseconds from the origin), and their step.
    fn time_ticks(&self) -> (Vec<u64>, u64) {
        let step = round_step(self.to - self.from, TIME_TICKS);
        let mut ticks = Vec::new();
        let mut t = self.from.div_ceil(step) * step;
        while t <= self.to {
            ticks.push(t);
            match t.checked_add(step) {
                Some(next) => t = next,
                None => break,
            }
        }
        (ticks, step)
    }

    /// Draws a faint vertical line at each time tick, across both panels, under everything.
    fn time_grid(&self, out: &mut String) {
        for t in self.time_ticks().0 {
            let x = self.x(t);
            let _ = writeln!(
                out,
                r##"<line x1="{x:.1}" y1="{TOP_MARGIN}" x2="{x:.1}" y2="{}" stroke="#e5e5e5"/>"##,
                TIME_AXIS + 4
            );
        }
    }

    /// Writes the round time ticks' labels under the lower panel, each with its unit, and
    /// the axis title.
    fn time_axis(&self, out: &mut String, resolution: Duration) {
        let (ticks, step) = self.time_ticks();
        let unit = time_unit(self.to);
        for t in ticks {
            let _ = writeln!(
                out,
                r#"<text x="{:.1}" y="{}" text-anchor="middle">{}</text>"#,
                self.x(t),
                TIME_AXIS + 18,
                time_label(t, step, unit)
            );
        }
        let _ = writeln!(
            out,
            r#"<text x="{}" y="{}" text-anchor="middle">virtual time since the first invoke (each point the peak of {})</text>"#,
            LEFT_MARGIN + PLOT_WIDTH / 2,
            TIME_AXIS + 38,
            duration_text(duration_nanos(resolution))
        );
    }
}

/// A step line's points, left to right.
struct Steps(Vec<(f64, f64)>);

impl Steps {
    fn line(&self) -> String {
        let mut d = String::new();
        for (i, (x, y)) in self.0.iter().enumerate() {
            let verb = if i == 0 { "M" } else { "L" };
            let _ = write!(d, "{verb}{x:.1},{y:.1} ");
        }
        d.trim_end().to_string()
    }

    /// The area between the line and the baseline `bottom`.
    fn area(&self, bottom: u64) -> String {
        match (self.0.first(), self.0.last()) {
            (Some(first), Some(last)) => format!(
                "{} L{:.1},{bottom} L{:.1},{bottom} Z",
                self.line(),
                last.0,
                first.0
            ),
            _ => String::new(),
        }
    }

    /// The area between this line and `below` (a line over the same buckets).
    fn band(&self, below: &Steps) -> String {
        if self.0.is_empty() {
            return String::new();
        }
        let mut d = self.line();
        for (x, y) in below.0.iter().rev() {
            let _ = write!(d, " L{x:.1},{y:.1}");
        }
        d.push_str(" Z");
        d
    }
}

/// The round step (1, 2 or 5 times a power of ten, at least 1) that divides `span` into at
/// most `most` intervals.
pub(crate) fn round_step(span: u64, most: u64) -> u64 {
    let want = span.div_ceil(most.max(1)).max(1);
    let mut power = 1u64;
    loop {
        for m in [1, 2, 5] {
            let step = power.saturating_mul(m);
            if step >= want {
                return step;
            }
        }
        if power > u64::MAX / 10 {
            return u64::MAX;
        }
        power *= 10;
    }
}

/// The unit a time axis reaching `end` nanoseconds is labelled in: its name and nanoseconds.
fn time_unit(end: u64) -> (&'static str, u64) {
    match end {
        e if e >= 1_000_000_000 => ("s", 1_000_000_000),
        e if e >= 1_000_000 => ("ms", 1_000_000),
        e if e >= 1_000 => ("µs", 1_000),
        _ => ("ns", 1),
    }
}

/// A tick's label: `t` nanoseconds in `unit`, with as many decimals as `step` needs.
pub(crate) fn time_label(t: u64, step: u64, (name, unit): (&str, u64)) -> String {
    let mut decimals = 0;
    let mut scale = 1u64;
    while decimals < 9 && (step.saturating_mul(scale)) % unit != 0 {
        decimals += 1;
        scale *= 10;
    }
    let whole = grouped(t / unit);
    if decimals == 0 {
        return format!("{whole} {name}");
    }
    let fraction = (t % unit) as u128 * scale as u128 / unit as u128;
    format!("{whole}.{fraction:0decimals$} {name}")
}

/// `ns` nanoseconds in the unit that fits them, with up to three decimals ("512 ms").
pub(crate) fn duration_text(ns: u64) -> String {
    let (name, unit) = time_unit(ns);
    let thousandths = ns as u128 * 1_000 / unit as u128;
    let mut text = format!(
        "{}.{:03}",
        grouped((thousandths / 1_000) as u64),
        thousandths % 1_000
    );
    while text.ends_with('0') {
        text.pop();
    }
    if text.ends_with('.') {
        text.pop();
    }
    format!("{text} {name}")
}

/// `n` with a comma between groups of three digits.
fn grouped(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Text made safe inside an SVG element.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Writes a panel's legend above its frame: a colour swatch and a label per series.
fn legend(out: &mut String, top: u64, items: &[(&str, &str)]) {
    let mut x = LEFT_MARGIN;
    for (colour, label) in items {
        let _ = writeln!(
            out,
            r#"<rect x="{x}" y="{}" width="10" height="10" fill="{colour}" fill-opacity="0.6"/>"#,
            top - 16
        );
        let _ = writeln!(
            out,
            r#"<text x="{}" y="{}">{}</text>"#,
            x + 14,
            top - 7,
            escape(label)
        );
        x += 14 + text_width(label, 12.0) as u64 + 24;
    }
}

/// A generous estimate of the width of `text` in the chart's sans-serif font at `size`.
pub(crate) fn text_width(text: &str, size: f64) -> f64 {
    text.chars().count() as f64 * size * 0.65
}

/// Writes the SVG's opening tag, its white background and the title, its font shrunk to fit.
fn svg_header(out: &mut String, title: &str) {
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{SVG_WIDTH}" height="{SVG_HEIGHT}" viewBox="0 0 {SVG_WIDTH} {SVG_HEIGHT}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(
        out,
        r##"<rect width="{SVG_WIDTH}" height="{SVG_HEIGHT}" fill="#ffffff"/>"##
    );
    let room = (SVG_WIDTH - 20) as f64;
    let size = (room / text_width(title, 1.0)).clamp(6.0, 16.0);
    let _ = writeln!(
        out,
        r#"<text x="10" y="24" font-size="{size:.1}" font-weight="bold">{}</text>"#,
        escape(title)
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::AgeSummary;

    fn q(queued: u64, delayed: u64) -> Queue {
        Queue { queued, delayed }
    }

    fn b(running: u64, queued: u64, delayed: u64) -> Bucket {
        Bucket {
            running,
            queue: q(queued, delayed),
        }
    }

    #[test]
    fn timeline_coarsens_and_keeps_peaks() {
        let mut t = TimelineBuf::new(10, 4);
        t.record(0, 1, q(0, 0));
        t.record(15, 5, q(2, 1));
        t.record(25, 0, q(0, 0));
        // The third bucket starts with 5 running (until 25): its peak is 5.
        assert_eq!(t.buckets, vec![b(1, 0, 0), b(5, 2, 1), b(5, 2, 1)]);
        t.record(45, 2, q(1, 1)); // index 4 >= 4: buckets of 20
        assert_eq!(t.width, 20);
        assert_eq!(t.buckets, vec![b(5, 2, 1), b(5, 2, 1), b(2, 1, 1)]);
    }

    #[test]
    fn a_bucket_keeps_the_split_of_its_deepest_queue() {
        let mut t = TimelineBuf::new(10, 100);
        t.record(0, 0, q(3, 3));
        t.record(1, 0, q(5, 1));
        t.record(2, 0, q(4, 4));
        t.record(3, 0, q(5, 5)); // as deep as the peak, later: the first one stays
        let p = t.export().points()[0];
        assert_eq!((p.queued, p.delayed, p.ready()), (5, 1, 4));
    }

    #[test]
    fn steps_are_one_two_or_five_times_a_power_of_ten() {
        // 0..194.944 s in at most 10 intervals: 20 s.
        assert_eq!(round_step(194_944_000_000, 10), 20_000_000_000);
        assert_eq!(round_step(48_736, 5), 10_000);
        assert_eq!(round_step(7, 5), 2);
        assert_eq!(round_step(1, 5), 1);
        assert_eq!(round_step(0, 5), 1);
        assert_eq!(round_step(34_000, 5), 10_000);
        assert_eq!(round_step(101, 5), 50);
        assert_eq!(round_step(u64::MAX, 1), u64::MAX);
        for span in [1u64, 3, 9, 11, 99, 650, 1_999, 21_600_000_000_000] {
            let step = round_step(span, 10);
            let mantissa = step / 10u64.pow(step.ilog10());
            assert!([1, 2, 5].contains(&mantissa), "{span}: {step}");
            assert!(span.div_ceil(step) <= 10, "{span}: {step}");
        }
    }

    #[test]
    fn time_labels_carry_their_unit_and_only_the_decimals_the_step_needs() {
        let s = ("s", 1_000_000_000);
        assert_eq!(time_label(180_000_000_000, 20_000_000_000, s), "180 s");
        assert_eq!(time_label(1_500_000_000, 500_000_000, s), "1.5 s");
        assert_eq!(time_label(1_000_000_000, 200_000_000, s), "1.0 s");
        assert_eq!(
            time_label(20_000_000_000_000, 2_000_000_000_000, s),
            "20,000 s"
        );
        assert_eq!(
            time_label(250_000_000, 50_000_000, ("ms", 1_000_000)),
            "250 ms"
        );
        assert_eq!(grouped(1_000_000), "1,000,000");
        assert_eq!(duration_text(512_000_000), "512 ms");
        assert_eq!(duration_text(1_024_000_000), "1.024 s");
        assert_eq!(duration_text(4_096_000_000_000), "4,096 s");
        assert_eq!(duration_text(1_500), "1.5 µs");
        assert_eq!(grouped(100), "100");
    }

    #[test]
    fn nearest_rank_percentiles() {
        let ages: Vec<u64> = (1..=100).collect();
        let s = AgeSummary::of(&ages);
        assert_eq!(s.p50, Duration::from_nanos(50));
        assert_eq!(s.p90, Duration::from_nanos(90));
        assert_eq!(s.p99, Duration::from_nanos(99));
        assert_eq!(s.max, Duration::from_nanos(100));
        assert_eq!(AgeSummary::of(&[]).count, 0);
    }
}

#[cfg(test)]
mod bucket_cache_tests {
    use super::*;
    use proptest::prelude::*;

    /// The bucket index as the code before the merge computed it, every time.
    fn reference(t: &mut TimelineBuf, at: u64, running: u64, queue: Queue) {
        let origin = *t.origin.get_or_insert(at);
        let mut index = at.saturating_sub(origin) / t.width;
        while index >= t.max as u64 {
            t.coarsen();
            index = at.saturating_sub(origin) / t.width;
        }
        let index = index as usize;
        while t.buckets.len() <= index {
            t.buckets.push(t.current);
        }
        t.buckets[index].fold(running, queue);
        t.current = Bucket { running, queue };
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]
        #[test]
        fn the_cached_bucket_is_the_one_computed_from_the_origin(
            width in 1u64..50,
            max in 2usize..20,
            start in prop::option::of(0u64..100),
            steps in prop::collection::vec((0u8..6, 0u64..400, 0u64..9), 0..200),
        ) {
            let mut a = TimelineBuf::new(width, max);
            let mut b = TimelineBuf::new(width, max);
            if let Some(s) = start { a.start(s); b.start(s); }
            let mut t = 50u64;
            for (kind, x, r) in steps {
                t = match kind {
                    0 => t.saturating_add(x % 7),                       // forward, same bucket often
                    1 => t.saturating_sub(x % 60),        // back in time
                    2 => { let w = a.width; let o = a.origin.unwrap_or(t); o.saturating_add((t.saturating_sub(o) / w + 1).saturating_mul(w)) } // on the next edge
                    3 => { let w = a.width; let o = a.origin.unwrap_or(t); o.saturating_add((t.saturating_sub(o) / w).saturating_mul(w)) } // on this edge
                    4 => u64::MAX - x,                    // huge
                    _ => t.saturating_add(x),                           // jump forward
                };
                let q = Queue { queued: r, delayed: r / 2 };
                a.record(t, r, q);
                reference(&mut b, t, r, q);
                prop_assert_eq!(&a.buckets, &b.buckets, "t {}", t);
                prop_assert_eq!(a.width, b.width);
            }
        }
    }
}
