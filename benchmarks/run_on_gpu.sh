#!/usr/bin/env bash
# Paper-scale run and GPU throughput benchmarks on a bare GPU machine (no network), results into $OUT.
#
#   benchmarks/run_on_gpu.sh prepare [DATA_DIR]   # here, once: data + missing wheels into .gpu/ (ignored)
#   benchmarks/run_on_gpu.sh all                  # there: benchmarks (<= 3.7 min), then paper_scale.py
#                                                 #   with the time left of a 570 s deadline
#   benchmarks/run_on_gpu.sh paper                # there: paper_scale.py alone (budget 510 s)
#   benchmarks/run_on_gpu.sh bench                # there: benchmarks and CUDA tests alone
#
# On the device tool: run(command="bash benchmarks/run_on_gpu.sh all", carry=[".gpu"], timeout_s=600).
# The script stops its own work 570 s after it starts (each step under `timeout`), then packs what
# exists, so a slow step still returns everything finished before it.  What comes back ($OUT, at
# most 8 files): log.txt (all output), paper_scale.json, summary.md, paper_png.tar.gz (PNGs, JSON,
# summary), paper_h5.tar.gz[.N] (figure data and Table 1 run files, split in 15 MiB parts).
#
# DEVICE (cuda) and PRESET (paper) can be overridden for a local smoke test of this script:
#   DEVICE=cpu PRESET=test OUT=/tmp/gpu_out benchmarks/run_on_gpu.sh paper
set -u
cd "$(dirname "$0")/.."
DEVICE="${DEVICE:-cuda}"
PRESET="${PRESET:-paper}"
MODE="${1:-all}"
START=$(date +%s)
DEADLINE=$((START + ${DEADLINE_S:-570}))

if [ "$MODE" = "prepare" ]; then
    DATA="${2:-${SPECTRAL_PROBE_DATA:-../shared/data}}"
    mkdir -p .gpu/data/audio .gpu/whl || exit 1
    for f in tetris.wav gt_bach.wav; do
        cp "$DATA/audio/$f" .gpu/data/audio/ || { echo "error: $DATA/audio/$f not found" >&2; exit 2; }
    done
    grep -qx '.gpu/' .gitignore || { echo "error: .gpu/ must be git-ignored" >&2; exit 2; }
    # the device image lacks these (its package list has h5py, xarray, scipy, scikit-image, but not
    # h5netcdf, soundfile, cffi, pycparser); cp312 manylinux wheels, as the device README describes
    python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
        --platform manylinux2014_x86_64 --platform manylinux1_x86_64 -d .gpu/whl \
        h5netcdf==1.8.3 soundfile==0.14.0 cffi==2.1.1 pycparser==3.12 || exit 1
    du -sh .gpu
    exit 0
fi

OUT="$(mkdir -p "${OUT:-gpu_out}" && cd "${OUT:-gpu_out}" && pwd)"
WORK=/tmp/paper_scale_out
mkdir -p "$WORK"
LOG="$OUT/log.txt"
export PYTHONUNBUFFERED=1
left() { echo $((DEADLINE - $(date +%s))); }
say() { echo "[run_on_gpu $(date +%H:%M:%S), $(left) s left] $*" | tee -a "$LOG"; }

say "mode $MODE; $(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1)"
# packages the image lacks, from the carried wheels (only those that do not import)
missing=""
for mod in h5netcdf soundfile; do python3 -c "import $mod" 2>/dev/null || missing="$missing $mod"; done
if [ -n "$missing" ]; then
    say "installing carried wheels for:$missing"
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
        .gpu/whl/*.whl >>"$LOG" 2>&1 && export PYTHONPATH="/tmp/site:${PYTHONPATH:-}"
fi
if python3 -m pip install -q --no-index --no-deps --no-build-isolation -e . >>"$LOG" 2>&1; then
    say "pip install -e . done"
else
    say "pip install -e . failed (no network?): using PYTHONPATH=$PWD"
fi
export PYTHONPATH="$PWD:${PYTHONPATH:-}"
export SPECTRAL_PROBE_DATA="$PWD/.gpu/data"
python3 -c "import torch, spectral_probe, h5netcdf, soundfile; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'no GPU')" 2>&1 | tee -a "$LOG"

step() {  # step SECONDS command... : run under timeout, never past the deadline
    local limit=$1; shift
    local cap=$(( $(left) - 30 ))
    [ "$limit" -gt "$cap" ] && limit=$cap
    if [ "$limit" -lt 20 ]; then say "skipped (deadline): $*"; return; fi
    say "start (<= $limit s): $*"
    timeout -s TERM "$limit" "$@" 2>&1 | tee -a "$LOG"
    say "exit ${PIPESTATUS[0]}: $1 $2"
}

if [ "$MODE" = "bench" ] || [ "$MODE" = "all" ]; then
    step 60 python3 -m pytest -q -p no:cacheprovider tests/test_accel.py tests/test_batched.py -k cuda
    step 70 python3 benchmarks/bench_training.py --device "$DEVICE" --size paper --epochs 100 --repeats 3 \
        --routes authors fit fit-compile fit-graphs
    step 50 python3 benchmarks/bench_training.py --device "$DEVICE" --size quick --epochs 300 --repeats 3 \
        --routes authors fit fit-graphs fit-compile-graphs
    step 40 python3 benchmarks/bench_batched.py --device "$DEVICE" --shapes quick --ks 4 16 --epochs 50 --repeats 2
fi
if [ "$MODE" = "paper" ] || [ "$MODE" = "all" ]; then
    budget=$(( $(left) - 45 ))
    [ "$MODE" = "paper" ] && [ "$budget" -gt 510 ] && budget=510
    step $((budget + 15)) python3 benchmarks/paper_scale.py --preset "$PRESET" --device "$DEVICE" --out "$WORK" \
        --budget-s "$budget" --data .gpu/data
fi

# pack: at most 8 files, 16 MiB each, in $OUT
cp "$WORK/paper_scale.json" "$WORK/summary.md" "$OUT/" 2>/dev/null
(cd "$WORK" && ls *.png >/dev/null 2>&1 && tar czf "$OUT/paper_png.tar.gz" *.png paper_scale.json summary.md)
rm -f /tmp/paper_h5.tar.gz
(cd "$WORK" && find . -name '*.h5' | sort > /tmp/paper_h5.list && [ -s /tmp/paper_h5.list ] && \
    tar czf /tmp/paper_h5.tar.gz -T /tmp/paper_h5.list)
if [ -s /tmp/paper_h5.tar.gz ]; then
    if [ "$(stat -c %s /tmp/paper_h5.tar.gz)" -le $((15 * 1024 * 1024)) ]; then
        mv /tmp/paper_h5.tar.gz "$OUT/"
    else
        split -b 15M -d -a 1 /tmp/paper_h5.tar.gz "$OUT/paper_h5.tar.gz."
        ls "$OUT"/paper_h5.tar.gz.* | tail -n +5 | xargs -r rm -f   # keep 4 parts (8 files in all)
        say "h5 archive split (cat paper_h5.tar.gz.* > paper_h5.tar.gz); parts beyond 4 dropped, if any"
    fi
fi
say "done; files in $OUT: $(ls "$OUT" | tr '\n' ' ')"
