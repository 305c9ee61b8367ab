DELETE FROM events WHERE audience = 'join_request_deciders';
ALTER TABLE events DROP CONSTRAINT events_audience_check;
ALTER TABLE events ADD CONSTRAINT events_audience_check
    CHECK (audience IN ('members', 'invite_managers'));
DROP TABLE join_requests;
ALTER TABLE invites DROP COLUMN requires_approval;
