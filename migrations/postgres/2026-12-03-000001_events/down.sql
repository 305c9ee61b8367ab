DROP TABLE webhook_deliveries;
DROP TABLE webhooks;
DROP TABLE events;
CREATE FUNCTION record_member_join(entry_id uuid, server uuid, actor uuid, details jsonb,
                                   at timestamptz)
RETURNS text
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    INSERT INTO audit_entries (id, server_id, actor_id, action, target_type, target_id, details,
                               created_at)
    VALUES (entry_id, server, actor, 'MemberJoin', 'user', actor, details, at);
    RETURN NULL;
EXCEPTION WHEN OTHERS THEN
    RETURN SQLERRM;
END
$$;
