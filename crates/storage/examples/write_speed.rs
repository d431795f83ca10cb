//! How fast an `ObjectWriter` stores bytes on a backend:
//! `cargo run --release -p coffer-storage --example write_speed -- DIR [MiB]`.

use coffer_storage::{Storage, StorageConfig};
use std::time::Instant;
use tokio::io::AsyncWriteExt;

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let root = args.next().expect("usage: write_speed DIR [MiB]");
    let mib: usize = args.next().map_or(512, |m| m.parse().expect("MiB"));
    let storage = Storage::connect(&StorageConfig::Fs { root: root.into() })
        .await
        .expect("connect");
    let piece = vec![7u8; 1 << 20];
    let t0 = Instant::now();
    let mut w = storage.writer("speed.bin").await.expect("writer");
    for _ in 0..mib {
        w.write_all(&piece).await.expect("write");
    }
    w.shutdown().await.expect("shutdown");
    let secs = t0.elapsed().as_secs_f64();
    println!(
        "{mib} MiB in {secs:.2} s: {:.0} MB/s",
        (mib << 20) as f64 / secs / 1e6
    );
    storage.delete("speed.bin").await.expect("delete");
}
