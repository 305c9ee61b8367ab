ALTER TABLE invite_stats RESET (fillfactor);
