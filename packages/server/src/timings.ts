/**
 * Where a request's time goes. Each phase is measured with the monotonic clock:
 *   parse    from the first byte seen (onRequest) to the handler: auth, rate limit, body parse and validation
 *   decode   base64 and image decoding, to 28×28 bytes
 *   predict  the model's forward pass and the answer's numbers
 *   store    writing the predictions (group commit)
 *   reply    from the handler's return to the last byte handed to the socket: serialization and write
 * The reply carries a Server-Timing header with the first four; GET /api/v1/metrics shows the
 * means per route since the start, reply included.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';

export type Phase = 'parse' | 'decode' | 'predict' | 'store' | 'reply';
const PHASES: readonly Phase[] = ['parse', 'decode', 'predict', 'store', 'reply'];

declare module 'fastify' {
  interface FastifyRequest {
    startedAt: bigint;
    handledAt: bigint;
  }
}

interface RouteTimes {
  count: number;
  nanoseconds: Record<Phase, bigint>;
}

export class Timings {
  private readonly routes = new Map<string, RouteTimes>();

  install(app: FastifyInstance): void {
    app.decorateRequest('startedAt', 0n);
    app.decorateRequest('handledAt', 0n);
    app.addHook('onRequest', async (request) => {
      request.startedAt = process.hrtime.bigint();
    });
    app.addHook('onResponse', async (request) => {
      if (request.handledAt === 0n) return;
      this.entry(request).nanoseconds.reply += process.hrtime.bigint() - request.handledAt;
    });
  }

  /** Records a handled request's phases; `handlerStart` ends the parse phase. */
  add(request: FastifyRequest, phases: Partial<Record<Phase, bigint>>, handlerStart: bigint): void {
    const entry = this.entry(request);
    entry.count += 1;
    entry.nanoseconds.parse += handlerStart - request.startedAt;
    for (const [phase, ns] of Object.entries(phases) as Array<[Phase, bigint]>) entry.nanoseconds[phase] += ns;
    request.handledAt = process.hrtime.bigint();
  }

  header(request: FastifyRequest, phases: Partial<Record<Phase, bigint>>, handlerStart: bigint): string {
    const all: Partial<Record<Phase, bigint>> = { parse: handlerStart - request.startedAt, ...phases };
    return Object.entries(all).map(([phase, ns]) => `${phase};dur=${(Number(ns) / 1e6).toFixed(3)}`).join(', ');
  }

  /** Mean milliseconds per phase, per route. */
  summary(): Record<string, { requests: number; mean_ms: Record<Phase, number> }> {
    const out: Record<string, { requests: number; mean_ms: Record<Phase, number> }> = {};
    for (const [route, entry] of this.routes) {
      const mean = Object.fromEntries(PHASES.map((p) => [p, entry.count ? Number(entry.nanoseconds[p]) / entry.count / 1e6 : 0])) as Record<Phase, number>;
      out[route] = { requests: entry.count, mean_ms: mean };
    }
    return out;
  }

  private entry(request: FastifyRequest): RouteTimes {
    const key = `${request.method} ${request.routeOptions.url ?? '?'}`;
    let entry = this.routes.get(key);
    if (!entry) this.routes.set(key, (entry = { count: 0, nanoseconds: { parse: 0n, decode: 0n, predict: 0n, store: 0n, reply: 0n } }));
    return entry;
  }
}
