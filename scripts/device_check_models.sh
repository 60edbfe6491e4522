#!/usr/bin/env bash
# The prepared GPU check of issue #14: model types that are not built in, declared by config.json in a
# user matrix (examples/gpu-models), run at full size on one lent card in under 8 minutes.
# Results go to $OUT (default reports/device-check-models): gpu.txt, matrix.txt, record.log,
# pytest.log, explain-*.txt, record/report.{json,md}.
set -uo pipefail
OUT=${OUT:-reports/device-check-models}
mkdir -p "$OUT"
if ls .whl/*.whl >/dev/null 2>&1; then  # packages the device image lacks (bitsandbytes), carried as wheels
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
        && export PYTHONPATH=/tmp/site
fi
python3 -m pip install -q --no-index --no-deps --no-build-isolation --no-compile --target /tmp/site . \
    && export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
export HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1 COLUMNS=200
M=examples/gpu-models/matrix.toml
BL=/tmp/perfsuite-models-baselines
{
    nvidia-smi --query-gpu=name,compute_cap,memory.total,driver_version --format=csv
    python3 -c "import torch, transformers, bitsandbytes as b; print('torch', torch.__version__, 'transformers', transformers.__version__, 'bitsandbytes', b.__version__)"
} 2>&1 | tee "$OUT/gpu.txt"
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
