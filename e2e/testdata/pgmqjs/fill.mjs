// Fills PGMQ queues through pgmq-js, the JavaScript client from npm, as a
// producer written in JavaScript would: the end-to-end receiver test runs it
// (e2e/receiver_test.go) and then reads the depths through the Collector's
// pgmq receiver and Prometheus.
//
//   node fill.mjs '[{"queue":"orders","send":7,"read":2}]'
//
// Each entry creates the queue, sends `send` messages in one batch and reads
// `read` of them with a one-hour visibility timeout (in flight, so
// invisible). The connection comes from PGHOST, PGPORT, PGDATABASE, PGUSER
// and PGPASSWORD. It prints {"queues": [...]}: the queues pgmq-js lists.
import { Pgmq } from 'pgmq-js';

const spec = JSON.parse(process.argv[2] ?? '[]');
const pgmq = await Pgmq.new(
  {
    host: process.env.PGHOST ?? '127.0.0.1',
    port: Number(process.env.PGPORT ?? 5432),
    database: process.env.PGDATABASE ?? 'postgres',
    user: process.env.PGUSER ?? 'postgres',
    password: process.env.PGPASSWORD ?? '',
    ssl: false,
    max: 2,
  },
  // PGMQ is already installed (as an extension or from its SQL file).
  { skipExtensionCreation: true },
);
try {
  for (const { queue, send = 0, read = 0 } of spec) {
    await pgmq.queue.create(queue);
    if (send > 0) {
      const msgs = Array.from({ length: send }, (_, i) => ({ n: i, producer: 'pgmq-js' }));
      const ids = await pgmq.msg.sendBatch(queue, msgs);
      if (ids.length !== send) throw new Error(`${queue}: sent ${ids.length} of ${send}`);
    }
    if (read > 0) {
      const got = await pgmq.msg.readBatch(queue, 3600, read);
      if (got.length !== read) throw new Error(`${queue}: read ${got.length} of ${read}`);
    }
  }
  const queues = await pgmq.queue.list();
  console.log(JSON.stringify({ queues: queues.map((q) => q.name).sort() }));
} finally {
  await pgmq.close();
}
