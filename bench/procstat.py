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

    def result(self):
        out = {}
        for k, p in self.pids.items():
            c0, c1 = self.cpu0[k], self.cpu1[k]
            out[k] = {"pid": p, "peak_rss_kb": self.peak[k], "peak_rss_mib": round(self.peak[k] / 1024, 1),
                      "vm_hwm_kb_lifetime": status_kb(p, "VmHWM"),
                      "cpu_pct_avg": round(100.0 * (c1 - c0) / CLK / self.seconds, 1) if None not in (c0, c1) else None}
        out["_samples"] = self.n
        out["_interval_s"] = self.interval
        return out
