//! Restore direction: stored frames -> authenticated, decompressed chunks,
//! written in order.
//!
//! Mirrors `encode.rs`: one loop reads frames and checks their framing
//! (lengths capped before anything is allocated), workers open them in
//! parallel, another loop writes the chunks in order. A chunk is written
//! only after its tag verified, so nothing of a damaged chunk, or of any
//! chunk after it, reaches the writer.

use crate::format::{
    self, Header, FLAGS_AT, FLAG_FINAL, FRAME_PREFIX_LEN, HEADER_LEN, MIN_SEALED_LEN,
};
use crate::options::default_parallelism;
use crate::read::{append_up_to, fill};
use crate::seal::{Opened, Sealer};
use crate::{workers, DataKey, PipelineError, Progress, Summary};
use sha2::{Digest, Sha256};
use std::future::Future;
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

/// Decode `reader` (a stored object) to `writer`, verifying each chunk
/// before writing it; at the end check that the object ended with its
/// final chunk and nothing after it, and that its SHA-256 is
/// `expected_sha256` (hex, any case) when given. Only then is the writer
/// flushed and shut down.
///
/// Errors: `Integrity` for anything wrong with the stored bytes or a wrong
/// data key, `Unsupported` for a format version or codec this build does
/// not know, `Source`/`Sink` for I/O. On error the writer is left as it is
/// (not shut down), holding only chunks that verified.
pub async fn decode<R, W>(
    mut reader: R,
    mut writer: W,
    key: &DataKey,
    expected_sha256: Option<&str>,
    progress: &Progress,
) -> Result<Summary, PipelineError>
where
    R: AsyncRead + Unpin + Send,
    W: AsyncWrite + Unpin + Send,
{
    let mut raw = [0u8; HEADER_LEN];
    match fill(&mut reader, &mut raw).await? {
        0 => {
            return Err(PipelineError::Integrity(
                "the stored object is empty".into(),
            ))
        }
        n if n < HEADER_LEN => {
            return Err(PipelineError::Integrity(
                "the stored object ends inside its header".into(),
            ))
        }
        _ => {}
    }
    let header = Header::parse(&raw)?;
    let mut hasher = Sha256::new();
    hasher.update(raw);
    progress.add(0, HEADER_LEN as u64);
    let parallelism = default_parallelism();
    let sealer = Arc::new(Sealer::for_decode(
        key,
        &header,
        workers::buffers_in_use(parallelism),
    ));
    let max_sealed = format::max_sealed_len(header.chunk_size);
    let (submitter, mut results) = workers::ordered::<Opened>(parallelism);

    // The reader's own handle: `sealer` stays with the writer.
    let reader_sealer = sealer.clone();
    let read = async move {
        let sealer = reader_sealer;
        let mut stored = HEADER_LEN as u64;
        let mut index: u32 = 0;
        loop {
            let mut prefix = [0u8; FRAME_PREFIX_LEN];
            match fill(&mut reader, &mut prefix).await? {
                0 => {
                    return Err(PipelineError::Integrity(format!(
                        "the stream ends before its final chunk, after {index} chunks (truncated)"
                    )))
                }
                n if n < FRAME_PREFIX_LEN => return Err(cut_inside(index)),
                _ => {}
            }
            let len = u32::from_be_bytes([prefix[0], prefix[1], prefix[2], prefix[3]]) as usize;
            let flags = prefix[FLAGS_AT];
            if flags & !FLAG_FINAL != 0 {
                return Err(PipelineError::Integrity(format!(
                    "chunk {index} has unknown frame flags {flags:#04x}"
                )));
            }
            if !(MIN_SEALED_LEN..=max_sealed).contains(&len) {
                return Err(PipelineError::Integrity(format!(
                    "chunk {index} claims {len} bytes where this stream's chunks \
                     seal to {MIN_SEALED_LEN}..={max_sealed}"
                )));
            }
            let mut body = sealer.buffers.take();
            if append_up_to(&mut reader, &mut body, len).await? < len {
                return Err(cut_inside(index));
            }
            hasher.update(prefix);
            hasher.update(&body);
            stored += (FRAME_PREFIX_LEN + len) as u64;
            let s = sealer.clone();
            if !submitter.submit(move || s.open(index, flags, body)).await {
                return Ok((stored, hasher));
            }
            if flags & FLAG_FINAL != 0 {
                let mut extra = [0u8; 1];
                if fill(&mut reader, &mut extra).await? != 0 {
                    return Err(PipelineError::Integrity(
                        "bytes follow the final chunk".into(),
                    ));
                }
                return Ok((stored, hasher));
            }
            index = index.checked_add(1).ok_or_else(|| {
                PipelineError::Integrity("the stream has more than 2^32 chunks".into())
            })?;
        }
    };

    // `None` when the reader stopped before the final chunk (with an error).
    let write = async {
        let mut plain = 0u64;
        while let Some(opened) = results.next().await {
            let opened = opened?;
            let len = opened.plain().len() as u64;
            writer
                .write_all(opened.plain())
                .await
                .map_err(PipelineError::Sink)?;
            plain += len;
            progress.add(len, opened.frame_len as u64);
            let is_final = opened.is_final;
            sealer.buffers.give(opened.buf);
            if is_final {
                return Ok(Some(plain));
            }
        }
        Ok(None)
    };

    let ((stored_bytes, hasher), plain_bytes) = in_stream_order(read, write).await?;
    let sha256 = hex::encode(hasher.finalize());
    if let Some(expected) = expected_sha256 {
        if !expected.trim().eq_ignore_ascii_case(&sha256) {
            return Err(PipelineError::Integrity(format!(
                "sha256 mismatch: the backup record says {}, the stored object is {sha256}",
                expected.trim()
            )));
        }
    }
    writer.flush().await.map_err(PipelineError::Sink)?;
    writer.shutdown().await.map_err(PipelineError::Sink)?;
    Ok(Summary {
        plain_bytes,
        stored_bytes,
        sha256,
    })
}

/// Run the frame reader and the chunk writer together. A writer error ends
/// both at once: nothing more can be written. A reader error first lets the
/// writer finish the chunks already read, so the error reported is the
/// first problem in stream order (a bad chunk before a cut is named as
/// such), and everything before it that verified is written.
async fn in_stream_order<R, W>(
    read: impl Future<Output = Result<R, PipelineError>>,
    write: impl Future<Output = Result<Option<W>, PipelineError>>,
) -> Result<(R, W), PipelineError> {
    let unfinished =
        || PipelineError::Worker("the frame reader stopped before the final chunk".into());
    tokio::pin!(read, write);
    tokio::select! {
        written = &mut write => {
            let written = written?;
            let read = read.await?;
            Ok((read, written.ok_or_else(unfinished)?))
        }
        read = &mut read => match read {
            Ok(read) => Ok((read, write.await?.ok_or_else(unfinished)?)),
            Err(read_error) => {
                write.await?;
                Err(read_error)
            }
        }
    }
}

fn cut_inside(index: u32) -> PipelineError {
    PipelineError::Integrity(format!("the stream ends inside chunk {index} (truncated)"))
}
