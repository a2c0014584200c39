// Over 250 lines because it is the one joi schema of every variable the processes read, with the
// typed, frozen shape built from it: one place to look up a setting, its default and its rule.
import Joi from 'joi';
import { PUBLIC_SCOPE } from '../domain/identity.js';
import { parseBoardAccounts, type BoardAccount } from './board-accounts.js';
import { webhookUrlProblems } from './webhook-url.js';

/** The validated, frozen configuration every process reads. Names follow docs/design.md's table. */
export interface Config {
  readonly nodeEnv: string;
  readonly mongoUrl: string;
  /** `REDIS_URL`; used only when {@link Config.redis} is `single` (kept for log lines and older callers). */
  readonly redisUrl: string;
  /** Which Redis the fleet speaks to: one server, a Sentinel-watched master, or a Cluster (README, "Redis topologies"). */
  readonly redis: RedisTopology;
  readonly queuePrefix: string;
  readonly logLevel: string;
  /** Human-readable log lines (pino-pretty) for local development; entry points also turn it on for a TTY. */
  readonly logPretty: boolean;
  readonly apiPort: number;
  readonly healthPort: number;
  /** Base port for worker metrics; 0 turns the metrics server off. */
  readonly workerMetricsPort: number;
  /** pm2's instance number (NODE_APP_INSTANCE), added to the worker metrics port. */
  readonly instance: number;
  readonly bodyLimit: string;
  readonly workerConcurrency: number;
  /** What orders share the fleet fairly by (README, "Fairness"): `customerId`, or `off`. */
  readonly fairShareKey: 'customerId' | 'off';
  /** Orders one customer may hold in processing fleet-wide; undefined: a quarter of the fleet's concurrency. */
  readonly maxActivePerCustomer: number | undefined;
  readonly jobAttempts: number;
  readonly jobBackoffMs: number;
  readonly processingDelayMs: number;
  readonly failureRate: number;
  readonly reconcileIntervalMs: number;
  readonly reconcileGraceMs: number;
  readonly healthTimeoutMs: number;
  readonly shutdownTimeoutMs: number;
  /** api: how long to keep serving after SIGTERM (readiness already 503) before closing the server. */
  readonly shutdownDrainMs: number;
  readonly bullBoardUser: string | undefined;
  readonly bullBoardPassword: string | undefined;
  /** Named dashboard accounts (`BULL_BOARD_USERS`), next to the shared login; empty when unset. */
  readonly boardAccounts: readonly BoardAccount[];
  /** How long the audit of operators' actions is kept in MongoDB (`audit_events`, a TTL index). */
  readonly auditRetentionDays: number;
  /** API clients and the sha256 of their keys; empty when authentication is off. */
  readonly apiKeys: readonly ApiKey[];
  /** False only when no keys are configured (development) or API_AUTH=off is set explicitly. */
  readonly apiAuth: boolean;
  /** Requests per client per minute; 0 turns rate limiting off. */
  readonly rateLimitPerMinute: number;
  /** Browser origins allowed by CORS; empty = CORS off. */
  readonly corsOrigins: readonly string[];
  /** The payment provider API's base URL; unset = the in-process simulated provider. */
  readonly paymentProviderUrl: string | undefined;
  /** Timeout of one call to the payment provider. */
  readonly paymentTimeoutMs: number;
  /** How long the payment circuit breaker stays open before one trial call (half-open). */
  readonly paymentBreakerResetMs: number;
  /** The rolling window over which the breaker counts failed calls. */
  readonly paymentBreakerWindowMs: number;
  /** The share of failed calls in the window (percent) above which the breaker opens. */
  readonly paymentBreakerErrorPercent: number;
  /** The fewest calls in the window before the breaker may open. */
  readonly paymentBreakerVolume: number;
  /** Failed authentications per address (and per board user) per 15 minutes before 429; 0 turns blocking off. */
  readonly authFailureLimit: number;
  /** JWT bearer tokens verified against a JWKS; undefined when `JWT_JWKS_URL` is not set. */
  readonly jwt: JwtConfig | undefined;
  /** The largest profile `POST /admin/profile` returns, in bytes (`PROFILE_MAX_MB`). */
  readonly profileMaxBytes: number;
  /** Order events sent to the shop (README, "Webhooks"); undefined when `WEBHOOK_URL` is not set. */
  readonly webhook: WebhookConfig | undefined;
  /** api: group commit at intake (concurrent POSTs share one insert and one job add); `off` writes each alone. */
  readonly intakeGroupCommit: boolean;
  /** Worker: an order's SKUs in one bulk write, concurrent jobs' effects in one insert (WORKER_BATCH_WRITES). */
  readonly workerBatchWrites: boolean;
  /** api: the most orders in one group-commit batch. */
  readonly intakeBatchMax: number;
  /** api: the most orders waiting for a group-commit slot; more are answered 503 at once (back-pressure). */
  readonly intakeMaxWaiting: number;
  /** api: an idle keep-alive connection is closed after this (above a load balancer's idle timeout). */
  readonly httpKeepAliveTimeoutMs: number;
}

/** A `host:port` of a Sentinel or Cluster node. */
export interface RedisNodeAddress {
  readonly host: string;
  readonly port: number;
}

/** Credentials and TLS shared by every topology (each optional). */
export interface RedisAuth {
  /** ACL user (Redis 6+); unset = the default user. */
  readonly username: string | undefined;
  readonly password: string | undefined;
  /** TLS to the data nodes: `rediss://` or `REDIS_TLS=1`. */
  readonly tls: boolean;
}

/**
 * The Redis topology (exactly one is named): `REDIS_URL` (one Redis), `REDIS_SENTINELS` +
 * `REDIS_SENTINEL_NAME` (the master a Sentinel group elects), or `REDIS_CLUSTER_NODES` (a Redis Cluster).
 */
export type RedisTopology =
  | (RedisAuth & { readonly kind: 'single'; readonly url: string })
  | (RedisAuth & {
      readonly kind: 'sentinel';
      readonly sentinels: readonly RedisNodeAddress[];
      /** The master's name in the Sentinels' configuration (`sentinel monitor <name> …`). */
      readonly name: string;
      readonly sentinelUsername: string | undefined;
      readonly sentinelPassword: string | undefined;
      /** TLS to the Sentinels themselves (`REDIS_SENTINEL_TLS`, default: as `REDIS_TLS`). */
      readonly sentinelTls: boolean;
    })
  | (RedisAuth & { readonly kind: 'cluster'; readonly nodes: readonly RedisNodeAddress[] });

/** Where and how order events are delivered. */
export interface WebhookConfig {
  readonly url: string;
  /** `whsec_…` secrets; every delivery is signed with each (rotation: list the new one beside the old). */
  readonly secrets: readonly string[];
  /** Deliveries in flight per worker process, apart from the order concurrency. */
  readonly concurrency: number;
  /** Timeout of one delivery attempt. */
  readonly timeoutMs: number;
  /** About how long a failing delivery is retried before it stays in the failed set. */
  readonly retryHorizonMs: number;
  /** Production only: plain http allowed (private addresses stay refused). */
  readonly allowHttp: boolean;
}

/** How `Authorization: Bearer <JWT>` tokens are verified (issued by a gateway's identity provider). */
export interface JwtConfig {
  /** Where the issuer publishes its signing keys (JWKS). */
  readonly jwksUrl: string;
  /** Required `iss`. */
  readonly issuer: string;
  /** Required `aud` (one of). */
  readonly audience: string;
  /** The claim holding the client id (orders and idempotency keys are scoped by it). */
  readonly clientIdClaim: string;
  /** The `scope` entry or `roles` member that grants admin routes. */
  readonly adminValue: string;
  /** Accepted signature algorithms (asymmetric only). */
  readonly algorithms: readonly string[];
  /** Tolerance for `exp` and `nbf`, in seconds. */
  readonly clockSkewSeconds: number;
}

/** Signature algorithms a JWT may use: asymmetric only, so a public key can never sign (no HS*, no none). */
const JWT_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'EdDSA'];

/** One configured API client: its id, the sha256 (hex) of its key, and whether it may use admin routes. */
export interface ApiKey {
  readonly clientId: string;
  readonly sha256: string;
  readonly admin: boolean;
}

// The scope of unauthenticated callers (docs/design.md); no API client may take it.
const PUBLIC_CLIENT_ID = PUBLIC_SCOPE;

// `clientId:sha256hex` or `clientId:sha256hex:admin`, comma-separated.
const API_KEY_ENTRY = /^[A-Za-z0-9_-]{1,64}:[0-9a-f]{64}(:admin)?$/;

const port = Joi.number().integer().min(0).max(65535);

// Letters, digits, `_`, `-`, and at most one non-empty `{…}` (the part Redis Cluster hashes).
const QUEUE_PREFIX_FORMAT = /^[A-Za-z0-9_-]*(\{[A-Za-z0-9_-]+\})?[A-Za-z0-9_-]*$/;
const DEFAULT_QUEUE_PREFIX = 'bull';
/** The default prefix on a Cluster: BullMQ's documented hash tag. */
const DEFAULT_CLUSTER_QUEUE_PREFIX = '{bull}';

// `host:port` (host: a name, IPv4, or [IPv6]), comma-separated.
const NODE_ADDRESS = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]{1,253}):(\d{1,5})$/;

function nodeList(value: string, helpers: Joi.CustomHelpers): string | Joi.ErrorReport {
  const ok = value.split(',').every((entry) => {
    const m = NODE_ADDRESS.exec(entry.trim());
    return m !== null && Number(m[2]) >= 1 && Number(m[2]) <= 65535;
  });
  return ok ? value : helpers.message({ custom: '{{#label}} must be comma-separated host:port entries' });
}

function parseNodes(raw: string): readonly RedisNodeAddress[] {
  return Object.freeze(
    raw.split(',').map((entry) => {
      const m = NODE_ADDRESS.exec(entry.trim()) as RegExpExecArray;
      return Object.freeze({ host: m[1].replace(/^\[|\]$/g, ''), port: Number(m[2]) });
    }),
  );
}

/** The hash tag of a key prefix (what Redis Cluster hashes), or undefined when it has none. */
export function hashTagOf(prefix: string): string | undefined {
  return /\{([^}]+)\}/.exec(prefix)?.[1];
}

const schema = Joi.object({
  NODE_ENV: Joi.string().valid('development', 'production', 'test').default('development'),
  MONGO_URL: Joi.string()
    .uri({ scheme: ['mongodb', 'mongodb+srv'] })
    .default('mongodb://127.0.0.1:27017/orders'),
  REDIS_URL: Joi.string()
    .uri({ scheme: ['redis', 'rediss'] })
    .default('redis://127.0.0.1:6379'),
  // An optional Redis Cluster hash tag (`{orders}`, `app-{orders}`): every key of the fleet then hashes
  // to one slot, so BullMQ's Lua scripts and the project's own multi-key calls never cross slots.
  QUEUE_PREFIX: Joi.string()
    .max(64)
    .pattern(QUEUE_PREFIX_FORMAT, 'letters, digits, _ or - with at most one {hash-tag}'),
  REDIS_SENTINELS: Joi.string().max(4096).custom(nodeList, 'host:port list'),
  REDIS_SENTINEL_NAME: Joi.string().pattern(/^[A-Za-z0-9._-]{1,128}$/, 'master name'),
  REDIS_SENTINEL_USERNAME: Joi.string().min(1).max(256),
  REDIS_SENTINEL_PASSWORD: Joi.string().min(1).max(1024),
  REDIS_SENTINEL_TLS: Joi.boolean().truthy('1').falsy('0'),
  REDIS_CLUSTER_NODES: Joi.string().max(4096).custom(nodeList, 'host:port list'),
  REDIS_USERNAME: Joi.string().min(1).max(256),
  REDIS_PASSWORD: Joi.string().min(1).max(1024),
  REDIS_TLS: Joi.boolean().truthy('1').falsy('0').default(false),
  LOG_LEVEL: Joi.string().valid('fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent').default('info'),
  LOG_PRETTY: Joi.boolean().truthy('1').falsy('0').default(false),
  API_PORT: port.default(3000),
  HEALTH_PORT: port.default(3001),
  WORKER_METRICS_PORT: port.default(9464),
  NODE_APP_INSTANCE: Joi.number().integer().min(0).max(1000).default(0),
  BODY_LIMIT: Joi.string()
    .pattern(/^\d+(b|kb|mb)$/i)
    .default('100kb'),
  WORKER_CONCURRENCY: Joi.number().integer().min(1).max(1000).default(10),
  FAIR_SHARE_KEY: Joi.string().valid('customerId', 'off').default('customerId'),
  MAX_ACTIVE_PER_CUSTOMER: Joi.number().integer().min(1).max(100_000),
  JOB_ATTEMPTS: Joi.number().integer().min(1).max(100).default(5),
  JOB_BACKOFF_MS: Joi.number().integer().min(0).max(3_600_000).default(1000),
  PROCESSING_DELAY_MS: Joi.number().integer().min(0).max(600_000).default(50),
  FAILURE_RATE: Joi.number().min(0).max(1).default(0),
  RECONCILE_INTERVAL_MS: Joi.number().integer().min(100).default(15000),
  RECONCILE_GRACE_MS: Joi.number().integer().min(0).default(10000),
  HEALTH_TIMEOUT_MS: Joi.number().integer().min(10).max(60_000).default(1000),
  SHUTDOWN_TIMEOUT_MS: Joi.number().integer().min(100).max(600_000).default(10000),
  SHUTDOWN_DRAIN_MS: Joi.number().integer().min(0).max(60_000).default(0),
  BULL_BOARD_USER: Joi.string().min(1).max(128),
  // The board can retry, clean and remove jobs: a guessable password is refused at start.
  BULL_BOARD_PASSWORD: Joi.string().min(12).max(256),
  // Named accounts: comma-separated name:operator|viewer:scrypt-hash (npm run board:hash-password).
  BULL_BOARD_USERS: Joi.string().max(100_000),
  AUDIT_RETENTION_DAYS: Joi.number().integer().min(1).max(3650).default(90),
  API_KEYS: Joi.string()
    .max(100_000)
    .custom((value: string, helpers) =>
      value.split(',').every((entry) => API_KEY_ENTRY.test(entry.trim()))
        ? value
        : helpers.message({ custom: '{{#label}} must be comma-separated clientId:sha256hex[:admin] entries' }),
    ),
  API_AUTH: Joi.string().valid('on', 'off'),
  RATE_LIMIT_PER_MINUTE: Joi.number().integer().min(0).max(1_000_000).default(6000),
  CORS_ORIGINS: Joi.string().max(4096),
  INTAKE_GROUP_COMMIT: Joi.string().valid('on', 'off').default('on'),
  INTAKE_BATCH_MAX: Joi.number().integer().min(1).max(10_000).default(256),
  INTAKE_MAX_WAITING: Joi.number().integer().min(0).max(1_000_000).default(10_000),
  HTTP_KEEPALIVE_TIMEOUT_MS: Joi.number().integer().min(1000).max(600_000).default(5000),
  WORKER_BATCH_WRITES: Joi.string().valid('on', 'off').default('on'),
  PAYMENT_PROVIDER_URL: Joi.string().uri({ scheme: ['http', 'https'] }),
  WEBHOOK_URL: Joi.string().uri({ scheme: ['http', 'https'] }),
  // Standard Webhooks secrets: `whsec_` + base64 of at least 24 bytes, comma-separated for rotation.
  WEBHOOK_SECRET: Joi.string()
    .max(4096)
    .pattern(/^\s*whsec_[A-Za-z0-9+/]{32,}={0,2}\s*(,\s*whsec_[A-Za-z0-9+/]{32,}={0,2}\s*)*$/, 'whsec_<base64>[,…]'),
  WEBHOOK_CONCURRENCY: Joi.number().integer().min(1).max(1000).default(10),
  WEBHOOK_TIMEOUT_MS: Joi.number().integer().min(10).max(120_000).default(5000),
  WEBHOOK_RETRY_HORIZON_MS: Joi.number()
    .integer()
    .min(1000)
    .max(30 * 86_400_000)
    .default(86_400_000),
  WEBHOOK_ALLOW_HTTP: Joi.boolean().default(false),
  PAYMENT_TIMEOUT_MS: Joi.number().integer().min(10).max(120_000).default(2000),
  PAYMENT_BREAKER_RESET_MS: Joi.number().integer().min(100).max(3_600_000).default(10_000),
  PAYMENT_BREAKER_WINDOW_MS: Joi.number().integer().min(1000).max(3_600_000).default(10_000),
  PAYMENT_BREAKER_ERROR_PERCENT: Joi.number().min(1).max(99).default(50),
  PAYMENT_BREAKER_VOLUME: Joi.number().integer().min(1).max(100_000).default(5),
  AUTH_FAILURE_LIMIT: Joi.number().integer().min(0).max(100_000).default(10),
  // The key set must not be fetched in clear outside development: a forged key set forges every token.
  JWT_JWKS_URL: Joi.string().uri({ scheme: ['https', 'http'] }),
  JWT_ISSUER: Joi.string().min(1).max(1024),
  JWT_AUDIENCE: Joi.string().min(1).max(1024),
  JWT_CLIENT_ID_CLAIM: Joi.string()
    .pattern(/^[A-Za-z0-9_:./-]{1,128}$/)
    .default('sub'),
  JWT_ADMIN_SCOPE: Joi.string()
    .pattern(/^[\x21-\x7e]{1,128}$/)
    .default('orders:admin'),
  JWT_ALGORITHMS: Joi.string()
    .max(200)
    .custom((value: string, helpers) =>
      value.split(',').every((alg) => JWT_ALGORITHMS.includes(alg.trim()))
        ? value
        : helpers.message({ custom: `{{#label}} must list algorithms among ${JWT_ALGORITHMS.join(', ')}` }),
    )
    .default('RS256,ES256'),
  JWT_CLOCK_SKEW_SECONDS: Joi.number().integer().min(0).max(300).default(30),
  // The largest profile POST /admin/profile returns (a heap snapshot is held in memory up to it).
  PROFILE_MAX_MB: Joi.number().integer().min(1).max(4096).default(256),
})
  .and('BULL_BOARD_USER', 'BULL_BOARD_PASSWORD')
  .and('JWT_JWKS_URL', 'JWT_ISSUER', 'JWT_AUDIENCE')
  // Every other variable of the environment is none of our business.
  .unknown(true);

/** Thrown by {@link loadConfig}; `problems` lists every bad variable (values are never echoed). */
export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n  - ${problems.join('\n  - ')}`);
    this.name = 'ConfigError';
  }
}

/**
 * Validates the environment and returns a frozen {@link Config}. Reports every problem at once.
 * Empty strings count as unset, so `FOO=` in an .env file falls back to the default.
 */
export function loadConfig(env: NodeJS.ProcessEnv): Config {
  const input = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ''));
  const { value, error } = schema.validate(input, {
    abortEarly: false,
    convert: true,
    // joi's own pattern messages quote the value; these name the rule only.
    messages: {
      'string.pattern.base': '{{#label}} does not match the required format',
      'string.pattern.name': '{{#label}} does not match the {{#name}} format',
    },
  });
  if (error) {
    // Messages name the variable and the rule; the offending value is left out because it may be a secret.
    throw new ConfigError(error.details.map((d) => d.message.replace(/^"([^"]+)"/, '$1')));
  }
  const v = value as Record<string, never>;
  const apiKeys = parseApiKeys(v.API_KEYS);
  const jwt = parseJwt(v);
  const problems: string[] = [];
  const board = parseBoardAccounts(v.BULL_BOARD_USERS);
  problems.push(...board.problems);
  if (v.BULL_BOARD_USER && board.accounts.some((a) => a.name === v.BULL_BOARD_USER)) {
    problems.push('BULL_BOARD_USERS names the shared BULL_BOARD_USER account again');
  }
  if (apiKeys.some((k) => k.clientId === PUBLIC_CLIENT_ID)) {
    problems.push(`API_KEYS: the client id "${PUBLIC_CLIENT_ID}" is reserved for unauthenticated callers`);
  }
  if (v.API_AUTH === 'on' && apiKeys.length === 0 && !jwt) problems.push('API_AUTH=on needs API_KEYS or JWT_JWKS_URL');
  if (v.NODE_ENV === 'production' && apiKeys.length === 0 && !jwt && v.API_AUTH !== 'off') {
    problems.push(
      'API_KEYS is required in production (or JWT_JWKS_URL, or set API_AUTH=off to run without authentication)',
    );
  }
  if (jwt && v.NODE_ENV === 'production' && !jwt.jwksUrl.startsWith('https:')) {
    problems.push('JWT_JWKS_URL must be https in production');
  }
  if (v.WEBHOOK_URL && !v.WEBHOOK_SECRET) problems.push('WEBHOOK_URL needs WEBHOOK_SECRET (whsec_…)');
  if (v.WEBHOOK_URL) {
    problems.push(
      ...webhookUrlProblems(v.WEBHOOK_URL, {
        production: v.NODE_ENV === 'production',
        allowHttp: v.WEBHOOK_ALLOW_HTTP,
      }),
    );
  }
  const redis = parseRedisTopology(v, input, problems);
  const queuePrefix =
    (v.QUEUE_PREFIX as string | undefined) ??
    (redis?.kind === 'cluster' ? DEFAULT_CLUSTER_QUEUE_PREFIX : DEFAULT_QUEUE_PREFIX);
  if (redis?.kind === 'cluster' && hashTagOf(queuePrefix) === undefined) {
    problems.push(
      `QUEUE_PREFIX must carry a Redis Cluster hash tag with REDIS_CLUSTER_NODES (for example {${queuePrefix}}): BullMQ's keys of one queue must share a slot`,
    );
  }
  if (problems.length > 0 || !redis) throw new ConfigError(problems);
  return Object.freeze({
    nodeEnv: v.NODE_ENV,
    mongoUrl: v.MONGO_URL,
    redisUrl: v.REDIS_URL,
    redis,
    queuePrefix,
    logLevel: v.LOG_LEVEL,
    logPretty: v.LOG_PRETTY,
    apiPort: v.API_PORT,
    healthPort: v.HEALTH_PORT,
    workerMetricsPort: v.WORKER_METRICS_PORT,
    instance: v.NODE_APP_INSTANCE,
    bodyLimit: v.BODY_LIMIT,
    workerConcurrency: v.WORKER_CONCURRENCY,
    fairShareKey: v.FAIR_SHARE_KEY,
    maxActivePerCustomer: v.MAX_ACTIVE_PER_CUSTOMER,
    jobAttempts: v.JOB_ATTEMPTS,
    jobBackoffMs: v.JOB_BACKOFF_MS,
    processingDelayMs: v.PROCESSING_DELAY_MS,
    failureRate: v.FAILURE_RATE,
    reconcileIntervalMs: v.RECONCILE_INTERVAL_MS,
    reconcileGraceMs: v.RECONCILE_GRACE_MS,
    healthTimeoutMs: v.HEALTH_TIMEOUT_MS,
    shutdownTimeoutMs: v.SHUTDOWN_TIMEOUT_MS,
    shutdownDrainMs: v.SHUTDOWN_DRAIN_MS,
    bullBoardUser: v.BULL_BOARD_USER,
    bullBoardPassword: v.BULL_BOARD_PASSWORD,
    boardAccounts: board.accounts,
    auditRetentionDays: v.AUDIT_RETENTION_DAYS,
    apiKeys,
    apiAuth: v.API_AUTH !== 'off' && (apiKeys.length > 0 || jwt !== undefined),
    rateLimitPerMinute: v.RATE_LIMIT_PER_MINUTE,
    corsOrigins: v.CORS_ORIGINS
      ? Object.freeze(
          (v.CORS_ORIGINS as string)
            .split(',')
            .map((o) => o.trim())
            .filter(Boolean),
        )
      : Object.freeze([]),
    paymentProviderUrl: v.PAYMENT_PROVIDER_URL,
    paymentTimeoutMs: v.PAYMENT_TIMEOUT_MS,
    paymentBreakerResetMs: v.PAYMENT_BREAKER_RESET_MS,
    paymentBreakerWindowMs: v.PAYMENT_BREAKER_WINDOW_MS,
    paymentBreakerErrorPercent: v.PAYMENT_BREAKER_ERROR_PERCENT,
    paymentBreakerVolume: v.PAYMENT_BREAKER_VOLUME,
    authFailureLimit: v.AUTH_FAILURE_LIMIT,
    jwt,
    profileMaxBytes: v.PROFILE_MAX_MB * 1024 * 1024,
    webhook: v.WEBHOOK_URL
      ? Object.freeze({
          url: v.WEBHOOK_URL,
          secrets: Object.freeze((v.WEBHOOK_SECRET as string).split(',').map((x) => x.trim())),
          concurrency: v.WEBHOOK_CONCURRENCY,
          timeoutMs: v.WEBHOOK_TIMEOUT_MS,
          retryHorizonMs: v.WEBHOOK_RETRY_HORIZON_MS,
          allowHttp: v.WEBHOOK_ALLOW_HTTP,
        })
      : undefined,
    intakeGroupCommit: v.INTAKE_GROUP_COMMIT === 'on',
    intakeBatchMax: v.INTAKE_BATCH_MAX,
    intakeMaxWaiting: v.INTAKE_MAX_WAITING,
    httpKeepAliveTimeoutMs: v.HTTP_KEEPALIVE_TIMEOUT_MS,
    workerBatchWrites: v.WORKER_BATCH_WRITES === 'on',
  });
}

/**
 * The one Redis topology the environment names; pushes a problem (and returns undefined) when it
 * names none clearly: Sentinel and Cluster together, or either beside an explicit REDIS_URL.
 */
function parseRedisTopology(
  v: Record<string, never>,
  input: Record<string, unknown>,
  problems: string[],
): RedisTopology | undefined {
  const named = [
    input.REDIS_URL !== undefined && 'REDIS_URL',
    v.REDIS_SENTINELS && 'REDIS_SENTINELS',
    v.REDIS_CLUSTER_NODES && 'REDIS_CLUSTER_NODES',
  ].filter(Boolean);
  if (named.length > 1) {
    problems.push(`name exactly one Redis topology: ${named.join(', ')} are all set (unset all but one)`);
    return undefined;
  }
  if (Boolean(v.REDIS_SENTINELS) !== Boolean(v.REDIS_SENTINEL_NAME)) {
    problems.push('REDIS_SENTINELS and REDIS_SENTINEL_NAME go together (the Sentinels and the master name they watch)');
    return undefined;
  }
  const url = v.REDIS_URL as string;
  const tls = v.REDIS_TLS === true || (!v.REDIS_SENTINELS && !v.REDIS_CLUSTER_NODES && url.startsWith('rediss:'));
  const auth = { username: v.REDIS_USERNAME, password: v.REDIS_PASSWORD, tls };
  if (v.REDIS_SENTINELS) {
    return Object.freeze({
      kind: 'sentinel',
      ...auth,
      sentinels: parseNodes(v.REDIS_SENTINELS),
      name: v.REDIS_SENTINEL_NAME,
      sentinelUsername: v.REDIS_SENTINEL_USERNAME,
      sentinelPassword: v.REDIS_SENTINEL_PASSWORD,
      sentinelTls: (v.REDIS_SENTINEL_TLS as boolean | undefined) ?? tls,
    });
  }
  if (v.REDIS_CLUSTER_NODES)
    return Object.freeze({ kind: 'cluster', ...auth, nodes: parseNodes(v.REDIS_CLUSTER_NODES) });
  return Object.freeze({ kind: 'single', ...auth, url });
}

function parseJwt(v: Record<string, never>): JwtConfig | undefined {
  if (!v.JWT_JWKS_URL) return undefined;
  return Object.freeze({
    jwksUrl: v.JWT_JWKS_URL,
    issuer: v.JWT_ISSUER,
    audience: v.JWT_AUDIENCE,
    clientIdClaim: v.JWT_CLIENT_ID_CLAIM,
    adminValue: v.JWT_ADMIN_SCOPE,
    algorithms: Object.freeze((v.JWT_ALGORITHMS as string).split(',').map((a) => a.trim())),
    clockSkewSeconds: v.JWT_CLOCK_SKEW_SECONDS,
  });
}

function parseApiKeys(raw: string | undefined): readonly ApiKey[] {
  if (!raw) return Object.freeze([]);
  return Object.freeze(
    raw.split(',').map((entry) => {
      const [clientId, sha256, role] = entry.trim().split(':');
      return Object.freeze({ clientId, sha256, admin: role === 'admin' });
    }),
  );
}
