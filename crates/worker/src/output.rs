//! The pure half of the output pipeline (spec §7.2): UTF-8 decoding across reads, splitting into
//! whole lines with the default `newline_re` implemented natively, and batching into updates.
//!
//! Bytes flow `Utf8Decoder` → `LineSplitter` → `UpdateBuffer`; the async half that sends the
//! batches lives in `reporter.rs`.

use std::time::{Duration, Instant};

use protocol::{args, LineChunk, Value};

/// The `newline_re` the stock master sends; it is the only pattern implemented.
pub(crate) const DEFAULT_NEWLINE_RE: &str =
    r"(\r\n|\r(?=.)|\033\[u|\033\[[0-9]+;[0-9]+[Hf]|\033\[2J|\x08+)";

/// Output settings from `set_worker_settings` (defaults equal the stock master's values).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct OutputSettings {
    /// Largest batch, estimated as in the stock worker.
    pub(crate) buffer_size: usize,
    /// Longest time output waits in a batch.
    pub(crate) buffer_timeout: Duration,
    /// Lines longer than this many characters are split.
    pub(crate) max_line_length: usize,
}

impl Default for OutputSettings {
    fn default() -> Self {
        OutputSettings {
            buffer_size: 64 * 1024,
            buffer_timeout: Duration::from_secs(5),
            max_line_length: 4096,
        }
    }
}

impl OutputSettings {
    /// Reads the `set_worker_settings` args; all four keys are required, as in the stock worker.
    pub(crate) fn from_args(value: &Value) -> Result<OutputSettings, String> {
        const MISSING: &str = "message did not contain obligatory settings for worker";
        let keys = [
            "buffer_size",
            "buffer_timeout",
            "newline_re",
            "max_line_length",
        ];
        if keys.iter().any(|k| args::get(value, k).is_none()) {
            return Err(MISSING.to_owned());
        }
        let bad = |e: protocol::ProtocolError| e.to_string();
        let buffer_size = args::get_u64(value, "buffer_size")
            .map_err(bad)?
            .unwrap_or(65536);
        let buffer_timeout = args::get_f64(value, "buffer_timeout")
            .map_err(bad)?
            .unwrap_or(5.0);
        let max_line_length = args::get_u64(value, "max_line_length")
            .map_err(bad)?
            .unwrap_or(4096);
        let newline_re = args::get_str(value, "newline_re")
            .map_err(bad)?
            .unwrap_or(DEFAULT_NEWLINE_RE);
        if newline_re != DEFAULT_NEWLINE_RE {
            tracing::warn!(
                newline_re,
                "only the default newline_re is implemented; using it"
            );
        }
        // Caps: a peer's numbers must not make us buffer without bound or never flush.
        Ok(OutputSettings {
            buffer_size: buffer_size.clamp(1024, 16 << 20) as usize,
            buffer_timeout: Duration::from_secs_f64(buffer_timeout.clamp(0.01, 3600.0)),
            max_line_length: max_line_length.clamp(1, 1 << 20) as usize,
        })
    }
}

/// Decodes a byte stream as UTF-8 with replacement characters, keeping a sequence split
/// between two reads for the next one.
#[derive(Debug, Default)]
pub(crate) struct Utf8Decoder {
    pending: Vec<u8>,
}

impl Utf8Decoder {
    /// Decodes the next bytes of the stream.
    pub(crate) fn decode(&mut self, bytes: &[u8]) -> String {
        let joined;
        let mut rest: &[u8] = if self.pending.is_empty() {
            bytes
        } else {
            let mut buf = std::mem::take(&mut self.pending);
            buf.extend_from_slice(bytes);
            joined = buf;
            &joined
        };
        let mut out = String::with_capacity(rest.len());
        loop {
            match std::str::from_utf8(rest) {
                Ok(text) => {
                    out.push_str(text);
                    return out;
                }
                Err(err) => {
                    let (valid, after) = rest.split_at(err.valid_up_to());
                    out.push_str(std::str::from_utf8(valid).unwrap_or_default());
                    match err.error_len() {
                        None => {
                            self.pending = after.to_vec();
                            return out;
                        }
                        Some(len) => {
                            out.push('\u{FFFD}');
                            rest = &after[len..];
                        }
                    }
                }
            }
        }
    }

    /// What is left at the end of the stream (an incomplete sequence becomes a replacement).
    pub(crate) fn finish(&mut self) -> String {
        let rest = std::mem::take(&mut self.pending);
        String::from_utf8_lossy(&rest).into_owned()
    }
}

/// Whole lines produced by a [`LineSplitter`], with the code-point count of `chunk.text`.
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct Lines {
    /// Text, offsets and times of the lines.
    pub(crate) chunk: LineChunk,
    /// Number of code points in `chunk.text`, for shifting offsets when merging.
    pub(crate) chars: usize,
}

impl Lines {
    /// Whether no line was produced.
    pub(crate) fn is_empty(&self) -> bool {
        self.chunk.text.is_empty()
    }

    /// How many lines there are.
    pub(crate) fn count(&self) -> usize {
        self.chunk.offsets.len()
    }

    fn append(&mut self, other: Lines) {
        let shift = self.chars as u64;
        self.chunk.text.push_str(&other.chunk.text);
        self.chunk
            .offsets
            .extend(other.chunk.offsets.into_iter().map(|o| o + shift));
        self.chunk.times.extend(other.chunk.times);
        self.chars += other.chars;
    }
}

/// Turns a text stream into whole lines, replacing every match of the default `newline_re`
/// with `\n` and force-splitting lines longer than `max_line_length` characters.
///
/// A possible match cut by a read boundary (a trailing `\r`, an unfinished escape sequence, a
/// run of backspaces) is kept back until more text or the end of the stream decides it.
#[derive(Debug)]
pub(crate) struct LineSplitter {
    line: String,
    line_chars: usize,
    line_time: f64,
    tail: String,
    max_line_length: usize,
}

enum Scan {
    Newline(usize),
    Literal(usize),
    Incomplete,
}

impl LineSplitter {
    /// A splitter for one stream.
    pub(crate) fn new(max_line_length: usize) -> LineSplitter {
        LineSplitter {
            line: String::new(),
            line_chars: 0,
            line_time: 0.0,
            tail: String::new(),
            max_line_length: max_line_length.max(1),
        }
    }

    /// Adds text received at `now` (epoch seconds); completed lines go to `out`.
    pub(crate) fn feed(&mut self, text: &str, now: f64, out: &mut Lines) {
        if self.tail.is_empty() {
            self.scan(text, now, false, out);
        } else {
            let mut buf = std::mem::take(&mut self.tail);
            buf.push_str(text);
            self.scan(&buf, now, false, out);
        }
    }

    /// Ends the stream: a held-back tail is resolved and a partial line gets its `\n`.
    pub(crate) fn finish(&mut self, now: f64, out: &mut Lines) {
        let tail = std::mem::take(&mut self.tail);
        self.scan(&tail, now, true, out);
        if !self.line.is_empty() {
            self.end_line(now, out);
        }
    }

    fn scan(&mut self, buf: &str, now: f64, at_end: bool, out: &mut Lines) {
        let bytes = buf.as_bytes();
        let mut run_start = 0;
        let mut i = 0;
        while i < bytes.len() {
            if !matches!(bytes[i], b'\n' | b'\r' | 0x1b | 0x08) {
                i += 1;
                continue;
            }
            self.push_literal(&buf[run_start..i], now, out);
            let scan = match bytes[i] {
                b'\n' => Scan::Newline(1),
                b'\r' => match bytes.get(i + 1) {
                    Some(b'\n') => Scan::Newline(2),
                    Some(_) => Scan::Newline(1),
                    None if at_end => Scan::Literal(1),
                    None => Scan::Incomplete,
                },
                0x08 => {
                    let run = bytes[i..].iter().take_while(|&&b| b == 0x08).count();
                    if i + run == bytes.len() && !at_end {
                        Scan::Incomplete
                    } else {
                        Scan::Newline(run)
                    }
                }
                _ => match scan_escape(&bytes[i..]) {
                    Scan::Incomplete if at_end => Scan::Literal(1),
                    other => other,
                },
            };
            match scan {
                Scan::Newline(len) => {
                    self.end_line(now, out);
                    i += len;
                }
                Scan::Literal(len) => {
                    self.push_literal(&buf[i..i + len], now, out);
                    i += len;
                }
                Scan::Incomplete => {
                    self.tail = buf[i..].to_owned();
                    return;
                }
            }
            run_start = i;
        }
        self.push_literal(&buf[run_start..], now, out);
    }

    fn push_literal(&mut self, mut text: &str, now: f64, out: &mut Lines) {
        while !text.is_empty() {
            if self.line.is_empty() {
                self.line_time = now;
            }
            let room = self.max_line_length - self.line_chars;
            // Byte index after `room` characters, if the text has more than that.
            let split = text.char_indices().nth(room).map(|(index, _)| index);
            match split {
                None => {
                    self.line_chars += char_count(text);
                    self.line.push_str(text);
                    return;
                }
                Some(index) => {
                    self.line.push_str(&text[..index]);
                    self.line_chars += room;
                    self.end_line(now, out);
                    text = &text[index..];
                }
            }
        }
    }

    fn end_line(&mut self, now: f64, out: &mut Lines) {
        if self.line.is_empty() {
            self.line_time = now;
        }
        out.chunk.text.push_str(&self.line);
        out.chars += self.line_chars;
        out.chunk.offsets.push(out.chars as u64);
        out.chunk.text.push('\n');
        out.chars += 1;
        out.chunk.times.push(self.line_time);
        self.line.clear();
        self.line_chars = 0;
    }
}

fn char_count(text: &str) -> usize {
    text.bytes().filter(|&b| (b & 0xc0) != 0x80).count()
}

/// Matches `\x1b[u`, `\x1b[2J` and `\x1b[N;NH` / `\x1b[N;Nf` at the start of `bytes`.
fn scan_escape(bytes: &[u8]) -> Scan {
    const MAX_DIGITS: usize = 32;
    let digits = |from: usize| {
        bytes[from.min(bytes.len())..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count()
    };
    match bytes.get(1) {
        None => return Scan::Incomplete,
        Some(b'[') => {}
        Some(_) => return Scan::Literal(1),
    }
    match bytes.get(2) {
        None => return Scan::Incomplete,
        Some(b'u') => return Scan::Newline(3),
        Some(_) => {}
    }
    let first = digits(2);
    if first == 0 || first > MAX_DIGITS {
        return Scan::Literal(1);
    }
    let after_first = 2 + first;
    match bytes.get(after_first) {
        None => Scan::Incomplete,
        Some(b'J') if &bytes[2..after_first] == b"2" => Scan::Newline(after_first + 1),
        Some(b';') => {
            let second = digits(after_first + 1);
            let end = after_first + 1 + second;
            match bytes.get(end) {
                None if second <= MAX_DIGITS => Scan::Incomplete,
                Some(b'H' | b'f') if second > 0 => Scan::Newline(end + 1),
                _ => Scan::Literal(1),
            }
        }
        Some(_) => Scan::Literal(1),
    }
}

/// Which output stream a line chunk belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Stream {
    /// The command's standard output.
    Stdout,
    /// The command's standard error.
    Stderr,
    /// Worker-written header lines.
    Header,
    /// A watched logfile, by its name.
    Log(String),
}

/// One batch of `update` pairs.
pub(crate) type Batch = Vec<(String, Value)>;

enum Item {
    Lines(Stream, Lines),
    Other(String, Value),
}

/// Collects updates into batches: consecutive chunks of one stream are merged, and a batch is
/// cut when the next item would overflow `buffer_size` (estimated as text length + 8 bytes per
/// offset and per time + 20 per other key, like the stock worker) or `buffer_timeout` after its
/// first item.
pub(crate) struct UpdateBuffer {
    items: Vec<Item>,
    size: usize,
    first_at: Option<Instant>,
    buffer_size: usize,
    buffer_timeout: Duration,
}

impl UpdateBuffer {
    /// An empty buffer with the given settings.
    pub(crate) fn new(settings: &OutputSettings) -> UpdateBuffer {
        UpdateBuffer {
            items: Vec::new(),
            size: 0,
            first_at: None,
            buffer_size: settings.buffer_size,
            buffer_timeout: settings.buffer_timeout,
        }
    }

    /// Adds lines of a stream; returns the batches that became ready.
    pub(crate) fn push_lines(&mut self, stream: Stream, lines: Lines, now: Instant) -> Vec<Batch> {
        if lines.is_empty() {
            return Vec::new();
        }
        let size =
            lines.chunk.text.len() + 8 * (lines.chunk.offsets.len() + lines.chunk.times.len());
        let mut ready = self.make_room(size);
        match self.items.last_mut() {
            Some(Item::Lines(last, buffered)) if *last == stream => buffered.append(lines),
            _ => self.items.push(Item::Lines(stream, lines)),
        }
        self.added(size, now, &mut ready);
        ready
    }

    /// Adds a non-text update (`rc`, `elapsed`, `files`, …); returns the batches that became ready.
    pub(crate) fn push(&mut self, key: &str, value: Value, now: Instant) -> Vec<Batch> {
        let mut ready = self.make_room(20);
        self.items.push(Item::Other(key.to_owned(), value));
        self.added(20, now, &mut ready);
        ready
    }

    /// When the buffered batch must be sent, if anything is buffered.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        self.first_at.map(|first| first + self.buffer_timeout)
    }

    /// Takes everything buffered as one batch (empty if nothing is buffered).
    pub(crate) fn take(&mut self) -> Batch {
        self.size = 0;
        self.first_at = None;
        std::mem::take(&mut self.items)
            .into_iter()
            .map(|item| match item {
                Item::Lines(Stream::Stdout, lines) => {
                    ("stdout".to_owned(), lines.chunk.into_value())
                }
                Item::Lines(Stream::Stderr, lines) => {
                    ("stderr".to_owned(), lines.chunk.into_value())
                }
                Item::Lines(Stream::Header, lines) => {
                    ("header".to_owned(), lines.chunk.into_value())
                }
                Item::Lines(Stream::Log(name), lines) => (
                    "log".to_owned(),
                    Value::Array(vec![Value::from(name), lines.chunk.into_value()]),
                ),
                Item::Other(key, value) => (key, value),
            })
            .collect()
    }

    fn make_room(&mut self, size: usize) -> Vec<Batch> {
        if !self.items.is_empty() && self.size + size > self.buffer_size {
            vec![self.take()]
        } else {
            Vec::new()
        }
    }

    fn added(&mut self, size: usize, now: Instant, ready: &mut Vec<Batch>) {
        self.size += size;
        self.first_at.get_or_insert(now);
        if self.size >= self.buffer_size {
            ready.push(self.take());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `reads` to a splitter (max line length 10), then finishes; renders each line as
    /// `text|offset`, joined by spaces, with control characters escaped.
    fn split(reads: &[&str]) -> String {
        let mut splitter = LineSplitter::new(10);
        let mut out = Lines::default();
        for (i, read) in reads.iter().enumerate() {
            splitter.feed(read, i as f64, &mut out);
        }
        splitter.finish(99.0, &mut out);
        assert_eq!(out.chunk.offsets.len(), out.chunk.times.len());
        assert_eq!(out.chars, out.chunk.text.chars().count());
        let chars: Vec<char> = out.chunk.text.chars().collect();
        for &offset in &out.chunk.offsets {
            assert_eq!(chars[offset as usize], '\n');
        }
        out.chunk
            .text
            .split_terminator('\n')
            .zip(&out.chunk.offsets)
            .map(|(line, offset)| format!("{}|{offset}", line.escape_debug()))
            .collect::<Vec<_>>()
            .join(" ")
    }

    #[test]
    fn newlines_and_partial_lines() {
        assert_eq!(split(&["a\nb", "c\n", "partial"]), "a|1 bc|4 partial|12");
        assert_eq!(split(&["x\r\ny\r", "\nz"]), "x|1 y|3 z|5");
        assert_eq!(split(&["10%\r20%\r", "30%"]), "10%|3 20%|7 30%|11");
        assert_eq!(split(&["end\r"]), "end\\r|4");
        assert_eq!(split(&["a\x08\x08", "\x08b\n"]), "a|1 b|3");
        assert_eq!(
            split(&["a\x1b[u", "b\x1b[2J", "c\x1b[12;", "3Hd\x1b[1;2fe\n"]),
            "a|1 b|3 c|5 d|7 e|9"
        );
        assert_eq!(split(&["\x1b[3Jx\x1bq\n"]), "\\u{1b}[3Jx\\u{1b}q|7");
        assert_eq!(split(&["\x1b["]), "\\u{1b}[|2");
        assert_eq!(split(&["\n\n"]), "|0 |1");
    }

    #[test]
    fn long_lines_are_split_and_offsets_count_code_points() {
        assert_eq!(split(&["0123456789abc\n"]), "0123456789|10 abc|14");
        assert_eq!(split(&["ééééé", "ééééééé\n"]), "éééééééééé|10 éé|13");
    }

    #[test]
    fn line_times_are_first_character_times() {
        let mut splitter = LineSplitter::new(100);
        let mut out = Lines::default();
        splitter.feed("ab", 1.0, &mut out);
        splitter.feed("c\nd\n", 2.0, &mut out);
        assert_eq!(out.chunk.times, [1.0, 2.0]);
    }

    #[test]
    fn utf8_across_reads() {
        let mut decoder = Utf8Decoder::default();
        let bytes = "é€".as_bytes();
        let mut text = decoder.decode(&bytes[..1]);
        text += &decoder.decode(&bytes[1..3]);
        text += &decoder.decode(&bytes[3..]);
        text += &decoder.decode(b"\xff!");
        text += &decoder.decode(b"\xe2\x82");
        text += &decoder.finish();
        assert_eq!(text, "é€\u{FFFD}!\u{FFFD}");
    }

    fn lines(text: &str) -> Lines {
        let mut splitter = LineSplitter::new(4096);
        let mut out = Lines::default();
        splitter.feed(text, 1.0, &mut out);
        out
    }

    fn keys(batch: &Batch) -> String {
        batch
            .iter()
            .map(|(k, _)| k.as_str())
            .collect::<Vec<_>>()
            .join(",")
    }

    #[test]
    fn batching_merges_and_cuts() {
        let settings = OutputSettings {
            buffer_size: 100,
            ..OutputSettings::default()
        };
        let mut buffer = UpdateBuffer::new(&settings);
        let now = Instant::now();
        assert!(buffer
            .push_lines(Stream::Stdout, lines("a\n"), now)
            .is_empty());
        assert!(buffer
            .push_lines(Stream::Stdout, lines("b\n"), now)
            .is_empty());
        assert!(buffer
            .push_lines(Stream::Stderr, lines("c\n"), now)
            .is_empty());
        assert!(buffer.push("rc", Value::from(0), now).is_empty());
        assert_eq!(buffer.deadline(), Some(now + settings.buffer_timeout));
        let batch = buffer.take();
        assert_eq!(keys(&batch), "stdout,stderr,rc");
        let stdout = LineChunk::from_value(&batch[0].1).unwrap();
        assert_eq!(
            (stdout.text.as_str(), stdout.offsets),
            ("a\nb\n", vec![1, 3])
        );
        assert_eq!(buffer.deadline(), None);
        // 60 + 16 bytes fit; the next 76 would not: the first batch is cut before it.
        let sixty = "x".repeat(59) + "\n";
        assert!(buffer
            .push_lines(Stream::Stdout, lines(&sixty), now)
            .is_empty());
        let ready = buffer.push_lines(Stream::Stdout, lines(&sixty), now);
        assert_eq!(ready.len(), 1);
        // A chunk reaching buffer_size on its own is sent at once.
        let big = "y".repeat(199) + "\n";
        let ready = buffer.push_lines(Stream::Stdout, lines(&big), now);
        assert_eq!(
            ready.iter().map(keys).collect::<Vec<_>>(),
            ["stdout", "stdout"]
        );
        assert!(buffer.take().is_empty());
    }

    #[test]
    fn settings_need_all_keys() {
        let full = args::make_map([
            ("buffer_size", Value::from(1000)),
            ("buffer_timeout", Value::from(1)),
            ("newline_re", Value::from(DEFAULT_NEWLINE_RE)),
            ("max_line_length", Value::from(80)),
        ]);
        let settings = OutputSettings::from_args(&full).unwrap();
        assert_eq!((settings.buffer_size, settings.max_line_length), (1024, 80));
        let partial = args::make_map([("buffer_size", Value::from(1000))]);
        assert!(OutputSettings::from_args(&partial).is_err());
    }
}
