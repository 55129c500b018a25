//! The report as one self-contained HTML page (askama template
//! `templates/report/management.html`, compiled in): inline CSS, inline
//! SVG charts, every text escaped.

use askama::Template;

use super::charts;
use super::model::Report;
use super::text::Texts;
use super::view::View;

#[derive(Template)]
#[template(path = "report/management.html")]
struct Page<'a> {
    v: &'a View,
    t: &'static Texts,
    trend: String,
    daily_services: String,
    daily_suppliers: String,
}

/// The page of `report`.
pub fn render(report: &Report) -> Result<String, askama::Error> {
    let v = View::of(report);
    let t = v.t;
    let trend: Vec<charts::TrendPoint> = report
        .trend
        .iter()
        .zip(&v.trend)
        .zip(&v.trend_axis)
        .map(|((p, (label, text)), axis)| charts::TrendPoint {
            label: label.clone(),
            axis: axis.clone(),
            availability: p.availability,
            text: text.clone(),
        })
        .collect();
    let services: Vec<_> = v
        .services
        .iter()
        .map(|s| (format!("{} / {}", s.name, s.sla), s.daily.clone()))
        .collect();
    let suppliers: Vec<_> = v
        .suppliers
        .iter()
        .map(|s| (s.supplier.clone(), s.daily.clone()))
        .collect();
    Page {
        trend: charts::trend_line("trend", t.trend_title, &trend),
        daily_services: charts::day_grid("days-services", t.daily_services, &v.days, &services),
        daily_suppliers: charts::day_grid("days-suppliers", t.daily_suppliers, &v.days, &suppliers),
        v: &v,
        t,
    }
    .render()
}
