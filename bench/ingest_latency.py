"""Webhook → events:screened latency and batch throughput, against a stack this script starts.

    make bench                      # 3 runs of each phase; BENCH_RUNS, BENCH_RATE, BENCH_SECONDS override
    python -m bench.ingest_latency --runs 1 --seconds 10
    python -m bench.ingest_latency --root /tmp/base --screening-prefetch 32   # the same load on another tree

Phases per run: single events paced at ``--rate`` (wrk, when installed, with a per-connection delay;
else a Python open-loop sender), single events as fast as wrk can send them (``--max-single``), and
batches of ``--batch`` from four Python clients. ``--root`` starts the stack from another checkout
(a ``git worktree`` of the commit before a change), so before/after run under the same load,
interleaved, on the same noisy machine.

Latency is read from the stream itself: every ``events:screened`` entry carries ``received_at``
(the webhook accepted it) and ``screened_at`` (the screening worker published it), both in epoch
ms on the same clock. Load is open-loop: events are sent on a fixed schedule whatever the server
does, so queueing delay shows up in the numbers instead of slowing the generator down.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import redis

ROOT = Path(__file__).resolve().parent.parent
STACK_ROOT = ROOT  # --root: the tree whose web and workers are measured
PORT = int(os.environ.get("BENCH_PORT", "8011"))
KEY = "bench-key"
HOSTILE_SHARE = 1 / 20  # the load: unique events, one in twenty hostile


def traffic(n: int = 400, seed: int = 7) -> tuple[list[str], set[str]]:
    """The messages the load cycles through: ``n`` lines of the held-out split (never trained on),
    one in twenty abusive, the rest ordinary, from the real sources and the templated chat alike,
    at most 280 characters (a chat line). A handful of repeated lines would flatter any cache and
    any cascade; these are as varied as the data the model is judged on. Also returns the abusive ones."""
    import gzip
    import random

    from ml.training.datasets import BENIGN

    rows = [json.loads(line) for line in gzip.open(ROOT / "ml" / "data" / "splits" / "heldout.jsonl.gz", "rt")]
    rows = [r for r in rows if 0 < len(r["text"]) <= 280]
    rng = random.Random(seed)
    hostile = [r["text"] for r in rows if r["label"] not in BENIGN]
    ordinary = [r["text"] for r in rows if r["label"] in BENIGN]
    n_hostile = round(n * HOSTILE_SHARE)
    ordinary = [text for text in ordinary if "]==]" not in text]  # the wrk script quotes with [==[ ]==]
    hostile = [text for text in hostile if "]==]" not in text]
    abusive = rng.sample(hostile, n_hostile)
    picked = abusive + rng.sample(ordinary, n - n_hostile)
    rng.shuffle(picked)
    return picked, set(abusive)


MESSAGES, HOSTILE = traffic()


class Stack:
    """Embedded PostgreSQL + Redis, migrations, gunicorn and screening workers, all torn down on exit."""

    def __init__(self, workdir: Path, screening_concurrency: int, prefetch: int = 1,
                 settings: dict[str, str] | None = None) -> None:
        self.workdir, self.concurrency, self.prefetch = workdir, screening_concurrency, prefetch
        self.settings = settings or {}  # on top of this process's environment (bench.shedding: on and off)
        self.services: list = []
        self.procs: list[subprocess.Popen[bytes]] = []
        self.env: dict[str, str] = {}

    def __enter__(self) -> Stack:
        from app.devstack import ensure_services
        from app.embedded import EmbeddedPostgres, EmbeddedRedis

        env = dict(os.environ)
        if not env.get("DATABASE_URL"):
            self.services.append(EmbeddedPostgres(self.workdir / "pg").start())
            env["DATABASE_URL"] = self.services[-1].url
        if not env.get("REDIS_URL"):
            self.services.append(EmbeddedRedis(self.workdir / "redis").start())
            env["REDIS_URL"] = self.services[-1].url
        ensure_services(env)
        env.update(API_KEYS=KEY, INGEST_RATE_PER_S="100000", INGEST_BURST="1000000", LOG_LEVEL="WARNING",
                   **self.settings)
        self.env = env
        try:
            self._start(env)
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def _start(self, env: dict[str, str]) -> None:
        subprocess.run([sys.executable, "-m", "alembic", "upgrade", "head"], cwd=STACK_ROOT, env=env, check=True,
                       capture_output=True)
        bin_dir = Path(sys.executable).parent
        logs = (self.workdir / "stack.log").open("ab")
        self.procs.append(subprocess.Popen(
            [str(bin_dir / "gunicorn"), "--config", "gunicorn.conf.py", "wsgi:app", "--bind", f"127.0.0.1:{PORT}"],
            cwd=STACK_ROOT, env=env, stdout=logs, stderr=subprocess.STDOUT))
        self.procs.append(subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "tasks.celery_app", "worker", "-Q", "screening",
             "--concurrency", str(self.concurrency), "--prefetch-multiplier", str(self.prefetch),
             "--loglevel", os.environ.get("BENCH_WORKER_LOGLEVEL", "WARNING"), "--without-gossip",
             "--without-mingle"], cwd=STACK_ROOT, env=env, stdout=logs, stderr=subprocess.STDOUT))
        self._wait_ready()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                status, _ = post([{"event_id": "warmup-" + uuid.uuid4().hex, "platform": "web",
                                   "author_id": "w", "channel_id": "warm", "content": "warm up"}])
                if status == 202 and self.redis().xlen("events:screened") > 0:
                    return
            except OSError:
                pass
            time.sleep(0.5)
        log = (self.workdir / "stack.log").read_text(errors="replace")[-4000:]
        raise RuntimeError(f"stack did not become ready within 60 s; last lines of its log:\n{log}")

    def redis(self) -> redis.Redis:
        return redis.Redis.from_url(self.env["REDIS_URL"], decode_responses=True)

    def __exit__(self, *exc: object) -> None:
        for proc in self.procs:
            proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
        for service in reversed(self.services):
            service.stop()


class Profiler:
    """py-spy on gunicorn and the screening worker (with their children) and CPU seconds of every
    process of the stack (Redis and PostgreSQL included) over one phase."""

    def __init__(self, stack: Stack, out: Path, seconds: float) -> None:
        import psutil

        self.stack, self.out = stack, out
        out.mkdir(parents=True, exist_ok=True)
        self.before = self._cpu(psutil)
        spy = str(Path(sys.executable).parent / "py-spy")
        self.spies = [subprocess.Popen(
            [spy, "record", "--format", "raw", "--subprocesses", "--nonblocking", "-r", "100",
             "-d", str(int(seconds)), "-p", str(proc.pid), "-o", str(out / f"{name}.txt")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            for name, proc in zip(("web", "worker"), stack.procs, strict=False)]

    def _cpu(self, psutil) -> dict[str, float]:  # type: ignore[no-untyped-def]
        totals: dict[str, float] = {}
        workdir = str(self.stack.workdir)
        roots = {p.pid: name for name, p in zip(("web", "worker"), self.stack.procs, strict=False)}
        procs = [p.info for p in psutil.process_iter(["pid", "ppid", "name", "cmdline", "cpu_times"])]
        for info in procs:  # the embedded servers name this bench's folder on their command line
            if info["pid"] not in roots and workdir in " ".join(info["cmdline"] or []):
                roots[info["pid"]] = "redis" if "redis" in (info["name"] or "") else "postgres"
        for info in procs:
            name = roots.get(info["pid"]) or roots.get(info["ppid"])
            if name and info["cpu_times"]:
                totals[name] = totals.get(name, 0.0) + info["cpu_times"].user + info["cpu_times"].system
        return totals

    def finish(self, events: int) -> None:
        import psutil

        for spy in self.spies:
            spy.wait(120)
        after = self._cpu(psutil)
        cpu = {name: round((after.get(name, 0) - self.before.get(name, 0)) * 1000 / max(events, 1), 3)
               for name in after}
        (self.out / "cpu_per_event_ms.json").write_text(json.dumps({"events": events, "ms_per_event": cpu}, indent=2))
        print(f"    CPU ms per screened event by process: {cpu}", flush=True)
        from bench.profile_stages import by_stage

        for stage, ms in by_stage(self.out).items():
            print(f"      {stage:>15}  {ms:6.3f} ms", flush=True)


_local = threading.local()


def post(events: list[dict]) -> tuple[int, bytes]:
    """POST on a keep-alive connection per thread, as a real platform bridge would."""
    conn = getattr(_local, "conn", None)
    if conn is None:
        conn = _local.conn = http.client.HTTPConnection("127.0.0.1", PORT, timeout=10)
    body = json.dumps(events[0] if len(events) == 1 else {"events": events})
    try:
        conn.request("POST", "/v1/events/ingest", body=body,
                     headers={"Content-Type": "application/json", "X-API-Key": KEY})
        resp = conn.getresponse()
        return resp.status, resp.read()
    except (OSError, http.client.HTTPException):
        _local.conn = None
        raise


def make_events(run: str, start: int, n: int) -> list[dict]:
    return [{"event_id": f"{run}-{i}", "platform": "web", "author_id": f"user{i % 37}", "user_id": f"user{i % 11}",
             "channel_id": f"chan{i % 13}", "content": MESSAGES[i % len(MESSAGES)]} for i in range(start, start + n)]


def steady_rate(stack: Stack, rate: float, seconds: float) -> dict:
    """Single events at a fixed rate; latency percentiles from the stream."""
    run = "steady-" + uuid.uuid4().hex[:6]
    total = int(rate * seconds)
    started = time.monotonic()
    errors = 0
    with ThreadPoolExecutor(max_workers=16) as pool:
        futures = []
        for i in range(total):
            delay = started + i / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            futures.append(pool.submit(post, make_events(run, i, 1)))
            if i and i % int(rate * 5) == 0:
                print(f"    sent {i}/{total}", flush=True)
        errors = sum(1 for f in futures if f.result()[0] != 202)
    latencies = collect_latencies(stack.redis(), run, total)
    return {"sent": total, "errors": errors, **percentiles(latencies), "latencies": latencies}


WRK_SCRIPT = """
local counter = 0
local run = os.getenv("BENCH_RUN")
local pause = tonumber(os.getenv("BENCH_DELAY_MS") or "0")
local messages = {%s}
local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
end
function request()
  counter = counter + 1
  local i = counter
  local body = string.format('{"event_id":"%%s-%%d-%%d","platform":"web","author_id":"user%%d","user_id":"user%%d",'
    .. '"channel_id":"chan%%d","content":"%%s"}', run, tid, i, i %% 37, i %% 11, (i + tid) %% 13,
    messages[i %% #messages + 1])
  return wrk.format("POST", "/v1/events/ingest", {["Content-Type"] = "application/json",
    ["X-API-Key"] = "%s"}, body)
end
function delay()
  return pause
end
"""


def wrk_single(stack: Stack, seconds: float, rate: float | None, connections: int = 8) -> dict:
    """Single events from wrk: paced at ``rate`` (each connection waits connections/rate between
    requests) or as fast as it can. Screened/s counts until every accepted event was screened."""
    run = ("paced-" if rate else "max-") + uuid.uuid4().hex[:6]
    script = stack.workdir / f"{run}.lua"
    # Each message as a Lua long string holding its JSON-escaped text, pasted into the body as is.
    script.write_text(WRK_SCRIPT % (", ".join(f"[==[{json.dumps(m)[1:-1]}]==]" for m in MESSAGES), KEY))
    env = {**os.environ, "BENCH_RUN": run, "BENCH_DELAY_MS": str(int(connections * 1000 / rate) if rate else 0)}
    t0 = time.monotonic()
    out = subprocess.run(["wrk", "-t", "2", "-c", str(connections), "-d", f"{int(seconds)}s", "--latency",
                          "-s", str(script), f"http://127.0.0.1:{PORT}"], env=env, capture_output=True, text=True)
    send_s = time.monotonic() - t0
    sent = _wrk_requests(out.stdout)
    errors = _wrk_errors(out.stdout)
    latencies = collect_latencies(stack.redis(), run, sent - errors, timeout_s=300)
    drain_s = time.monotonic() - t0
    http_p99 = next((line.split()[1] for line in out.stdout.splitlines() if line.strip().startswith("99%")), "?")
    return {"run": run, "sent": sent, "errors": errors, "accepted_per_s": round((sent - errors) / send_s),
            "screened_per_s": round(len(latencies) / max(drain_s, send_s)), "http_p99": http_p99,
            **percentiles(latencies), "latencies": latencies}


def _wrk_requests(text: str) -> int:
    for line in text.splitlines():
        if "requests in" in line:
            return int(line.split()[0])
    raise RuntimeError(f"unexpected wrk output:\n{text}")


def _wrk_errors(text: str) -> int:
    bad = 0
    for line in text.splitlines():
        if "Non-2xx" in line:
            bad += int(line.split()[-1])
        if "Socket errors" in line:
            bad += sum(int(part.split()[-1]) for part in line.split(":", 1)[1].split(","))
    return bad


def batch_throughput(stack: Stack, batch: int, seconds: float, clients: int = 4) -> dict:
    """As fast as the web accepts batches; events/s = screened events / time until all were screened."""
    run = "batch-" + uuid.uuid4().hex[:6]
    counter = {"n": 0}
    lock = threading.Lock()
    stop_at = time.monotonic() + seconds

    def client_loop() -> None:
        while time.monotonic() < stop_at:
            with lock:
                start = counter["n"]
                counter["n"] += batch
            status, _ = post(make_events(run, start, batch))
            assert status == 202, status

    t0 = time.monotonic()
    threads = [threading.Thread(target=client_loop) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    sent, accept_s = counter["n"], time.monotonic() - t0
    latencies = collect_latencies(stack.redis(), run, sent, timeout_s=300)
    drain_s = time.monotonic() - t0
    return {"sent": sent, "accepted_per_s": round(sent / accept_s), "screened_per_s": round(len(latencies) / drain_s),
            **percentiles(latencies)}


def collect_latencies(client: redis.Redis, run: str, expected: int, timeout_s: float = 120) -> list[float]:
    seen: dict[str, float] = {}
    last_id = "-"
    deadline = time.monotonic() + timeout_s
    while len(seen) < expected and time.monotonic() < deadline:
        entries = client.xrange("events:screened", min=last_id, count=5000)
        for entry_id, fields in entries:
            if fields["event_id"].startswith(run):
                seen[fields["event_id"]] = int(fields["screened_at"]) - int(fields["received_at"])
            last_id = "(" + entry_id
        if len(entries) < 5000:
            time.sleep(0.2)
    if len(seen) < expected:
        print(f"    warning: only {len(seen)}/{expected} events screened within {timeout_s}s", flush=True)
    return list(seen.values())


def percentiles(values: list[float]) -> dict:
    if not values:
        return {"n": 0}
    ordered = sorted(values)

    def pick(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    return {"n": len(ordered), "p50_ms": pick(0.50), "p95_ms": pick(0.95), "p99_ms": pick(0.99), "max_ms": ordered[-1]}


def histogram(values: list[float], width: int = 40) -> str:
    """A terminal chart of the latency distribution (log-spaced buckets)."""
    edges = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, float("inf")]
    counts = [0] * len(edges)
    for v in values:
        counts[next(i for i, e in enumerate(edges) if v <= e)] += 1
    top = max(counts) or 1
    lines = []
    for edge, count in zip(edges, counts, strict=True):
        label = f"<= {edge:>5.0f} ms" if edge != float("inf") else " > 1000 ms"
        lines.append(f"    {label} | {'#' * round(width * count / top):<{width}} {count}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=int(os.environ.get("BENCH_RUNS", "3")))
    parser.add_argument("--rate", type=float, default=float(os.environ.get("BENCH_RATE", "100")))
    parser.add_argument("--seconds", type=float, default=float(os.environ.get("BENCH_SECONDS", "30")))
    parser.add_argument("--batch", type=int, default=50)
    parser.add_argument("--batch-seconds", type=float, default=None,
                        help="default: half of --seconds; 0 leaves the batch phase out")
    parser.add_argument("--screening-concurrency", type=int, default=2)
    parser.add_argument("--screening-prefetch", type=int, default=1,
                        help="32 for a tree whose screening worker groups Celery messages (celery-batches)")
    parser.add_argument("--max-single", action=argparse.BooleanOptionalAction, default=shutil.which("wrk") is not None,
                        help="also single events as fast as wrk sends them (default: when wrk is installed)")
    parser.add_argument("--root", type=Path, default=ROOT, help="start web and workers from this checkout")
    parser.add_argument("--label", default="", help="a name for this tree in the results file")
    parser.add_argument("--profile", type=Path, default=None,
                        help="py-spy the web and screening processes during the first paced run; "
                             "writes collapsed stacks and CPU seconds per process here")
    args = parser.parse_args(argv)
    global STACK_ROOT
    STACK_ROOT = args.root.resolve()

    with tempfile.TemporaryDirectory(prefix="safety-bench-") as tmp:
        Path(tmp).chmod(0o755)  # the embedded PostgreSQL runs as its own user and must reach its folder
        results = run_all(Path(tmp), args)
    report(results, args)
    return 0


def run_all(workdir: Path, args: argparse.Namespace) -> dict[str, list[dict]]:
    results: dict[str, list[dict]] = {"steady": [], "batch": [], "max_single": []}
    use_wrk = shutil.which("wrk") is not None
    with Stack(workdir, args.screening_concurrency, args.screening_prefetch) as stack:
        for run in range(1, args.runs + 1):
            print(f"run {run}/{args.runs}: {args.rate:.0f} single events/s for {args.seconds:.0f} s", flush=True)
            profiling = Profiler(stack, args.profile, args.seconds) if args.profile and run == 1 else None
            results["steady"].append(wrk_single(stack, args.seconds, args.rate) if use_wrk
                                     else steady_rate(stack, args.rate, args.seconds))
            if profiling:
                profiling.finish(results["steady"][-1]["n"])
            print(f"    {summary(results['steady'][-1])}", flush=True)
            if args.max_single:
                print(f"run {run}/{args.runs}: single events as fast as wrk sends, {args.seconds:.0f} s", flush=True)
                results["max_single"].append(wrk_single(stack, args.seconds, None))
                print(f"    {summary(results['max_single'][-1])}", flush=True)
            batch_s = args.seconds / 2 if args.batch_seconds is None else args.batch_seconds
            if not batch_s:
                continue
            print(f"run {run}/{args.runs}: batches of {args.batch}, as fast as accepted, {batch_s:.0f} s", flush=True)
            results["batch"].append(batch_throughput(stack, args.batch, batch_s))
            print(f"    {results['batch'][-1]}", flush=True)
    return results


def summary(row: dict) -> dict:
    return {key: value for key, value in row.items() if key != "latencies"}


def report(results: dict[str, list[dict]], args: argparse.Namespace) -> None:
    def med(rows: list[dict], key: str) -> float:
        return statistics.median(r[key] for r in rows if key in r)

    steady, batch, fastest = results["steady"], results["batch"], results["max_single"]
    print("\nlatency distribution of the last steady run (webhook → events:screened):")
    print(histogram(steady[-1]["latencies"]))
    results = {"steady": [summary(r) for r in steady], "batch": batch, "max_single": [summary(r) for r in fastest]}
    print(f"\nwebhook → events:screened, {args.rate:.0f} single events/s, medians of {len(steady)} runs")
    print(f"  p50 {med(steady, 'p50_ms'):.0f} ms   p95 {med(steady, 'p95_ms'):.0f} ms   "
          f"p99 {med(steady, 'p99_ms'):.0f} ms   errors {sum(r['errors'] for r in steady)}")
    if fastest:
        print(f"single events as fast as wrk sends: accepted {med(fastest, 'accepted_per_s'):.0f} events/s, "
              f"screened {med(fastest, 'screened_per_s'):.0f} events/s, p99 {med(fastest, 'p99_ms'):.0f} ms")
    if batch:
        print(f"batches of {args.batch}: accepted {med(batch, 'accepted_per_s'):.0f} events/s, "
              f"screened {med(batch, 'screened_per_s'):.0f} events/s, p99 {med(batch, 'p99_ms'):.0f} ms "
              "(median of runs)")
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"ingest_latency-{args.label or 'run'}-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps({"args": {**vars(args), "root": str(args.root), "profile": str(args.profile)},
                                "results": results}, indent=2))
    print(f"raw results: {path}")


if __name__ == "__main__":
    sys.exit(main())
