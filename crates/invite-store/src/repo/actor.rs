//! Who acts: the user a token names.

use uuid::Uuid;

/// The user doing something, as their token describes them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    /// The token's `sub`.
    pub user_id: Uuid,
    /// The token's `username` claim, remembered when present.
    pub username: Option<String>,
}

impl Actor {
    /// An actor known only by id.
    pub fn new(user_id: Uuid) -> Self {
        Self { user_id, username: None }
    }
}
