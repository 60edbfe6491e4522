#!/usr/bin/env bash
# The prepared GPU check (issue #5): the reduced GPU matrix on one lent card, in under 8 minutes.
# Run from the repo root on a CUDA machine. Results go to $OUT (default reports/device-check):
# gpu.txt, record.log (+ the table), check.log, pytest.log, record/report.{json,md}, baselines.tgz.
set -uo pipefail
OUT=${OUT:-reports/device-check}
mkdir -p "$OUT"
source scripts/device_env.sh
BL=/tmp/perfsuite-baselines

# 1) Record this card's baselines for the reduced matrix (shape-only full-size weights).
timeout 230 python3 -m perfsuite.cli rebaseline --matrix gpu-check --baselines "$BL" --report-dir "$OUT/record" \
    --ratio gemma2-9b:llama3-8b 2>&1 | grep -v -i warn | tee "$OUT/record.log"
# 2) A second process checks against them: the between-process spread on this card.
timeout 110 python3 -m perfsuite.cli run --matrix gpu-check --baselines "$BL" --report-dir /tmp/check \
    --ratio gemma2-9b:llama3-8b 2>&1 | grep -v -i warn | tee "$OUT/check.log"
# 3) The pytest plugin on the full GPU tier (max_length 2048, 64 rows), one variant, against the
#    committed baselines of this card if there are any (a skip saying so if not).
timeout 80 python3 -m pytest -m gpu tests/perf/test_gpu_tier.py -p no:cacheprovider -rs \
    --perfsuite-select 'llama3-8b-fp16-sdpa-sorted' 2>&1 | tail -40 | tee "$OUT/pytest.log"
[ -d "$BL" ] && tar czf "$OUT/baselines.tgz" -C "$BL" .
