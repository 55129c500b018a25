//! The report as Markdown, for chat and tickets: the summary, the service
//! and supplier tables and the incidents, with the same wording and
//! figures as the HTML. Text from the configuration is escaped so a name
//! cannot break a table or inject markup.

use std::fmt::Write as _;

use super::model::Report;
use super::view::View;

/// Markdown-inert text on one line: HTML and Markdown punctuation are
/// backslash-escaped (`<` as `&lt;`, which every renderer shows as text).
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '\\' | '`' | '*' | '_' | '[' | ']' | '|' | '#' | '!' | '~' => {
                out.push('\\');
                out.push(c);
            }
            '\n' | '\r' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

pub fn render(report: &Report) -> String {
    let v = View::of(report);
    let t = v.t;
    let mut s = String::new();
    let _ = writeln!(s, "# {}\n", escape(&v.title));
    let _ = writeln!(s, "{} · {} {}\n", v.period, t.generated, v.generated);
    let _ = writeln!(s, "## {}\n", t.summary);
    for h in &v.headlines {
        let _ = writeln!(s, "- {}", escape(h));
    }
    if v.missed_names.is_empty() {
        let _ = writeln!(s, "- ✓ {}", t.nothing_missed);
    } else {
        let names: Vec<String> = v.missed_names.iter().map(|n| escape(n)).collect();
        let _ = writeln!(s, "- ✗ **{}:** {}", t.missed_list, names.join(", "));
    }
    let _ = writeln!(s, "\n## {}\n", t.per_service);
    let _ = writeln!(
        s,
        "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
        t.service,
        t.supplier,
        t.sla,
        t.objective,
        t.availability,
        t.result,
        t.down_inside,
        t.incident_count,
        t.latency_p95,
        t.change
    );
    let _ = writeln!(s, "|---|---|---|--:|--:|---|--:|--:|--:|--:|");
    for x in &v.services {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} {} | {} | {} | {} | {} |",
            escape(&x.name),
            escape(&x.supplier),
            escape(&x.sla),
            x.objective,
            x.availability,
            x.verdict.mark(),
            x.result,
            x.down,
            x.incidents,
            x.p95,
            x.change
        );
    }
    let _ = writeln!(s, "\n## {}\n", t.per_supplier);
    let _ = writeln!(
        s,
        "| {} | {} | {} | {} | {} | {} |",
        t.supplier, t.services_met, t.availability, t.down_inside, t.incident_count, t.change
    );
    let _ = writeln!(s, "|---|--:|--:|--:|--:|--:|");
    for x in &v.suppliers {
        let _ = writeln!(
            s,
            "| {} | {} | {} {} | {} | {} | {} |",
            escape(&x.supplier),
            x.met,
            x.verdict.mark(),
            x.availability,
            x.down,
            x.incidents,
            x.change
        );
    }
    let _ = writeln!(s, "\n## {}\n", t.incidents_title);
    if v.incidents.is_empty() {
        let _ = writeln!(s, "{}", t.no_incidents);
    } else {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} |",
            t.service, t.start, t.end, t.duration, t.hours, t.cause
        );
        let _ = writeln!(s, "|---|---|---|--:|---|---|");
        for i in &v.incidents {
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} | {} |",
                escape(&i.service),
                i.start,
                i.end,
                i.duration,
                i.hours,
                escape(&i.cause)
            );
        }
    }
    let _ = writeln!(s, "\n## {}\n", t.maintenance_title);
    if v.maintenance.is_empty() {
        let _ = writeln!(s, "{}", t.no_maintenance);
    }
    for m in &v.maintenance {
        let _ = writeln!(
            s,
            "- {} {} – {}: {} ({})",
            escape(&m.reference),
            m.start,
            m.end,
            escape(&m.description),
            m.effect
        );
    }
    let _ = writeln!(s, "\n## {}\n", t.migrations_title);
    if v.migrations.is_empty() {
        let _ = writeln!(s, "{}", t.no_migrations);
    }
    for m in &v.migrations {
        for p in &m.phases {
            let _ = writeln!(
                s,
                "**{}** — {}: {}\n",
                escape(&m.caption),
                p.heading,
                p.overall
            );
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} |",
                t.measure, t.before, t.after, t.verdict, t.test
            );
            let _ = writeln!(s, "|---|--:|--:|---|---|");
            for r in &p.measures {
                let _ = writeln!(
                    s,
                    "| {}{} | {} | {} | {} | {} |",
                    if r.check { "↳ " } else { "" },
                    escape(&r.label),
                    r.before,
                    r.after,
                    r.verdict,
                    escape(&r.test)
                );
            }
            let _ = writeln!(s);
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_cannot_break_a_table_or_inject_markup() {
        assert_eq!(escape("a|b"), "a\\|b");
        assert_eq!(escape("<img src=x>"), "&lt;img src=x&gt;");
        assert_eq!(escape("[x](javascript:1)"), "\\[x\\](javascript:1)");
    }
}
