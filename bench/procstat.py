"""Process sampling for the benchmarks (stdlib only): peak VmRSS every `interval` s and CPU."""
import os
import threading
import time

CLK = os.sysconf("SC_CLK_TCK")


def status_kb(pid, key):
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        return None


def cpu_ticks(pid):
    try:
        with open(f"/proc/{pid}/stat") as fh:
            f = fh.read().rsplit(")", 1)[1].split()
        return int(f[11]) + int(f[12])  # utime + stime of the process (all threads)
    except OSError:
        return None


def thread_ticks(pid):
    """{thread name: utime+stime ticks} summed over threads of the same name."""
    out = {}
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            try:
                with open(f"/proc/{pid}/task/{tid}/stat") as fh:
                    raw = fh.read()
                name = raw[raw.index("(") + 1: raw.rindex(")")]
                f = raw.rsplit(")", 1)[1].split()
                out[name] = out.get(name, 0) + int(f[11]) + int(f[12])
            except (OSError, ValueError):
                pass
    except OSError:
        pass
    return out


class Sampler:
    """with Sampler({"master": pid, ...}) as s: ...   then s.result()"""

    def __init__(self, pids, interval=0.25):
        self.pids, self.interval = dict(pids), interval
        self.peak = {k: 0 for k in self.pids}
        self.n = 0
        self._stop = threading.Event()

    def __enter__(self):
        self.t0 = time.time()
        self.cpu0 = {k: cpu_ticks(p) for k, p in self.pids.items()}
        self.thr0 = {k: thread_ticks(p) for k, p in self.pids.items()}
        self._thr = threading.Thread(target=self._run, daemon=True)
        self._thr.start()
        return self

    def _run(self):
        while not self._stop.is_set():
            for k, p in self.pids.items():
                self.peak[k] = max(self.peak[k], status_kb(p, "VmRSS") or 0)
            self.n += 1
            self._stop.wait(self.interval)

    def __exit__(self, *exc):
        self._stop.set()
        self._thr.join()
        self.seconds = time.time() - self.t0
        self.cpu1 = {k: cpu_ticks(p) for k, p in self.pids.items()}
        self.thr1 = {k: thread_ticks(p) for k, p in self.pids.items()}

    def result(self):
        out = {}
        for k, p in self.pids.items():
            c0, c1 = self.cpu0[k], self.cpu1[k]
            out[k] = {"pid": p, "peak_rss_kb": self.peak[k], "peak_rss_mib": round(self.peak[k] / 1024, 1),
                      "vm_hwm_kb_lifetime": status_kb(p, "VmHWM"),
                      "cpu_pct_avg": round(100.0 * (c1 - c0) / CLK / self.seconds, 1) if None not in (c0, c1) else None,
                      "cpu_pct_by_thread_name": {n: round(100.0 * (t - self.thr0[k].get(n, 0)) / CLK / self.seconds, 1)
                                                 for n, t in sorted(self.thr1[k].items()) if t - self.thr0[k].get(n, 0) > 0}}
        out["_seconds"] = round(self.seconds, 2)
        out["_samples"] = self.n
        out["_interval_s"] = self.interval
        return out
