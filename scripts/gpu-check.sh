#!/usr/bin/env bash
# The GPU checks in one run: the CUDA benchmarks and the gpu-marked tests, each step under its
# own time limit and all of them under one budget, with a summary table at the end.
#
#   bash scripts/gpu-check.sh [PYTHON]            PYTHON: .venv/bin/python if it exists, else python3
#   bash scripts/gpu-check.sh --fetch-wheels DIR  (on a machine with a package index) download the
#                                                 anchors a CUDA image often lacks into DIR
#
# For a CUDA machine with PyTorch but no package index (no pip install, no .venv): carry the
# fetched wheels there and name them with WHEELS=DIR; they are installed with --no-deps into a
# temporary folder, and the repository itself is put on PYTHONPATH instead of being installed.
#
# Environment:
#   WHEELS=DIR     install DIR/*.whl first (--no-index --no-deps)
#   LOG_DIR=DIR    where each step's output goes (DIR/<step>.log) and the table (DIR/summary.md)
#                  (default: $OUT when it is set, else a new temporary folder)
#   BUDGET_S=N     start no step after N seconds, and cut each step's limit to what is left (default 540)
#   STEPS="a b"    run only these steps (names as in the table below)
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT" || exit 1

# Test extras that a CUDA image with torch, timm and transformers may still lack (pure-Python wheels).
FETCHED=(hiera-transformer pykan)

if [[ ${1:-} == --fetch-wheels ]]; then
    dest=${2:?"--fetch-wheels needs a folder"}
    # The version ranges come from pyproject.toml's test extra, so the wheels match what CI tests.
    mapfile -t specs < <(python3 - "${FETCHED[@]}" <<'EOF'
import re, sys, tomllib
extra = tomllib.load(open("pyproject.toml", "rb"))["project"]["optional-dependencies"]["test"]
for name in sys.argv[1:]:
    print(next(s for s in extra if re.match(rf"{re.escape(name)}\b", s)).split("#")[0].strip())
EOF
    ) || exit 1
    mkdir -p "$dest" && python3 -m pip download --quiet --no-deps --only-binary=:all: -d "$dest" "${specs[@]}" || exit 1
    ls "$dest"
    exit 0
fi

PY=${1:-}
if [[ -z $PY ]]; then
    if [[ -x .venv/bin/python ]]; then PY=.venv/bin/python; else PY=python3; fi
fi
LOG_DIR=${LOG_DIR:-${OUT:-$(mktemp -d)}}
BUDGET_S=${BUDGET_S:-540}
export PYTHONUNBUFFERED=1 PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
mkdir -p "$LOG_DIR"

if [[ -n ${WHEELS:-} ]]; then
    site=$(mktemp -d)
    "$PY" -m pip install --quiet --disable-pip-version-check --no-index --no-deps --no-compile \
        --target "$site" "$WHEELS"/*.whl || { echo "gpu-check: could not install the wheels in $WHEELS"; exit 2; }
    export PYTHONPATH="$site:$PYTHONPATH"
fi

"$PY" - <<'EOF' || exit 2
import importlib, sys
import torch
print(f"python {sys.version.split()[0]}, torch {torch.__version__}, CUDA {torch.version.cuda}")
if not torch.cuda.is_available():
    sys.exit("gpu-check needs a CUDA device; torch.cuda.is_available() is False")
print(f"device: {torch.cuda.get_device_name()}, {torch.cuda.get_device_properties(0).total_memory / 2**30:.0f} GiB")
missing = []
for name in ("refimpl", "transformers", "timm", "hiera", "kan", "pytest"):
    try:
        module = importlib.import_module(name)
        print(f"  {name} {getattr(module, '__version__', '')}")
    except ImportError as error:
        missing.append(f"{name} ({error})")
if missing:
    sys.exit("gpu-check: cannot import " + ", ".join(missing) + "; see scripts/gpu-check.sh --fetch-wheels")
EOF

# The card as found (a read-only query): the report names the driver and the clocks it ran at.
if command -v nvidia-smi >/dev/null; then
    nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm,power.limit --format=csv
fi

# name | limit in seconds | command. The issue's headline numbers first, in case the budget runs out.
STEP_TABLE=(
    "mae-vit|240|$PY benchmarks/mae_pretrain.py --device cuda"
    "tests|200|$PY -m pytest -m gpu -p no:cacheprovider -q --durations=5"
    "mae-hiera|200|$PY benchmarks/mae_pretrain.py --model hiera --device cuda"
    "data|60|$PY benchmarks/pretrain_data.py --device cuda"
    "hiera|90|$PY benchmarks/hiera.py --device cuda"
    "hiera-video|90|$PY benchmarks/hiera.py --video --device cuda --warmup 1 --runs 3"
    "kan|60|$PY benchmarks/kan.py --device cuda"
)

start=$SECONDS
summary=("| step | result | seconds |" "| --- | --- | --- |")
failed=0
ran=()
for entry in "${STEP_TABLE[@]}"; do
    IFS='|' read -r name limit command <<<"$entry"
    if [[ -n ${STEPS:-} && " $STEPS " != *" $name "* ]]; then continue; fi
    left=$((BUDGET_S - (SECONDS - start)))
    if ((left < 30)); then
        summary+=("| $name | skipped: budget spent | 0 |")
        failed=1
        continue
    fi
    ((limit > left)) && limit=$left
    echo
    echo "=== $name (limit ${limit} s): $command"
    step_start=$SECONDS
    ran+=("$name")
    # shellcheck disable=SC2086 - the command is a plain word list
    timeout --kill-after=10 "$limit" $command 2>&1 | tee "$LOG_DIR/$name.log"
    rc=${PIPESTATUS[0]}
    case $rc in
        0) result=ok ;;
        124 | 137) result="timed out after $limit s"; failed=1 ;;
        *) result="failed ($rc)"; failed=1 ;;
    esac
    summary+=("| $name | $result | $((SECONDS - step_start)) |")
done

# The end of each step's output again (the benchmark tables, pytest's last lines), then the table:
# whoever reads only the tail of a long log still gets every result.
echo
echo "=== results (the last lines of each step; full logs in $LOG_DIR)"
for name in "${ran[@]}"; do
    echo "--- $name"
    tail -n 12 "$LOG_DIR/$name.log"
done
echo
printf '%s\n' "${summary[@]}" | tee "$LOG_DIR/summary.md"
echo "total: $((SECONDS - start)) s"
exit $failed
