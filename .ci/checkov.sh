#!/usr/bin/env bash
# Static check of infra/ with a pinned checkov, installed in its own isolated environment by uvx
# (never mixed with the project's dependencies). Runs offline (--skip-download).
# checkov exits 0 when a file fails to parse, so the verdict comes from its JSON output:
# the gate fails unless parsing_errors == 0 and failed == 0. Known false positives are
# suppressed next to the resource with a commented `checkov:skip=ID: reason`.
set -euo pipefail

CHECKOV_VERSION="${CHECKOV_VERSION:-3.3.30}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="$(mktemp)"
trap 'rm -f "$out"' EXIT

cd "$root"
# checkov's own exit code is 1 when checks fail; the JSON verdict below decides.
uvx --quiet --from "checkov==${CHECKOV_VERSION}" checkov \
  --framework bicep --skip-download --quiet --compact -d infra -o json >"$out" || true

python3 - "$out" <<'PY'
import json
import sys

path = sys.argv[1]
try:
    with open(path, encoding="utf-8") as fh:
        data = json.load(fh)
except (OSError, ValueError) as exc:
    print(f"checkov: could not read its JSON output: {exc}", file=sys.stderr)
    sys.exit(2)

reports = data if isinstance(data, list) else [data]
totals = {"passed": 0, "failed": 0, "skipped": 0, "parsing_errors": 0, "resource_count": 0}
failed_rows = []
parse_files = []
for report in reports:
    summary = report.get("summary", report)
    for key in totals:
        totals[key] += int(summary.get(key, 0) or 0)
    results = report.get("results", {})
    for check in results.get("failed_checks", []):
        failed_rows.append(f"  {check.get('check_id')} {check.get('resource')} ({check.get('file_path')}): {check.get('check_name')}")
    parse_files.extend(results.get("parsing_errors", []))

print(
    "checkov {v}: passed={passed} failed={failed} skipped={skipped} "
    "parsing_errors={parsing_errors} resources={resource_count}".format(
        v=reports[0].get("summary", {}).get("checkov_version", "?"), **totals
    )
)
for row in failed_rows:
    print(row)
for name in parse_files:
    print(f"  parse error: {name}")
if totals["resource_count"] == 0:
    print("checkov: no resources scanned (wrong directory or unparsed files?)", file=sys.stderr)
    sys.exit(1)
sys.exit(0 if totals["failed"] == 0 and totals["parsing_errors"] == 0 else 1)
PY
