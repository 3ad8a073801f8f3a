-- Watchers (API.md "Tasks"): who hears about a task. Its creator and every assignee watch it
-- from the start; members add or remove themselves (owners and admins anyone).
alter table tasks add column watcher_ids uuid[] not null default '{}';
update tasks set watcher_ids = case
  when assignee_id is null or assignee_id = created_by then array[created_by]
  else array[created_by, assignee_id] end;
