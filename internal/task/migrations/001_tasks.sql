-- Every table leads with workspace_id, so the data can later be distributed by
-- workspace; ids are UUIDs, found alone through a plain (non-unique) index.

create table tasks (
  workspace_id uuid not null,
  id uuid not null,
  -- keyset pagination position (creation order)
  seq bigint generated always as identity,
  title text not null,
  description text not null default '',
  status text not null default 'pending' check (status in ('pending', 'in_progress', 'completed', 'cancelled')),
  priority text not null default 'medium' check (priority in ('low', 'medium', 'high', 'urgent')),
  assignee_id uuid,
  created_by uuid not null,
  due_date timestamptz,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  search tsvector generated always as (to_tsvector('simple'::regconfig, title || ' ' || description)) stored,
  primary key (workspace_id, id)
);

create index tasks_by_id on tasks (id);
create index tasks_by_seq on tasks (workspace_id, seq);
create index tasks_by_assignee on tasks (workspace_id, assignee_id, seq);
create index tasks_by_due_date on tasks (workspace_id, due_date);
create index tasks_search on tasks using gin (search);

create table comments (
  workspace_id uuid not null,
  id uuid not null,
  seq bigint generated always as identity,
  task_id uuid not null,
  author_id uuid not null,
  content text not null,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  primary key (workspace_id, id),
  foreign key (workspace_id, task_id) references tasks (workspace_id, id) on delete cascade
);

create index comments_by_id on comments (id);
create index comments_by_task on comments (workspace_id, task_id, seq);
create index comments_by_seq on comments (workspace_id, seq);
