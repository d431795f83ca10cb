//! A TCP proxy that can be cut: it forwards to a target until a given
//! number of bytes went upstream, then closes every connection and refuses
//! new ones, as a storage service that goes away mid-upload would.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub struct CuttingProxy {
    pub port: u16,
    upstream_bytes: Arc<AtomicU64>,
    dead: Arc<AtomicBool>,
}

impl CuttingProxy {
    /// Forward 127.0.0.1:<port> to `target` until `limit` bytes went upstream.
    pub fn start(target: &str, limit: u64) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let upstream_bytes = Arc::new(AtomicU64::new(0));
        let dead = Arc::new(AtomicBool::new(false));
        let open: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let (bytes, d, target) = (upstream_bytes.clone(), dead.clone(), target.to_string());
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                if d.load(Ordering::SeqCst) {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                }
                let Ok(server) = TcpStream::connect(&target) else {
                    continue;
                };
                {
                    let mut o = open.lock().unwrap();
                    o.push(client.try_clone().unwrap());
                    o.push(server.try_clone().unwrap());
                }
                let (b, dd, o) = (bytes.clone(), d.clone(), open.clone());
                let (c2, s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                std::thread::spawn(move || pump(client, server, Some((b, dd, o, limit))));
                std::thread::spawn(move || pump(s2, c2, None));
            }
        });
        CuttingProxy {
            port,
            upstream_bytes,
            dead,
        }
    }

    pub fn is_cut(&self) -> bool {
        self.dead.load(Ordering::SeqCst)
    }

    pub fn upstream_bytes(&self) -> u64 {
        self.upstream_bytes.load(Ordering::SeqCst)
    }
}

type Budget = (
    Arc<AtomicU64>,
    Arc<AtomicBool>,
    Arc<Mutex<Vec<TcpStream>>>,
    u64,
);

fn pump(mut from: TcpStream, mut to: TcpStream, budget: Option<Budget>) {
    let _ = from.set_read_timeout(Some(Duration::from_secs(120)));
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if let Some((bytes, dead, open, limit)) = &budget {
            let total = bytes.fetch_add(n as u64, Ordering::SeqCst) + n as u64;
            if total > *limit || dead.load(Ordering::SeqCst) {
                dead.store(true, Ordering::SeqCst);
                for s in open.lock().unwrap().iter() {
                    let _ = s.shutdown(Shutdown::Both);
                }
                break;
            }
        }
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}
