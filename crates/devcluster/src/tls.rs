//! HTTPS beside HTTP on the same port.
//!
//! kubectl (client-go's clientcmd) only sends credentials to a TLS server: a kubeconfig with a
//! bearer token and an `http://` server authenticates as nobody. So the dev cluster also
//! speaks TLS on its port (a connection whose first byte is a TLS handshake record), with a
//! self-signed ECDSA P-256 certificate for `localhost`, `127.0.0.1`, `::1` and its listen
//! address, generated at start (kept in the data directory when there is one) and written into
//! token kubeconfigs as their `certificate-authority-data`.

use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair};
use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// Why TLS could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The key or certificate could not be generated.
    #[error("generating the serving certificate: {0}")]
    Generate(String),
    /// rustls refused the key or certificate.
    #[error("configuring TLS")]
    Config(#[source] rustls::Error),
    /// The certificate files in the data directory could not be read or written.
    #[error("serving certificate files in {dir}")]
    Files {
        /// The data directory.
        dir: std::path::PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// The serving certificate and its key.
#[derive(Clone)]
pub struct ServingCert {
    /// The certificate, DER.
    pub cert_der: Vec<u8>,
    /// The private key, PKCS#8 DER.
    pub key_pkcs8: Vec<u8>,
}

impl std::fmt::Debug for ServingCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServingCert").finish_non_exhaustive()
    }
}

fn der(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let n = content.len();
    if n < 0x80 {
        out.push(n as u8);
    } else {
        let bytes: Vec<u8> = n
            .to_be_bytes()
            .iter()
            .copied()
            .skip_while(|b| *b == 0)
            .collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend(bytes);
    }
    out.extend_from_slice(content);
    out
}

fn seq(parts: &[Vec<u8>]) -> Vec<u8> {
    der(0x30, &parts.concat())
}

const OID_ECDSA_SHA256: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02];
const OID_EC_PUBLIC_KEY: &[u8] = &[0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
const OID_P256: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
const OID_CN: &[u8] = &[0x06, 0x03, 0x55, 0x04, 0x03];
const OID_SAN: &[u8] = &[0x06, 0x03, 0x55, 0x1d, 0x11];
const OID_KEY_USAGE: &[u8] = &[0x06, 0x03, 0x55, 0x1d, 0x0f];
const OID_EXT_KEY_USAGE: &[u8] = &[0x06, 0x03, 0x55, 0x1d, 0x25];
const OID_SERVER_AUTH: &[u8] = &[0x06, 0x08, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x01];

/// An X.509 time: UTCTime before 2050, GeneralizedTime after.
fn x509_time(t: SystemTime) -> Vec<u8> {
    let text = humantime::format_rfc3339_seconds(t).to_string();
    let digits: String = text.chars().filter(char::is_ascii_digit).collect();
    let year: u32 = digits.get(..4).and_then(|y| y.parse().ok()).unwrap_or(2000);
    if year < 2050 {
        der(0x17, format!("{}Z", &digits[2..]).as_bytes())
    } else {
        der(0x18, format!("{digits}Z").as_bytes())
    }
}

fn name(cn: &str) -> Vec<u8> {
    seq(&[der(
        0x31,
        &seq(&[OID_CN.to_vec(), der(0x0c, cn.as_bytes())]),
    )])
}

fn extension(oid: &[u8], critical: bool, value: Vec<u8>) -> Vec<u8> {
    let mut parts = vec![oid.to_vec()];
    if critical {
        parts.push(vec![0x01, 0x01, 0xff]);
    }
    parts.push(der(0x04, &value));
    seq(&parts)
}

/// A self-signed serving certificate for `ips` and `dns` names, valid from an hour ago for
/// ten years.
pub fn self_signed(ips: &[IpAddr], dns: &[&str]) -> Result<ServingCert, TlsError> {
    let rng = SystemRandom::new();
    let gen_err = |e: &dyn std::fmt::Debug| TlsError::Generate(format!("{e:?}"));
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng)
        .map_err(|e| gen_err(&e))?;
    let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref(), &rng)
        .map_err(|e| gen_err(&e))?;
    let mut serial = [0u8; 16];
    rng.fill(&mut serial).map_err(|e| gen_err(&e))?;
    serial[0] = (serial[0] & 0x7f) | 0x01;
    let now = SystemTime::now();
    let not_before = now - Duration::from_secs(3600);
    let not_after = now + Duration::from_secs(10 * 365 * 24 * 3600);
    let mut sans = Vec::new();
    for d in dns {
        sans.extend(der(0x82, d.as_bytes()));
    }
    for ip in ips {
        match ip {
            IpAddr::V4(v4) => sans.extend(der(0x87, &v4.octets())),
            IpAddr::V6(v6) => sans.extend(der(0x87, &v6.octets())),
        }
    }
    let mut spki_key = vec![0x00];
    spki_key.extend_from_slice(key.public_key().as_ref());
    let spki = seq(&[
        seq(&[OID_EC_PUBLIC_KEY.to_vec(), OID_P256.to_vec()]),
        der(0x03, &spki_key),
    ]);
    // An end-entity certificate (webpki refuses a CA as a server's certificate) that clients
    // trust directly: Go and webpki both accept a self-signed leaf that is its own anchor.
    let extensions = seq(&[
        extension(OID_SAN, false, der(0x30, &sans)),
        // digitalSignature.
        extension(OID_KEY_USAGE, true, vec![0x03, 0x02, 0x07, 0x80]),
        extension(OID_EXT_KEY_USAGE, false, seq(&[OID_SERVER_AUTH.to_vec()])),
    ]);
    let subject = name("rollgit-devcluster");
    let tbs = seq(&[
        der(0xa0, &der(0x02, &[2])),
        der(0x02, &serial),
        seq(&[OID_ECDSA_SHA256.to_vec()]),
        subject.clone(),
        seq(&[x509_time(not_before), x509_time(not_after)]),
        subject,
        spki,
        der(0xa3, &extensions),
    ]);
    let sig = key.sign(&rng, &tbs).map_err(|e| gen_err(&e))?;
    let mut sig_bits = vec![0x00];
    sig_bits.extend_from_slice(sig.as_ref());
    let cert = seq(&[tbs, seq(&[OID_ECDSA_SHA256.to_vec()]), der(0x03, &sig_bits)]);
    Ok(ServingCert {
        cert_der: cert,
        key_pkcs8: pkcs8.as_ref().to_vec(),
    })
}

const CERT_FILE: &str = "serving-cert.der";
const KEY_FILE: &str = "serving-key.der";

/// The serving certificate for `listen`: kept in `dir` when given (so kubeconfigs written
/// before a restart stay valid), otherwise new.
pub fn serving_cert(dir: Option<&Path>, listen: IpAddr) -> Result<ServingCert, TlsError> {
    let mut ips: Vec<IpAddr> = vec![
        IpAddr::from([127, 0, 0, 1]),
        IpAddr::from([0u16, 0, 0, 0, 0, 0, 0, 1]),
    ];
    if !listen.is_unspecified() && !ips.contains(&listen) {
        ips.push(listen);
    }
    let Some(dir) = dir else {
        return self_signed(&ips, &["localhost"]);
    };
    let files = |source| TlsError::Files {
        dir: dir.to_path_buf(),
        source,
    };
    let (cert_path, key_path) = (dir.join(CERT_FILE), dir.join(KEY_FILE));
    if let (Ok(cert_der), Ok(key_pkcs8)) = (std::fs::read(&cert_path), std::fs::read(&key_path)) {
        let covers = ips.iter().all(|ip| {
            let octets = match ip {
                IpAddr::V4(v4) => der(0x87, &v4.octets()),
                IpAddr::V6(v6) => der(0x87, &v6.octets()),
            };
            cert_der
                .windows(octets.len())
                .any(|w| w == octets.as_slice())
        });
        if covers {
            return Ok(ServingCert {
                cert_der,
                key_pkcs8,
            });
        }
    }
    let cert = self_signed(&ips, &["localhost"])?;
    std::fs::create_dir_all(dir).map_err(files)?;
    std::fs::write(&cert_path, &cert.cert_der).map_err(files)?;
    std::fs::write(&key_path, &cert.key_pkcs8).map_err(files)?;
    Ok(cert)
}

/// The rustls server configuration for a serving certificate (HTTP/1.1).
pub fn server_config(cert: &ServingCert) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(TlsError::Config)?
        .with_no_client_auth()
        .with_single_cert(
            vec![rustls::pki_types::CertificateDer::from(
                cert.cert_der.clone(),
            )],
            rustls::pki_types::PrivateKeyDer::Pkcs8(cert.key_pkcs8.clone().into()),
        )
        .map_err(TlsError::Config)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The certificate as PEM.
pub fn pem(cert_der: &[u8]) -> String {
    let b64 = crate::admission::base64_encode(cert_der);
    let mut out = String::from("-----BEGIN CERTIFICATE-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        out.push('\n');
    }
    out.push_str("-----END CERTIFICATE-----\n");
    out
}

/// Serves `app` on `listener` until `shutdown` fires: HTTP, and HTTPS with `tls` for a
/// connection that opens with a TLS handshake. Connections end with this task.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: axum::Router,
    tls: Arc<rustls::ServerConfig>,
    mut shutdown: tokio::sync::oneshot::Receiver<()>,
) {
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    let mut connections = tokio::task::JoinSet::new();
    loop {
        while connections.try_join_next().is_some() {}
        let accepted = tokio::select! {
            _ = &mut shutdown => return,
            r = listener.accept() => r,
        };
        let tcp = match accepted {
            Ok((tcp, _)) => tcp,
            Err(e) => {
                tracing::debug!(error = %e, "accepting a connection failed");
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let app = app.clone();
        let acceptor = acceptor.clone();
        connections.spawn(async move {
            let mut first = [0u8; 1];
            let tls = matches!(tcp.peek(&mut first).await, Ok(1) if first[0] == 0x16);
            let service = hyper_util::service::TowerToHyperService::new(app);
            let http = hyper::server::conn::http1::Builder::new();
            if tls {
                match tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp)).await {
                    Ok(Ok(stream)) => {
                        let io = hyper_util::rt::TokioIo::new(stream);
                        let _ = http.serve_connection(io, service).with_upgrades().await;
                    }
                    Ok(Err(e)) => tracing::debug!(error = %e, "TLS handshake failed"),
                    Err(_) => tracing::debug!("TLS handshake timed out"),
                }
            } else {
                let io = hyper_util::rt::TokioIo::new(tcp);
                let _ = http.serve_connection(io, service).with_upgrades().await;
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn der_lengths() {
        assert_eq!(der(0x04, &[1, 2]), [0x04, 2, 1, 2]);
        let long = vec![0u8; 300];
        let d = der(0x04, &long);
        assert_eq!(&d[..4], &[0x04, 0x82, 0x01, 0x2c]);
        assert_eq!(d.len(), 304);
    }

    #[test]
    fn the_certificate_is_accepted_by_rustls() {
        let cert = self_signed(&[IpAddr::from([127, 0, 0, 1])], &["localhost"]).expect("generated");
        assert_eq!(cert.cert_der[0], 0x30);
        server_config(&cert).expect("rustls takes the key and certificate");
        assert!(pem(&cert.cert_der).starts_with("-----BEGIN CERTIFICATE-----\n"));
    }
}
