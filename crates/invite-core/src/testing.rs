//! Fixtures shared by the unit tests of several modules.

use uuid::Uuid;

use crate::permissions::{Permissions, Standing};

/// A member of a server with the default member permissions, holding `bits` of their own.
pub(crate) fn member(bits: Permissions) -> Standing {
    Standing {
        user_id: Uuid::from_u128(1),
        is_owner: false,
        default_permissions: Permissions::DEFAULT_MEMBER,
        member_permissions: bits,
    }
}

/// The server's owner.
pub(crate) fn owner() -> Standing {
    Standing { is_owner: true, ..member(Permissions::empty()) }
}
