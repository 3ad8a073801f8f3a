import { cachedFor } from "./cached.js";

/** A named probe of one dependency; resolves when healthy, rejects with the reason otherwise. */
export type HealthCheck = () => Promise<void>;

export type DependencyState = "ok" | "down";

export interface HealthReport {
  status: "ok" | "degraded" | "starting" | "stopping";
  dependencies: Record<string, DependencyState>;
}

/**
 * The readiness of a process: not ready until started, not ready once closing,
 * and otherwise ready when every dependency check passes.
 */
export class Health {
  private readonly checks = new Map<string, HealthCheck>();
  private phase: "starting" | "running" | "stopping" = "starting";

  constructor(private readonly timeoutMs = 2_000) {}

  add(name: string, check: HealthCheck): this {
    this.checks.set(name, check);
    return this;
  }

  markRunning(): void {
    if (this.phase === "starting") this.phase = "running";
  }

  markStopping(): void {
    this.phase = "stopping";
  }

  get stopping(): boolean {
    return this.phase === "stopping";
  }

  /** Probes every dependency now. */
  async report(): Promise<HealthReport> {
    return this.withStatus(await this.probeAll());
  }

  /**
   * The same from probes at most a second old, shared by every caller: what a
   * public endpoint may answer without becoming an amplifier (one request, six probes).
   */
  async recent(): Promise<HealthReport> {
    return this.withStatus(await this.recentProbes());
  }

  private readonly recentProbes = cachedFor(1_000, () => this.probeAll());

  private async probeAll(): Promise<Record<string, DependencyState>> {
    const entries = await Promise.all([...this.checks].map(async ([name, check]) => [name, await this.probe(check)] as const));
    return Object.fromEntries(entries);
  }

  private withStatus(dependencies: Record<string, DependencyState>): HealthReport {
    const allOk = Object.values(dependencies).every((state) => state === "ok");
    const status = this.phase === "running" ? (allOk ? "ok" : "degraded") : this.phase;
    return { status, dependencies };
  }

  private async probe(check: HealthCheck): Promise<DependencyState> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error("health check timed out")), this.timeoutMs);
    });
    try {
      await Promise.race([check(), timeout]);
      return "ok";
    } catch {
      return "down";
    } finally {
      clearTimeout(timer);
    }
  }
}
