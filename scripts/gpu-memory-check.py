#!/usr/bin/env python3
"""Measures peak GPU memory for random-weight Llama configurations and prints it beside quantkit's
predictions (`quantkit estimate CONFIG --json`).

Needs: an NVIDIA GPU, PyTorch with CUDA, transformers; and either Node with this repository built
(`npm run build`: the script calls dist/cli/quantkit.js) or a predictions file written beforehand on a
machine that has them: `python3 scripts/gpu-memory-check.py --dump-predictions predictions.json` (no GPU
or PyTorch needed for that), then `--predictions predictions.json` on the GPU machine.

For each configuration it runs, in a fresh process each (so peaks do not leak between runs):
  - inference: load in bf16 + generate (prompt P tokens, N new tokens, batch B), SDPA attention;
  - one full fine-tuning step in pure bf16 with fused AdamW, without and with gradient checkpointing;
  - two steps of LoRA as the Hugging Face Trainer sets it up (PEFT, fp32 adapters r=16 on every linear,
    dropout 0.05, gradient checkpointing, fp32 cross-entropy, AdamW);
  - two steps of QLoRA the same way (without prepare_model_for_kbit_training: embeddings, norms and head
    stay bf16) over a 4-bit NF4 base: bitsandbytes Linear4bit when bitsandbytes is
    installed, else a stand-in written here in plain PyTorch (NF4 codes + absmax per 64, dequantized for
    each matmul, input kept for backward: bitsandbytes' MatMul4Bit memory pattern), labelled as such.
The predictions use the same settings (`--framework hf-trainer` for LoRA/QLoRA). It records
torch.cuda.max_memory_allocated() (allocator peak) and the device peak (memory used on the device,
sampled by NVML when available, else torch's reserved peak + the context measured at start). Multi-GPU
strategies (FSDP, ZeRO-3) need a machine with several GPUs and are not run here.

On a GPU machine without Node (the usual case), write the predictions first where Node and the built
repository are, then run the measurements with them:

    python3 scripts/gpu-memory-check.py --dump-predictions gpu-predictions.json     # here: no GPU needed
    python3 scripts/gpu-memory-check.py --predictions gpu-predictions.json --json results.json   # GPU
    python3 scripts/gpu-memory-check.py --only llama-1b --runs lora,qlora          # a subset
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
    ("lora", dict(batch=2, seq=1024, gc=True, rank=16)),
    ("qlora", dict(batch=2, seq=1024, gc=True, rank=16)),
]
LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def hf_config(shapes):
    return dict(model_type="llama", architectures=["LlamaForCausalLM"], max_position_embeddings=131072,
                rms_norm_eps=1e-5, rope_theta=500000.0, torch_dtype="bfloat16", **shapes)


def estimate_args(kind, p):
    if kind == "inference":
        return ["--scenario", "inference", "--dtype", "bf16", "--batch", str(p["batch"]), "--seq", str(p["prompt"] + p["new"])]
    if kind in ("lora", "qlora"):
        # The child below reproduces the Trainer's setup, so the prediction takes the hf-trainer preset.
        return ["--scenario", "finetune", "--framework", "hf-trainer", "--method", kind, "--lora-rank", str(p["rank"]),
                *[a for t in LORA_TARGETS for a in ("--lora-targets", t)], "--batch", str(p["batch"]), "--seq", str(p["seq"]), "--grad-checkpointing", "--grad-accum", "1",
                "--no-kbit-upcast"]
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
torch.manual_seed(0)
quantizer = None
if kind == "qlora":
    # Build on the CPU, quantize each layer's linears, then move: the bf16 base never sits on the GPU whole.
    model = LlamaForCausalLM(cfg).to(torch.bfloat16)
    try:
        import bitsandbytes as bnb
        quantizer = "bitsandbytes " + bnb.__version__
        def make4(lin):
            q = bnb.nn.Linear4bit(lin.in_features, lin.out_features, bias=False, compute_dtype=torch.bfloat16, quant_type="nf4", compress_statistics=True)
            q.weight = bnb.nn.Params4bit(lin.weight.data, requires_grad=False, quant_type="nf4", compress_statistics=True)
            return q.cuda()
    except ImportError:
        quantizer = "plain-PyTorch NF4 stand-in (bitsandbytes not installed)"
        NF4 = torch.tensor([-1.0, -0.6962, -0.5251, -0.3949, -0.2844, -0.1848, -0.0911, 0.0,
                            0.0796, 0.1609, 0.2461, 0.3379, 0.4407, 0.5626, 0.7230, 1.0])
        class MatMulNF4(torch.autograd.Function):
            # bitsandbytes' MatMul4Bit pattern: dequantize for the matmul, keep the input, dequantize again in backward.
            @staticmethod
            def forward(ctx, x, layer):
                ctx.layer = layer; ctx.save_for_backward(x)
                return x @ layer.dequantize().t()
            @staticmethod
            def backward(ctx, g):
                return g @ ctx.layer.dequantize(), None
        class LinearNF4(torch.nn.Module):
            def __init__(self, lin):
                super().__init__()
                w = lin.weight.data.cuda().float().reshape(-1, 64)
                absmax = w.abs().amax(dim=1, keepdim=True).clamp_min(1e-12)
                codes = ((w / absmax).unsqueeze(-1) - NF4).abs().argmin(-1).to(torch.uint8).reshape(-1)
                self.register_buffer("packed", (codes[0::2] << 4 | codes[1::2]).cuda())
                self.register_buffer("absmax", absmax.reshape(-1).cuda())
                self.shape = lin.weight.shape
                self.in_features, self.out_features = lin.in_features, lin.out_features
                self.weight = torch.nn.Parameter(torch.empty(0, device="cuda", dtype=torch.bfloat16), requires_grad=False)
            def dequantize(self):
                codes = torch.stack((self.packed >> 4, self.packed & 15), dim=1).reshape(-1).long()
                table = NF4.to(self.absmax.device, torch.bfloat16)
                return (table[codes].reshape(-1, 64) * self.absmax.to(torch.bfloat16)[:, None]).reshape(self.shape)
            def forward(self, x):
                return MatMulNF4.apply(x, self)
        def make4(lin):
            return LinearNF4(lin)
    for layer in model.model.layers:
        for parent in (layer.self_attn, layer.mlp):
            for name, child in list(parent.named_children()):
                if isinstance(child, torch.nn.Linear): setattr(parent, name, make4(child))
    model.cuda()
else:
    with torch.device("cuda"):
        model = LlamaForCausalLM(cfg).to(torch.bfloat16)
if kind == "inference":
    model.eval()
    ids = torch.randint(0, cfg.vocab_size, (params["batch"], params["prompt"]), device="cuda")
    with torch.no_grad():
        model.generate(ids, max_new_tokens=params["new"], min_new_tokens=params["new"], do_sample=False)
else:
    model.train()
    if params["gc"]: model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    if kind in ("lora", "qlora"):
        from peft import LoraConfig, get_peft_model
        targets = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
        if kind == "qlora" and quantizer.startswith("plain"):
            # PEFT wraps nn.Linear (and bitsandbytes) layers: the stand-in gets its adapters by hand.
            class LoraNF4(torch.nn.Module):
                def __init__(self, base, r):
                    super().__init__()
                    self.base = base
                    self.A = torch.nn.Linear(base.in_features, r, bias=False, device="cuda", dtype=torch.float32)
                    self.B = torch.nn.Linear(r, base.out_features, bias=False, device="cuda", dtype=torch.float32)
                    torch.nn.init.zeros_(self.B.weight)
                    self.drop = torch.nn.Dropout(0.05)
                def forward(self, x):
                    return self.base(x) + (self.B(self.A(self.drop(x.float())))).to(x.dtype) * 2.0
            for p in model.parameters(): p.requires_grad_(False)
            for layer in model.model.layers:
                for parent in (layer.self_attn, layer.mlp):
                    for name, child in list(parent.named_children()):
                        if name in targets: setattr(parent, name, LoraNF4(child, params["rank"]))
            model.enable_input_require_grads()
        else:
            model = get_peft_model(model, LoraConfig(r=params["rank"], lora_alpha=2 * params["rank"], lora_dropout=0.05, target_modules=targets))
            if params["gc"]: model.enable_input_require_grads()
    if kind in ("lora", "qlora"):
        # Measure the training steps, not the set-up (quantizing on the GPU makes temporaries).
        torch.cuda.synchronize(); torch.cuda.empty_cache(); torch.cuda.reset_peak_memory_stats(); device_peak[0] = 0
    trainable = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(trainable, lr=1e-5, fused=True)
    ids = torch.randint(0, cfg.vocab_size, (params["batch"], params["seq"]), device="cuda")
    for _ in range(2 if kind in ("lora", "qlora") else 1):
        loss = model(input_ids=ids, labels=ids).loss
        loss.backward(); opt.step(); opt.zero_grad(set_to_none=True)
torch.cuda.synchronize(); time.sleep(0.05); stop = True; t.join()
res = {"allocator": torch.cuda.max_memory_allocated(), "reserved": torch.cuda.max_memory_reserved()}
res["device"] = device_peak[0] if used else None
res["context_at_start"] = base_used
res["quantizer"] = quantizer
print(json.dumps(res))
'''


def measure(config_path, kind, p):
    r = subprocess.run([sys.executable, "-c", CHILD, config_path, kind.replace("-gc", ""), json.dumps(p)],
                       capture_output=True, text=True, timeout=600)
    if r.returncode != 0:
        return {"error": r.stderr.strip().splitlines()[-1] if r.stderr.strip() else f"exit {r.returncode}"}
    return json.loads(r.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json", help="write raw results here")
    ap.add_argument("--predictions", help="predictions file (key 'config:run' -> {allocator, device})")
    ap.add_argument("--only", help="comma-separated config names")
    ap.add_argument("--runs", help="comma-separated runs (" + ", ".join(k for k, _ in RUNS) + ")")
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
                if args.runs and kind not in args.runs.split(","):
                    continue
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
                print(f"{name:9} {kind:12} {'(' + m['quantizer'] + ') ' if m.get('quantizer') else ''}allocator {f(m['allocator'])} GiB predicted {f(pred and pred.get('allocator'))} GiB "
                      f"({err(m['allocator'], pred and pred.get('allocator'))}); device {f(m.get('device'))} GiB predicted "
                      f"{f(pred and pred.get('device'))} GiB ({err(m.get('device'), pred and pred.get('device'))})", flush=True)
    if args.json:
        json.dump(results, open(args.json, "w"), indent=2)


if __name__ == "__main__":
    main()
