"""Client workloads for benches/load.sh that sysbench does not have, with mysqlclient (the
driver Django uses):

  connect  PORT THREADS SECONDS    connect + SELECT 1 + close in a loop; prints "<n>/s"
           (over TLS, verifying the certificate, when BENCH_SSL_CA names the CA file)
  idle     PORT COUNT AUTOCOMMIT PROXY_PID SOCKETS...
           opens COUNT sessions (autocommit off or on, as mysqlclient leaves it), each runs one
           read, then all stay idle; prints how many were served, the proxy's RSS growth per
           session and the most backend connections any server had (counted through SOCKETS,
           the servers' unix sockets).

Every loop is bounded in count and time.
"""

import resource
import sys
import threading
import time

import os

import MySQLdb

USER, PASSWORD, DB = "app", "app", "rwtest"
SSL = {"ca": os.environ["BENCH_SSL_CA"]} if os.environ.get("BENCH_SSL_CA") else None


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def backend_connections(sockets):
    counts = []
    for sock in sockets:
        c = MySQLdb.connect(unix_socket=sock, user="root")
        cur = c.cursor()
        cur.execute("SELECT COUNT(*) FROM information_schema.processlist WHERE user = %s", (USER,))
        counts.append(cur.fetchone()[0])
        c.close()
    return counts


def connect_loop(port, threads, seconds):
    done = [0] * threads
    errors = []
    deadline = time.monotonic() + seconds

    def work(i):
        while time.monotonic() < deadline and done[i] < 10_000_000:
            try:
                c = MySQLdb.connect(host="127.0.0.1", port=port, user=USER, password=PASSWORD, database=DB, ssl=SSL)
                cur = c.cursor()
                cur.execute("SELECT 1")
                cur.fetchall()
                c.close()
                done[i] += 1
            except MySQLdb.Error as e:
                errors.append(str(e))
                if len(errors) > 100:
                    return

    ts = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    if errors:
        print(f"errors: {len(errors)} (first: {errors[0]})", file=sys.stderr)
    print(f"{sum(done) / seconds:.1f}/s")


def idle(port, count, autocommit, proxy_pid, sockets):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, count + 1000), hard))
    before = rss_kib(proxy_pid)
    sessions, errors, peak = [], [], [0] * len(sockets)
    deadline = time.monotonic() + 300
    for i in range(count):
        if time.monotonic() > deadline:
            errors.append("time limit")
            break
        try:
            c = MySQLdb.connect(host="127.0.0.1", port=port, user=USER, password=PASSWORD, database=DB)
            if autocommit:
                c.autocommit(True)
            cur = c.cursor()
            cur.execute("SELECT k FROM sbtest1 WHERE id = %s", (i % 1000 + 1,))
            cur.fetchall()
            if not autocommit:
                c.commit()
            sessions.append(c)
        except MySQLdb.Error as e:
            errors.append(str(e))
            if len(errors) > 5:
                break
        if i % 500 == 499:
            peak = [max(a, b) for a, b in zip(peak, backend_connections(sockets))]
    time.sleep(1)
    after = rss_kib(proxy_pid)
    peak = [max(a, b) for a, b in zip(peak, backend_connections(sockets))]
    per = (after - before) / max(len(sessions), 1)
    print(f"served {len(sessions)}/{count}, errors {len(errors)}{' (first: ' + errors[0] + ')' if errors else ''}")
    print(f"proxy RSS {before} -> {after} KiB: {per:.1f} KiB per idle session")
    print(f"backend connections, most seen per server: {peak}")
    for c in sessions:
        c.close()


def main():
    mode = sys.argv[1]
    if mode == "connect":
        connect_loop(int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]))
    elif mode == "idle":
        idle(int(sys.argv[2]), int(sys.argv[3]), sys.argv[4] == "on", int(sys.argv[5]), sys.argv[6:])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
