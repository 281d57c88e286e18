#!/usr/bin/python3
"""llmesh's TQ1_0/TQ2_0 files against ggml's reference as gguf-py implements it.

  tq_gguf_py_check.py F16_FILE QUANTIZED_FILE...

Every ternary tensor of each QUANTIZED_FILE (written by `llmesh quantize` from
F16_FILE) must hold the very bytes gguf-py's quantizer writes for the F16
values, and gguf-py must dequantize it back to them (the weights are ternary
times an F16 scale, so exactly). Run with PYTHONPATH=../shared/arch/gguf-py.
"""
import sys

import numpy as np
from gguf import GGUFReader
from gguf.constants import GGMLQuantizationType as Q
from gguf.quants import dequantize, quantize


def main():
    f16 = {t.name: t for t in GGUFReader(sys.argv[1]).tensors}
    for path in sys.argv[2:]:
        checked = 0
        for t in GGUFReader(path).tensors:
            if t.tensor_type not in (Q.TQ1_0, Q.TQ2_0):
                continue
            src = f16[t.name]
            x = np.array(src.data, dtype=np.float32).reshape(-1, int(src.shape[0]))
            want = quantize(x, t.tensor_type)
            got = np.array(t.data).reshape(want.shape)
            if not np.array_equal(want, got):
                sys.exit(f"{path}: {t.name}: bytes differ from gguf-py's {t.tensor_type.name}")
            if not np.array_equal(dequantize(got, t.tensor_type).reshape(x.shape), x):
                sys.exit(f"{path}: {t.name}: gguf-py dequantizes to other values")
            checked += 1
        if checked == 0:
            sys.exit(f"{path}: no TQ1_0/TQ2_0 tensor")
        print(f"{path}: {checked} ternary tensors identical to gguf-py's")


if __name__ == "__main__":
    main()
