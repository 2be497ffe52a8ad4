#!/usr/bin/env python3
"""Peer benchmark (dev-only; run by tools/peers/run.sh, never by CI).

Runs the real-shape test model (gomps/testdata/testmodel + the encoder in ~/.cache/gomps/test-model-src)
in gomps (fp32 and bf16), PyTorch and ONNX Runtime on the pairs of gomps' raw-forward benchmark
(BenchmarkEngineDL19/raw in gomps/engine_bench_test.go), in the batches gomps forms for them, with the same
thread count, and prints pairs/s side by side, with the ratios issue 7 sets targets for.

gomps rows: tools/peers/gompsforward (built here with go build) forwards exactly this script's padded
batches through the CPU backend's native forward, fp32 and then bf16, with the same warm-up and timing as
the peers; its logits join the agreement check. The counted gomps rows split the --threads threads as the
library does by default on the CPU (--instances; 0, the default, lets gompsforward apply
gomps.DefaultInstances: one single-threaded context per thread, up to 4; the batches go in plan order to
whichever context is free, as the engine routes them); the rows "1 x N threads" run one context of all the
threads (the split the earlier runs used) and are shown, not counted. The engine's own raw benchmark (go test -bench BenchmarkEngineDL19/instances=1/raw, fp32) runs first as the plan check: its
batch count and padding waste must equal this script's plan; its row is shown, not counted.

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
End to end (--e2e): every row is timed from text to logits instead: the peers tokenize the pairs (the
model's tokenizer.json through the tokenizers package, encode_batch), plan, pad and forward them; gomps
scores them through its library (gompsforward -pairs: gomps.Open and one ScorePairs call, tokenization,
batching and forwards inside). The warm-up is the raw mode's.

ISA ceiling (--cap AVX2, ...): the run re-executes itself with ONEDNN_MAX_CPU_ISA=CAP for gomps and
PyTorch's oneDNN, and for --cap AVX2 also MKL_ENABLE_INSTRUCTIONS=AVX2 and ATEN_CPU_CAPABILITY=avx2 (PyTorch's
fp32 matmuls run in MKL); ONNX Runtime has no such cap and its rows are left out. On a CPU with AVX-512 this
checks dispatch, not the speed of a real AVX2-only CPU.

Rounds (--rounds, default 3): every row runs once per round, in the same order, so a slow window of a
shared machine lands on any row rather than on one; each row reports its fastest round and lists all.

"As usually run" rows (do not count toward targets): input order, batch 32, each batch padded to its own
longest row by the tokenizer (the way sentence-transformers' CrossEncoder.predict batches), fp32.

Agreement: every configuration's logits (gomps' included) are compared with torch fp32 on the plan; fp32
configurations must be within --tol (1e-4) or the script exits non-zero. bf16 and int8 deviations are
printed, not enforced.

Ratios (counted rows): gomps bf16 / PyTorch bf16 autocast, gomps bf16 / best fp32 peer, gomps fp32 / best
fp32 peer (best = the fastest of PyTorch fp32 and ONNX Runtime fp32), and whether and by how much ONNX
Runtime int8 beats gomps bf16. Each ratio is printed twice: of the rows' fastest rounds, and the median over
rounds of the ratio within a round (both sides measured back to back, so a slow window of the machine
moves both).
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


def measure_e2e(run, batches, tok, pairs, usual):
    """measure's warm-up, then time from text to logits: encode_batch, plan (or input order, batch 32, for
    the usual rows), pad, forward."""
    by_seq = sorted(range(len(batches)), key=lambda b: batches[b][1][0].shape[1])
    for b in {by_seq[-1], by_seq[len(by_seq) // 2], by_seq[0]}:
        run(*batches[b][1])
    logits = np.full(len(pairs), np.nan, np.float64)
    c0, t0 = time.process_time(), time.perf_counter()
    encs = tok.encode_batch(pairs)
    if usual:
        plan = [np.arange(s, min(s + USUAL_BATCH, len(pairs))) for s in range(0, len(pairs), USUAL_BATCH)]
    else:
        plan = plan_batches([len(e.ids) for e in encs], MAX_BATCH, TOKEN_BUDGET)
    for rows in plan:
        logits[rows] = run(*pad(encs, rows))
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
        sys.exit(f"peers: gomps benchmark printed no raw line (skipped? it reads the data at ../shared beside the "
                 f"repo and the model at GOMPS_TEST_MODEL; rerun with -v to see why):\n{out.stdout}")
    metrics = {unit: float(v) for v, unit in re.findall(r"([0-9.e+-]+) ([a-z/%-]+)", line)}
    return metrics, line.strip()


def write_batches(path, batches):
    """The plan's padded batches for gompsforward: "GPB1", int32 count, then per batch int32 rows, seq,
    ids[rows*seq], types[rows*seq], lengths[rows] (little-endian)."""
    with open(path, "wb") as f:
        f.write(b"GPB1" + np.int32(len(batches)).astype("<i4").tobytes())
        for _, (ids, types, mask) in batches:
            f.write(np.array(ids.shape, "<i4").tobytes())
            for a in (ids, types, mask.sum(axis=1)):
                f.write(np.ascontiguousarray(a, "<i4").tobytes())


def run_gomps_forward(repo, exe, model, precision, threads, instances, batch_file, n_pairs, plan, pairs_file=""):
    """gomps on exactly the plan's batches: tools/peers/gompsforward (the CPU backend's native forward,
    `instances` contexts of threads/instances threads; 0 = gompsforward's default, the library's). Returns
    (logits in pair order, wall s, process CPU s, ISA, instances used)."""
    out = batch_file + f".{precision}.{instances}{'.e2e' if pairs_file else ''}.json"
    cmd = [exe, "-model", model, "-precision", precision, "-threads", str(threads), "-instances", str(instances),
           "-out", out] + (["-pairs", pairs_file] if pairs_file else ["-in", batch_file])
    log("gomps: " + " ".join(cmd))
    p = subprocess.run(cmd, cwd=repo, capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(f"peers: gompsforward {precision} failed:\n{p.stdout}\n{p.stderr}")
    r = json.load(open(out, encoding="utf-8"))
    logits = np.full(n_pairs, np.nan, np.float64)
    if pairs_file:
        logits[:] = r["logits"][0]
    else:
        for rows, lg in zip(plan, r["logits"]):
            logits[rows] = lg
    return logits, r["wall_s"], r["cpu_s"], r["isa"], r["instances"]


# ---------------------------------------------------------------------------------------------- main


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repo", required=True)
    ap.add_argument("--shared", required=True)
    ap.add_argument("--cache", required=True, help="~/.cache/gomps: test-model-src/, models/, ONNX files")
    ap.add_argument("--pairs", type=int, default=0, help="first ceil(N/64) requests' pairs; 0 = all 5,504")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--instances", type=int, default=0, help="gomps contexts sharing --threads in the counted gomps "
                    "rows; 0 = the library's CPU default (gomps.DefaultInstances, applied by gompsforward)")
    ap.add_argument("--rounds", type=int, default=3, help="run every row this many times, interleaved; each row "
                    "shows its fastest round")
    ap.add_argument("--tol", type=float, default=1e-4, help="fp32 peers' max |logit - torch fp32|")
    ap.add_argument("--skip", default="", help="comma-separated rows to leave out: gomps-engine (the engine raw "
                    "benchmark's plan check), gomps-f32, gomps-bf16, gomps (all three), torch-bf16, torch-usual, ort, "
                    "ort-int8, ort-usual")
    ap.add_argument("--json", default="", help="also write the results as JSON here")
    ap.add_argument("--e2e", action="store_true", help="time every row from text to logits (tokenization included)")
    ap.add_argument("--cap", default="", help="an ISA ceiling (ONEDNN_MAX_CPU_ISA value) for gomps and PyTorch; "
                    "AVX2 also caps MKL and ATen; ONNX Runtime rows are left out")
    args = ap.parse_args()
    if args.cap and os.environ.get("ONEDNN_MAX_CPU_ISA") != args.cap:
        env = dict(os.environ, ONEDNN_MAX_CPU_ISA=args.cap)
        if args.cap.upper() == "AVX2":
            env.update(MKL_ENABLE_INSTRUCTIONS="AVX2", ATEN_CPU_CAPABILITY="avx2")
        os.execve(sys.executable, [sys.executable] + sys.argv, env)  # torch reads these at import
    if args.cap:
        args.skip += ",ort,ort-int8,ort-usual"
        if args.cap.upper() not in ("AVX512_CORE_BF16", "AVX512_CORE_AMX", "ALL"):
            args.skip += ",gomps-bf16,torch-bf16"  # no native bf16 under the cap
    skip = set(filter(None, args.skip.split(",")))
    if "gomps" in skip:
        skip |= {"gomps-engine", "gomps-f32", "gomps-bf16"}

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

    # Every configuration: (name, counts toward targets, note, fn() -> (logits in pair order, wall s, cpu s)).
    configs = []

    def add(name, counts, run, bs, note=""):
        if args.e2e:
            configs.append((name, counts, note, lambda: measure_e2e(run, batches, tok, pairs, bs is usual_batches)))
        else:
            configs.append((name, counts, note, lambda: measure(run, bs, len(pairs))))

    gomps = None
    if "gomps-engine" not in skip:
        gomps = run_gomps(args.repo, args.threads, str(args.pairs) if args.pairs > 0 else "full", native)
        g = gomps[0]
        if abs(g["waste"] - waste) > 5e-4 or abs(g["rows/batch"] - len(pairs) / len(plan)) > 5e-3:
            sys.exit(f"peers: gomps' plan differs from ours: gomps waste {g['waste']} rows/batch {g['rows/batch']}, "
                     f"ours {waste:.4f} {len(pairs) / len(plan):.3f}")

    # gomps fp32 and bf16 on exactly these batches (tools/peers/gompsforward), each in its own process.
    peers_dir = os.path.join(args.cache, "peers")
    os.makedirs(peers_dir, exist_ok=True)
    gomps_isa = []
    split = {}  # "instances": the counted gomps rows' context count, as gompsforward reports it
    want = [p for p in ("f32", "bf16") if f"gomps-{p}" not in skip]
    if want:
        exe = os.path.join(peers_dir, "gompsforward")
        log(f"building {exe}")
        b = subprocess.run(["go", "build", "-o", exe, "./tools/peers/gompsforward"], cwd=args.repo,
                           capture_output=True, text=True)
        if b.returncode != 0:
            sys.exit(f"peers: go build ./tools/peers/gompsforward failed:\n{b.stderr}")
        batch_file = os.path.join(peers_dir, f"batches-{len(pairs)}.bin")
        write_batches(batch_file, batches)
        pairs_file = ""
        if args.e2e:
            pairs_file = os.path.join(peers_dir, f"pairs-{len(pairs)}.jsonl")
            with open(pairs_file, "w", encoding="utf-8") as f:
                for q, p in pairs:
                    f.write(json.dumps({"q": q, "p": p}) + "\n")

        def gomps_fn(prec, instances, counted):
            def fn():
                logits, wall, cpu, isa, used = run_gomps_forward(args.repo, exe, native, prec, args.threads,
                                                                 instances, batch_file, len(pairs), plan,
                                                                 pairs_file)
                gomps_isa.append(isa)
                if counted:
                    split["instances"] = used
                return logits, wall, cpu
            return fn
        for prec in want:
            configs.append(("gomps fp32" if prec == "f32" else "gomps bf16", True, "",
                            gomps_fn(prec, args.instances, True)))
        if args.instances != 1:
            for prec in want:
                name = f"gomps {'fp32' if prec == 'f32' else 'bf16'}, 1 x {args.threads} threads"
                configs.append((name, False, "one context", gomps_fn(prec, 1, False)))

    tr32 = torch_runner(model, bf16=False)
    add("PyTorch fp32", True, tr32, batches)
    if "torch-bf16" not in skip:
        add("PyTorch bf16 autocast", True, torch_runner(model, bf16=True), batches)
    if "torch-usual" not in skip:
        add("PyTorch fp32, as usually run", False, tr32, usual_batches, "batch 32, input order")

    f32 = os.path.join(peers_dir, "testmodel.onnx")
    i8 = os.path.join(peers_dir, "testmodel.int8.onnx")
    if not {"ort", "ort-int8", "ort-usual"} <= skip:
        log(f"exporting {f32}")
        export_onnx(model, f32)
        from onnxruntime.quantization import QuantType, quantize_dynamic
        quantize_dynamic(f32, i8, weight_type=QuantType.QInt8)
    if "ort" not in skip or "ort-usual" not in skip:
        o32 = ort_runner(f32, args.threads)
        if "ort" not in skip:
            add("ONNX Runtime fp32", True, o32, batches)
        if "ort-usual" not in skip:
            add("ONNX Runtime fp32, as usually run", False, o32, usual_batches, "batch 32, input order")
    if "ort-int8" not in skip:
        add("ONNX Runtime int8 dynamic", True, ort_runner(i8, args.threads), batches)

    # Rounds: every configuration once per round, in the same order, so that a slow window of a shared
    # machine lands on any row; each row keeps its fastest round (and prints every round's pairs/s).
    results = []
    for k in range(args.rounds):
        for idx, (name, counts, note, fn) in enumerate(configs):
            log(f"round {k + 1}/{args.rounds}: running {name}")
            logits, wall, cpu = fn()
            log(f"{name}: {len(pairs) / wall:.1f} pairs/s ({wall:.1f} s wall, {cpu / len(pairs) * 1e3:.2f} "
                f"cpu-ms/pair)")
            if k == 0:
                results.append({"name": name, "counts": counts, "logits": logits, "wall": wall, "cpu": cpu,
                                "note": note, "rounds": [len(pairs) / wall]})
                continue
            r = results[idx]
            r["rounds"].append(len(pairs) / wall)
            if wall < r["wall"]:
                r["wall"], r["cpu"] = wall, cpu
    if gomps:
        results.append({"name": "gomps fp32, engine raw benchmark", "counts": False, "logits": None,
                        "wall": len(pairs) / gomps[0]["pairs/s"], "cpu": gomps[0]["cpu-ms/pair"] * len(pairs) / 1e3,
                        "note": "plan check", "rounds": [gomps[0]["pairs/s"]]})
    gomps_isa = gomps_isa[0] if gomps_isa else ""
    instances = split.get("instances", 1)
    if instances == 1:  # the counted rows already ran one context: the extra rows measured the same
        results = [r for r in results if r["note"] != "one context"]

    # Agreement with torch fp32 (same model, same pairs).
    ref = next(r["logits"] for r in results if r["name"] == "PyTorch fp32")
    bad = []
    for r in results:
        if r["logits"] is None:
            r["maxdiff"] = r["meandiff"] = None
            continue
        d = np.abs(r["logits"] - ref)
        r["maxdiff"], r["meandiff"] = float(d.max()), float(d.mean())
        if "fp32" in r["name"] and r["maxdiff"] > args.tol:
            bad.append(f"{r['name']}: max |delta logit| {r['maxdiff']:.3g} > {args.tol}")

    # The table.
    n = len(pairs)
    for r in results:
        r["pairs_s"] = n / r["wall"]
    by = {r["name"]: r for r in results}
    print(f"\nPeer benchmark, {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, "
          f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, load average "
          f"{' '.join(f'{x:.1f}' for x in os.getloadavg())}, {args.threads} threads")
    mode = "end to end, from text to logits (tokenization included)" if args.e2e else \
        "raw forward of the plan's pre-tokenized batches"
    ceiling = "none"
    if args.cap:
        ceiling = f"ONEDNN_MAX_CPU_ISA={args.cap}"
        if args.cap.upper() == "AVX2":
            ceiling += ", MKL_ENABLE_INSTRUCTIONS=AVX2, ATEN_CPU_CAPABILITY=avx2"
    print(f"Mode: {mode}; ISA ceiling: {ceiling}")
    print(f"Workload: {n} DL19 BM25 pairs ({'all' if args.pairs == 0 else f'first {n}'} of gomps' raw-forward "
          f"workload), {real / n:.1f} tokens/pair; plan {len(plan)} batches, {n / len(plan):.2f} rows/batch, "
          f"padding waste {waste:.4f}")
    print(f"Versions: torch {torch.__version__}, transformers {transformers.__version__}, "
          f"onnxruntime {__import__('onnxruntime').__version__}, onnx {__import__('onnx').__version__}"
          + f"; gomps {repo_commit(args.repo)}" + (f", CPU backend ISA {gomps_isa}" if gomps_isa else "") + "\n")
    print(f"pairs/s: the fastest of {args.rounds} interleaved round(s) (every round in the next column); cpu-ms/pair: "
          "of that round\n")
    print("| engine | precision / settings | batches | pairs/s | rounds | cpu-ms/pair | x gomps fp32 | x gomps bf16 "
          "| max abs delta logit vs PyTorch fp32 |")
    print("|---|---|---|---:|---|---:|---:|---:|---:|")
    g32 = by.get("gomps fp32", {}).get("pairs_s")
    g16 = by.get("gomps bf16", {}).get("pairs_s")
    for r in results:
        ps = r["pairs_s"]
        kind = "plan" if r["counts"] else f"{'usual' if r['note'].startswith('batch 32') else 'plan'} (not counted)"
        if args.e2e and r["name"].startswith("gomps") and "engine raw" not in r["name"]:
            kind = kind.replace("plan", "engine")
        delta = "-" if r["maxdiff"] is None else f"{r['maxdiff']:.2g} (mean {r['meandiff']:.2g})"
        x32 = f"{ps / g32:.2f}" if g32 else "-"
        x16 = f"{ps / g16:.2f}" if g16 else "-"
        rounds = " ".join(f"{x:.1f}" for x in r["rounds"])
        st = settings(r["name"].split(",")[0] if r["note"] == "one context" else r["name"])
        if args.e2e and r["name"].startswith("gomps") and "engine raw" not in r["name"]:
            st = st.replace("native forward, plan's batches", "library: Open + one ScorePairs, own batches")
        if r["name"] in ("gomps fp32", "gomps bf16"):
            st += f", {instances} x {args.threads // instances} thread(s)"
        elif r["note"] == "one context":
            st += f", 1 x {args.threads} threads"
        print(f"| {r['name']} | {st} | {kind} | {ps:.1f} | {rounds} | {r['cpu'] / n * 1e3:.2f} "
              f"| {x32} | {x16} | {delta} |")

    # Ratios on the counted rows (issue 7 item 5's targets, here on this run's pairs and machine state).
    fp32_peers = [r for r in results if r["counts"] and "fp32" in r["name"] and not r["name"].startswith("gomps")]
    best = max(fp32_peers, key=lambda r: r["pairs_s"]) if fp32_peers else None
    ratios = []

    def ratio(label, num_name, den_name, target):
        num, den = by.get(num_name), by.get(den_name)
        if not num or not den:
            return
        value = num["pairs_s"] / den["pairs_s"]
        per_round = sorted(a / b for a, b in zip(num["rounds"], den["rounds"]))
        mid = len(per_round) // 2
        median = per_round[mid] if len(per_round) % 2 else (per_round[mid - 1] + per_round[mid]) / 2
        ratios.append({"ratio": label, "value": value, "median_per_round": median, "vs": den_name,
                       "target": target})
        print(f"  {label:<34} {value:6.2f} of the fastest rounds, {median:6.2f} median of the per-round ratios "
              f"({' '.join(f'{x:.2f}' for x in per_round)})  (vs {den_name}; target >= {target})")
    print("\nRatios of pairs/s (counted rows):")
    ratio("gomps bf16 / PyTorch bf16 autocast", "gomps bf16", "PyTorch bf16 autocast", 1.5)
    if best:
        ratio("gomps bf16 / best fp32 peer", "gomps bf16", best["name"], 2.5)
        ratio("gomps fp32 / best fp32 peer", "gomps fp32", best["name"], 1.0 if args.cap else 1.1)
    i8r = by.get("ONNX Runtime int8 dynamic")
    if i8r and g16:
        if i8r["pairs_s"] > g16:
            print(f"  ONNX Runtime int8 dynamic BEATS gomps bf16: {i8r['pairs_s']:.1f} vs {g16:.1f} pairs/s, "
                  f"{i8r['pairs_s'] / g16:.2f}x (+{100 * (i8r['pairs_s'] / g16 - 1):.0f}%), at max |delta logit| "
                  f"{i8r['maxdiff']:.2g} vs gomps bf16's {by['gomps bf16']['maxdiff']:.2g}")
        else:
            print(f"  ONNX Runtime int8 dynamic does not beat gomps bf16: {i8r['pairs_s']:.1f} vs {g16:.1f} pairs/s "
                  f"(gomps bf16 = {g16 / i8r['pairs_s']:.2f}x)")
    if gomps:
        print(f"\ngomps engine raw benchmark (plan check, fp32): {gomps[1]}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump({"pairs": n, "plan_batches": len(plan), "waste": waste, "gomps": gomps[0] if gomps else None,
                       "e2e": args.e2e, "cap": args.cap, "isa": gomps_isa,
                       "ratios": ratios,
                       "rows": [{k: v for k, v in r.items() if k != "logits"} for r in results]}, f, indent=1)
    if bad:
        sys.exit("peers: fp32 peers disagree with PyTorch fp32: " + "; ".join(bad))


def repo_commit(repo):
    """The repo's commit: git, else the .commit file of a `git archive` snapshot (docs/cpu-fast-path.md)."""
    p = subprocess.run(["git", "-C", repo, "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    if p.returncode == 0:
        dirty = subprocess.run(["git", "-C", repo, "diff", "--quiet", "HEAD", "--", "kernels", "gomps", "cmd"])
        return p.stdout.strip() + (" + uncommitted changes in kernels/gomps/cmd" if dirty.returncode else "")
    try:
        with open(os.path.join(repo, ".commit"), encoding="utf-8") as f:
            return f.read().strip()
    except OSError:
        return "(unknown commit)"


def settings(name):
    return {
        "gomps fp32": "oneDNN f32 (native forward, plan's batches)",
        "gomps bf16": "oneDNN bf16 (native forward, plan's batches)",
        "gomps fp32, engine raw benchmark": "BenchmarkEngineDL19/instances=1/raw",
        "PyTorch fp32": "inference_mode, sdpa",
        "PyTorch bf16 autocast": "inference_mode, autocast(cpu, bfloat16)",
        "PyTorch fp32, as usually run": "inference_mode, batch 32",
        "ONNX Runtime fp32": "ORT_ENABLE_ALL, dynamic axes",
        "ONNX Runtime fp32, as usually run": "ORT_ENABLE_ALL, batch 32",
        "ONNX Runtime int8 dynamic": "quantize_dynamic QInt8, ORT_ENABLE_ALL",
    }.get(name, "")


if __name__ == "__main__":
    main()
