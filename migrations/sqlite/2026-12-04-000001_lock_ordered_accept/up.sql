-- The column PostgreSQL's accept checks to close the ban/accept race (see its migration).
-- SQLite runs one writer at a time, so its bans need no version; the column is bumped all the
-- same, for one schema on both backends. Its `members_not_banned` trigger stays: a plain
-- lookup, no lock.
ALTER TABLE servers ADD COLUMN bans_version INTEGER NOT NULL DEFAULT 0;
