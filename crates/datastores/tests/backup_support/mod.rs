//! What the backup tests share: running a backup strategy into a file and
//! feeding files to a restore strategy, the way the agent pumps streams
//! through its pipeline (read to the end, then `done`; write, shut down,
//! then `done`).
#![allow(dead_code)] // each test file uses its own part

use coffer_strategy::{BackupStrategy, DatastoreError, InstanceContext, RestoreStrategy};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::Instant;
use tokio::io::AsyncWriteExt;

/// The registered backup strategy `name`.
pub fn backup(name: &str) -> std::sync::Arc<dyn BackupStrategy> {
    coffer_datastores::backup_strategies().get(name).unwrap()
}

/// The registered restore strategy `name`.
pub fn restore(name: &str) -> std::sync::Arc<dyn RestoreStrategy> {
    coffer_datastores::restore_strategies().get(name).unwrap()
}

/// Run a backup into `out`; its `done` value.
pub async fn backup_to_file(
    strategy: &dyn BackupStrategy,
    ctx: &InstanceContext,
    work: &Path,
    parent: Option<&Value>,
    out: &Path,
) -> Value {
    let t0 = Instant::now();
    std::fs::create_dir_all(work).unwrap();
    let source = strategy.start(ctx, work, parent).await.unwrap();
    let mut reader = source.reader;
    let mut file = tokio::fs::File::create(out).await.unwrap();
    let copied = tokio::io::copy(&mut reader, &mut file).await.unwrap();
    file.flush().await.unwrap();
    drop(reader);
    let value = source.done.await.unwrap();
    eprintln!(
        "backup {} ({copied} bytes) took {:?}: {value}",
        out.display(),
        t0.elapsed()
    );
    assert_eq!(std::fs::metadata(out).unwrap().len(), copied);
    value
}

/// Feed one piece from `file`. The sink's own error wins over the copy's
/// (a tool that stopped reading breaks the pipe, and `done` says why).
pub async fn feed(
    strategy: &dyn RestoreStrategy,
    ctx: &InstanceContext,
    work: &Path,
    index: usize,
    info: &Value,
    file: &Path,
) -> Result<(), DatastoreError> {
    let sink = strategy.piece(ctx, work, index, info).await?;
    let mut writer = sink.writer;
    let mut input = tokio::fs::File::open(file).await.unwrap();
    let copied = tokio::io::copy(&mut input, &mut writer).await;
    let shut = writer.shutdown().await;
    // The writer stays alive while `done` runs: shutdown alone must end
    // the piece.
    sink.done.await?;
    drop(writer);
    copied
        .and(shut)
        .map_err(|e| DatastoreError::Other(anyhow::anyhow!("copying the piece: {e}")))
}

/// A whole restore: begin, every piece in order, finish.
pub async fn restore_files(
    strategy: &dyn RestoreStrategy,
    ctx: &InstanceContext,
    work: &Path,
    pieces: &[(PathBuf, Value)],
) -> Result<(), DatastoreError> {
    let t0 = Instant::now();
    std::fs::create_dir_all(work).unwrap();
    strategy.begin(ctx, work).await?;
    for (i, (file, info)) in pieces.iter().enumerate() {
        feed(strategy, ctx, work, i, info, file).await?;
    }
    let t_pieces = t0.elapsed();
    strategy.finish(ctx, work, pieces.len()).await?;
    eprintln!(
        "restore of {} piece(s): begin + pieces {t_pieces:?}, total {:?}",
        pieces.len(),
        t0.elapsed()
    );
    Ok(())
}

/// A copy of `file` cut to half its length.
pub fn truncated(file: &Path) -> PathBuf {
    let bytes = std::fs::read(file).unwrap();
    let out = file.with_extension("truncated");
    std::fs::write(&out, &bytes[..bytes.len() / 2]).unwrap();
    out
}

/// The admin password an instance's agent uses.
pub fn admin_password(ctx: &InstanceContext) -> String {
    std::fs::read_to_string(ctx.secret_dir.join("os_admin.password")).unwrap()
}

/// `value` without its length fields, so that only the tool itself can
/// notice a damaged piece.
pub fn without_lengths(value: &Value) -> Value {
    let mut v = value.clone();
    if let Some(map) = v.as_object_mut() {
        map.remove("bytes");
        map.remove("rdb_bytes");
    }
    v
}
