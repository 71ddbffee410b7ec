/** Asking the plotnode (`GET /info` on PLOT_ADDR:PLOT_LISTEN) whether it is up. */
import type { Config } from '@rtl/core';
import type { PlotnodeInfo } from '@rtl/plotnode';

/** Where the plotnode of this config serves HTTP: `http://127.0.0.1:5006`. */
export function plotnodeUrl(config: Pick<Config, 'PLOT_ADDR' | 'PLOT_LISTEN'>): string {
  const host = config.PLOT_ADDR === '0.0.0.0' ? '127.0.0.1' : config.PLOT_ADDR;
  const h = host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
  return `http://${h}:${String(config.PLOT_LISTEN)}`;
}

/** The plotnode's `/info`, or undefined when nothing (or something else) answers in time. */
export async function plotnodeInfo(
  config: Pick<Config, 'PLOT_ADDR' | 'PLOT_LISTEN'>,
  timeoutMs: number,
): Promise<PlotnodeInfo | undefined> {
  try {
    const res = await fetch(`${plotnodeUrl(config)}/info`, {
      signal: AbortSignal.timeout(timeoutMs),
    });
    if (!res.ok) return undefined;
    const body = (await res.json()) as Partial<PlotnodeInfo> | null;
    return body?.kind === 'plotnode' && typeof body.pid === 'number'
      ? (body as PlotnodeInfo)
      : undefined;
  } catch {
    return undefined;
  }
}
