import { readFileSync } from "node:fs";

/** Latency histogram in 10 µs buckets up to 5 s; mergeable across client processes. */
export class LatencyHistogram {
  static readonly BUCKET_MS = 0.01;
  static readonly SIZE = 500_000;
  readonly counts = new Uint32Array(LatencyHistogram.SIZE);
  count = 0;
  max = 0;

  record(ms: number): void {
    const bucket = Math.min(LatencyHistogram.SIZE - 1, Math.max(0, Math.floor(ms / LatencyHistogram.BUCKET_MS)));
    this.counts[bucket]!++;
    this.count++;
    if (ms > this.max) this.max = ms;
  }

  /** Non-empty buckets as [bucket, count] pairs (compact for IPC). */
  sparse(): [number, number][] {
    const out: [number, number][] = [];
    for (let i = 0; i < this.counts.length; i++) if (this.counts[i]) out.push([i, this.counts[i]!]);
    return out;
  }

  merge(sparse: [number, number][], max: number): void {
    for (const [bucket, n] of sparse) {
      this.counts[bucket]! += n;
      this.count += n;
    }
    this.max = Math.max(this.max, max);
  }

  percentile(p: number): number {
    if (this.count === 0) return 0;
    const target = Math.ceil((p / 100) * this.count);
    let seen = 0;
    for (let i = 0; i < this.counts.length; i++) {
      seen += this.counts[i]!;
      if (seen >= target) return (i + 1) * LatencyHistogram.BUCKET_MS;
    }
    return this.max;
  }
}

const TICKS_PER_SECOND = 100;

/** User + system CPU time a process has used, in milliseconds (from /proc). */
export function cpuMs(pid: number): number {
  const { user, system } = cpuTimes(pid);
  return user + system;
}

/** User and system CPU time a process has used, apart, in milliseconds (from /proc). */
export function cpuTimes(pid: number): { user: number; system: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  // utime and stime are fields 14 and 15 of /proc/<pid>/stat (11 and 12 after the command).
  return { user: (Number(fields[11]) * 1000) / TICKS_PER_SECOND, system: (Number(fields[12]) * 1000) / TICKS_PER_SECOND };
}

/** Resident set size of a process in bytes (VmRSS), or its peak (VmHWM). */
export function rssBytes(pid: number, field: "VmRSS" | "VmHWM" = "VmRSS"): number {
  const line = readFileSync(`/proc/${pid}/status`, "utf8")
    .split("\n")
    .find((l) => l.startsWith(`${field}:`));
  return Number(/(\d+)/.exec(line ?? "")?.[1] ?? 0) * 1024;
}

/** High-resolution wall clock in epoch milliseconds, comparable across processes on one machine. */
export function nowMs(): number {
  return performance.timeOrigin + performance.now();
}
