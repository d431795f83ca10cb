//! A small RESP2 client over the server's Unix socket: commands go out as
//! arrays of bulk strings (so no argument is ever parsed by the server as
//! more than one token), replies are read whole.

use coffer_strategy::DatastoreError;
use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;

/// One reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    Simple(String),
    Error(String),
    Int(i64),
    Bulk(Option<Vec<u8>>),
    Array(Option<Vec<Reply>>),
}

impl Reply {
    /// The elements of an array reply, as strings.
    pub fn strings(&self) -> Vec<String> {
        match self {
            Reply::Array(Some(items)) => items
                .iter()
                .filter_map(|i| match i {
                    Reply::Bulk(Some(b)) => Some(String::from_utf8_lossy(b).into_owned()),
                    Reply::Simple(s) => Some(s.clone()),
                    _ => None,
                })
                .collect(),
            _ => Vec::new(),
        }
    }
}

/// One connection.
pub struct Conn {
    stream: BufReader<UnixStream>,
}

fn io(what: &str, e: impl std::fmt::Display) -> DatastoreError {
    DatastoreError::Command {
        command: format!("redis {what}"),
        detail: e.to_string(),
    }
}

const IO_TIMEOUT: Duration = Duration::from_secs(10);

impl Conn {
    /// Connect to `socket` and authenticate as `user`.
    pub async fn open(socket: &Path, user: &str, password: &str) -> Result<Self, DatastoreError> {
        let stream = tokio::time::timeout(IO_TIMEOUT, UnixStream::connect(socket))
            .await
            .map_err(|_| DatastoreError::Timeout(IO_TIMEOUT, "connecting to redis".into()))?
            .map_err(|e| io("connect", e))?;
        let mut conn = Conn {
            stream: BufReader::new(stream),
        };
        match conn.call(&["AUTH", user, password]).await? {
            Reply::Simple(_) => Ok(conn),
            // The password is not in the reply; the server's words are safe to show.
            Reply::Error(e) => Err(io("AUTH", e)),
            other => Err(io("AUTH", format!("unexpected reply {other:?}"))),
        }
    }

    /// Send one command and read its reply (an error reply is `Reply::Error`).
    pub async fn call(&mut self, args: &[&str]) -> Result<Reply, DatastoreError> {
        let mut out = format!("*{}\r\n", args.len()).into_bytes();
        for a in args {
            out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
            out.extend_from_slice(a.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        let command = args.first().copied().unwrap_or("");
        tokio::time::timeout(IO_TIMEOUT, async {
            self.stream
                .get_mut()
                .write_all(&out)
                .await
                .map_err(|e| io(command, e))?;
            read_reply(&mut self.stream).await
        })
        .await
        .map_err(|_| DatastoreError::Timeout(IO_TIMEOUT, format!("redis {command}")))?
    }

    /// `call`, with an error reply turned into an error (naming only the command).
    pub async fn ok(&mut self, args: &[&str]) -> Result<Reply, DatastoreError> {
        match self.call(args).await? {
            Reply::Error(e) => Err(io(args.first().copied().unwrap_or(""), e)),
            r => Ok(r),
        }
    }
}

fn read_reply(
    r: &mut BufReader<UnixStream>,
) -> Pin<Box<dyn Future<Output = Result<Reply, DatastoreError>> + Send + '_>> {
    Box::pin(async move {
        let mut line = String::new();
        if r.read_line(&mut line).await.map_err(|e| io("read", e))? == 0 {
            return Err(io("read", "connection closed"));
        }
        let line = line.trim_end_matches(['\r', '\n']);
        let (kind, rest) = line.split_at(line.len().min(1));
        let number = || {
            rest.parse::<i64>()
                .map_err(|e| io("read", format!("bad length {rest:?}: {e}")))
        };
        Ok(match kind {
            "+" => Reply::Simple(rest.to_string()),
            "-" => Reply::Error(rest.to_string()),
            ":" => Reply::Int(number()?),
            "$" => match number()? {
                n if n < 0 => Reply::Bulk(None),
                n => {
                    let mut buf = vec![0u8; n as usize + 2];
                    r.read_exact(&mut buf).await.map_err(|e| io("read", e))?;
                    buf.truncate(n as usize);
                    Reply::Bulk(Some(buf))
                }
            },
            "*" => match number()? {
                n if n < 0 => Reply::Array(None),
                n => {
                    let mut items = Vec::with_capacity(n as usize);
                    for _ in 0..n {
                        items.push(read_reply(r).await?);
                    }
                    Reply::Array(Some(items))
                }
            },
            _ => return Err(io("read", format!("unexpected reply line {line:?}"))),
        })
    })
}
