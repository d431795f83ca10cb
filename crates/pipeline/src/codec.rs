//! Which compression a backup uses, as configured and as stored.

use crate::PipelineError;
use std::fmt;
use std::ops::RangeInclusive;
use std::str::FromStr;

/// zstd levels accepted: its fast (negative) levels down to -7, up to its
/// strongest, 22. Past that zstd would clamp silently; we say so instead.
const ZSTD_LEVELS: RangeInclusive<i32> = -7..=22;
const GZIP_LEVELS: RangeInclusive<u32> = 0..=9;
const ZSTD_DEFAULT: i32 = 1;
const GZIP_DEFAULT: u32 = 6;

/// How chunks are compressed before they are encrypted.
///
/// Written and parsed as `none`, `zstd`, `zstd:LEVEL`, `gzip` or
/// `gzip:LEVEL`; the default, `zstd:1`: on database files it stores about
/// as little as level 3 (pgbench data: 46 MB at 1, 48 MB at 3, of 1 GB)
/// for half the CPU, and CPU is what bounds a backup on a small machine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Codec {
    /// Store chunks as they are (still encrypted): for data that is already
    /// compressed, where compression would only spend CPU.
    None,
    /// zstd at `level` (-7 ..= 22).
    Zstd { level: i32 },
    /// gzip (deflate) at `level` (0 ..= 9), for compatibility.
    Gzip { level: u32 },
}

impl Default for Codec {
    fn default() -> Self {
        Codec::Zstd {
            level: ZSTD_DEFAULT,
        }
    }
}

impl Codec {
    /// What a stream records: decompression does not need the level.
    pub(crate) fn kind(self) -> CodecKind {
        match self {
            Codec::None => CodecKind::None,
            Codec::Zstd { .. } => CodecKind::Zstd,
            Codec::Gzip { .. } => CodecKind::Gzip,
        }
    }

    /// Refuse levels the libraries would clamp or reject, since the fields
    /// are public and may not have come through `FromStr`.
    pub(crate) fn validate(self) -> Result<(), PipelineError> {
        match self {
            Codec::None => Ok(()),
            Codec::Zstd { level } if ZSTD_LEVELS.contains(&level) => Ok(()),
            Codec::Gzip { level } if GZIP_LEVELS.contains(&level) => Ok(()),
            Codec::Zstd { level } => Err(PipelineError::InvalidOptions(format!(
                "zstd level {level} is outside {}..={}",
                ZSTD_LEVELS.start(),
                ZSTD_LEVELS.end()
            ))),
            Codec::Gzip { level } => Err(PipelineError::InvalidOptions(format!(
                "gzip level {level} is outside {}..={}",
                GZIP_LEVELS.start(),
                GZIP_LEVELS.end()
            ))),
        }
    }
}

impl fmt::Display for Codec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Codec::None => f.write_str("none"),
            Codec::Zstd { level } => write!(f, "zstd:{level}"),
            Codec::Gzip { level } => write!(f, "gzip:{level}"),
        }
    }
}

impl FromStr for Codec {
    type Err = PipelineError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let spec = s.trim().to_ascii_lowercase();
        let (name, level) = match spec.split_once(':') {
            Some((name, level)) => (name, Some(level.trim())),
            None => (spec.as_str(), None),
        };
        let bad_level = || PipelineError::InvalidOptions(format!("bad compression level in {s:?}"));
        let codec = match (name.trim(), level) {
            ("none", None) => Codec::None,
            ("zstd", None) => Codec::default(),
            ("zstd", Some(l)) => Codec::Zstd {
                level: l.parse().map_err(|_| bad_level())?,
            },
            ("gzip", None) => Codec::Gzip {
                level: GZIP_DEFAULT,
            },
            ("gzip", Some(l)) => Codec::Gzip {
                level: l.parse().map_err(|_| bad_level())?,
            },
            _ => {
                return Err(PipelineError::Unsupported(format!(
                    "codec {s:?}; known codecs: none, zstd[:LEVEL], gzip[:LEVEL]"
                )))
            }
        };
        codec.validate()?;
        Ok(codec)
    }
}

/// The codec as a stream's header records it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CodecKind {
    None,
    Zstd,
    Gzip,
}

impl CodecKind {
    pub fn id(self) -> u8 {
        match self {
            CodecKind::None => 0,
            CodecKind::Zstd => 1,
            CodecKind::Gzip => 2,
        }
    }

    pub fn from_id(id: u8) -> Result<Self, PipelineError> {
        match id {
            0 => Ok(CodecKind::None),
            1 => Ok(CodecKind::Zstd),
            2 => Ok(CodecKind::Gzip),
            other => Err(PipelineError::Unsupported(format!(
                "codec id {other} in the backup header (this build knows 0 none, 1 zstd, 2 gzip)"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_the_config_says() {
        let ok = [
            ("zstd", Codec::Zstd { level: 1 }),
            ("zstd:1", Codec::Zstd { level: 1 }),
            ("ZSTD:19", Codec::Zstd { level: 19 }),
            ("zstd:-3", Codec::Zstd { level: -3 }),
            ("gzip", Codec::Gzip { level: 6 }),
            (" gzip:9 ", Codec::Gzip { level: 9 }),
            ("none", Codec::None),
        ];
        for (text, codec) in ok {
            assert_eq!(text.parse::<Codec>().unwrap(), codec, "{text}");
        }
    }

    #[test]
    fn refuses_unknown_codecs_and_levels() {
        for bad in [
            "lz4", "", "zstd:", "zstd:x", "zstd:23", "gzip:10", "gzip:-1", "none:1",
        ] {
            let err = bad.parse::<Codec>().unwrap_err();
            assert!(
                matches!(
                    err,
                    PipelineError::Unsupported(_) | PipelineError::InvalidOptions(_)
                ),
                "{bad}: {err}"
            );
        }
        let e = "lz4".parse::<Codec>().unwrap_err().to_string();
        assert!(e.contains("known codecs: none, zstd"), "{e}");
    }

    #[test]
    fn display_parses_back() {
        for c in [
            Codec::None,
            Codec::default(),
            Codec::Zstd { level: 1 },
            Codec::Gzip { level: 4 },
        ] {
            assert_eq!(c.to_string().parse::<Codec>().unwrap(), c);
        }
        assert_eq!(Codec::default().to_string(), "zstd:1");
    }

    #[test]
    fn kinds_round_trip_through_their_ids() {
        for k in [CodecKind::None, CodecKind::Zstd, CodecKind::Gzip] {
            assert_eq!(CodecKind::from_id(k.id()).unwrap(), k);
        }
        assert!(matches!(
            CodecKind::from_id(3),
            Err(PipelineError::Unsupported(_))
        ));
    }
}
