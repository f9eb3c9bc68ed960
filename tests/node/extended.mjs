// MariaDB's extended capabilities as two Node drivers see them, against one server or proxy:
// the MariaDB connector's batch (COM_STMT_BULK_EXECUTE when bulk is negotiated) and JSON /
// geometry columns known from extended metadata (mysql2 and the MariaDB connector).
//
//   node extended.mjs <port> <user> <password> <database> <table>
//
// Prints one JSON object; exits non-zero on any driver error. The table must exist:
// (id INT PRIMARY KEY, name VARCHAR(20), doc JSON, geo POINT).
import mariadb from 'mariadb';
import mysql from 'mysql2/promise';

const [port, user, password, database, table] = process.argv.slice(2);
const base = { host: '127.0.0.1', port: Number(port), user, password, database };
const BULK = 1n << 34n;
const EXTENDED_METADATA = 1n << 35n;
const out = {};

const m = await mariadb.createConnection({ ...base, connectTimeout: 5000 });
out.bulk_negotiated = (m.info.clientCapabilities & BULK) !== 0n;
out.extended_metadata_negotiated = (m.info.clientCapabilities & EXTENDED_METADATA) !== 0n;
const rows = [1, 2, 3].map((i) => [i, `row ${i}`, JSON.stringify({ k: i }), `POINT(${i} ${i * 2})`]);
const batch = await m.batch(
  `INSERT INTO ${table} (id, name, doc, geo) VALUES (?, ?, ?, ST_GeomFromText(?))`,
  rows,
);
out.batch_affected_rows = Number(batch.affectedRows);
const read = await m.query(`SELECT id, name, doc, geo FROM ${table} ORDER BY id`);
out.mariadb_rows = read.map((r) => ({ id: r.id, name: r.name, doc: r.doc, geo: r.geo }));
await m.end();

const c = await mysql.createConnection(base);
const [text, fields] = await c.query(`SELECT doc, geo FROM ${table} ORDER BY id`);
out.mysql2_fields = fields.map((f) => ({
  name: f.name,
  extendedTypeName: f.extendedTypeName ?? null,
  extendedFormat: f.extendedFormat ?? null,
}));
out.mysql2_docs = text.map((r) => r.doc);
const [binary] = await c.execute(`SELECT doc FROM ${table} WHERE id = ?`, [2]);
out.mysql2_execute_doc = binary[0].doc;
await c.end();

console.log(JSON.stringify(out));
