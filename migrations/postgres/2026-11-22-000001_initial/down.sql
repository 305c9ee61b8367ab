DROP TABLE audit_entries;
DROP TABLE bans;
DROP TABLE members;
DROP TABLE invites;
DROP TABLE channels;
DROP TABLE servers;
DROP TABLE users;
