"""The child process of section 2: one ``from_pretrained`` timed, then one touch of every weight page.

``python -m benchmarks.load_child PATH DTYPE KWARGS_JSON`` prints ``{"load": s, "touch": s}``.
torch, transformers and the model's module are imported before the timer starts.
"""

import json, sys, time
import torch
from transformers import AutoConfig, AutoModelForCausalLM
from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING
from helpers.dtypes import DTYPES
path, dtype, kwargs = sys.argv[1], DTYPES[sys.argv[2]], json.loads(sys.argv[3])
MODEL_FOR_CAUSAL_LM_MAPPING[type(AutoConfig.from_pretrained(path))]  # import the model's module
start = time.perf_counter()
model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype, **kwargs)
load = time.perf_counter() - start
assert next(model.parameters()).dtype == dtype
start = time.perf_counter()
for p in model.parameters():  # read one element per 4 KiB page: faults in mmap-backed weights
    p.detach().reshape(-1)[:: max(1, 4096 // p.element_size())].sum()
print(json.dumps({"load": load, "touch": time.perf_counter() - start}))
