//! Fetching media from a caller's URL into the blob store (issue 13 §2), without becoming a proxy into private
//! networks: `https` only (plain `http` and loopback addresses only under `allow_loopback_http`, which the local
//! runner's tests set), every address a name resolves to checked before connecting (the resolver is ours, so the
//! check applies to the address actually connected, on the first request and after each redirect), IP-literal
//! hosts checked likewise, no proxy (it would connect on our behalf), at most 3 redirects, the guide's size limit
//! from `Content-Length` and again while streaming, and one time limit for the whole fetch. The body streams into
//! `BlobStore::start_parts`, never whole in memory. The type is not taken from the response: the stored object is
//! then validated like any upload, and the probe decides.
//!
//! Not wired yet: `POST /v1/media` with `sourceUrl`, the `importing` status and the asynchronous run in AWS.

use std::{
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
    sync::Arc,
    time::Duration,
};

use bytes::Bytes;
use reqwest::{
    dns::{Addrs, Name, Resolve, Resolving},
    redirect, Url,
};
use shared::{
    domain::MediaKind,
    ports::{BlobError, BlobStore, ObjectHead, PartWriter},
};

/// Parts of the stored object (S3's minimum part is 5 MiB).
const PART_BYTES: u64 = 8 * 1024 * 1024;

#[derive(Debug, Clone)]
pub struct ImportPolicy {
    /// Allows plain `http` and loopback addresses (and nothing else private): loopback test servers only.
    pub allow_loopback_http: bool,
    pub max_redirects: usize,
    /// For the whole fetch, headers and body.
    pub total_timeout: Duration,
    pub connect_timeout: Duration,
}

impl Default for ImportPolicy {
    fn default() -> Self {
        Self {
            allow_loopback_http: false,
            max_redirects: 3,
            total_timeout: Duration::from_secs(600),
            connect_timeout: Duration::from_secs(10),
        }
    }
}

/// Why a URL could not be imported: a verdict on the media (it ends `invalid` with this code).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImportFailure {
    #[error("only https URLs are fetched, not {0}")]
    SchemeRefused(String),
    #[error("{0} resolves to an address that is not public (loopback, private, link-local or metadata)")]
    ForbiddenAddress(String),
    #[error("the file is larger than the {limit}-byte limit for this media kind")]
    TooLarge { limit: u64 },
    #[error("more than {0} redirects")]
    TooManyRedirects(usize),
    #[error("the fetch took longer than {0:?}")]
    Timeout(Duration),
    #[error("the source could not be fetched: {0}")]
    Unreachable(String),
}

impl ImportFailure {
    /// The violation code stored on the media.
    pub fn code(&self) -> &'static str {
        match self {
            Self::SchemeRefused(_) => "source_scheme_refused",
            Self::ForbiddenAddress(_) => "source_forbidden_address",
            Self::TooLarge { .. } => "source_too_large",
            Self::TooManyRedirects(_) => "source_too_many_redirects",
            Self::Timeout(_) => "source_timeout",
            Self::Unreachable(_) => "source_unreachable",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error(transparent)]
    Failure(#[from] ImportFailure),
    /// Storing failed: transient, retry.
    #[error("storing the imported file failed")]
    Store(#[from] BlobError),
}

/// Fetches `url` into `key` (at most `kind`'s size limit); returns what was stored.
pub async fn import_url(
    policy: &ImportPolicy,
    url: &str,
    kind: MediaKind,
    store: &dyn BlobStore,
    key: &str,
) -> Result<ObjectHead, ImportError> {
    let url = Url::parse(url).map_err(|e| ImportFailure::Unreachable(format!("not a URL ({e})")))?;
    check_url(&url, policy.allow_loopback_http)?;
    let client = client(policy).map_err(|e| ImportFailure::Unreachable(e.to_string()))?;
    let limit = kind.max_size_bytes();
    let mut writer = store.start_parts(key, "application/octet-stream", PART_BYTES).await?;
    let fetched = tokio::time::timeout(policy.total_timeout, fetch(&client, url, limit, writer.as_mut())).await;
    match fetched {
        Ok(Ok(())) => Ok(writer.complete().await?),
        Ok(Err(e)) => {
            writer.abort().await;
            Err(e)
        }
        Err(_) => {
            writer.abort().await;
            Err(ImportFailure::Timeout(policy.total_timeout).into())
        }
    }
}

async fn fetch(client: &reqwest::Client, url: Url, limit: u64, writer: &mut dyn PartWriter) -> Result<(), ImportError> {
    let mut response = client.get(url).send().await.map_err(classify)?;
    let status = response.status();
    if status.is_redirection() {
        // reqwest hands back, unfollowed, a redirect to a scheme it cannot fetch (file:, ftp:, gopher:...).
        let scheme = response
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|l| l.to_str().ok())
            .and_then(|l| Url::parse(l).ok())
            .map(|u| u.scheme().to_owned());
        if let Some(scheme) = scheme.filter(|s| s != "http" && s != "https") {
            return Err(ImportFailure::SchemeRefused(scheme).into());
        }
    }
    if !status.is_success() {
        return Err(ImportFailure::Unreachable(format!("the server answered {status}")).into());
    }
    if response.content_length().is_some_and(|length| length > limit) {
        return Err(ImportFailure::TooLarge { limit }.into());
    }
    let part = PART_BYTES as usize;
    let mut buffer: Vec<u8> = Vec::new();
    let mut total: u64 = 0;
    let mut next = 1u32;
    while let Some(chunk) = response.chunk().await.map_err(classify)? {
        total += chunk.len() as u64;
        if total > limit {
            return Err(ImportFailure::TooLarge { limit }.into());
        }
        buffer.extend_from_slice(&chunk);
        while buffer.len() >= part {
            let rest = buffer.split_off(part);
            let full = std::mem::replace(&mut buffer, rest);
            writer.write_part(next, Bytes::from(full)).await?;
            next += 1;
        }
    }
    if !buffer.is_empty() || next == 1 {
        writer.write_part(next, Bytes::from(buffer)).await?;
    }
    Ok(())
}

fn client(policy: &ImportPolicy) -> reqwest::Result<reqwest::Client> {
    let allow = policy.allow_loopback_http;
    let max = policy.max_redirects;
    let redirects = redirect::Policy::custom(move |attempt| {
        if attempt.previous().len() > max {
            return attempt.error(ImportFailure::TooManyRedirects(max));
        }
        match check_url(attempt.url(), allow) {
            Ok(()) => attempt.follow(),
            Err(failure) => attempt.error(failure),
        }
    });
    reqwest::Client::builder()
        .redirect(redirects)
        .dns_resolver(Arc::new(GuardedResolver { allow_loopback: allow }))
        // A proxy would connect on our behalf, past the resolver's check.
        .no_proxy()
        .https_only(!allow)
        .connect_timeout(policy.connect_timeout)
        .build()
}

/// The scheme, and the host when it is an IP literal (the resolver is not asked for those).
fn check_url(url: &Url, allow_loopback_http: bool) -> Result<(), ImportFailure> {
    match url.scheme() {
        "https" => {}
        "http" if allow_loopback_http => {}
        other => return Err(ImportFailure::SchemeRefused(other.to_owned())),
    }
    let literal = match url.host() {
        Some(url::Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
        Some(url::Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
        Some(url::Host::Domain(_)) => None,
        None => return Err(ImportFailure::Unreachable("the URL has no host".into())),
    };
    match literal {
        Some(ip) if !address_allowed(ip, allow_loopback_http) => Err(ImportFailure::ForbiddenAddress(ip.to_string())),
        _ => Ok(()),
    }
}

/// Resolves with the system resolver, then refuses the name if any of its addresses is not public: a name that
/// mixes public and private addresses is a rebinding trick, not a mirror.
struct GuardedResolver {
    allow_loopback: bool,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow = self.allow_loopback;
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addresses: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            if let Some(bad) = addresses.iter().find(|a| !address_allowed(a.ip(), allow)) {
                let failure = ImportFailure::ForbiddenAddress(format!("{host} ({})", bad.ip()));
                return Err(Box::new(failure) as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(addresses.into_iter()) as Addrs)
        })
    }
}

/// Our failure if reqwest's error carries one (from the resolver or the redirect policy), else "unreachable".
fn classify(error: reqwest::Error) -> ImportError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&error);
    while let Some(e) = source {
        if let Some(failure) = e.downcast_ref::<ImportFailure>() {
            return failure.clone().into();
        }
        source = e.source();
    }
    let detail = if error.is_timeout() {
        "timed out connecting".to_owned()
    } else if error.is_connect() {
        "could not connect".to_owned()
    } else {
        error.without_url().to_string()
    };
    ImportFailure::Unreachable(detail).into()
}

/// Whether the fetcher may connect to `ip`: public unicast only (loopback too when allowed).
pub fn address_allowed(ip: IpAddr, allow_loopback: bool) -> bool {
    match ip {
        IpAddr::V4(v4) => v4_allowed(v4, allow_loopback),
        IpAddr::V6(v6) => {
            // Addresses that carry an IPv4 address are judged by it: mapped, NAT64, 6to4.
            if let Some(v4) = v6.to_ipv4_mapped() {
                return v4_allowed(v4, allow_loopback);
            }
            let s = v6.segments();
            if s[0] == 0x64 && s[1] == 0xff9b && s[2..6] == [0; 4] {
                return v4_allowed(embedded_v4(s[6], s[7]), allow_loopback);
            }
            if s[0] == 0x2002 {
                return v4_allowed(embedded_v4(s[1], s[2]), allow_loopback);
            }
            v6_allowed(v6, allow_loopback)
        }
    }
}

fn embedded_v4(high: u16, low: u16) -> Ipv4Addr {
    let [a, b] = high.to_be_bytes();
    let [c, d] = low.to_be_bytes();
    Ipv4Addr::new(a, b, c, d)
}

fn v4_allowed(ip: Ipv4Addr, allow_loopback: bool) -> bool {
    if ip.is_loopback() {
        return allow_loopback;
    }
    let [a, b, c, _] = ip.octets();
    let refused = ip.is_private()
        || ip.is_link_local() // 169.254/16, the cloud metadata services included
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0
        || (a == 100 && (64..128).contains(&b)) // shared address space (CGNAT)
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 198 && (b == 18 || b == 19)) // benchmarking
        || a >= 240; // reserved
    !refused
}

fn v6_allowed(ip: Ipv6Addr, allow_loopback: bool) -> bool {
    if ip.is_loopback() {
        return allow_loopback;
    }
    let first = ip.segments()[0];
    let refused = ip.is_unspecified()
        || ip.is_multicast()
        || (first & 0xFE00) == 0xFC00 // unique local, AWS's fd00:ec2::254 metadata included
        || (first & 0xFFC0) == 0xFE80 // link-local
        || (first & 0xFFC0) == 0xFEC0 // site-local (deprecated)
        || (first == 0x2001 && ip.segments()[1] == 0x0db8) // documentation
        || ip.segments()[..6] == [0; 6]; // IPv4-compatible (deprecated) and the like
    !refused
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_public_unicast_addresses_are_allowed() {
        for refused in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "::1",
            "::",
            "fd00:ec2::254",
            "fe80::1",
            "::ffff:10.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a9fe:a9fe",
            "2002:7f00:1::",
        ] {
            let ip: IpAddr = refused.parse().expect("ip");
            assert!(!address_allowed(ip, false), "{refused} must be refused");
        }
        for allowed in ["93.184.216.34", "8.8.8.8", "2606:4700:4700::1111", "::ffff:8.8.8.8"] {
            let ip: IpAddr = allowed.parse().expect("ip");
            assert!(address_allowed(ip, false), "{allowed} must be allowed");
        }
        // The loopback flag opens loopback only, never the rest of the private space.
        assert!(address_allowed("127.0.0.1".parse().expect("ip"), true));
        assert!(address_allowed("::1".parse().expect("ip"), true));
        assert!(!address_allowed("10.0.0.1".parse().expect("ip"), true));
        assert!(!address_allowed("169.254.169.254".parse().expect("ip"), true));
    }

    #[test]
    fn schemes_and_literal_hosts_are_checked_before_any_connection() {
        let url = |u: &str| Url::parse(u).expect("url");
        assert_eq!(check_url(&url("https://example.com/a.mp4"), false), Ok(()));
        assert_eq!(
            check_url(&url("http://example.com/a.mp4"), false),
            Err(ImportFailure::SchemeRefused("http".into()))
        );
        assert_eq!(
            check_url(&url("file:///etc/passwd"), true),
            Err(ImportFailure::SchemeRefused("file".into()))
        );
        assert!(matches!(
            check_url(&url("https://169.254.169.254/latest/meta-data/"), false),
            Err(ImportFailure::ForbiddenAddress(_))
        ));
        assert!(matches!(
            check_url(&url("https://[::1]/x"), false),
            Err(ImportFailure::ForbiddenAddress(_))
        ));
        assert_eq!(check_url(&url("http://127.0.0.1:8080/x"), true), Ok(()));
    }
}
