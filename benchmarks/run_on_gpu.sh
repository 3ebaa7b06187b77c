#!/usr/bin/env bash
# Continue the paper's reproduction (figures/paper/manifest.json) on a bare GPU machine; GPU benchmarks.
#
#   benchmarks/run_on_gpu.sh prepare [DATA_DIR]   # here, before each GPU run: data, the wheels the device image
#                                                 #   lacks, the commit id, and the checkpoints of partial parts
#                                                 #   (not in git) into .gpu/ (git-ignored; <= 64 MiB in all)
#   benchmarks/run_on_gpu.sh paper                # there: `spectral-probe reproduce paper` until 570 s after the
#                                                 #   start (less the packing), then the new results into $OUT
#   benchmarks/run_on_gpu.sh bench                # there: CUDA tests, training throughput, Table 1 seeds K = 1 vs 5
#   benchmarks/run_on_gpu.sh all                  # there: bench (<= ~3.5 min), then paper with the time left
#
# Device tool: run(command="bash benchmarks/run_on_gpu.sh paper", carry=[".gpu"], timeout_s=600).
# The working tree brings figures/paper (manifest, results in git); .gpu/paper brings the checkpoints of
# partial parts (`prepare` copies them from figures/paper/runs/ etc.).  What comes back in $OUT (<= 8 files):
# log.txt, paper-results.tar.gz or its pieces paper-results.tar.gz.000 ... (<= 6 x 15 MiB: the manifest,
# README, figures, part results, Table 1 run files and checkpoints written by this run; what does not fit
# is listed in left-behind.txt and the packed manifest says so).  Back here, one command merges it:
#
#   spectral-probe reproduce paper --import <the folder holding the fetched files>
#   spectral-probe reproduce paper --status        # then: git add figures/paper && git commit
#
# DEVICE (cuda), PRESET (paper), DEADLINE_S (570), PACK_S (45: seconds kept for packing), PAPER_DIR
# (figures/paper), JOBS (all; e.g. table1,fig1) and OUT can be set, e.g. for a rehearsal on a CPU
# (tests/test_paperscale_transfer.py does):
#   DEVICE=cpu PRESET=test PAPER_DIR=/tmp/pp OUT=/tmp/gpu_out DEADLINE_S=60 PACK_S=15 benchmarks/run_on_gpu.sh paper
set -u
cd "$(dirname "$0")/.."
DEVICE="${DEVICE:-cuda}"
PRESET="${PRESET:-paper}"
PAPER_DIR="${PAPER_DIR:-figures/paper}"
JOBS="${JOBS:-}"
PACK_S="${PACK_S:-45}"
MODE="${1:-all}"
START=$(date +%s)
DEADLINE=$((START + ${DEADLINE_S:-570}))
PY="${PYTHON:-python3}"

if [ "$MODE" = "prepare" ]; then
    DATA="${2:-${SPECTRAL_PROBE_DATA:-../shared/data}}"
    mkdir -p .gpu/data/audio .gpu/whl || exit 1
    for f in tetris.wav gt_bach.wav; do
        cp "$DATA/audio/$f" .gpu/data/audio/ || { echo "error: $DATA/audio/$f not found" >&2; exit 2; }
    done
    grep -qx '.gpu/' .gitignore || { echo "error: .gpu/ must be git-ignored" >&2; exit 2; }
    # the device image lacks these (its package list has h5py, xarray, scipy, scikit-image, but not
    # h5netcdf, soundfile, cffi, pycparser); cp312 manylinux wheels, as the device README describes
    if ! ls .gpu/whl/soundfile-*.whl >/dev/null 2>&1; then
        "$PY" -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
            --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
            --platform manylinux2014_x86_64 --platform manylinux1_x86_64 -d .gpu/whl \
            h5netcdf==1.8.3 soundfile==0.14.0 cffi==2.1.1 pycparser==3.12 || exit 1
    fi
    commit=$(git rev-parse --short HEAD) || exit 1
    git diff --quiet HEAD -- spectral_probe || commit="$commit+dirty"
    echo "$commit" > .gpu/commit
    # checkpoints of partial parts (and large results of undrawn figures) that git does not hold
    "$PY" -m spectral_probe reproduce paper --out "$PAPER_DIR" --carry .gpu/paper || exit 2
    du -sh .gpu
    exit 0
fi

OUT="$(mkdir -p "${OUT:-gpu_out}" && cd "${OUT:-gpu_out}" && pwd)"
LOG="$OUT/log.txt"
export PYTHONUNBUFFERED=1
left() { echo $((DEADLINE - $(date +%s))); }
say() { echo "[run_on_gpu $(date +%H:%M:%S), $(left) s left] $*" | tee -a "$LOG"; }

say "mode $MODE; $(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1 | head -1)"
# packages the image lacks, from the carried wheels (only those that do not import)
missing=""
for mod in h5netcdf soundfile; do "$PY" -c "import $mod" 2>/dev/null || missing="$missing $mod"; done
if [ -n "$missing" ] && ls .gpu/whl/*.whl >/dev/null 2>&1; then
    say "installing carried wheels for:$missing"
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
        .gpu/whl/*.whl >>"$LOG" 2>&1 && export PYTHONPATH="/tmp/site:${PYTHONPATH:-}"
fi
export PYTHONPATH="$PWD:${PYTHONPATH:-}"
[ -d .gpu/data ] && export SPECTRAL_PROBE_DATA="$PWD/.gpu/data"
[ -s .gpu/commit ] && export SPECTRAL_PROBE_COMMIT="$(cat .gpu/commit)"
"$PY" -c "import torch, spectral_probe, h5py; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'no GPU')" 2>&1 | tee -a "$LOG"

step() {  # step SECONDS command... : run under timeout (SIGTERM, then KILL 20 s later), never past the deadline
    local limit=$1; shift
    local cap=$(( $(left) - 25 ))
    [ "$limit" -gt "$cap" ] && limit=$cap
    if [ "$limit" -lt 15 ]; then say "skipped (deadline): $*"; return; fi
    say "start (<= $limit s): $*"
    timeout -k 20 -s TERM "$limit" "$@" 2>&1 | tee -a "$LOG"
    local rc=${PIPESTATUS[0]}
    say "exit $rc: $1 ${2:-} ${3:-} ${4:-}"
}

if [ "$MODE" = "bench" ] || [ "$MODE" = "all" ]; then
    step 60 "$PY" -m pytest -q -p no:cacheprovider tests/test_accel.py tests/test_batched.py -k cuda
    step 70 "$PY" benchmarks/bench_training.py --device "$DEVICE" --size paper --epochs 100 --repeats 3 \
        --routes authors fit fit-compile fit-graphs
    # Table 1 seeds one at a time vs five together (fit_batched) at the paper size: sets table1.SEEDS_TOGETHER
    step 90 "$PY" benchmarks/bench_batched.py --device "$DEVICE" --shapes table1 --ks 5 --epochs 100 --repeats 2 \
        --routes one-by-one bmm
fi
if [ "$MODE" = "paper" ] || [ "$MODE" = "all" ]; then
    mkdir -p "$PAPER_DIR"
    if [ -d .gpu/paper ]; then     # checkpoints of partial parts, carried in (never over a file in git)
        cp -rn .gpu/paper/. "$PAPER_DIR"/ && say "restored $(find .gpu/paper -type f | wc -l) carried file(s)"
    fi
    T0=$(date +%s)
    budget=$(( $(left) - PACK_S ))  # the runner stops itself within it (last checkpoint included)
    jobs_arg=()
    [ -n "$JOBS" ] && jobs_arg=(--jobs "$JOBS")
    if [ "$budget" -ge 10 ]; then
        say "start: reproduce paper, budget $budget s${JOBS:+, jobs $JOBS}"
        # SIGTERM 10 s after the budget (the runner checkpoints and stops), KILL 10 s later
        timeout -k 10 -s TERM $((budget + 10)) "$PY" -m spectral_probe reproduce paper --preset "$PRESET" \
            --device "$DEVICE" --out "$PAPER_DIR" --budget "${budget}s" ${jobs_arg[@]+"${jobs_arg[@]}"} 2>&1 | tee -a "$LOG"
        say "exit ${PIPESTATUS[0]}: reproduce paper"
    else
        say "skipped reproduce paper: $budget s left for it"
    fi
    say "packing the results of the runs since $T0"
    "$PY" -m spectral_probe reproduce paper --out "$PAPER_DIR" --export "$OUT" --since "$T0" 2>&1 | tee -a "$LOG"
    "$PY" -m spectral_probe reproduce paper --out "$PAPER_DIR" --status --preset "$PRESET" 2>&1 | tee -a "$LOG"
fi
say "done; files in $OUT: $(ls "$OUT" | tr '\n' ' ')"
