//! Fuzzing the webhook verifier on stable, with proptest: whatever the headers, body and secret,
//! [`verify`] never panics, accepts exactly the requests an independent oracle accepts (one
//! signature header of the provider whose value is the HMAC-SHA256 of the body under the secret,
//! or for GitLab the token itself), so a wrong signature is never accepted and a genuine one
//! always is, and [`handle`] triggers a fetch exactly when [`verify`] accepts. Each property
//! runs [`CASES`] cases (`PROPTEST_CASES` overrides it).
//!
//! Constant time is not something a test can measure reliably; it holds by construction:
//! HMACs are compared by `hmac`'s `verify_slice` (`subtle` underneath) and GitLab's token by
//! `subtle`'s `ct_eq`, with no early exit on the first differing byte.

use proptest::prelude::*;
use rollgit_source::Trigger;
use rollgit_source::webhook::{Provider, WebhookError, handle, verify};

/// Cases per property, unless `PROPTEST_CASES` says otherwise.
const CASES: u32 = 256;

fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(CASES);
    ProptestConfig {
        failure_persistence: None,
        ..ProptestConfig::with_cases(cases)
    }
}

fn any_provider() -> impl Strategy<Value = Provider> {
    prop::sample::select(Provider::ALL.to_vec())
}

/// The oracle, written apart from the verifier: what must be accepted.
fn accepted(provider: Provider, headers: &[(String, String)], body: &[u8], secret: &[u8]) -> bool {
    if secret.is_empty() {
        return false;
    }
    let values: Vec<&str> = headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case(provider.header()))
        .map(|(_, v)| v.trim())
        .collect();
    let [value] = values.as_slice() else {
        return false;
    };
    let (_, genuine) = provider.sign(secret, body);
    match provider {
        Provider::GitLab => value.as_bytes() == secret,
        Provider::Gitea => value.to_ascii_lowercase() == genuine,
        Provider::GitHub | Provider::Generic => value
            .strip_prefix("sha256=")
            .is_some_and(|hex| format!("sha256={}", hex.to_ascii_lowercase()) == genuine),
    }
}

/// A header name: the provider's (in any case), another provider's, or anything.
fn header_name(provider: Provider) -> impl Strategy<Value = String> {
    let mine = provider.header().to_owned();
    prop_oneof![
        3 => prop::collection::vec(any::<bool>(), mine.len()).prop_map(move |upper| {
            mine.chars()
                .zip(upper)
                .map(|(c, u)| if u { c.to_ascii_uppercase() } else { c.to_ascii_lowercase() })
                .collect()
        }),
        1 => any_provider().prop_map(|p| p.header().to_owned()),
        1 => Just("Content-Type".to_owned()),
        1 => ".{0,20}",
    ]
}

/// A header value: the genuine one (perhaps padded, upper-cased or with one character
/// changed), a genuine one for another body or secret, hex of the right length, or anything.
fn header_value(
    provider: Provider,
    body: Vec<u8>,
    secret: Vec<u8>,
) -> impl Strategy<Value = String> {
    let (_, genuine) = provider.sign(&secret, &body);
    let g1 = genuine.clone();
    let g2 = genuine.clone();
    let g3 = genuine.clone();
    prop_oneof![
        2 => Just(genuine),
        1 => ("[ \t]{0,2}", "[ \t]{0,2}").prop_map(move |(a, b)| format!("{a}{g1}{b}")),
        1 => Just(g2.to_ascii_uppercase()),
        2 => (any::<prop::sample::Index>(), any::<char>()).prop_map(move |(i, c)| {
            let mut chars: Vec<char> = g3.chars().collect();
            if !chars.is_empty() {
                let i = i.index(chars.len());
                chars[i] = c;
            }
            chars.into_iter().collect()
        }),
        1 => (prop::collection::vec(any::<u8>(), 0..64), prop::collection::vec(any::<u8>(), 1..32))
            .prop_map(move |(b, s)| provider.sign(&s, &b).1),
        1 => prop::collection::vec(any::<u8>(), 32).prop_map(|b| format!("sha256={}", hex_of(&b))),
        1 => prop::collection::vec(any::<u8>(), 32).prop_map(|b| hex_of(&b)),
        1 => ".{0,80}",
        1 => "sha256=[0-9a-fA-Fz]{0,70}",
    ]
}

/// A provider and a secret its sender can use: any bytes as an HMAC key; for GitLab, whose
/// token travels as the header's value, text without surrounding whitespace (HTTP trims it).
fn sendable_secret() -> impl Strategy<Value = (Provider, Vec<u8>)> {
    any_provider().prop_flat_map(|p| {
        let secret = if p == Provider::GitLab {
            "[!-~][ -~]{0,40}[!-~]|[!-~]"
                .prop_map(String::into_bytes)
                .boxed()
        } else {
            prop::collection::vec(any::<u8>(), 1..64).boxed()
        };
        (Just(p), secret)
    })
}

fn hex_of(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A webhook request: provider, headers, body and secret.
type Request = (Provider, Vec<(String, String)>, Vec<u8>, Vec<u8>);

/// A request (the secret sometimes empty).
fn request() -> impl Strategy<Value = Request> {
    (
        any_provider(),
        prop::collection::vec(any::<u8>(), 0..256),
        prop_oneof![
            1 => Just(Vec::new()),
            9 => prop::collection::vec(any::<u8>(), 1..80),
        ],
    )
        .prop_flat_map(|(p, body, secret)| {
            let header = (
                header_name(p),
                header_value(p, body.clone(), secret.clone()),
            );
            (
                Just(p),
                prop::collection::vec(header, 0..4),
                Just(body),
                Just(secret),
            )
        })
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn verify_accepts_exactly_what_the_oracle_accepts((p, headers, body, secret) in request()) {
        let got = verify(p, &headers, &body, &secret);
        prop_assert_eq!(got.is_ok(), accepted(p, &headers, &body, &secret), "{:?}", got);
        if let Err(e) = got {
            // Messages name the header, never the secret or what was sent.
            let shown = e.to_string();
            prop_assert!(shown.contains(p.header()) || e == WebhookError::NoSecret, "{}", shown);
            for (_, v) in &headers {
                prop_assert!(v.len() < 8 || !shown.contains(v.as_str()), "{}", shown);
            }
        }
    }

    #[test]
    fn arbitrary_headers_bodies_and_secrets_never_panic(
        p in any_provider(),
        headers in prop::collection::vec((".{0,30}", ".{0,100}"), 0..6),
        body in prop::collection::vec(any::<u8>(), 0..512),
        secret in prop::collection::vec(any::<u8>(), 0..128),
    ) {
        let got = verify(p, &headers, &body, &secret);
        prop_assert_eq!(got.is_ok(), accepted(p, &headers, &body, &secret));
    }

    #[test]
    fn a_genuine_signature_is_accepted_and_any_tampering_refused(
        (p, secret) in sendable_secret(),
        body in prop::collection::vec(any::<u8>(), 1..256),
        flip in any::<prop::sample::Index>(),
        bit in 0u8..8,
    ) {
        let (header, value) = p.sign(&secret, &body);
        let headers = vec![(header.to_owned(), value.clone())];
        prop_assert_eq!(verify(p, &headers, &body, &secret), Ok(()));
        // One bit of the body changed: refused by every HMAC provider (GitLab signs nothing).
        let mut tampered = body.clone();
        let i = flip.index(tampered.len());
        tampered[i] ^= 1 << bit;
        if p != Provider::GitLab {
            prop_assert_eq!(
                verify(p, &headers, &tampered, &secret),
                Err(WebhookError::BadSignature { header })
            );
        }
        // One bit of the secret changed: refused by every provider.
        let mut other = secret.clone();
        let j = flip.index(other.len());
        other[j] ^= 1 << bit;
        prop_assert!(verify(p, &headers, &body, &other).is_err());
    }

    #[test]
    fn handle_triggers_exactly_when_verify_accepts((p, headers, body, secret) in request()) {
        let trigger = Trigger::new();
        let response = handle(p, &headers, &body, &secret, &trigger);
        let ok = verify(p, &headers, &body, &secret).is_ok();
        prop_assert_eq!(response.status, if ok { 202 } else { 401 });
        prop_assert_eq!(trigger.is_pending(), ok);
    }
}
