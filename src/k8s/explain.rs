//! Errors from the API server, and from the way to it, said plainly.
//!
//! kube's errors say *where* a request failed (`ApiError: ... (Status { ... })`,
//! `ServiceError: client error (Connect)`) but rarely *why* in words a user acts on. Every
//! client rollgit builds ([`super::client_for`]) tags a failed request with the server's
//! address ([`Unreached`]), and [`crate::error_chain`] asks [`say`] about each cause:
//!
//! * 401: the credentials were refused (token, client certificate, exec plugin);
//! * 403: the missing permission, as the API server names it (verb, resource, scope);
//! * TLS: the certificate's fault (unknown authority, host name mismatch, expired, not yet
//!   valid) or the server's refusal of rollgit's client certificate;
//! * connection refused, with the address from [`Unreached`].

use std::error::Error;

/// A request that got no HTTP answer from the API server at `server` (connection refused,
/// TLS failure, DNS, timeout): the cause follows.
#[derive(Debug, thiserror::Error)]
#[error("no answer from the API server at {server}")]
pub struct Unreached {
    /// The server's URL, as the kubeconfig gives it.
    pub server: String,
    #[source]
    pub source: Box<dyn Error + Send + Sync>,
}

/// How [`crate::error_chain`] shows one cause.
#[derive(Debug, PartialEq, Eq)]
pub enum Said {
    /// As the error displays itself.
    AsIs,
    /// Not at all (a wrapper whose cause says it all).
    Skip,
    /// In these words, then its causes.
    Words(String),
    /// In these words, which say everything: its causes are not shown.
    Last(String),
}

/// How to show `e`, one cause of an error chain.
pub fn say(e: &(dyn Error + 'static)) -> Said {
    if let Some(k) = e.downcast_ref::<kube::Error>() {
        return match k {
            kube::Error::Api(s) => Said::Last(status(s.code, &s.reason, &s.message)),
            kube::Error::Service(_) | kube::Error::HyperError(_) => Said::Skip,
            _ => Said::AsIs,
        };
    }
    if let Some(io) = e.downcast_ref::<std::io::Error>() {
        if let Some(tls) = tls_inside(io) {
            return Said::Last(tls_words(tls));
        }
        return match io.kind() {
            std::io::ErrorKind::ConnectionRefused => Said::Last(
                "connection refused (nothing listens at that address, or a firewall refuses)"
                    .into(),
            ),
            std::io::ErrorKind::TimedOut => Said::Last("the connection timed out".into()),
            _ => Said::AsIs,
        };
    }
    if let Some(tls) = e.downcast_ref::<rustls::Error>() {
        return Said::Last(tls_words(tls));
    }
    Said::AsIs
}

/// An API server's refusal in words: `code` and `reason` of its Status, and its message.
pub fn status(code: u16, reason: &str, message: &str) -> String {
    let reason = if reason.is_empty() {
        String::new()
    } else {
        format!(" {reason}")
    };
    match code {
        401 => format!(
            "the API server refused rollgit's credentials ({code}{reason}): the token, client \
             certificate or exec plugin of the kubeconfig (or the ServiceAccount token) is not \
             accepted"
        ),
        403 => format!("permission denied ({code}{reason}): {message}"),
        // What kube-apiserver says of a resource type it does not serve.
        404 if message == "the server could not find the requested resource" => format!(
            "{message} ({code}{reason}): the API server does not serve this resource type (is \
             its CRD installed? rollgit's are: `rollgit crds`)"
        ),
        _ if message.is_empty() => format!("the API server answered {code}{reason}"),
        _ => format!("{message} ({code}{reason})"),
    }
}

/// The TLS error an I/O error carries (the TLS stack wraps it, and connectors may wrap that
/// again).
fn tls_inside(io: &std::io::Error) -> Option<&rustls::Error> {
    let mut inner = io.get_ref()?;
    for _ in 0..8 {
        if let Some(tls) = inner.downcast_ref::<rustls::Error>() {
            return Some(tls);
        }
        inner = inner.downcast_ref::<std::io::Error>()?.get_ref()?;
    }
    None
}

fn tls_words(e: &rustls::Error) -> String {
    use rustls::{AlertDescription as A, CertificateError as C, Error as E};
    match e {
        E::InvalidCertificate(c) => match c {
            C::UnknownIssuer => "TLS: the server's certificate is signed by an authority the \
                kubeconfig does not trust (check certificate-authority-data of its cluster)"
                .into(),
            C::NotValidForName | C::NotValidForNameContext { .. } => format!(
                "TLS: the server's certificate is not valid for the host name of the server URL \
                 (hostname mismatch; {c})"
            ),
            C::Expired | C::ExpiredContext { .. } => {
                format!("TLS: the server's certificate has expired ({c})")
            }
            C::NotValidYet | C::NotValidYetContext { .. } => {
                format!("TLS: the server's certificate is not valid yet ({c})")
            }
            C::Revoked => "TLS: the server's certificate is revoked".into(),
            other => format!("TLS: the server's certificate is refused: {other}"),
        },
        E::AlertReceived(a @ (A::BadCertificate | A::CertificateRequired | A::UnknownCA)) => {
            format!("TLS: the API server refused rollgit's client certificate ({a:?})")
        }
        E::AlertReceived(A::CertificateExpired) => {
            "TLS: the API server says rollgit's client certificate has expired".into()
        }
        other => format!("TLS: {other}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error_chain;

    fn unreached(cause: std::io::Error) -> kube::Error {
        kube::Error::Service(Box::new(Unreached {
            server: "https://10.0.0.1:6443".into(),
            source: Box::new(cause),
        }))
    }

    fn api(code: u16, reason: &str, message: &str) -> kube::Error {
        let s: kube::core::Status = serde_json::from_value(serde_json::json!({
            "status": "Failure", "code": code, "reason": reason, "message": message,
        }))
        .expect("a status");
        kube::Error::Api(Box::new(s))
    }

    #[test]
    fn each_failure_says_its_cause() {
        let tls = |e: rustls::Error| std::io::Error::new(std::io::ErrorKind::InvalidData, e);
        let table: Vec<(kube::Error, &str)> = vec![
            (
                api(401, "Unauthorized", "Unauthorized"),
                "the API server refused rollgit's credentials (401 Unauthorized)",
            ),
            (
                api(
                    403,
                    "Forbidden",
                    "rollouts.rollgit.dev is forbidden: User \"system:serviceaccount:ops:rollgit\" cannot list resource \"rollouts\" in API group \"rollgit.dev\" at the cluster scope",
                ),
                "permission denied (403 Forbidden): rollouts.rollgit.dev is forbidden: User \"system:serviceaccount:ops:rollgit\" cannot list resource \"rollouts\" in API group \"rollgit.dev\" at the cluster scope",
            ),
            (
                api(
                    404,
                    "NotFound",
                    "the server could not find the requested resource",
                ),
                "the server could not find the requested resource (404 NotFound): the API server does not serve this resource type (is its CRD installed?",
            ),
            (
                api(404, "NotFound", "rollouts.rollgit.dev \"web\" not found"),
                "rollouts.rollgit.dev \"web\" not found (404 NotFound)",
            ),
            (
                unreached(std::io::Error::from(std::io::ErrorKind::ConnectionRefused)),
                "no answer from the API server at https://10.0.0.1:6443: connection refused",
            ),
            (
                unreached(tls(rustls::Error::InvalidCertificate(
                    rustls::CertificateError::UnknownIssuer,
                ))),
                "https://10.0.0.1:6443: TLS: the server's certificate is signed by an authority the kubeconfig does not trust",
            ),
            (
                unreached(tls(rustls::Error::InvalidCertificate(
                    rustls::CertificateError::NotValidForName,
                ))),
                "TLS: the server's certificate is not valid for the host name of the server URL (hostname mismatch",
            ),
            (
                unreached(tls(rustls::Error::InvalidCertificate(
                    rustls::CertificateError::Expired,
                ))),
                "TLS: the server's certificate has expired",
            ),
            (
                unreached(tls(rustls::Error::AlertReceived(
                    rustls::AlertDescription::BadCertificate,
                ))),
                "TLS: the API server refused rollgit's client certificate (BadCertificate)",
            ),
        ];
        for (e, want) in table {
            let said = error_chain(&e);
            assert!(said.contains(want), "{said:?} does not say {want:?}");
            assert!(!said.contains("Status {"), "{said:?} dumps the Status");
            assert!(!said.contains("ServiceError"), "{said:?} shows the wrapper");
        }
    }
}
