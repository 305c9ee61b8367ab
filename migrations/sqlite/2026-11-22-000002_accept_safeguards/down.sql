DROP TRIGGER members_not_banned;
