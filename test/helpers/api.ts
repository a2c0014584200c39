import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createLogContext, createLogger, loadConfig, withTimeout, type Config } from '#common';
import { createApiContainer, type ApiContainer } from '../../api/container.js';
import { createApiServer } from '../../api/http/api-server.js';
import { refuseOversizedContinue } from '../../api/http/json-body.js';
import { testServices, uniqueName } from './services.js';

export interface TestApi {
  readonly baseUrl: string;
  readonly config: Config;
  readonly container: ApiContainer;
  readonly server: Server;
  /** Closes the server and connections and drops the test database. */
  close(): Promise<void>;
}

/**
 * The real api, built in-process on port 0 with its own database and queue prefix, against real
 * MongoDB and Redis. `env` overrides configuration variables.
 */
export async function startTestApi(label: string, env: Record<string, string> = {}): Promise<TestApi> {
  const services = await testServices();
  const name = uniqueName(label);
  const config = loadConfig({
    MONGO_URL: services.mongoUrl(name),
    REDIS_URL: services.redisUrl,
    QUEUE_PREFIX: name,
    LOG_LEVEL: 'silent',
    NODE_ENV: 'test',
    ...env,
  });
  const logContext = createLogContext();
  const logger = createLogger({ service: 'test', level: config.logLevel, context: logContext });
  const container = createApiContainer({ config, logger, logContext });
  await container.connect();
  const server = createApiServer(container.app.callback());
  refuseOversizedContinue(server, config.bodyLimit);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    baseUrl: `http://127.0.0.1:${port}`,
    config,
    container,
    server,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await container.mongo.dropDatabase().catch(() => undefined);
      // obliterate never settles while Redis is away; bound it.
      await withTimeout(container.queue.obliterate({ force: true }), 5000, 'obliterate timed out').catch(
        () => undefined,
      );
      await container.close();
    },
  };
}
