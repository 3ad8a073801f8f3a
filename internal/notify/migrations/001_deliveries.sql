-- The sent-mail log, and the idempotency record of every mail: one row per
-- (event, recipient), claimed before the mail is sent and marked sent (or
-- failed) before the event is acknowledged on JetStream. workspace_id leads
-- the key, as in every workspace-scoped table.

create table deliveries (
  workspace_id uuid not null,
  event_id uuid not null,
  recipient_id uuid not null,
  event_type text not null,
  -- claimed: being sent, or to be sent again (claimed_by null: free to take)
  state text not null default 'claimed' check (state in ('claimed', 'sent', 'failed')),
  -- the replica holding the claim, and until when; an expired claim may be taken over
  claimed_by text,
  claimed_until timestamptz,
  -- how many times it was claimed (a first delivery counts one)
  claims integer not null default 1,
  -- SES MessageId once sent
  message_id text,
  -- the last failure: the final one when state = 'failed'
  error text,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  primary key (workspace_id, event_id, recipient_id),
  check ((state = 'sent') = (message_id is not null))
);

-- Mails still in flight or waiting, for operators ("what is stuck?").
create index deliveries_unfinished on deliveries (claimed_until) where state = 'claimed';
