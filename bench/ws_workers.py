#!/usr/bin/env python3
"""N fake workers on one master: how much master memory do idle worker connections cost?

Stdlib only. Opens N WebSocket connections to the master's worker port (HTTP upgrade written
by hand, Basic auth), and on each one answers the master's msgpack requests the way the stock
buildbot-worker 4.3.0 does (spec: ../shared/spec/worker-protocol.md): print, keepalive,
get_worker_info, set_worker_settings, interrupt_command, shutdown -> nil; start_command ->
nil, then `update` [["rc", 0]] (+ "files" for listdir) and `complete` nil.

Sequence: master VmRSS before -> attach N (at most --concurrency handshakes in flight) ->
wait (bounded) until GET /api/v2/workers shows every one connected -> VmRSS -> keep them
idle --idle seconds (keepalives answered) -> VmRSS + REST check again -> JSON on --out.
"""
import argparse
import asyncio
import base64
import json
import os
import struct
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from procstat import cpu_ticks, status_kb  # noqa: E402

CLK = os.sysconf("SC_CLK_TCK")


# ---------------------------------------------------------------- tiny msgpack (subset)
def mp_pack(o, out):
    if o is None:
        out.append(0xC0)
    elif o is True:
        out.append(0xC3)
    elif o is False:
        out.append(0xC2)
    elif isinstance(o, int):
        if 0 <= o < 128:
            out.append(o)
        elif -32 <= o < 0:
            out.append(o & 0xFF)
        elif 0 <= o < 1 << 64:
            out += b"\xcf" + struct.pack(">Q", o)
        else:
            out += b"\xd3" + struct.pack(">q", o)
    elif isinstance(o, float):
        out += b"\xcb" + struct.pack(">d", o)
    elif isinstance(o, str):
        b = o.encode()
        n = len(b)
        if n < 32:
            out.append(0xA0 | n)
        elif n < 256:
            out += bytes((0xD9, n))
        elif n < 65536:
            out += b"\xda" + struct.pack(">H", n)
        else:
            out += b"\xdb" + struct.pack(">I", n)
        out += b
    elif isinstance(o, (bytes, bytearray)):
        n = len(o)
        if n < 256:
            out += bytes((0xC4, n))
        elif n < 65536:
            out += b"\xc5" + struct.pack(">H", n)
        else:
            out += b"\xc6" + struct.pack(">I", n)
        out += o
    elif isinstance(o, (list, tuple)):
        n = len(o)
        if n < 16:
            out.append(0x90 | n)
        elif n < 65536:
            out += b"\xdc" + struct.pack(">H", n)
        else:
            out += b"\xdd" + struct.pack(">I", n)
        for x in o:
            mp_pack(x, out)
    elif isinstance(o, dict):
        n = len(o)
        if n < 16:
            out.append(0x80 | n)
        elif n < 65536:
            out += b"\xde" + struct.pack(">H", n)
        else:
            out += b"\xdf" + struct.pack(">I", n)
        for k, v in o.items():
            mp_pack(k, out)
            mp_pack(v, out)
    else:
        raise TypeError(type(o))
    return out


def packb(o):
    return bytes(mp_pack(o, bytearray()))


def mp_unpack(b, i=0):
    """-> (value, next index)"""
    t = b[i]
    i += 1
    if t < 0x80:
        return t, i
    if t >= 0xE0:
        return t - 256, i
    if 0x80 <= t <= 0x8F:
        return _map(b, i, t & 0x0F)
    if 0x90 <= t <= 0x9F:
        return _arr(b, i, t & 0x0F)
    if 0xA0 <= t <= 0xBF:
        n = t & 0x1F
        return b[i:i + n].decode("utf-8", "replace"), i + n
    if t == 0xC0:
        return None, i
    if t == 0xC2:
        return False, i
    if t == 0xC3:
        return True, i
    fixed = {0xCC: ">B", 0xCD: ">H", 0xCE: ">I", 0xCF: ">Q", 0xD0: ">b", 0xD1: ">h", 0xD2: ">i",
             0xD3: ">q", 0xCA: ">f", 0xCB: ">d"}
    if t in fixed:
        f = fixed[t]
        n = struct.calcsize(f)
        return struct.unpack_from(f, b, i)[0], i + n
    lens = {0xD9: (">B", "s"), 0xDA: (">H", "s"), 0xDB: (">I", "s"), 0xC4: (">B", "b"),
            0xC5: (">H", "b"), 0xC6: (">I", "b"), 0xDC: (">H", "a"), 0xDD: (">I", "a"),
            0xDE: (">H", "m"), 0xDF: (">I", "m")}
    if t in lens:
        f, kind = lens[t]
        n = struct.unpack_from(f, b, i)[0]
        i += struct.calcsize(f)
        if kind == "s":
            return b[i:i + n].decode("utf-8", "replace"), i + n
        if kind == "b":
            return bytes(b[i:i + n]), i + n
        if kind == "a":
            return _arr(b, i, n)
        return _map(b, i, n)
    ext = {0xD4: 1, 0xD5: 2, 0xD6: 4, 0xD7: 8, 0xD8: 16}
    if t in ext:
        return None, i + 1 + ext[t]
    if t in (0xC7, 0xC8, 0xC9):
        f = {0xC7: ">B", 0xC8: ">H", 0xC9: ">I"}[t]
        n = struct.unpack_from(f, b, i)[0]
        return None, i + struct.calcsize(f) + 1 + n
    raise ValueError("bad msgpack type byte 0x%02x" % t)


def _arr(b, i, n):
    out = []
    for _ in range(n):
        v, i = mp_unpack(b, i)
        out.append(v)
    return out, i


def _map(b, i, n):
    out = {}
    for _ in range(n):
        k, i = mp_unpack(b, i)
        v, i = mp_unpack(b, i)
        out[k] = v
    return out, i


def unpackb(b):
    v, i = mp_unpack(b, 0)
    if i != len(b):
        raise ValueError("trailing bytes")
    return v


# ---------------------------------------------------------------- WebSocket client (RFC 6455)
COMMANDS = ["shell", "uploadFile", "upload_file", "uploadDirectory", "upload_directory",
            "downloadFile", "download_file", "mkdir", "rmdir", "cpdir", "stat", "glob",
            "listdir", "rmfile"]


class FakeWorker:
    def __init__(self, name, password, host, port, stats):
        self.name, self.password, self.host, self.port = name, password, host, port
        self.stats = stats
        self.seq = 0
        self.reader = self.writer = None
        self.attached = asyncio.get_event_loop().create_future()
        self.closed = False

    async def connect(self, timeout):
        self.reader, self.writer = await asyncio.wait_for(
            asyncio.open_connection(self.host, self.port), timeout)
        key = base64.b64encode(os.urandom(16)).decode()
        auth = base64.b64encode(f"{self.name}:{self.password}".encode()).decode()
        self.writer.write((f"GET / HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
                           "Upgrade: WebSocket\r\nConnection: Upgrade\r\n"
                           f"Authorization: Basic {auth}\r\nSec-WebSocket-Key: {key}\r\n"
                           "Sec-WebSocket-Version: 13\r\n\r\n").encode())
        head = await asyncio.wait_for(self.reader.readuntil(b"\r\n\r\n"), timeout)
        status = head.split(b"\r\n", 1)[0]
        if b" 101 " not in status + b" ":
            raise ConnectionError(f"{self.name}: upgrade refused: {status.decode(errors='replace')}")

    def send(self, msg):
        payload = packb(msg)
        n = len(payload)
        if n < 126:
            hdr = bytes((0x82, 0x80 | n))
        elif n < 65536:
            hdr = bytes((0x82, 0x80 | 126)) + struct.pack(">H", n)
        else:
            hdr = bytes((0x82, 0x80 | 127)) + struct.pack(">Q", n)
        mask = os.urandom(4)
        rep = (mask * (n // 4 + 1))[:n]
        masked = (int.from_bytes(payload, "big") ^ int.from_bytes(rep, "big")).to_bytes(n, "big")
        self.writer.write(hdr + mask + masked)

    def send_raw_frame(self, opcode, payload):
        n = len(payload)
        mask = os.urandom(4)
        masked = bytes(c ^ mask[i % 4] for i, c in enumerate(payload))
        self.writer.write(bytes((0x80 | opcode, 0x80 | n)) + mask + masked)

    async def read_frames(self):
        buf = b""
        r = self.reader
        while True:
            h = await r.readexactly(2)
            fin, op, n = h[0] & 0x80, h[0] & 0x0F, h[1] & 0x7F
            if n == 126:
                n = struct.unpack(">H", await r.readexactly(2))[0]
            elif n == 127:
                n = struct.unpack(">Q", await r.readexactly(8))[0]
            mask = await r.readexactly(4) if h[1] & 0x80 else None
            data = await r.readexactly(n) if n else b""
            if mask:
                data = bytes(c ^ mask[i % 4] for i, c in enumerate(data))
            if op == 0x8:  # close: echo it and stop
                try:
                    self.send_raw_frame(0x8, data[:2])
                except Exception:  # noqa: BLE001
                    pass
                return
            if op == 0x9:
                self.send_raw_frame(0xA, data)
                continue
            if op == 0xA:
                continue
            buf += data
            if fin:
                if op in (0x2, 0x0):
                    yield buf
                buf = b""

    def request(self, op, **kw):
        msg = {"op": op, "seq_number": self.seq}
        msg.update(kw)
        self.seq += 1
        self.send(msg)

    def answer(self, seq, result=None, exc=False):
        msg = {"op": "response", "seq_number": seq, "result": result}
        if exc:
            msg["is_exception"] = True
        self.send(msg)

    async def run(self):
        st = self.stats
        try:
            async for frame in self.read_frames():
                msg = unpackb(frame)
                op, seq = msg.get("op"), msg.get("seq_number")
                st["ops"][op] = st["ops"].get(op, 0) + 1
                if op == "response":
                    continue
                if op in ("print", "keepalive", "set_worker_settings", "interrupt_command",
                          "shutdown"):
                    self.answer(seq)
                    if op == "keepalive":
                        st["keepalives_answered"] += 1
                elif op == "get_worker_info":
                    self.answer(seq, {"basedir": f"/tmp/fakeworker/{self.name}", "system": "posix",
                                      "environ": {}, "numcpus": 1, "version": "4.3.0",
                                      "worker_commands": {c: "3.3" for c in COMMANDS},
                                      "delete_leftover_dirs": 0})
                elif op == "start_command":
                    cid, name = msg.get("command_id"), msg.get("command_name")
                    self.answer(seq)
                    upd = [["files", []]] if name == "listdir" else []
                    upd.append(["rc", 0])
                    self.request("update", command_id=cid, args=upd)
                    self.request("complete", command_id=cid, args=None)
                    if name == "mkdir" and not self.attached.done():
                        self.attached.set_result(time.monotonic())
                else:
                    self.answer(seq, f"Command {op} does not exist.", exc=True)
                await self.writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, OSError):
            pass
        finally:
            self.closed = True
            st["closed"] += 1


def rest_workers(base_url):
    """-> (total workers, connected workers) from GET /api/v2/workers (paged by 1000)."""
    total = connected = 0
    offset = 0
    while True:
        req = urllib.request.Request(f"{base_url}/api/v2/workers?limit=1000&offset={offset}",
                                     headers={"Accept": "application/json"})
        with urllib.request.urlopen(req, timeout=30) as r:
            rows = json.load(r)["workers"]
        total += len(rows)
        connected += sum(1 for w in rows if w.get("connected_to"))
        if len(rows) < 1000:
            return total, connected
        offset += 1000


def rss_kb(pid):
    return {"VmRSS": status_kb(pid, "VmRSS"), "RssAnon": status_kb(pid, "RssAnon"),
            "VmHWM": status_kb(pid, "VmHWM"), "threads": status_kb(pid, "Threads")}


def fds(pid):
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return None


async def main_async(a):
    pid = a.master_pid
    stats = {"ops": {}, "keepalives_answered": 0, "closed": 0}
    out = {"n": a.count, "idle_s": a.idle, "concurrency": a.concurrency}
    await asyncio.sleep(a.settle)
    out["master_before"] = rss_kb(pid)
    out["master_fds_before"] = fds(pid)
    cpu0 = cpu_ticks(pid)
    names = [f"{a.prefix}{i:04d}" for i in range(a.count)]
    workers = [FakeWorker(n, a.password, a.host, a.port, stats) for n in names]
    sem = asyncio.Semaphore(a.concurrency)
    errors = []
    attach_s = []
    tasks = []

    async def one(w):
        async with sem:
            t = time.monotonic()
            try:
                await w.connect(30)
                tasks.append(asyncio.ensure_future(w.run()))
                done = await asyncio.wait_for(w.attached, 60)
                attach_s.append(done - t)
            except Exception as e:  # noqa: BLE001
                errors.append(f"{w.name}: {e!r}")

    t0 = time.monotonic()
    await asyncio.gather(*(one(w) for w in workers))
    out["attach_wall_s"] = round(time.monotonic() - t0, 3)
    out["attach_errors"] = len(errors)
    out["attach_error_samples"] = errors[:5]
    attach_s.sort()
    if attach_s:
        out["attach_latency_ms"] = {"p50": round(1000 * attach_s[len(attach_s) // 2], 1),
                                    "p99": round(1000 * attach_s[int(len(attach_s) * 0.99) - 1], 1),
                                    "max": round(1000 * attach_s[-1], 1)}
    # every fake worker answered mkdir; now REST must show them all connected (bounded wait)
    deadline = time.monotonic() + a.timeout
    total = connected = -1
    while time.monotonic() < deadline:
        try:
            total, connected = await asyncio.get_event_loop().run_in_executor(None, rest_workers, a.base_url)
        except Exception as e:  # noqa: BLE001
            print(f"[ws_workers] REST error: {e!r}", file=sys.stderr)
        if connected >= a.count:
            break
        await asyncio.sleep(0.5)
    out["rest_after_attach"] = {"workers": total, "connected": connected}
    out["rest_all_connected_s"] = round(time.monotonic() - t0, 3)
    await asyncio.sleep(1.0)
    out["master_attached"] = rss_kb(pid)
    out["master_fds_attached"] = fds(pid)
    cpu1 = cpu_ticks(pid)
    print(f"[ws_workers] {connected}/{a.count} connected per REST; master VmRSS "
          f"{out['master_before']['VmRSS']} -> {out['master_attached']['VmRSS']} kB; idling {a.idle}s",
          file=sys.stderr, flush=True)
    ka0 = stats["keepalives_answered"]
    samples = []
    t_idle = time.monotonic()
    while time.monotonic() - t_idle < a.idle:
        await asyncio.sleep(min(5, a.idle))
        samples.append(status_kb(pid, "VmRSS"))
    out["master_idle_rss_samples_kb"] = samples
    out["master_after_idle"] = rss_kb(pid)
    cpu2 = cpu_ticks(pid)
    out["keepalives_answered_during_idle"] = stats["keepalives_answered"] - ka0
    total, connected = await asyncio.get_event_loop().run_in_executor(None, rest_workers, a.base_url)
    out["rest_after_idle"] = {"workers": total, "connected": connected}
    out["client_side_closed"] = stats["closed"]
    out["ops_received"] = stats["ops"]
    out["master_cpu_s"] = {"attach": round((cpu1 - cpu0) / CLK, 2), "idle": round((cpu2 - cpu1) / CLK, 2)}
    b = out["master_before"]["VmRSS"]
    out["extra_rss_kb"] = {"attached": out["master_attached"]["VmRSS"] - b,
                           "after_idle": out["master_after_idle"]["VmRSS"] - b}
    out["extra_rss_per_conn_kb"] = {k: round(v / a.count, 2) for k, v in out["extra_rss_kb"].items()}
    for w in workers:
        if w.writer:
            w.writer.close()
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True, help="master worker (pb) port")
    ap.add_argument("--base-url", required=True)
    ap.add_argument("--master-pid", type=int, required=True)
    ap.add_argument("--count", type=int, default=1000)
    ap.add_argument("--prefix", default="w")
    ap.add_argument("--password", default="pw")
    ap.add_argument("--concurrency", type=int, default=50, help="handshakes in flight")
    ap.add_argument("--idle", type=float, default=30)
    ap.add_argument("--settle", type=float, default=2, help="wait before the baseline RSS")
    ap.add_argument("--timeout", type=float, default=120)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    out = asyncio.run(main_async(a))
    with open(a.out, "w") as fh:
        json.dump(out, fh, indent=2)
    print(json.dumps({k: out[k] for k in ("extra_rss_kb", "extra_rss_per_conn_kb", "rest_after_idle")}))
    return 0 if out["rest_after_idle"]["connected"] >= a.count and not out["attach_errors"] else 1


if __name__ == "__main__":
    sys.exit(main())
