//! The async half of the output pipeline: one per running command, it turns output and results
//! into batched `update` requests and finally the `complete` request.

use std::collections::VecDeque;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use protocol::{Op, Value};

use crate::output::{
    Batch, LineSplitter, Lines, OutputSettings, Stream, UpdateBuffer, Utf8Decoder,
};
use crate::rpc::{PendingReply, Rpc};

/// How many `update` requests of one command may await their answer at once. A window instead
/// of strict ping-pong keeps throughput independent of the round-trip time, while still
/// bounding what a slow master lets pile up.
const UPDATE_WINDOW: usize = 8;

/// Sends one command's updates and its completion.
pub(crate) struct Reporter {
    command_id: String,
    rpc: Rpc,
    settings: OutputSettings,
    buffer: UpdateBuffer,
    streams: Vec<(Stream, Utf8Decoder, LineSplitter)>,
    inflight: VecDeque<PendingReply>,
}

/// Current time as float epoch seconds, the protocol's time format.
pub(crate) fn epoch_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

impl Reporter {
    /// A reporter for `command_id` on the connection `rpc`.
    pub(crate) fn new(command_id: String, rpc: Rpc, settings: OutputSettings) -> Reporter {
        let buffer = UpdateBuffer::new(&settings);
        Reporter {
            command_id,
            rpc,
            settings,
            buffer,
            streams: Vec::new(),
            inflight: VecDeque::new(),
        }
    }

    /// Adds raw output bytes of a stream; returns how many whole lines they completed.
    pub(crate) async fn output(&mut self, stream: Stream, bytes: &[u8]) -> usize {
        let now = epoch_now();
        let (_, decoder, splitter) = self.stream(&stream);
        let text = decoder.decode(bytes);
        let mut lines = Lines::default();
        splitter.feed(&text, now, &mut lines);
        let count = lines.count();
        let ready = self.buffer.push_lines(stream, lines, Instant::now());
        self.send_all(ready).await;
        count
    }

    /// Adds worker-written text (usually header lines) to a stream.
    pub(crate) async fn text(&mut self, stream: Stream, text: &str) {
        self.output(stream, text.as_bytes()).await;
    }

    /// Adds one non-text update such as `rc` or `elapsed`.
    pub(crate) async fn update(&mut self, key: &str, value: Value) {
        let ready = self.buffer.push(key, value, Instant::now());
        self.send_all(ready).await;
    }

    /// When buffered output must be sent (`buffer_timeout`), if any is buffered.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        self.buffer.deadline()
    }

    /// Ends every stream: partial lines get their `\n` and join the buffer.
    pub(crate) async fn finish_streams(&mut self) {
        let now = epoch_now();
        let mut ready = Vec::new();
        for (stream, decoder, splitter) in &mut self.streams {
            let rest = decoder.finish();
            let mut lines = Lines::default();
            splitter.feed(&rest, now, &mut lines);
            splitter.finish(now, &mut lines);
            ready.extend(
                self.buffer
                    .push_lines(stream.clone(), lines, Instant::now()),
            );
        }
        self.send_all(ready).await;
    }

    /// Sends whatever is buffered now.
    pub(crate) async fn flush(&mut self) {
        let batch = self.buffer.take();
        self.send_all(vec![batch]).await;
    }

    /// Flushes everything, waits for the outstanding updates, then sends `complete`.
    pub(crate) async fn complete(mut self, failure: Option<String>) {
        self.finish_streams().await;
        self.flush().await;
        while let Some(pending) = self.inflight.pop_front() {
            log_refusal(pending.wait().await, &self.command_id);
        }
        let op = Op::Complete {
            command_id: self.command_id.clone(),
            failure,
        };
        log_refusal(self.rpc.call(op).await, &self.command_id);
    }

    /// Sends a transfer request for this command and waits for its answer, after the updates
    /// sent so far have been answered (transfers are strict ping-pong, spec §6.4).
    pub(crate) async fn call(&mut self, op: Op) -> Result<Value, crate::WorkerError> {
        while let Some(pending) = self.inflight.pop_front() {
            log_refusal(pending.wait().await, &self.command_id);
        }
        self.rpc.call(op).await
    }

    /// The command id this reporter reports for.
    pub(crate) fn command_id(&self) -> &str {
        &self.command_id
    }

    fn stream(&mut self, stream: &Stream) -> &mut (Stream, Utf8Decoder, LineSplitter) {
        let index = match self.streams.iter().position(|(s, _, _)| s == stream) {
            Some(index) => index,
            None => {
                let splitter = LineSplitter::new(self.settings.max_line_length);
                self.streams
                    .push((stream.clone(), Utf8Decoder::default(), splitter));
                self.streams.len() - 1
            }
        };
        &mut self.streams[index]
    }

    async fn send_all(&mut self, batches: Vec<Batch>) {
        for updates in batches {
            if updates.is_empty() {
                continue;
            }
            if self.inflight.len() >= UPDATE_WINDOW {
                if let Some(pending) = self.inflight.pop_front() {
                    log_refusal(pending.wait().await, &self.command_id);
                }
            }
            let op = Op::Update {
                command_id: self.command_id.clone(),
                updates,
            };
            match self.rpc.send(op).await {
                Ok(pending) => self.inflight.push_back(pending),
                Err(err) => tracing::debug!(command_id = %self.command_id, %err, "update not sent"),
            }
        }
    }
}

/// The stock worker only logs refused updates and completions; so do we.
fn log_refusal(result: Result<Value, crate::WorkerError>, command_id: &str) {
    if let Err(err) = result {
        tracing::warn!(command_id, %err, "update not accepted");
    }
}
