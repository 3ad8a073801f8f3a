-- Export jobs and their files. Every table leads with workspace_id, so the data
-- can later be distributed by workspace; jobs are found alone by id through a
-- plain index.

create table jobs (
  workspace_id uuid not null,
  id uuid not null,
  -- keyset pagination position (creation order)
  seq bigint generated always as identity,
  type text not null check (type in ('tasks', 'comments')),
  format text not null check (format in ('csv', 'json')),
  status text not null default 'pending' check (status in ('pending', 'running', 'completed', 'failed')),
  progress smallint not null default 0 check (progress between 0 and 100),
  row_count bigint not null default 0,
  -- shown only once the job has failed
  error text,
  created_by uuid not null,
  created_at timestamptz not null default now(),
  started_at timestamptz,
  completed_at timestamptz,
  expires_at timestamptz not null,
  -- The claim: the worker running the current attempt, and when it last said so.
  -- A claim whose heartbeat is older than the stale limit may be taken over.
  -- `attempt` counts claims (it fences every write of an attempt); `released`
  -- counts attempts handed back by a graceful shutdown, which use up no retry.
  attempt int not null default 0,
  released int not null default 0,
  worker_id text,
  heartbeat_at timestamptz,
  -- why the last attempt failed (kept while the job is retried)
  last_error text,
  -- the file of a completed job: chunks 0..chunk_count-1 of attempt `attempt`
  chunk_count int,
  file_bytes bigint,
  primary key (workspace_id, id)
);

create index jobs_by_id on jobs (id);
create index jobs_by_seq on jobs (workspace_id, seq);
create index jobs_by_expiry on jobs (expires_at);

-- File contents in order, a few hundred KiB per row, written as they are produced.
-- Chunks belong to one attempt, so a crashed attempt's partial file is never served.
create table file_chunks (
  workspace_id uuid not null,
  job_id uuid not null,
  attempt int not null,
  n int not null,
  data bytea not null,
  primary key (workspace_id, job_id, attempt, n),
  foreign key (workspace_id, job_id) references jobs (workspace_id, id) on delete cascade
);

-- Exports are written once and read rarely: storing them uncompressed spares the
-- database the CPU of compressing every chunk.
alter table file_chunks alter column data set storage external;

-- One row per attempt: which worker ran it, when, and how it ended
-- (completed, failed, retry, released; null while running or after a crash).
create table runs (
  workspace_id uuid not null,
  job_id uuid not null,
  attempt int not null,
  worker_id text not null,
  started_at timestamptz not null default now(),
  finished_at timestamptz,
  outcome text,
  rows_written bigint,
  primary key (workspace_id, job_id, attempt),
  foreign key (workspace_id, job_id) references jobs (workspace_id, id) on delete cascade
);
