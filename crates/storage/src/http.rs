//! The HTTP side shared by the object-store backends: one reqwest client
//! with timeouts, the retry policy, and a transport that counts its
//! requests in flight and can be told to stop sending.
//!
//! Why count: OpenDAL uploads the parts of a large object from spawned
//! tasks, and aborting an upload cancels them and then removes the parts
//! it finds. A part whose request is cancelled after the server stored it
//! (its answer still on the way) is not found, and stays behind as an
//! orphan segment (Swift) or multipart part (S3): hidden from listings but
//! taking space and quota. Cancelling does not stop a part already on the
//! wire either: the HTTP client sends the whole body before it notices.
//! So each [`crate::ObjectWriter`] talks through its own [`Tracked`]
//! transport, and before it aborts, stops it sending data and lets the
//! requests already out finish.

use crate::StorageError;
use opendal::{Buffer, HttpBody, HttpTransport, HttpTransporter, Operator};
use std::error::Error as _;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Once};
use std::time::Duration;

/// Longest wait for a connection; a dead endpoint fails quickly.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest a single request may take. A request carries at most one part
/// (8 MiB): this allows for links down to ~30 KB/s and still ends a request
/// to a server that stopped answering.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(300);

/// Retries of temporary failures (connection errors, 5xx, 429): three,
/// 0.5 s, 1 s and 2 s apart (plus jitter), which rides out a proxy restart
/// and makes an unreachable service fail within a few seconds.
pub(crate) fn retry() -> opendal::layers::RetryLayer {
    opendal::layers::RetryLayer::new()
        .with_max_times(3)
        .with_min_delay(Duration::from_millis(500))
        .with_jitter()
}

/// A client for OpenDAL and for the few calls OpenDAL does not make
/// (Swift login, container creation, large-object deletion).
pub(crate) fn client() -> Result<Client, StorageError> {
    // reqwest builds a TLS config even for plain HTTP, and the workspace
    // builds rustls without a default provider: install ring once.
    static PROVIDER: Once = Once::new();
    PROVIDER.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
    Client::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(REQUEST_TIMEOUT)
        .build()
        .map_err(error)
}

/// The client type: the reqwest that OpenDAL's transport is built on
/// (the workspace's `reqwest` is an older one).
pub(crate) type Client = reqwest013::Client;

/// A failed request of our own, with its cause (reqwest's Display leaves
/// out "connection refused").
pub(crate) fn error(e: reqwest013::Error) -> StorageError {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text = format!("{text}: {s}");
        source = s.source();
    }
    if e.is_builder() {
        StorageError::Config(text)
    } else {
        StorageError::Unavailable(text)
    }
}

/// The plain transport over `client`.
pub(crate) fn transport(client: Client) -> HttpTransporter {
    HttpTransporter::new(opendal_http_transport_reqwest::ReqwestTransport::new(
        client,
    ))
}

/// `op` sending its requests through `transport`, layers kept.
pub(crate) fn with_transport(op: &Operator, transport: HttpTransporter) -> Operator {
    let ctx = op.base_context().with_http_transport(transport);
    op.clone().with_context(ctx)
}

/// A transport that knows how many of its requests are in flight, and
/// that can be told to send no more data.
#[derive(Clone)]
pub(crate) struct Tracked {
    inner: HttpTransporter,
    in_flight: Arc<AtomicUsize>,
    sealed: Arc<AtomicBool>,
}

impl Tracked {
    pub(crate) fn new(inner: HttpTransporter) -> Self {
        Self {
            inner,
            in_flight: Arc::default(),
            sealed: Arc::default(),
        }
    }

    /// Refuse every later request that carries data (an abort only lists
    /// and deletes), then wait until no request is in flight, for at most
    /// `limit`.
    pub(crate) async fn seal(&self, limit: Duration) {
        // SeqCst on both sides: a request either sees the seal, or is
        // counted before the wait below looks.
        self.sealed.store(true, Ordering::SeqCst);
        let deadline = tokio::time::Instant::now() + limit;
        while self.in_flight.load(Ordering::SeqCst) > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Counts one request from start to end, even if its future is dropped.
struct InFlight(Arc<AtomicUsize>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl HttpTransport for Tracked {
    async fn fetch(&self, req: http::Request<Buffer>) -> opendal::Result<http::Response<HttpBody>> {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        let _guard = InFlight(self.in_flight.clone());
        if self.sealed.load(Ordering::SeqCst) && !req.body().is_empty() {
            return Err(opendal::Error::new(
                opendal::ErrorKind::Unexpected,
                "the upload is being discarded",
            ));
        }
        self.inner.fetch(req).await
    }
}
