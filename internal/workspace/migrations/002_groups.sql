-- Groups (API.md "Groups"): channels inside a workspace. Group messages reach the group's
-- members only; membership changes are events of the whole workspace.
create table groups (
  workspace_id uuid not null references workspaces (id) on delete cascade,
  id uuid not null,
  name text not null,
  created_at timestamptz not null default now(),
  primary key (workspace_id, id),
  unique (workspace_id, name)
);

create table group_members (
  workspace_id uuid not null,
  group_id uuid not null,
  user_id uuid not null,
  added_at timestamptz not null default now(),
  primary key (workspace_id, group_id, user_id),
  foreign key (workspace_id, group_id) references groups (workspace_id, id) on delete cascade
);

create index group_members_by_user on group_members (workspace_id, user_id);
