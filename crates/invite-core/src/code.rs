//! Invite codes: random ones, vanity ones, and the code as it appears in a URL.
//!
//! Random and vanity codes share one namespace (the store keeps a single unique column for both),
//! so a code in a URL always resolves to at most one invite. [`CodeRef`] fixes the one string a
//! URL segment is looked up by.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use thiserror::Error;

use crate::problem::{ErrorCode, Problem};

/// Length of a random invite code.
pub const INVITE_CODE_LEN: usize = 8;

/// The 62 letters random codes are drawn from.
pub const INVITE_CODE_ALPHABET: [char; 62] = [
    'A', 'B', 'C', 'D', 'E', 'F', 'G', 'H', 'I', 'J', 'K', 'L', 'M', 'N', 'O', 'P', 'Q', 'R', 'S',
    'T', 'U', 'V', 'W', 'X', 'Y', 'Z', 'a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j', 'k', 'l',
    'm', 'n', 'o', 'p', 'q', 'r', 's', 't', 'u', 'v', 'w', 'x', 'y', 'z', '0', '1', '2', '3', '4',
    '5', '6', '7', '8', '9',
];

/// Shortest vanity code.
pub const VANITY_MIN_LEN: usize = 3;
/// Longest vanity code.
pub const VANITY_MAX_LEN: usize = 32;

/// Vanity codes that would shadow a route of the service (`GET /{code}` renders the invite page,
/// so a vanity `docs` would hide `/docs`) or impersonate it.
pub const RESERVED_VANITY_CODES: [&str; 17] = [
    "admin", "api", "assets", "channels", "docs", "gateway", "healthz", "invite", "invites",
    "login", "metrics", "openapi", "readyz", "servers", "static", "status", "www",
];

/// A source of random bytes. Injected so that tests can force collisions and reproduce codes.
pub trait RandomSource {
    /// Fills `dest` with random bytes.
    fn fill_bytes(&mut self, dest: &mut [u8]);
}

/// The operating system's CSPRNG (`getrandom`): the source production codes are drawn from.
#[derive(Debug, Clone, Copy, Default)]
pub struct OsRandom;

impl RandomSource for OsRandom {
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        // getrandom only fails where the kernel offers no entropy interface at all; a service
        // that cannot draw unguessable codes must not hand out guessable ones instead.
        getrandom::fill(dest).expect("the operating system's random source is unavailable");
    }
}

impl<F: FnMut(&mut [u8])> RandomSource for F {
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        self(dest);
    }
}

/// Why a string is not a random invite code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum InviteCodeError {
    /// Not exactly [`INVITE_CODE_LEN`] characters.
    #[error("an invite code has exactly 8 characters")]
    Length,
    /// A character outside `[A-Za-z0-9]`.
    #[error("an invite code only contains A-Z, a-z and 0-9")]
    Character,
}

/// A random invite code: 8 characters of `[A-Za-z0-9]`, case sensitive.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct InviteCode(String);

impl InviteCode {
    /// Parses a random code exactly as given (codes are case sensitive).
    pub fn parse(input: &str) -> Result<Self, InviteCodeError> {
        if input.len() != INVITE_CODE_LEN {
            return Err(InviteCodeError::Length);
        }
        if !input.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(InviteCodeError::Character);
        }
        Ok(Self(input.to_owned()))
    }

    /// Draws a fresh code from `random`.
    ///
    /// The letters are picked by masking each byte to 6 bits and rejecting the two values above
    /// 61 (nanoid's method), so every letter is equally likely: no modulo bias.
    pub fn generate(random: &mut (impl RandomSource + ?Sized)) -> Self {
        let code = nanoid::format(
            |len| {
                let mut bytes = vec![0; len];
                random.fill_bytes(&mut bytes);
                bytes
            },
            &INVITE_CODE_ALPHABET,
            INVITE_CODE_LEN,
        );
        Self(code)
    }

    /// The code as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for InviteCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Why a string is not a vanity code. Each variant's message is the one the API answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum VanityCodeError {
    /// Shorter than 3 or longer than 32 characters.
    #[error("vanity code must be between 3 and 32 characters")]
    Length,
    /// A character outside `[a-z0-9-]` (after lower-casing).
    #[error("vanity code may only contain letters a-z, digits 0-9 and hyphens")]
    Character,
    /// Starts or ends with a hyphen.
    #[error("vanity code must not start or end with a hyphen")]
    EdgeHyphen,
    /// Contains `--`.
    #[error("vanity code must not contain two hyphens in a row")]
    DoubleHyphen,
    /// One of [`RESERVED_VANITY_CODES`].
    #[error("this vanity code is reserved")]
    Reserved,
}

impl From<VanityCodeError> for Problem {
    fn from(error: VanityCodeError) -> Self {
        Problem::validation(error.to_string())
    }
}

/// A vanity code: 3-32 characters of `[a-z0-9-]`, no leading, trailing or double hyphen.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct VanityCode(String);

impl VanityCode {
    /// Parses user input, lower-casing it first (`"My-Server"` becomes `my-server`).
    pub fn parse(input: &str) -> Result<Self, VanityCodeError> {
        let code = input.to_ascii_lowercase();
        if !(VANITY_MIN_LEN..=VANITY_MAX_LEN).contains(&code.chars().count()) {
            return Err(VanityCodeError::Length);
        }
        if !code.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-') {
            return Err(VanityCodeError::Character);
        }
        if code.starts_with('-') || code.ends_with('-') {
            return Err(VanityCodeError::EdgeHyphen);
        }
        if code.contains("--") {
            return Err(VanityCodeError::DoubleHyphen);
        }
        if RESERVED_VANITY_CODES.contains(&code.as_str()) {
            return Err(VanityCodeError::Reserved);
        }
        Ok(Self(code))
    }

    /// The code as a string (always lower case).
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for VanityCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for VanityCode {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for VanityCode {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        Self::parse(&raw).map_err(serde::de::Error::custom)
    }
}

/// A code as it appears in a URL (`/invites/{code}`, `/invite/{code}`, `/{code}`): the one
/// string it is looked up by.
///
/// The rule is fixed so that no segment can mean two things:
/// - a segment shaped like a random code (8 characters of `[A-Za-z0-9]`) is looked up exactly
///   as written; it finds the random or the 8-character vanity invite with that code, never both,
///   because codes are unique across both kinds;
/// - otherwise a segment that lower-cases to a valid vanity code is looked up lower-cased, so
///   `/My-Server` finds the vanity code `my-server`;
/// - any other segment cannot name an invite, and is answered without asking the store.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CodeRef(String);

impl CodeRef {
    /// Parses a URL segment; `None` when no invite can have this code.
    pub fn parse(segment: &str) -> Option<Self> {
        if let Ok(code) = InviteCode::parse(segment) {
            return Some(Self(code.0));
        }
        VanityCode::parse(segment).ok().map(|code| Self(code.0))
    }

    /// The exact string to look the invite up by.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<&InviteCode> for CodeRef {
    fn from(code: &InviteCode) -> Self {
        Self(code.0.clone())
    }
}

impl From<&VanityCode> for CodeRef {
    fn from(code: &VanityCode) -> Self {
        Self(code.0.clone())
    }
}

impl fmt::Display for CodeRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Attempts at drawing an unused code before giving up: 3 in all.
pub const MAX_CODE_ATTEMPTS: usize = 3;

/// What the store answers when asked to reserve one code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reservation<T> {
    /// The code was free and is now held by the new row, `T`.
    Reserved(T),
    /// Another invite already has this code.
    Taken,
}

/// Why [`reserve_code`] gave up.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ReserveError<E> {
    /// Every one of the [`MAX_CODE_ATTEMPTS`] codes drawn was taken.
    #[error("every invite code drawn was already taken")]
    Exhausted,
    /// The store failed; no further attempt is made.
    #[error(transparent)]
    Store(E),
}

impl<E> ReserveError<E> {
    /// The problem to answer with, for [`ReserveError::Exhausted`] (500 `CODE_SPACE_EXHAUSTED`);
    /// `None` for a store failure, which the caller maps itself.
    pub fn problem(&self) -> Option<Problem> {
        match self {
            Self::Exhausted => Some(Problem::of(ErrorCode::CodeSpaceExhausted)),
            Self::Store(_) => None,
        }
    }
}

/// Draws codes from `random` and offers each to `try_reserve` until one is reserved, at most
/// [`MAX_CODE_ATTEMPTS`] times in all.
///
/// The store only detects a collision (an insert that reports the code as taken); the decision
/// to draw again, and when to give up, lives here.
pub fn reserve_code<T, E>(
    random: &mut (impl RandomSource + ?Sized),
    mut try_reserve: impl FnMut(&InviteCode) -> Result<Reservation<T>, E>,
) -> Result<T, ReserveError<E>> {
    for _ in 0..MAX_CODE_ATTEMPTS {
        let code = InviteCode::generate(random);
        match try_reserve(&code).map_err(ReserveError::Store)? {
            Reservation::Reserved(row) => return Ok(row),
            Reservation::Taken => {}
        }
    }
    Err(ReserveError::Exhausted)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A source that repeats the same bytes, so every draw yields the same code.
    fn constant(byte: u8) -> impl FnMut(&mut [u8]) {
        move |dest: &mut [u8]| dest.fill(byte)
    }

    #[test]
    fn invite_code_accepts_exactly_eight_alphanumerics() {
        assert_eq!(InviteCode::parse("aB3xK9mZ").unwrap().as_str(), "aB3xK9mZ");
        assert_eq!(InviteCode::parse("aB3xK9m"), Err(InviteCodeError::Length));
        assert_eq!(InviteCode::parse("aB3xK9mZZ"), Err(InviteCodeError::Length));
        assert_eq!(InviteCode::parse("aB3xK9m-"), Err(InviteCodeError::Character));
        assert_eq!(InviteCode::parse("aB3xK9mé"), Err(InviteCodeError::Length));
        assert_eq!(InviteCode::parse(""), Err(InviteCodeError::Length));
    }

    #[test]
    fn generation_maps_bytes_without_bias() {
        // 0..=61 map onto the alphabet; 62 and 63 (after masking to 6 bits) are rejected.
        let mut bytes =
            [62u8, 63, 0, 1, 25, 26, 51, 52, 61, 64 + 2, 128 + 3, 255 - 1].into_iter().cycle();
        let mut random = |dest: &mut [u8]| dest.iter_mut().for_each(|b| *b = bytes.next().unwrap());
        let code = InviteCode::generate(&mut random);
        assert_eq!(code.as_str(), "ABZaz09C");
    }

    #[test]
    fn generation_from_the_os_yields_valid_distinct_codes() {
        let codes: std::collections::HashSet<_> =
            (0..1000).map(|_| InviteCode::generate(&mut OsRandom)).collect();
        assert_eq!(codes.len(), 1000);
        assert!(codes.iter().all(|c| InviteCode::parse(c.as_str()).is_ok()));
    }

    #[test]
    fn vanity_code_rules_and_messages() {
        assert_eq!(VanityCode::parse("My-Server").unwrap().as_str(), "my-server");
        assert_eq!(VanityCode::parse("abc").unwrap().as_str(), "abc");
        assert_eq!(VanityCode::parse(&"a".repeat(32)).unwrap().as_str(), "a".repeat(32));
        let cases = [
            ("ab", VanityCodeError::Length, "vanity code must be between 3 and 32 characters"),
            (
                &"a".repeat(33),
                VanityCodeError::Length,
                "vanity code must be between 3 and 32 characters",
            ),
            (
                "my_server",
                VanityCodeError::Character,
                "vanity code may only contain letters a-z, digits 0-9 and hyphens",
            ),
            (
                "café",
                VanityCodeError::Character,
                "vanity code may only contain letters a-z, digits 0-9 and hyphens",
            ),
            (
                "-abc",
                VanityCodeError::EdgeHyphen,
                "vanity code must not start or end with a hyphen",
            ),
            (
                "abc-",
                VanityCodeError::EdgeHyphen,
                "vanity code must not start or end with a hyphen",
            ),
            (
                "ab--c",
                VanityCodeError::DoubleHyphen,
                "vanity code must not contain two hyphens in a row",
            ),
            ("Docs", VanityCodeError::Reserved, "this vanity code is reserved"),
        ];
        for (input, error, message) in cases {
            assert_eq!(VanityCode::parse(input), Err(error), "{input}");
            let problem = Problem::from(error);
            assert_eq!(problem.code, ErrorCode::ValidationError);
            assert_eq!(problem.message, message);
        }
    }

    #[test]
    fn vanity_code_deserializes_through_its_parser() {
        let code: VanityCode = serde_json::from_str("\"Rust-Lang\"").unwrap();
        assert_eq!(code.as_str(), "rust-lang");
        let error = serde_json::from_str::<VanityCode>("\"-x\"").unwrap_err();
        assert!(error.to_string().contains("vanity code must be between 3 and 32"), "{error}");
        assert_eq!(serde_json::to_string(&code).unwrap(), "\"rust-lang\"");
    }

    #[test]
    fn code_ref_resolves_each_segment_to_one_key() {
        // Shaped like a random code: exact, case kept.
        assert_eq!(CodeRef::parse("aB3xK9mZ").unwrap().as_str(), "aB3xK9mZ");
        // An 8-character lower-case segment is looked up exactly too (random or vanity).
        assert_eq!(CodeRef::parse("rustlang").unwrap().as_str(), "rustlang");
        // Not random-shaped: looked up as a vanity code, lower-cased.
        assert_eq!(CodeRef::parse("Rust-Lang").unwrap().as_str(), "rust-lang");
        assert_eq!(CodeRef::parse("abc").unwrap().as_str(), "abc");
        // Neither.
        for segment in ["", "ab", "a_b_c_d_e", "-abc", "docs", "x".repeat(40).as_str(), "a%20b"] {
            assert_eq!(CodeRef::parse(segment), None, "{segment}");
        }
    }

    #[test]
    fn reservation_stops_at_the_first_free_code() {
        let mut seen = Vec::new();
        let result: Result<_, ReserveError<()>> = reserve_code(&mut OsRandom, |code| {
            seen.push(code.clone());
            Ok(if seen.len() < 2 { Reservation::Taken } else { Reservation::Reserved(seen.len()) })
        });
        assert_eq!(result, Ok(2));
        assert_eq!(seen.len(), 2);
    }

    #[test]
    fn reservation_gives_up_after_three_collisions() {
        let mut attempts = 0;
        let result: Result<(), _> = reserve_code(&mut constant(7), |_| {
            attempts += 1;
            Ok::<_, ()>(Reservation::Taken)
        });
        assert_eq!(result, Err(ReserveError::Exhausted));
        assert_eq!(attempts, MAX_CODE_ATTEMPTS);
        let problem = result.unwrap_err().problem().unwrap();
        assert_eq!(problem.code.as_str(), "CODE_SPACE_EXHAUSTED");
    }

    #[test]
    fn reservation_stops_on_a_store_failure() {
        let mut attempts = 0;
        let result: Result<(), _> = reserve_code(&mut OsRandom, |_| {
            attempts += 1;
            Err("database gone")
        });
        assert_eq!(result, Err(ReserveError::Store("database gone")));
        assert_eq!(attempts, 1);
        assert_eq!(ReserveError::Store(()).problem(), None);
    }
}
