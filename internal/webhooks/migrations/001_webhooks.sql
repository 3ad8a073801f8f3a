-- Webhooks (API.md "Webhooks"): a workspace's registered URLs, and one delivery record per
-- (webhook, event), made before anything is sent and kept as the delivery log.
create table webhooks (
  workspace_id uuid not null,
  id uuid not null,
  url text not null,
  events text[] not null,
  description text not null default '',
  active boolean not null default true,
  -- The HMAC key of the signatures; shown to the client once, at creation.
  secret text not null,
  created_at timestamptz not null default now(),
  primary key (workspace_id, id)
);

create unique index webhooks_by_id on webhooks (id);

create table deliveries (
  workspace_id uuid not null,
  id uuid not null,
  webhook_id uuid not null,
  event_id uuid not null,
  event_type text not null,
  -- The envelope with its stream seq, exactly as it is POSTed (and signed).
  payload text not null,
  status text not null default 'pending' check (status in ('pending', 'delivered', 'failed')),
  attempts integer not null default 0,
  response_status integer,
  last_error text,
  next_attempt_at timestamptz default now(),
  -- Failed attempts are retried until then (WEBHOOK_RETRY_HOURS); a manual redelivery moves it.
  retry_until timestamptz not null,
  -- A replica sending it holds it until then; an expired claim is taken over.
  claimed_until timestamptz,
  created_at timestamptz not null default now(),
  delivered_at timestamptz,
  -- Keyset order of the delivery log.
  seq bigint generated always as identity,
  primary key (workspace_id, id),
  unique (webhook_id, event_id),
  foreign key (workspace_id, webhook_id) references webhooks (workspace_id, id) on delete cascade
);

create index deliveries_due on deliveries (next_attempt_at) where status = 'pending';
create index deliveries_log on deliveries (webhook_id, seq desc);
