//! A TCP proxy that breaks connections on demand: every connection is cut
//! once it has carried a given number of bytes (both ways together), and
//! with a limit of 0 no connection gets through at all.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

pub struct CutProxy {
    pub port: u16,
    limit: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl CutProxy {
    /// Forward 127.0.0.1:<port> to `upstream` (host:port), unlimited.
    pub async fn start(upstream: &str) -> CutProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let limit = Arc::new(AtomicU64::new(u64::MAX));
        let upstream = upstream.to_string();
        let shared = limit.clone();
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                if shared.load(Ordering::SeqCst) == 0 {
                    continue; // dropped: the client sees its connection closed
                }
                tokio::spawn(forward(client, upstream.clone(), shared.clone()));
            }
        });
        CutProxy { port, limit, task }
    }

    /// Cut each connection once it has carried `bytes`, from now on.
    pub fn cut_after(&self, bytes: u64) {
        self.limit.store(bytes, Ordering::SeqCst);
    }

    /// Let everything through again.
    pub fn pass(&self) {
        self.cut_after(u64::MAX);
    }

    /// Let nothing through.
    pub fn off(&self) {
        self.cut_after(0);
    }

    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for CutProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn forward(mut client: TcpStream, upstream: String, limit: Arc<AtomicU64>) {
    let Ok(mut server) = TcpStream::connect(&upstream).await else {
        return;
    };
    let (mut a, mut b) = (vec![0u8; 64 << 10], vec![0u8; 64 << 10]);
    let mut carried = 0u64;
    loop {
        // Which way the bytes go: up (client to server) or down.
        let (n, up) = tokio::select! {
            r = client.read(&mut a) => match r {
                Ok(n) if n > 0 => (n, true),
                _ => return,
            },
            r = server.read(&mut b) => match r {
                Ok(n) if n > 0 => (n, false),
                _ => return,
            },
        };
        let allowed = limit.load(Ordering::SeqCst).saturating_sub(carried);
        let n_out = (n as u64).min(allowed) as usize;
        let sent = if up {
            server.write_all(&a[..n_out]).await
        } else {
            client.write_all(&b[..n_out]).await
        };
        if sent.is_err() {
            return;
        }
        carried += n_out as u64;
        if n_out < n {
            return; // the limit: both connections close here
        }
    }
}
