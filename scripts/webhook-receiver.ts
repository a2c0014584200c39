/**
 * A webhook receiver for local runs (`npm start` starts one; or `node dist/scripts/webhook-receiver.js`):
 * verifies each delivery with the `standardwebhooks` library and logs it. WEBHOOK_SECRET (the first
 * of a comma-separated list) must be the fleet's; WEBHOOK_RECEIVER_PORT picks the port (default 3003).
 */
import { startWebhookReceiver } from './lib/webhook-receiver.js';

const secret = (process.env.WEBHOOK_SECRET ?? '').split(',')[0]?.trim() ?? '';
if (!secret.startsWith('whsec_')) {
  process.stderr.write("WEBHOOK_SECRET must be set (whsec_…), the same as the fleet's\n");
  process.exit(2);
}
const receiver = await startWebhookReceiver({
  secret,
  port: Number(process.env.WEBHOOK_RECEIVER_PORT ?? 3003),
  onDelivery: (d) =>
    process.stdout.write(
      `${JSON.stringify(
        d.event
          ? {
              msg: 'webhook verified',
              webhookId: d.webhookId,
              type: d.event.type,
              orderId: d.event.data.id,
              status: d.event.data.status,
            }
          : { msg: 'webhook REFUSED (signature)', webhookId: d.webhookId, error: d.error },
      )}\n`,
    ),
});
process.stdout.write(`${JSON.stringify({ msg: `webhook receiver on ${receiver.url}`, port: receiver.port })}\n`);
const stop = () => void receiver.close().then(() => process.exit(0));
process.once('SIGINT', stop);
process.once('SIGTERM', stop);
