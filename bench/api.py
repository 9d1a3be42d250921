"""HTTP throughput of the search API under gunicorn, beside its ceiling, in one run.

Serves the demo app (the plugin) and ``bench/api_floor.py`` (the same search with nothing
else) from the same PostgreSQL database with the same gunicorn settings, drives them in
turn (``--rounds`` times ``--seconds`` each) with ``wrk`` and ``bench/wrk_search.lua``
(random nearest-10 searches with a modality filter around Australian cities), and prints
one JSON object as its last line, with each side's median and every round's figure::

    .venv/bin/python bench/search.py --rows 100000 --queries 10 --backend postgresql \\
        --url postgresql+psycopg://postgres@127.0.0.1:5432/referral_bench --optimize
    .venv/bin/python bench/api.py --url postgresql+psycopg://postgres@127.0.0.1:5432/referral_bench

Needs ``wrk`` (Debian: ``apt-get install wrk``). wrk, gunicorn and PostgreSQL share the
machine's cores, so both figures are floors; their ratio is what the plugin's layers cost.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import create_engine, text

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
BIN = Path(sys.executable).parent


def _wait_for_port(port: int, seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"nothing listens on port {port}")


def _wrk(
    port: int, prefix: str, seconds: int, connections: int, radius_km: float, warm: bool = False
) -> dict:
    env = {**os.environ, "REFERRAL_URL_PREFIX": prefix, "RADIUS_KM": f"{radius_km:g}"}
    script = str(HERE / "wrk_search.lua")
    url = f"http://127.0.0.1:{port}"
    if warm:  # caches, prepared statements, pooled connections
        subprocess.run(
            ["wrk", "-t2", "-c16", "-d5s", "-s", script, url],
            env=env,
            capture_output=True,
            check=True,
        )
    out = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", script, url],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    latency: dict[str, float] = {}
    for pct, value, unit in re.findall(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s)\s*$", out, re.M):
        latency[pct] = float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        "p50_ms": latency.get("50"),
        "p99_ms": latency.get("99"),
        "non_2xx": int(non_2xx.group(1)) if non_2xx else 0,
    }


def _serve(app: str, port: int, workers: int, env: dict, chdir: Path) -> subprocess.Popen:
    command = [
        str(BIN / "gunicorn"),
        f"-w{workers}",
        f"-b127.0.0.1:{port}",
        "--log-level=warning",
        f"--chdir={chdir}",
        app,
    ]
    server = subprocess.Popen(command, env={**os.environ, **env}, stdout=subprocess.DEVNULL)
    _wait_for_port(port)
    return server


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True, help="postgresql+psycopg:// URL of the listings")
    parser.add_argument(
        "--workers",
        type=int,
        default=os.cpu_count() or 2,
        help="sync workers per server (default: one per core; with PostgreSQL and wrk on the "
        "same cores, a third worker only adds switching)",
    )
    parser.add_argument("--seconds", type=int, default=10, help="per round and server")
    parser.add_argument(
        "--rounds", type=int, default=3, help="plugin then ceiling, this many times; medians"
    )
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--radius-km", type=float, default=25.0)
    parser.add_argument("--port", type=int, default=8100, help="first of two free ports")
    args = parser.parse_args(argv)
    if shutil.which("wrk") is None:
        parser.error("wrk is not installed (Debian: apt-get install wrk)")

    with create_engine(args.url).connect() as conn:
        listings = conn.scalar(text("SELECT count(*) FROM referral_location"))
    plain_url = args.url.replace("postgresql+psycopg://", "postgresql://")
    figures: dict = {"listings": listings, "workers": args.workers, "radius_km": args.radius_km}
    runs = [
        (
            "plugin",
            "wsgi:app",
            ROOT,
            {"FLASK_REFERRAL_DATABASE_URL": args.url, "FLASK_SECRET_KEY": "bench"},
            "/find-a-therapist",
        ),
        ("floor", "api_floor:app", HERE, {"FLOOR_DATABASE_URL": plain_url}, "/floor"),
    ]
    # Both servers stay up and take turns, so a noisy neighbour slows both alike; each
    # figure is the median of the rounds, and the share is the median of the rounds' own.
    servers = [
        _serve(app, port, args.workers, env, chdir)
        for port, (_, app, chdir, env, _) in enumerate(runs, start=args.port)
    ]
    rounds: dict[str, list[dict]] = {name: [] for name, *_ in runs}
    try:
        for n in range(args.rounds):
            for port, (name, _, _, _, prefix) in enumerate(runs, start=args.port):
                rounds[name].append(
                    _wrk(port, prefix, args.seconds, args.connections, args.radius_km, n == 0)
                )
    finally:
        for server in servers:
            server.terminate()
            server.wait()
    for name, results in rounds.items():
        for key in ("rps", "p50_ms", "p99_ms"):
            figures[f"{name}_{key}"] = statistics.median(r[key] for r in results)
        figures[f"{name}_non_2xx"] = sum(r["non_2xx"] for r in results)
        figures[f"{name}_rps_rounds"] = [r["rps"] for r in results]
    shares = [p["rps"] / f["rps"] for p, f in zip(rounds["plugin"], rounds["floor"], strict=True)]
    figures["plugin_share_of_floor"] = round(statistics.median(shares), 2)
    figures["loadavg_1m"] = round(os.getloadavg()[0], 2)
    figures["cpus"] = os.cpu_count()
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
