# Writes the reference files that tests/test_safetensors.cpp reads back, with the real safetensors library
# (pip install safetensors numpy). Rerun only to change them; the test checks the values written here.
#   python3 tests/data/safetensors/make_reference.py
import json
import os

import numpy as np
from safetensors.numpy import save_file

here = os.path.dirname(os.path.abspath(__file__))

tensors = {
    "f64": np.array([0.5, -1.25], dtype=np.float64),
    "f32": np.arange(6, dtype=np.float32).reshape(2, 3) - 2.5,  # [[-2.5, -1.5, -0.5], [0.5, 1.5, 2.5]]
    "f16": np.array([[1.0, -2.0], [0.25, 65504.0]], dtype=np.float16),
    "i64": np.array([-(2**40), 7], dtype=np.int64),
    "i32": np.array([-123456, 0, 99], dtype=np.int32),
    "i16": np.array([-300, 300], dtype=np.int16),
    "i8": np.array([-128, 127, 0], dtype=np.int8),
    "u8": np.array([[1, 2], [3, 255]], dtype=np.uint8),
    "bool": np.array([True, False, True]),
    "scalar": np.array(3.5, dtype=np.float32),
    "empty": np.zeros((0, 4), dtype=np.float32),
}
save_file(tensors, os.path.join(here, "reference.safetensors"), metadata={"format": "np", "writer": "safetensors"})

# A model folder in two shards, with the index transformers writes.
shards = {
    "model-00001-of-00002.safetensors": {"embed.weight": np.arange(8, dtype=np.float32).reshape(4, 2)},
    "model-00002-of-00002.safetensors": {"norm.weight": np.ones(2, dtype=np.float16),
                                         "head.bias": np.array([1, -1], dtype=np.int8)},
}
folder = os.path.join(here, "sharded")
os.makedirs(folder, exist_ok=True)
weight_map, total = {}, 0
for name, ts in shards.items():
    save_file(ts, os.path.join(folder, name), metadata={"format": "pt"})
    for t, a in ts.items():
        weight_map[t] = name
        total += a.nbytes
with open(os.path.join(folder, "model.safetensors.index.json"), "w") as f:
    json.dump({"metadata": {"total_size": total}, "weight_map": dict(sorted(weight_map.items()))}, f, indent=2)
    f.write("\n")
