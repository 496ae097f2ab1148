//! [`Timeline`]: concurrency and queue depth over virtual time, as CSV or SVG.

use std::fmt::Write as _;
use std::time::Duration;

use super::report::secs;
use crate::parts::clock::Timestamp;

/// A bounded timeline: buckets of a resolution that doubles whenever the run outgrows them.
pub(crate) struct TimelineBuf {
    origin: Option<u64>,
    width: u64,
    max: usize,
    /// Per bucket: the most executions running, and the most events queued, within it.
    buckets: Vec<(u64, u64)>,
    current: (u64, u64),
}

impl TimelineBuf {
    pub(crate) fn new(width: u64, max: usize) -> Self {
        TimelineBuf {
            origin: None,
            width,
            max,
            buckets: Vec::new(),
            current: (0, 0),
        }
    }

    pub(crate) fn start(&mut self, t: u64) {
        self.origin.get_or_insert(t);
    }

    pub(crate) fn record(&mut self, t: u64, running: u64, queued: u64) {
        let origin = *self.origin.get_or_insert(t);
        let mut index = t.saturating_sub(origin) / self.width;
        while index >= self.max as u64 {
            self.coarsen();
            index = t.saturating_sub(origin) / self.width;
        }
        let index = index as usize;
        while self.buckets.len() <= index {
            // A bucket nothing happened in holds what held at its start.
            self.buckets.push(self.current);
        }
        let b = &mut self.buckets[index];
        b.0 = b.0.max(running);
        b.1 = b.1.max(queued);
        self.current = (running, queued);
    }

    pub(crate) fn coarsen(&mut self) {
        self.width = self.width.saturating_mul(2);
        let merged = self
            .buckets
            .chunks(2)
            .map(|c| c.iter().fold((0, 0), |(r, q), b| (r.max(b.0), q.max(b.1))))
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
                .map(|(i, (running, queued))| TimelinePoint {
                    at: Duration::from_nanos(self.width.saturating_mul(i as u64)),
                    concurrency: *running,
                    queued: *queued,
                })
                .collect(),
        }
    }
}

/// A chart panel: its label, its colour, and what it plots.
type Series = (&'static str, &'static str, fn(&TimelinePoint) -> u64);

/// The SVG chart's width, in pixels.
const SVG_WIDTH: u64 = 900;
/// The height of each of the two panels.
const PANEL_HEIGHT: u64 = 170;
/// Left of the panels: room for the value scale.
const LEFT_MARGIN: u64 = 70;
/// Right of the panels.
const RIGHT_MARGIN: u64 = 20;
/// Above the upper panel: room for the title and that panel's legend.
const TOP_MARGIN: u64 = 40;
/// Between the panels: room for the lower panel's legend.
const PANEL_GAP: u64 = 50;
/// The width the step lines are drawn in.
const PLOT_WIDTH: u64 = SVG_WIDTH - LEFT_MARGIN - RIGHT_MARGIN;
/// Where the time axis starts: under the lower panel.
const TIME_AXIS: u64 = TOP_MARGIN + 2 * PANEL_HEIGHT + PANEL_GAP;
/// The chart's height: the panels, then two lines of text for the time axis.
const SVG_HEIGHT: u64 = TIME_AXIS + 40;

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
}

/// Concurrency and queue depth over the virtual time of a model run, from
/// [`Runtime::timeline`](crate::Runtime::timeline): export it as CSV or as an SVG chart.
///
/// # Examples
///
/// ```
/// use event_invoke::{CostModel, Function, ModelOptions, Runtime};
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
/// // All three were queued, then all three started, at 0.
/// assert!(timeline.to_csv().starts_with("time_s,concurrency,queued\n0.000000,3,3\n"));
/// assert!(timeline.to_svg().starts_with("<svg"));
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

    /// The timeline as CSV: `time_s,concurrency,queued`, one row per bucket, the time in
    /// seconds from the origin with microsecond precision.
    pub fn to_csv(&self) -> String {
        let mut out = String::from("time_s,concurrency,queued\n");
        for p in &self.points {
            let us = p.at.as_micros();
            let _ = writeln!(
                out,
                "{}.{:06},{},{}",
                us / 1_000_000,
                us % 1_000_000,
                p.concurrency,
                p.queued
            );
        }
        out
    }

    /// The timeline as an SVG chart: concurrency above, queue depth below, over virtual time.
    pub fn to_svg(&self) -> String {
        let series: [Series; 2] = [
            ("concurrent executions", "#1f77b4", |p| p.concurrency),
            ("queued events", "#d62728", |p| p.queued),
        ];
        let mut out = String::new();
        svg_header(&mut out);
        for (k, series) in series.iter().enumerate() {
            let top = TOP_MARGIN + k as u64 * (PANEL_HEIGHT + PANEL_GAP);
            self.svg_panel(&mut out, top, series);
        }
        self.svg_time_axis(&mut out);
        out.push_str("</svg>\n");
        out
    }

    /// The number of buckets the chart divides its width into: at least 1, even when empty.
    fn bucket_count(&self) -> u64 {
        self.points.len().max(1) as u64
    }

    /// Writes the panel starting at `top`: its frame, value scale, legend and step line.
    fn svg_panel(&self, out: &mut String, top: u64, &(label, colour, value): &Series) {
        let bottom = top + PANEL_HEIGHT;
        // At least 1, so that an all-zero series lies on the bottom instead of dividing by 0.
        let max = self.points.iter().map(value).max().unwrap_or(0).max(1);
        let _ = writeln!(
            out,
            r##"<rect x="{LEFT_MARGIN}" y="{top}" width="{PLOT_WIDTH}" height="{PANEL_HEIGHT}" fill="none" stroke="#999999"/>"##
        );
        let _ = writeln!(
            out,
            r#"<text x="{}" y="{}" text-anchor="end">{max}</text>"#,
            LEFT_MARGIN - 6,
            top + 10
        );
        let _ = writeln!(
            out,
            r#"<text x="{}" y="{bottom}" text-anchor="end">0</text>"#,
            LEFT_MARGIN - 6
        );
        let _ = writeln!(
            out,
            r#"<text x="{}" y="{}" fill="{colour}">{label} (peak {max})</text>"#,
            LEFT_MARGIN + 6,
            top - 6
        );
        let path = self.step_path(bottom, max, value);
        let _ = writeln!(
            out,
            r#"<path d="{}" fill="none" stroke="{colour}" stroke-width="1.5"/>"#,
            path.trim_end()
        );
    }

    /// The SVG path data of a step line: each bucket's `value` held across its width, scaled
    /// so that `max` reaches `PANEL_HEIGHT` above `bottom`.
    fn step_path(&self, bottom: u64, max: u64, value: fn(&TimelinePoint) -> u64) -> String {
        let n = self.bucket_count();
        // Points that fall on the last pixel drawn are skipped, so a long timeline stays a
        // short path.
        let mut path = String::new();
        let mut last = None;
        for (i, p) in self.points.iter().enumerate() {
            let x0 = LEFT_MARGIN + PLOT_WIDTH * i as u64 / n;
            let x1 = LEFT_MARGIN + PLOT_WIDTH * (i as u64 + 1) / n;
            let y = bottom - PANEL_HEIGHT * value(p) / max;
            for point in [(x0, y), (x1, y)] {
                if last != Some(point) {
                    let verb = if last.is_none() { "M" } else { "L" };
                    let _ = write!(path, "{verb}{},{} ", point.0, point.1);
                    last = Some(point);
                }
            }
        }
        path
    }

    /// Writes the time ticks under the lower panel and the axis label with the bucket width.
    fn svg_time_axis(&self, out: &mut String) {
        let span = self.resolution.saturating_mul(self.bucket_count() as u32);
        for t in 0..=4u64 {
            let x = LEFT_MARGIN + PLOT_WIDTH * t / 4;
            let at = span.mul_f64(t as f64 / 4.0);
            let _ = writeln!(
                out,
                r#"<text x="{x}" y="{}" text-anchor="middle">{}</text>"#,
                TIME_AXIS + 16,
                secs(at)
            );
        }
        let _ = writeln!(
            out,
            r#"<text x="{}" y="{}" text-anchor="middle">virtual time since the first invoke (bucket {})</text>"#,
            LEFT_MARGIN + PLOT_WIDTH / 2,
            TIME_AXIS + 34,
            secs(self.resolution)
        );
    }
}

/// Writes the SVG's opening tag, its white background and the chart's title.
fn svg_header(out: &mut String) {
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{SVG_WIDTH}" height="{SVG_HEIGHT}" viewBox="0 0 {SVG_WIDTH} {SVG_HEIGHT}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(
        out,
        r##"<rect width="{SVG_WIDTH}" height="{SVG_HEIGHT}" fill="#ffffff"/>"##
    );
    let _ = writeln!(
        out,
        r#"<text x="{LEFT_MARGIN}" y="22" font-size="15">Model run: concurrency and queue depth over virtual time</text>"#
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::AgeSummary;

    #[test]
    fn timeline_coarsens_and_keeps_peaks() {
        let mut t = TimelineBuf::new(10, 4);
        t.record(0, 1, 0);
        t.record(15, 5, 2);
        t.record(25, 0, 0);
        // The third bucket starts with 5 running (until 25): its peak is 5.
        assert_eq!(t.buckets, vec![(1, 0), (5, 2), (5, 2)]);
        t.record(45, 2, 1); // index 4 >= 4: buckets of 20
        assert_eq!(t.width, 20);
        assert_eq!(t.buckets, vec![(5, 2), (5, 2), (2, 1)]);
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
