"""HTTP load while the index is being written: throughput, latency, errors, lost documents and
the server's memory.

    python bench/load_test.py [--data ../shared/data/qa] [--workers 8] [--during-s 30] [--after-s 45]
                              [--ask-every 4] [--json out.json]

Builds an index of DATA/docs with the real embedding model (`citekb ingest`, about 30 s on an
idle machine), serves it (`citekb serve` on a free port of 127.0.0.1), warms it up, measures
--baseline requests from one client alone, then runs --workers concurrent clients sending
DATA/questions.jsonl as searches (every --ask-every'th as an ask) in two phases: "during ingest",
while `citekb ingest sample_docs` writes more documents into the same index from another process
(at least --during-s, and until that ingest ends), and "after ingest", --after-s more.

Never lose a document: a monitor polls /healthz every 0.5 s, and the count must never fall; at the
end /v1/documents must list exactly DATA's documents plus those the concurrent ingest reported.
The server's RSS (it and its descendants, from /proc) is read after warm-up and after each phase;
"at the end" against "after the ingest phase" is growth that is not the bigger snapshot. An error
is a non-200, a failed request, or a 200 whose body lacks the contract's fields. Prints a markdown
table, --json writes the numbers; exits 1 on any error or lost document."""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import math
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import count
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
HIT_FIELDS = {"doc_id", "source", "title", "page", "page_end", "section", "line_start", "line_end", "chunk_id", "text", "score"}
ASK_FIELDS = {"answer", "grounded", "citations", "hits", "sentences"}
CITEKB = [sys.executable, "-c", "import sys; from citekb.api.cli import main; sys.exit(main())"]


@dataclass
class Sample:
    kind: str  # "search" or "ask"
    phase: str
    latency_s: float
    error: str | None


@dataclass
class Monitor:
    counts: list[tuple[float, int]] = field(default_factory=list)  # (time, /healthz documents)
    errors: list[str] = field(default_factory=list)
    rss_max_kib: int = 0


# --------------------------------------------------------------------------- processes

def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def rss_kib(pid: int) -> int:
    """Resident memory of pid and all its descendants, in KiB (Linux /proc)."""
    total = 0
    pending = [pid]
    while pending:
        current = pending.pop()
        try:
            status = Path(f"/proc/{current}/status").read_text()
        except FileNotFoundError:
            continue
        total += next((int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:")), 0)
        for task in Path(f"/proc/{current}/task").glob("*/children"):
            pending += [int(child) for child in task.read_text().split()]
    return total


def run_citekb(args: Sequence[str], log: Path, stdout: Path | None = None) -> subprocess.Popen[bytes]:
    """citekb args in the background; stderr (and stdout, unless given a file of its own) to log."""
    with log.open("ab") as err, (stdout or log).open("ab") as out:
        return subprocess.Popen([*CITEKB, *args], stdout=out, stderr=err, cwd=ROOT)


def ingest_json(args: Sequence[str]) -> dict[str, Any]:
    done = subprocess.run([*CITEKB, "ingest", *args, "--json"], capture_output=True, cwd=ROOT, check=False)
    if done.returncode != 0:
        sys.exit(f"citekb ingest {' '.join(args)} exited {done.returncode}:\n{done.stderr.decode()[-2000:]}")
    report: dict[str, Any] = json.loads(done.stdout)
    return report


async def wait_ready(client: httpx.AsyncClient, server: subprocess.Popen[bytes], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.poll() is not None:
            sys.exit(f"citekb serve exited {server.returncode} before it was ready")
        try:
            if (await client.get("/healthz")).status_code == 200:
                return
        except httpx.TransportError:
            pass
        await asyncio.sleep(0.25)
    sys.exit(f"citekb serve was not ready within {timeout_s:g} s")


# --------------------------------------------------------------------------- load

def contract_error(kind: str, response: httpx.Response) -> str | None:
    if response.status_code != 200:
        return f"HTTP {response.status_code}: {response.text[:200]}"
    body = response.json()
    hits = body.get("hits") if isinstance(body, dict) else None
    if not isinstance(hits, list) or (kind == "ask" and set(body) != ASK_FIELDS):
        return f"bad {kind} body: {str(body)[:200]}"
    if any(not HIT_FIELDS <= set(hit) for hit in hits):
        return f"{kind} hit lacks fields: {str(hits)[:200]}"
    return None


async def one_request(client: httpx.AsyncClient, kind: str, question: str) -> tuple[float, str | None]:
    start = time.perf_counter()
    try:
        response = await client.post(f"/v1/{kind}", json={"query": question, "k": 10} if kind == "search" else {"query": question})
        error = contract_error(kind, response)
    except httpx.HTTPError as exc:
        error = f"{type(exc).__name__}: {exc}"
    return time.perf_counter() - start, error


async def worker(client: httpx.AsyncClient, questions: Sequence[str], tickets: count, ask_every: int,
                 phase: list[str], samples: list[Sample], stop: asyncio.Event) -> None:
    while not stop.is_set():
        n = next(tickets)
        kind = "ask" if ask_every and n % ask_every == ask_every - 1 else "search"
        started_in = phase[0]
        latency, error = await one_request(client, kind, questions[n % len(questions)])
        samples.append(Sample(kind, started_in, latency, error))


async def monitor(client: httpx.AsyncClient, server_pid: int, out: Monitor, stop: asyncio.Event) -> None:
    while not stop.is_set():
        try:
            response = await client.get("/healthz")
            if response.status_code == 200:
                out.counts.append((time.monotonic(), int(response.json()["documents"])))
            else:
                out.errors.append(f"/healthz HTTP {response.status_code}: {response.text[:200]}")
        except httpx.HTTPError as exc:
            out.errors.append(f"/healthz {type(exc).__name__}: {exc}")
        out.rss_max_kib = max(out.rss_max_kib, rss_kib(server_pid))
        try:
            await asyncio.wait_for(stop.wait(), 0.5)
        except asyncio.TimeoutError:
            pass


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile; nan for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, math.ceil(len(ordered) * p / 100) - 1))]


def summarise(samples: Sequence[Sample], seconds: float) -> dict[str, Any]:
    out: dict[str, Any] = {"seconds": round(seconds, 1), "requests": len(samples),
                           "throughput_rps": round(len(samples) / seconds, 2) if seconds else 0.0}
    for kind in ("search", "ask"):
        mine = [s for s in samples if s.kind == kind]
        ok = [s.latency_s * 1000 for s in mine if s.error is None]
        out[kind] = {
            "requests": len(mine), "errors": sum(s.error is not None for s in mine),
            "throughput_rps": round(len(mine) / seconds, 2) if seconds else 0.0,
            **{f"p{p}_ms": round(percentile(ok, p), 1) for p in (50, 95, 99)},
            "max_ms": round(max(ok), 1) if ok else float("nan"),
        }
    return out


# --------------------------------------------------------------------------- main

async def load(args: argparse.Namespace, index: Path, logs: Path, questions: Sequence[str],
               base_ids: set[str]) -> dict[str, Any]:
    port = free_port()
    server = run_citekb(["serve", "--index", str(index), "--host", "127.0.0.1", "--port", str(port)], logs / "serve.log")
    result: dict[str, Any] = {}
    try:
        limits = httpx.Limits(max_connections=args.workers + 2, max_keepalive_connections=args.workers + 2)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=120, limits=limits) as client:
            await wait_ready(client, server, timeout_s=180)
            for n in range(args.warmup):  # every code path, and the model's first-call costs, before measuring
                _, error = await one_request(client, "ask" if n % 3 == 2 else "search", questions[-1 - n])
                if error:
                    sys.exit(f"warm-up request failed: {error}")
            rss = {"after_warmup_kib": rss_kib(server.pid)}

            # One client alone, for comparison: the latency that is the work itself, not queueing.
            samples: list[Sample] = []
            baseline_start = time.monotonic()
            for n in range(args.baseline):
                kind = "ask" if args.ask_every and n % args.ask_every == args.ask_every - 1 else "search"
                latency, error = await one_request(client, kind, questions[n % len(questions)])
                samples.append(Sample(kind, "1 client, idle", latency, error))
            baseline_s = time.monotonic() - baseline_start

            phase = ["during ingest"]
            stop_load, stop_monitor = asyncio.Event(), asyncio.Event()
            watch = Monitor()
            tickets = count()
            monitor_task = asyncio.create_task(monitor(client, server.pid, watch, stop_monitor))
            workers = [asyncio.create_task(worker(client, questions, tickets, args.ask_every, phase, samples, stop_load))
                       for _ in range(args.workers)]

            started = time.monotonic()
            writer = run_citekb(["ingest", str(ROOT / "sample_docs"), "--index", str(index), "--json"],
                                logs / "ingest.log", stdout=logs / "ingest.json")
            while writer.poll() is None or time.monotonic() - started < args.during_s:
                if time.monotonic() - started > args.max_during_s:
                    writer.send_signal(signal.SIGINT)
                    writer.wait(30)
                    sys.exit(f"the concurrent ingest ran past {args.max_during_s:g} s; see {logs / 'ingest.log'}")
                await asyncio.sleep(0.25)
            ingest_s = time.monotonic() - started  # the phase's length, at least --during-s
            ingest_exit = writer.returncode
            rss["after_ingest_phase_kib"] = rss_kib(server.pid)

            phase[0] = "after ingest"
            after_start = time.monotonic()
            await asyncio.sleep(args.after_s / 2)
            rss["mid_after_phase_kib"] = rss_kib(server.pid)  # growth that goes on here is not warm-up
            await asyncio.sleep(args.after_s / 2)
            stop_load.set()
            await asyncio.gather(*workers)
            after_s = time.monotonic() - after_start
            rss["at_end_kib"] = rss_kib(server.pid)
            stop_monitor.set()
            await monitor_task
            rss["max_sampled_kib"] = watch.rss_max_kib
            final_ids = {d["doc_id"] for d in (await client.get("/v1/documents")).json()["documents"]}

        added = json.loads((logs / "ingest.json").read_text() or "null") if ingest_exit in (0, 1) else None
        expected_ids = base_ids | {e["doc_id"] for e in (added or {}).get("ingested", [])}
        counts = [c for _, c in watch.counts]
        falls = [(a, b) for a, b in zip(counts, counts[1:]) if b < a]
        errors = [s.error for s in samples if s.error]
        result = {
            "phases": {
                "1 client, idle": summarise([s for s in samples if s.phase == "1 client, idle"], baseline_s),
                "during ingest": summarise([s for s in samples if s.phase == "during ingest"], ingest_s),
                "after ingest": summarise([s for s in samples if s.phase == "after ingest"], after_s),
                "all loaded": summarise([s for s in samples if s.phase != "1 client, idle"], ingest_s + after_s),
            },
            "ingest_exit_code": ingest_exit,
            "ingest_failed": (added or {}).get("failed"),
            "documents": {"before": len(base_ids), "expected_after": len(expected_ids), "final": len(final_ids),
                          "lost": sorted(expected_ids - final_ids), "unexpected": sorted(final_ids - expected_ids),
                          "min_seen": min(counts, default=None), "max_seen": max(counts, default=None),
                          "polls": len(counts), "falls": falls, "healthz_errors": watch.errors[:10]},
            "rss_kib": rss,
            "error_examples": errors[:10],
        }
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
    return result


def table(result: dict[str, Any]) -> str:
    rows = ["| phase | kind | requests | req/s | p50 ms | p95 ms | p99 ms | max ms | errors |",
            "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for name, phase in result["phases"].items():
        for kind in ("search", "ask"):
            k = phase[kind]
            rows.append(f"| {name} ({phase['seconds']:g} s) | {kind} | {k['requests']} | {k['throughput_rps']:g} | "
                        f"{k['p50_ms']:g} | {k['p95_ms']:g} | {k['p99_ms']:g} | {k['max_ms']:g} | {k['errors']} |")
    docs, rss = result["documents"], result["rss_kib"]
    mib = {name: value / 1024 for name, value in rss.items()}
    rows += [
        "",
        f"documents: {docs['before']} before, {docs['final']} at the end (expected {docs['expected_after']}, "
        f"lost {len(docs['lost'])}); "
        f"/healthz polled {docs['polls']} times, seen {docs['min_seen']}..{docs['max_seen']}, "
        f"fell {len(docs['falls'])} times; concurrent ingest exit code {result['ingest_exit_code']}",
        f"server RSS (MiB): {mib['after_warmup_kib']:.0f} after warm-up, {mib['after_ingest_phase_kib']:.0f} after the "
        f"ingest phase, {mib['mid_after_phase_kib']:.0f} halfway through the next, {mib['at_end_kib']:.0f} at the end "
        f"(max sampled {mib['max_sampled_kib']:.0f}); growth over the after-ingest phase "
        f"{mib['at_end_kib'] - mib['after_ingest_phase_kib']:+.1f} MiB, over its second half "
        f"{mib['at_end_kib'] - mib['mid_after_phase_kib']:+.1f} MiB",
    ]
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=SHARED / "data" / "qa", help="a folder with docs/ and questions.jsonl")
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--ask-every", type=int, default=4, help="every Nth request is an ask (0: searches only)")
    parser.add_argument("--warmup", type=int, default=24, help="sequential requests before measuring")
    parser.add_argument("--baseline", type=int, default=40, help="sequential requests measured before the load")
    parser.add_argument("--during-s", type=float, default=30, help="the first phase lasts at least this long")
    parser.add_argument("--max-during-s", type=float, default=240, help="give up if the concurrent ingest runs longer")
    parser.add_argument("--after-s", type=float, default=45, help="length of the phase after the ingest")
    parser.add_argument("--index", type=Path, help="build the index here (default: a temporary folder)")
    parser.add_argument("--json", type=Path, help="also write the numbers here")
    args = parser.parse_args()
    if not (args.data / "docs").is_dir() or not (args.data / "questions.jsonl").is_file():
        sys.exit(f"skipped: {args.data} (with docs/ and questions.jsonl) is absent; pass --data or check out ../shared")
    if not Path("/proc/self/status").is_file():
        sys.exit("skipped: the server's memory is read from /proc, which this system lacks")

    with tempfile.TemporaryDirectory(prefix="citekb-load-") as tmp:
        index = args.index or Path(tmp) / "index"
        logs = Path(tmp)
        questions = [json.loads(line)["question"] for line in (args.data / "questions.jsonl").read_text("utf-8").splitlines() if line.strip()]
        load_before = os.getloadavg()  # other work on the machine skews every latency here
        print(f"building the index of {args.data / 'docs'} in {index} ...", file=sys.stderr)
        started = time.monotonic()
        base = ingest_json([str(args.data / "docs"), "--index", str(index)])
        build_s = time.monotonic() - started
        if base["failed"]:
            sys.exit(f"the index build failed for {base['failed']}")
        base_ids = {e["doc_id"] for e in base["ingested"]}
        print(f"index built in {build_s:.0f} s ({len(base_ids)} documents); serving and loading ...", file=sys.stderr)
        result = asyncio.run(load(args, index, logs, questions, base_ids))

    result["setup"] = {
        "date": datetime.date.today().isoformat(), "machine": platform.machine(), "cpus": os.cpu_count(),
        "python": platform.python_version(), "workers": args.workers, "ask_every": args.ask_every,
        "index_build_s": round(build_s, 1), "questions": len(questions), "data": str(args.data),
        "loadavg_1m_before": load_before[0], "loadavg_1m_after": os.getloadavg()[0],
    }
    setup = result["setup"]
    print(f"{setup['date']}, {setup['machine']}, {setup['cpus']} CPUs, Python {setup['python']}, {args.workers} workers; "
          f"index built in {build_s:.0f} s; 1-minute load average {load_before[0]:.1f} before, "
          f"{setup['loadavg_1m_after']:.1f} after")
    print(table(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n", "utf-8")
    docs = result["documents"]
    errors = sum(phase[kind]["errors"] for phase in result["phases"].values() for kind in ("search", "ask"))
    failed = (errors or docs["falls"] or docs["healthz_errors"]
              or docs["lost"] or docs["unexpected"] or result["ingest_exit_code"] != 0)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
