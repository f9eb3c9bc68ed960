// caching_sha2_password's full authentication without TLS, with the server's RSA key:
// node rsa.mjs PORT USER PASSWORD DATABASE. mysql2 asks for the key by itself; the mariadb
// connector does with allowPublicKeyRetrieval. Prints the user each logged in as, as JSON.
import mariadb from 'mariadb';
import mysql from 'mysql2/promise';

const [port, user, password, database] = process.argv.slice(2);
const opts = { host: '127.0.0.1', port: Number(port), user, password, database };
const out = {};
const c = await mysql.createConnection(opts);
const [[row]] = await c.query('SELECT CURRENT_USER() AS u');
out.mysql2 = row.u.split('@')[0];
await c.end();
const m = await mariadb.createConnection({ ...opts, allowPublicKeyRetrieval: true });
out.mariadb = (await m.query('SELECT CURRENT_USER() AS u'))[0].u.split('@')[0];
await m.end();
console.log(JSON.stringify(out));
