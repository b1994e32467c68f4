#!/usr/bin/env python3
"""Two ember-server replicas behind nginx with examples/server/deploy/nginx.conf (its ports and paths
moved into a temporary folder): 50 requests through nginx with one replica killed midway, every one
answered; requests with the same X-Conversation-Id land on the same replica.

    test_nginx.py EMBER_SERVER MODEL NGINX_CONF

Exit 77 (ctest's skip) when nginx is not installed (it is not installed by the scripts: Debian's package
starts a system service), unless EMBER_REQUIRE_FIXTURES is set."""
import concurrent.futures
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_server import Server, check  # noqa: E402

CONF = sys.argv[3]
NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)
if not NGINX:
    if os.environ.get("EMBER_REQUIRE_FIXTURES"):
        raise SystemExit("nginx is not installed")
    print("skipped: nginx is not installed (apt-get install nginx-light)")
    sys.exit(77)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def requests_of(replica):
    return int(float(re.search(r"^ember_requests_total (\S+)", replica.request("GET", "/metrics")[2], re.M).group(1)))


def main():
    tmp = tempfile.mkdtemp(prefix="ember-nginx-")
    replicas = [Server("--parallel", "2", "-c", "512"), Server("--parallel", "2", "-c", "512")]
    port = free_port()
    conf = open(CONF).read()
    conf = conf.replace("127.0.0.1:8081", f"127.0.0.1:{replicas[0].port}")
    conf = conf.replace("127.0.0.1:8082", f"127.0.0.1:{replicas[1].port}")
    conf = conf.replace("127.0.0.1:8080", f"127.0.0.1:{port}").replace("/tmp/ember-nginx", f"{tmp}/nginx")
    with open(f"{tmp}/nginx.conf", "w") as f:
        f.write(conf)
    nginx = subprocess.Popen([NGINX, "-c", f"{tmp}/nginx.conf", "-p", tmp, "-g", "daemon off;"],
                             stderr=subprocess.PIPE, text=True)
    try:
        front = Server.__new__(Server)  # a client of nginx, with the helpers of Server
        front.port = port
        deadline = time.time() + 10
        while True:
            try:
                if front.request("GET", "/health")[0] == 200:
                    break
            except OSError:
                pass
            check(time.time() < deadline and nginx.poll() is None, f"nginx did not start: {nginx.stderr.read() if nginx.poll() is not None else ''}")
            time.sleep(0.1)

        # Affinity: one conversation, one replica.
        before = [requests_of(r) for r in replicas]
        for _ in range(6):
            status, _, _ = front.post("/v1/completions", {"prompt": "Once", "max_tokens": 4},
                                      headers={"X-Conversation-Id": "conversation-42"})
            check(status == 200, status)
        grew = [requests_of(r) - b for r, b in zip(replicas, before)]
        check(sorted(grew) == [0, 6], f"one conversation stays on one replica: {grew}")

        # 50 requests, one replica killed after the 15th answer: every request is answered.
        done = []

        def one(i):
            status, _, r = front.post("/v1/completions", {"prompt": f"Story {i}:", "max_tokens": 48, "temperature": 0})
            done.append(status)
            if len(done) == 15:
                replicas[0].proc.kill()
            return status, r

        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            results = list(pool.map(one, range(50)))
        bad = [(s, r) for s, r in results if s != 200 or not r["choices"][0]["text"]]
        print(f"50 requests through nginx, replica 1 killed after 15: {50 - len(bad)} answered")
        check(replicas[0].proc.poll() is not None, "the replica was killed")
        check(not bad, f"unanswered: {bad[:3]}")
    finally:
        nginx.terminate()
        nginx.wait(timeout=10)
        for r in replicas:
            if r.proc.poll() is None:
                r.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    print("nginx: passed")


if __name__ == "__main__":
    main()
