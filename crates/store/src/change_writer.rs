//! Group commit for changes. Concurrent webhook deliveries queue here, and one task writes
//! whatever has queued in one transaction: on SQLite every statement is a hand-off to
//! sqlx's worker thread and every commit rewrites the same index pages, so a batch of
//! deliveries costs little more than one. Each delivery keeps its own answer: a replay is
//! refused alone, and if a batch fails, its deliveries are retried one by one so that one
//! bad delivery cannot fail the others.

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot, Mutex};

use crate::{ChangesAdded, Delivery, NewChange, Store, StoreError};

/// At most this many deliveries share a transaction, so that none waits long behind others.
const MAX_BATCH: usize = 64;

/// One delivery waiting to be written, and where its answer goes.
pub(crate) struct Job {
    pub(crate) changes: Vec<NewChange>,
    pub(crate) delivery: Option<Delivery>,
    reply: oneshot::Sender<Result<ChangesAdded, StoreError>>,
}

/// The queue in front of the writer task.
#[derive(Debug, Clone)]
pub(crate) struct ChangeWriter {
    jobs: mpsc::UnboundedSender<Job>,
}

impl ChangeWriter {
    /// Starts `writers` writer tasks on the current runtime: one for SQLite, which has one
    /// writer anyway, several for PostgreSQL, where batches commit in parallel (each commit
    /// waits for its WAL flush). `store` must not itself hold a `ChangeWriter`, or the queue
    /// would keep its own tasks alive forever.
    pub(crate) fn start(store: Store, writers: usize) -> ChangeWriter {
        let (jobs, queue) = mpsc::unbounded_channel();
        let queue = Arc::new(Mutex::new(queue));
        for _ in 0..writers.max(1) {
            tokio::spawn(run(store.clone(), queue.clone()));
        }
        ChangeWriter { jobs }
    }

    /// Queues one delivery and waits for its answer.
    pub(crate) async fn submit(
        &self,
        changes: Vec<NewChange>,
        delivery: Option<Delivery>,
    ) -> Result<ChangesAdded, StoreError> {
        let (reply, answer) = oneshot::channel();
        let job = Job {
            changes,
            delivery,
            reply,
        };
        self.jobs.send(job).map_err(|_| StoreError::WriterStopped)?;
        answer.await.map_err(|_| StoreError::WriterStopped)?
    }
}

async fn run(store: Store, queue: Arc<Mutex<mpsc::UnboundedReceiver<Job>>>) {
    while let Some(batch) = next_batch(&queue).await {
        write(&store, batch).await;
    }
}

/// Waits for a job, then takes whatever else has queued, up to [`MAX_BATCH`]. `None` once
/// every sender is gone.
async fn next_batch(queue: &Mutex<mpsc::UnboundedReceiver<Job>>) -> Option<Vec<Job>> {
    let mut queue = queue.lock().await;
    let mut batch = vec![queue.recv().await?];
    while batch.len() < MAX_BATCH {
        match queue.try_recv() {
            Ok(job) => batch.push(job),
            Err(_) => break,
        }
    }
    Some(batch)
}

/// How often a transaction that PostgreSQL rolled back for a deadlock is run again.
const ATTEMPTS: usize = 5;

/// Writes `jobs` in one transaction. Batches written in parallel on PostgreSQL can deadlock
/// (two deliveries of the same commit share a source stamp row, and each batch locks rows
/// in its own order); PostgreSQL then rolls one back, and it is simply run again.
async fn write_retrying(store: &Store, jobs: &[Job]) -> Result<Vec<ChangesAdded>, StoreError> {
    let mut attempt = 1;
    loop {
        match store.write_deliveries(jobs).await {
            Err(e) if attempt < ATTEMPTS && crate::is_retryable(&e) => {
                tracing::debug!(attempt, error = %e, "change batch rolled back; writing it again");
                attempt += 1;
            }
            result => return result,
        }
    }
}

async fn write(store: &Store, batch: Vec<Job>) {
    if batch.len() > 1 {
        match write_retrying(store, &batch).await {
            Ok(results) => {
                for (job, result) in batch.into_iter().zip(results) {
                    // The requester may have gone (client disconnected); its changes stay.
                    let _ = job.reply.send(Ok(result));
                }
                return;
            }
            Err(e) => {
                tracing::warn!(deliveries = batch.len(), error = %e,
                    "writing a batch of changes failed; writing them one by one");
            }
        }
    }
    for job in batch {
        let result = write_retrying(store, std::slice::from_ref(&job))
            .await
            .and_then(|mut results| results.pop().ok_or(StoreError::WriterStopped));
        let _ = job.reply.send(result);
    }
}
