-- The visitor list by last activity is served by the minute of the last activity
-- (`last_active`, derived from `last_seen`), as on Postgres, where it keeps the batching
-- writer's visitor updates in place; the history query is the same on both.
alter table visitor add column last_active integer generated always as (last_seen / 60000) virtual;
create index visitor_site_last_active on visitor (site_id, last_active);
drop index visitor_site_last_seen;
