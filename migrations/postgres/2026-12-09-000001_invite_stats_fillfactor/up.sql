-- A flush adds every previewed invite's count to its row; no index covers `previews`, so the
-- update can stay on the row's page (a HOT update, no index entry written) only if the page
-- has room for the new version. A flush touches about every row of a page at once, so a page
-- is left half empty for them. Pages written before this keep their fill until rewritten
-- (VACUUM FULL); new rows get the room.
ALTER TABLE invite_stats SET (fillfactor = 50);
