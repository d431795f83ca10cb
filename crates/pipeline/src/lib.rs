#![forbid(unsafe_code)]
//! The backup hot path, over byte streams; it depends on nothing of ours.
//!
//! Backup (`encode`): a datastore tool's output is cut into fixed-size
//! chunks, each compressed (zstd by default, gzip, or none), sealed with
//! AES-256-GCM under the backup's own data key, and written in order to the
//! object upload while the stored bytes are hashed (SHA-256). Restore
//! (`decode`) reverses it and verifies every chunk before any of its bytes
//! reach the output. Chunks are compressed and sealed in parallel on the
//! blocking pool; memory stays at a few chunks whatever the stream's size.
//!
//! The stored format, and why it detects tampering, truncation and
//! reordering, is described in `format.rs`. Data keys are stored only
//! wrapped by the master key (`wrap_key`, `unwrap_key`), which lives in a
//! file of its own (`MasterKey::load_or_create`).

mod codec;
mod compress;
mod decode;
mod encode;
mod error;
mod format;
mod key_file;
mod keys;
mod options;
mod pool;
mod progress;
mod read;
mod seal;
mod workers;
mod wrap;

pub use codec::Codec;
pub use decode::decode;
pub use encode::encode;
pub use error::PipelineError;
pub use format::MAX_CHUNK_SIZE;
pub use keys::{DataKey, MasterKey, KEY_LEN};
pub use options::{EncodeOptions, DEFAULT_CHUNK_SIZE};
pub use progress::{Progress, Summary};
pub use wrap::{unwrap_key, wrap_key};
