// Both drivers with the compressed protocol on: node compress.mjs PORT USER PASSWORD DATABASE.
// Prints, as JSON, what each saw: row counts and checksums of a large result, a prepared
// statement with a 1 MiB parameter, and a multi-frame (> 16 MiB) statement.
import { createHash } from 'node:crypto';
import mariadb from 'mariadb';
import mysql from 'mysql2/promise';

const [port, user, password, database] = process.argv.slice(2);
const opts = { host: '127.0.0.1', port: Number(port), user, password, database, compress: true };
const digest = (rows) => createHash('sha256').update(JSON.stringify(rows)).digest('hex');
const big = 'b'.repeat(1 << 20);
const huge = 'h'.repeat(17 << 20);
const out = {};

const m = await mariadb.createConnection({ ...opts, maxAllowedPacket: 64 << 20 });
const mrows = await m.query('SELECT seq, REPEAT(\'m\', 50) AS pad FROM seq_1_to_30000');
const [mp] = await m.execute('SELECT LENGTH(?) AS n, MD5(?) AS h', [big, big]);
const [mh] = await m.query(`SELECT LENGTH('${huge}') AS n`);
out.mariadb = { rows: mrows.length, digest: digest(mrows.map((r) => [Number(r.seq), r.pad])), prepared: [mp.n, mp.h], huge: Number(mh.n) };
await m.end();

const c = await mysql.createConnection(opts);
const [crows] = await c.query('SELECT seq, REPEAT(\'m\', 50) AS pad FROM seq_1_to_30000');
const [[cp]] = await c.execute('SELECT LENGTH(?) AS n, MD5(?) AS h', [big, big]);
out.mysql2 = { rows: crows.length, digest: digest(crows.map((r) => [Number(r.seq), r.pad])), prepared: [cp.n, cp.h] };
await c.end();

console.log(JSON.stringify(out, (_, v) => (typeof v === 'bigint' ? Number(v) : v)));
