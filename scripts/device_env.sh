# Sourced by the prepared device scripts (scripts/device_check*.sh), from the repo root with $OUT
# set: this checkout installed into /tmp/site beside the wheels the device image lacks (.whl/,
# bitsandbytes), offline settings, and the card and library versions written to $OUT/gpu.txt.
if ls .whl/*.whl >/dev/null 2>&1; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
        && export PYTHONPATH=/tmp/site
fi
python3 -m pip install -q --no-index --no-deps --no-build-isolation --no-compile --upgrade --target /tmp/site . \
    && export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
export HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1 COLUMNS=200
{
    nvidia-smi --query-gpu=name,compute_cap,memory.total,driver_version --format=csv
    python3 -c "import torch, transformers, bitsandbytes as b; print('torch', torch.__version__, 'transformers', transformers.__version__, 'bitsandbytes', b.__version__)"
} 2>&1 | tee "$OUT/gpu.txt"
