//! Paging cursors.

/// A `before`/`after` cursor that names nothing in the list it pages through; `what` says what
/// it should name.
pub(super) fn unknown_cursor(what: &'static str) -> crate::error::StoreError {
    crate::error::Fact::UnknownCursor(what).into()
}
