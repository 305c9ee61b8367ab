DROP INDEX members_temporary_idx;
DROP TABLE gateway_sessions;
