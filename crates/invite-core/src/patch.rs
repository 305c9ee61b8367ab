//! The fields of update requests, where `null` and "left out" mean different things.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// One field of an update (`PATCH`) request. Use with `#[serde(default)]` so a field that is left
/// out stays [`Patch::Unchanged`], and, for a client sending it, with
/// `#[serde(skip_serializing_if = "Patch::is_unchanged")]` so that it is left out again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Patch<T> {
    /// The field was left out: keep the current value.
    #[default]
    Unchanged,
    /// The field was `null`: clear the value (no icon, unlimited uses, release the code).
    Clear,
    /// The field has a new value.
    Set(T),
}

impl<T> Patch<T> {
    /// Applies `f` to a new value, keeping `Unchanged` and `Clear` as they are.
    pub fn try_map<U, E>(self, f: impl FnOnce(T) -> Result<U, E>) -> Result<Patch<U>, E> {
        Ok(match self {
            Self::Unchanged => Patch::Unchanged,
            Self::Clear => Patch::Clear,
            Self::Set(value) => Patch::Set(f(value)?),
        })
    }

    /// Borrows the new value.
    pub fn as_ref(&self) -> Patch<&T> {
        match self {
            Self::Unchanged => Patch::Unchanged,
            Self::Clear => Patch::Clear,
            Self::Set(value) => Patch::Set(value),
        }
    }

    /// Whether the field was left out.
    pub fn is_unchanged(&self) -> bool {
        matches!(self, Self::Unchanged)
    }

    /// The value after the update, given the current one.
    pub fn apply(self, current: Option<T>) -> Option<T> {
        match self {
            Self::Unchanged => current,
            Self::Clear => None,
            Self::Set(value) => Some(value),
        }
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Patch<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Option::<T>::deserialize(deserializer).map(|value| value.map_or(Self::Clear, Self::Set))
    }
}

impl<T: Serialize> Serialize for Patch<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            // `Unchanged` is only reached when a field lacks `skip_serializing_if`: it is then
            // sent as `null`, which clears.
            Self::Unchanged | Self::Clear => serializer.serialize_none(),
            Self::Set(value) => value.serialize(serializer),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde::{Deserialize, Serialize};

    use super::*;

    #[derive(Deserialize, Serialize)]
    struct Body {
        #[serde(default, skip_serializing_if = "Patch::is_unchanged")]
        field: Patch<i64>,
    }

    #[test]
    fn absent_null_and_value_are_told_apart() {
        let parse = |json| serde_json::from_str::<Body>(json).unwrap().field;
        assert_eq!(parse("{}"), Patch::Unchanged);
        assert_eq!(parse(r#"{"field": null}"#), Patch::Clear);
        assert_eq!(parse(r#"{"field": 3}"#), Patch::Set(3));
        assert!(serde_json::from_str::<Body>(r#"{"field": "x"}"#).is_err());
    }

    #[test]
    fn left_out_null_and_value_are_sent_back_as_they_came() {
        for json in ["{}", r#"{"field":null}"#, r#"{"field":3}"#] {
            let body: Body = serde_json::from_str(json).unwrap();
            assert_eq!(serde_json::to_string(&body).unwrap(), json);
        }
    }

    #[test]
    fn apply_and_map() {
        assert_eq!(Patch::Unchanged.apply(Some(1)), Some(1));
        assert_eq!(Patch::<i64>::Clear.apply(Some(1)), None);
        assert_eq!(Patch::Set(2).apply(Some(1)), Some(2));
        assert_eq!(Patch::Set(2).try_map(|v| Ok::<_, ()>(v * 2)), Ok(Patch::Set(4)));
        assert_eq!(Patch::Set(2).try_map(|_| Err::<i64, _>("no")), Err("no"));
        assert_eq!(Patch::<i64>::Clear.try_map(|_| Err::<i64, _>("no")), Ok(Patch::Clear));
    }
}
