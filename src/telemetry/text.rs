//! The exposition formats (Prometheus text 0.0.4 and OpenMetrics 1.0) for
//! the per-check and per-service tables, written line by line into chunks.
//! Numbers are formatted as prometheus-client formats them (itoa, dtoa), so
//! these series read exactly like the registry's.

/// Which exposition format a scrape asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text,
    OpenMetrics,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Gauge,
    Counter,
    Histogram,
}

/// A metric family: its name (without `_total` for counters), help text
/// and type.
#[derive(Debug)]
pub struct Desc {
    pub name: &'static str,
    pub help: &'static str,
    pub kind: Kind,
}

impl Desc {
    /// `# HELP` and `# TYPE` lines. In the text format a counter's family
    /// is named with its `_total`; in OpenMetrics without it.
    pub fn header(&self, out: &mut String, format: Format) {
        let total = self.kind == Kind::Counter && format == Format::Text;
        for (what, tail) in [("# HELP ", self.help), ("# TYPE ", self.type_name())] {
            out.push_str(what);
            out.push_str(self.name);
            if total {
                out.push_str("_total");
            }
            out.push(' ');
            out.push_str(tail);
            out.push('\n');
        }
    }

    fn type_name(&self) -> &'static str {
        match self.kind {
            Kind::Gauge => "gauge",
            Kind::Counter => "counter",
            Kind::Histogram => "histogram",
        }
    }

    /// Start a sample line: the series name and its labels (`labels` is a
    /// pre-rendered `a="x",b="y"`; `extra` one more label, or empty).
    pub fn start(&self, out: &mut String, suffix: &str, labels: &str, extra: &str) {
        out.push_str(self.name);
        if self.kind == Kind::Counter {
            out.push_str("_total");
        }
        out.push_str(suffix);
        out.push('{');
        out.push_str(labels);
        if !extra.is_empty() {
            if !labels.is_empty() {
                out.push(',');
            }
            out.push_str(extra);
        }
        out.push_str("} ");
    }

    pub fn int(&self, out: &mut String, labels: &str, extra: &str, v: i64) {
        self.start(out, "", labels, extra);
        push_int(out, v);
        out.push('\n');
    }

    pub fn float(&self, out: &mut String, labels: &str, extra: &str, v: f64) {
        self.start(out, "", labels, extra);
        push_float(out, v);
        out.push('\n');
    }
}

pub fn push_int(out: &mut String, v: impl itoa::Integer) {
    out.push_str(itoa::Buffer::new().format(v));
}

pub fn push_float(out: &mut String, v: f64) {
    if v.is_finite() {
        out.push_str(dtoa::Buffer::new().format_finite(v));
    } else if v.is_nan() {
        out.push_str("NaN");
    } else if v > 0.0 {
        out.push_str("+Inf");
    } else {
        out.push_str("-Inf");
    }
}

/// `name="value"` pairs, values escaped, joined by commas: rendered once
/// per series owner and copied into every line.
pub fn labels(pairs: &[(&str, &str)]) -> Box<str> {
    let mut out = String::new();
    for (i, (name, value)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(name);
        out.push_str("=\"");
        for c in value.chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '"' => out.push_str("\\\""),
                '\n' => out.push_str("\\n"),
                c => out.push(c),
            }
        }
        out.push('"');
    }
    out.into_boxed_str()
}

/// `name="value"` for each of a closed set of values, made once.
pub fn one_label<const N: usize>(name: &str, values: [&str; N]) -> [Box<str>; N] {
    values.map(|v| labels(&[(name, v)]))
}

/// The `le` label of a histogram bound: Go's float formatting in the text
/// format (`1`), dtoa's in OpenMetrics (`1.0`), as prometheus-client
/// writes them.
pub fn le_label(bound: f64, format: Format) -> Box<str> {
    let v = match format {
        Format::Text if bound.fract() == 0.0 && bound.abs() < 1e6 => {
            itoa::Buffer::new().format(bound as i64).to_string()
        }
        Format::Text => bound.to_string(),
        Format::OpenMetrics => dtoa::Buffer::new().format(bound).to_string(),
    };
    labels(&[("le", &v)])
}

/// Collects output into chunks of about `size` bytes and hands each one
/// on, so that a scrape of tens of megabytes is never held whole.
pub struct Chunks<'a> {
    pub buf: String,
    size: usize,
    emit: &'a mut dyn FnMut(String) -> bool,
    /// The receiver went away (the scraper hung up): stop rendering.
    pub closed: bool,
}

impl<'a> Chunks<'a> {
    pub fn new(size: usize, emit: &'a mut dyn FnMut(String) -> bool) -> Chunks<'a> {
        Chunks {
            buf: String::with_capacity(size + size / 4),
            size,
            emit,
            closed: false,
        }
    }

    /// Hand the chunk on once it is full.
    pub fn maybe_flush(&mut self) {
        if self.buf.len() >= self.size {
            self.flush();
        }
    }

    pub fn flush(&mut self) {
        if self.buf.is_empty() || self.closed {
            self.buf.clear();
            return;
        }
        let next = String::with_capacity(self.size + self.size / 4);
        let full = std::mem::replace(&mut self.buf, next);
        if !(self.emit)(full) {
            self.closed = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(
            &*labels(&[("service", "a\"b\\c\nd"), ("kind", "http")]),
            r#"service="a\"b\\c\nd",kind="http""#
        );
    }

    #[test]
    fn le_labels_follow_each_format() {
        assert_eq!(&*le_label(1.0, Format::Text), "le=\"1\"");
        assert_eq!(&*le_label(1.0, Format::OpenMetrics), "le=\"1.0\"");
        assert_eq!(&*le_label(0.005, Format::Text), "le=\"0.005\"");
        assert_eq!(&*le_label(2.5, Format::OpenMetrics), "le=\"2.5\"");
    }

    #[test]
    fn counters_carry_total_on_samples_and_only_in_text_headers() {
        let d = Desc {
            name: "x_probes",
            help: "Probes",
            kind: Kind::Counter,
        };
        let mut text = String::new();
        d.header(&mut text, Format::Text);
        d.int(&mut text, "a=\"1\"", "result=\"success\"", 3);
        assert_eq!(
            text,
            "# HELP x_probes_total Probes\n# TYPE x_probes_total counter\nx_probes_total{a=\"1\",result=\"success\"} 3\n"
        );
        let mut om = String::new();
        d.header(&mut om, Format::OpenMetrics);
        assert_eq!(om, "# HELP x_probes Probes\n# TYPE x_probes counter\n");
    }

    #[test]
    fn floats_read_as_prometheus_client_writes_them() {
        let mut s = String::new();
        for v in [0.25, 1.0, f64::INFINITY, f64::NAN, 1e-7] {
            push_float(&mut s, v);
            s.push(' ');
        }
        assert_eq!(s, "0.25 1.0 +Inf NaN 1e-7 ");
    }

    #[test]
    fn chunks_stop_when_the_receiver_is_gone() {
        let mut got = Vec::new();
        let mut emit = |c: String| {
            got.push(c.len());
            got.len() < 2
        };
        let mut w = Chunks::new(10, &mut emit);
        for _ in 0..5 {
            w.buf.push_str("0123456789ab");
            w.maybe_flush();
        }
        w.flush();
        assert!(w.closed);
        drop(w);
        assert_eq!(got, vec![12, 12]);
    }
}
