-- Due-date reminders (API.md "Tasks"): for a task with a due date and an assignee that is
-- neither completed nor cancelled, `due_soon` fires REMINDER_LEAD_MINUTES before the due
-- date and `overdue` at it, each once per (task, due date). Rows are armed by the trigger
-- below in the transaction of every task write (the batch inserts included), claimed by the
-- task service's replicas with FOR UPDATE SKIP LOCKED, and marked fired together with
-- their event (outbox) in one transaction: exactly once across replicas and restarts.
create table reminders (
  workspace_id uuid not null,
  task_id uuid not null,
  kind text not null check (kind in ('due_soon', 'overdue')),
  due_date timestamptz not null,
  fired_at timestamptz,
  primary key (workspace_id, task_id, kind, due_date),
  foreign key (workspace_id, task_id) references tasks (workspace_id, id) on delete cascade
);

-- What is still to fire, by due date (the scheduler's scan).
create index reminders_pending on reminders (due_date) where fired_at is null;

create function arm_reminders() returns trigger language plpgsql as $$
begin
  -- A changed due date re-arms: what belonged to the old one goes, fired or not.
  if tg_op = 'UPDATE' and new.due_date is distinct from old.due_date then
    delete from task.reminders
    where workspace_id = new.workspace_id and task_id = new.id and due_date is distinct from new.due_date;
  end if;
  if new.due_date is not null and new.assignee_id is not null and new.status not in ('completed', 'cancelled') then
    -- Already armed or fired for this due date: left as it is (once per task and due date).
    insert into task.reminders (workspace_id, task_id, kind, due_date)
    values (new.workspace_id, new.id, 'due_soon', new.due_date), (new.workspace_id, new.id, 'overdue', new.due_date)
    on conflict do nothing;
  elsif tg_op = 'UPDATE' then
    -- Completed, cancelled, unassigned or no due date any more: what has not fired is cancelled.
    delete from task.reminders where workspace_id = new.workspace_id and task_id = new.id and fired_at is null;
  end if;
  return null;
end $$;

create trigger tasks_arm_reminders after insert or update of due_date, assignee_id, status on tasks
  for each row execute function arm_reminders();
