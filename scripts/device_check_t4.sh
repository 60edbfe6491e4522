#!/usr/bin/env bash
# The prepared check for #37 item 6 - does it fit a T4? - on one lent H100/H200, in under 8 minutes.
# The gpu-t4 tier (perfsuite/matrices/gpu-t4.toml) runs Gemma-2-9B and Llama-3-8B nf4 (fp16
# compute) at max_length 2048, batch 4, sorted and packed, eager and sdpa, as a T4: device memory
# capped at 15 GiB, sm75's rules. It records what fits and each variant's peak; an out-of-memory
# error under the cap is a variant that does not fit. Times are the host card's.
# Results go to $OUT (default reports/device-check-t4): gpu.txt, t4.log, report.{json,md}.
set -uo pipefail
OUT=${OUT:-reports/device-check-t4}
mkdir -p "$OUT"
source scripts/device_env.sh
# Shape-only weights (speed and memory do not depend on their values); an empty baselines folder:
# no records to judge against, the in-run checks and each variant's peak in the table (the
# report.json beside it). 8 variants, about 40 s each with loading.
timeout 420 python3 -m perfsuite.cli run --matrix gpu-t4 --baselines /tmp/perfsuite-t4-baselines \
    --report-dir "$OUT" 2>&1 | grep -v -i warn | tee "$OUT/t4.log"
