"""One fresh process of the fixed-cost probe (run by path, never imported: `measure/fixed.py`).

Times what a scoring run pays before its first row, the way a notebook pays it: importing torch
and transformers with the model's sequence-classification class (its modeling module loads on that
first touch, so it counts as importing, as in a notebook), then ``from_pretrained`` on a local
safetensors checkpoint - plain (every page of its weights then read, as a move to a card reads them) or
quantised on load by bitsandbytes. Prints one JSON line: {"import_s", "load_s"}.

Nothing of perfsuite is imported here: the import time is torch's and transformers' alone.
"""

from __future__ import annotations

import time

START = time.perf_counter()

import json  # noqa: E402
import sys  # noqa: E402

import torch  # noqa: E402
import transformers  # noqa: E402
from transformers import LlamaForSequenceClassification  # noqa: E402  (the probe's class: its module loads here)

IMPORTED = time.perf_counter()


def quantization(mode: str):
    if mode == "nf4":
        return transformers.BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_compute_dtype=torch.float16,
            llm_int8_skip_modules=["score"],
        )
    if mode == "int8":
        return transformers.BitsAndBytesConfig(load_in_8bit=True, llm_int8_skip_modules=["score"])
    if mode == "fp16":
        return None
    raise SystemExit(f"unknown mode {mode!r}")


def main(folder: str, mode: str) -> None:
    from transformers.utils import logging

    logging.disable_progress_bar()
    logging.set_verbosity_error()
    quant = quantization(mode)
    kwargs = {"quantization_config": quant, "device_map": {"": "cpu"}} if quant else {}
    t0 = time.perf_counter()
    model = LlamaForSequenceClassification.from_pretrained(
        folder, dtype=torch.float16, local_files_only=True, use_safetensors=True, **kwargs
    )
    if quant is None:  # safetensors maps the file lazily: read every page, as a move to a card reads it
        for p in model.parameters():
            flat = p.data.reshape(-1)
            float(flat[:: max(1, 4096 // flat.element_size())].float().sum())
    load_s = time.perf_counter() - t0
    print(json.dumps({"import_s": IMPORTED - START, "load_s": load_s}))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
