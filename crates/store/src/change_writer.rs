//! Group commit for changes. Concurrent webhook deliveries queue here, and one task writes
//! whatever has queued in one transaction: on SQLite every statement is a hand-off to
//! sqlx's worker thread and every commit rewrites the same index pages, so a batch of
//! deliveries costs little more than one. Each delivery keeps its own answer: a replay is
//! refused alone, and if a batch fails, its deliveries are retried one by one so that one
//! bad delivery cannot fail the others.

use tokio::sync::{mpsc, oneshot};

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
    /// Starts the writer task on the current runtime. `store` must not itself hold a
    /// `ChangeWriter`, or the queue would keep its own task alive forever.
    pub(crate) fn start(store: Store) -> ChangeWriter {
        let (jobs, queue) = mpsc::unbounded_channel();
        tokio::spawn(run(store, queue));
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

async fn run(store: Store, mut queue: mpsc::UnboundedReceiver<Job>) {
    while let Some(first) = queue.recv().await {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        write(&store, batch).await;
    }
}

async fn write(store: &Store, batch: Vec<Job>) {
    if batch.len() > 1 {
        match store.write_deliveries(&batch).await {
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
        let result = store
            .write_deliveries(std::slice::from_ref(&job))
            .await
            .and_then(|mut results| results.pop().ok_or(StoreError::WriterStopped));
        let _ = job.reply.send(result);
    }
}
