-- Task labels (API.md "Tasks"): up to 20 short strings; `?label=` lists the tasks carrying every given one.
alter table tasks add column labels text[] not null default '{}';
create index tasks_by_label on tasks using gin (labels);
