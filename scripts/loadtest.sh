#!/usr/bin/env bash
# REST load test with hey: create-task, get-task and list-tasks through the gateway,
# plus the raw single-row insert rate of the local Postgres (pgbench, 50 clients) so
# that create-task can be quoted as a ratio of it.
#
#   scripts/loadtest.sh [BASE_URL]      default http://127.0.0.1:8080 (npm run dev, or a
#                                       kubectl port-forward svc/gateway 8080:8080)
# Environment: DURATION (10s), CONCURRENCY (50), OUT (loadtest-results.jsonl),
#              PGBENCH_URL (postgres://postgres@127.0.0.1:5432/postgres; PGBENCH=0 skips it),
#              PGBENCH_CLIENTS (50).
set -euo pipefail

base=${1:-http://127.0.0.1:8080}
duration=${DURATION:-10s}
concurrency=${CONCURRENCY:-50}
out=${OUT:-loadtest-results.jsonl}
pgbench_url=${PGBENCH_URL:-postgres://postgres@127.0.0.1:5432/postgres}
pgbench_clients=${PGBENCH_CLIENTS:-50}

missing=()
for tool in hey curl node; do command -v "$tool" >/dev/null 2>&1 || missing+=("$tool"); done
if [ "${PGBENCH:-1}" != 0 ]; then
  for tool in pgbench psql; do command -v "$tool" >/dev/null 2>&1 || missing+=("$tool"); done
fi
if [ ${#missing[@]} -gt 0 ]; then
  echo "loadtest: missing ${missing[*]} (Debian: apt-get install -y hey curl postgresql-client; Node.js 20+)" >&2
  exit 1
fi

# field NAME: reads JSON on stdin and prints one top-level field.
field() { node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{const v=JSON.parse(s)[process.argv[1]];if(v===undefined){console.error("no "+process.argv[1]+" in "+s);process.exit(1)}console.log(v)})' "$1"; }
post() { curl -fsS -X POST "$base$1" -H 'content-type: application/json' ${token:+-H "authorization: Bearer $token"} -d "$2"; }

health=$(curl -sS -o /dev/null -w '%{http_code}' "$base/health") || { echo "loadtest: no gateway answers at $base/health" >&2; exit 1; }
[ "$health" = 200 ] || echo "loadtest: warning: $base/health answers $health (a dependency is down)" >&2
email="load.$(date +%s%N)@example.com"
password="Load-passw0rd"
post /auth/register "{\"name\":\"Load\",\"email\":\"$email\",\"password\":\"$password\"}" >/dev/null
token=$(post /auth/login "{\"email\":\"$email\",\"password\":\"$password\"}" | field access_token)
workspace=$(post /workspaces '{"name":"Load test"}' | field id)
task=$(post "/workspaces/$workspace/tasks" '{"title":"seed"}' | field id)
echo "loadtest against $base: hey -z $duration -c $concurrency, workspace $workspace"

run_id=$(date -u +%Y%m%dT%H%M%SZ)
printf '%-14s %10s %9s %9s %8s   %s\n' endpoint "req/s" "p50 ms" "p99 ms" errors statuses
# hey_run NAME [hey args...]: runs hey, prints a row, appends a JSON line.
hey_run() {
  local name=$1 report
  shift
  report=$(hey -z "$duration" -c "$concurrency" -H "Authorization: Bearer $token" "$@")
  local rps p50 p99 ok total errors
  rps=$(awk '/Requests\/sec:/ {print $2}' <<<"$report")
  p50=$(awk '/ 50% in / {printf "%.1f", $3 * 1000}' <<<"$report")
  p99=$(awk '/ 99% in / {printf "%.1f", $3 * 1000}' <<<"$report")
  # Status lines read "  [201]	9876 responses" (the latency histogram's "[count]" lines start with a number).
  ok=$(awk '/^ *\[2[0-9][0-9]\]/ {n += $2} END {print n + 0}' <<<"$report")
  total=$(awk '/^ *\[[0-9][0-9][0-9]\]/ {n += $2} END {print n + 0}' <<<"$report")
  errors=$(awk '/Error distribution:/ {e = 1; next} e && /\[[0-9]+\]/ {gsub(/[\[\]]/, "", $1); n += $1} END {print n + 0}' <<<"$report")
  errors=$((errors + total - ok))
  # Status codes as "201:9876 503:12" (what failed, if anything: a 503 is an outage, a 500 a bug).
  statuses=$(awk '/^ *\[[0-9][0-9][0-9]\]/ {gsub(/[\[\]]/, "", $1); printf "%s%s:%s", sep, $1, $2; sep=" "}' <<<"$report")
  # hey prints no rate or latencies when nothing was answered: null in the JSON line, not a gap.
  rps=${rps:-0}
  p50=${p50:-null}
  p99=${p99:-null}
  printf '%-14s %10.0f %9s %9s %8s   %s\n' "$name" "$rps" "$p50" "$p99" "$errors" "$statuses"
  if [[ " $statuses" == *" 429:"* ]]; then
    echo "loadtest: 429s: the one load-test user hit RATE_LIMIT_API_PER_USER; lift it for a load test (RATE_LIMIT_API_PER_USER=100000000 npm run dev)" >&2
  fi
  printf '{"run":"%s","tool":"hey","endpoint":"%s","base":"%s","duration":"%s","concurrency":%s,"requests_per_s":%s,"p50_ms":%s,"p99_ms":%s,"errors":%s,"statuses":"%s"}\n' \
    "$run_id" "$name" "$base" "$duration" "$concurrency" "$rps" "$p50" "$p99" "$errors" "$statuses" >>"$out"
  last_rps=$rps
}

hey_run create-task -m POST -T application/json -d '{"title":"load test task"}' "$base/workspaces/$workspace/tasks"
create_task_rps=$last_rps
hey_run get-task "$base/tasks/$task"
hey_run list-tasks "$base/workspaces/$workspace/tasks?limit=50"

if [ "${PGBENCH:-1}" != 0 ]; then
  # The raw insert rate of this Postgres: one row a transaction into a table shaped like
  # task.tasks (same columns, keys and indexes), 50 clients, as long as each hey run.
  db="taskboard_pgbench_$$"
  psql -q "$pgbench_url" -c "create database $db" >/dev/null
  bench_url="${pgbench_url%/*}/$db"
  psql -q "$bench_url" >/dev/null <<'SQL'
create table tasks (
  workspace_id uuid not null, id uuid not null default gen_random_uuid(),
  seq bigint generated always as identity, title text not null, description text not null default '',
  status text not null default 'pending', priority text not null default 'medium', assignee_id uuid,
  created_by uuid not null, due_date timestamptz, created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  search tsvector generated always as (to_tsvector('simple', title || ' ' || description)) stored,
  primary key (workspace_id, id));
create index on tasks (id);
create index on tasks (workspace_id, seq);
create index on tasks (workspace_id, assignee_id, seq);
create index on tasks (workspace_id, due_date);
create index on tasks using gin (search);
SQL
  script=$(mktemp)
  echo "insert into tasks (workspace_id, title, created_by) values ('$workspace', 'pgbench task', '$workspace');" >"$script"
  seconds=${duration%s}
  tps=$(pgbench -n -c "$pgbench_clients" -j 2 -T "$seconds" -f "$script" "$bench_url" 2>/dev/null | awk '/^tps = / {print $3; exit}')
  rm -f "$script"
  psql -q "$pgbench_url" -c "drop database $db" >/dev/null
  ratio=$(awk -v a="$create_task_rps" -v b="$tps" 'BEGIN {printf "%.2f", a / b}')
  printf '%-14s %10.0f   (create-task = %s of it)\n' "pgbench insert" "$tps" "$ratio"
  printf '{"run":"%s","tool":"pgbench","clients":%s,"inserts_per_s":%s,"create_task_ratio":%s}\n' "$run_id" "$pgbench_clients" "$tps" "$ratio" >>"$out"
fi
echo "(JSON lines appended to $out)"
