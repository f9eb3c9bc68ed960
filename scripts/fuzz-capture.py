#!/usr/bin/env python3
"""Captures seed corpora for the fuzz targets from real peers (run once; the files are
committed under fuzz/corpus/):

- what real clients send (mysqlclient, PyMySQL, the mariadb CLI) to a listener that plays a
  server: handshake responses and commands;
- what a real MariaDB server (127.0.0.1:3306, root, empty password) answers to a set of
  statements: whole replies, frames with their headers;
- statement texts (mariadb-dump of the mysql schema, and the statements used above);
- the ProxySQL config of the importer's test.
Usage: scripts/fuzz-capture.py  (from the repository root)
"""
import hashlib, os, re, socket, struct, subprocess, threading, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CORPUS = os.path.join(ROOT, "fuzz", "corpus")

def save(target, data):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, hashlib.sha1(data).hexdigest()[:16]), "wb") as f:
        f.write(data)

def packet(seq, payload):
    return struct.pack("<I", len(payload))[:3] + bytes([seq]) + payload

def read_packet(c):
    head = b""
    while len(head) < 4:
        b = c.recv(4 - len(head))
        if not b:
            return None, None
        head += b
    n = head[0] | head[1] << 8 | head[2] << 16
    body = b""
    while len(body) < n:
        b = c.recv(n - len(body))
        if not b:
            return None, None
        body += b
    return head, body

STATEMENTS = [
    "SELECT 1", "SELECT @@version, @@server_id", "SET NAMES utf8mb4",
    "SET autocommit=0", "START TRANSACTION READ ONLY", "COMMIT",
    "SELECT * FROM information_schema.tables WHERE table_schema = 'mysql' LIMIT 3",
    "SHOW WARNINGS", "SELECT 1; SELECT 2", "DO SLEEP(0)", "SELECT NULL, 'x', 1.5, NOW()",
    "/*!40101 SET @OLD_CHARACTER_SET_CLIENT=@@CHARACTER_SET_CLIENT */",
    "/*M!999999\\- enable the sandbox mode */ SELECT 1",
    "SELECT * FROM nope", "SELECT ... broken",
]

def fake_server(port_holder, done):
    s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(8)
    port_holder.append(s.getsockname()[1])
    s.settimeout(10)
    while not done.is_set():
        try:
            c, _ = s.accept()
        except socket.timeout:
            break
        threading.Thread(target=serve_client, args=(c,), daemon=True).start()

def serve_client(c):
    caps = 0xffffffff & ~(1 << 11) & ~(1 << 5) & ~(1 << 0)
    greet = (bytes([10]) + b"10.11.6-MariaDB\0" + struct.pack("<I", 7) + b"abcdefgh\0"
             + struct.pack("<H", caps & 0xffff) + bytes([45]) + struct.pack("<H", 2)
             + struct.pack("<H", caps >> 16) + bytes([21]) + b"\0" * 6 + struct.pack("<I", 0)
             + b"ijklmnopqrst\0" + b"mysql_native_password\0")
    c.sendall(packet(0, greet))
    head, body = read_packet(c)
    if body is None:
        return
    save("handshake_response", body)
    save("client_packets", head + body)
    c.sendall(packet(2, b"\x00\x00\x00\x02\x00\x00\x00"))
    while True:
        head, body = read_packet(c)
        if body is None:
            return
        save("command", body)
        save("client_packets", head + body)
        if body[:1] == b"\x01":
            return
        c.sendall(packet(1, b"\x00\x00\x00\x02\x00\x00\x00"))

def capture_clients():
    ports, done = [], threading.Event()
    t = threading.Thread(target=fake_server, args=(ports, done), daemon=True); t.start()
    while not ports:
        time.sleep(0.05)
    port = ports[0]
    try:
        import MySQLdb
        c = MySQLdb.connect(host="127.0.0.1", port=port, user="app", passwd="app", db="rwtest", connect_timeout=3)
        cur = c.cursor()
        for q in STATEMENTS[:6]:
            try: cur.execute(q)
            except Exception: pass
        c.close()
    except Exception as e:
        print("mysqlclient:", e)
    try:
        import pymysql
        c = pymysql.connect(host="127.0.0.1", port=port, user="app", password="app", database="rwtest", connect_timeout=3)
        cur = c.cursor()
        for q in STATEMENTS[:4]:
            try: cur.execute(q)
            except Exception: pass
        c.close()
    except Exception as e:
        print("PyMySQL:", e)
    subprocess.run(["mariadb", "-h127.0.0.1", f"-P{port}", "-uapp", "-papp", "rwtest", "-e", "SELECT 1; USE x"],
                   capture_output=True, timeout=10)
    done.set()

def capture_server_replies():
    c = socket.create_connection(("127.0.0.1", 3306), timeout=3)
    head, greet = read_packet(c)
    caps = (1 << 9) | (1 << 15) | (1 << 19) | (1 << 16) | (1 << 17) | (1 << 23)
    resp = struct.pack("<IIB", caps | (1 << 24), 1 << 24, 45) + b"\0" * 23 + b"root\0" + b"\0" + b"mysql_native_password\0"
    c.sendall(packet(1, resp))
    head, ok = read_packet(c)
    for q in STATEMENTS:
        c.sendall(packet(0, b"\x03" + q.encode()))
        time.sleep(0.15)
        c.settimeout(0.3)
        data = b""
        try:
            while True:
                b = c.recv(65536)
                if not b:
                    break
                data += b
        except socket.timeout:
            pass
        if data:
            save("reply_tracker", data)
    c.close()

def capture_statements():
    for q in STATEMENTS:
        save("classify", q.encode())
    dump = subprocess.run(["mariadb-dump", "-h127.0.0.1", "-P3306", "-uroot", "--no-data", "mysql"],
                          capture_output=True, timeout=30).stdout.decode(errors="replace")
    for stmt in [s.strip() for s in dump.split(";\n") if s.strip()][:120]:
        save("classify", stmt.encode())

def capture_import():
    src = open(os.path.join(ROOT, "tests", "it", "import.rs")).read()
    start = src.index('r#"') + 3
    text = src[start:src.index('"#', start)].replace("{{", "\x00").replace("}}", "\x01")
    text = re.sub(r"\{[^}]*\}", "3306", text).replace("\x00", "{").replace("\x01", "}")
    save("import", text.encode())

if __name__ == "__main__":
    capture_clients()
    capture_server_replies()
    capture_statements()
    capture_import()
    for t in sorted(os.listdir(CORPUS)):
        print(t, len(os.listdir(os.path.join(CORPUS, t))))
