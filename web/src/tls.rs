//! TLS with rustls: certificate files, or a self-signed certificate for development.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::config::{Config, ConfigError, TlsMode};

/// The rustls server configuration the config asks for, or `None` for plain HTTP.
pub fn server_config(config: &Config) -> Result<Option<Arc<rustls::ServerConfig>>, ConfigError> {
    let (cert_path, key_path) = match config.tls {
        TlsMode::Off => return Ok(None),
        TlsMode::Files => (
            config.tls_cert.clone().unwrap_or_default(),
            config.tls_key.clone().unwrap_or_default(),
        ),
        TlsMode::SelfSigned => self_signed(&config.data_dir.join("tls"), &config.public_url)?,
    };
    let certs = CertificateDer::pem_file_iter(&cert_path)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|error| tls_error("tls_cert", &cert_path, &error.to_string()))?;
    if certs.is_empty() {
        return Err(tls_error(
            "tls_cert",
            &cert_path,
            "no certificate in the file",
        ));
    }
    let key = PrivateKeyDer::from_pem_file(&key_path)
        .map_err(|error| tls_error("tls_key", &key_path, &error.to_string()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut server_config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .and_then(|builder| builder.with_no_client_auth().with_single_cert(certs, key))
        .map_err(|error| tls_error("tls_key", &key_path, &error.to_string()))?;
    server_config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Some(Arc::new(server_config)))
}

fn tls_error(key: &str, path: &Path, problem: &str) -> ConfigError {
    ConfigError {
        key: key.to_owned(),
        origin: format!("file {}", path.display()),
        problem: problem.to_owned(),
        expected: "a PEM certificate chain and its matching PEM private key".to_owned(),
    }
}

/// The development certificate in `dir`, generated at first use for `localhost`, `127.0.0.1`
/// and the public URL's host, and kept so that a browser's exception survives restarts.
fn self_signed(dir: &Path, public_url: &url::Url) -> Result<(PathBuf, PathBuf), ConfigError> {
    let cert_path = dir.join("self-signed.crt");
    let key_path = dir.join("self-signed.key");
    if cert_path.is_file() && key_path.is_file() {
        return Ok((cert_path, key_path));
    }
    let mut names = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
    if let Some(host) = public_url
        .host_str()
        .filter(|host| !names.iter().any(|n| n == host))
    {
        names.push(host.to_owned());
    }
    let generated = rcgen::generate_simple_self_signed(names)
        .map_err(|error| tls_error("tls", dir, &error.to_string()))?;
    let write = |path: &Path, pem: String| {
        std::fs::create_dir_all(dir)
            .and_then(|()| std::fs::write(path, pem))
            .map_err(|error| tls_error("tls", path, &error.to_string()))
    };
    write(&cert_path, generated.cert.pem())?;
    write(&key_path, generated.key_pair.serialize_pem())?;
    Ok((cert_path, key_path))
}
