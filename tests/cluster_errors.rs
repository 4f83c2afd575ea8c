//! Errors that tell the truth (issue 19): what a user sees when the cluster cannot be reached
//! or refuses rollgit, from the library's error chain and from the `rollgit` command line. TLS
//! failures are made by a local TLS server with certificates generated for each case (no
//! cluster needed to refuse a handshake).

mod common;

use common::{TestCluster, WAIT};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use std::path::Path;
use std::sync::Arc;

/// A CA and a server certificate it signs for `names`, valid in `[from, to]` (years).
struct Pki {
    ca_pem: String,
    cert_der: rustls::pki_types::CertificateDer<'static>,
    key_der: Vec<u8>,
}

fn pki(names: &[&str], years: (i32, i32)) -> Pki {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca =
        CertifiedIssuer::self_signed(ca_params, KeyPair::generate().expect("a key")).expect("a CA");
    let key = KeyPair::generate().expect("a key");
    let mut params =
        CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
            .expect("params");
    params.not_before = rcgen::date_time_ymd(years.0, 1, 1);
    params.not_after = rcgen::date_time_ymd(years.1, 1, 1);
    let cert = params.signed_by(&key, &ca).expect("a certificate");
    Pki {
        ca_pem: ca.pem(),
        cert_der: cert.der().clone(),
        key_der: key.serialize_der(),
    }
}

/// A TLS server on a free loopback port presenting `pki`'s certificate; it completes
/// handshakes and answers nothing.
async fn tls_server(pki: &Pki) -> (u16, tokio::task::JoinHandle<()>) {
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("TLS versions")
    .with_no_client_auth()
    .with_single_cert(
        vec![pki.cert_der.clone()],
        rustls::pki_types::PrivateKeyDer::Pkcs8(pki.key_der.clone().into()),
    )
    .expect("a server config");
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a port");
    let port = listener.local_addr().expect("an address").port();
    let task = tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let _ = acceptor.accept(tcp).await;
            });
        }
    });
    (port, task)
}

fn kubeconfig(dir: &Path, server: &str, ca_pem: Option<&str>) -> std::path::PathBuf {
    let ca = ca_pem
        .map(|p| {
            let path = dir.join("ca.crt");
            std::fs::write(&path, p).expect("a CA file");
            format!("\n    certificate-authority: {}", path.display())
        })
        .unwrap_or_default();
    let text = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: {server}{ca}\nusers:\n- name: u\n  user:\n    token: s3cr3t-t0ken\ncontexts:\n- name: c\n  context:\n    cluster: c\n    user: u\ncurrent-context: c\n"
    );
    let path = dir.join("kubeconfig");
    std::fs::write(&path, text).expect("a kubeconfig");
    path
}

/// What listing ConfigMaps through `kubeconfig` fails with, as rollgit says it.
async fn failure(kubeconfig: &Path) -> String {
    let client = rollgit::k8s::client_for("c", Some(kubeconfig), None)
        .await
        .expect("a client");
    let api: Api<ConfigMap> = Api::all(client);
    let err = tokio::time::timeout(WAIT, api.list(&Default::default()))
        .await
        .expect("an answer in time")
        .expect_err("the request fails");
    let said = rollgit::error_chain(&err);
    assert!(!said.contains("s3cr3t"), "the token leaks: {said}");
    said
}

async fn rollgit(args: &[&str], kubeconfig: &Path) -> std::process::Output {
    let run = tokio::process::Command::new(env!("CARGO_BIN_EXE_rollgit"))
        .args(args)
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .env_remove("KUBECONFIG")
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output();
    tokio::time::timeout(WAIT, run)
        .await
        .expect("rollgit finishes in time")
        .expect("rollgit runs")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("a port")
        .local_addr()
        .expect("an address")
        .port()
}

#[tokio::test]
async fn a_refused_connection_names_the_address() {
    let dir = tempfile::tempdir().expect("a directory");
    let port = free_port();
    let said = failure(&kubeconfig(
        dir.path(),
        &format!("https://127.0.0.1:{port}"),
        None,
    ))
    .await;
    assert!(
        said.contains(&format!("the API server at https://127.0.0.1:{port}"))
            && said.contains("connection refused"),
        "{said}"
    );
}

#[tokio::test]
async fn tls_failures_name_their_cause() {
    let dir = tempfile::tempdir().expect("a directory");
    let good = pki(&["localhost"], (2020, 2100));
    let (port, server) = tls_server(&good).await;

    // The kubeconfig lacks the CA: the system roots do not know it.
    let said = failure(&kubeconfig(
        dir.path(),
        &format!("https://localhost:{port}"),
        None,
    ))
    .await;
    assert!(
        said.contains("signed by an authority the kubeconfig does not trust")
            && said.contains(&format!("https://localhost:{port}")),
        "unknown authority: {said}"
    );

    // The right CA, but the certificate names `localhost`, not the address in the URL.
    let said = failure(&kubeconfig(
        dir.path(),
        &format!("https://127.0.0.1:{port}"),
        Some(&good.ca_pem),
    ))
    .await;
    assert!(said.contains("hostname mismatch"), "name: {said}");

    server.abort();
    let expired = pki(&["localhost"], (2000, 2001));
    let (port, server) = tls_server(&expired).await;
    let said = failure(&kubeconfig(
        dir.path(),
        &format!("https://localhost:{port}"),
        Some(&expired.ca_pem),
    ))
    .await;
    assert!(said.contains("certificate has expired"), "expired: {said}");
    server.abort();

    let future = pki(&["localhost"], (2090, 2100));
    let (port, server) = tls_server(&future).await;
    let said = failure(&kubeconfig(
        dir.path(),
        &format!("https://localhost:{port}"),
        Some(&future.ca_pem),
    ))
    .await;
    assert!(said.contains("not valid yet"), "not yet valid: {said}");
    server.abort();
}

#[tokio::test]
async fn the_command_line_says_what_failed() {
    let dir = tempfile::tempdir().expect("a directory");
    let port = free_port();
    let kc = kubeconfig(dir.path(), &format!("https://127.0.0.1:{port}"), None);
    let out = rollgit(&["get", "rollouts"], &kc).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "no answer from the API server at https://127.0.0.1:{port}"
        )) && stderr.contains("connection refused"),
        "{stderr}"
    );
    assert!(!stderr.contains("ServiceError"), "{stderr}");

    // A cluster without rollgit's CRDs: the resource type is not served.
    let cluster = TestCluster::start().await;
    let out = rollgit(&["get", "rollouts"], &cluster.kubeconfig).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("404") && stderr.contains("is its CRD installed?"),
        "{stderr}"
    );
    assert!(!stderr.contains("Status {"), "{stderr}");
}
