//! Reading whole pieces (a chunk, a frame) from a stream that hands out
//! bytes in whatever sizes it likes (a pipe gives 64 KiB at a time).

use crate::PipelineError;
use bytes::BufMut;
use tokio::io::{AsyncRead, AsyncReadExt};

/// Append up to `len` bytes from `reader` to `buf`, stopping early only at
/// the end of the stream; how many were appended. `buf` is expected to have
/// the capacity already, so nothing is zeroed or reallocated.
pub(crate) async fn append_up_to<R: AsyncRead + Unpin>(
    reader: &mut R,
    buf: &mut Vec<u8>,
    len: usize,
) -> Result<usize, PipelineError> {
    let start = buf.len();
    while buf.len() - start < len {
        let want = len - (buf.len() - start);
        let n = reader
            .read_buf(&mut (&mut *buf).limit(want))
            .await
            .map_err(PipelineError::Source)?;
        if n == 0 {
            break;
        }
    }
    Ok(buf.len() - start)
}

/// Fill `buf`, stopping early only at the end of the stream; how many bytes
/// were read.
pub(crate) async fn fill<R: AsyncRead + Unpin>(
    reader: &mut R,
    buf: &mut [u8],
) -> Result<usize, PipelineError> {
    let mut filled = 0;
    while filled < buf.len() {
        let n = reader
            .read(&mut buf[filled..])
            .await
            .map_err(PipelineError::Source)?;
        if n == 0 {
            break;
        }
        filled += n;
    }
    Ok(filled)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::pin::Pin;
    use std::task::{Context, Poll};
    use tokio::io::ReadBuf;

    /// Hands out at most 3 bytes per read.
    struct Trickle<'a>(&'a [u8]);

    impl AsyncRead for Trickle<'_> {
        fn poll_read(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<std::io::Result<()>> {
            let n = self.0.len().min(3).min(buf.remaining());
            buf.put_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Poll::Ready(Ok(()))
        }
    }

    #[tokio::test]
    async fn reads_across_short_reads_and_stops_at_the_end() {
        let data: Vec<u8> = (0..100u8).collect();
        let mut reader = Trickle(&data);
        let mut buf = Vec::with_capacity(64);
        buf.push(0xff);
        assert_eq!(append_up_to(&mut reader, &mut buf, 40).await.unwrap(), 40);
        assert_eq!(buf.len(), 41);
        assert_eq!(&buf[1..], &data[..40]);
        let mut rest = [0u8; 80];
        assert_eq!(fill(&mut reader, &mut rest).await.unwrap(), 60);
        assert_eq!(&rest[..60], &data[40..]);
        let mut more = Vec::new();
        assert_eq!(append_up_to(&mut reader, &mut more, 10).await.unwrap(), 0);
    }
}
