//! `ObjectWriter`: an upload as a tokio `AsyncWrite`.
//!
//! Bytes are gathered into parts (a few MiB: the backend decides); a full
//! part is handed to OpenDAL's writer (which uploads several parts at once
//! to an object store) while the next one fills. The object exists under its key only after `shutdown` completes;
//! `abort`, or dropping the writer without shutting it down, leaves none.

use crate::StorageError;
use bytes::{Bytes, BytesMut};
use futures::future::BoxFuture;
use futures::FutureExt;
use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use tokio::io::AsyncWrite;

enum State {
    Idle(opendal::Writer),
    Writing(BoxFuture<'static, (opendal::Writer, opendal::Result<()>)>),
    Closing(BoxFuture<'static, (opendal::Writer, opendal::Result<()>)>),
    Closed,
    Failed,
}

pub struct ObjectWriter {
    state: State,
    buf: BytesMut,
    part: usize,
    key: String,
}

impl ObjectWriter {
    /// Upload through `writer` in parts of `part` bytes.
    pub(crate) fn new(writer: opendal::Writer, key: &str, part: usize) -> Self {
        Self {
            state: State::Idle(writer),
            buf: BytesMut::with_capacity(part),
            part,
            key: key.to_string(),
        }
    }

    /// Discard the upload: nothing appears under the key.
    pub async fn abort(mut self) -> Result<(), StorageError> {
        let writer = match std::mem::replace(&mut self.state, State::Failed) {
            State::Idle(w) => w,
            State::Writing(f) | State::Closing(f) => f.await.0,
            State::Closed | State::Failed => return Ok(()),
        };
        let mut writer = writer;
        writer
            .abort()
            .await
            .map_err(|e| StorageError::from_dal(e, &self.key))
    }

    fn fail(&mut self, e: opendal::Error) -> io::Error {
        self.state = State::Failed;
        StorageError::from_dal(e, &self.key).into_io()
    }

    /// Drive a running part upload to its end.
    fn poll_pending(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if let State::Writing(f) = &mut self.state {
            let (w, r) = ready!(f.as_mut().poll(cx));
            if let Err(e) = r {
                return Poll::Ready(Err(self.fail(e)));
            }
            self.state = State::Idle(w);
        }
        Poll::Ready(Ok(()))
    }

    fn start_write(&mut self, part: Bytes) {
        let State::Idle(mut w) = std::mem::replace(&mut self.state, State::Failed) else {
            unreachable!("a part starts only when the writer is idle");
        };
        self.state = State::Writing(
            async move {
                let r = w.write(part).await;
                (w, r)
            }
            .boxed(),
        );
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
                State::Failed => {
                    return Poll::Ready(Err(io::Error::other("the upload already failed")))
                }
                State::Closing(_) | State::Closed => {
                    return Poll::Ready(Err(io::Error::other("the upload is closed")))
                }
                State::Writing(_) => {
                    // Keep filling the next part while one uploads.
                    if this.buf.len() < this.part {
                        break;
                    }
                    ready!(this.poll_pending(cx))?;
                }
                State::Idle(_) => {
                    if this.buf.len() >= this.part {
                        let part = this.buf.split_to(this.part).freeze();
                        this.start_write(part);
                        continue;
                    }
                    break;
                }
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
            match &mut this.state {
                State::Writing(_) => ready!(this.poll_pending(cx))?,
                State::Idle(_) if !this.buf.is_empty() => {
                    let rest = this.buf.split().freeze();
                    this.start_write(rest);
                }
                State::Idle(_) => {
                    let State::Idle(mut w) = std::mem::replace(&mut this.state, State::Failed)
                    else {
                        unreachable!()
                    };
                    this.state = State::Closing(
                        async move {
                            let r = w.close().await.map(drop);
                            (w, r)
                        }
                        .boxed(),
                    );
                }
                State::Closing(f) => {
                    let (_, r) = ready!(f.as_mut().poll(cx));
                    if let Err(e) = r {
                        return Poll::Ready(Err(this.fail(e)));
                    }
                    this.state = State::Closed;
                }
                State::Closed => return Poll::Ready(Ok(())),
                State::Failed => {
                    return Poll::Ready(Err(io::Error::other("the upload already failed")))
                }
            }
        }
    }
}
