//! A function's one HTTP stack: one rustls configuration on aws-lc-rs, its trust roots
//! chosen once, under every client (the AWS SDK's through [`sdk_http`], Twilio's).
//!
//! Why not the SDK's own HTTP client: it and reqwest each read and decoded the whole
//! system CA bundle at start (PEM through a constant-time base64 decoder), four fifths
//! of a function's init. Here both clients share one configuration, and its roots are
//! Mozilla's, compiled in (`webpki-roots`): nothing to read or decode at start. An
//! operator who wants other roots names them the usual way, `SSL_CERT_FILE` or
//! `SSL_CERT_DIR`, and pays for reading them.

mod sdk_http;

use std::path::PathBuf;
use std::sync::Arc;

use rustls::RootCertStore;
use rustls::pki_types::CertificateDer;

pub use sdk_http::SdkHttpClient;

#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("the trust roots in {path} could not be read: {source}")]
    RootsUnreadable {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("no usable trust roots in {0}")]
    NoRoots(String),
    #[error("TLS could not be configured: {0}")]
    Tls(#[from] rustls::Error),
    #[error("an HTTP client could not be built: {0}")]
    HttpClient(#[from] reqwest::Error),
}

/// Where the trust roots come from, as the environment says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RootsSource {
    /// Mozilla's roots as `webpki-roots` compiled them in: the default.
    Builtin,
    /// One PEM bundle: `SSL_CERT_FILE`.
    Bundle(PathBuf),
    /// Whatever `rustls-native-certs` finds under `SSL_CERT_DIR` (every file of a
    /// directory: the slowest).
    Directory,
}

impl RootsSource {
    /// `SSL_CERT_FILE` when set; else `SSL_CERT_DIR` when set; else the built-in roots.
    pub fn from_env() -> RootsSource {
        Self::from_vars(|name| std::env::var_os(name))
    }

    /// As [`RootsSource::from_env`], from `var`. An empty variable counts as unset, as
    /// with every variable the functions read.
    fn from_vars(var: impl Fn(&str) -> Option<std::ffi::OsString>) -> RootsSource {
        let set = |name| var(name).filter(|value| !value.is_empty());
        match (set("SSL_CERT_FILE"), set("SSL_CERT_DIR")) {
            (Some(file), _) => RootsSource::Bundle(file.into()),
            (None, Some(_)) => RootsSource::Directory,
            (None, None) => RootsSource::Builtin,
        }
    }

    /// Reads the roots. A bundle or directory must hold at least one usable
    /// certificate: an operator who named roots and got none is told at start.
    pub fn load(&self) -> Result<RootCertStore, TransportError> {
        match self {
            RootsSource::Builtin => Ok(RootCertStore {
                roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
            }),
            RootsSource::Bundle(path) => {
                let pem =
                    std::fs::read(path).map_err(|source| TransportError::RootsUnreadable {
                        path: path.clone(),
                        source,
                    })?;
                let roots = roots_from_pem(&pem);
                if roots.is_empty() {
                    return Err(TransportError::NoRoots(path.display().to_string()));
                }
                Ok(roots)
            }
            RootsSource::Directory => {
                let found = rustls_native_certs::load_native_certs();
                for error in &found.errors {
                    tracing::warn!(%error, "a trust root could not be read");
                }
                let mut roots = RootCertStore::empty();
                roots.add_parsable_certificates(found.certs);
                if roots.is_empty() {
                    return Err(TransportError::NoRoots("SSL_CERT_DIR".into()));
                }
                Ok(roots)
            }
        }
    }
}

const BEGIN_CERTIFICATE: &[u8] = b"-----BEGIN CERTIFICATE-----";
const END_CERTIFICATE: &[u8] = b"-----END CERTIFICATE-----";

/// Every `CERTIFICATE` block of a PEM bundle that parses as a trust anchor. Text
/// between blocks (comments, other kinds of block) is skipped, and so is a block that
/// does not decode, counted in a warning, as the system's own loader does.
///
/// Hand-written rather than the `pem` crate: its byte-at-a-time search made reading
/// a system bundle (220 kB) five times slower than all of the rest of init.
pub fn roots_from_pem(pem: &[u8]) -> RootCertStore {
    let mut certs = Vec::new();
    let mut undecodable = 0usize;
    let mut rest = pem;
    while let Some(begin) = memchr::memmem::find(rest, BEGIN_CERTIFICATE) {
        let body = &rest[begin + BEGIN_CERTIFICATE.len()..];
        let Some(end) = memchr::memmem::find(body, END_CERTIFICATE) else {
            // Cut short: the roots before it stand.
            undecodable += 1;
            break;
        };
        // Whitespace skipped, SIMD decoding: the crate the AWS SDK already brings.
        match base64_simd::forgiving_decode_to_vec(&body[..end]).ok() {
            Some(der) => certs.push(CertificateDer::from(der)),
            None => undecodable += 1,
        }
        rest = &body[end + END_CERTIFICATE.len()..];
    }
    let mut roots = RootCertStore::empty();
    let (_, unparsable) = roots.add_parsable_certificates(certs);
    if undecodable + unparsable > 0 {
        tracing::warn!(
            undecodable,
            unparsable,
            "trust roots skipped: not a usable certificate"
        );
    }
    roots
}

/// The TLS configuration every client of a function shares: rustls on aws-lc-rs (the
/// crypto the SDK and jsonwebtoken use too), its safe default versions and suites.
#[derive(Clone)]
pub struct Transport {
    tls: rustls::ClientConfig,
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transport").finish_non_exhaustive()
    }
}

impl Transport {
    /// Reads the trust roots the environment names ([`RootsSource::from_env`]).
    pub fn from_env() -> Result<Transport, TransportError> {
        Self::with_roots(RootsSource::from_env().load()?)
    }

    pub fn with_roots(roots: RootCertStore) -> Result<Transport, TransportError> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Transport { tls })
    }

    /// A reqwest client builder on the shared TLS configuration; the caller adds its
    /// timeouts.
    pub fn reqwest(&self) -> reqwest::ClientBuilder {
        reqwest::Client::builder().tls_backend_preconfigured(self.tls.clone())
    }

    /// The AWS SDK's shared configuration (region, credentials from the environment),
    /// its HTTP over this transport.
    pub async fn aws_config(&self) -> Result<aws_config::SdkConfig, TransportError> {
        let http = SdkHttpClient::new(self)?;
        Ok(aws_config::defaults(aws_config::BehaviorVersion::latest())
            .http_client(http)
            .load()
            .await)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A real root (ISRG Root X1), as a bundle would carry it.
    const ISRG_ROOT_X1: &str = include_str!("transport/isrg-root-x1.pem");

    #[test]
    fn a_bundle_with_comments_between_blocks_yields_every_root() {
        let bundle = format!(
            "# ISRG Root X1\n{ISRG_ROOT_X1}\n# again, as Amazon Linux's bundle lists names\n{ISRG_ROOT_X1}"
        );
        assert_eq!(roots_from_pem(bundle.as_bytes()).len(), 2);
    }

    /// On a machine with a system bundle (Debian's, Amazon Linux's): the same
    /// certificates, in the same order, as rustls' own PEM reader finds.
    #[test]
    fn a_system_bundle_reads_as_rustls_reads_it() {
        use rustls::pki_types::pem::PemObject;
        let bundles = [
            "/etc/ssl/certs/ca-certificates.crt",
            "/etc/pki/tls/certs/ca-bundle.crt",
        ];
        for path in bundles.iter().filter(|p| std::path::Path::new(p).is_file()) {
            let pem = std::fs::read(path).unwrap();
            let reference: Vec<CertificateDer> = CertificateDer::pem_slice_iter(&pem)
                .collect::<Result<_, _>>()
                .unwrap();
            let mut expected = RootCertStore::empty();
            expected.add_parsable_certificates(reference);
            let found = roots_from_pem(&pem);
            assert!(!found.is_empty());
            assert_eq!(found.roots, expected.roots);
        }
    }

    #[test]
    fn a_block_wrapped_at_any_width_decodes() {
        let body: String = ISRG_ROOT_X1
            .lines()
            .filter(|line| !line.starts_with("-----"))
            .collect();
        for width in [1, 63, 65, 76] {
            let wrapped: Vec<String> = body
                .as_bytes()
                .chunks(width)
                .map(|chunk| String::from_utf8(chunk.to_vec()).unwrap())
                .collect();
            let bundle = format!(
                "-----BEGIN CERTIFICATE-----\r\n{}\r\n-----END CERTIFICATE-----\r\n",
                wrapped.join("\r\n")
            );
            assert_eq!(roots_from_pem(bundle.as_bytes()).len(), 1, "width {width}");
        }
    }

    #[test]
    fn a_bad_block_costs_only_itself() {
        let bundle = format!(
            "-----BEGIN CERTIFICATE-----\n!!not base64!!\n-----END CERTIFICATE-----\n{ISRG_ROOT_X1}"
        );
        assert_eq!(roots_from_pem(bundle.as_bytes()).len(), 1);
    }

    #[test]
    fn blocks_that_are_not_certificates_are_skipped() {
        let bundle =
            format!("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n{ISRG_ROOT_X1}");
        assert_eq!(roots_from_pem(bundle.as_bytes()).len(), 1);
    }

    #[test]
    fn a_truncated_bundle_keeps_the_roots_before_the_cut() {
        let cut = &ISRG_ROOT_X1[..ISRG_ROOT_X1.len() - 20];
        let bundle = format!("{ISRG_ROOT_X1}\n{cut}");
        assert_eq!(roots_from_pem(bundle.as_bytes()).len(), 1);
    }

    #[test]
    fn a_bundle_without_roots_is_an_error_naming_it() {
        let dir = std::env::temp_dir().join(format!("qdn-roots-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("empty.pem");
        std::fs::write(&path, "# nothing here\n").unwrap();
        let error = RootsSource::Bundle(path.clone()).load().unwrap_err();
        assert!(error.to_string().contains(&path.display().to_string()));
        let missing = RootsSource::Bundle(dir.join("missing.pem"))
            .load()
            .unwrap_err();
        assert!(matches!(missing, TransportError::RootsUnreadable { .. }));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_named_file_wins_then_the_directory_then_the_built_in_roots() {
        let source = |vars: &[(&str, &str)]| {
            let vars: Vec<(String, String)> = vars
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            RootsSource::from_vars(|name| {
                vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.into())
            })
        };
        let bundle = RootsSource::Bundle("/run/roots.pem".into());
        assert_eq!(
            source(&[
                ("SSL_CERT_FILE", "/run/roots.pem"),
                ("SSL_CERT_DIR", "/run/certs")
            ]),
            bundle
        );
        assert_eq!(source(&[("SSL_CERT_FILE", "/run/roots.pem")]), bundle);
        assert_eq!(
            source(&[("SSL_CERT_DIR", "/run/certs")]),
            RootsSource::Directory
        );
        assert_eq!(source(&[]), RootsSource::Builtin);
        // Empty is unset.
        assert_eq!(
            source(&[("SSL_CERT_FILE", ""), ("SSL_CERT_DIR", "/run/certs")]),
            RootsSource::Directory
        );
        assert_eq!(
            source(&[("SSL_CERT_FILE", ""), ("SSL_CERT_DIR", "")]),
            RootsSource::Builtin
        );
    }

    #[test]
    fn the_built_in_roots_are_mozillas() {
        let roots = RootsSource::Builtin.load().unwrap();
        assert_eq!(roots.len(), webpki_roots::TLS_SERVER_ROOTS.len());
        // ISRG's, and the roots AWS's endpoints chain to.
        let isrg = roots_from_pem(ISRG_ROOT_X1.as_bytes());
        assert!(roots.roots.contains(&isrg.roots[0]));
        for name in ["Amazon Root CA 1", "Starfield Services Root"] {
            assert!(
                roots.roots.iter().any(|anchor| memchr::memmem::find(
                    anchor.subject.as_ref(),
                    name.as_bytes()
                )
                .is_some()),
                "{name}"
            );
        }
    }

    /// `.cargo/config.toml` builds AWS-LC without CPU-jitter seeding (20 ms of CPU on a
    /// process's first TLS handshake otherwise); the same `[env]` reaches rustc, so a
    /// lost setting fails here.
    #[test]
    fn aws_lc_is_built_without_cpu_jitter_seeding() {
        assert_eq!(option_env!("AWS_LC_SYS_NO_JITTER_ENTROPY"), Some("1"));
    }

    #[test]
    fn the_shared_configuration_builds_both_clients() {
        let transport = Transport::with_roots(roots_from_pem(ISRG_ROOT_X1.as_bytes())).unwrap();
        transport.reqwest().build().unwrap();
        SdkHttpClient::new(&transport).unwrap();
    }

    proptest! {
        /// Any bytes at all: roots or none, never a panic.
        #[test]
        fn any_bundle_parses_without_panicking(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
            let _ = roots_from_pem(&bytes);
        }

        /// Any text around and between real blocks leaves every root found.
        #[test]
        fn text_between_blocks_never_hides_a_root(
            before in "[^-]{0,200}",
            between in "[^-]{0,200}",
        ) {
            let bundle = format!("{before}{ISRG_ROOT_X1}{between}{ISRG_ROOT_X1}{before}");
            prop_assert_eq!(roots_from_pem(bundle.as_bytes()).len(), 2);
        }
    }
}
