//! How a backup stream is encoded.

use crate::codec::Codec;
use crate::format::MAX_CHUNK_SIZE;
use crate::PipelineError;

/// The default chunk: large enough that per-chunk costs (a frame, a task,
/// a compressor call) vanish, small enough that a few in flight per core
/// stay a few MiB.
pub const DEFAULT_CHUNK_SIZE: usize = 1 << 20;

/// How `encode` cuts, compresses and spreads the work.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EncodeOptions {
    /// Compression of each chunk (default `zstd:1`).
    pub codec: Codec,
    /// Plain bytes per chunk, 1 ..= 64 MiB (default 1 MiB). Each chunk is
    /// compressed and sealed on its own, so this is also the unit a restore
    /// verifies before writing.
    pub chunk_size: usize,
    /// Chunks compressed and sealed at once (default: the cores available).
    /// Memory in use is at most `3 * parallelism + 2` chunk-sized buffers
    /// plus 8 MiB (at least two chunks) read ahead, whatever the stream's
    /// size.
    pub parallelism: usize,
}

impl Default for EncodeOptions {
    fn default() -> Self {
        EncodeOptions {
            codec: Codec::default(),
            chunk_size: DEFAULT_CHUNK_SIZE,
            parallelism: default_parallelism(),
        }
    }
}

impl EncodeOptions {
    pub(crate) fn validate(&self) -> Result<(), PipelineError> {
        self.codec.validate()?;
        if !(1..=MAX_CHUNK_SIZE).contains(&self.chunk_size) {
            return Err(PipelineError::InvalidOptions(format!(
                "chunk size {} is outside 1..={MAX_CHUNK_SIZE}",
                self.chunk_size
            )));
        }
        if self.parallelism == 0 {
            return Err(PipelineError::InvalidOptions(
                "parallelism must be at least 1".into(),
            ));
        }
        Ok(())
    }
}

/// The cores this process may use; 1 if that cannot be told.
pub(crate) fn default_parallelism() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_nonsense_is_refused() {
        let d = EncodeOptions::default();
        assert_eq!(d.codec, Codec::Zstd { level: 1 });
        assert_eq!(d.chunk_size, 1 << 20);
        assert!(d.parallelism >= 1);
        d.validate().unwrap();
        for bad in [
            EncodeOptions {
                chunk_size: 0,
                ..d.clone()
            },
            EncodeOptions {
                chunk_size: MAX_CHUNK_SIZE + 1,
                ..d.clone()
            },
            EncodeOptions {
                parallelism: 0,
                ..d.clone()
            },
            EncodeOptions {
                codec: Codec::Gzip { level: 11 },
                ..d.clone()
            },
        ] {
            assert!(
                matches!(bad.validate(), Err(PipelineError::InvalidOptions(_))),
                "{bad:?}"
            );
        }
    }
}
