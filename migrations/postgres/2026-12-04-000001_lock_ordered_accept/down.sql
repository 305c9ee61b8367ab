CREATE FUNCTION members_refuse_banned() RETURNS trigger
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    PERFORM 1 FROM servers WHERE id = NEW.server_id FOR NO KEY UPDATE;
    IF EXISTS (SELECT 1 FROM bans WHERE server_id = NEW.server_id AND user_id = NEW.user_id) THEN
        RAISE EXCEPTION 'user % is banned from server %', NEW.user_id, NEW.server_id
            USING ERRCODE = 'check_violation', CONSTRAINT = 'members_not_banned';
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER members_not_banned BEFORE INSERT ON members
    FOR EACH ROW EXECUTE FUNCTION members_refuse_banned();

ALTER TABLE servers DROP COLUMN bans_version;
