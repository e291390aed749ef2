//! Reading the input images a task names, without becoming an SSRF proxy.
//!
//! An image URL is either a file URL of this server (read straight from the blob store) or
//! an `https` URL on a host the operator allow-listed. Remote fetches never reach a loopback,
//! private, link-local or otherwise non-public address unless the operator allow-listed that
//! network: IP literals are checked before sending, names are checked when resolved (by the
//! HTTP client's own resolver, so a DNS answer cannot change between check and connect), and
//! each of at most `max_redirects` redirects is checked again. Downloads are capped.

use crate::blob::{BlobStore, FileKey};
use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use ipnet::IpNet;
use serde::Deserialize;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use url::Url;

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FetchConfig {
    /// Hosts whose `https` image URLs tasks may name: `images.example.com` or
    /// `*.cdn.example.com` (any subdomain).
    pub allow_hosts: Vec<String>,
    /// Networks that may be fetched although private, loopback or link-local (CIDR).
    pub allow_private_networks: Vec<String>,
    /// Extra PEM root certificates to trust (an internal CA).
    pub extra_root_certs: Vec<PathBuf>,
    pub timeout_seconds: u64,
    pub max_redirects: usize,
}

impl Default for FetchConfig {
    fn default() -> Self {
        FetchConfig {
            allow_hosts: Vec::new(),
            allow_private_networks: Vec::new(),
            extra_root_certs: Vec::new(),
            timeout_seconds: 30,
            max_redirects: 3,
        }
    }
}

impl FetchConfig {
    /// `allow_private_networks` parsed; an entry that is no CIDR or address is an error.
    pub fn private_networks(&self) -> anyhow::Result<Vec<IpNet>> {
        self.allow_private_networks
            .iter()
            .map(|n| {
                n.parse::<IpNet>()
                    .or_else(|_| n.parse::<std::net::IpAddr>().map(IpNet::from))
                    .map_err(|_| {
                        anyhow::anyhow!("fetch.allow_private_networks: {n:?} is not a CIDR")
                    })
            })
            .collect()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    /// The URL is not one this server may read (policy); not worth retrying.
    #[error("{0}")]
    NotAllowed(String),
    /// The URL names nothing (a missing file, an HTTP 4xx); not worth retrying.
    #[error("{0}")]
    NotFound(String),
    /// The network or the remote side failed; a retry may help.
    #[error("{0}")]
    Transient(String),
}

impl FetchError {
    pub fn is_retryable(&self) -> bool {
        matches!(self, FetchError::Transient(_))
    }
}

/// Whether `ip` is a public unicast address (what a remote fetch may reach by default).
pub fn is_public_ip(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public_v4(v4);
            }
            let seg = v6.segments();
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (seg[0] & 0xfe00) == 0xfc00 // unique local fc00::/7
                || (seg[0] & 0xffc0) == 0xfe80 // link-local fe80::/10
                || (seg[0] & 0xffc0) == 0xfec0 // site-local (deprecated)
                || (seg[0] == 0x64 && seg[1] == 0xff9b) // NAT64 64:ff9b::/96 can reach anything
                || (seg[0] == 0x2001 && seg[1] == 0x0db8) // documentation
                || (seg[0] == 0x2002)) // 6to4 embeds IPv4
        }
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let o = ip.octets();
    !(ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || o[0] == 0
        || (o[0] == 100 && (o[1] & 0xc0) == 64) // shared address space 100.64/10
        || (o[0] == 192 && o[1] == 0 && o[2] == 0) // IETF protocol assignments
        || (o[0] == 198 && (o[1] & 0xfe) == 18) // benchmarking 198.18/15
        || o[0] >= 240) // reserved
}

fn ip_allowed(ip: IpAddr, allow: &[IpNet]) -> bool {
    is_public_ip(ip) || allow.iter().any(|net| net.contains(&ip))
}

fn describe_ip(ip: IpAddr) -> &'static str {
    match ip {
        IpAddr::V4(v4) if v4.is_loopback() => "a loopback",
        IpAddr::V6(v6) if v6.is_loopback() => "a loopback",
        IpAddr::V4(v4) if v4.is_link_local() => "a link-local",
        IpAddr::V6(v6) if (v6.segments()[0] & 0xffc0) == 0xfe80 => "a link-local",
        IpAddr::V4(v4) if v4.is_private() => "a private",
        _ => "a non-public",
    }
}

/// Resolves names for the HTTP client and drops every address the policy refuses.
struct GuardedResolver {
    allow: Arc<Vec<IpNet>>,
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let allow = self.allow.clone();
        Box::pin(async move {
            let host = name.as_str().to_string();
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let allowed: Vec<SocketAddr> = addrs
                .into_iter()
                .filter(|a| ip_allowed(a.ip(), &allow))
                .collect();
            if allowed.is_empty() {
                return Err(format!("{host} resolves to no public address").into());
            }
            Ok(Box::new(allowed.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

pub struct Fetcher {
    /// `<public base>/files/`
    files_prefix: String,
    /// `<CDN base>/` when file URLs point at a CDN in front of the bucket.
    cdn_prefix: Option<String>,
    blobs: Arc<dyn BlobStore>,
    client: reqwest::Client,
    allow_hosts: Vec<String>,
    allow_networks: Arc<Vec<IpNet>>,
    max_bytes: u64,
    max_redirects: usize,
}

impl Fetcher {
    /// `public_base` (and `cdn_base`, when file URLs point at a CDN) say which URLs are this
    /// server's own files; `max_bytes` caps every download.
    pub fn new(
        config: &FetchConfig,
        public_base: &str,
        cdn_base: &str,
        max_bytes: u64,
        blobs: Arc<dyn BlobStore>,
    ) -> anyhow::Result<Fetcher> {
        let allow_networks = Arc::new(config.private_networks()?);
        let mut builder = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(config.timeout_seconds))
            .connect_timeout(Duration::from_secs(10))
            .user_agent(concat!("plume-server/", env!("CARGO_PKG_VERSION")))
            .dns_resolver(Arc::new(GuardedResolver {
                allow: allow_networks.clone(),
            }));
        for path in &config.extra_root_certs {
            let pem = std::fs::read(path).map_err(|e| {
                anyhow::anyhow!(
                    "fetch.extra_root_certs: cannot read {}: {e}",
                    path.display()
                )
            })?;
            builder = builder.add_root_certificate(reqwest::Certificate::from_pem(&pem)?);
        }
        Ok(Fetcher {
            files_prefix: format!("{public_base}/files/"),
            cdn_prefix: (!cdn_base.is_empty()).then(|| format!("{cdn_base}/")),
            blobs,
            client: builder.build()?,
            allow_hosts: config
                .allow_hosts
                .iter()
                .map(|h| h.trim().to_ascii_lowercase())
                .collect(),
            allow_networks,
            max_bytes,
            max_redirects: config.max_redirects,
        })
    }

    /// The file key of one of this server's own file URLs; `None` for any other URL.
    pub fn own_key(&self, url: &str) -> Option<Result<FileKey, FetchError>> {
        let rest = url.strip_prefix(&self.files_prefix).or_else(|| {
            self.cdn_prefix
                .as_deref()
                .and_then(|prefix| url.strip_prefix(prefix))
        })?;
        Some(FileKey::parse(rest).map_err(|e| FetchError::NotFound(format!("{url}: {e}"))))
    }

    fn host_allowed(&self, host: &str) -> bool {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        self.allow_hosts
            .iter()
            .any(|pattern| match pattern.strip_prefix("*.") {
                Some(suffix) => host.ends_with(&format!(".{suffix}")),
                None => *pattern == host,
            })
    }

    /// The policy checks that need no network: scheme, allow-listed host, IP literals. A
    /// provider's result URL (`strict = false`) may use any host and plain http, but never a
    /// refused address.
    fn check_remote(&self, url: &Url, strict: bool) -> Result<(), FetchError> {
        if !strict && !matches!(url.scheme(), "http" | "https") {
            return Err(FetchError::NotAllowed(format!(
                "{url}: only http(s) URLs may be fetched"
            )));
        }
        if strict && url.scheme() != "https" {
            return Err(FetchError::NotAllowed(format!(
                "{url}: only https URLs may be fetched"
            )));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(FetchError::NotAllowed(format!(
                "{url}: credentials in URLs are not allowed"
            )));
        }
        let host = match url.host() {
            Some(url::Host::Domain(d)) => d.to_string(),
            Some(url::Host::Ipv4(ip)) => ip.to_string(),
            Some(url::Host::Ipv6(ip)) => ip.to_string(),
            None => return Err(FetchError::NotAllowed(format!("{url}: no host"))),
        };
        if strict && !self.host_allowed(&host) {
            return Err(FetchError::NotAllowed(format!(
                "host {host} is not allow-listed; upload the image first or ask the operator to allow the host"
            )));
        }
        let literal = match url.host() {
            Some(url::Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
            Some(url::Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
            _ => None,
        };
        if let Some(ip) = literal.filter(|ip| !ip_allowed(*ip, &self.allow_networks)) {
            return Err(FetchError::NotAllowed(format!(
                "{url}: {ip} is {} address",
                describe_ip(ip)
            )));
        }
        Ok(())
    }

    /// Checks a URL when a task is created: own files must exist, other URLs must pass the
    /// policy. Names are resolved only at fetch time.
    /// The key of a file in our store that `url` names: one of our own file URLs, or any
    /// http(s) URL whose path ends in `/files/<key>` for a key of ours that exists (the same
    /// file under another node's address, an old public base, a proxy prefix). Such a URL is
    /// read from the store, never fetched, so it cannot reach the network; keys carry 128
    /// random bits, so naming one means having been given it.
    pub async fn stored_key(&self, url: &str) -> Option<Result<FileKey, FetchError>> {
        if let Some(own) = self.own_key(url) {
            return Some(own);
        }
        self.elsewhere_key(url).await.map(Ok)
    }

    /// The looser half of [`Fetcher::stored_key`]: a key of ours under another address. One
    /// HEAD proves it exists.
    async fn elsewhere_key(&self, url: &str) -> Option<FileKey> {
        let parsed = Url::parse(url).ok()?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return None;
        }
        let path = parsed.path();
        let rest = &path[path.rfind("/files/")? + "/files/".len()..];
        let key = FileKey::parse(rest).ok()?;
        if !(rest.starts_with("uploads/") || rest.starts_with("results/")) {
            return None;
        }
        match self.blobs.head(&key).await {
            Ok(Some(_)) => Some(key),
            _ => None,
        }
    }

    /// Checks that a task may read `url`, with one HEAD at most: `Some(key)` when it names a
    /// file of ours (which must exist), `None` for a remote URL the policy allows.
    pub async fn check(&self, url: &str) -> Result<Option<FileKey>, FetchError> {
        if let Some(key) = self.own_key(url) {
            let key = key?;
            return match self.blobs.head(&key).await {
                Ok(Some(_)) => Ok(Some(key)),
                Ok(None) => Err(FetchError::NotFound(format!("no uploaded file at {url}"))),
                Err(e) => Err(FetchError::Transient(e.to_string())),
            };
        }
        if let Some(key) = self.elsewhere_key(url).await {
            return Ok(Some(key));
        }
        let parsed = Url::parse(url).map_err(|e| FetchError::NotAllowed(format!("{url}: {e}")))?;
        self.check_remote(&parsed, true).map(|()| None)
    }

    /// Resolves a name ahead of the request so a refusal says why; the resolver inside the
    /// client enforces the same rule at connect time.
    async fn check_resolved(&self, url: &Url) -> Result<(), FetchError> {
        let Some(url::Host::Domain(host)) = url.host() else {
            return Ok(());
        };
        let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, 0))
            .await
            .map_err(|e| FetchError::Transient(format!("cannot resolve {host}: {e}")))?
            .collect();
        match addrs
            .iter()
            .find(|a| !ip_allowed(a.ip(), &self.allow_networks))
        {
            Some(bad) => Err(FetchError::NotAllowed(format!(
                "{host} resolves to {}, {} address",
                bad.ip(),
                describe_ip(bad.ip())
            ))),
            None => Ok(()),
        }
    }

    /// Reads the image at `url`, at most the upload limit.
    pub async fn fetch(&self, url: &str) -> Result<Bytes, FetchError> {
        if let Some(key) = self.stored_key(url).await {
            let key = key?;
            return match self.blobs.read(&key, self.max_bytes).await {
                Ok(Some(bytes)) => Ok(bytes),
                Ok(None) => Err(FetchError::NotFound(format!("no uploaded file at {url}"))),
                Err(e) => Err(FetchError::Transient(e.to_string())),
            };
        }
        self.get_checked(
            url,
            true,
            &reqwest::header::HeaderMap::new(),
            self.max_bytes,
        )
        .await
    }

    /// Downloads a file a provider returned (a result video, a still). `headers` (a provider
    /// key) go only to the first URL's host; every hop is checked against the address rules.
    pub async fn download(
        &self,
        url: &str,
        headers: &reqwest::header::HeaderMap,
        max_bytes: u64,
    ) -> Result<Bytes, FetchError> {
        self.get_checked(url, false, headers, max_bytes).await
    }

    /// Whether `url` is one of this server's own file URLs.
    pub fn is_own_url(&self, url: &str) -> bool {
        self.own_key(url).is_some()
    }

    /// Whether this server's public base is a loopback, private or `localhost` address, so
    /// that nobody outside could fetch its file URLs.
    pub fn public_base_is_private(&self) -> bool {
        match Url::parse(&self.files_prefix)
            .ok()
            .and_then(|u| u.host().map(|h| h.to_owned()))
        {
            Some(url::Host::Domain(d)) => {
                d == "localhost" || d.ends_with(".localhost") || d.ends_with(".local")
            }
            Some(url::Host::Ipv4(ip)) => !is_public_ip(IpAddr::V4(ip)),
            Some(url::Host::Ipv6(ip)) => !is_public_ip(IpAddr::V6(ip)),
            None => true,
        }
    }

    async fn get_checked(
        &self,
        url: &str,
        strict: bool,
        headers: &reqwest::header::HeaderMap,
        max_bytes: u64,
    ) -> Result<Bytes, FetchError> {
        let mut current =
            Url::parse(url).map_err(|e| FetchError::NotAllowed(format!("{url}: {e}")))?;
        let first_host = current.host_str().map(str::to_string);
        for _ in 0..=self.max_redirects {
            self.check_remote(&current, strict)?;
            self.check_resolved(&current).await?;
            let mut request = self.client.get(current.clone());
            if current.host_str().map(str::to_string) == first_host {
                request = request.headers(headers.clone());
            }
            let response = request.send().await.map_err(|e| {
                FetchError::Transient(format!(
                    "fetching {}: {}",
                    redact(&current),
                    error_chain(&e)
                ))
            })?;
            let status = response.status();
            if status.is_redirection() {
                let location = response
                    .headers()
                    .get(reqwest::header::LOCATION)
                    .and_then(|v| v.to_str().ok())
                    .ok_or_else(|| {
                        FetchError::NotFound(format!(
                            "{}: redirect without a location",
                            redact(&current)
                        ))
                    })?;
                current = current.join(location).map_err(|e| {
                    FetchError::NotAllowed(format!("{}: bad redirect: {e}", redact(&current)))
                })?;
                continue;
            }
            if status.is_client_error() {
                return Err(FetchError::NotFound(format!(
                    "{}: HTTP {status}",
                    redact(&current)
                )));
            }
            if !status.is_success() {
                return Err(FetchError::Transient(format!(
                    "{}: HTTP {status}",
                    redact(&current)
                )));
            }
            if response.content_length().is_some_and(|n| n > max_bytes) {
                return Err(FetchError::NotAllowed(format!(
                    "{}: larger than {max_bytes} bytes",
                    redact(&current)
                )));
            }
            let mut body = BytesMut::new();
            let mut stream = response.bytes_stream();
            while let Some(chunk) = stream.next().await {
                let chunk = chunk.map_err(|e| {
                    FetchError::Transient(format!("reading {}: {e}", redact(&current)))
                })?;
                if body.len() as u64 + chunk.len() as u64 > max_bytes {
                    return Err(FetchError::NotAllowed(format!(
                        "{}: larger than {max_bytes} bytes",
                        redact(&current)
                    )));
                }
                body.extend_from_slice(&chunk);
            }
            return Ok(body.freeze());
        }
        Err(FetchError::NotAllowed(format!(
            "{}: more than {} redirects",
            redact(&current),
            self.max_redirects
        )))
    }
}

/// A URL for messages: without its query, which may carry a signature or a key.
fn redact(url: &Url) -> String {
    let mut shown = url.clone();
    shown.set_query(None);
    shown.set_fragment(None);
    shown.to_string()
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_public_addresses_are_public() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "255.255.255.255",
            "224.0.0.1",
            "::1",
            "::",
            "fe80::1",
            "fc00::1",
            "fd12::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "64:ff9b::a00:1",
            "198.18.0.1",
            "240.0.0.1",
        ] {
            assert!(!is_public_ip(private.parse().unwrap()), "{private}");
        }
        for public in ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "172.32.0.1"] {
            assert!(is_public_ip(public.parse().unwrap()), "{public}");
        }
        let allow: Vec<IpNet> = vec!["127.0.0.0/8".parse().unwrap()];
        assert!(ip_allowed("127.0.0.2".parse().unwrap(), &allow));
        assert!(!ip_allowed("10.0.0.1".parse().unwrap(), &allow));
    }
}
