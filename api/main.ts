// First: starts tracing (when configured) before the modules it instruments load.
import { profiling, tracing } from './instrument.js';
import cluster from 'node:cluster';
import { setTimeout as sleep } from 'node:timers/promises';
import { createTerminus } from '@godaddy/terminus';
import {
  createLogContext,
  createLogger,
  installProcessHandlers,
  listen,
  loadConfig,
  runMain,
  redactUrl,
  describeRedisTopology,
  signalReady,
} from '#common';
import { createApiContainer } from './container.js';
import { createApiServer } from './http/api-server.js';
import { refuseOversizedContinue } from './http/json-body.js';

async function main(): Promise<void> {
  const config = loadConfig(process.env);
  const logContext = createLogContext();
  // In pm2's cluster mode only what goes through process.stdout reaches the app's log (a direct
  // write to fd 1 lands in pm2's own daemon log).
  const logger = createLogger({
    service: 'api',
    level: config.logLevel,
    context: logContext,
    destination: cluster.isWorker ? process.stdout : undefined,
    pretty: config.logPretty || process.stdout.isTTY === true,
  });
  installProcessHandlers({ logger });
  const container = createApiContainer({ config, logger, logContext });

  const server = createApiServer(container.app.callback(), { keepAliveTimeoutMs: config.httpKeepAliveTimeoutMs });
  refuseOversizedContinue(server, config.bodyLimit);
  const shutdown = new AbortController();
  // While draining, every answer asks the client to close its keep-alive connection, so no request
  // races onto a socket the server is about to close (pm2 reload, rolling updates).
  let draining = false;
  server.on('request', (_req, res) => {
    if (draining) res.setHeader('Connection', 'close');
  });
  createTerminus(server, {
    signals: ['SIGTERM', 'SIGINT'],
    timeout: config.shutdownTimeoutMs,
    useExit0: true,
    // The probes are the app's own routes (api/http/probes.ts): terminus merged their bodies.
    // From here readiness answers 503; keep serving for SHUTDOWN_DRAIN_MS so load balancers (or pm2's
    // cluster master) stop sending new connections before the server stops accepting them.
    beforeShutdown: async () => {
      draining = true;
      container.startDraining();
      if (config.shutdownDrainMs > 0) await sleep(config.shutdownDrainMs);
    },
    onSignal: async () => {
      shutdown.abort();
      logger.info('http server closed; closing connections');
      await container.close();
    },
    onShutdown: async () => {
      await tracing.shutdown();
      await profiling.stop();
      logger.info('api stopped');
      logger.flush();
    },
    logger: (msg, err) => logger.error({ err }, msg),
  });

  const port = await listen(server, config.apiPort);
  logger.info(
    { port, mongo: redactUrl(config.mongoUrl), redis: describeRedisTopology(config.redis) },
    `api listening on http://127.0.0.1:${port}`,
  );

  try {
    await container.connect(shutdown.signal);
    logger.info('MongoDB connected, indexes in place');
  } catch (err) {
    if (shutdown.signal.aborted) return; // stopped before MongoDB answered; terminus exits
    throw err;
  }
  // Ready for pm2 only once orders can be stored: a reload must not route traffic to an instance
  // that would answer 503. (The probes answer from the start, and report MongoDB until then.)
  signalReady();
}

runMain('api', main);
