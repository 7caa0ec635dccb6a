#!/usr/bin/env python3
"""Measures peak GPU memory for random-weight Llama configurations and prints it beside quantkit's
predictions (`quantkit estimate CONFIG --json`).

Needs: an NVIDIA GPU, PyTorch with CUDA, transformers; and either Node with this repository built
(`npm run build`: the script calls dist/cli/quantkit.js) or a predictions file written beforehand on a
machine that has them: `python3 scripts/gpu-memory-check.py --dump-predictions predictions.json` (no GPU
or PyTorch needed for that), then `--predictions predictions.json` on the GPU machine.

For each configuration it runs, in a fresh process each (so peaks do not leak between runs):
  - inference: load in bf16 + generate (prompt P tokens, N new tokens, batch B), SDPA attention;
  - one full fine-tuning step in pure bf16 with fused AdamW, without and with gradient checkpointing.
It records torch.cuda.max_memory_allocated() (allocator peak) and the device peak (memory used on the
device, sampled by NVML when available, else torch's reserved peak + the context measured at start).

    python3 scripts/gpu-memory-check.py                   # all configurations, table on stdout
    python3 scripts/gpu-memory-check.py --json out.json   # also write the raw results
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

CONFIGS = {
    # Llama 3.2 1B / 3B and Llama 3.1 8B shapes (random weights: memory does not depend on values).
    "llama-1b": dict(hidden_size=2048, num_hidden_layers=16, num_attention_heads=32, num_key_value_heads=8,
                     intermediate_size=8192, vocab_size=128256, tie_word_embeddings=True),
    "llama-3b": dict(hidden_size=3072, num_hidden_layers=28, num_attention_heads=24, num_key_value_heads=8,
                     intermediate_size=8192, vocab_size=128256, tie_word_embeddings=True),
    "llama-8b": dict(hidden_size=4096, num_hidden_layers=32, num_attention_heads=32, num_key_value_heads=8,
                     intermediate_size=14336, vocab_size=128256, tie_word_embeddings=False),
}
RUNS = [
    ("inference", dict(batch=1, prompt=512, new=128)),
    ("finetune", dict(batch=2, seq=1024, gc=False)),
    ("finetune-gc", dict(batch=2, seq=1024, gc=True)),
]
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def hf_config(shapes):
    return dict(model_type="llama", architectures=["LlamaForCausalLM"], max_position_embeddings=131072,
                rms_norm_eps=1e-5, rope_theta=500000.0, torch_dtype="bfloat16", **shapes)


def estimate_args(kind, p):
    if kind == "inference":
        return ["--scenario", "inference", "--dtype", "bf16", "--batch", str(p["batch"]), "--seq", str(p["prompt"] + p["new"])]
    args = ["--scenario", "finetune", "--precision", "bf16", "--optimizer", "adamw", "--batch", str(p["batch"]), "--seq", str(p["seq"])]
    return args + (["--grad-checkpointing"] if p["gc"] else [])


def predict(config_path, kind, p, predictions):
    key = f"{os.path.basename(os.path.dirname(config_path))}:{kind}"
    if predictions is not None:
        return predictions.get(key)
    cli = os.path.join(ROOT, "dist", "cli", "quantkit.js")
    out = {}
    for peak in ("allocator", "device"):
        r = subprocess.run(["node", cli, "estimate", config_path, "--json", "--peak", peak] + estimate_args(kind, p),
                           capture_output=True, text=True, check=True)
        out[peak] = json.loads(r.stdout)["peak_bytes"]
    return out


CHILD = r'''
import json, sys, threading, time, torch
from transformers import LlamaConfig, LlamaForCausalLM
cfg_path, kind, params = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
device_peak = [0]
try:
    import pynvml
    pynvml.nvmlInit(); h = pynvml.nvmlDeviceGetHandleByIndex(torch.cuda.current_device())
    def used(): return pynvml.nvmlDeviceGetMemoryInfo(h).used
except Exception:
    used = None
stop = False
def sample():
    while not stop:
        if used: device_peak[0] = max(device_peak[0], used())
        time.sleep(0.005)
torch.cuda.init(); torch.zeros(1, device="cuda")
base_used = used() if used else None
t = threading.Thread(target=sample, daemon=True); t.start()
cfg = LlamaConfig.from_json_file(cfg_path); cfg._attn_implementation = "sdpa"
with torch.device("cuda"):
    model = LlamaForCausalLM(cfg).to(torch.bfloat16)
torch.manual_seed(0)
if kind == "inference":
    model.eval()
    ids = torch.randint(0, cfg.vocab_size, (params["batch"], params["prompt"]), device="cuda")
    with torch.no_grad():
        model.generate(ids, max_new_tokens=params["new"], min_new_tokens=params["new"], do_sample=False)
else:
    model.train()
    if params["gc"]: model.gradient_checkpointing_enable()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-5, fused=True)
    ids = torch.randint(0, cfg.vocab_size, (params["batch"], params["seq"]), device="cuda")
    loss = model(input_ids=ids, labels=ids).loss
    loss.backward(); opt.step(); opt.zero_grad(set_to_none=True)
torch.cuda.synchronize(); time.sleep(0.05); stop = True; t.join()
res = {"allocator": torch.cuda.max_memory_allocated(), "reserved": torch.cuda.max_memory_reserved()}
res["device"] = device_peak[0] if used else None
res["context_at_start"] = base_used
print(json.dumps(res))
'''


def measure(config_path, kind, p):
    r = subprocess.run([sys.executable, "-c", CHILD, config_path, kind.replace("-gc", ""), json.dumps(p)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        return {"error": r.stderr.strip().splitlines()[-1] if r.stderr.strip() else f"exit {r.returncode}"}
    return json.loads(r.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json", help="write raw results here")
    ap.add_argument("--predictions", help="predictions file (key 'config:run' -> {allocator, device})")
    ap.add_argument("--only", help="comma-separated config names")
    ap.add_argument("--dump-predictions", help="only write quantkit's predictions to this file (no GPU needed)")
    args = ap.parse_args()
    if args.dump_predictions:
        out = {}
        with tempfile.TemporaryDirectory() as tmp:
            for name, shapes in CONFIGS.items():
                d = os.path.join(tmp, name)
                os.makedirs(d)
                cfg_path = os.path.join(d, "config.json")
                json.dump(hf_config(shapes), open(cfg_path, "w"))
                for kind, p in RUNS:
                    out[f"{name}:{kind}"] = predict(cfg_path, kind, dict(p, gc=p.get("gc", False)), None)
        json.dump(out, open(args.dump_predictions, "w"), indent=2)
        return
    predictions = json.load(open(args.predictions)) if args.predictions else None
    import torch
    gpu = torch.cuda.get_device_name(0)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, shapes in CONFIGS.items():
            if args.only and name not in args.only.split(","):
                continue
            d = os.path.join(tmp, name)
            os.makedirs(d)
            cfg_path = os.path.join(d, "config.json")
            json.dump(hf_config(shapes), open(cfg_path, "w"))
            for kind, p in RUNS:
                m = measure(cfg_path, kind, dict(p, gc=p.get("gc", False)))
                pred = predict(cfg_path, kind, dict(p, gc=p.get("gc", False)), predictions)
                results.append(dict(gpu=gpu, config=name, run=kind, params=p, measured=m, predicted=pred))
                GiB = 2 ** 30
                def f(x):
                    return "-" if x is None else f"{x / GiB:.2f}"
                if "error" in m:
                    print(f"{name:9} {kind:12} measurement failed: {m['error']}")
                    continue
                err = lambda a, b: "-" if a is None or b is None else f"{(b - a) / a * 100:+.1f}%"
                print(f"{name:9} {kind:12} allocator {f(m['allocator'])} GiB predicted {f(pred and pred.get('allocator'))} GiB "
                      f"({err(m['allocator'], pred and pred.get('allocator'))}); device {f(m.get('device'))} GiB predicted "
                      f"{f(pred and pred.get('device'))} GiB ({err(m.get('device'), pred and pred.get('device'))})", flush=True)
    if args.json:
        json.dump(results, open(args.json, "w"), indent=2)


if __name__ == "__main__":
    main()
