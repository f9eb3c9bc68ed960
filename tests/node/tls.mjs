// Connects with both drivers over TLS, verifying the proxy's certificate against the test CA:
// node tls.mjs PORT USER PASSWORD DATABASE CA_FILE. Prints what each driver saw as JSON.
import { readFileSync } from 'node:fs';
import mariadb from 'mariadb';
import mysql from 'mysql2/promise';

const [port, user, password, database, caFile] = process.argv.slice(2);
const ca = readFileSync(caFile, 'utf8');
const out = {};

const m = await mariadb.createConnection({
  host: '127.0.0.1', port: Number(port), user, password, database,
  ssl: { ca, rejectUnauthorized: true },
});
out.mariadb = (await m.query('SELECT 1 + 1 AS two'))[0].two;
await m.end();

const c = await mysql.createConnection({
  host: '127.0.0.1', port: Number(port), user, password, database,
  ssl: { ca, rejectUnauthorized: true },
});
const [rows] = await c.query('SELECT 2 + 2 AS four');
out.mysql2 = rows[0].four;
out.mysql2_cipher = c.connection.stream.getCipher?.()?.version ?? null;
await c.end();

console.log(JSON.stringify(out));
