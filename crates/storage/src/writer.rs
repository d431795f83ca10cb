//! `ObjectWriter`: an upload as a tokio `AsyncWrite`.
//!
//! Bytes are gathered into parts (a few MiB: the backend decides); a full
//! part is handed to the sink while the next one fills: OpenDAL's writer,
//! which uploads several at once to an object store, or for the local
//! filesystem a file written with direct I/O (`direct.rs`). Memory stays
//! bounded by (2 + parts in flight) parts.
//!
//! The object exists under its key only after `shutdown` succeeds. A
//! failed write, a failed `shutdown`, [`ObjectWriter::abort`] or dropping
//! the writer unfinished all discard the upload: the partial file is
//! removed (fs), OpenDAL's abort removes the segments (Swift) or the multipart upload
//! (S3) — after the parts still in flight have landed, so none is left
//! behind (see `http.rs`). A failed write returns only once that is done,
//! with an io error whose message names the cause ("storage full: ...").

use crate::direct::DirectFile;
use crate::http::Tracked;
use crate::StorageError;
use bytes::{Bytes, BytesMut};
use futures::future::BoxFuture;
use futures::FutureExt;
use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Duration;
use tokio::io::AsyncWrite;

/// Longest wait for parts in flight, and for the abort itself, when an
/// upload is discarded.
const DISCARD_LIMIT: Duration = Duration::from_secs(60);

/// Where the parts go.
pub(crate) enum Sink {
    Dal(opendal::Writer),
    File(DirectFile),
}

type Step = BoxFuture<'static, (Sink, Result<(), StorageError>)>;

enum State {
    Idle(Sink),
    /// A part being handed over (returns once the sink has room for it).
    Writing(Step),
    Closing(Step),
    /// Cleaning up after a failure, which is reported when this is done.
    Discarding(BoxFuture<'static, ()>, StorageError),
    Closed,
    Failed(StorageError),
}

/// An object being uploaded; see the module documentation.
pub struct ObjectWriter {
    state: State,
    buf: BytesMut,
    part: usize,
    key: String,
    /// The requests of this upload, for object stores (None for fs).
    tracked: Option<Tracked>,
}

impl ObjectWriter {
    /// Upload through `writer` in parts of `part` bytes.
    pub(crate) fn new(writer: Sink, key: &str, part: usize, tracked: Option<Tracked>) -> Self {
        Self {
            state: State::Idle(writer),
            buf: BytesMut::with_capacity(part),
            part,
            key: key.to_string(),
            tracked,
        }
    }

    /// Discard the upload: nothing appears under the key, and nothing of
    /// it stays in storage. After a failed write this has nothing left to
    /// do. Aborting after a successful `shutdown` is an error: the object
    /// is stored (delete it with `Storage::delete`).
    pub async fn abort(mut self) -> Result<(), StorageError> {
        let writer = match std::mem::replace(&mut self.state, State::Closed) {
            State::Idle(w) => w,
            State::Writing(f) => f.await.0,
            State::Closing(f) => match f.await {
                (_, Ok(())) => return Err(self.committed()),
                (w, Err(_)) => w,
            },
            State::Discarding(f, _) => {
                f.await;
                return Ok(());
            }
            State::Failed(_) => return Ok(()),
            State::Closed => return Err(self.committed()),
        };
        discard(writer, self.tracked.clone(), &self.key).await
    }

    fn committed(&self) -> StorageError {
        StorageError::Other(format!(
            "object {} was already stored when the upload was aborted",
            self.key
        ))
    }

    /// Make `e` the outcome, once the upload has been discarded.
    fn discard_after(&mut self, w: Sink, error: StorageError) {
        tracing::debug!(key = %self.key, %error, "upload failed: discarding it");
        let (tracked, key) = (self.tracked.clone(), self.key.clone());
        self.state = State::Discarding(
            async move {
                let _ = discard(w, tracked, &key).await;
            }
            .boxed(),
            error,
        );
    }

    /// Drive the current step; Ready(Ok) once idle (or closed).
    fn poll_step(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        loop {
            match &mut self.state {
                State::Idle(_) | State::Closed => return Poll::Ready(Ok(())),
                State::Failed(e) => return Poll::Ready(Err(e.clone().into_io())),
                State::Discarding(f, e) => {
                    ready!(f.as_mut().poll(cx));
                    let e = e.clone();
                    self.state = State::Failed(e);
                }
                State::Writing(f) => {
                    let (w, r) = ready!(f.as_mut().poll(cx));
                    match r {
                        Ok(()) => self.state = State::Idle(w),
                        Err(e) => self.discard_after(w, e),
                    }
                }
                State::Closing(f) => {
                    let (w, r) = ready!(f.as_mut().poll(cx));
                    match r {
                        Ok(()) => self.state = State::Closed,
                        Err(e) => self.discard_after(w, e),
                    }
                }
            }
        }
    }

    fn start_write(&mut self, part: Bytes) {
        let State::Idle(w) = std::mem::replace(&mut self.state, State::Closed) else {
            unreachable!("a part starts only when the writer is idle");
        };
        let key = self.key.clone();
        self.state = State::Writing(write_part(w, part, key));
    }
}

fn write_part(mut w: Sink, part: Bytes, key: String) -> Step {
    async move {
        let r = match &mut w {
            Sink::Dal(d) => d
                .write(part)
                .await
                .map_err(|e| StorageError::from_dal(&e, &key)),
            Sink::File(f) => f.write(part).await,
        };
        (w, r)
    }
    .boxed()
}

fn close(mut w: Sink, key: String) -> Step {
    async move {
        let r = match &mut w {
            Sink::Dal(d) => d
                .close()
                .await
                .map(drop)
                .map_err(|e| StorageError::from_dal(&e, &key)),
            Sink::File(f) => f.commit().await,
        };
        (w, r)
    }
    .boxed()
}

/// Stop the upload sending data, wait for its requests in flight, then
/// abort it. A local file is removed when dropped.
async fn discard(w: Sink, tracked: Option<Tracked>, key: &str) -> Result<(), StorageError> {
    let Sink::Dal(mut w) = w else {
        return Ok(());
    };
    if let Some(t) = &tracked {
        t.seal(DISCARD_LIMIT).await;
    }
    let r = match tokio::time::timeout(DISCARD_LIMIT, w.abort()).await {
        Ok(r) => r,
        Err(_) => Err(opendal::Error::new(
            opendal::ErrorKind::Unexpected,
            "aborting the upload timed out",
        )
        .set_temporary()),
    };
    r.map_err(|e| StorageError::from_dal(&e, key))
}

impl std::fmt::Debug for ObjectWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObjectWriter")
            .field("key", &self.key)
            .field("buffered", &self.buf.len())
            .finish_non_exhaustive()
    }
}

impl AsyncWrite for ObjectWriter {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        loop {
            match &this.state {
                State::Closing(_) | State::Closed => {
                    return Poll::Ready(Err(io::Error::other(format!(
                        "the upload of {} is closed",
                        this.key
                    ))))
                }
                State::Idle(_) if this.buf.len() >= this.part => {
                    let part = this.buf.split_to(this.part).freeze();
                    this.start_write(part);
                }
                State::Idle(_) => break,
                // Move the part being handed over along now (it starts the
                // upload of the one before), keep filling the next one
                // meanwhile, and wait only when that one is full too.
                State::Writing(_) => match this.poll_step(cx) {
                    Poll::Pending
                        if matches!(this.state, State::Writing(_))
                            && this.buf.len() < this.part =>
                    {
                        break
                    }
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(r) => r?,
                },
                _ => ready!(this.poll_step(cx))?,
            }
        }
        let n = data.len().min(this.part - this.buf.len());
        this.buf.extend_from_slice(&data[..n]);
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        // Parts are uploaded when full; the object is committed at shutdown.
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        loop {
            match &this.state {
                State::Closed => return Poll::Ready(Ok(())),
                State::Idle(_) if !this.buf.is_empty() => {
                    let rest = this.buf.split().freeze();
                    this.start_write(rest);
                }
                State::Idle(_) => {
                    let State::Idle(w) = std::mem::replace(&mut this.state, State::Closed) else {
                        unreachable!()
                    };
                    this.state = State::Closing(close(w, this.key.clone()));
                }
                _ => ready!(this.poll_step(cx))?,
            }
        }
    }
}

impl Drop for ObjectWriter {
    /// An upload dropped unfinished is discarded in the background (if a
    /// tokio runtime is there to run it). One dropped while committing is
    /// committed in the background, and discarded only if that fails:
    /// the commit may already have reached the store, and aborting then
    /// could remove the parts of a stored object.
    fn drop(&mut self) {
        let (tracked, key) = (self.tracked.clone(), self.key.clone());
        let work: BoxFuture<'static, ()> = match std::mem::replace(&mut self.state, State::Closed) {
            State::Idle(w) => async move {
                let _ = discard(w, tracked, &key).await;
            }
            .boxed(),
            State::Writing(f) => async move {
                let (w, _) = f.await;
                let _ = discard(w, tracked, &key).await;
            }
            .boxed(),
            State::Closing(f) => async move {
                if let (w, Err(_)) = f.await {
                    let _ = discard(w, tracked, &key).await;
                }
            }
            .boxed(),
            State::Discarding(f, _) => f,
            State::Closed | State::Failed(_) => return,
        };
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(work);
        }
    }
}
