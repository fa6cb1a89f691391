//! The certificate authorities every outbound TLS connection trusts — to AWS and to
//! webhook endpoints alike: Mozilla's root program, compiled in (`webpki-root-certs`),
//! plus the PEM bundle named by `SSL_CERT_FILE` when it is set (a private CA for an
//! endpoint, shipped in a layer). The file adds to Mozilla's roots; it does not replace
//! them, and `SSL_CERT_DIR` is not read.
//!
//! Why compiled in: reading and parsing the system store (`/etc/ssl/certs`, ~150 PEM
//! certificates) took 4 ms per TLS client, twice per cold start (the AWS SDK's and
//! reqwest's each loaded it), which was most of every function's init. The compiled-in
//! list is the same Mozilla list the Amazon Linux store is built from, and is
//! refreshed with the crate.

use std::sync::OnceLock;

#[derive(Debug, Clone, thiserror::Error)]
#[error("trusted roots: {origin}: {reason}")]
pub struct TrustRootsError {
    origin: String,
    reason: String,
}

/// The trusted roots, read once per process.
pub fn trust_roots() -> Result<&'static [reqwest::Certificate], TrustRootsError> {
    static ROOTS: OnceLock<Result<Vec<reqwest::Certificate>, TrustRootsError>> = OnceLock::new();
    ROOTS
        .get_or_init(|| load(std::env::var_os("SSL_CERT_FILE").as_deref()))
        .as_deref()
        .map_err(Clone::clone)
}

fn load(extra: Option<&std::ffi::OsStr>) -> Result<Vec<reqwest::Certificate>, TrustRootsError> {
    let mut roots = webpki_root_certs::TLS_SERVER_ROOT_CERTS
        .iter()
        .map(|der| reqwest::Certificate::from_der(der))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TrustRootsError {
            origin: "the compiled-in roots".into(),
            reason: e.to_string(),
        })?;
    if let Some(path) = extra.filter(|p| !p.is_empty()) {
        let fail = |reason: String| TrustRootsError {
            origin: format!("SSL_CERT_FILE `{}`", path.to_string_lossy()),
            reason,
        };
        let pem = std::fs::read(path).map_err(|e| fail(e.to_string()))?;
        let extra = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| fail(e.to_string()))?;
        if extra.is_empty() {
            return Err(fail("no PEM certificate in it".into()));
        }
        // A certificate is only parsed as a trust anchor when a client is built: build one
        // now, so that a bad file stops the function at init rather than failing each call.
        reqwest::Client::builder()
            .tls_certs_only(extra.iter().cloned())
            .no_proxy()
            .build()
            .map_err(|e| fail(format!("not a usable CA certificate ({e})")))?;
        roots.extend(extra);
    }
    Ok(roots)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsStr;

    /// `contents` in a file of its own under the temp directory, removed on drop.
    struct TempFile(std::path::PathBuf);

    impl TempFile {
        fn new(name: &str, contents: &str) -> Self {
            let dir = std::env::temp_dir().join(format!("hookline-ca-{}-{name}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            let file = dir.join(name);
            std::fs::write(&file, contents).unwrap();
            Self(file)
        }
    }

    impl Drop for TempFile {
        fn drop(&mut self) {
            if let Some(dir) = self.0.parent() {
                let _ = std::fs::remove_dir_all(dir);
            }
        }
    }

    #[test]
    fn mozillas_roots_are_compiled_in() {
        let roots = load(None).expect("no file to read");
        assert_eq!(roots.len(), webpki_root_certs::TLS_SERVER_ROOT_CERTS.len());
        assert!(roots.len() > 100, "{} roots", roots.len());
    }

    #[test]
    fn ssl_cert_file_adds_its_certificates() {
        let file = TempFile::new("private-ca.pem", include_str!("../../tests/fixtures/tls/ca.pem"));
        let roots = load(Some(file.0.as_os_str())).unwrap();
        assert_eq!(roots.len(), webpki_root_certs::TLS_SERVER_ROOT_CERTS.len() + 1);
    }

    #[test]
    fn an_unreadable_or_empty_ssl_cert_file_is_an_error_that_names_it() {
        let missing = load(Some(OsStr::new("/nonexistent/ca.pem"))).unwrap_err();
        assert!(
            missing
                .to_string()
                .contains("SSL_CERT_FILE `/nonexistent/ca.pem`"),
            "{missing}"
        );
        let file = TempFile::new("empty.pem", "not a certificate\n");
        let empty = load(Some(file.0.as_os_str())).unwrap_err();
        assert!(empty.to_string().contains("no PEM certificate"), "{empty}");
    }

    #[test]
    fn a_pem_block_that_is_no_certificate_is_refused_at_load() {
        let file = TempFile::new(
            "junk.pem",
            "-----BEGIN CERTIFICATE-----\naGVsbG8gd29ybGQ=\n-----END CERTIFICATE-----\n",
        );
        let junk = load(Some(file.0.as_os_str())).unwrap_err();
        assert!(junk.to_string().contains("not a usable CA certificate"), "{junk}");
    }
}
