-- The batching writer updates each active visitor's and session's row on nearly every batch.
-- Postgres can make such an update in place (a HOT update: no new index entries) when no
-- indexed column changes and the page has room, so:
-- * the visitor list by last activity is served by the minute of the last activity
--   (`last_active`, derived from `last_seen`) instead of `last_seen` itself: the index changes
--   at most once a minute per visitor instead of on every batch;
-- * visitor and session pages keep 30 % free for the new row versions.
alter table visitor add column last_active bigint generated always as (last_seen / 60000) stored;
create index visitor_site_last_active on visitor (site_id, last_active);
drop index visitor_site_last_seen;
alter table visitor set (fillfactor = 70);
alter table session set (fillfactor = 70);
