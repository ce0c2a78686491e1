//! The one TLS setup every outbound client shares.
//!
//! Owns reading `WATCHDOG_CA_FILE` (once, bounded, refusing anything but a regular file of PEM
//! certificates) and building the one rustls `ClientConfig` of the process: the aws-lc-rs
//! crypto provider, passed explicitly, and the platform verifier, which trusts the system's
//! roots (on Linux including `SSL_CERT_FILE` and `SSL_CERT_DIR`) plus the CA file's. The
//! webhook, Slack, Telegram, Alertmanager and heartbeat clients, the jobs HTTP source and
//! `healthcheck` all get that config. It imports nothing else from this crate, installs no
//! process-wide default provider, and never turns verification off.

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use rustls::ClientConfig;

/// The largest CA file read: a bundle of a few hundred roots fits with room to spare.
pub const MAX_CA_FILE_BYTES: u64 = 1 << 20;

/// Why the CA file or the TLS setup cannot be used. Each file error names the path.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{path}: {source}")]
    Open { path: PathBuf, source: io::Error },
    /// A directory, a FIFO, a device, a socket: only a regular file (or a link to one) is read.
    #[error("{path}: {what}, not a regular file")]
    NotRegular { path: PathBuf, what: &'static str },
    #[error("{path}: larger than {MAX_CA_FILE_BYTES} bytes")]
    TooLarge { path: PathBuf },
    #[error("{path}: {source}")]
    Read { path: PathBuf, source: io::Error },
    #[error("{path}: not valid PEM: {source}")]
    Pem {
        path: PathBuf,
        source: rustls::pki_types::pem::Error,
    },
    #[error("{path}: no PEM certificate in it")]
    NoCertificate { path: PathBuf },
    /// A certificate that PEM carries but that cannot serve as a root.
    #[error("{path}: certificate #{index} cannot be a root: {source}")]
    BadCertificate {
        path: PathBuf,
        index: usize,
        source: rustls::Error,
    },
    /// The verifier or the config could not be built: most often no root at all, neither from
    /// the system nor from `WATCHDOG_CA_FILE`.
    #[error("cannot set up TLS: {0}")]
    Setup(rustls::Error),
}

/// Reads the certificates of a CA file, once.
///
/// The file is opened without blocking (a FIFO would otherwise hold `open` until a writer
/// comes), checked on the open descriptor to be a regular file of at most
/// [`MAX_CA_FILE_BYTES`], and read no further than one byte past that, so a file that grows or
/// lies about its size cannot grow memory.
///
/// # Errors
/// The file cannot be opened or read, is not a regular file, is too large, is not PEM, holds
/// no certificate, or holds one that cannot be a root.
pub fn load_ca_file(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let named = |source| TlsError::Open {
        path: path.into(),
        source,
    };
    let file = open_nonblocking(path).map_err(named)?;
    let meta = file.metadata().map_err(named)?;
    if !meta.is_file() {
        return Err(TlsError::NotRegular {
            path: path.into(),
            what: file_type_name(&meta.file_type()),
        });
    }
    if meta.len() > MAX_CA_FILE_BYTES {
        return Err(TlsError::TooLarge { path: path.into() });
    }
    let mut pem = Vec::new();
    file.take(MAX_CA_FILE_BYTES + 1)
        .read_to_end(&mut pem)
        .map_err(|source| TlsError::Read {
            path: path.into(),
            source,
        })?;
    if pem.len() as u64 > MAX_CA_FILE_BYTES {
        return Err(TlsError::TooLarge { path: path.into() });
    }
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|source| TlsError::Pem {
            path: path.into(),
            source,
        })?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate { path: path.into() });
    }
    // Checked here, so a certificate that cannot be a root exits 2 at start, not later.
    let mut roots = rustls::RootCertStore::empty();
    for (index, cert) in certs.iter().enumerate() {
        roots
            .add(cert.clone())
            .map_err(|source| TlsError::BadCertificate {
                path: path.into(),
                index,
                source,
            })?;
    }
    Ok(certs)
}

fn open_nonblocking(path: &Path) -> io::Result<File> {
    use rustix::fs::{Mode, OFlags};
    let fd = rustix::fs::open(
        path,
        OFlags::RDONLY | OFlags::NONBLOCK | OFlags::CLOEXEC | OFlags::NOCTTY,
        Mode::empty(),
    )?;
    Ok(File::from(fd))
}

fn file_type_name(file_type: &std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if file_type.is_dir() {
        "a directory"
    } else if file_type.is_fifo() {
        "a FIFO"
    } else if file_type.is_char_device() {
        "a character device"
    } else if file_type.is_block_device() {
        "a block device"
    } else if file_type.is_socket() {
        "a socket"
    } else {
        "not a file"
    }
}

/// Builds the client TLS config: aws-lc-rs, TLS 1.2 and 1.3, the platform verifier with
/// `extra_roots` added, no client certificate, HTTP/1.1 offered by ALPN (the only version
/// either HTTP client here speaks).
///
/// # Errors
/// [`TlsError::Setup`]: a root cannot be used, or there is no root at all (no system
/// certificates and no extra roots).
pub fn client_config(
    extra_roots: Vec<CertificateDer<'static>>,
) -> Result<Arc<ClientConfig>, TlsError> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let verifier = rustls_platform_verifier::Verifier::new_with_extra_roots(
        extra_roots,
        Arc::clone(&provider),
    )
    .map_err(TlsError::Setup)?;
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(TlsError::Setup)?
        // `dangerous` only because the verifier is not rustls's own; it verifies fully.
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The process's one `ClientConfig`, built the first time a client asks for it, so a run that
/// opens no TLS connection (proc only, no channel) never loads the system's roots.
#[derive(Debug)]
pub struct SharedConfig {
    extra_roots: Vec<CertificateDer<'static>>,
    built: OnceLock<Arc<ClientConfig>>,
}

impl SharedConfig {
    /// A config to be built with these extra roots (the CA file's, or none).
    pub fn new(extra_roots: Vec<CertificateDer<'static>>) -> Self {
        Self {
            extra_roots,
            built: OnceLock::new(),
        }
    }

    /// The config, built on the first call; every later call shares it.
    ///
    /// # Errors
    /// As [`client_config`], on the first call (and again on later ones if it failed).
    pub fn get(&self) -> Result<Arc<ClientConfig>, TlsError> {
        if let Some(built) = self.built.get() {
            return Ok(Arc::clone(built));
        }
        let config = client_config(self.extra_roots.clone())?;
        Ok(Arc::clone(self.built.get_or_init(|| config)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_config_without_extra_roots_is_built_with_the_explicit_provider() {
        // No process-wide provider is installed anywhere: building must not need one.
        assert!(rustls::crypto::CryptoProvider::get_default().is_none());
        let config = client_config(Vec::new()).unwrap();
        assert_eq!(config.alpn_protocols, [b"http/1.1".to_vec()]);
        let shared = SharedConfig::new(Vec::new());
        let (a, b) = (shared.get().unwrap(), shared.get().unwrap());
        assert!(Arc::ptr_eq(&a, &b), "built once, shared after");
    }

    #[test]
    fn a_file_without_a_usable_certificate_is_refused_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ca.pem");
        let cases = [
            ("", "no PEM certificate"),
            ("just text\n", "no PEM certificate"),
            (
                "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
                "no PEM certificate",
            ),
            ("-----BEGIN CERTIFICATE-----\nAAAA\n", "not valid PEM"),
            // PEM around bytes that are not a certificate ("hello").
            (
                "-----BEGIN CERTIFICATE-----\naGVsbG8=\n-----END CERTIFICATE-----\n",
                "certificate #0 cannot be a root",
            ),
        ];
        for (pem, want) in cases {
            std::fs::write(&path, pem).unwrap();
            let error = load_ca_file(&path).unwrap_err().to_string();
            assert!(error.contains(want), "{pem:?}: {error}");
            assert!(
                error.starts_with(&path.display().to_string()),
                "{pem:?}: {error}"
            );
        }
    }
}
