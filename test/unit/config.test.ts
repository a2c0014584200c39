import test, { type ExecutionContext } from 'ava';
import { ConfigError, loadConfig, type Config } from '#common';

/** Loads `env`, asserts a ConfigError and returns it. */
function rejectEnv(t: ExecutionContext, env: NodeJS.ProcessEnv): ConfigError {
  return t.throws(() => loadConfig(env), { instanceOf: ConfigError });
}

/** The variable a problem line names (its first word). */
function variablesOf(error: ConfigError): string[] {
  return error.problems.map((p) => p.split(' ')[0]);
}

/** docs/design.md's "Configuration" table, transcribed independently of the code. */
const DESIGN_DEFAULTS = {
  mongoUrl: 'mongodb://127.0.0.1:27017/orders',
  redisUrl: 'redis://127.0.0.1:6379',
  queuePrefix: 'bull',
  logLevel: 'info',
  apiPort: 3000,
  healthPort: 3001,
  workerMetricsPort: 9464,
  bodyLimit: '100kb',
  workerConcurrency: 10,
  jobAttempts: 5,
  jobBackoffMs: 1000,
  processingDelayMs: 50,
  failureRate: 0,
  reconcileIntervalMs: 15000,
  reconcileGraceMs: 10000,
  healthTimeoutMs: 1000,
  shutdownTimeoutMs: 10000,
  bullBoardUser: undefined,
  bullBoardPassword: undefined,
} as const;

test('when the environment is empty, then every value is the default of docs/design.md', (t) => {
  const config = loadConfig({});

  for (const [name, expected] of Object.entries(DESIGN_DEFAULTS)) {
    t.is(config[name as keyof Config], expected, name);
  }
  t.is(config.instance, 0, 'no pm2 instance number means instance 0');
  t.is(config.nodeEnv, 'development');
});

test('when the environment is empty, then the config has exactly the documented keys', (t) => {
  const config = loadConfig({});

  // docs/design.md's table, plus the security settings of the api (API_KEYS, API_AUTH, RATE_LIMIT_PER_MINUTE, CORS_ORIGINS).
  // Issue 18: AUTH_FAILURE_LIMIT and the JWT_* variables.
  const security = [
    'apiKeys',
    'apiAuth',
    'rateLimitPerMinute',
    'corsOrigins',
    'shutdownDrainMs',
    'authFailureLimit',
    'jwt',
  ];
  // LOG_PRETTY: human-readable logs for local development (issue 6).
  // The payment provider and its circuit breaker (issue 13).
  const payment = [
    'paymentProviderUrl',
    'paymentTimeoutMs',
    'paymentBreakerResetMs',
    'paymentBreakerWindowMs',
    'paymentBreakerErrorPercent',
    'paymentBreakerVolume',
  ];
  // Operators' control (issue 15): named dashboard accounts and the audit's retention.
  const operators = ['boardAccounts', 'auditRetentionDays'];
  // Group commit at intake (issue 17).
  const intake = [
    'intakeGroupCommit',
    'intakeBatchMax',
    'intakeMaxWaiting',
    'httpKeepAliveTimeoutMs',
    'workerBatchWrites',
  ];
  // The fair share (issue 15): FAIR_SHARE_KEY and MAX_ACTIVE_PER_CUSTOMER.
  const fairness = ['fairShareKey', 'maxActivePerCustomer'];
  t.deepEqual(
    Object.keys(config).sort(),
    // Webhooks (issue 14): one `webhook` key, undefined until WEBHOOK_URL is set.
    // PROFILE_MAX_MB: the bound of POST /admin/profile (issue 19).
    // Redis topologies (issue 16): one `redis` key, the topology REDIS_URL / REDIS_SENTINELS / REDIS_CLUSTER_NODES name.
    [
      ...Object.keys(DESIGN_DEFAULTS),
      'instance',
      'nodeEnv',
      'logPretty',
      ...security,
      ...payment,
      'webhook',
      'profileMaxBytes',
      'redis',
      ...operators,
      ...intake,
      ...fairness,
    ].sort(),
  );
  t.is(config.profileMaxBytes, 256 * 1024 * 1024);
  t.throws(() => loadConfig({ PROFILE_MAX_MB: '0' }), { message: /PROFILE_MAX_MB/ });
});

test('when the intake settings are not set, then group commit is on with its default bounds; off turns it off', (t) => {
  t.like(loadConfig({}), {
    intakeGroupCommit: true,
    intakeBatchMax: 256,
    intakeMaxWaiting: 10_000,
    httpKeepAliveTimeoutMs: 5000,
  });
  t.false(loadConfig({ INTAKE_GROUP_COMMIT: 'off' }).intakeGroupCommit);
  t.throws(() => loadConfig({ INTAKE_GROUP_COMMIT: 'maybe' }), { message: /INTAKE_GROUP_COMMIT/ });
  t.throws(() => loadConfig({ INTAKE_BATCH_MAX: '0' }), { message: /INTAKE_BATCH_MAX/ });
});

test('when WORKER_BATCH_WRITES is not set, then the worker batches its writes; off turns it off', (t) => {
  t.true(loadConfig({}).workerBatchWrites);
  t.false(loadConfig({ WORKER_BATCH_WRITES: 'off' }).workerBatchWrites);
  t.throws(() => loadConfig({ WORKER_BATCH_WRITES: 'maybe' }), { message: /WORKER_BATCH_WRITES/ });
});

test('when the fair-share variables are set, then they are kept; when bad, each is reported', (t) => {
  const defaults = loadConfig({});
  t.is(defaults.fairShareKey, 'customerId');
  t.is(defaults.maxActivePerCustomer, undefined, 'unset: a quarter of the fleet, worked out by the workers');
  const set = loadConfig({ FAIR_SHARE_KEY: 'off', MAX_ACTIVE_PER_CUSTOMER: '7' });
  t.is(set.fairShareKey, 'off');
  t.is(set.maxActivePerCustomer, 7);
  const err = t.throws(() => loadConfig({ FAIR_SHARE_KEY: 'tenant', MAX_ACTIVE_PER_CUSTOMER: '0' }), {
    instanceOf: ConfigError,
  });
  t.is(err.problems.length, 2);
  t.true(err.problems.some((p) => p.startsWith('FAIR_SHARE_KEY')));
  t.true(err.problems.some((p) => p.startsWith('MAX_ACTIVE_PER_CUSTOMER')));
});

test('when numeric variables are set, then they are converted to numbers', (t) => {
  const env = {
    API_PORT: '8080',
    HEALTH_PORT: '8081',
    WORKER_METRICS_PORT: '0',
    NODE_APP_INSTANCE: '3',
    WORKER_CONCURRENCY: '25',
    JOB_ATTEMPTS: '7',
    JOB_BACKOFF_MS: '250',
    PROCESSING_DELAY_MS: '0',
    FAILURE_RATE: '0.25',
    RECONCILE_INTERVAL_MS: '5000',
    RECONCILE_GRACE_MS: '0',
    HEALTH_TIMEOUT_MS: '200',
    SHUTDOWN_TIMEOUT_MS: '30000',
  };

  const config = loadConfig(env);

  t.is(config.apiPort, 8080);
  t.is(config.healthPort, 8081);
  t.is(config.workerMetricsPort, 0);
  t.is(config.instance, 3);
  t.is(config.workerConcurrency, 25);
  t.is(config.jobAttempts, 7);
  t.is(config.jobBackoffMs, 250);
  t.is(config.processingDelayMs, 0);
  t.is(config.failureRate, 0.25);
  t.is(config.reconcileIntervalMs, 5000);
  t.is(config.reconcileGraceMs, 0);
  t.is(config.healthTimeoutMs, 200);
  t.is(config.shutdownTimeoutMs, 30000);
  t.is(typeof config.apiPort, 'number');
});

test('when string variables are set, then they are kept as given', (t) => {
  const env = {
    NODE_ENV: 'production',
    API_AUTH: 'off',
    MONGO_URL: 'mongodb+srv://cluster.example.net/orders',
    REDIS_URL: 'rediss://cache.example.net:6380',
    QUEUE_PREFIX: 'orders-test_1',
    LOG_LEVEL: 'debug',
    BODY_LIMIT: '1mb',
    BULL_BOARD_USER: 'admin',
    BULL_BOARD_PASSWORD: 'correct horse battery staple',
  };

  const config = loadConfig(env);

  t.is(config.nodeEnv, 'production');
  t.is(config.mongoUrl, env.MONGO_URL);
  t.is(config.redisUrl, env.REDIS_URL);
  t.is(config.queuePrefix, 'orders-test_1');
  t.is(config.logLevel, 'debug');
  t.is(config.bodyLimit, '1mb');
  t.is(config.bullBoardUser, 'admin');
  t.is(config.bullBoardPassword, 'correct horse battery staple');
});

test('when variables unknown to the config are present, then they are ignored', (t) => {
  const config = loadConfig({ PATH: '/usr/bin', HOME: '/root', SOMETHING_ELSE: '!!' });

  t.is(config.apiPort, 3000);
});

test('when a variable is an empty string, then its default applies', (t) => {
  const env = {
    API_PORT: '',
    FAILURE_RATE: '',
    MONGO_URL: '',
    LOG_LEVEL: '',
    BODY_LIMIT: '',
    BULL_BOARD_USER: '',
    BULL_BOARD_PASSWORD: '',
  };

  const config = loadConfig(env);

  t.is(config.apiPort, 3000);
  t.is(config.failureRate, 0);
  t.is(config.mongoUrl, DESIGN_DEFAULTS.mongoUrl);
  t.is(config.logLevel, 'info');
  t.is(config.bodyLimit, '100kb');
  t.is(config.bullBoardUser, undefined);
  t.is(config.bullBoardPassword, undefined);
});

test('when a variable is undefined, then its default applies', (t) => {
  const config = loadConfig({ API_PORT: undefined, JOB_ATTEMPTS: undefined });

  t.is(config.apiPort, 3000);
  t.is(config.jobAttempts, 5);
});

test('when many variables are bad, then every one is reported in one ConfigError', (t) => {
  const env = {
    NODE_ENV: 'staging',
    MONGO_URL: 'http://127.0.0.1:27017/orders',
    REDIS_URL: 'not a url',
    QUEUE_PREFIX: 'has space',
    LOG_LEVEL: 'loud',
    API_PORT: 'abc',
    HEALTH_PORT: '70000',
    WORKER_METRICS_PORT: '-1',
    NODE_APP_INSTANCE: '1.5',
    BODY_LIMIT: '10 gb',
    WORKER_CONCURRENCY: '0',
    JOB_ATTEMPTS: '0',
    JOB_BACKOFF_MS: '-5',
    PROCESSING_DELAY_MS: 'soon',
    FAILURE_RATE: '1.5',
    RECONCILE_INTERVAL_MS: '99',
    RECONCILE_GRACE_MS: '-1',
    HEALTH_TIMEOUT_MS: '9',
    SHUTDOWN_TIMEOUT_MS: '99',
  };

  const error = rejectEnv(t, env);

  t.deepEqual(variablesOf(error).sort(), Object.keys(env).sort());
  t.is(error.name, 'ConfigError');
  t.true(error instanceof Error);
  for (const name of Object.keys(env)) t.true(error.message.includes(name), `message names ${name}`);
});

test('when one variable is bad, then only that one is reported', (t) => {
  const error = rejectEnv(t, { API_PORT: '3000.5' });

  t.deepEqual(variablesOf(error), ['API_PORT']);
  t.regex(error.problems[0], /integer/);
});

test('when a port is out of range or not an integer, then it is rejected', (t) => {
  for (const value of ['65536', '-1', '80.5', 'http', '1e9']) {
    const error = rejectEnv(t, { HEALTH_PORT: value });
    t.deepEqual(variablesOf(error), ['HEALTH_PORT'], value);
  }
});

test('when FAILURE_RATE is outside 0–1, then it is rejected; inside, it is kept', (t) => {
  t.deepEqual(variablesOf(rejectEnv(t, { FAILURE_RATE: '-0.1' })), ['FAILURE_RATE']);
  t.deepEqual(variablesOf(rejectEnv(t, { FAILURE_RATE: '1.01' })), ['FAILURE_RATE']);
  t.is(loadConfig({ FAILURE_RATE: '1' }).failureRate, 1);
  t.is(loadConfig({ FAILURE_RATE: '0' }).failureRate, 0);
});

test('when BULL_BOARD_USER is set without a password, then it is an error', (t) => {
  const error = rejectEnv(t, { BULL_BOARD_USER: 'admin' });

  t.is(error.problems.length, 1);
  t.regex(error.problems[0], /BULL_BOARD_USER/);
  t.regex(error.problems[0], /BULL_BOARD_PASSWORD/);
});

test('when BULL_BOARD_USER is set and the password is an empty string, then it is an error', (t) => {
  const error = rejectEnv(t, { BULL_BOARD_USER: 'admin', BULL_BOARD_PASSWORD: '' });

  t.regex(error.message, /BULL_BOARD_PASSWORD/);
});

test('when BULL_BOARD_PASSWORD is set without a user, then it is an error that does not echo the password', (t) => {
  const password = 'hunter2-only-password-Zq7';

  const error = rejectEnv(t, { BULL_BOARD_PASSWORD: password });

  t.regex(error.message, /BULL_BOARD_USER/);
  t.false(error.message.includes(password));
  t.false(error.problems.some((p) => p.includes(password)));
});

test('when BULL_BOARD_PASSWORD is too long, then the error names the variable but never its value', (t) => {
  const password = 'S3cr3t-Pa55-'.repeat(30);

  const error = rejectEnv(t, { BULL_BOARD_USER: 'admin', BULL_BOARD_PASSWORD: password });

  t.deepEqual(variablesOf(error), ['BULL_BOARD_PASSWORD']);
  t.false(error.message.includes('S3cr3t-Pa55-'));
  t.false(error.problems.some((p) => p.includes('S3cr3t-Pa55-')));
  t.false(JSON.stringify(error).includes('S3cr3t-Pa55-'));
});

test('when BULL_BOARD_PASSWORD is too short to be safe, then it is rejected without echoing it', (t) => {
  const password = 'Pw9xQ';

  const error = rejectEnv(t, { BULL_BOARD_USER: 'admin', BULL_BOARD_PASSWORD: password });

  t.deepEqual(variablesOf(error), ['BULL_BOARD_PASSWORD']);
  t.false(error.message.includes(password));
});

test('when a URL carrying a password is bad, then the password is not echoed', (t) => {
  const error = rejectEnv(t, { MONGO_URL: 'http://user:Pa55w0rdXYZ@db/orders', REDIS_URL: 'tcp://:R3disPa55@x' });

  t.deepEqual(variablesOf(error).sort(), ['MONGO_URL', 'REDIS_URL']);
  t.false(error.message.includes('Pa55w0rdXYZ'));
  t.false(error.message.includes('R3disPa55'));
});

// ConfigError's TSDoc promises "values are never echoed", yet joi's pattern messages
// ('QUEUE_PREFIX with value "…" fails to match the required pattern') keep the value.
test('when a variable fails a pattern rule, then its value is not echoed (documented: never echoed)', (t) => {
  const error = rejectEnv(t, { QUEUE_PREFIX: 'marker value 1234', BODY_LIMIT: 'marker5678' });

  t.deepEqual(variablesOf(error).sort(), ['BODY_LIMIT', 'QUEUE_PREFIX']);
  t.false(error.message.includes('marker value 1234'));
  t.false(error.message.includes('marker5678'));
});

test('when the config is loaded, then the returned object is frozen', (t) => {
  const config = loadConfig({ API_PORT: '4000' });

  t.true(Object.isFrozen(config));
  t.throws(() => {
    (config as { apiPort: number }).apiPort = 1;
  });
  t.is(config.apiPort, 4000);
});

test('when the config is loaded, then the input environment is not modified', (t) => {
  const env = { API_PORT: '4000', FAILURE_RATE: '' };

  loadConfig(env);

  t.deepEqual(env, { API_PORT: '4000', FAILURE_RATE: '' });
});

test('when API_KEYS lists clients, then each has its hash and admin flag and auth is on', (t) => {
  const hash = 'a'.repeat(64);
  const config = loadConfig({ API_KEYS: `shop-1:${hash}, ops:${'b'.repeat(64)}:admin` });
  t.true(config.apiAuth);
  t.deepEqual(
    config.apiKeys.map((k) => ({ ...k })),
    [
      { clientId: 'shop-1', sha256: hash, admin: false },
      { clientId: 'ops', sha256: 'b'.repeat(64), admin: true },
    ],
  );
});

test('when API_KEYS is malformed, then the error names the variable but not the value', (t) => {
  const secret = 'shop-1:not-a-hash-but-maybe-a-real-key';
  const error = t.throws(() => loadConfig({ API_KEYS: secret }), { instanceOf: ConfigError });
  t.regex(error.message, /API_KEYS/);
  t.false(error.message.includes('not-a-hash'));
});

test('when NODE_ENV is production without API_KEYS, then the config refuses unless API_AUTH=off', (t) => {
  const error = t.throws(() => loadConfig({ NODE_ENV: 'production' }), { instanceOf: ConfigError });
  t.regex(error.message, /API_KEYS is required in production/);
  t.false(loadConfig({ NODE_ENV: 'production', API_AUTH: 'off' }).apiAuth);
  t.false(loadConfig({}).apiAuth, 'development without keys runs without authentication');
});

test('when API_KEYS names a client "public", then the config refuses it (the unauthenticated scope)', (t) => {
  const error = t.throws(() => loadConfig({ API_KEYS: `public:${'c'.repeat(64)}` }), { instanceOf: ConfigError });
  t.regex(error.message, /reserved/);
});

test('when no payment variable is set, then the simulated provider is chosen and the breaker has its defaults', (t) => {
  const config = loadConfig({});

  t.is(config.paymentProviderUrl, undefined);
  t.is(config.paymentTimeoutMs, 2000, 'docs/design.md: PAYMENT_TIMEOUT_MS defaults to 2000');
  t.is(config.paymentBreakerResetMs, 10_000);
  t.is(config.paymentBreakerWindowMs, 10_000);
  t.is(config.paymentBreakerErrorPercent, 50);
  t.is(config.paymentBreakerVolume, 5);
});

test('when the payment variables are set, then they are kept and converted', (t) => {
  const config = loadConfig({
    PAYMENT_PROVIDER_URL: 'http://127.0.0.1:3002',
    PAYMENT_TIMEOUT_MS: '500',
    PAYMENT_BREAKER_RESET_MS: '2500',
    PAYMENT_BREAKER_WINDOW_MS: '5000',
    PAYMENT_BREAKER_ERROR_PERCENT: '25',
    PAYMENT_BREAKER_VOLUME: '3',
  });

  t.is(config.paymentProviderUrl, 'http://127.0.0.1:3002');
  t.is(config.paymentTimeoutMs, 500);
  t.is(config.paymentBreakerResetMs, 2500);
  t.is(config.paymentBreakerWindowMs, 5000);
  t.is(config.paymentBreakerErrorPercent, 25);
  t.is(config.paymentBreakerVolume, 3);
});

test('when the payment variables are bad, then each is reported', (t) => {
  const env = {
    PAYMENT_PROVIDER_URL: 'ftp://payments.example.net',
    PAYMENT_TIMEOUT_MS: '0',
    PAYMENT_BREAKER_RESET_MS: 'soon',
    PAYMENT_BREAKER_WINDOW_MS: '10',
    PAYMENT_BREAKER_ERROR_PERCENT: '100',
    PAYMENT_BREAKER_VOLUME: '0',
  };

  t.deepEqual(variablesOf(rejectEnv(t, env)).sort(), Object.keys(env).sort());
  t.is(
    loadConfig({ PAYMENT_PROVIDER_URL: 'https://payments.example.net/v1' }).paymentProviderUrl,
    'https://payments.example.net/v1',
  );
});

const JWT_ENV = {
  JWT_JWKS_URL: 'https://idp.example/.well-known/jwks.json',
  JWT_ISSUER: 'https://idp.example/',
  JWT_AUDIENCE: 'orders-api',
};

test('when the JWT variables are set, then the config carries them with pinned algorithms and bounded skew', (t) => {
  const config = loadConfig({ ...JWT_ENV, NODE_ENV: 'production' });
  t.deepEqual(config.jwt, {
    jwksUrl: JWT_ENV.JWT_JWKS_URL,
    issuer: JWT_ENV.JWT_ISSUER,
    audience: JWT_ENV.JWT_AUDIENCE,
    clientIdClaim: 'sub',
    adminValue: 'orders:admin',
    algorithms: ['RS256', 'ES256'],
    clockSkewSeconds: 30,
  });
  t.true(config.apiAuth, 'JWTs alone turn authentication on (production needs no API_KEYS then)');
  t.is(config.authFailureLimit, 10);
  t.is(loadConfig({}).jwt, undefined);
});

test('when the JWT variables are incomplete or unsafe, then loadConfig names each', (t) => {
  const partial = rejectEnv(t, { JWT_JWKS_URL: JWT_ENV.JWT_JWKS_URL });
  t.regex(partial.problems[0], /JWT_JWKS_URL.*JWT_ISSUER, JWT_AUDIENCE/);
  for (const alg of ['HS256', 'none', 'RS256,HS512']) {
    t.deepEqual(variablesOf(rejectEnv(t, { ...JWT_ENV, JWT_ALGORITHMS: alg })), ['JWT_ALGORITHMS'], alg);
  }
  t.deepEqual(variablesOf(rejectEnv(t, { ...JWT_ENV, JWT_CLOCK_SKEW_SECONDS: '3600' })), ['JWT_CLOCK_SKEW_SECONDS']);
  t.deepEqual(variablesOf(rejectEnv(t, { AUTH_FAILURE_LIMIT: '-1' })), ['AUTH_FAILURE_LIMIT']);
  const clear = rejectEnv(t, { ...JWT_ENV, JWT_JWKS_URL: 'http://idp.example/jwks', NODE_ENV: 'production' });
  t.regex(clear.message, /JWT_JWKS_URL must be https in production/);
});
