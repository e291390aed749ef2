//! HTTPS on loopback for tests: a test CA and a localhost/127.0.0.1 certificate made with
//! `openssl` ([`test_certificate`]), an axum listener that speaks TLS ([`TlsListener`]), and a
//! minimal server for fetch tests ([`start`]: an image, a redirect to a given URL, a 404).

use axum::response::IntoResponse;
use bytes::Bytes;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tokio_rustls::rustls;

pub struct HttpsServer {
    pub port: u16,
    /// The CA (here: the self-signed certificate itself) a client must trust.
    pub cert_path: PathBuf,
    pub hits: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for HttpsServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Starts the server on 127.0.0.1. `GET /image.png` answers `image`; `GET /redirect`
/// answers 302 to `redirect_to`; anything else 404.
pub async fn start(dir: &Path, image: Bytes, redirect_to: String) -> anyhow::Result<HttpsServer> {
    let (cert_path, config) = test_certificate(dir)?;
    let listener = TlsListener::bind(config).await?;
    let port = listener.port;
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    let app = axum::Router::new()
        .route(
            "/image.png",
            axum::routing::get(move || async move { ([("content-type", "image/png")], image) }),
        )
        .route(
            "/redirect",
            axum::routing::get(move || async move {
                (axum::http::StatusCode::FOUND, [("location", redirect_to)]).into_response()
            }),
        )
        .layer(axum::middleware::from_fn(
            move |request: axum::extract::Request, next: axum::middleware::Next| {
                counter.fetch_add(1, Ordering::SeqCst);
                next.run(request)
            },
        ));
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(HttpsServer {
        port,
        cert_path,
        hits,
        task,
    })
}

/// Makes a CA and a leaf certificate for `localhost` and `127.0.0.1` signed by it, in `dir`.
/// Returns the CA file a client must trust and the server's TLS configuration.
pub fn test_certificate(dir: &Path) -> anyhow::Result<(PathBuf, Arc<rustls::ServerConfig>)> {
    let cert_path = dir.join("ca.pem");
    let ca_key = dir.join("ca.key");
    let key_path = dir.join("leaf.key");
    let csr = dir.join("leaf.csr");
    let leaf = dir.join("leaf.pem");
    let ext = dir.join("leaf.ext");
    std::fs::write(
        &ext,
        "basicConstraints=critical,CA:FALSE\nsubjectAltName=DNS:localhost,IP:127.0.0.1\n",
    )?;
    let openssl = |args: &[&std::ffi::OsStr]| -> anyhow::Result<()> {
        let status = std::process::Command::new("openssl")
            .args(args)
            .stderr(std::process::Stdio::null())
            .status()?;
        anyhow::ensure!(status.success(), "openssl {:?} failed", args);
        Ok(())
    };
    let os = |s: &'static str| std::ffi::OsStr::new(s);
    openssl(&[
        os("req"),
        os("-x509"),
        os("-newkey"),
        os("rsa:2048"),
        os("-nodes"),
        os("-days"),
        os("1"),
        os("-subj"),
        os("/CN=Plume Test CA"),
        os("-keyout"),
        ca_key.as_os_str(),
        os("-out"),
        cert_path.as_os_str(),
    ])?;
    openssl(&[
        os("req"),
        os("-new"),
        os("-newkey"),
        os("rsa:2048"),
        os("-nodes"),
        os("-subj"),
        os("/CN=localhost"),
        os("-keyout"),
        key_path.as_os_str(),
        os("-out"),
        csr.as_os_str(),
    ])?;
    openssl(&[
        os("x509"),
        os("-req"),
        os("-in"),
        csr.as_os_str(),
        os("-CA"),
        cert_path.as_os_str(),
        os("-CAkey"),
        ca_key.as_os_str(),
        os("-CAcreateserial"),
        os("-days"),
        os("1"),
        os("-extfile"),
        ext.as_os_str(),
        os("-out"),
        leaf.as_os_str(),
    ])?;
    let certs = CertificateDer::pem_file_iter(&leaf)?.collect::<Result<Vec<_>, _>>()?;
    let key = PrivateKeyDer::from_pem_file(&key_path)?;
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_no_client_auth()
    .with_single_cert(certs, key)?;
    Ok((cert_path, Arc::new(config)))
}

/// A loopback TCP listener whose connections speak TLS, for `axum::serve`.
pub struct TlsListener {
    tcp: tokio::net::TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
    pub port: u16,
}

impl TlsListener {
    pub async fn bind(config: Arc<rustls::ServerConfig>) -> anyhow::Result<TlsListener> {
        let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let port = tcp.local_addr()?.port();
        Ok(TlsListener {
            tcp,
            acceptor: tokio_rustls::TlsAcceptor::from(config),
            port,
        })
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = tokio_rustls::server::TlsStream<tokio::net::TcpStream>;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let Ok((tcp, addr)) = self.tcp.accept().await else {
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                continue;
            };
            // A failed handshake (a client that does not trust the CA) drops that connection.
            if let Ok(tls) = self.acceptor.accept(tcp).await {
                return (tls, addr);
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.tcp.local_addr()
    }
}
