//! Backup direction: plain stream -> chunks -> compressed, sealed frames,
//! hashed and written in order.
//!
//! Three loops run concurrently in the caller's task: one reads chunks
//! (ahead of the workers by a few MiB, so the backup tool is never kept
//! waiting on a full pipe while both cores compress), one submits them to
//! the workers (`workers.rs`), and one takes the sealed frames in order and
//! writes them; a thread of its own hashes them. Reading, the CPU work and
//! writing all overlap, and the bounded queues between them keep memory at
//! a few chunks however long the stream is.

use crate::format::{Header, HEADER_LEN};
use crate::read::append_up_to;
use crate::seal::{Sealed, Sealer};
use crate::{workers, DataKey, EncodeOptions, PipelineError, Progress, Summary};
use rand::RngCore;
use sha2::{Digest, Sha256};
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

/// Bytes read and waiting for a worker, at most (at least two chunks).
const READ_AHEAD_BYTES: usize = 8 << 20;

/// Encode `reader` to `writer`: the whole object, then flush and shutdown.
///
/// Errors: `Source` when reading fails (the backup tool died), `Sink` when
/// writing fails (the io error's text is in the message), `InvalidOptions`
/// for options that cannot work. On any error the writer is left as it is,
/// neither flushed nor shut down, so an upload that finishes on shutdown is
/// not completed with a partial object: the caller aborts it.
pub async fn encode<R, W>(
    mut reader: R,
    mut writer: W,
    key: &DataKey,
    opts: &EncodeOptions,
    progress: &Progress,
) -> Result<Summary, PipelineError>
where
    R: AsyncRead + Unpin + Send,
    W: AsyncWrite + Unpin + Send,
{
    opts.validate()?;
    let mut nonce_prefix = [0u8; 8];
    rand::rngs::OsRng.fill_bytes(&mut nonce_prefix);
    let header = Header {
        codec: opts.codec.kind(),
        chunk_size: opts.chunk_size,
        nonce_prefix,
    };
    let header_bytes = header.to_bytes();
    let read_ahead = (READ_AHEAD_BYTES / opts.chunk_size).max(2);
    let sealer = Arc::new(Sealer::for_encode(
        key,
        &header,
        opts.codec,
        workers::buffers_in_use(opts.parallelism) + read_ahead,
    ));
    let (submitter, mut results) = workers::ordered::<Sealed>(opts.parallelism);
    let chunk_size = opts.chunk_size;

    // Reading runs ahead of the workers by up to `READ_AHEAD_BYTES`: the
    // backup tool's output is drained while both cores compress, so the
    // tool keeps reading its files instead of waiting on a full pipe, and
    // its waits on the disk overlap the CPU work here rather than adding
    // to it.
    let (to_submit, mut read_chunks) =
        tokio::sync::mpsc::channel::<(u32, bool, Vec<u8>)>(read_ahead);
    let reader_sealer = sealer.clone();
    let read = async move {
        let sealer = reader_sealer;
        let mut index: u32 = 0;
        loop {
            // Room before the chunk for the frame prefix and after it for
            // the tag: a chunk that is stored as it is gets sealed in place.
            let mut buf = sealer.chunk_buffer();
            let len = append_up_to(&mut reader, &mut buf, chunk_size).await?;
            // A short chunk is the last. A stream that ends on a chunk
            // boundary ends with an empty final chunk.
            let is_final = len < chunk_size;
            if to_submit.send((index, is_final, buf)).await.is_err() || is_final {
                return Ok::<(), PipelineError>(());
            }
            index = index.checked_add(1).ok_or_else(|| {
                PipelineError::InvalidOptions(format!(
                    "the stream is longer than 2^32 chunks of {chunk_size} bytes: use larger chunks"
                ))
            })?;
        }
    };
    let submit_sealer = sealer.clone();
    let submit = async move {
        while let Some((index, is_final, buf)) = read_chunks.recv().await {
            let s = submit_sealer.clone();
            if !submitter.submit(move || s.seal(index, is_final, buf)).await {
                break;
            }
        }
        Ok(())
    };

    // SHA-256 is sequential over the whole object: it runs on a thread of
    // its own, fed the frames after they are written, so hashing overlaps
    // reading and writing instead of taking turns with them in this task.
    let (to_hash, mut frames) = tokio::sync::mpsc::channel::<Vec<u8>>(2 * opts.parallelism);
    let hash_sealer = sealer.clone();
    let hashing = tokio::task::spawn_blocking(move || {
        let mut hasher = Sha256::new();
        while let Some(frame) = frames.blocking_recv() {
            hasher.update(&frame);
            hash_sealer.buffers.give(frame);
        }
        hasher
    });
    let write = async {
        writer
            .write_all(&header_bytes)
            .await
            .map_err(PipelineError::Sink)?;
        hash(&to_hash, header_bytes.to_vec()).await?;
        progress.add(0, HEADER_LEN as u64);
        let (mut plain, mut stored) = (0u64, HEADER_LEN as u64);
        while let Some(sealed) = results.next().await {
            let sealed = sealed?;
            writer
                .write_all(&sealed.frame)
                .await
                .map_err(PipelineError::Sink)?;
            plain += sealed.plain_len as u64;
            stored += sealed.frame.len() as u64;
            progress.add(sealed.plain_len as u64, sealed.frame.len() as u64);
            hash(&to_hash, sealed.frame).await?;
            if sealed.is_final {
                return Ok((plain, stored));
            }
        }
        // The reader stops early only with an error, which `try_join`
        // reports before this.
        Err(PipelineError::Worker(
            "the chunk reader stopped before the final chunk".into(),
        ))
    };

    let ((), (), (plain_bytes, stored_bytes)) = tokio::try_join!(read, submit, write)?;
    drop(to_hash);
    let hasher = hashing
        .await
        .map_err(|e| PipelineError::Worker(format!("the hashing thread failed: {e}")))?;
    writer.flush().await.map_err(PipelineError::Sink)?;
    writer.shutdown().await.map_err(PipelineError::Sink)?;
    Ok(Summary {
        plain_bytes,
        stored_bytes,
        sha256: hex::encode(hasher.finalize()),
    })
}

/// Hand a written frame to the hashing thread.
async fn hash(
    to_hash: &tokio::sync::mpsc::Sender<Vec<u8>>,
    frame: Vec<u8>,
) -> Result<(), PipelineError> {
    to_hash
        .send(frame)
        .await
        .map_err(|_| PipelineError::Worker("the hashing thread stopped".into()))
}
