/** The machine and revision a run measured, recorded beside its results. */
import { execFileSync } from 'node:child_process';
import os from 'node:os';

export interface BenchEnv {
  readonly date: string;
  readonly node: string;
  readonly v8: string;
  readonly platform: string;
  readonly arch: string;
  readonly cpu: string;
  /** Logical CPUs the OS reports. */
  readonly cores: number;
  /** What Node may use (cgroup limits included). */
  readonly parallelism: number;
  readonly totalMemoryMiB: number;
  /** 1, 5 and 15 minute load averages when the run started (a busy machine skews figures). */
  readonly loadavg: readonly number[];
  readonly git: { readonly sha: string; readonly branch: string; readonly dirty: boolean };
}

function git(args: readonly string[]): string {
  try {
    return execFileSync('git', args, {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    }).trim();
  } catch {
    return '';
  }
}

export function benchEnv(date = new Date()): BenchEnv {
  const cpus = os.cpus();
  return {
    date: date.toISOString(),
    node: process.version,
    v8: process.versions.v8,
    platform: os.platform(),
    arch: os.arch(),
    cpu: cpus[0]?.model.trim() ?? 'unknown',
    cores: cpus.length,
    parallelism: os.availableParallelism(),
    totalMemoryMiB: Math.round(os.totalmem() / 2 ** 20),
    loadavg: os.loadavg().map((l) => Math.round(l * 100) / 100),
    git: {
      sha: git(['rev-parse', '--short', 'HEAD']) || 'unknown',
      branch: git(['rev-parse', '--abbrev-ref', 'HEAD']),
      dirty: git(['status', '--porcelain', '--untracked-files=no']) !== '',
    },
  };
}
