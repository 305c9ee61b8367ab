//! Reading integers the way JSON Schema defines them: `10` and `10.0` are the same integer.
//! Generated clients and validators send either; refusing `10.0` would reject requests the
//! published schema calls valid.
//!
//! Integers beyond `i64` saturate to its bounds instead of failing to parse: every field read
//! here has a much narrower range, so `{"max_uses": 1e20}` is answered by the field's own rule
//! ("`max_uses` must be at most 1000000") rather than by a parse error about the number.

use std::fmt;

use serde::de::{self, Deserializer, Visitor};

use crate::patch::Patch;

struct Integer;

impl Visitor<'_> for Integer {
    type Value = i64;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an integer")
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> Result<i64, E> {
        Ok(value)
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> Result<i64, E> {
        Ok(i64::try_from(value).unwrap_or(i64::MAX))
    }

    #[expect(
        clippy::cast_possible_truncation,
        reason = "the fraction is checked first, and `as` saturates out-of-range values"
    )]
    fn visit_f64<E: de::Error>(self, value: f64) -> Result<i64, E> {
        // Infinities and NaN have no zero fraction; JSON cannot spell them anyway.
        if value.fract() == 0.0 {
            Ok(value as i64)
        } else {
            Err(E::invalid_type(de::Unexpected::Float(value), &self))
        }
    }
}

/// An `i64` from an integral JSON number.
pub(crate) fn integer<'de, D: Deserializer<'de>>(deserializer: D) -> Result<i64, D::Error> {
    deserializer.deserialize_any(Integer)
}

struct Optional;

impl<'de> Visitor<'de> for Optional {
    type Value = Option<i64>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an integer or null")
    }

    fn visit_none<E: de::Error>(self) -> Result<Option<i64>, E> {
        Ok(None)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Option<i64>, E> {
        Ok(None)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Option<i64>, D::Error> {
        integer(deserializer).map(Some)
    }
}

/// An `Option<i64>`: `null` or an integral number.
pub(crate) fn optional_integer<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<i64>, D::Error> {
    deserializer.deserialize_option(Optional)
}

/// A `Patch<i64>` field (use with `#[serde(default)]`).
pub(crate) fn patch_integer<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Patch<i64>, D::Error> {
    optional_integer(deserializer).map(|value| value.map_or(Patch::Clear, Patch::Set))
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Deserialize)]
    struct Body {
        #[serde(default, deserialize_with = "optional_integer")]
        value: Option<i64>,
        #[serde(default, deserialize_with = "patch_integer")]
        patch: Patch<i64>,
    }

    fn parse(json: &str) -> Result<Body, serde_json::Error> {
        serde_json::from_str(json)
    }

    #[test]
    fn integral_numbers_of_any_spelling() {
        assert_eq!(parse(r#"{"value": 10}"#).unwrap().value, Some(10));
        assert_eq!(parse(r#"{"value": 10.0}"#).unwrap().value, Some(10));
        assert_eq!(parse(r#"{"value": -3.0}"#).unwrap().value, Some(-3));
        assert_eq!(parse(r#"{"value": 1e3}"#).unwrap().value, Some(1000));
        assert_eq!(parse(r#"{"value": null}"#).unwrap().value, None);
        assert_eq!(parse("{}").unwrap().value, None);
        assert_eq!(parse(r#"{"patch": 2.0}"#).unwrap().patch, Patch::Set(2));
        assert_eq!(parse(r#"{"patch": null}"#).unwrap().patch, Patch::Clear);
        assert_eq!(parse("{}").unwrap().patch, Patch::Unchanged);
    }

    #[test]
    fn huge_integers_saturate() {
        assert_eq!(parse(r#"{"value": 1e30}"#).unwrap().value, Some(i64::MAX));
        assert_eq!(parse(r#"{"value": -1e30}"#).unwrap().value, Some(i64::MIN));
        assert_eq!(parse(r#"{"value": 18446744073709551615}"#).unwrap().value, Some(i64::MAX));
        assert_eq!(
            parse(r#"{"value": 99999999999999999999999999}"#).unwrap().value,
            Some(i64::MAX)
        );
        assert_eq!(parse(r#"{"value": 9223372036854775807}"#).unwrap().value, Some(i64::MAX));
    }

    #[test]
    fn fractions_and_strings_are_refused() {
        for bad in [r#"{"value": 1.5}"#, r#"{"value": "1"}"#, r#"{"patch": 0.5}"#] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
