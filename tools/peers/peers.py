#!/usr/bin/env python3
"""Peer benchmark (dev-only; run by tools/peers/run.sh, never by CI).

Runs the real-shape test model (gomps/testdata/testmodel + the encoder in ~/.cache/gomps/test-model-src)
in PyTorch and ONNX Runtime on the pairs of gomps' raw-forward benchmark (BenchmarkEngineDL19/raw in
gomps/engine_bench_test.go), in the batches gomps forms for them, with the same thread count, and prints
pairs/s side by side with gomps' own raw forward measured in the same run.

Workload (as loadDL19 in gomps/engine_bench_test.go): per DL19 query, its BM25 top-100 passages in file
order as requests of 64 (the second wrapping round to the query's first passages); --pairs N keeps the
first ceil(N/64) requests (gomps' GOMPS_BENCH_PAIRS), 0 = all 86 requests = 5,504 pairs (the 4,300
distinct pairs plus each query's wrap-round). Tokenized with the model's tokenizer.json, pair encoding,
truncation longest_first to 512 (what gomps does; the goldens check that both agree).

Batches: plan_batches below is engine.PlanBatches (gomps/internal/engine/raw.go) line for line: a stable
sort by length, then cut greedily at 64 rows or when rows x longest row would pass the 8,192-token budget
(the engine's defaults, which the raw benchmark uses). Each batch is padded to its longest row with an
attention mask. gomps reports its plan's batch count and padding waste; this script checks they equal its
own before printing the table, so both sides run the same batches.

Peers, each with its documented fast settings, warm-up excluded (every configuration first runs three
batches of the plan: the longest, a middle and the shortest, untimed):
  torch fp32        torch.inference_mode(), torch.set_num_threads(threads), transformers' default
                    attention (sdpa)
  torch bf16        the same under torch.autocast("cpu", dtype=torch.bfloat16)
  ort fp32          torch.onnx.export with dynamic axes (batch, sequence), ORT_ENABLE_ALL,
                    intra_op_num_threads=threads, inter_op_num_threads=1, sequential execution
  ort int8          the same after onnxruntime.quantization.quantize_dynamic (QInt8 weights)
"As usually run" rows (do not count toward targets): input order, batch 32, each batch padded to its own
longest row by the tokenizer (the way sentence-transformers' CrossEncoder.predict batches), fp32.

Agreement: every configuration's logits are compared with torch fp32 on the plan; fp32 configurations must
be within --tol (1e-4) or the script exits non-zero. bf16 and int8 deviations are printed, not enforced.
"""

import argparse
import datetime
import json
import math
import os
import platform
import re
import subprocess
import sys
import time

import numpy as np
import safetensors.numpy
import tokenizers
import torch
import transformers
from transformers import BertConfig, BertForSequenceClassification

MAX_LEN = 512
PAIRS_PER_REQUEST = 64
MAX_BATCH = 64  # engine defaults (gomps/internal/engine/engine.go withDefaults, adaptive mode)
TOKEN_BUDGET = 8192
USUAL_BATCH = 32


def log(msg):
    print(f"peers: {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------- workload


def load_requests(path, n_pairs):
    """The requests of gomps' loadDL19: (query, [64 passages]) per query, wrapping round."""
    reqs = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            o = json.loads(line)
            texts = [c["text"] for c in o["candidates"]]
            for start in range(0, len(texts), PAIRS_PER_REQUEST):
                reqs.append((o["query"], [texts[(start + k) % len(texts)] for k in range(PAIRS_PER_REQUEST)]))
    if n_pairs > 0:
        reqs = reqs[: (n_pairs + PAIRS_PER_REQUEST - 1) // PAIRS_PER_REQUEST]
    return [(q, p) for q, ps in reqs for p in ps]


def plan_batches(lengths, max_batch, token_budget):
    """engine.PlanBatches: stable sort by length, cut at max_batch rows or rows x longest > budget."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])  # Python's sort is stable
    out, k = [], 0
    while k < len(order):
        rows, longest = 1, lengths[order[k]]
        while (k + rows < len(order) and rows < max_batch
               and (rows + 1) * max(longest, lengths[order[k + rows]]) <= token_budget):
            longest = max(longest, lengths[order[k + rows]])
            rows += 1
        out.append(order[k:k + rows])
        k += rows
    return out


def pad(encs, rows):
    """int64 arrays (ids, types, mask) of rows, padded with 0 to the longest row."""
    seq = max(len(encs[i].ids) for i in rows)
    ids = np.zeros((len(rows), seq), np.int64)
    types = np.zeros_like(ids)
    mask = np.zeros_like(ids)
    for r, i in enumerate(rows):
        n = len(encs[i].ids)
        ids[r, :n], types[r, :n], mask[r, :n] = encs[i].ids, encs[i].type_ids, 1
    return ids, types, mask


# ---------------------------------------------------------------------------------------------- model


def load_model(cfg_path, encoder_path, head_path):
    cfg = BertConfig(**json.load(open(cfg_path, encoding="utf-8")))
    torch.manual_seed(0)  # init values are all overwritten
    model = BertForSequenceClassification(cfg)
    sd = {}
    for path in (encoder_path, head_path):
        for name, arr in safetensors.numpy.load_file(path).items():
            if name.endswith("position_ids"):
                continue
            if not (name.startswith("bert.") or name.startswith("classifier.")):
                name = "bert." + name
            sd[name] = torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32))
    missing, unexpected = model.load_state_dict(sd, strict=False)
    missing = [m for m in missing if not m.endswith("position_ids")]
    if missing or unexpected:
        sys.exit(f"peers: state dict mismatch: missing {missing} unexpected {unexpected}")
    return model.eval()


def export_onnx(model, path):
    ids = torch.ones((2, 16), dtype=torch.long)
    axes = {0: "batch", 1: "seq"}
    with torch.inference_mode():
        torch.onnx.export(model, (ids, torch.ones_like(ids), torch.zeros_like(ids)), path,
                          input_names=["input_ids", "attention_mask", "token_type_ids"],
                          output_names=["logits"], opset_version=17, dynamo=False,
                          dynamic_axes={"input_ids": axes, "attention_mask": axes, "token_type_ids": axes,
                                        "logits": {0: "batch"}})


# ---------------------------------------------------------------------------------------------- runners


def torch_runner(model, bf16):
    def run(ids, types, mask):
        with torch.inference_mode():
            if bf16:
                with torch.autocast("cpu", dtype=torch.bfloat16):
                    out = model(input_ids=torch.from_numpy(ids), token_type_ids=torch.from_numpy(types),
                                attention_mask=torch.from_numpy(mask)).logits
            else:
                out = model(input_ids=torch.from_numpy(ids), token_type_ids=torch.from_numpy(types),
                            attention_mask=torch.from_numpy(mask)).logits
        return out.float().numpy()[:, 0]
    return run


def ort_runner(path, threads):
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])

    def run(ids, types, mask):
        return sess.run(["logits"], {"input_ids": ids, "attention_mask": mask, "token_type_ids": types})[0][:, 0]
    return run


def measure(run, batches, n_pairs):
    """Warm up on three batches (longest, middle, shortest), then time every batch back to back.
    batches: [(rows, (ids, types, mask))]. Returns (logits in pair order, wall s, process CPU s)."""
    by_seq = sorted(range(len(batches)), key=lambda b: batches[b][1][0].shape[1])
    for b in {by_seq[-1], by_seq[len(by_seq) // 2], by_seq[0]}:
        run(*batches[b][1])
    logits = np.full(n_pairs, np.nan, np.float64)
    c0, t0 = time.process_time(), time.perf_counter()
    for rows, arrays in batches:
        logits[rows] = run(*arrays)
    return logits, time.perf_counter() - t0, time.process_time() - c0


# ---------------------------------------------------------------------------------------------- gomps


def run_gomps(repo, threads, pairs_env, model):
    """gomps' raw forward: BenchmarkEngineDL19/instances=1/raw, one pass (-benchtime 1x)."""
    cmd = ["go", "test", "-run", "^$", "-bench", "^BenchmarkEngineDL19$/^instances=1/raw$", "-benchtime", "1x",
           "-count", "1", "./gomps"]
    env = dict(os.environ, GOMPS_BENCH_PAIRS=pairs_env, GOMPS_BENCH_THREADS=str(threads), GOMPS_TEST_MODEL=model)
    log(f"gomps: GOMPS_BENCH_PAIRS={pairs_env} GOMPS_BENCH_THREADS={threads} GOMPS_TEST_MODEL={model} "
        + " ".join(cmd))
    out = subprocess.run(cmd, cwd=repo, env=env, capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"peers: gomps benchmark failed:\n{out.stdout}\n{out.stderr}")
    line = next((l for l in out.stdout.splitlines() if l.startswith("BenchmarkEngineDL19/instances=1/raw")), None)
    if line is None:
        sys.exit(f"peers: gomps benchmark printed no raw line:\n{out.stdout}")
    metrics = {unit: float(v) for v, unit in re.findall(r"([0-9.e+-]+) ([a-z/%-]+)", line)}
    return metrics, line.strip()


# ---------------------------------------------------------------------------------------------- main


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repo", required=True)
    ap.add_argument("--shared", required=True)
    ap.add_argument("--cache", required=True, help="~/.cache/gomps: test-model-src/, models/, ONNX files")
    ap.add_argument("--pairs", type=int, default=0, help="first ceil(N/64) requests' pairs; 0 = all 5,504")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--tol", type=float, default=1e-4, help="fp32 peers' max |logit - torch fp32|")
    ap.add_argument("--skip", default="", help="comma-separated rows to leave out (gomps, torch-bf16, ...)")
    ap.add_argument("--json", default="", help="also write the results as JSON here")
    args = ap.parse_args()
    skip = set(filter(None, args.skip.split(",")))

    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(1)
    src = os.path.join(args.cache, "test-model-src")
    tok_path = os.path.join(src, "tokenizer.json")
    data = os.path.join(args.shared, "data", "trec-dl", "rerank.dl19.bm25-top100.jsonl")
    native = os.path.join(args.cache, "models", "test-minilm-l6.gomps")

    pairs = load_requests(data, args.pairs)
    tok = tokenizers.Tokenizer.from_file(tok_path)
    tok.enable_truncation(MAX_LEN, strategy="longest_first")
    tok.no_padding()
    encs = tok.encode_batch(pairs)
    lengths = [len(e.ids) for e in encs]
    plan = plan_batches(lengths, MAX_BATCH, TOKEN_BUDGET)
    real = sum(lengths)
    padded = sum(len(rows) * max(lengths[i] for i in rows) for rows in plan)
    waste = 1 - real / padded
    batches = [(np.array(rows), pad(encs, rows)) for rows in plan]
    usual = [np.arange(s, min(s + USUAL_BATCH, len(pairs))) for s in range(0, len(pairs), USUAL_BATCH)]
    usual_batches = [(rows, pad(encs, rows)) for rows in usual]
    usual_padded = sum(a[0].size for _, a in usual_batches)
    log(f"{len(pairs)} pairs, {real} tokens (mean {real / len(pairs):.1f}), plan {len(plan)} batches, "
        f"{len(pairs) / len(plan):.2f} rows/batch, waste {waste:.4f}; as usually run: {len(usual)} batches, "
        f"waste {1 - real / usual_padded:.4f}")

    cfg_path = os.path.join(args.repo, "gomps", "testdata", "testmodel", "config.json")
    head = os.path.join(args.repo, "gomps", "testdata", "testmodel", "head.safetensors")
    model = load_model(cfg_path, os.path.join(src, "model.safetensors"), head)

    results = []  # (name, counts, logits or None, wall, cpu, note)

    def record(name, counts, run, bs, note=""):
        log(f"running {name}")
        logits, wall, cpu = measure(run, bs, len(pairs))
        results.append({"name": name, "counts": counts, "logits": logits, "wall": wall, "cpu": cpu, "note": note})
        log(f"{name}: {len(pairs) / wall:.1f} pairs/s ({wall:.1f} s wall, {cpu / len(pairs) * 1e3:.2f} cpu-ms/pair)")

    gomps = None
    if "gomps" not in skip:
        gomps = run_gomps(args.repo, args.threads, str(args.pairs) if args.pairs > 0 else "full", native)
        g = gomps[0]
        if abs(g["waste"] - waste) > 5e-4 or abs(g["rows/batch"] - len(pairs) / len(plan)) > 5e-3:
            sys.exit(f"peers: gomps' plan differs from ours: gomps waste {g['waste']} rows/batch {g['rows/batch']}, "
                     f"ours {waste:.4f} {len(pairs) / len(plan):.3f}")

    tr32 = torch_runner(model, bf16=False)
    record("PyTorch fp32", True, tr32, batches)
    if "torch-bf16" not in skip:
        record("PyTorch bf16 autocast", True, torch_runner(model, bf16=True), batches)
    if "torch-usual" not in skip:
        record("PyTorch fp32, as usually run", False, tr32, usual_batches, "batch 32, input order")

    onnx_dir = os.path.join(args.cache, "peers")
    os.makedirs(onnx_dir, exist_ok=True)
    f32 = os.path.join(onnx_dir, "testmodel.onnx")
    i8 = os.path.join(onnx_dir, "testmodel.int8.onnx")
    if not {"ort", "ort-int8", "ort-usual"} <= skip:
        log(f"exporting {f32}")
        export_onnx(model, f32)
        from onnxruntime.quantization import QuantType, quantize_dynamic
        quantize_dynamic(f32, i8, weight_type=QuantType.QInt8)
    if "ort" not in skip or "ort-usual" not in skip:
        o32 = ort_runner(f32, args.threads)
        if "ort" not in skip:
            record("ONNX Runtime fp32", True, o32, batches)
        if "ort-usual" not in skip:
            record("ONNX Runtime fp32, as usually run", False, o32, usual_batches, "batch 32, input order")
    if "ort-int8" not in skip:
        record("ONNX Runtime int8 dynamic", True, ort_runner(i8, args.threads), batches)

    # Agreement with torch fp32 (same model, same pairs).
    ref = results[0]["logits"]
    bad = []
    for r in results:
        d = np.abs(r["logits"] - ref)
        r["maxdiff"], r["meandiff"] = float(d.max()), float(d.mean())
        if "fp32" in r["name"] and r["maxdiff"] > args.tol:
            bad.append(f"{r['name']}: max |delta logit| {r['maxdiff']:.3g} > {args.tol}")

    # The table.
    n = len(pairs)
    print(f"\nPeer benchmark, {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, "
          f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, load average "
          f"{' '.join(f'{x:.1f}' for x in os.getloadavg())}, {args.threads} threads")
    print(f"Workload: {n} DL19 BM25 pairs ({'all' if args.pairs == 0 else f'first {n}'} of gomps' raw-forward "
          f"workload), {real / n:.1f} tokens/pair; plan {len(plan)} batches, {n / len(plan):.2f} rows/batch, "
          f"padding waste {waste:.4f}")
    print(f"Versions: torch {torch.__version__}, transformers {transformers.__version__}, "
          f"onnxruntime {__import__('onnxruntime').__version__}, onnx {__import__('onnx').__version__}\n")
    print("| engine | precision / settings | batches | pairs/s | cpu-ms/pair | x gomps fp32 | max abs delta logit vs PyTorch fp32 |")
    print("|---|---|---|---:|---:|---:|---:|")
    g_ps = None
    if gomps:
        g = gomps[0]
        g_ps = g["pairs/s"]
        print(f"| gomps (raw forward) | fp32, oneDNN | plan | {g_ps:.1f} | {g.get('cpu-ms/pair', float('nan')):.2f} "
              f"| 1.00 | (goldens) |")
    for r in results:
        ps = n / r["wall"]
        kind = "plan" if r["counts"] else "usual (not counted)"
        rel = f"{ps / g_ps:.2f}" if g_ps else "-"
        print(f"| {r['name']} | {settings(r['name'])} | {kind} | {ps:.1f} | {r['cpu'] / n * 1e3:.2f} | {rel} "
              f"| {r['maxdiff']:.2g} (mean {r['meandiff']:.2g}) |")
    if gomps:
        print(f"\ngomps: {gomps[1]}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump({"pairs": n, "plan_batches": len(plan), "waste": waste, "gomps": gomps[0] if gomps else None,
                       "peers": [{k: v for k, v in r.items() if k != "logits"} for r in results]}, f, indent=1)
    if bad:
        sys.exit("peers: fp32 peers disagree with PyTorch fp32: " + "; ".join(bad))


def settings(name):
    return {
        "PyTorch fp32": "inference_mode, sdpa",
        "PyTorch bf16 autocast": "inference_mode, autocast(cpu, bfloat16)",
        "PyTorch fp32, as usually run": "inference_mode, batch 32",
        "ONNX Runtime fp32": "ORT_ENABLE_ALL, dynamic axes",
        "ONNX Runtime fp32, as usually run": "ORT_ENABLE_ALL, batch 32",
        "ONNX Runtime int8 dynamic": "quantize_dynamic QInt8, ORT_ENABLE_ALL",
    }.get(name, "")


if __name__ == "__main__":
    main()
