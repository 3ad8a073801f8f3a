create table workspaces (
  id uuid primary key,
  seq bigint generated always as identity unique,
  name text not null,
  description text not null default '',
  owner_id uuid not null,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);

create table members (
  workspace_id uuid not null references workspaces (id) on delete cascade,
  user_id uuid not null,
  role text not null check (role in ('owner', 'admin', 'member')),
  -- keyset pagination position (join order)
  seq bigint generated always as identity unique,
  joined_at timestamptz not null default now(),
  primary key (workspace_id, user_id)
);

create index members_by_user on members (user_id, seq);
