/**
 * The server: one Fastify app, one plugin or module per concern (errors, auth, rate limits,
 * multipart, OpenAPI, datasets, jobs, models and predictions, accounts). Every route declares its
 * params, body and replies as JSON Schema: they validate requests, serialize replies, and make the
 * OpenAPI document at /api/openapi.json (browsable at /api/docs, served from bundled assets).
 *
 *   const server = await createServer({ store, db: 'descent.db' });
 *   await server.listen({ port: 8080, host: '127.0.0.1' });
 *   ...
 *   await server.close();   // stops accepting, checkpoints running jobs, closes the store's users
 */
import { randomUUID } from 'node:crypto';
import { availableParallelism } from 'node:os';
import Fastify, { LogController, type FastifyInstance, type FastifyReply } from 'fastify';
import formbody from '@fastify/formbody';
import multipart from '@fastify/multipart';
import rateLimit from '@fastify/rate-limit';
import swagger from '@fastify/swagger';
import fastifyStatic from '@fastify/static';
import swaggerUi from '@fastify/swagger-ui';
import { DESCENT_VERSION } from '@descent/engine';
import { LocalRunner } from '@descent/jobs';
import type { Store } from '@descent/store';
import { Accounts, SCOPES } from './accounts.js';
import { enforce, identify } from './auth.js';
import { errorBody, installErrorHandler } from './errors.js';
import { DEFAULT_IMAGE_LIMITS, type ImageLimits } from './images.js';
import { PredictionBatcher, Predictor } from './predictor.js';
import { accountRoutes, type TokenLifetimes } from './routes/accounts.js';
import { datasetRoutes, type UploadLimits } from './routes/datasets.js';
import { jobRoutes } from './routes/jobs.js';
import { modelRoutes } from './routes/models.js';
import { predictionRoutes } from './routes/predictions.js';
import { Timings } from './timings.js';
import { TrainingService } from './training.js';

export interface ServerOptions {
  store: Store;
  /** The --db value worker threads open to read datasets. */
  db: string;
  /** Training jobs at once, each on its own worker thread (default: one per core). */
  workers?: number;
  /** Requests per minute per token (per address without one); 0 turns the limit off. Default 60,000. */
  rateLimit?: number;
  /** Password sign-ins (/oauth/token, /api/v1/session) per minute per address. Default 20. */
  loginsPerMinute?: number;
  /** Largest JSON body (predict requests with base64 images), bytes. Default 4 MiB. */
  bodyLimit?: number;
  images?: Partial<ImageLimits>;
  uploads?: Partial<UploadLimits>;
  tokens?: Partial<TokenLifetimes>;
  /**
   * A built web app to serve at / (its index.html for unknown non-API paths), with the headers that
   * make the page cross-origin isolated (COOP same-origin, COEP require-corp), so the engine can use
   * threads in the browser.
   */
  appDir?: string | null;
  /** Where JSON log lines go (default stdout); false: no log. */
  log?: { write(line: string): unknown } | false;
  logLevel?: string;
}

export interface DescentServer {
  app: FastifyInstance;
  accounts: Accounts;
  training: TrainingService;
  listen(options: { port: number; host: string }): Promise<string>;
  /** Stops accepting requests, lets the ones in flight finish, checkpoints running jobs. */
  close(): Promise<void>;
}

export const DEFAULT_UPLOAD_LIMITS: UploadLimits = { maxUploadBytes: 256 * 1024 * 1024, maxZipEntries: 100_000, maxZipBytes: 1024 * 1024 * 1024 };
export const DEFAULT_TOKEN_LIFETIMES: TokenLifetimes = { access: 3600, refresh: 30 * 86400 };

export async function createServer(options: ServerOptions): Promise<DescentServer> {
  const { store } = options;
  const imageLimits: ImageLimits = { ...DEFAULT_IMAGE_LIMITS, ...options.images };
  const uploads: UploadLimits = { ...DEFAULT_UPLOAD_LIMITS, ...options.uploads };
  const lifetimes: TokenLifetimes = { ...DEFAULT_TOKEN_LIFETIMES, ...options.tokens };
  const bodyLimit = options.bodyLimit ?? 4 * 1024 * 1024;
  const app = Fastify({
    logger: options.log === false ? false : {
      level: options.logLevel ?? 'info',
      stream: options.log,
      // Never log credentials: request logs carry method, url and address only; headers are not logged.
      redact: ['req.headers.authorization', 'req.headers.cookie'],
    },
    logController: new LogController({ disableRequestLogging: true }),
    requestIdHeader: false,
    genReqId: () => randomUUID(),
    bodyLimit,
    forceCloseConnections: 'idle',
    ajv: { customOptions: { removeAdditional: false, coerceTypes: 'array', useDefaults: true, allErrors: false, allowUnionTypes: true } },
  });
  // Cross-origin isolation for the web app's pages (so the engine can use threads there).
  const isolate = (reply: FastifyReply) => reply.header('cross-origin-opener-policy', 'same-origin').header('cross-origin-embedder-policy', 'require-corp');
  installErrorHandler(app, options.appDir ? (_request, reply) => isolate(reply).sendFile('index.html') : undefined);

  const accounts = new Accounts(store);
  const timings = new Timings();
  const predictor = new Predictor(store);
  // Every prediction is a commit: keep the write-ahead log's checkpoints off the request thread.
  store.driver.checkpointInBackground?.();
  const batcher = new PredictionBatcher(predictor, store);
  const runner = new LocalRunner({ workers: options.workers ?? availableParallelism() });
  const training = new TrainingService(store, runner, options.db, app.log);

  // One log line per request, with its id; the id is also in the reply's x-request-id header.
  // CORP: what the API serves may be used by a cross-origin-isolated page of the same origin.
  app.addHook('onRequest', async (request, reply) => {
    reply.header('x-request-id', request.id).header('cross-origin-resource-policy', 'same-origin');
  });
  app.addHook('onResponse', async (request, reply) => {
    request.log.info({
      method: request.method, url: request.url.length > 300 ? `${request.url.slice(0, 300)}…` : request.url, status: reply.statusCode,
      ms: Math.round(reply.elapsedTime * 100) / 100, token: request.auth?.id, user: request.auth?.userName ?? undefined,
    }, 'request');
  });
  timings.install(app);

  identify(app, accounts);
  const limit = options.rateLimit ?? 60_000;
  if (limit > 0) {
    await app.register(rateLimit, {
      global: true,
      max: limit,
      timeWindow: 60_000,
      hook: 'onRequest',
      keyGenerator: (request) => (request.auth ? `token:${request.auth.id}` : `ip:${request.ip}`),
      errorResponseBuilder: (_request, context) => ({ ...errorBody(429, `too many requests: at most ${context.max} per ${context.after}; retry later`), statusCode: 429 }),
    });
  }
  enforce(app);

  await app.register(formbody, { bodyLimit: 16 * 1024 });
  await app.register(multipart, { limits: { fileSize: imageLimits.maxBytes, files: 1, fields: 8, parts: 10, fieldSize: 4096, headerPairs: 100 } });

  await app.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: { title: 'descent', version: DESCENT_VERSION, description: 'Datasets of labelled images, background training, models and predictions. Every route but /health needs a bearer token (POST /oauth/token).' },
      components: {
        securitySchemes: {
          bearer: { type: 'http', scheme: 'bearer', description: 'an access token from /oauth/token, or a personal token from `descent token create`' },
          oauth2: {
            type: 'oauth2',
            flows: { password: { tokenUrl: '/oauth/token', refreshUrl: '/oauth/token', scopes: Object.fromEntries(SCOPES.map((s) => [s, `${s} (predict < train < admin)`])) } },
          },
        },
      },
      security: [{ bearer: [] }, { oauth2: [] }],
    },
    transform: ({ schema, url, route }) => {
      const config = (route.config ?? {}) as { public?: boolean; scope?: string };
      if (!schema || config.public) return { schema, url };
      const scope = config.scope ? ` Needs the '${config.scope}' scope.` : '';
      return { schema: { ...schema, description: `${(schema as { description?: string }).description ?? ''}${scope}`.trim(), security: config.scope ? [{ bearer: [] }, { oauth2: [config.scope] }] : undefined } as typeof schema, url };
    },
  });
  await app.register(swaggerUi, { routePrefix: '/api/docs', uiConfig: { validatorUrl: null, persistAuthorization: false }, staticCSP: true });

  app.get('/api/openapi.json', { config: { public: true }, schema: { hide: true } }, async () => app.swagger());

  app.get('/health', {
    config: { public: true, rateLimit: false },
    schema: {
      tags: ['health'], summary: 'Liveness: answers without a token, never rate-limited', security: [],
      response: { 200: { type: 'object', properties: { status: { type: 'string' }, version: { type: 'string' }, jobs: { type: 'object', properties: { queued: { type: 'integer' }, running: { type: 'integer' } } } } } },
    },
  }, async () => ({ status: 'ok', version: DESCENT_VERSION, jobs: training.counts }));

  if (options.appDir) {
    await app.register(fastifyStatic, {
      root: options.appDir,
      prefix: '/',
      wildcard: false,
      setHeaders: (reply) => void isolate(reply),
    });
  }
  const context = { store, accounts };
  accountRoutes(app, { ...context, lifetimes, timings, batches: batcher.stats, loginRateLimit: { max: options.loginsPerMinute ?? 20, timeWindow: 60_000 } });
  datasetRoutes(app, { ...context, imageLimits, uploads, training });
  jobRoutes(app, { ...context, training });
  modelRoutes(app, { ...context, predictor, batcher, timings, imageLimits, bodyLimit });
  predictionRoutes(app, context);

  await app.ready();
  await training.start();

  let closing: Promise<void> | undefined;
  return {
    app,
    accounts,
    training,
    async listen({ port, host }) {
      return app.listen({ port, host });
    },
    close() {
      // Jobs stop after their current batch while the requests in flight finish.
      closing ??= (async () => {
        await Promise.all([app.close(), training.close()]);
        await batcher.drain();
        predictor.close();
      })();
      return closing;
    },
  };
}
