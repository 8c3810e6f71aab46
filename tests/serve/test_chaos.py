"""The server under abuse, on the CPU engine: a thousand idle and trickling connections, each
HTTP limit, lying lengths, clients that vanish mid-body, malformed bodies, a flood over the
queue bound, SIGTERM under load, and kill -9 with a restart."""
import http.client
import json
import os
import resource
import signal
import socket
import threading
import time

import pytest

from conftest import (ROOT, Server, expected_text, image_base64, image_bytes, raw_exchange, serving,
                      status_of)

PNG = image_bytes("tiny.png")
DEMO = os.path.join(ROOT, "models", "demo")


def healthz_ms(port):
    start = time.perf_counter()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    connection.request("GET", "/healthz")
    assert connection.getresponse().status == 200
    connection.close()
    return (time.perf_counter() - start) * 1000


def recognize_png(server):
    return server.request("POST", "/v1/recognize", PNG, {"Content-Type": "image/png"})


def test_a_thousand_idle_and_trickling_connections_starve_nobody(cli):
    if resource.getrlimit(resource.RLIMIT_NOFILE)[1] < 2500:
        pytest.skip("this machine allows fewer than 2500 open files per process")
    with serving(cli, "--max-connections-per-client", "4000", "--header-timeout-s", "120",
                 "--idle-timeout-s", "120", "--access-log", "") as server:
        idle, trickling = [], []
        for i in range(1000):
            sock = socket.create_connection(("127.0.0.1", server.port))
            if i % 2:
                sock.sendall(b"POST /v1/recognize HTTP/1.1\r\nHost: x\r\nX-Slow: ")
                trickling.append(sock)
            else:
                idle.append(sock)
        stop = threading.Event()

        def trickle():  # one more header byte per connection every 100 ms
            while not stop.wait(0.1):
                for sock in trickling:
                    sock.send(b"a")
        trickler = threading.Thread(target=trickle)
        trickler.start()
        try:
            time.sleep(0.5)
            assert server.metric("trocr_open_connections") >= 1000
            latencies = sorted(healthz_ms(server.port) for _ in range(300))
            p99 = latencies[int(0.99 * len(latencies)) - 1]
            status, body, _ = recognize_png(server)
            assert status == 200 and body["results"][0]["text"] == expected_text("tiny.png")
            assert p99 <= 50, f"/healthz p99 {p99:.1f} ms with 1000 idle or trickling connections"
        finally:
            stop.set()
            trickler.join()
            for sock in idle + trickling:
                sock.close()
        print(f"/healthz with 1000 idle or trickling connections: p50 {latencies[150]:.2f} ms, p99 {p99:.2f} ms")


def test_each_http_limit(cli):
    with serving(cli, "--header-timeout-s", "1", "--body-timeout-s", "1", "--idle-timeout-s", "1",
                 "--max-header-kb", "4", "--max-request-mb", "1", "--access-log", "") as server:
        port = server.port
        start = time.time()  # a header that stops coming: closed after --header-timeout-s, counted as 408
        assert raw_exchange(port, b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: abc", read_timeout=10) == b""
        assert 0.5 < time.time() - start < 5

        start = time.time()
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            assert sock.recv(10) == b""  # an idle connection is closed after --idle-timeout-s
        assert 0.5 < time.time() - start < 5

        answer = raw_exchange(port, b"POST /v1/recognize HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\n"
                                    b"Content-Length: 999999999\r\n\r\nabc")
        assert status_of(answer) == 413, answer  # a lying length over the limit: at once
        start = time.time()  # a lying length under the limit: closed after --body-timeout-s
        answer = raw_exchange(port, b"POST /v1/recognize HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\n"
                                    b"Content-Length: 1000\r\n\r\nabc")
        assert answer == b"" and 0.5 < time.time() - start < 5, answer
        for _ in range(5):  # a client still sending the refused body reads the 413, not a reset
            status, answer, _ = server.request("POST", "/v1/recognize", b"\x89PNG" + bytes(2 << 20), {"Content-Type": "image/png"})
            assert status == 413 and "larger than 1048576 bytes" in answer["error"]
        answer = raw_exchange(port, b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 5000 + b"\r\n\r\n")
        assert status_of(answer) == 431, answer
        answer = raw_exchange(port, b"GARBAGE\r\n\r\n")
        assert status_of(answer) == 400, answer
        assert 'trocr_requests_total{code="408"} 2' in server.request("GET", "/metrics")[1]


def test_connection_limits_per_client_and_in_all(cli):
    for flags, limit in ((["--max-connections-per-client", "5"], "the limit per client"),
                         (["--max-connections", "5"], "its limit")):
        with serving(cli, *flags, "--access-log", "") as server:
            held = []
            for _ in range(5):  # each answered once, so that the server holds all five
                sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
                sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
                assert status_of(sock.recv(4096)) == 200
                held.append(sock)
            answer = raw_exchange(server.port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            assert status_of(answer) == 503 and limit.encode() in answer, answer
            held.pop().close()
            deadline = time.time() + 10  # until the server has seen that one closed
            while status_of(raw_exchange(server.port, b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")) != 200:
                assert time.time() < deadline
                time.sleep(0.05)
            for sock in held:
                sock.close()


def test_clients_vanishing_mid_body_leave_nothing_behind(cli):
    with serving(cli, "--access-log", "") as server:
        body = json.dumps({"image": image_base64("line_rgb.png")}).encode()
        for _ in range(50):
            sock = socket.create_connection(("127.0.0.1", server.port))
            sock.sendall(b"POST /v1/recognize HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                         + f"Content-Length: {len(body)}\r\n\r\n".encode() + body[:len(body) // 2])
            sock.close()
        deadline = time.time() + 10
        # Counted while /metrics answers: its own connection, and the last probe's if that is
        # not yet seen closed.
        while (open_now := server.metric("trocr_open_connections")) > 1 and time.time() < deadline:
            time.sleep(0.05)
        assert open_now == 1
        status, answer, _ = server.post_json("/v1/recognize", {"image": image_base64("line_rgb.png")})
        assert status == 200 and answer["results"][0]["text"] == expected_text("line_rgb.png")


def test_malformed_multipart_chunked_and_base64_bodies(cli):
    with serving(cli, "--access-log", "") as server:
        cases = [
            ({"Content-Type": "multipart/form-data"}, b"--x\r\n", "no usable boundary"),
            ({"Content-Type": "multipart/form-data; boundary=x"},
             b"--x\r\nContent-Disposition: form-data; name=\"a\"; filename=\"a.png\"\r\n\r\n" + PNG, "no closing delimiter"),
            ({"Content-Type": "multipart/form-data; boundary=x"}, b"--x\r\nNoColonHere\r\n\r\nabc\r\n--x--", "without ':'"),
            ({"Content-Type": "application/json"}, b'{"image": "####"}', "not base64"),
            ({"Content-Type": "application/json"}, b'{"image": ', "not JSON"),
        ]
        for headers, body, message in cases:
            status, answer, _ = server.request("POST", "/v1/recognize", body, headers)
            assert status == 400 and message in answer["error"], (message, answer)
        answer = raw_exchange(server.port, b"POST /v1/recognize HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\n"
                                           b"Transfer-Encoding: chunked\r\n\r\nZZ\r\nabc\r\n0\r\n\r\n")
        assert status_of(answer) == 400, answer
        # A well-formed chunked body is read.
        document = json.dumps({"image": image_base64("tiny.png")}).encode()
        chunks = b"".join(b"%x\r\n%s\r\n" % (len(document[i:i + 100]), document[i:i + 100])
                          for i in range(0, len(document), 100))
        answer = raw_exchange(server.port, b"POST /v1/recognize HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                                           b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
                                           + chunks + b"0\r\n\r\n")
        assert status_of(answer) == 200 and expected_text("tiny.png").encode() in answer, answer


def test_a_flood_over_the_queue_bound_gets_503s_and_memory_stays_flat(cli):
    with serving(cli, "--queue-size", "4", "--max-batch", "4", "--max-wait-ms", "50", "--access-log", "") as server:
        body = json.dumps({"images": [image_base64("tiny.png")] * 2}).encode()

        def flood():
            statuses = []
            lock = threading.Lock()

            def client():
                for _ in range(3):
                    status = server.request("POST", "/v1/recognize", body, {"Content-Type": "application/json"})[0]
                    with lock:
                        statuses.append(status)
            threads = [threading.Thread(target=client) for _ in range(32)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            return statuses
        resident = []
        for _ in range(4):
            statuses = flood()
            assert set(statuses) <= {200, 503} and statuses.count(200) > 0 and statuses.count(503) > 0, statuses
            resident.append(server.metric("process_resident_memory_bytes"))
        growth = (resident[-1] - resident[1]) / resident[1]
        assert growth < 0.05, f"resident memory {resident} grows by {growth:.1%} between floods"


def test_sigterm_under_load_answers_every_accepted_request(cli):
    server = Server(cli, "--max-batch", "4", "--max-wait-ms", "5", "--access-log", "")
    results = []  # (sent at, status or error)
    lock = threading.Lock()
    stop = threading.Event()

    def client():
        while not stop.is_set():
            sent = time.time()
            try:
                status = recognize_png(server)[0]
            except OSError as error:
                status = type(error).__name__
            with lock:
                results.append((sent, status))
    threads = [threading.Thread(target=client) for _ in range(16)]
    for thread in threads:
        thread.start()
    time.sleep(1.0)
    signalled = time.time()
    server.process.send_signal(signal.SIGTERM)
    code = server.process.wait(timeout=30)
    stop.set()
    for thread in threads:
        thread.join()
    server.stop()
    # Sent well before the signal: read by the server before it stopped taking requests.
    before = [status for sent, status in results if sent < signalled - 0.2]
    after = [status for sent, status in results if sent >= signalled - 0.2]
    assert code == 0 and "stopped" in "".join(server.lines)
    assert len(before) > 50 and set(before) == {200}, set(before)
    assert all(status in (200, 503) or isinstance(status, str) for status in after)


def test_kill_9_and_restart_is_not_ready_until_loaded(cli):
    """With the demo model (20 MB: its load takes long enough to be seen)."""
    first = Server(cli, "--access-log", "", model=DEMO)
    port = first.port
    first.process.kill()
    first.process.wait()
    first.stop()
    restarted = Server(cli, "--access-log", "", port=port, wait_ready=False, model=DEMO)
    seen = []
    try:
        while True:
            try:
                status = restarted.request("GET", "/readyz", timeout=2)[0]
            except OSError:
                status = "refused"
            if not seen or seen[-1] != status:
                seen.append(status)
            if status == 200:
                break
            assert len(seen) < 5 and restarted.process.poll() is None, seen
        status, answer, _ = recognize_png(restarted)
        assert status == 200 and answer["results"][0]["text"]
        assert seen[-1] == 200 and 503 in seen and all(s in ("refused", 503) for s in seen[:-1]), seen
    finally:
        restarted.stop()
    print("readyz after a restart:", seen)
