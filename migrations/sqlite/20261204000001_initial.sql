-- Times are milliseconds since the Unix epoch (UTC); JSON documents are stored as text.
create table setting (
    name text primary key,
    value text not null
);

create table account (
    account_id text primary key,
    email text not null,
    password_hash text not null,
    created_at bigint not null
);
create unique index account_email on account (email);

create table site (
    site_id text primary key,
    name text not null,
    site_key text not null,
    domains text not null default '[]',
    created_at bigint not null
);
create unique index site_key_unique on site (site_key);

create table membership (
    site_id text not null references site (site_id) on delete cascade,
    account_id text not null references account (account_id) on delete cascade,
    role text not null check (role in ('admin', 'viewer')),
    created_at bigint not null,
    primary key (site_id, account_id)
);
create index membership_account on membership (account_id);

create table api_key (
    api_key_id text primary key,
    site_id text not null references site (site_id) on delete cascade,
    name text not null,
    key_hash text not null,
    created_at bigint not null,
    last_used_at bigint
);
create unique index api_key_hash on api_key (key_hash);
create index api_key_site on api_key (site_id, created_at);

create table visitor (
    site_id text not null,
    visitor_id text not null,
    user_id text,
    traits text not null default '{}',
    first_seen bigint not null,
    last_seen bigint not null,
    device text,
    browser text,
    os text,
    primary key (site_id, visitor_id)
);
create index visitor_site_last_seen on visitor (site_id, last_seen, visitor_id);
create index visitor_site_user on visitor (site_id, user_id);

create table session (
    site_id text not null,
    session_id text not null,
    visitor_id text not null,
    started_at bigint not null,
    last_seen bigint not null,
    pageviews bigint not null default 0,
    referrer text,
    primary key (site_id, session_id)
);
create index session_site_visitor on session (site_id, visitor_id, started_at);
create index session_site_started on session (site_id, started_at);

create table pageview (
    pageview_id integer primary key autoincrement,
    site_id text not null,
    visitor_id text not null,
    session_id text not null,
    tab_id text not null,
    url text not null,
    title text,
    referrer text,
    at bigint not null
);
create index pageview_site_at on pageview (site_id, at, pageview_id);
create index pageview_site_visitor_at on pageview (site_id, visitor_id, at, pageview_id);
create index pageview_site_session_at on pageview (site_id, session_id, at, pageview_id);
create index pageview_site_url_at on pageview (site_id, url, at);

create table event (
    event_id integer primary key autoincrement,
    site_id text not null,
    visitor_id text not null,
    session_id text not null,
    tab_id text not null,
    name text not null,
    props text not null default '{}',
    url text,
    at bigint not null
);
create index event_site_at on event (site_id, at, event_id);
create index event_site_visitor_at on event (site_id, visitor_id, at, event_id);
create index event_site_name_at on event (site_id, name, at, event_id);

create table message (
    message_id text primary key,
    site_id text not null,
    target text not null,
    payload text not null,
    created_at bigint not null,
    expires_at bigint,
    sent_by text,
    campaign_id text
);
create index message_site_created on message (site_id, created_at, message_id);

-- Messages kept for visitors who were offline when they were sent (ttl).
create table pending_message (
    site_id text not null,
    visitor_id text not null,
    message_id text not null,
    expires_at bigint not null,
    primary key (site_id, visitor_id, message_id)
);
create index pending_message_expires on pending_message (expires_at);

create table message_status (
    message_id text not null,
    site_id text not null,
    visitor_id text not null,
    tab_id text not null,
    status text not null,
    at bigint not null,
    primary key (message_id, tab_id, status)
);
create index message_status_site_visitor on message_status (site_id, visitor_id, at);
