#!/usr/bin/env bash
# Regenerate the parity fixtures: expected logits of the tiny checkpoints from the independent PyTorch
# reference (reference/hf_reference.py). Needs Debian's python3-torch (apt-get install python3-torch
# libopenblas0-openmp). The tests only read the committed JSON; they need no Python.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-/usr/bin/python3}
for d in test/fixtures/tiny/*/; do
  name=$(basename "$d")
  "$PY" reference/hf_reference.py "$d" --ids 5,72,101,108,108,111,32,119,111,114,108,100 --ids 260,3,99,200,17,258,44,9,271,1,2,0,77,150 --ids 42 --out "test/fixtures/parity/$name.json"
  echo "wrote test/fixtures/parity/$name.json"
done
