//! Permissions on join and invites for named users (contract section 11): what an invite may
//! grant, who may set it, what a join through it actually grants, and who may accept it.
//!
//! An invite's `grant_permissions` are checked twice. When they are set (a create, or a PATCH
//! that names them), whoever sets them must hold every bit ([`check_grant`]). When someone joins,
//! the join grants only the bits whoever set them still holds then ([`granted_on_join`]): an
//! invite can never carry permissions past the moment its granter loses them, so a member who
//! lost a bit (or was kicked or banned) cannot keep handing it out through an old link. The
//! store's accept statements apply the same rule in SQL; the conformance suite compares them.
//!
//! `allowed_user_ids` names the only users who may accept an invite ([`may_accept`]); anyone
//! else is refused with `INVITE_NOT_FOR_YOU` before anything is written.

use serde_json::Value;
use uuid::Uuid;

use crate::permissions::{Permissions, Standing};
use crate::problem::{ErrorCode, Problem};

/// Most users an invite may be for.
pub const MAX_ALLOWED_USERS: usize = 100;

/// Reads `grant_permissions` as the request sent it: an integral JSON number whose bits are all
/// known permissions. A wrong type is the field's `VALIDATION_ERROR`, not malformed JSON
/// (contract section 11: every new field's wrong type is a validation error).
pub fn parse_grant(value: &Value) -> Result<Permissions, Problem> {
    // Integral numbers of any spelling (`4`, `4.0`), as every integer field reads them.
    let Ok(bits) = crate::wire::integer(value) else {
        return Err(Problem::validation("grant_permissions must be an integer (permission bits)"));
    };
    Permissions::from_bits(bits).ok_or_else(|| {
        Problem::validation(format!(
            "grant_permissions must be a combination of the known permission bits (0 to {})",
            Permissions::all().bits()
        ))
    })
}

/// Whether the caller, standing so, may make an invite grant `grant`: only the owner may grant
/// `ADMINISTRATOR` (403 `OWNER_ONLY`, checked first), and anyone else must hold every bit
/// granted (403 `MISSING_PERMISSION`). Granting nothing needs nothing.
pub fn check_grant(standing: &Standing, grant: Permissions) -> Result<(), Problem> {
    if grant.contains(Permissions::ADMINISTRATOR) && !standing.is_owner {
        return Err(Problem::with_message(
            ErrorCode::OwnerOnly,
            "Only the server owner can grant the Administrator permission",
        ));
    }
    if standing.has(grant) {
        Ok(())
    } else {
        Err(Problem::with_message(
            ErrorCode::MissingPermission,
            "An invite can only grant permissions you have",
        ))
    }
}

/// What a member standing so may grant through an invite: the owner everything; anyone else
/// their effective permissions without `ADMINISTRATOR` (an administrator every other bit);
/// someone who is no longer a member (`None`) nothing.
pub fn grantable(standing: Option<&Standing>) -> Permissions {
    match standing {
        None => Permissions::empty(),
        Some(standing) if standing.is_owner => Permissions::all(),
        Some(standing) => standing.effective().difference(Permissions::ADMINISTRATOR),
    }
}

/// What a join through an invite granting `grant` gives the new member, `granter` standing as
/// whoever set the grant stands at the time of the join (`None`: no longer a member): the bits
/// they may still grant, and no others.
pub fn granted_on_join(grant: Permissions, granter: Option<&Standing>) -> Permissions {
    grant.intersection(grantable(granter))
}

/// Whether a join through an invite makes a temporary member: only through a `temporary` invite,
/// and never when the join grants permissions (contract section 11: such a member is not
/// temporary, so the temporary-membership rule never removes them).
pub fn joins_temporary(invite_temporary: bool, granted: Permissions) -> bool {
    invite_temporary && granted.is_empty()
}

/// Reads `allowed_user_ids` as the request sent it: an array of 1 to [`MAX_ALLOWED_USERS`]
/// distinct user ids, in the order given. Duplicates are refused, not merged: a list with a
/// repeated id is most likely not the list its sender meant.
pub fn parse_allowed_users(value: &Value) -> Result<Vec<Uuid>, Problem> {
    let Value::Array(items) = value else {
        return Err(Problem::validation("allowed_user_ids must be an array of user ids"));
    };
    if items.is_empty() || items.len() > MAX_ALLOWED_USERS {
        return Err(Problem::validation(format!(
            "allowed_user_ids must hold between 1 and {MAX_ALLOWED_USERS} user ids"
        )));
    }
    let mut ids = Vec::with_capacity(items.len());
    for item in items {
        let id = item
            .as_str()
            .and_then(|text| Uuid::try_parse(text).ok())
            .ok_or_else(|| Problem::validation("allowed_user_ids must be an array of user ids"))?;
        if ids.contains(&id) {
            return Err(Problem::validation(format!("allowed_user_ids lists {id} more than once")));
        }
        ids.push(id);
    }
    Ok(ids)
}

/// Whether `user_id` may accept an invite for `allowed` (`None`: anyone).
pub fn may_accept(allowed: Option<&[Uuid]>, user_id: Uuid) -> bool {
    allowed.is_none_or(|allowed| allowed.contains(&user_id))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::json;

    use super::*;
    use crate::testing::{member, owner};

    #[test]
    fn a_grant_is_an_integer_of_known_bits() {
        assert_eq!(parse_grant(&json!(0)), Ok(Permissions::empty()));
        assert_eq!(parse_grant(&json!(16384)), Ok(Permissions::CREATE_INVITES));
        assert_eq!(parse_grant(&json!(4.0)), Ok(Permissions::MANAGE_MESSAGES));
        assert_eq!(parse_grant(&json!(32767)), Ok(Permissions::all()));
        for bad in [json!(32768), json!(-1), json!(1_i64 << 40), json!(i64::MIN)] {
            let problem = parse_grant(&bad).unwrap_err();
            assert_eq!(problem.code, ErrorCode::ValidationError, "{bad}");
            assert_eq!(
                problem.message,
                "grant_permissions must be a combination of the known permission bits (0 to 32767)"
            );
        }
        for bad in [json!("4"), json!(true), json!(1.5), json!([4]), json!({}), json!(1e300)] {
            let problem = parse_grant(&bad).unwrap_err();
            assert_eq!(problem.code, ErrorCode::ValidationError, "{bad}");
        }
    }

    #[test]
    fn the_owner_alone_grants_administrator_and_others_only_what_they_hold() {
        let admin = member(Permissions::ADMINISTRATOR);
        let refused = check_grant(&admin, Permissions::ADMINISTRATOR).unwrap_err();
        assert_eq!(refused.code, ErrorCode::OwnerOnly);
        assert_eq!(refused.message, "Only the server owner can grant the Administrator permission");
        assert_eq!(check_grant(&owner(), Permissions::all()), Ok(()));
        // An administrator holds every other bit.
        assert_eq!(check_grant(&admin, Permissions::all() - Permissions::ADMINISTRATOR), Ok(()));

        let creator = member(Permissions::CREATE_INVITES | Permissions::KICK_MEMBERS);
        assert_eq!(check_grant(&creator, Permissions::KICK_MEMBERS), Ok(()));
        // The server's defaults are held too.
        assert_eq!(check_grant(&creator, Permissions::VIEW_CHANNEL), Ok(()));
        assert_eq!(check_grant(&creator, Permissions::empty()), Ok(()));
        let refused = check_grant(&creator, Permissions::BAN_MEMBERS).unwrap_err();
        assert_eq!(refused.code, ErrorCode::MissingPermission);
        assert_eq!(refused.message, "An invite can only grant permissions you have");
        // OWNER_ONLY is checked first, even when other bits are missing too.
        let both = Permissions::ADMINISTRATOR | Permissions::BAN_MEMBERS;
        assert_eq!(check_grant(&creator, both).unwrap_err().code, ErrorCode::OwnerOnly);
    }

    #[test]
    fn a_join_grants_only_what_the_granter_still_holds() {
        let grant = Permissions::KICK_MEMBERS | Permissions::BAN_MEMBERS;
        let granter = member(Permissions::KICK_MEMBERS | Permissions::BAN_MEMBERS);
        assert_eq!(granted_on_join(grant, Some(&granter)), grant);
        // Lost a bit since: the join no longer grants it.
        let reduced = member(Permissions::KICK_MEMBERS);
        assert_eq!(granted_on_join(grant, Some(&reduced)), Permissions::KICK_MEMBERS);
        // No longer a member: nothing.
        assert_eq!(granted_on_join(grant, None), Permissions::empty());
        // The owner, everything; an administrator, everything but administrator.
        assert_eq!(granted_on_join(Permissions::all(), Some(&owner())), Permissions::all());
        let admin = member(Permissions::ADMINISTRATOR);
        assert_eq!(
            granted_on_join(Permissions::all(), Some(&admin)),
            Permissions::all() - Permissions::ADMINISTRATOR
        );
    }

    #[test]
    fn a_member_with_permissions_is_never_temporary() {
        assert!(joins_temporary(true, Permissions::empty()));
        assert!(!joins_temporary(true, Permissions::KICK_MEMBERS));
        assert!(!joins_temporary(false, Permissions::empty()));
    }

    #[test]
    fn allowed_users_are_one_to_a_hundred_distinct_ids() {
        let id = |n: u128| Uuid::from_u128(n);
        assert_eq!(parse_allowed_users(&json!([id(1), id(2)])), Ok(vec![id(1), id(2)]));
        let hundred: Vec<_> = (1..=100).map(id).collect();
        assert_eq!(parse_allowed_users(&json!(hundred)).unwrap().len(), 100);
        let too_many: Vec<_> = (1..=101).map(id).collect();
        let cases = [
            (json!([]), "allowed_user_ids must hold between 1 and 100 user ids"),
            (json!(too_many), "allowed_user_ids must hold between 1 and 100 user ids"),
            (
                json!([id(1), id(2), id(1)]),
                "allowed_user_ids lists 00000000-0000-0000-0000-000000000001 more than once",
            ),
            (json!("x"), "allowed_user_ids must be an array of user ids"),
            (json!([1]), "allowed_user_ids must be an array of user ids"),
            (json!(["not-a-uuid"]), "allowed_user_ids must be an array of user ids"),
            (json!({"id": id(1)}), "allowed_user_ids must be an array of user ids"),
        ];
        for (value, message) in cases {
            let problem = parse_allowed_users(&value).unwrap_err();
            assert_eq!(
                (problem.code, problem.message.as_ref()),
                (ErrorCode::ValidationError, message)
            );
        }
    }

    #[test]
    fn only_listed_users_may_accept() {
        let (listed, other) = (Uuid::from_u128(1), Uuid::from_u128(2));
        assert!(may_accept(None, other));
        assert!(may_accept(Some(&[listed]), listed));
        assert!(!may_accept(Some(&[listed]), other));
    }

    fn any_permissions() -> impl Strategy<Value = Permissions> {
        (0_i64..=Permissions::all().bits()).prop_map(Permissions::from_bits_truncate)
    }

    proptest! {
        /// No way through an invite to a bit its granter does not hold at the join, and
        /// administrator only from the owner.
        #[test]
        fn a_join_never_grants_more_than_the_granter_holds(
            grant in any_permissions(),
            held in any_permissions(),
            is_owner in any::<bool>(),
        ) {
            let granter = Standing { is_owner, ..member(held) };
            let granted = granted_on_join(grant, Some(&granter));
            prop_assert!(grant.contains(granted));
            prop_assert!(granter.effective().contains(granted));
            prop_assert!(is_owner || !granted.contains(Permissions::ADMINISTRATOR));
            // What passed the check when set is granted whole while the granter holds it.
            if check_grant(&granter, grant).is_ok() {
                prop_assert_eq!(granted, grant);
            }
        }
    }
}
