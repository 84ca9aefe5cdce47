#!/usr/bin/env bash
# Run the course on a CUDA machine that has no package index, and collect the evidence in $OUT.
#
# What the machine needs first (README, "Running on a GPU"): python3 with a CUDA build of torch;
# the pinned packages unpacked into /tmp/site (wheels unzipped: transformers, huggingface_hub,
# tokenizers, bitsandbytes, peft, gguf, ipykernel, nbclient, nbformat, nbval, ipywidgets and
# their dependencies); the course GGUF file (94 MB) at $COURSE_MODELS_DIR/.cache/.
#
# It then builds the course models with `python -m helpers prepare` (from the GGUF, offline) and,
# side by side:
#   (a) the test suite (unit tests, check tests, nbval over every notebook; not the browser test):
#       pytest.log says whether every checked cell matched its stored (CPU) output;
#   (b) every lesson and solution executed top to bottom with its outputs kept (two at a time),
#       in a copy of the repository: executed.tar.gz, and execute.log with times and peak RSS.
# Both share the machine, so the times in execute.log are a little inflated.
set -u
cd "$(dirname "$0")/.."
REPO=$PWD
OUT=${OUT:-/tmp/gpu-out}
mkdir -p "$OUT"
export PYTHONPATH=/tmp/site:$REPO HF_HUB_OFFLINE=1 HF_HUB_DISABLE_PROGRESS_BARS=1 TOKENIZERS_PARALLELISM=false
export COURSE_MODELS_DIR=${COURSE_MODELS_DIR:-/tmp/models} PYTHONUNBUFFERED=1

{
  nvidia-smi --query-gpu=name,memory.total,driver_version,compute_cap --format=csv
  python3 -c "import torch, transformers, accelerate, bitsandbytes, peft; print('torch', torch.__version__, 'cuda', torch.version.cuda, '| transformers', transformers.__version__, '| accelerate', accelerate.__version__, '| bitsandbytes', bitsandbytes.__version__, '| peft', peft.__version__)"
  echo "cores: $(nproc)"; grep -m1 "model name" /proc/cpuinfo
  grep -o -m1 -w "avx512_bf16\|amx_bf16" /proc/cpuinfo | sort -u
  python3 -m helpers prepare && python3 -m helpers env
} > "$OUT/env.txt" 2>&1 || { echo "set-up failed"; tail -30 "$OUT/env.txt"; exit 1; }

(
  OMP_NUM_THREADS=2 timeout 420 python3 -m pytest -p no:cacheprovider -n 8 --dist loadfile --durations=15 \
    --ignore=tests/test_browser.py > "$OUT/pytest.log" 2>&1
  echo "pytest exit code: $?" >> "$OUT/pytest.log"
) &

rm -rf /tmp/executed && cp -r "$REPO" /tmp/executed
(
  cd /tmp/executed
  export PYTHONPATH=/tmp/site:/tmp/executed OMP_NUM_THREADS=4
  ls notebooks/*.ipynb solutions/*.ipynb | xargs -P 2 -n 1 timeout 400 python3 -m tools.execute > "$OUT/execute.log" 2>&1
  tar czf "$OUT/executed.tar.gz" notebooks solutions
)
wait
tail -25 "$OUT/pytest.log"
echo "---"
cat "$OUT/execute.log" | grep ipynb
