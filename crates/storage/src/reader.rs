//! `ObjectReader`: a stored object as a tokio `AsyncRead`.
//!
//! OpenDAL fetches the object in ranged chunks, a few ahead of the reader,
//! so memory stays bounded whatever the object's size. Its io errors are
//! rewritten so that their message names the cause ("storage unavailable:
//! ..."), as the writer's are.

use crate::StorageError;
use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use tokio::io::{AsyncRead, ReadBuf};

/// A stored object being read.
pub struct ObjectReader {
    inner: Pin<Box<dyn AsyncRead + Send>>,
    key: String,
}

impl ObjectReader {
    pub(crate) fn new(inner: Pin<Box<dyn AsyncRead + Send>>, key: &str) -> Self {
        Self {
            inner,
            key: key.to_string(),
        }
    }
}

impl std::fmt::Debug for ObjectReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObjectReader")
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

impl AsyncRead for ObjectReader {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        match ready!(this.inner.as_mut().poll_read(cx, buf)) {
            Ok(()) => Poll::Ready(Ok(())),
            Err(e) => {
                let cause = match StorageError::from_io(&e) {
                    StorageError::NotFound(_) => StorageError::NotFound(this.key.clone()),
                    other => other,
                };
                Poll::Ready(Err(cause.into_io()))
            }
        }
    }
}
