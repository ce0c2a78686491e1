//! Placeholder until the one TLS stack lands: the CA file check.

use std::path::Path;

/// The certificates of a PEM file, for `WATCHDOG_CA_FILE`.
///
/// # Errors
/// The file cannot be read or holds no certificate.
pub fn load_ca_file(path: &Path) -> Result<Vec<reqwest::Certificate>, String> {
    let pem = std::fs::read(path).map_err(|e| e.to_string())?;
    let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| e.to_string())?;
    if certs.is_empty() {
        return Err("no PEM certificate in it".into());
    }
    Ok(certs)
}
