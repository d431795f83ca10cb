//! Chunk work (compress+seal, or open+decompress) in parallel, results in
//! order, memory bounded.
//!
//! The CPU work runs on tokio's blocking pool, never on the async workers,
//! at most `parallelism` jobs at once (a semaphore), so a 2-core machine
//! runs two chunks and the I/O tasks still get time. Submitted jobs wait in
//! a channel of `2 * parallelism` slots, so with the chunk being read and
//! the one being written only a few chunks exist at any time, whatever the
//! stream's size (`buffers_in_use`). Results come out in submission order
//! because the channel is FIFO and each slot is the job's own handle.

use crate::PipelineError;
use std::sync::Arc;
use tokio::sync::{mpsc, Semaphore};
use tokio::task::JoinHandle;

type Job<T> = JoinHandle<Result<T, PipelineError>>;

/// Where the reading side hands in jobs.
pub(crate) struct Submitter<T> {
    running: Arc<Semaphore>,
    queue: mpsc::Sender<Job<T>>,
}

/// Where the writing side takes results, in submission order.
pub(crate) struct Results<T> {
    queue: mpsc::Receiver<Job<T>>,
}

/// Chunk buffers a stream with `parallelism` workers has in use at most:
/// one being read, one being written, and up to two for each queued job
/// (input and output exist together only while a worker runs it).
pub(crate) fn buffers_in_use(parallelism: usize) -> usize {
    let parallelism = parallelism.max(1);
    2 + 2 * parallelism + parallelism
}

/// A submitter and its results, for `parallelism` (at least 1) workers.
pub(crate) fn ordered<T: Send + 'static>(parallelism: usize) -> (Submitter<T>, Results<T>) {
    let parallelism = parallelism.max(1);
    let (queue, results) = mpsc::channel(2 * parallelism);
    (
        Submitter {
            running: Arc::new(Semaphore::new(parallelism)),
            queue,
        },
        Results { queue: results },
    )
}

impl<T: Send + 'static> Submitter<T> {
    /// Start `job` once a worker is free and queue its result. Waits while
    /// the queue is full, which is what bounds memory. `false` when the
    /// results side is gone (the writer failed): stop reading, its error is
    /// the one to report.
    pub async fn submit<F>(&self, job: F) -> bool
    where
        F: FnOnce() -> Result<T, PipelineError> + Send + 'static,
    {
        let Ok(permit) = self.running.clone().acquire_owned().await else {
            return false;
        };
        let handle = tokio::task::spawn_blocking(move || {
            let result = job();
            drop(permit);
            result
        });
        self.queue.send(handle).await.is_ok()
    }
}

impl<T> Results<T> {
    /// The next job's result, in submission order; `None` once the
    /// submitter is dropped and every job has been taken.
    pub async fn next(&mut self) -> Option<Result<T, PipelineError>> {
        let handle = self.queue.recv().await?;
        Some(match handle.await {
            Ok(result) => result,
            Err(e) => Err(PipelineError::Worker(e.to_string())),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn results_keep_submission_order_and_concurrency_stays_bounded() {
        let (submitter, mut results) = ordered::<usize>(3);
        let running = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let (r, p) = (running.clone(), peak.clone());
        let produce = async move {
            for i in 0..40usize {
                let (r, p) = (r.clone(), p.clone());
                let ok = submitter
                    .submit(move || {
                        let now = r.fetch_add(1, Ordering::SeqCst) + 1;
                        p.fetch_max(now, Ordering::SeqCst);
                        // Later jobs finish first: order must come from the queue.
                        std::thread::sleep(Duration::from_millis((40 - i as u64) % 7));
                        r.fetch_sub(1, Ordering::SeqCst);
                        Ok(i)
                    })
                    .await;
                assert!(ok);
            }
        };
        let consume = async {
            let mut seen = Vec::new();
            while let Some(r) = results.next().await {
                seen.push(r.unwrap());
            }
            seen
        };
        let ((), seen) = tokio::join!(produce, consume);
        assert_eq!(seen, (0..40).collect::<Vec<_>>());
        let peak = peak.load(Ordering::SeqCst);
        assert!((1..=3).contains(&peak), "{peak} jobs ran at once");
    }

    #[tokio::test]
    async fn a_panicking_job_is_a_worker_error_and_a_gone_reader_stops_submission() {
        let (submitter, mut results) = ordered::<()>(1);
        assert!(submitter.submit(|| panic!("boom")).await);
        assert!(matches!(
            results.next().await,
            Some(Err(PipelineError::Worker(_)))
        ));
        drop(results);
        assert!(!submitter.submit(|| Ok(())).await);
    }
}
