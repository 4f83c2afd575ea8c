//! Credentials over HTTP against a loopback server that demands authentication.
//!
//! gix never sends credentials over plain `http://` (it is built without
//! `http-client-insecure-credentials`), so these tests prove that the configured or embedded
//! credentials reach gix's credential callback (gix only refuses an identity it was given), that
//! the refusal is terminal, and that nothing leaks. A TLS server to observe the `Authorization`
//! header of an `https://` request is not part of the test suite.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use rollgit_source::{Credentials, RepoSpec, SourceError, fetch};

/// A server on 127.0.0.1 that answers every request with 401 and records the `Authorization`
/// header of each request. It serves at most `max` connections and then stops.
fn auth_demanding_server(max: usize) -> (u16, Arc<Mutex<Vec<Option<String>>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    let port = listener.local_addr().expect("addr").port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(max) {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().expect("clone stream"));
            let mut authorization = None;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some((name, value)) = line.split_once(':')
                    && name.eq_ignore_ascii_case("authorization")
                {
                    authorization = Some(value.trim().to_owned());
                }
            }
            record.lock().expect("lock").push(authorization);
            let _ = stream.write_all(
                b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"git\"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            );
        }
    });
    (port, seen)
}

fn error_text(err: &SourceError) -> String {
    let mut text = format!("{err}\n{err:?}\n");
    let mut cur: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(err);
    while let Some(e) = cur {
        text.push_str(&format!("{e}\n{e:?}\n"));
        cur = e.source();
    }
    text
}

#[test]
fn configured_token_reaches_gix_and_is_never_shown() {
    let (port, seen) = auth_demanding_server(4);
    let tmp = tempfile::tempdir().expect("tempdir");
    let spec = RepoSpec {
        url: format!("http://127.0.0.1:{port}/org/app.git"),
        branch: "main".into(),
        credentials: Some(Credentials::Token("tok-http-123".into())),
    };
    let err = fetch(&spec, tmp.path()).expect_err("server refuses everyone");
    assert!(
        !err.is_transient(),
        "refused credentials are terminal: {err:?}"
    );
    let text = error_text(&err);
    assert!(
        text.contains("Will not send credentials in clear text"),
        "gix was handed the token after the 401: {text}"
    );
    assert!(!text.contains("tok-http-123"), "leaked the token: {text}");
    let seen = seen.lock().expect("lock").clone();
    assert_eq!(
        seen,
        [None],
        "the server saw one unauthenticated request and no secret"
    );
}

#[test]
fn user_info_in_the_url_is_used_and_never_shown() {
    let (port, seen) = auth_demanding_server(4);
    let tmp = tempfile::tempdir().expect("tempdir");
    let spec = RepoSpec::new(
        format!("http://bot:pw-url-456@127.0.0.1:{port}/org/app.git"),
        "main",
    );
    let err = fetch(&spec, tmp.path()).expect_err("server refuses everyone");
    assert!(!err.is_transient(), "{err:?}");
    let text = error_text(&err);
    assert!(
        text.contains("Will not send credentials in clear text"),
        "gix was handed the URL's credentials: {text}"
    );
    assert!(!text.contains("pw-url-456"), "leaked the password: {text}");
    assert!(
        text.contains(&format!("http://127.0.0.1:{port}/org/app.git")),
        "names the repo without user-info: {text}"
    );
    let seen = seen.lock().expect("lock").clone();
    assert_eq!(
        seen,
        [None],
        "the URL's user-info was not sent in the request line either"
    );
}

#[test]
fn no_credentials_and_401_is_terminal() {
    let (port, _seen) = auth_demanding_server(4);
    let tmp = tempfile::tempdir().expect("tempdir");
    let spec = RepoSpec::new(format!("http://127.0.0.1:{port}/org/app.git"), "main");
    let err = fetch(&spec, tmp.path()).expect_err("401");
    assert!(matches!(err, SourceError::Fetch { .. }), "{err:?}");
    assert!(
        !err.is_transient(),
        "authentication required is terminal: {err:?}"
    );
}
