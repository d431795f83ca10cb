//! The byte streams handed to the agent: a reader that tells the backup's
//! `done` how many bytes went out and whether the agent read to the end,
//! and a writer that closes its target on `shutdown` (a child's stdin only
//! reaches EOF when it is closed, and tokio's `ChildStdin::shutdown` does
//! not close it) and tells the restore's `done` how many bytes came in.
//!
//! Both counts let a restore check a piece's length against the backup's
//! `done` value: a stream cut at a boundary the tool cannot see (between
//! two SQL statements, between two xbstream chunks) is still refused.

use anyhow::anyhow;
use coffer_strategy::DatastoreError;
use serde_json::Value;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::oneshot;

/// How a stream ended: `Ok(bytes)` at its end (EOF read, or writer shut
/// down), `Err(bytes)` if it was dropped before.
pub(crate) type StreamEnd = Result<u64, u64>;

/// Counts the bytes read through it and reports the total once EOF is
/// read (or the count so far, as an error, if dropped before).
pub(crate) struct CountingReader<R> {
    inner: R,
    count: u64,
    end: Option<oneshot::Sender<StreamEnd>>,
}

/// `inner` counted; the receiver resolves when the reader reaches its end
/// or is dropped.
pub(crate) fn counting_reader<R>(inner: R) -> (CountingReader<R>, oneshot::Receiver<StreamEnd>) {
    let (tx, rx) = oneshot::channel();
    let reader = CountingReader {
        inner,
        count: 0,
        end: Some(tx),
    };
    (reader, rx)
}

impl<R: AsyncRead + Unpin> AsyncRead for CountingReader<R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let wanted = buf.remaining() > 0;
        let this = &mut *self;
        let polled = Pin::new(&mut this.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = polled {
            let n = (buf.filled().len() - before) as u64;
            this.count += n;
            if n == 0 && wanted {
                if let Some(tx) = this.end.take() {
                    let _ = tx.send(Ok(this.count));
                }
            }
        }
        polled
    }
}

impl<R> Drop for CountingReader<R> {
    fn drop(&mut self) {
        if let Some(tx) = self.end.take() {
            let _ = tx.send(Err(self.count));
        }
    }
}

/// The total of a backup stream once the agent has read it to its end; an
/// error if the reader was dropped before (the backup is incomplete).
pub(crate) async fn read_to_end(end: oneshot::Receiver<StreamEnd>) -> Result<u64, DatastoreError> {
    match end.await {
        Ok(Ok(n)) => Ok(n),
        Ok(Err(n)) => {
            Err(anyhow!("the backup stream was dropped after {n} bytes, before its end").into())
        }
        Err(_) => Err(anyhow!("the backup stream was lost").into()),
    }
}

/// Counts the bytes written through it; `shutdown` shuts the inner writer
/// down and then drops it, which closes a pipe for good. Reports the total
/// on shutdown (or the count so far, as an error, if dropped before).
pub(crate) struct ClosingWriter<W> {
    inner: Option<W>,
    count: u64,
    end: Option<oneshot::Sender<StreamEnd>>,
}

/// `inner` counted and closed on shutdown; the receiver resolves when the
/// writer is shut down or dropped.
pub(crate) fn closing_writer<W>(inner: W) -> (ClosingWriter<W>, oneshot::Receiver<StreamEnd>) {
    let (tx, rx) = oneshot::channel();
    let writer = ClosingWriter {
        inner: Some(inner),
        count: 0,
        end: Some(tx),
    };
    (writer, rx)
}

fn closed() -> io::Error {
    io::Error::new(io::ErrorKind::BrokenPipe, "the restore stream is shut down")
}

impl<W: AsyncWrite + Unpin> AsyncWrite for ClosingWriter<W> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        let Some(inner) = this.inner.as_mut() else {
            return Poll::Ready(Err(closed()));
        };
        let polled = Pin::new(inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = polled {
            this.count += n as u64;
        }
        polled
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.inner.as_mut() {
            Some(inner) => Pin::new(inner).poll_flush(cx),
            None => Poll::Ready(Ok(())),
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let Some(inner) = this.inner.as_mut() else {
            return Poll::Ready(Ok(()));
        };
        let polled = Pin::new(inner).poll_shutdown(cx);
        if let Poll::Ready(Ok(())) = polled {
            this.inner = None;
            if let Some(tx) = this.end.take() {
                let _ = tx.send(Ok(this.count));
            }
        }
        polled
    }
}

impl<W> Drop for ClosingWriter<W> {
    fn drop(&mut self) {
        if let Some(tx) = self.end.take() {
            let _ = tx.send(Err(self.count));
        }
    }
}

/// Wait until the restore writer is shut down; its byte count, or an error
/// if it was dropped before its shutdown (the agent's copy failed).
pub(crate) async fn written(end: oneshot::Receiver<StreamEnd>) -> Result<u64, DatastoreError> {
    match end.await {
        Ok(Ok(n)) => Ok(n),
        Ok(Err(n)) => Err(anyhow!(
            "the restore stream was dropped after {n} bytes, without being shut down"
        )
        .into()),
        Err(_) => Err(anyhow!("the restore stream was lost").into()),
    }
}

/// Check a piece's length against `info[key]`, the byte count its backup
/// recorded (absent in a value from elsewhere: then there is nothing to
/// check against).
pub(crate) fn check_length(
    index: usize,
    got: u64,
    info: &Value,
    key: &str,
) -> Result<(), DatastoreError> {
    match info.get(key).and_then(Value::as_u64) {
        Some(expected) if expected != got => Err(anyhow!(
            "piece {index} is {got} bytes long but its backup recorded {expected}: \
             the stream is truncated or corrupted"
        )
        .into()),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn reader_reports_its_total_at_eof_only() {
        let (mut r, end) = counting_reader(&b"hello world"[..]);
        let mut out = Vec::new();
        r.read_to_end(&mut out).await.unwrap();
        assert_eq!(read_to_end(end).await.unwrap(), 11);

        let (mut r, end) = counting_reader(&b"hello world"[..]);
        let mut first = [0u8; 5];
        r.read_exact(&mut first).await.unwrap();
        drop(r);
        let e = read_to_end(end).await.unwrap_err();
        assert!(e.to_string().contains("after 5 bytes"), "{e}");
    }

    #[tokio::test]
    async fn writer_closes_on_shutdown() {
        let (a, mut b) = tokio::io::duplex(64);
        let (mut w, end) = closing_writer(a);
        w.write_all(b"abc").await.unwrap();
        w.shutdown().await.unwrap();
        // The peer sees EOF although `w` itself is still alive.
        let mut got = Vec::new();
        b.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, b"abc");
        assert!(w.write_all(b"x").await.is_err());
        assert_eq!(written(end).await.unwrap(), 3);

        let (a, _b) = tokio::io::duplex(64);
        let (mut w, end) = closing_writer(a);
        w.write_all(b"ab").await.unwrap();
        drop(w);
        assert!(written(end).await.is_err());
    }

    #[test]
    fn lengths_are_checked_when_recorded() {
        let info = json!({"bytes": 10});
        check_length(0, 10, &info, "bytes").unwrap();
        let e = check_length(1, 9, &info, "bytes").unwrap_err();
        assert!(e.to_string().contains("piece 1 is 9 bytes"), "{e}");
        check_length(0, 9, &json!({}), "bytes").unwrap();
    }
}
