// First: starts tracing (when configured) before the modules it instruments load.
import { profiling, tracing } from './instrument.js';
import { hostname } from 'node:os';
import {
  createLogContext,
  createMetricsServer,
  createLogger,
  installProcessHandlers,
  listen,
  loadConfig,
  runMain,
  redactUrl,
  describeRedisTopology,
  signalReady,
  ORDERS_QUEUE,
  withTimeout,
} from '#common';
import { createWorkerContainer } from './container.js';
import { HAND_BACK_MS, SHUTDOWN_SLACK_MS } from './settings.js';

async function main(): Promise<void> {
  const config = loadConfig(process.env);
  const workerId = `${hostname()}:${process.pid}`;
  const logContext = createLogContext();
  const logger = createLogger({
    service: 'worker',
    level: config.logLevel,
    context: logContext,
    pretty: config.logPretty || process.stdout.isTTY === true,
  }).child({ workerId });
  const container = createWorkerContainer({ config, logger, logContext, workerId });
  const metricsServer =
    config.workerMetricsPort > 0 ? createMetricsServer(container.registry, container.profileRoute) : undefined;
  const stopping = new AbortController();

  installProcessHandlers({
    logger,
    onFirstSignal: () => {
      stopping.abort();
      const bound = config.shutdownTimeoutMs + HAND_BACK_MS + SHUTDOWN_SLACK_MS;
      void withTimeout(container.close(config.shutdownTimeoutMs), bound, `shutdown did not finish within ${bound} ms`)
        .catch((err: unknown) => {
          logger.warn(
            { err },
            'shutdown bound passed with connections still closing (Redis or MongoDB away?); exiting anyway',
          );
          return false;
        })
        .then(async (finished) => {
          metricsServer?.close();
          await tracing.shutdown();
          await profiling.stop();
          logger.info({ allJobsFinished: finished }, 'worker stopped');
          logger.flush();
          process.exit(0);
        });
    },
  });

  if (metricsServer) {
    const port = await listen(metricsServer, config.workerMetricsPort + config.instance);
    logger.info({ port }, `worker metrics on http://127.0.0.1:${port}/metrics`);
  }

  try {
    await container.connect(stopping.signal);
  } catch (err) {
    if (stopping.signal.aborted) return; // stopped before MongoDB answered; the signal handler exits
    throw err;
  }
  await container.start();
  logger.info(
    {
      concurrency: config.workerConcurrency,
      queue: ORDERS_QUEUE,
      prefix: config.queuePrefix,
      mongo: redactUrl(config.mongoUrl),
      redis: describeRedisTopology(config.redis),
    },
    'worker running',
  );
  signalReady();
}

runMain('worker', main);
