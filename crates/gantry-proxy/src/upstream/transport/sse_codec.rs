//! An incremental decoder for server-sent events (the `text/event-stream` format).
//!
//! Bytes go in as they arrive, in chunks of any size; events come out once their blank line
//! has been seen. Parsing follows the WHATWG rules: lines end in `\n`, `\r\n` or `\r` (even
//! when the two bytes of a `\r\n` land in different chunks), `data:` lines of one event are
//! joined with `\n`, a single space after the colon is dropped, lines starting with `:` are
//! comments, and a line without a colon is a field with an empty value.
//!
//! Unlike a browser, the decoder also reports events whose data is empty when they carry an
//! `id` or `retry` (the 2025-11-25 "priming" event is exactly that): the transport needs the
//! id to resume the stream, even though the event holds no message.
//!
//! Memory is bounded: an event whose data grows past the limit is reported once as
//! [`EventTooLarge`] and the rest of it is skipped without being stored.

use std::collections::VecDeque;
use std::collections::vec_deque::Drain;

/// Longest field name plus colon and space we allow on top of the data limit for one line.
const LINE_SLACK: usize = 64;

/// One dispatched event.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct SseEvent {
    /// The `event:` field, if the event had one.
    pub(crate) event: Option<String>,
    /// The `data:` lines joined with `\n`; empty for a priming event.
    pub(crate) data: String,
    /// The `id:` field, if the event had one (an empty value resets the last event id).
    pub(crate) id: Option<String>,
    /// The `retry:` field in milliseconds, if the event had a valid one.
    pub(crate) retry: Option<u64>,
}

/// An event's data went past the size limit; its content was dropped.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("a server-sent event is larger than the limit of {limit} bytes")]
pub(crate) struct EventTooLarge {
    /// The limit that was crossed.
    pub(crate) limit: usize,
    /// The event's `id:`, if it came before the limit was crossed.
    pub(crate) id: Option<String>,
}

/// What [`SseDecoder::feed`] yields.
pub(crate) type SseItem = Result<SseEvent, EventTooLarge>;

/// The decoder state for one stream.
#[derive(Debug)]
pub(crate) struct SseDecoder {
    max: usize,
    /// The incomplete line carried over from the previous chunk.
    line: Vec<u8>,
    /// The line being carried over is already too long: drop bytes until its end.
    line_overflow: bool,
    /// The last chunk ended in `\r`: a `\n` at the start of the next one belongs to it.
    skip_lf: bool,
    /// No line has been completed yet (a UTF-8 BOM may precede the first one).
    at_start: bool,
    /// Fields of the event being built.
    data: Vec<u8>,
    has_data: bool,
    event: Option<String>,
    id: Option<String>,
    retry: Option<u64>,
    /// The event being built crossed the limit and was reported: skip to its end.
    oversized: bool,
    ready: VecDeque<SseItem>,
}

// === impl SseDecoder ===

impl SseDecoder {
    /// A decoder that refuses events with more than `max_event_bytes` of data.
    pub(crate) fn new(max_event_bytes: usize) -> SseDecoder {
        SseDecoder {
            max: max_event_bytes,
            line: Vec::new(),
            line_overflow: false,
            skip_lf: false,
            at_start: true,
            data: Vec::new(),
            has_data: false,
            event: None,
            id: None,
            retry: None,
            oversized: false,
            ready: VecDeque::new(),
        }
    }

    /// Decodes one chunk and returns the events it completed, in order.
    pub(crate) fn feed(&mut self, mut chunk: &[u8]) -> Drain<'_, SseItem> {
        if self.skip_lf && !chunk.is_empty() {
            if chunk[0] == b'\n' {
                chunk = &chunk[1..];
            }
            self.skip_lf = false;
        }
        while !chunk.is_empty() {
            let Some(end) = chunk.iter().position(|&b| b == b'\n' || b == b'\r') else {
                self.carry(chunk);
                break;
            };
            let mut next = end + 1;
            if chunk[end] == b'\r' {
                match chunk.get(next) {
                    Some(b'\n') => next += 1,
                    Some(_) => {}
                    None => self.skip_lf = true,
                }
            }
            if self.line_overflow {
                self.line_overflow = false;
                self.line.clear();
            } else if self.line.is_empty() {
                if end > self.max + LINE_SLACK {
                    self.overflow();
                } else {
                    self.line_done(&chunk[..end]);
                }
            } else if self.line.len() + end > self.max + LINE_SLACK {
                self.line.clear();
                self.overflow();
            } else {
                let mut line = std::mem::take(&mut self.line);
                line.extend_from_slice(&chunk[..end]);
                self.line_done(&line);
                line.clear();
                self.line = line;
            }
            chunk = &chunk[next..];
        }
        self.ready.drain(..)
    }

    /// Keeps the start of a line that continues in the next chunk, within bounds.
    fn carry(&mut self, part: &[u8]) {
        if self.line_overflow {
            return;
        }
        if self.line.len() + part.len() > self.max + LINE_SLACK {
            self.line = Vec::new();
            self.line_overflow = true;
            self.overflow();
        } else {
            self.line.extend_from_slice(part);
        }
    }

    /// Marks the current event as too large and reports it once.
    fn overflow(&mut self) {
        if !self.oversized {
            self.oversized = true;
            self.data = Vec::new();
            self.ready.push_back(Err(EventTooLarge {
                limit: self.max,
                id: self.id.clone(),
            }));
        }
    }

    fn line_done(&mut self, mut line: &[u8]) {
        if self.at_start {
            self.at_start = false;
            line = line.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(line);
        }
        if line.is_empty() {
            self.dispatch();
            return;
        }
        if line[0] == b':' || self.oversized {
            return;
        }
        let (name, value) = match line.iter().position(|&b| b == b':') {
            Some(i) => {
                let v = &line[i + 1..];
                (&line[..i], v.strip_prefix(b" ").unwrap_or(v))
            }
            None => (line, &[][..]),
        };
        match name {
            b"data" => {
                let extra = usize::from(self.has_data) + value.len();
                if self.data.len() + extra > self.max {
                    self.overflow();
                    return;
                }
                if self.has_data {
                    self.data.push(b'\n');
                }
                self.data.extend_from_slice(value);
                self.has_data = true;
            }
            b"event" => self.event = Some(String::from_utf8_lossy(value).into_owned()),
            b"id" if !value.contains(&0) => {
                self.id = Some(String::from_utf8_lossy(value).into_owned());
            }
            b"retry" if !value.is_empty() && value.iter().all(u8::is_ascii_digit) => {
                self.retry = std::str::from_utf8(value).ok().and_then(|v| v.parse().ok());
            }
            _ => {}
        }
    }

    /// A blank line: the event is complete.
    fn dispatch(&mut self) {
        let event = self.event.take();
        let id = self.id.take();
        let retry = self.retry.take();
        let has_data = std::mem::take(&mut self.has_data);
        if std::mem::take(&mut self.oversized) {
            self.data.clear();
            return;
        }
        if !has_data && id.is_none() && retry.is_none() {
            // Nothing worth reporting (a lone `event:` line, or blank lines in a row).
            return;
        }
        let data = std::mem::take(&mut self.data);
        let data = match String::from_utf8(data) {
            Ok(s) => s,
            Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
        };
        self.ready.push_back(Ok(SseEvent {
            event,
            data,
            id,
            retry,
        }));
    }
}

#[cfg(test)]
mod tests;
