//! Bearer tokens: the HS256 JWTs Together issues (so a Together deployment can share its
//! secret), or tokens signed with a configured public key (`RS256`, `ES256` or `EdDSA`).
//!
//! Claims: `sub` (the user's UUID, required), `exp` (required), `iat`, `username` (optional),
//! `token_type` (optional; when present it must be `access`, so refresh tokens are refused),
//! `nbf` (optional; a token is refused before it). `sub` is taken in its canonical form only.
//! `alg: none` never verifies, a token signed with another algorithm than the configured one is
//! refused, and so is one whose header lists `crit` parameters (none is understood here).

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{HttpMessage, HttpRequest, web};
use invite_core::ErrorCode;
use invite_store::repo::Actor;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{
    Algorithm, DecodingKey, EncodingKey, Header, TokenData, Validation, decode, encode,
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::api::error::{ApiError, ready_extractor};

/// The shortest HS256 secret accepted: 256 bits, the size of the hash.
pub const MIN_SECRET_LEN: usize = 32;

/// The claims this service reads and writes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The user's id, in its one canonical form (lower-case, hyphenated: 8-4-4-4-12).
    #[serde(deserialize_with = "canonical_uuid")]
    pub sub: Uuid,
    /// Expiry, seconds since the epoch.
    pub exp: i64,
    /// Issue time, seconds since the epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<i64>,
    /// The user's name, remembered when present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// Together marks its tokens `access` or `refresh`; only access tokens authenticate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_type: Option<String>,
}

/// Why a `sub` was refused; found again in the decoding error to say so.
const NOT_CANONICAL: &str = "sub must be a UUID in lower-case hyphenated form";

/// A UUID written as this service writes it, and no other way. `Uuid`'s own parser also takes
/// upper case, braces, `urn:uuid:` and no hyphens; one user must have one spelling, or a
/// comparison of `sub` strings elsewhere (a log, a cache key, the platform that issued the
/// token) would see several users where there is one.
fn canonical_uuid<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Uuid, D::Error> {
    let text = String::deserialize(deserializer)?;
    Uuid::try_parse(&text)
        .ok()
        .filter(|uuid| *uuid.hyphenated().encode_lower(&mut Uuid::encode_buffer()) == *text)
        .ok_or_else(|| serde::de::Error::custom(NOT_CANONICAL))
}

/// Why the authenticator could not be built.
#[derive(Debug, thiserror::Error)]
pub enum AuthConfigError {
    /// The secret is shorter than [`MIN_SECRET_LEN`].
    #[error("INVITE_JWT_SECRET must be at least {MIN_SECRET_LEN} bytes (got {0})")]
    ShortSecret(usize),
    /// The public key is not an RSA, EC or Ed25519 PEM.
    #[error(
        "INVITE_JWT_PUBLIC_KEY_FILE is not an RSA, EC (P-256) or Ed25519 public key in PEM form"
    )]
    UnreadableKey,
    /// Neither a secret nor a public key.
    #[error("set INVITE_JWT_SECRET (at least 32 bytes) or INVITE_JWT_PUBLIC_KEY_FILE")]
    Missing,
}

/// Verifies tokens, and mints them when it holds a secret.
#[derive(Clone)]
pub struct Authenticator {
    decoding: DecodingKey,
    encoding: Option<EncodingKey>,
    validation: Validation,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator")
            .field("algorithms", &self.validation.algorithms)
            .field("can_mint", &self.encoding.is_some())
            .finish_non_exhaustive()
    }
}

impl Authenticator {
    /// HS256 with a shared secret of at least 32 bytes.
    pub fn from_secret(secret: &[u8]) -> Result<Self, AuthConfigError> {
        if secret.len() < MIN_SECRET_LEN {
            return Err(AuthConfigError::ShortSecret(secret.len()));
        }
        Ok(Self {
            decoding: DecodingKey::from_secret(secret),
            encoding: Some(EncodingKey::from_secret(secret)),
            validation: validation(Algorithm::HS256),
        })
    }

    /// Verification only, with a PEM public key; the algorithm follows the key type.
    pub(crate) fn from_public_key_pem(pem: &[u8]) -> Result<Self, AuthConfigError> {
        let (decoding, algorithm) = DecodingKey::from_rsa_pem(pem)
            .map(|key| (key, Algorithm::RS256))
            .or_else(|_| DecodingKey::from_ec_pem(pem).map(|key| (key, Algorithm::ES256)))
            .or_else(|_| DecodingKey::from_ed_pem(pem).map(|key| (key, Algorithm::EdDSA)))
            .map_err(|_| AuthConfigError::UnreadableKey)?;
        Ok(Self { decoding, encoding: None, validation: validation(algorithm) })
    }

    /// Checks a token and returns who it names.
    pub fn verify(&self, token: &str) -> Result<Actor, ApiError> {
        self.verify_until(token).map(|(actor, _)| actor)
    }

    /// Checks a token and returns who it names and when it expires (seconds since the epoch):
    /// a gateway session ends then.
    pub(crate) fn verify_until(&self, token: &str) -> Result<(Actor, i64), ApiError> {
        let TokenData { header, claims } =
            decode::<Claims>(token, &self.decoding, &self.validation).map_err(|error| {
                let message = match error.kind() {
                    ErrorKind::ExpiredSignature => "The token has expired",
                    ErrorKind::ImmatureSignature => "The token is not valid yet (nbf)",
                    ErrorKind::Json(cause) if cause.to_string().contains(NOT_CANONICAL) => {
                        "The token's sub must be a user id: a UUID, lower-case and hyphenated"
                    }
                    ErrorKind::InvalidAlgorithm => {
                        "The token is signed with an algorithm this service does not accept"
                    }
                    ErrorKind::InvalidSignature => "The token's signature is invalid",
                    ErrorKind::MissingRequiredClaim(_) => {
                        "The token lacks a required claim (sub, exp)"
                    }
                    ErrorKind::Json(cause) if cause.to_string().contains("missing field") => {
                        "The token lacks a required claim (sub, exp)"
                    }
                    _ => "The token is invalid",
                };
                ApiError::with_message(ErrorCode::Unauthorized, message)
            })?;
        // RFC 7515 section 4.1.11: a recipient that does not understand a parameter listed as
        // critical must refuse the token, and this service understands none.
        if header.crit.is_some() {
            return Err(ApiError::with_message(
                ErrorCode::Unauthorized,
                "The token marks header parameters critical that this service does not understand",
            ));
        }
        if claims.token_type.as_deref().is_some_and(|kind| kind != "access") {
            return Err(ApiError::with_message(
                ErrorCode::Unauthorized,
                "Only access tokens are accepted",
            ));
        }
        // A name is remembered to show it; one with control characters (NUL cannot even be
        // stored), or longer than any name the contract allows, is not worth showing, and must
        // not turn the request into a failure either.
        let username = claims.username.filter(|name| {
            !name.chars().any(char::is_control)
                && name.chars().count() <= invite_core::server::MAX_NAME_LEN
        });
        Ok((Actor { user_id: claims.sub, username }, claims.exp))
    }

    /// Signs claims; `None` when configured with a public key only.
    pub fn mint(&self, claims: &Claims) -> Option<String> {
        let key = self.encoding.as_ref()?;
        encode(&Header::new(Algorithm::HS256), claims, key).ok()
    }

    /// An access token for `user`, valid for `ttl` from now.
    pub fn mint_for(
        &self,
        user_id: Uuid,
        username: Option<String>,
        ttl: std::time::Duration,
    ) -> Option<String> {
        let now = chrono::Utc::now().timestamp();
        let ttl = i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX / 2);
        self.mint(&Claims {
            sub: user_id,
            exp: now.saturating_add(ttl),
            iat: Some(now),
            username,
            token_type: Some("access".to_owned()),
        })
    }
}

fn validation(algorithm: Algorithm) -> Validation {
    let mut validation = Validation::new(algorithm);
    validation.set_required_spec_claims(&["exp", "sub"]);
    // Expired means expired, and not yet valid means not yet: the contract has no grace
    // period, either side.
    validation.leeway = 0;
    validation.validate_nbf = true;
    validation.validate_aud = false;
    validation
}

/// The authenticated caller, extracted from `Authorization: Bearer <token>`.
#[derive(Debug, Clone)]
pub(crate) struct AuthUser(pub(crate) Actor);

ready_extractor!(AuthUser, auth_user);

/// The request's caller, verified once per request, whichever extractors ask.
fn auth_user(req: &HttpRequest, _: &mut Payload) -> Result<AuthUser, ApiError> {
    if let Some(user) = req.extensions().get::<AuthUser>() {
        return Ok(user.clone());
    }
    let user = AuthUser(authenticate(req)?);
    req.extensions_mut().insert(user.clone());
    Ok(user)
}

fn authenticate(req: &HttpRequest) -> Result<Actor, ApiError> {
    let auth = req
        .app_data::<web::Data<Authenticator>>()
        .ok_or_else(|| ApiError::internal("the authenticator is not registered"))?;
    let value =
        req.headers().get(header::AUTHORIZATION).and_then(|value| value.to_str().ok()).ok_or_else(
            || {
                ApiError::with_message(
                    ErrorCode::Unauthorized,
                    "An Authorization: Bearer <token> header is required",
                )
            },
        )?;
    let token = value
        .split_once(' ')
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
        .filter(|token| !token.is_empty())
        .ok_or_else(|| {
            ApiError::with_message(
                ErrorCode::Unauthorized,
                "The Authorization header must be Bearer <token>",
            )
        })?;
    auth.verify(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

    fn message(result: Result<Actor, ApiError>) -> String {
        match result {
            Err(ApiError::Problem(problem)) => {
                assert_eq!(problem.code, ErrorCode::Unauthorized);
                problem.message.into_owned()
            }
            other => panic!("expected 401, got {other:?}"),
        }
    }

    fn claims(exp: i64) -> Claims {
        Claims {
            sub: Uuid::from_u128(7),
            exp,
            iat: None,
            username: Some("ann".into()),
            token_type: None,
        }
    }

    fn future() -> i64 {
        chrono::Utc::now().timestamp() + 600
    }

    #[test]
    fn short_secrets_are_refused() {
        assert!(matches!(
            Authenticator::from_secret(b"short"),
            Err(AuthConfigError::ShortSecret(5))
        ));
    }

    #[test]
    fn a_valid_token_names_its_user() {
        let auth = Authenticator::from_secret(SECRET).unwrap();
        let token = auth.mint(&claims(future())).unwrap();
        assert_eq!(
            auth.verify(&token).unwrap(),
            Actor { user_id: Uuid::from_u128(7), username: Some("ann".into()) }
        );
        let access =
            auth.mint(&Claims { token_type: Some("access".into()), ..claims(future()) }).unwrap();
        assert!(auth.verify(&access).is_ok());
        let odd_name =
            auth.mint(&Claims { username: Some("a\0b".into()), ..claims(future()) }).unwrap();
        assert_eq!(auth.verify(&odd_name).unwrap().username, None);
        for (length, kept) in [(100, true), (101, false), (15_000, false)] {
            let long = auth
                .mint(&Claims { username: Some("é".repeat(length)), ..claims(future()) })
                .unwrap();
            assert_eq!(auth.verify(&long).unwrap().username.is_some(), kept, "{length}");
        }
    }

    #[test]
    fn bad_tokens_are_401_with_a_reason() {
        let auth = Authenticator::from_secret(SECRET).unwrap();
        let other = Authenticator::from_secret(b"another-secret-another-secret-xx").unwrap();
        let expired = auth.mint(&claims(chrono::Utc::now().timestamp() - 1)).unwrap();
        assert_eq!(message(auth.verify(&expired)), "The token has expired");
        let forged = other.mint(&claims(future())).unwrap();
        assert_eq!(message(auth.verify(&forged)), "The token's signature is invalid");
        let refresh =
            auth.mint(&Claims { token_type: Some("refresh".into()), ..claims(future()) }).unwrap();
        assert_eq!(message(auth.verify(&refresh)), "Only access tokens are accepted");
        assert_eq!(message(auth.verify("not.a.token")), "The token is invalid");

        // `alg: none`, hand-made: header {"alg":"none","typ":"JWT"}, no signature.
        let encode_segment = |bytes: &[u8]| {
            base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, bytes)
        };
        let body = serde_json::to_vec(&claims(future())).unwrap();
        let unsigned = format!(
            "{}.{}.",
            encode_segment(br#"{"alg":"none","typ":"JWT"}"#),
            encode_segment(&body)
        );
        assert!(auth.verify(&unsigned).is_err());
        // HS512 with the right secret is still the wrong algorithm.
        let hs512 = encode(
            &Header::new(Algorithm::HS512),
            &claims(future()),
            &EncodingKey::from_secret(SECRET),
        )
        .unwrap();
        assert_eq!(
            message(auth.verify(&hs512)),
            "The token is signed with an algorithm this service does not accept"
        );
    }

    /// Key pairs made for these tests only (`openssl genpkey -algorithm ed25519`, and a P-256
    /// key from `openssl ecparam -name prime256v1`); they sign nothing anywhere else.
    const ED25519_PRIVATE: &str = "-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEIBoCtEpSZ7tb4jjzjRXks/RNtb2F3H1N9pX+8J9+yczF
-----END PRIVATE KEY-----
";
    const ED25519_PUBLIC: &str = "-----BEGIN PUBLIC KEY-----
MCowBQYDK2VwAyEAfF4WHb2ltoe+1Wh1V2GRE8xf1WuLCDKDZ1hnHQcCyGg=
-----END PUBLIC KEY-----
";
    const P256_PRIVATE: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgvZ+nSoIVfz+i4rd5
5pSFnrsHGkNKS5huF4m4xZcPuNihRANCAAQ1eIqSilxWcg/L0G0klmRipOlfbjrF
uHgYj7NZtsM9/+XpS7sb0LIvT2mMlI1hr4vy1sjpiXmLzA8U3HT4EBt+
-----END PRIVATE KEY-----
";
    const P256_PUBLIC: &str = "-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAENXiKkopcVnIPy9BtJJZkYqTpX246
xbh4GI+zWbbDPf/l6Uu7G9CyL09pjJSNYa+L8tbI6Yl5i8wPFNx0+BAbfg==
-----END PUBLIC KEY-----
";

    #[test]
    fn a_public_key_verifies_its_own_algorithm_only() {
        let signed = |algorithm, key: &EncodingKey| {
            encode(&Header::new(algorithm), &claims(future()), key).unwrap()
        };
        let ed_key = EncodingKey::from_ed_pem(ED25519_PRIVATE.as_bytes()).unwrap();
        let ec_key = EncodingKey::from_ec_pem(P256_PRIVATE.as_bytes()).unwrap();
        let expected = Actor { user_id: Uuid::from_u128(7), username: Some("ann".into()) };

        let ed = Authenticator::from_public_key_pem(ED25519_PUBLIC.as_bytes()).unwrap();
        assert_eq!(ed.verify(&signed(Algorithm::EdDSA, &ed_key)).unwrap(), expected);
        assert_eq!(ed.mint(&claims(future())), None, "a public key cannot mint");
        let ec = Authenticator::from_public_key_pem(P256_PUBLIC.as_bytes()).unwrap();
        assert_eq!(ec.verify(&signed(Algorithm::ES256, &ec_key)).unwrap(), expected);

        // Another key's token, and the classic confusion: HS256 keyed with the public key's
        // own bytes, which an attacker knows.
        assert_eq!(
            message(ed.verify(&signed(Algorithm::ES256, &ec_key))),
            "The token is signed with an algorithm this service does not accept"
        );
        let confused =
            signed(Algorithm::HS256, &EncodingKey::from_secret(ED25519_PUBLIC.as_bytes()));
        assert_eq!(
            message(ed.verify(&confused)),
            "The token is signed with an algorithm this service does not accept"
        );
        let expired = encode(
            &Header::new(Algorithm::EdDSA),
            &claims(chrono::Utc::now().timestamp() - 1),
            &ed_key,
        )
        .unwrap();
        assert_eq!(message(ed.verify(&expired)), "The token has expired");
        assert!(matches!(
            Authenticator::from_public_key_pem(b"not a key"),
            Err(AuthConfigError::UnreadableKey)
        ));
    }

    #[test]
    fn sub_must_be_a_uuid_and_exp_is_required() {
        let auth = Authenticator::from_secret(SECRET).unwrap();
        let key = EncodingKey::from_secret(SECRET);
        let not_uuid =
            encode(&Header::default(), &serde_json::json!({"sub": "42", "exp": future()}), &key)
                .unwrap();
        assert_eq!(
            message(auth.verify(&not_uuid)),
            "The token's sub must be a user id: a UUID, lower-case and hyphenated"
        );
        let no_exp =
            encode(&Header::default(), &serde_json::json!({"sub": Uuid::from_u128(1)}), &key)
                .unwrap();
        assert_eq!(message(auth.verify(&no_exp)), "The token lacks a required claim (sub, exp)");
    }

    #[test]
    fn sub_is_accepted_in_its_canonical_form_only() {
        let auth = Authenticator::from_secret(SECRET).unwrap();
        let key = EncodingKey::from_secret(SECRET);
        let with_sub = |sub: &str| {
            encode(&Header::default(), &serde_json::json!({"sub": sub, "exp": future()}), &key)
                .unwrap()
        };
        let canonical = "0191e7f3-5b1c-7d2e-9a4b-3c5d6e7f8a9b";
        assert_eq!(
            auth.verify(&with_sub(canonical)).unwrap().user_id,
            Uuid::parse_str(canonical).unwrap()
        );
        for other in [
            "0191E7F3-5B1C-7D2E-9A4B-3C5D6E7F8A9B",
            "0191e7f3-5b1c-7d2e-9a4b-3C5D6E7F8A9B",
            "{0191e7f3-5b1c-7d2e-9a4b-3c5d6e7f8a9b}",
            "urn:uuid:0191e7f3-5b1c-7d2e-9a4b-3c5d6e7f8a9b",
            "0191e7f35b1c7d2e9a4b3c5d6e7f8a9b",
            " 0191e7f3-5b1c-7d2e-9a4b-3c5d6e7f8a9b",
            "",
        ] {
            assert_eq!(
                message(auth.verify(&with_sub(other))),
                "The token's sub must be a user id: a UUID, lower-case and hyphenated",
                "{other:?}"
            );
        }
    }

    #[test]
    fn a_token_not_valid_yet_is_refused() {
        let auth = Authenticator::from_secret(SECRET).unwrap();
        let key = EncodingKey::from_secret(SECRET);
        let now = chrono::Utc::now().timestamp();
        let with_nbf = |nbf: serde_json::Value| {
            let claims =
                serde_json::json!({"sub": Uuid::from_u128(7), "exp": now + 600, "nbf": nbf});
            encode(&Header::default(), &claims, &key).unwrap()
        };
        // No leeway, as for `exp`.
        for early in [now + 2, now + 3600] {
            assert_eq!(
                message(auth.verify(&with_nbf(early.into()))),
                "The token is not valid yet (nbf)"
            );
        }
        for valid in [now - 3600, now - 1] {
            assert!(auth.verify(&with_nbf(valid.into())).is_ok(), "{valid}");
        }
        assert_eq!(message(auth.verify(&with_nbf("soon".into()))), "The token is invalid");
    }

    #[test]
    fn critical_header_parameters_are_refused() {
        let auth = Authenticator::from_secret(SECRET).unwrap();
        let key = EncodingKey::from_secret(SECRET);
        for crit in [vec!["exp".to_owned()], vec!["b64".to_owned()], Vec::new()] {
            let header = Header { crit: Some(crit.clone()), ..Header::default() };
            let token = encode(&header, &claims(future()), &key).unwrap();
            assert_eq!(
                message(auth.verify(&token)),
                "The token marks header parameters critical that this service does not understand",
                "{crit:?}"
            );
        }
        // A forged one is refused for its signature first.
        let other = EncodingKey::from_secret(b"another-secret-another-secret-xx");
        let header = Header { crit: Some(vec!["exp".into()]), ..Header::default() };
        let forged = encode(&header, &claims(future()), &other).unwrap();
        assert_eq!(message(auth.verify(&forged)), "The token's signature is invalid");
    }
}
