ALTER TABLE members DROP COLUMN permissions_set_at;
