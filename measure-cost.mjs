// One-off: per-order Redis commands and bytes, api and worker CPU, stored order BSON size.
import { readFileSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { Redis } from 'ioredis';
import { calculateObjectSize } from 'bson';
import { startFleet, createOrders } from './dist/test/helpers/fleet.js';
const PORT = 44900, N = Number(process.argv[2] ?? 400);
const rs = spawn('redis-server', ['--port', String(PORT), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
await new Promise((r) => setTimeout(r, 500));
const redis = new Redis(PORT, '127.0.0.1');
const fleet = await startFleet({ label: 'cost', workers: 1, health: false, env: { REDIS_URL: `redis://127.0.0.1:${PORT}`, RECONCILE_INTERVAL_MS: '15000', LOG_LEVEL: 'warn', PROCESSING_DELAY_MS: '0' } });
const cpu = (pid) => { const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' '); return (Number(f[11]) + Number(f[12])) * 10_000; }; // µs (100 Hz ticks)
const stats = async () => { const i = await redis.info('stats'); const g = (k) => Number(new RegExp(`${k}:(\\d+)`).exec(i)[1]); return { cmds: g('total_commands_processed'), inB: g('total_net_input_bytes'), outB: g('total_net_output_bytes') }; };
await createOrders(fleet.apiUrl, 20, 5); await new Promise((r) => setTimeout(r, 2000)); // warm up
const db = await fleet.db();
const base = await db.collection('orders').countDocuments({ status: 'PROCESSED' });
const s0 = await stats(); const a0 = cpu(fleet.api.pid), w0 = cpu(fleet.workers[0].pid);
await createOrders(fleet.apiUrl, N, 10);
for (;;) { if ((await db.collection('orders').countDocuments({ status: 'PROCESSED' })) >= base + N) break; await new Promise((r) => setTimeout(r, 200)); }
const s1 = await stats(); const a1 = cpu(fleet.api.pid), w1 = cpu(fleet.workers[0].pid);
const doc = await db.collection('orders').findOne({ status: 'PROCESSED' });
console.log(JSON.stringify({ at: new Date().toISOString(), orders: N, redisCommandsPerOrder: (s1.cmds - s0.cmds) / N, redisBytesInPerOrder: (s1.inB - s0.inB) / N, redisBytesOutPerOrder: (s1.outB - s0.outB) / N, apiCpuUsPerOrder: (a1 - a0) / N, workerCpuUsPerOrder: (w1 - w0) / N, storedOrderBsonBytes: calculateObjectSize(doc), redisUsedMemory: (await redis.info('memory')).match(/used_memory:(\d+)/)[1] }));
await fleet.cleanup(); redis.disconnect(); rs.kill(); process.exit(0);
