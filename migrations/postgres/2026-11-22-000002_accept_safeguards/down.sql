DROP FUNCTION record_member_join(uuid, uuid, uuid, jsonb, timestamptz);
DROP TRIGGER members_not_banned ON members;
DROP FUNCTION members_refuse_banned();
