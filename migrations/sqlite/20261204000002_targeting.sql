-- Targeting: segments and campaigns (definitions as JSON), and each time a campaign fired for a
-- visitor (sent, control or test) with its conversion.
create table segment (
    segment_id text primary key,
    site_id text not null references site (site_id) on delete cascade,
    definition text not null,
    created_at bigint not null,
    updated_at bigint not null
);
create index segment_site on segment (site_id, created_at);

create table campaign (
    campaign_id text primary key,
    site_id text not null references site (site_id) on delete cascade,
    definition text not null,
    created_at bigint not null,
    updated_at bigint not null
);
create index campaign_site on campaign (site_id, created_at);

create table campaign_delivery (
    delivery_id text primary key,
    campaign_id text not null,
    site_id text not null,
    visitor_id text not null,
    session_id text not null,
    variant text not null check (variant in ('sent', 'control', 'test')),
    message_id text,
    at bigint not null,
    converted_at bigint
);
create index campaign_delivery_campaign on campaign_delivery (campaign_id, variant);
create index campaign_delivery_visitor on campaign_delivery (site_id, visitor_id);
create index message_campaign on message (campaign_id);
