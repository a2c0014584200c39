import { startTcpProxy } from './tcp-proxy.js';

/** One Redis command as the client wrote it: its name (lower case) and arguments. */
export interface RecordedCommand {
  readonly name: string;
  readonly args: readonly string[];
}

/**
 * A TCP proxy in front of a real Redis that records what its clients send, grouped by round trip: one
 * entry per run of commands that reached the proxy with no reply from Redis in between. Commands a
 * client writes together (a pipeline, or several written before any reply is awaited) land in one
 * entry; a command sent after awaiting an earlier one's reply lands in the next. Listens on port 0.
 */
export async function startRedisRecordingProxy(target: { host: string; port: number }) {
  const writes: RecordedCommand[][] = [];
  const proxy = await startTcpProxy(target, (client, upstream) => {
    let pending = Buffer.alloc(0);
    /** Commands were sent and Redis has not replied since. */
    let open = false;
    client.on('data', (chunk: Buffer) => {
      pending = Buffer.concat([pending, chunk]);
      const commands: RecordedCommand[] = [];
      for (let parsed = parseCommand(pending); parsed; parsed = parseCommand(pending)) {
        commands.push(parsed.command);
        pending = pending.subarray(parsed.length);
      }
      // Still in the current round trip while Redis has not answered since its last command.
      if (open && writes.length > 0) writes[writes.length - 1].push(...commands);
      else writes.push(commands);
      open = commands.length > 0 || open;
    });
    upstream.on('data', () => {
      open = false;
    });
  });
  return {
    port: proxy.port,
    /** The round trips so far (oldest first), each with the commands sent in it. */
    writes: (): readonly RecordedCommand[][] => writes.filter((w) => w.length > 0),
    clear() {
      writes.length = 0;
    },
    close: proxy.close,
  };
}

/** A RESP array of bulk strings (what clients send) at the start of `buf`, or undefined if incomplete. */
function parseCommand(buf: Buffer): { command: RecordedCommand; length: number } | undefined {
  const line = (from: number) => {
    const end = buf.indexOf('\r\n', from);
    return end < 0 ? undefined : { text: buf.toString('latin1', from, end), next: end + 2 };
  };
  const head = line(0);
  if (!head?.text.startsWith('*')) return undefined;
  const parts: string[] = [];
  let at = head.next;
  for (let i = 0; i < Number(head.text.slice(1)); i++) {
    const size = line(at);
    if (!size?.text.startsWith('$')) return undefined;
    const end = size.next + Number(size.text.slice(1));
    if (buf.length < end + 2) return undefined;
    parts.push(buf.toString('utf8', size.next, end));
    at = end + 2;
  }
  const [name = '', ...args] = parts;
  return { command: { name: name.toLowerCase(), args }, length: at };
}
