#!/usr/bin/env bash
# The prepared GPU check of issue #14: model types that are not built in, declared by config.json in a
# user matrix (examples/gpu-models), run at full size on one lent card in under 8 minutes.
# Results go to $OUT (default reports/device-check-models): gpu.txt, matrix.txt, record.log,
# pytest.log, explain-*.txt, record/report.{json,md}.
set -uo pipefail
OUT=${OUT:-reports/device-check-models}
mkdir -p "$OUT"
source scripts/device_env.sh
M=examples/gpu-models/matrix.toml
BL=/tmp/perfsuite-models-baselines
timeout 60 python3 -m perfsuite.cli matrix --matrix "$M" 2>&1 | tee "$OUT/matrix.txt"
# 1) Record: every declared model at full size, shape-only weights on the card.
timeout 240 python3 -m perfsuite.cli rebaseline --matrix "$M" --baselines "$BL" --report-dir "$OUT/record" \
    2>&1 | grep -v -i warn | tee "$OUT/record.log"
# 2) pytest with no test module of its own, against the records just made (a second process).
timeout 90 python3 -m pytest --perfsuite-matrix "$M" -m "perf and gpu" -p no:cacheprovider -rs \
    --perfsuite-baselines "$BL" --perfsuite-select 'qwen2-0.5b-*,gemma2-2b-fp16-sdpa-*' --perfsuite-report-dir /tmp/r \
    2>&1 | grep -v -i warn | tail -40 | tee "$OUT/pytest.log"
# 3) explain with config.json paths: the cost model's ratio for the models measured above.
for dev in h100 t4; do
    timeout 40 python3 -m perfsuite.cli explain examples/gpu-models/phi3-mini/config.json \
        examples/gpu-models/qwen2-0.5b/config.json --device "$dev" --dtype fp16 --attention-a sdpa --attention-b sdpa \
        --max-length 2048 2>&1 | tee "$OUT/explain-$dev.txt"
done
