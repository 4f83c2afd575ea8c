//! Bearer tokens: the admin token of the dev cluster's kubeconfig, and ServiceAccount tokens
//! issued by `serviceaccounts/token` (TokenRequest).
//!
//! ServiceAccount tokens are JWTs with kube-apiserver's claims (`iss`, `sub`
//! `system:serviceaccount:NS:NAME`, `aud`, `exp`, `iat`, `nbf`, `jti`, and `kubernetes.io` with
//! the namespace and the ServiceAccount's name and uid), signed with HMAC-SHA256 by a key of
//! the cluster's (kube-apiserver signs with RS256 and an RSA key; the shape is the same, the
//! algorithm is the dev cluster's). A token is valid while it has not expired, names an API
//! audience, and its ServiceAccount still exists with the same uid (deleting the ServiceAccount
//! revokes its tokens, as for kube-apiserver's bound tokens).

use super::UserInfo;
use crate::resources::GroupResource;
use crate::store::{ObjKey, Store};
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::path::Path;

type HmacSha256 = Hmac<Sha256>;

/// The audience and issuer of the tokens kube-apiserver issues by default.
pub const API_AUDIENCE: &str = "https://kubernetes.default.svc.cluster.local";

/// The file in the data directory that keeps the signing key across restarts.
const KEY_FILE: &str = "signing-key";

/// Why a token is not valid (TokenReview's `status.error`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not a token this cluster issued.
    #[error("invalid bearer token")]
    Invalid,
    /// Past its `exp`.
    #[error("token has expired")]
    Expired,
    /// None of its audiences is accepted.
    #[error("token audiences {0:?} is invalid for the target audiences {1:?}")]
    Audience(Vec<String>, Vec<String>),
    /// Its ServiceAccount is gone (or is another one of the same name).
    #[error("service account {0} has been deleted")]
    ServiceAccountGone(String),
}

/// The cluster's token keys.
#[derive(Clone)]
pub struct Auth {
    key: [u8; 32],
    admin: String,
    kid: String,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

fn mac(key: &[u8], data: &[u8]) -> Vec<u8> {
    // HMAC takes keys of any length: this cannot fail.
    let mut m = <HmacSha256 as Mac>::new_from_slice(key).expect("HMAC accepts any key length");
    m.update(data);
    m.finalize().into_bytes().to_vec()
}

/// Constant-time equality of two byte strings.
fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl Auth {
    /// Keys from a 32-byte secret.
    pub fn new(key: [u8; 32]) -> Self {
        let admin = format!("rollgit-admin.{}", hex::encode(mac(&key, b"admin")));
        let kid = hex::encode(&Sha256::digest(key)[..8]);
        Self { key, admin, kid }
    }

    /// Fresh random keys (a cluster kept in memory).
    pub fn generate() -> Self {
        let mut key = [0u8; 32];
        key[..16].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
        key[16..].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
        Self::new(key)
    }

    /// The keys kept in `dir` (created there on first use), so that tokens and the admin
    /// kubeconfig survive a restart on the same data.
    pub fn load_or_create(dir: &Path) -> std::io::Result<Self> {
        let path = dir.join(KEY_FILE);
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                let bytes = hex::decode(text.trim()).map_err(|e| {
                    std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string())
                })?;
                let key: [u8; 32] = bytes.try_into().map_err(|_| {
                    std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        "the signing key is not 32 bytes",
                    )
                })?;
                Ok(Self::new(key))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let auth = Self::generate();
                std::fs::create_dir_all(dir)?;
                std::fs::write(&path, hex::encode(auth.key))?;
                Ok(auth)
            }
            Err(e) => Err(e),
        }
    }

    /// The token of the cluster admin (`kubernetes-admin`, `system:masters`).
    pub fn admin_token(&self) -> &str {
        &self.admin
    }

    /// Issues a ServiceAccount token: `(token, expiry as Unix seconds)`.
    pub fn issue(
        &self,
        namespace: &str,
        name: &str,
        sa_uid: &str,
        audiences: &[String],
        expiration_seconds: i64,
        now: i64,
    ) -> (String, i64) {
        let exp = now + expiration_seconds;
        let header = json!({"alg": "HS256", "kid": self.kid});
        let claims = json!({
            "aud": audiences,
            "exp": exp,
            "iat": now,
            "iss": API_AUDIENCE,
            "jti": uuid::Uuid::new_v4().to_string(),
            "kubernetes.io": {
                "namespace": namespace,
                "serviceaccount": {"name": name, "uid": sa_uid},
            },
            "nbf": now,
            "sub": UserInfo::service_account_name(namespace, name),
        });
        let signing_input = format!(
            "{}.{}",
            b64url(header.to_string().as_bytes()),
            b64url(claims.to_string().as_bytes())
        );
        let sig = b64url(&mac(&self.key, signing_input.as_bytes()));
        (format!("{signing_input}.{sig}"), exp)
    }

    /// The user of a bearer token, if it is valid for the API.
    pub fn authenticate(&self, token: &str, store: &Store) -> Option<UserInfo> {
        if ct_eq(token.as_bytes(), self.admin.as_bytes()) {
            return Some(UserInfo::admin());
        }
        self.review(token, &[API_AUDIENCE.to_string()], store, now_unix())
            .ok()
            .map(|(u, _)| u)
    }

    /// Checks a token as a TokenReview does: the user and the audiences it is valid for.
    pub fn review(
        &self,
        token: &str,
        audiences: &[String],
        store: &Store,
        now: i64,
    ) -> Result<(UserInfo, Vec<String>), TokenError> {
        if ct_eq(token.as_bytes(), self.admin.as_bytes()) {
            return Ok((UserInfo::admin(), audiences.to_vec()));
        }
        let claims = self.verify(token).ok_or(TokenError::Invalid)?;
        let exp = claims["exp"].as_i64().ok_or(TokenError::Invalid)?;
        if now >= exp {
            return Err(TokenError::Expired);
        }
        if claims["nbf"].as_i64().is_some_and(|nbf| now + 60 < nbf) {
            return Err(TokenError::Invalid);
        }
        let token_aud: Vec<String> = claims["aud"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|a| a.as_str().map(str::to_string))
            .collect();
        let wanted: Vec<String> = if audiences.is_empty() {
            vec![API_AUDIENCE.to_string()]
        } else {
            audiences.to_vec()
        };
        let matched: Vec<String> = wanted
            .iter()
            .filter(|a| token_aud.contains(a))
            .cloned()
            .collect();
        if matched.is_empty() {
            return Err(TokenError::Audience(token_aud, wanted));
        }
        let k8s = &claims["kubernetes.io"];
        let namespace = k8s["namespace"].as_str().ok_or(TokenError::Invalid)?;
        let name = k8s["serviceaccount"]["name"]
            .as_str()
            .ok_or(TokenError::Invalid)?;
        let uid = k8s["serviceaccount"]["uid"]
            .as_str()
            .ok_or(TokenError::Invalid)?;
        let key = ObjKey {
            gr: GroupResource {
                group: String::new(),
                resource: "serviceaccounts".into(),
            },
            namespace: namespace.to_string(),
            name: name.to_string(),
        };
        let gone = || TokenError::ServiceAccountGone(format!("{namespace}/{name}"));
        let sa = store.get(&key).ok_or_else(gone)?;
        if sa.meta.uid != uid || sa.meta.deleting {
            return Err(gone());
        }
        let mut groups = UserInfo::service_account_groups(namespace);
        groups.push(super::AUTHENTICATED.into());
        let mut extra = std::collections::BTreeMap::new();
        if let Some(jti) = claims["jti"].as_str() {
            extra.insert(
                "authentication.kubernetes.io/credential-id".to_string(),
                vec![format!("JTI={jti}")],
            );
        }
        Ok((
            UserInfo {
                name: UserInfo::service_account_name(namespace, name),
                uid: uid.to_string(),
                groups,
                extra,
            },
            matched,
        ))
    }

    /// The claims of a token this cluster signed.
    fn verify(&self, token: &str) -> Option<Value> {
        let mut parts = token.split('.');
        let (h, c, s) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() {
            return None;
        }
        let sig = b64url_decode(s)?;
        let mut m = <HmacSha256 as Mac>::new_from_slice(&self.key).ok()?;
        m.update(h.as_bytes());
        m.update(b".");
        m.update(c.as_bytes());
        m.verify_slice(&sig).ok()?;
        let header: Value = serde_json::from_slice(&b64url_decode(h)?).ok()?;
        if header["alg"] != "HS256" {
            return None;
        }
        serde_json::from_slice(&b64url_decode(c)?).ok()
    }
}

/// Seconds since the Unix epoch.
pub fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

const B64URL: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// Base64url without padding (JWT encoding).
fn b64url(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..=chunk.len() {
            out.push(char::from(B64URL[((n >> (18 - 6 * i)) & 63) as usize]));
        }
    }
    out
}

fn b64url_decode(s: &str) -> Option<Vec<u8>> {
    let mut bits: u32 = 0;
    let mut nbits = 0;
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    for c in s.bytes() {
        let v = B64URL.iter().position(|&x| x == c)? as u32;
        bits = (bits << 6) | v;
        nbits += 6;
        if nbits >= 8 {
            nbits -= 8;
            out.push((bits >> nbits) as u8);
            bits &= (1 << nbits) - 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store_with_sa(uid_holder: &mut String) -> Store {
        let store = Store::new(100);
        let key = ObjKey {
            gr: GroupResource {
                group: String::new(),
                resource: "serviceaccounts".into(),
            },
            namespace: "ns".into(),
            name: "robot".into(),
        };
        let written = store
            .write(&key, false, |_, _| {
                Ok(crate::store::Change::Put(json!({
                    "apiVersion": "v1", "kind": "ServiceAccount",
                    "metadata": {"name": "robot", "namespace": "ns", "uid": "uid-1"},
                })))
            })
            .expect("stored");
        *uid_holder = written.entry.expect("entry").meta.uid.clone();
        store
    }

    #[test]
    fn base64url_round_trips() {
        for data in [&b""[..], b"f", b"fo", b"foo", b"foob", b"\xff\xfe\xfd"] {
            assert_eq!(b64url_decode(&b64url(data)).as_deref(), Some(data));
        }
        assert_eq!(b64url(b"\xfb\xff"), "-_8");
    }

    #[test]
    fn service_account_tokens_authenticate_until_they_expire_or_the_account_goes() {
        let auth = Auth::generate();
        let mut uid = String::new();
        let store = store_with_sa(&mut uid);
        let (tok, exp) = auth.issue("ns", "robot", &uid, &[API_AUDIENCE.into()], 3600, 1000);
        assert_eq!(exp, 4600);
        let (user, aud) = auth.review(&tok, &[], &store, 2000).expect("a valid token");
        assert_eq!(user.name, "system:serviceaccount:ns:robot");
        assert_eq!(
            user.groups,
            [
                "system:serviceaccounts",
                "system:serviceaccounts:ns",
                "system:authenticated"
            ]
        );
        assert_eq!(user.uid, uid);
        assert_eq!(aud, [API_AUDIENCE]);
        assert_eq!(
            auth.review(&tok, &[], &store, 4600),
            Err(TokenError::Expired)
        );
        assert!(matches!(
            auth.review(&tok, &["other".into()], &store, 2000),
            Err(TokenError::Audience(..))
        ));
        let mut forged = tok.clone();
        forged.push('x');
        assert_eq!(
            auth.review(&forged, &[], &store, 2000),
            Err(TokenError::Invalid)
        );
        assert_eq!(
            Auth::generate().review(&tok, &[], &store, 2000),
            Err(TokenError::Invalid),
            "another cluster's key"
        );
        let (other, _) = auth.issue(
            "ns",
            "robot",
            "another-uid",
            &[API_AUDIENCE.into()],
            3600,
            1000,
        );
        assert_eq!(
            auth.review(&other, &[], &store, 2000),
            Err(TokenError::ServiceAccountGone("ns/robot".into()))
        );
    }

    #[test]
    fn the_admin_token_is_stable_for_a_key() {
        let a = Auth::new([7; 32]);
        let b = Auth::new([7; 32]);
        assert_eq!(a.admin_token(), b.admin_token());
        assert_ne!(Auth::new([8; 32]).admin_token(), a.admin_token());
        let store = Store::new(10);
        assert_eq!(
            a.authenticate(a.admin_token(), &store),
            Some(UserInfo::admin())
        );
        assert_eq!(a.authenticate("nope", &store), None);
    }
}
