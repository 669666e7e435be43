//! A throwaway certificate authority for one benchmark run: a CA and a server
//! certificate for `127.0.0.1` and `localhost` signed by it, made with `rcgen`. The
//! proxies serve the certificate; a function trusts the CA only because its process is
//! started with `SSL_CERT_FILE` naming a file with just the CA (`relay_aws::transport`
//! then trusts those roots instead of its built-in ones; in production it reads none,
//! and here it reads one). Nothing is installed anywhere else.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};

pub struct LocalCa {
    /// The throwaway CA, PEM: what `SSL_CERT_FILE` names.
    pub trust_bundle: PathBuf,
    /// A server configuration with the signed certificate, offering only HTTP/1.1.
    pub server: Arc<rustls::ServerConfig>,
}

impl LocalCa {
    /// Generates the CA and the server certificate, and writes the CA's PEM to
    /// `dir/bench-ca-bundle.pem`.
    pub fn generate(dir: &Path) -> Result<LocalCa, String> {
        let ca_key = KeyPair::generate().map_err(err("CA key"))?;
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(err("CA"))?;
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "QDN benchmark throwaway CA");
        ca_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca_cert = ca_params.self_signed(&ca_key).map_err(err("CA cert"))?;
        let issuer = Issuer::new(ca_params, ca_key);

        let server_key = KeyPair::generate().map_err(err("server key"))?;
        let mut server_params =
            CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
                .map_err(err("server"))?;
        server_params
            .distinguished_name
            .push(DnType::CommonName, "127.0.0.1");
        server_params.use_authority_key_identifier_extension = true;
        server_params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        server_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let server_cert = server_params
            .signed_by(&server_key, &issuer)
            .map_err(err("server cert"))?;

        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let trust_bundle = dir.join("bench-ca-bundle.pem");
        std::fs::write(&trust_bundle, ca_cert.pem())
            .map_err(|e| format!("{}: {e}", trust_bundle.display()))?;

        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(server_key.serialize_der()));
        let mut server = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS versions: {e}"))?
            .with_no_client_auth()
            .with_single_cert(vec![server_cert.der().clone()], key)
            .map_err(|e| format!("server certificate: {e}"))?;
        server.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(LocalCa {
            trust_bundle,
            server: Arc::new(server),
        })
    }
}

fn err(what: &'static str) -> impl Fn(rcgen::Error) -> String {
    move |e| format!("{what}: {e}")
}
