//! A small RESP2 client over the server's unix socket: commands go out as
//! arrays of bulk strings (so every argument reaches the server as exactly
//! one token, whatever bytes it holds), replies are read whole.

use crate::process::redact;
use coffer_strategy::DatastoreError;
use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::time::Duration;
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;

/// How long connecting, or one command and its reply, may take.
const IO_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest bulk string or array accepted (the admin replies are small; this
/// only keeps a confused peer from making us allocate gigabytes).
const MAX_LEN: i64 = 64 << 20;

/// One reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    /// `+OK`
    Simple(String),
    /// `-ERR ...`: the command failed.
    Error(String),
    /// `:42`
    Int(i64),
    /// `$n`: bytes, or None for the null bulk string.
    Bulk(Option<Vec<u8>>),
    /// `*n`: replies, or None for the null array (e.g. no such user).
    Array(Option<Vec<Reply>>),
}

impl Reply {
    /// The elements of an array reply, as strings (others are skipped).
    pub fn strings(&self) -> Vec<String> {
        match self {
            Reply::Array(Some(items)) => items.iter().filter_map(Reply::text).collect(),
            _ => Vec::new(),
        }
    }

    /// A simple or bulk string reply, as a string.
    pub fn text(&self) -> Option<String> {
        match self {
            Reply::Bulk(Some(b)) => Some(String::from_utf8_lossy(b).into_owned()),
            Reply::Simple(s) => Some(s.clone()),
            _ => None,
        }
    }
}

/// One authenticated connection.
pub struct Conn {
    stream: BufReader<UnixStream>,
}

fn failed(command: &str, e: impl std::fmt::Display) -> DatastoreError {
    DatastoreError::Command {
        command: format!("redis {command}"),
        detail: e.to_string(),
    }
}

/// What names a command in errors: its name, and the subcommand of `ACL`
/// (never the later arguments, which may be passwords).
fn label(args: &[&str]) -> String {
    match args {
        [acl, sub, ..] if acl.eq_ignore_ascii_case("ACL") => format!("{acl} {sub}"),
        [name, ..] => name.to_string(),
        [] => String::new(),
    }
}

/// A command as RESP: an array of bulk strings.
pub fn encode(args: &[&str]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out
}

impl Conn {
    /// Connect to `socket` and authenticate as `user`.
    pub async fn open(socket: &Path, user: &str, password: &str) -> Result<Self, DatastoreError> {
        let stream = tokio::time::timeout(IO_TIMEOUT, UnixStream::connect(socket))
            .await
            .map_err(|_| DatastoreError::Timeout(IO_TIMEOUT, "connecting to redis".into()))?
            .map_err(|e| failed("connect", format!("{}: {e}", socket.display())))?;
        let mut conn = Conn {
            stream: BufReader::new(stream),
        };
        conn.ok_secret(&["AUTH", user, password], password).await?;
        Ok(conn)
    }

    /// Send one command and read its reply (an error reply is `Reply::Error`).
    pub async fn call(&mut self, args: &[&str]) -> Result<Reply, DatastoreError> {
        let out = encode(args);
        let command = label(args);
        tokio::time::timeout(IO_TIMEOUT, async {
            let stream = self.stream.get_mut();
            stream
                .write_all(&out)
                .await
                .map_err(|e| failed(&command, e))?;
            read_reply(&mut self.stream).await
        })
        .await
        .map_err(|_| DatastoreError::Timeout(IO_TIMEOUT, format!("redis {command}")))?
    }

    /// `call`, with an error reply turned into `DatastoreError::Command`
    /// naming only the command.
    pub async fn ok(&mut self, args: &[&str]) -> Result<Reply, DatastoreError> {
        self.ok_secret(args, "").await
    }

    /// `ok` for a command holding `secret`: the server's error message is
    /// shown with the secret blanked, should it ever quote it.
    pub async fn ok_secret(
        &mut self,
        args: &[&str],
        secret: &str,
    ) -> Result<Reply, DatastoreError> {
        match self.call(args).await? {
            Reply::Error(e) => Err(failed(&label(args), redact(&e, &[secret]))),
            r => Ok(r),
        }
    }
}

/// Read one reply (arrays recursively).
fn read_reply<R: AsyncBufRead + Unpin + Send>(
    r: &mut R,
) -> Pin<Box<dyn Future<Output = Result<Reply, DatastoreError>> + Send + '_>> {
    Box::pin(async move {
        let mut line = String::new();
        if r.read_line(&mut line)
            .await
            .map_err(|e| failed("read", e))?
            == 0
        {
            return Err(failed("read", "connection closed"));
        }
        let line = line.trim_end_matches(['\r', '\n']);
        let (kind, rest) = line.split_at(line.chars().next().map_or(0, char::len_utf8));
        let length = || match rest.parse::<i64>() {
            Ok(n) if n <= MAX_LEN => Ok(n),
            _ => Err(failed("read", format!("bad length in {line:?}"))),
        };
        Ok(match kind {
            "+" => Reply::Simple(rest.to_string()),
            "-" => Reply::Error(rest.to_string()),
            ":" => Reply::Int(
                rest.parse()
                    .map_err(|_| failed("read", format!("bad integer {line:?}")))?,
            ),
            "$" => match usize::try_from(length()?) {
                Err(_) => Reply::Bulk(None),
                Ok(n) => {
                    let mut buf = vec![0u8; n + 2];
                    r.read_exact(&mut buf)
                        .await
                        .map_err(|e| failed("read", e))?;
                    if !buf.ends_with(b"\r\n") {
                        return Err(failed("read", "bulk string without its CRLF"));
                    }
                    buf.truncate(n);
                    Reply::Bulk(Some(buf))
                }
            },
            "*" => match usize::try_from(length()?) {
                Err(_) => Reply::Array(None),
                Ok(n) => {
                    let mut items = Vec::with_capacity(n.min(1024));
                    for _ in 0..n {
                        items.push(read_reply(&mut *r).await?);
                    }
                    Reply::Array(Some(items))
                }
            },
            _ => return Err(failed("read", format!("unexpected reply line {line:?}"))),
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn parse(mut bytes: &[u8]) -> Result<Reply, DatastoreError> {
        read_reply(&mut bytes).await
    }

    #[test]
    fn every_argument_is_one_bulk_string() {
        assert_eq!(
            encode(&["ACL", "SETUSER", "u", ">x on ~* +@all\r\n"]),
            b"*4\r\n$3\r\nACL\r\n$7\r\nSETUSER\r\n$1\r\nu\r\n$16\r\n>x on ~* +@all\r\n\r\n"
        );
        assert_eq!(label(&["ACL", "SETUSER", "u", ">pw"]), "ACL SETUSER");
        assert_eq!(label(&["AUTH", "u", "pw"]), "AUTH");
    }

    #[tokio::test]
    async fn parses_every_reply_kind() {
        assert_eq!(parse(b"+OK\r\n").await.unwrap(), Reply::Simple("OK".into()));
        assert_eq!(
            parse(b"-NOPERM no\r\n").await.unwrap(),
            Reply::Error("NOPERM no".into())
        );
        assert_eq!(parse(b":-42\r\n").await.unwrap(), Reply::Int(-42));
        assert_eq!(parse(b"$-1\r\n").await.unwrap(), Reply::Bulk(None));
        assert_eq!(parse(b"*-1\r\n").await.unwrap(), Reply::Array(None));
        assert_eq!(
            parse(b"$4\r\na\r\nb\r\n").await.unwrap(),
            Reply::Bulk(Some(b"a\r\nb".to_vec()))
        );
        let nested = parse(b"*3\r\n$5\r\nflags\r\n*1\r\n+on\r\n:7\r\n")
            .await
            .unwrap();
        assert_eq!(
            nested,
            Reply::Array(Some(vec![
                Reply::Bulk(Some(b"flags".to_vec())),
                Reply::Array(Some(vec![Reply::Simple("on".into())])),
                Reply::Int(7),
            ]))
        );
        assert_eq!(nested.strings(), ["flags"]);
    }

    #[tokio::test]
    async fn refuses_malformed_replies() {
        for bad in [
            &b""[..],
            b"?x\r\n",
            b"$5\r\nab\r\n",
            b"$3\r\nabcde",
            b"*2\r\n+a\r\n",
            b":x\r\n",
            b"$99999999999\r\n",
        ] {
            assert!(
                parse(bad).await.is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
