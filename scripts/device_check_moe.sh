#!/usr/bin/env bash
# GPU check of a declared mixture of experts (examples/gpu-models/moe.toml) on one lent card, under 5 minutes.
# Results go to $OUT (default reports/device-check-moe): gpu.txt, record.log, explain.txt.
set -uo pipefail
OUT=${OUT:-reports/device-check-moe}
mkdir -p "$OUT"
source scripts/device_env.sh
timeout 200 python3 -m perfsuite.cli rebaseline --matrix examples/gpu-models/moe.toml --baselines /tmp/bl-moe \
    --report-dir "$OUT/record" 2>&1 | grep -v -i warn | tee "$OUT/record.log"
timeout 40 python3 -m perfsuite.cli explain examples/gpu-models/qwen1.5-moe/config.json \
    examples/gpu-models/qwen2-0.5b/config.json --device h100 --dtype fp16 --max-length 2048 2>&1 | tee "$OUT/explain.txt"
