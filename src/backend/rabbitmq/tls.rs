//! The profile's TLS files for an amqps:// connection.

use crate::backend::target::TlsSettings;
use crate::backend::{BackendError, Result};

/// The profile's TLS files for lapin: a PEM CA chain to trust (instead of the system
/// roots) and a PEM certificate with its PKCS#8 key for client authentication. Files are
/// read once, at connect, so a missing one is reported before anything else happens.
pub fn tls_config(tls: &TlsSettings) -> Result<lapin::tcp::OwnedTLSConfig> {
    let read = |p: &std::path::Path| {
        std::fs::read(p).map_err(|e| {
            BackendError::InvalidArgument(format!("cannot read TLS file {}: {e}", p.display()))
        })
    };
    let cert_chain = match &tls.ca_file {
        Some(p) => Some(String::from_utf8(read(p)?).map_err(|_| {
            BackendError::InvalidArgument(format!(
                "{} is not a PEM file (it is not text)",
                p.display()
            ))
        })?),
        None => None,
    };
    let identity = match (&tls.cert_file, &tls.key_file) {
        (Some(cert), Some(key)) => Some(lapin::tcp::OwnedIdentity::PKCS8 {
            pem: read(cert)?,
            key: read(key)?,
        }),
        (None, None) => None,
        _ => {
            return Err(BackendError::InvalidArgument(
                "a client certificate needs both tls.cert_file and tls.key_file".into(),
            ));
        }
    };
    Ok(lapin::tcp::OwnedTLSConfig {
        identity,
        cert_chain,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::written;

    #[test]
    fn tls_files_are_read_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        let ca = written(
            dir.path(),
            "ca.pem",
            "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
        );
        let cfg = tls_config(&TlsSettings {
            ca_file: Some(ca.clone()),
            ..TlsSettings::default()
        })
        .unwrap();
        assert!(cfg.cert_chain.unwrap().contains("BEGIN CERTIFICATE"));
        assert!(cfg.identity.is_none());
        let missing = dir.path().join("missing.pem");
        let e = tls_config(&TlsSettings {
            ca_file: Some(missing),
            ..TlsSettings::default()
        })
        .unwrap_err();
        assert!(e.to_string().contains("missing.pem"), "{e}");
        let e = tls_config(&TlsSettings {
            cert_file: Some(ca.clone()),
            ..TlsSettings::default()
        })
        .unwrap_err();
        assert!(e.to_string().contains("key_file"), "{e}");
        let with_key = tls_config(&TlsSettings {
            cert_file: Some(ca.clone()),
            key_file: Some(ca),
            ..TlsSettings::default()
        })
        .unwrap();
        assert!(matches!(
            with_key.identity,
            Some(lapin::tcp::OwnedIdentity::PKCS8 { .. })
        ));
    }
}
