DROP TABLE invite_stats_fold;
DROP TABLE server_joins_daily;
DROP TABLE invite_joins_daily;
DROP TABLE invite_refusals;
DROP TABLE invite_stats;
