//! The report's charts as inline SVG: a grid of days (one row per service
//! or supplier, one cell per day) and the twelve-period trend line. Each
//! chart has a `<title>` and `<desc>` with every figure in words, each
//! cell its own `<title>`, and each cell a mark (✓ ! ✗ –) besides its
//! colour, so no reader depends on colour. Every text is escaped here:
//! the HTML template inserts the SVG as it is.

use std::fmt::Write as _;

use super::view::Verdict;

/// Text for XML content and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Long names are cut for the chart's label column; the full name stays
/// in the cell titles and in the tables.
fn label(name: &str) -> String {
    const MAX: usize = 28;
    if name.chars().count() <= MAX {
        name.to_string()
    } else {
        let cut: String = name.chars().take(MAX - 1).collect();
        format!("{cut}…")
    }
}

fn fill(v: Verdict) -> &'static str {
    match v {
        Verdict::Met => "#1a7f37",
        Verdict::Below => "#bf8700",
        Verdict::FarBelow => "#cf222e",
        Verdict::NoData => "#d0d7de",
    }
}

/// One row per name, one cell per day.
pub fn day_grid(
    id: &str,
    title: &str,
    days: &[String],
    rows: &[(String, Vec<(String, Verdict)>)],
) -> String {
    const NAME_W: usize = 190;
    const CELL_W: usize = 62;
    const CELL_H: usize = 18;
    const HEAD: usize = 20;
    let width = NAME_W + CELL_W * days.len().max(1);
    let height = HEAD + CELL_H * rows.len().max(1);
    let mut desc = String::new();
    for (name, cells) in rows {
        let _ = write!(desc, "{name}: ");
        for (d, (value, _)) in days.iter().zip(cells) {
            let _ = write!(desc, "{d} {value}; ");
        }
    }
    let mut s = String::with_capacity(200 + rows.len() * days.len() * 160);
    let _ = write!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" aria-labelledby="{id}-t {id}-d" viewBox="0 0 {width} {height}" width="{width}" height="{height}" font-family="sans-serif" font-size="11"><title id="{id}-t">{}</title><desc id="{id}-d">{}</desc>"#,
        escape(title),
        escape(desc.trim_end())
    );
    for (i, d) in days.iter().enumerate() {
        let _ = write!(
            s,
            r#"<text x="{}" y="14" text-anchor="middle">{}</text>"#,
            NAME_W + CELL_W * i + CELL_W / 2,
            escape(d)
        );
    }
    for (r, (name, cells)) in rows.iter().enumerate() {
        let y = HEAD + CELL_H * r;
        let _ = write!(
            s,
            r#"<text x="0" y="{}"><title>{}</title>{}</text>"#,
            y + 13,
            escape(name),
            escape(&label(name))
        );
        for (i, (value, verdict)) in cells.iter().enumerate() {
            let x = NAME_W + CELL_W * i;
            let text_fill = if *verdict == Verdict::NoData {
                "#24292f"
            } else {
                "#ffffff"
            };
            let _ = write!(
                s,
                r#"<g><title>{} {}: {}</title><rect x="{}" y="{}" width="{}" height="{}" fill="{}"/><text x="{}" y="{}" text-anchor="middle" fill="{text_fill}">{} {}</text></g>"#,
                escape(name),
                escape(days.get(i).map_or("", String::as_str)),
                escape(value),
                x + 1,
                y + 1,
                CELL_W - 2,
                CELL_H - 2,
                fill(*verdict),
                x + CELL_W / 2,
                y + 13,
                verdict.mark(),
                escape(value.trim_end_matches(" %").trim_end_matches('%')),
            );
        }
    }
    s.push_str("</svg>");
    s
}

/// One period of the trend line.
pub struct TrendPoint {
    /// The period's full label (tooltip and description).
    pub label: String,
    /// Its short label on the axis (`W47`, `nov`, `23 nov`).
    pub axis: String,
    pub availability: Option<f64>,
    /// The figure as the reader reads it (`99,90 %`).
    pub text: String,
}

/// Width of an axis label of `chars` characters at font size 11, with the
/// gap that keeps two neighbours apart: sans-serif glyphs average about
/// 0.56 em, digits and lower case included.
fn label_width(chars: usize) -> f64 {
    chars as f64 * 6.2 + 8.0
}

/// Every how many periods an axis label fits, counting back from the
/// last (this period's is always shown): labels never overlap.
fn label_every(points: &[TrendPoint], step: f64) -> usize {
    let widest = points
        .iter()
        .map(|p| label_width(p.axis.chars().count()))
        .fold(0.0, f64::max);
    if step <= 0.0 {
        return 1;
    }
    ((widest / step).ceil() as usize).max(1)
}

/// The availability of the last periods as a line with a labelled dot
/// per period; the vertical axis spans the lowest figure to 100 %.
pub fn trend_line(id: &str, title: &str, points: &[TrendPoint]) -> String {
    const W: f64 = 720.0;
    const H: f64 = 220.0;
    const LEFT: f64 = 60.0;
    const BOTTOM: f64 = 40.0;
    const TOP: f64 = 16.0;
    let low = points
        .iter()
        .filter_map(|p| p.availability)
        .fold(1.0f64, f64::min);
    // At least half a point of range, so small changes are visible but
    // not exaggerated.
    let floor = (low - 0.001).clamp(0.0, 0.995);
    let step = if points.len() > 1 {
        (W - LEFT - 20.0) / (points.len() - 1) as f64
    } else {
        0.0
    };
    let y_of = |v: f64| TOP + (1.0 - (v - floor) / (1.0 - floor)) * (H - TOP - BOTTOM);
    let desc: Vec<String> = points
        .iter()
        .map(|p| format!("{}: {}", p.label, p.text))
        .collect();
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" aria-labelledby="{id}-t {id}-d" viewBox="0 0 {W} {H}" width="{W}" height="{H}" font-family="sans-serif" font-size="11"><title id="{id}-t">{}</title><desc id="{id}-d">{}</desc>"#,
        escape(title),
        escape(&desc.join("; "))
    );
    for (v, text) in [(1.0, "100"), (floor, "")] {
        let y = y_of(v);
        let lbl = if text.is_empty() {
            format!("{:.1}", floor * 100.0)
        } else {
            text.to_string()
        };
        let _ = write!(
            s,
            r##"<line x1="{LEFT}" x2="{}" y1="{y:.1}" y2="{y:.1}" stroke="#d0d7de"/><text x="{}" y="{:.1}" text-anchor="end">{lbl}</text>"##,
            W - 10.0,
            LEFT - 6.0,
            y + 4.0
        );
    }
    let coords: Vec<(f64, f64)> = points
        .iter()
        .enumerate()
        .filter_map(|(i, p)| p.availability.map(|v| (LEFT + step * i as f64, y_of(v))))
        .collect();
    if coords.len() > 1 {
        let path: Vec<String> = coords
            .iter()
            .map(|(x, y)| format!("{x:.1},{y:.1}"))
            .collect();
        let _ = write!(
            s,
            r##"<polyline fill="none" stroke="#0969da" stroke-width="2" points="{}"/>"##,
            path.join(" ")
        );
    }
    let every = label_every(points, step);
    for (i, p) in points.iter().enumerate() {
        let x = LEFT + step * i as f64;
        if let Some(v) = p.availability {
            let _ = write!(
                s,
                r##"<g><title>{}: {}</title><circle cx="{x:.1}" cy="{:.1}" r="4" fill="#0969da"/></g>"##,
                escape(&p.label),
                escape(&p.text),
                y_of(v)
            );
        }
        if (points.len() - 1 - i).is_multiple_of(every) {
            let _ = write!(
                s,
                r#"<text class="axis" x="{x:.1}" y="{}" text-anchor="middle">{}</text>"#,
                H - BOTTOM + 16.0,
                escape(&p.axis)
            );
        }
    }
    s.push_str("</svg>");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_in_charts_are_escaped() {
        let svg = day_grid(
            "g",
            "t",
            &["ma 23-11".into()],
            &[(
                "<script>alert(1)</script>".into(),
                vec![("99,9 %".into(), Verdict::Met)],
            )],
        );
        assert!(!svg.contains("<script>"));
        assert!(svg.contains("&lt;script&gt;"));
    }

    fn point(label: &str, axis: &str, availability: Option<f64>) -> TrendPoint {
        TrendPoint {
            label: label.into(),
            axis: axis.into(),
            availability,
            text: availability.map_or("–".into(), |a| format!("{:.2} %", a * 100.0)),
        }
    }

    /// The x of every axis label, with its text.
    fn axis_labels(svg: &str) -> Vec<(f64, String)> {
        svg.split(r#"<text class="axis" x=""#)
            .skip(1)
            .map(|rest| {
                let x = rest[..rest.find('"').unwrap()].parse().unwrap();
                let text = &rest[rest.find('>').unwrap() + 1..rest.find("</text>").unwrap()];
                (x, text.to_string())
            })
            .collect()
    }

    #[test]
    fn the_trend_has_a_dot_and_a_text_per_period_with_a_figure() {
        let svg = trend_line(
            "t",
            "trend",
            &[
                point("2026-W47", "W47", Some(0.999)),
                point("2026-W48", "W48", None),
            ],
        );
        assert_eq!(svg.matches("<circle").count(), 1);
        assert!(svg.contains("2026-W48: –"));
        let labels: Vec<String> = axis_labels(&svg).into_iter().map(|l| l.1).collect();
        assert_eq!(labels, ["W47", "W48"]);
    }

    #[test]
    fn axis_labels_are_thinned_so_that_they_never_overlap_and_the_last_stays() {
        let long: Vec<TrendPoint> = (1..=12)
            .map(|i| point(&format!("p{i}"), &format!("{i} november 2026"), Some(0.99)))
            .collect();
        let labels = axis_labels(&trend_line("t", "trend", &long));
        assert!(labels.len() < 12, "{labels:?}");
        assert_eq!(labels.last().unwrap().1, "12 november 2026");
        for pair in labels.windows(2) {
            let room = pair[1].0 - pair[0].0;
            let need = (label_width(pair[0].1.chars().count())
                + label_width(pair[1].1.chars().count()))
                / 2.0;
            assert!(room >= need, "{pair:?} overlap");
        }
        let short: Vec<TrendPoint> = (1..=12)
            .map(|i| point(&format!("p{i}"), &format!("W{i}"), Some(0.99)))
            .collect();
        assert_eq!(axis_labels(&trend_line("t", "trend", &short)).len(), 12);
    }
}
