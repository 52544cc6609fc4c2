"""Cold start: `import function_app` in a fresh interpreter against importing its unavoidable dependencies.

    uv run python -m bench.cold_start [--repeats 7] [--case NAME=STATEMENT ...]

Each round starts one fresh interpreter per case, in turn (so a busy moment on this shared machine hits every
case alike), and the child times only its statement (interpreter start-up excluded). Prints each case's
median and minimum and the ratios of the app's median to the references' (issue 16: ≤ 1.25× the
dependencies; `deps_then_app`, the dependencies and then the app, is the stricter reading now that indexing
leaves jwt and cryptography to the first request). `import pydantic` loads only pydantic's lazy top level;
the first model class loads the rest (~30 ms), so "pydantic in use" also defines one small model: the floor
for any app that validates with it.
Settings that switch on work at import (Application Insights) or name a tenant are removed from the
environment, as in `bench.run`'s cold start. The installed packages' .pyc come from install time
(`compile-bytecode = true` in pyproject.toml, as pip and the Functions remote build do); the app's own .pyc
are written by an unmeasured first round (PYTHONDONTWRITEBYTECODE is removed for the children).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# What any Functions app on this stack imports anyway: the worker's library, the driver, validation, tokens.
DEPENDENCIES = "import azure.functions, asyncpg, pydantic, jwt, cryptography"
PYDANTIC_IN_USE = DEPENDENCIES + "; pydantic.create_model('M', x=(int, 0))(x=1)"
APP = "import function_app"
# Indexing imports jwt and cryptography no more (the token checks load on the first request): the app's own
# cost on top of every dependency is this case minus the dependencies.
DEPENDENCIES_THEN_APP = DEPENDENCIES + "; import function_app"
SCRUBBED = ("ENTRA_TENANT_ID", "ENTRA_CLIENT_ID", "ENTRA_OPENID_CONFIG_URL", "APPLICATIONINSIGHTS_CONNECTION_STRING",
            "DATABASE_URL", "PYTHONDONTWRITEBYTECODE")
CHILD = "import time; t = time.perf_counter(); {statement}; print(time.perf_counter() - t)"


def time_import(statement: str, env: dict[str, str]) -> float:
    done = subprocess.run([sys.executable, "-c", CHILD.format(statement=statement)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{statement!r} failed: {done.stderr[-2000:]}")
    return float(done.stdout.strip().splitlines()[-1])


def measure(cases: dict[str, str], repeats: int) -> dict[str, list[float]]:
    env = {name: value for name, value in os.environ.items() if name not in SCRUBBED}
    seconds: dict[str, list[float]] = {name: [] for name in cases}
    for statement in cases.values():  # writes the app's .pyc, like a deployment that ships them
        time_import(statement, env)
    for _ in range(repeats):
        for name, statement in cases.items():
            seconds[name].append(time_import(statement, env))
    return seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--case", action="append", default=[], metavar="NAME=STATEMENT",
                        help="another statement to time in the same rounds, e.g. settings='import pydantic_settings'")
    args = parser.parse_args(argv)
    cases = {"dependencies": DEPENDENCIES, "pydantic_in_use": PYDANTIC_IN_USE, "function_app": APP,
             "deps_then_app": DEPENDENCIES_THEN_APP}
    cases.update(case.split("=", 1) for case in args.case)
    seconds = measure(cases, args.repeats)
    medians = {name: statistics.median(values) * 1000 for name, values in seconds.items()}
    for name, values in seconds.items():
        print(f"{name:>16}: median {medians[name]:6.1f} ms, min {min(values) * 1000:6.1f} ms"
              f"  ({cases[name]}, {len(values)} runs)")
    for case, reference in (("function_app", "dependencies"), ("function_app", "pydantic_in_use"),
                            ("deps_then_app", "dependencies")):
        print(f"{case} / {reference} = {medians[case] / medians[reference]:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
