//! The system's span timings, read back from its log.
//!
//! With `ALPESPARTNERS_SPAN_TIMES=1` the example logs one line when a span closes, ending in
//! `close time.busy=… time.idle=…`. The span's path (`request{…}:command{name="…"}:commit`)
//! says which hop it was; busy + idle is the span's wall-clock time.

use std::collections::BTreeMap;
use std::time::Duration;

/// Span timings by hop: the path of span names, each with its `name` or `consumer` field
/// (`request › command CrearReserva › commit`).
pub type SpanTimes = BTreeMap<String, Vec<Duration>>;

/// Reads every span-close line of `log` into `times`.
pub fn collect(log: &str, times: &mut SpanTimes) {
    for line in log.lines() {
        if let Some((hop, took)) = parse_close(line) {
            times.entry(hop).or_default().push(took);
        }
    }
}

/// The hop and the wall-clock time of one span-close line (`None` for any other line).
pub fn parse_close(line: &str) -> Option<(String, Duration)> {
    let line = strip_ansi(line);
    let (head, timing) = line.split_once(" close time.busy=")?;
    let (busy, idle) = timing.split_once(" time.idle=")?;
    let took = duration(busy.trim())? + duration(idle.trim())?;
    // `<timestamp> <LEVEL> <path>: <target>:` — the path starts after the level.
    let after_level = ["TRACE ", "DEBUG ", " INFO ", " WARN ", "ERROR "]
        .iter()
        .find_map(|level| head.split_once(level).map(|(_, rest)| rest))?;
    let hop = span_path(after_level.trim_start())?;
    Some((hop, took))
}

/// `a{x=1}:b{name="N"}:c: target:` → `a › b N › c`.
fn span_path(text: &str) -> Option<String> {
    let mut segments = Vec::new();
    let mut rest = text;
    loop {
        let end = rest.find(['{', ':'])?;
        let name = &rest[..end];
        if name.is_empty() || name.contains(' ') {
            return None;
        }
        let mut label = name.to_string();
        rest = &rest[end..];
        if let Some(inner) = rest.strip_prefix('{') {
            let close = closing_brace(inner)?;
            if let Some(value) =
                field(&inner[..close], "name").or_else(|| field(&inner[..close], "consumer"))
            {
                label = format!("{label} {value}");
            }
            rest = &inner[close + 1..];
        }
        segments.push(label);
        rest = rest.strip_prefix(':')?;
        if rest.starts_with(' ') {
            return Some(segments.join(" › "));
        }
    }
}

/// The index of the `}` that closes a span's fields (quoted values may hold braces).
fn closing_brace(fields: &str) -> Option<usize> {
    let mut quoted = false;
    let mut escaped = false;
    for (index, c) in fields.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            '}' if !quoted => return Some(index),
            _ => {}
        }
    }
    None
}

/// The value of `key=value` or `key="value"` among a span's fields.
fn field<'a>(fields: &'a str, key: &str) -> Option<&'a str> {
    let prefix = format!("{key}=");
    let start = fields
        .match_indices(&prefix)
        .find(|(index, _)| *index == 0 || fields[..*index].ends_with(' '))?
        .0
        + prefix.len();
    let value = &fields[start..];
    match value.strip_prefix('"') {
        Some(quoted) => quoted.split('"').next(),
        None => value.split(' ').next(),
    }
}

/// `512µs`, `1.25ms`, `3.0s`, `870ns` as a duration.
fn duration(text: &str) -> Option<Duration> {
    let split = text.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
    let (number, unit) = text.split_at(split);
    let number: f64 = number.parse().ok()?;
    let seconds = match unit {
        "ns" => number / 1e9,
        "µs" | "us" => number / 1e6,
        "ms" => number / 1e3,
        "s" => number,
        _ => return None,
    };
    Duration::try_from_secs_f64(seconds).ok()
}

/// The text without terminal colour codes (`ESC [ … m`).
fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const COMMIT: &str = "2026-11-29T18:50:00.123456Z DEBUG request{method=POST \
        uri=/vuelos/reserva version=HTTP/1.1}:command{name=\"CrearReserva\" \
        correlation_id=\"a}b\"}:commit: seedwork::uow::unit_of_work: close time.busy=512µs \
        time.idle=20.5µs";

    #[test]
    fn a_close_line_gives_its_path_and_wall_clock_time() {
        let (hop, took) = parse_close(COMMIT).unwrap();
        assert_eq!(hop, "request › command CrearReserva › commit");
        assert_eq!(took, Duration::from_nanos(532_500));
    }

    #[test]
    fn colour_codes_and_consumer_fields_are_read() {
        let line = "\u{1b}[2m2026-11-29T18:50:00Z\u{1b}[0m \u{1b}[34mDEBUG\u{1b}[0m \
            \u{1b}[1mmessages\u{1b}[0m\u{1b}[1m{\u{1b}[0mconsumer=\"sub-x\" count=3\u{1b}[1m}\
            \u{1b}[0m\u{1b}[2m:\u{1b}[0m \u{1b}[2mseedwork::application::consume\u{1b}[0m\
            \u{1b}[2m:\u{1b}[0m close time.busy=1.50ms time.idle=2.00s";
        let (hop, took) = parse_close(line).unwrap();
        assert_eq!(hop, "messages sub-x");
        assert_eq!(took, Duration::from_micros(2_001_500));
    }

    #[test]
    fn other_lines_are_not_timings() {
        assert_eq!(parse_close("2026 INFO seedwork: started"), None);
        assert_eq!(
            parse_close("2026 DEBUG a: t: close time.busy=1xs time.idle=1ms"),
            None
        );
        let mut times = SpanTimes::new();
        collect(&format!("noise\n{COMMIT}\n{COMMIT}\n"), &mut times);
        assert_eq!(times.len(), 1);
        assert_eq!(times["request › command CrearReserva › commit"].len(), 2);
    }
}
