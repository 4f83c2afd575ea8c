//! Webhook verification for GitHub, Gitea, GitLab and generic HMAC-SHA256 senders.
//!
//! Pure functions over `(headers, body, secret)`; the daemon mounts them on its HTTP server
//! (`POST /hooks/<provider>/<repo>`) with [`handle`]. A webhook is only a hint that the repository
//! may have moved: on success the repository's [`Trigger`] is notified and the daemon fetches
//! from the remote as usual. Nothing in the payload (refs, commits, file lists) is ever trusted or
//! even parsed.
//!
//! | provider | header | value |
//! |---|---|---|
//! | [`Provider::GitHub`] | `X-Hub-Signature-256` | `sha256=<hex hmac-sha256(secret, body)>` |
//! | [`Provider::Gitea`] | `X-Gitea-Signature` | `<hex hmac-sha256(secret, body)>` |
//! | [`Provider::GitLab`] | `X-Gitlab-Token` | `<secret>` |
//! | [`Provider::Generic`] | `X-Rollgit-Signature` | `sha256=<hex hmac-sha256(secret, body)>` |
//!
//! All comparisons are constant-time: HMACs through `hmac`'s `verify_slice`, GitLab's token
//! through `subtle` (its length is not hidden; its content is).

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::trigger::Trigger;

type HmacSha256 = Hmac<Sha256>;

/// Who sends the webhook, which decides the header and the signature scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Provider {
    GitHub,
    Gitea,
    GitLab,
    Generic,
}

impl Provider {
    /// Every provider, in a stable order.
    pub const ALL: [Provider; 4] = [
        Provider::GitHub,
        Provider::Gitea,
        Provider::GitLab,
        Provider::Generic,
    ];

    /// The header carrying the signature or token.
    pub fn header(self) -> &'static str {
        match self {
            Provider::GitHub => "X-Hub-Signature-256",
            Provider::Gitea => "X-Gitea-Signature",
            Provider::GitLab => "X-Gitlab-Token",
            Provider::Generic => "X-Rollgit-Signature",
        }
    }

    /// The lowercase name used in configuration and URL paths.
    pub fn name(self) -> &'static str {
        match self {
            Provider::GitHub => "github",
            Provider::Gitea => "gitea",
            Provider::GitLab => "gitlab",
            Provider::Generic => "generic",
        }
    }

    /// Parse a name as [`Provider::name`] prints it (case-insensitive).
    pub fn from_name(name: &str) -> Option<Provider> {
        Provider::ALL
            .into_iter()
            .find(|p| p.name().eq_ignore_ascii_case(name))
    }

    /// The `(header, value)` a sender would attach to `body`: for signing in tests and for
    /// clients that want to call the generic endpoint.
    pub fn sign(self, secret: &[u8], body: &[u8]) -> (&'static str, String) {
        let value = match self {
            Provider::GitHub | Provider::Generic => format!("sha256={}", hmac_hex(secret, body)),
            Provider::Gitea => hmac_hex(secret, body),
            Provider::GitLab => String::from_utf8_lossy(secret).into_owned(),
        };
        (self.header(), value)
    }
}

impl std::fmt::Display for Provider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Provider {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Provider::from_name(s).ok_or_else(|| {
            format!("unknown webhook provider {s:?} (expected github, gitea, gitlab or generic)")
        })
    }
}

/// Why a webhook was refused. Messages name the header, never the secret or the signature.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookError {
    /// The request has no signature/token header.
    #[error("missing {header} header")]
    MissingSignature { header: &'static str },
    /// The header is there but not in the provider's format (no `sha256=` prefix, not hex,
    /// wrong length, sent twice).
    #[error("malformed {header} header")]
    MalformedSignature { header: &'static str },
    /// The signature or token does not match the secret.
    #[error("{header} does not match the configured secret")]
    BadSignature { header: &'static str },
    /// No secret is configured for this repository: every webhook is refused.
    #[error("no webhook secret is configured")]
    NoSecret,
}

/// Verify a webhook request. `headers` are `(name, value)` pairs; names are compared
/// case-insensitively. `secret` is the repository's configured webhook secret.
pub fn verify(
    provider: Provider,
    headers: &[(String, String)],
    body: &[u8],
    secret: &[u8],
) -> Result<(), WebhookError> {
    if secret.is_empty() {
        return Err(WebhookError::NoSecret);
    }
    let header = provider.header();
    let mut values = headers
        .iter()
        .filter(|(name, _)| name.eq_ignore_ascii_case(header))
        .map(|(_, value)| value.trim());
    let value = values
        .next()
        .ok_or(WebhookError::MissingSignature { header })?;
    if values.next().is_some() {
        return Err(WebhookError::MalformedSignature { header });
    }
    match provider {
        Provider::GitLab => {
            if bool::from(value.as_bytes().ct_eq(secret)) {
                Ok(())
            } else {
                Err(WebhookError::BadSignature { header })
            }
        }
        Provider::GitHub | Provider::Generic | Provider::Gitea => {
            let hex_digest = if provider == Provider::Gitea {
                value
            } else {
                value
                    .strip_prefix("sha256=")
                    .ok_or(WebhookError::MalformedSignature { header })?
            };
            let expected =
                hex::decode(hex_digest).map_err(|_| WebhookError::MalformedSignature { header })?;
            if expected.len() != 32 {
                return Err(WebhookError::MalformedSignature { header });
            }
            let mut mac = new_mac(secret);
            mac.update(body);
            mac.verify_slice(&expected)
                .map_err(|_| WebhookError::BadSignature { header })
        }
    }
}

/// What the daemon's HTTP handler should answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookResponse {
    /// 202 when accepted (a fetch was triggered), 401 when refused.
    pub status: u16,
    /// A short plain-text body: what was triggered, or why the request was refused (never
    /// the secret or the expected signature).
    pub body: String,
}

/// Verify a webhook and, if it is genuine, notify `trigger`. A bad or missing signature gets
/// 401 and triggers nothing. The payload is never interpreted.
pub fn handle(
    provider: Provider,
    headers: &[(String, String)],
    body: &[u8],
    secret: &[u8],
    trigger: &Trigger,
) -> WebhookResponse {
    match verify(provider, headers, body, secret) {
        Ok(()) => {
            tracing::debug!(%provider, "webhook accepted; fetch triggered");
            trigger.notify();
            WebhookResponse {
                status: 202,
                body: "accepted: fetch triggered\n".into(),
            }
        }
        Err(e) => {
            tracing::warn!(%provider, error = %e, "webhook refused");
            let hint = match e {
                WebhookError::NoSecret => {
                    " for this repository: configure webhook.secretFile or webhook.secretEnv"
                }
                _ => "",
            };
            WebhookResponse {
                status: 401,
                body: format!("refused: {e}{hint}\n"),
            }
        }
    }
}

fn new_mac(secret: &[u8]) -> HmacSha256 {
    <HmacSha256 as Mac>::new_from_slice(secret).expect("HMAC accepts keys of any length")
}

fn hmac_hex(secret: &[u8], body: &[u8]) -> String {
    let mut mac = new_mac(secret);
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(name: &str, value: &str) -> Vec<(String, String)> {
        vec![
            ("Content-Type".to_owned(), "application/json".to_owned()),
            (name.to_owned(), value.to_owned()),
        ]
    }

    /// GitHub's documented example ("Validating webhook deliveries").
    const GH_SECRET: &[u8] = b"It's a Secret to Everybody";
    const GH_BODY: &[u8] = b"Hello, World!";
    const GH_HEX: &str = "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
    /// RFC 4231 test case 2 for HMAC-SHA-256.
    const RFC_KEY: &[u8] = b"Jefe";
    const RFC_DATA: &[u8] = b"what do ya want for nothing?";
    const RFC_HEX: &str = "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843";

    #[test]
    fn known_vectors_match_our_signer() {
        assert_eq!(hmac_hex(GH_SECRET, GH_BODY), GH_HEX);
        assert_eq!(hmac_hex(RFC_KEY, RFC_DATA), RFC_HEX);
    }

    #[test]
    fn verify_table() {
        struct Case {
            name: &'static str,
            provider: Provider,
            headers: Vec<(String, String)>,
            body: &'static [u8],
            secret: &'static [u8],
            want: Result<(), WebhookError>,
        }
        let gh = "X-Hub-Signature-256";
        let gitea = "X-Gitea-Signature";
        let gl = "X-Gitlab-Token";
        let gen_ = "X-Rollgit-Signature";
        let flipped = {
            let mut s = GH_HEX.to_owned();
            s.replace_range(0..1, "8");
            s
        };
        let cases = vec![
            Case {
                name: "github_doc_example",
                provider: Provider::GitHub,
                headers: h(gh, &format!("sha256={GH_HEX}")),
                body: GH_BODY,
                secret: GH_SECRET,
                want: Ok(()),
            },
            Case {
                name: "github_header_name_case_insensitive",
                provider: Provider::GitHub,
                headers: h("x-hub-signature-256", &format!("sha256={GH_HEX}")),
                body: GH_BODY,
                secret: GH_SECRET,
                want: Ok(()),
            },
            Case {
                name: "github_uppercase_hex",
                provider: Provider::GitHub,
                headers: h(gh, &format!("sha256={}", GH_HEX.to_uppercase())),
                body: GH_BODY,
                secret: GH_SECRET,
                want: Ok(()),
            },
            Case {
                name: "github_rfc4231_vector",
                provider: Provider::GitHub,
                headers: h(gh, &format!("sha256={RFC_HEX}")),
                body: RFC_DATA,
                secret: RFC_KEY,
                want: Ok(()),
            },
            Case {
                name: "github_missing_header",
                provider: Provider::GitHub,
                headers: h("X-Hub-Signature", "sha1=0000"),
                body: GH_BODY,
                secret: GH_SECRET,
                want: Err(WebhookError::MissingSignature { header: gh }),
            },
            Case {
                name: "github_no_prefix",
                provider: Provider::GitHub,
                headers: h(gh, GH_HEX),
                body: GH_BODY,
                secret: GH_SECRET,
                want: Err(WebhookError::MalformedSignature { header: gh }),
            },
            Case {
                name: "github_not_hex",
                provider: Provider::GitHub,
                headers: h(gh, &format!("sha256={}", "zz".repeat(32))),
                body: GH_BODY,
                secret: GH_SECRET,
                want: Err(WebhookError::MalformedSignature { header: gh }),
            },
            Case {
                name: "github_truncated",
                provider: Provider::GitHub,
                headers: h(gh, &format!("sha256={}", &GH_HEX[..62])),
                body: GH_BODY,
                secret: GH_SECRET,
                want: Err(WebhookError::MalformedSignature { header: gh }),
            },
            Case {
                name: "github_one_digit_wrong",
                provider: Provider::GitHub,
                headers: h(gh, &format!("sha256={flipped}")),
                body: GH_BODY,
                secret: GH_SECRET,
                want: Err(WebhookError::BadSignature { header: gh }),
            },
            Case {
                name: "github_wrong_secret",
                provider: Provider::GitHub,
                headers: h(gh, &format!("sha256={GH_HEX}")),
                body: GH_BODY,
                secret: b"another secret",
                want: Err(WebhookError::BadSignature { header: gh }),
            },
            Case {
                name: "github_body_tampered",
                provider: Provider::GitHub,
                headers: h(gh, &format!("sha256={GH_HEX}")),
                body: b"Hello, World?",
                secret: GH_SECRET,
                want: Err(WebhookError::BadSignature { header: gh }),
            },
            Case {
                name: "github_header_twice",
                provider: Provider::GitHub,
                headers: {
                    let mut v = h(gh, &format!("sha256={GH_HEX}"));
                    v.push((gh.to_owned(), format!("sha256={flipped}")));
                    v
                },
                body: GH_BODY,
                secret: GH_SECRET,
                want: Err(WebhookError::MalformedSignature { header: gh }),
            },
            Case {
                name: "no_secret_configured",
                provider: Provider::GitHub,
                headers: h(gh, &format!("sha256={GH_HEX}")),
                body: GH_BODY,
                secret: b"",
                want: Err(WebhookError::NoSecret),
            },
            Case {
                name: "gitea_plain_hex",
                provider: Provider::Gitea,
                headers: h(gitea, GH_HEX),
                body: GH_BODY,
                secret: GH_SECRET,
                want: Ok(()),
            },
            Case {
                name: "gitea_rfc4231_vector",
                provider: Provider::Gitea,
                headers: h(gitea, RFC_HEX),
                body: RFC_DATA,
                secret: RFC_KEY,
                want: Ok(()),
            },
            Case {
                name: "gitea_with_github_prefix_is_malformed",
                provider: Provider::Gitea,
                headers: h(gitea, &format!("sha256={GH_HEX}")),
                body: GH_BODY,
                secret: GH_SECRET,
                want: Err(WebhookError::MalformedSignature { header: gitea }),
            },
            Case {
                name: "gitea_bad",
                provider: Provider::Gitea,
                headers: h(gitea, &flipped),
                body: GH_BODY,
                secret: GH_SECRET,
                want: Err(WebhookError::BadSignature { header: gitea }),
            },
            Case {
                name: "gitea_missing_github_header_not_accepted",
                provider: Provider::Gitea,
                headers: h(gh, &format!("sha256={GH_HEX}")),
                body: GH_BODY,
                secret: GH_SECRET,
                want: Err(WebhookError::MissingSignature { header: gitea }),
            },
            Case {
                name: "gitlab_token",
                provider: Provider::GitLab,
                headers: h(gl, "s3cret-token"),
                body: b"{\"object_kind\":\"push\"}",
                secret: b"s3cret-token",
                want: Ok(()),
            },
            Case {
                name: "gitlab_wrong_token",
                provider: Provider::GitLab,
                headers: h(gl, "s3cret-tokeN"),
                body: b"{}",
                secret: b"s3cret-token",
                want: Err(WebhookError::BadSignature { header: gl }),
            },
            Case {
                name: "gitlab_prefix_of_token",
                provider: Provider::GitLab,
                headers: h(gl, "s3cret"),
                body: b"{}",
                secret: b"s3cret-token",
                want: Err(WebhookError::BadSignature { header: gl }),
            },
            Case {
                name: "gitlab_missing",
                provider: Provider::GitLab,
                headers: vec![],
                body: b"{}",
                secret: b"s3cret-token",
                want: Err(WebhookError::MissingSignature { header: gl }),
            },
            Case {
                name: "generic_rfc4231_vector",
                provider: Provider::Generic,
                headers: h(gen_, &format!("sha256={RFC_HEX}")),
                body: RFC_DATA,
                secret: RFC_KEY,
                want: Ok(()),
            },
            Case {
                name: "generic_bad",
                provider: Provider::Generic,
                headers: h(gen_, &format!("sha256={flipped}")),
                body: GH_BODY,
                secret: GH_SECRET,
                want: Err(WebhookError::BadSignature { header: gen_ }),
            },
            Case {
                name: "generic_missing",
                provider: Provider::Generic,
                headers: h(gh, &format!("sha256={GH_HEX}")),
                body: GH_BODY,
                secret: GH_SECRET,
                want: Err(WebhookError::MissingSignature { header: gen_ }),
            },
        ];
        for c in cases {
            let got = verify(c.provider, &c.headers, c.body, c.secret);
            assert_eq!(got, c.want, "case {}", c.name);
        }
    }

    #[test]
    fn sign_round_trips_for_every_provider() {
        let body = br#"{"ref":"refs/heads/main"}"#;
        for p in Provider::ALL {
            let (header, value) = p.sign(b"top-secret", body);
            let headers = vec![(header.to_owned(), value)];
            assert_eq!(verify(p, &headers, body, b"top-secret"), Ok(()), "{p}");
            assert_eq!(
                verify(p, &headers, body, b"other"),
                Err(WebhookError::BadSignature { header }),
                "{p}"
            );
        }
    }

    #[test]
    fn provider_names_round_trip() {
        for p in Provider::ALL {
            assert_eq!(p.name().parse::<Provider>(), Ok(p));
        }
        assert_eq!(Provider::from_name("GitHub"), Some(Provider::GitHub));
        assert!("bitbucket".parse::<Provider>().is_err());
    }

    #[test]
    fn errors_never_contain_the_secret_or_signature() {
        let secret = b"s3cret-token";
        for p in Provider::ALL {
            let (header, value) = p.sign(secret, b"body");
            if p != Provider::GitLab {
                // GitLab's token does not sign the body; the HMAC providers must refuse this.
                let err = verify(
                    p,
                    &[(header.to_owned(), value.clone())],
                    b"tampered",
                    secret,
                )
                .expect_err("tampered body must fail for HMAC providers")
                .to_string();
                assert!(!err.contains(&value), "{p}: {err}");
            }
            let err = verify(p, &[(header.to_owned(), "wrong".into())], b"body", secret)
                .expect_err("wrong value")
                .to_string();
            assert!(!err.contains("s3cret"), "{p}: {err}");
        }
    }

    #[test]
    fn handle_notifies_only_on_a_genuine_webhook() {
        let trigger = Trigger::new();
        let (header, value) = Provider::GitHub.sign(GH_SECRET, GH_BODY);
        let good = vec![(header.to_owned(), value)];
        let bad = h(header, &format!("sha256={}", "0".repeat(64)));

        let r = handle(Provider::GitHub, &bad, GH_BODY, GH_SECRET, &trigger);
        assert_eq!(r.status, 401);
        assert!(!trigger.is_pending());
        assert_eq!(
            r.body,
            "refused: X-Hub-Signature-256 does not match the configured secret\n"
        );
        let r = handle(Provider::GitHub, &[], GH_BODY, GH_SECRET, &trigger);
        assert_eq!(r.status, 401);
        assert_eq!(r.body, "refused: missing X-Hub-Signature-256 header\n");
        assert!(!trigger.is_pending());
        let r = handle(Provider::GitHub, &good, GH_BODY, b"", &trigger);
        assert_eq!(r.status, 401);
        assert_eq!(
            r.body,
            "refused: no webhook secret is configured for this repository: configure webhook.secretFile or webhook.secretEnv\n",
            "the reason, not a signature complaint"
        );
        assert!(!trigger.is_pending());

        let r = handle(Provider::GitHub, &good, GH_BODY, GH_SECRET, &trigger);
        assert_eq!(r.status, 202);
        assert!(trigger.is_pending());
    }
}
