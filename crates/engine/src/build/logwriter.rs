//! Writes a step's log to the store in batches, with Buildbot's stream prefixes.
//!
//! Lines are buffered and written as one compressed chunk per ~64 KiB (or when the build
//! runner's one-second tick calls [`LogWriter::flush`]), so a 1 GB log is ~16,000 inserts and
//! constant memory. Chunks are compressed on blocking threads while the next one fills, a few
//! at a time, and appended strictly in order (each append task waits for the previous one):
//! compression was half of the master's CPU per logged byte. At most [`IN_FLIGHT`] chunks
//! are in memory. `logMaxSize` is enforced here: past it, lines are dropped, and the last
//! `logMaxTailSize` bytes are kept and written at the end.

use std::collections::VecDeque;
use std::sync::Arc;

use model::{LogId, StepId};
use tokio::task::JoinHandle;

use crate::master::Shared;

const FLUSH_AT: usize = 64 * 1024;
/// Chunks being compressed or stored at once, per log.
const IN_FLIGHT: usize = 3;

/// One log being written.
pub struct LogWriter {
    /// Row id.
    pub id: LogId,
    buffer: String,
    written: u64,
    max_size: Option<u64>,
    max_tail: Option<u64>,
    truncated: bool,
    tail: VecDeque<String>,
    tail_bytes: u64,
    dropped_lines: u64,
    in_flight: VecDeque<JoinHandle<()>>,
    /// Resolves when the most recently flushed chunk has been appended.
    previous_done: Option<tokio::sync::oneshot::Receiver<()>>,
}

impl LogWriter {
    /// Creates the log row and a writer for it.
    pub async fn create(
        shared: &Arc<Shared>,
        step: StepId,
        name: &str,
        kind: store::LogKind,
    ) -> Result<LogWriter, store::StoreError> {
        let (id, _slug) = shared.store.log_add(step, name, kind).await?;
        let runtime = shared.runtime();
        let writer = LogWriter {
            id,
            buffer: String::with_capacity(FLUSH_AT + 4096),
            written: 0,
            max_size: runtime.config.log_max_size,
            max_tail: runtime.config.log_max_tail_size,
            truncated: false,
            tail: VecDeque::new(),
            tail_bytes: 0,
            dropped_lines: 0,
            in_flight: VecDeque::new(),
            previous_done: None,
        };
        crate::events::log(shared, id, "new").await;
        Ok(writer)
    }

    /// Adds text of one stream (`o` stdout, `e` stderr, `h` header; `None` for plain text
    /// logs). Text is whole lines; a missing final newline is added.
    pub async fn write(&mut self, shared: &Arc<Shared>, prefix: Option<char>, text: &str) {
        for line in text.split_inclusive('\n') {
            let line = line.strip_suffix('\n').unwrap_or(line);
            self.push(prefix, line);
        }
        if self.buffer.len() >= FLUSH_AT {
            self.flush(shared).await;
        }
    }

    fn push(&mut self, prefix: Option<char>, line: &str) {
        let len = (line.len() + 1 + prefix.map_or(0, char::len_utf8)) as u64;
        let over = self
            .max_size
            .is_some_and(|max| self.written + self.buffer.len() as u64 + len > max);
        if !over {
            if let Some(p) = prefix {
                self.buffer.push(p);
            }
            self.buffer.push_str(line);
            self.buffer.push('\n');
            return;
        }
        if !self.truncated {
            self.truncated = true;
            let max = self.max_size.unwrap_or_default();
            self.buffer.push_str(&format!(
                "h\nh*** log truncated: logMaxSize of {max} bytes reached ***\n"
            ));
        }
        self.dropped_lines += 1;
        let Some(max_tail) = self.max_tail else {
            return;
        };
        let mut entry = String::with_capacity(line.len() + 2);
        if let Some(p) = prefix {
            entry.push(p);
        }
        entry.push_str(line);
        entry.push('\n');
        self.tail_bytes += len;
        self.tail.push_back(entry);
        while self.tail_bytes > max_tail {
            match self.tail.pop_front() {
                Some(old) => self.tail_bytes -= old.len() as u64,
                None => break,
            }
        }
    }

    /// Hands buffered lines to the store as one chunk. Waits only when [`IN_FLIGHT`] chunks
    /// are already on their way, so chunks land in order and memory stays bounded.
    pub async fn flush(&mut self, shared: &Arc<Shared>) {
        if self.buffer.is_empty() {
            return;
        }
        while self.in_flight.len() >= IN_FLIGHT {
            self.wait_oldest().await;
        }
        let text = std::mem::replace(&mut self.buffer, String::with_capacity(FLUSH_AT + 4096));
        self.written += text.len() as u64;
        let shared = shared.clone();
        let id = self.id;
        let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
        let previous_done = self.previous_done.replace(done_rx);
        self.in_flight.push_back(tokio::spawn(async move {
            let chunk =
                match tokio::task::spawn_blocking(move || store::LogChunk::prepare(&text)).await {
                    Ok(chunk) => chunk,
                    Err(e) => {
                        tracing::error!(log = %id, error = %e, "log compression failed");
                        return;
                    }
                };
            // Appends happen in flush order: wait for the chunk before this one.
            if let Some(previous) = previous_done {
                let _ = previous.await;
            }
            match shared.store.log_append_chunk(id, &chunk).await {
                Ok(_) => crate::events::log(&shared, id, "append").await,
                Err(e) => tracing::error!(log = %id, error = %e, "could not store log lines"),
            }
            let _ = done_tx.send(());
        }));
    }

    async fn wait_oldest(&mut self) {
        if let Some(task) = self.in_flight.pop_front() {
            if let Err(e) = task.await {
                tracing::error!(log = %self.id, error = %e, "log writer task failed");
            }
        }
    }

    async fn wait_in_flight(&mut self) {
        while !self.in_flight.is_empty() {
            self.wait_oldest().await;
        }
    }

    /// Writes what is left (and the kept tail of a truncated log) and marks the log complete.
    pub async fn finish(mut self, shared: &Arc<Shared>) {
        if self.truncated {
            let mut tail = std::mem::take(&mut self.tail);
            let skipped = self.dropped_lines - tail.len() as u64;
            self.buffer.push_str(&format!(
                "h*** {skipped} lines omitted; the last {} lines follow ***\n",
                tail.len()
            ));
            for line in tail.drain(..) {
                self.buffer.push_str(&line);
            }
        }
        self.flush(shared).await;
        self.wait_in_flight().await;
        if let Err(e) = shared.store.log_finish(self.id).await {
            tracing::error!(log = %self.id, error = %e, "could not finish log");
        }
        crate::events::log(shared, self.id, "finished").await;
    }
}
