#!/usr/bin/env python3
"""PyTorch logits of the real-shape test model on every DL19 BM25 pair (dev-only; run by
tools/perf/bf16-overlap.sh, never by CI).

Scores the 43 DL19 queries x 100 BM25 candidates of ../shared/data/trec-dl/rerank.dl19.bm25-top100.jsonl
once in fp32 and once under torch.autocast("cpu", dtype=torch.bfloat16), both under torch.inference_mode()
with torch.set_num_threads(--threads), and writes one TSV line per pair: qid, docid, fp32 logit, bf16 logit
(ids and numbers only, no text). The model, tokenizer and padding are peers.py's (load_model: the same weights
as ~/.cache/gomps/models/test-minilm-l6.gomps); batches are length-sorted, at most 64 rows and 8,192 padded
tokens (peers.plan_batches, gomps' engine defaults), each padded to its longest row with an attention mask.
"""

import argparse
import json
import os
import sys
import time

import numpy as np
import tokenizers
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from peers import MAX_BATCH, MAX_LEN, TOKEN_BUDGET, load_model, pad, plan_batches, torch_runner  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repo", required=True)
    ap.add_argument("--shared", required=True)
    ap.add_argument("--cache", required=True, help="~/.cache/gomps (test-model-src/)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", required=True, help="TSV: qid, docid, fp32 logit, bf16 logit")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(1)
    src = os.path.join(args.cache, "test-model-src")
    data = os.path.join(args.shared, "data", "trec-dl", "rerank.dl19.bm25-top100.jsonl")
    keys, pairs = [], []
    with open(data, encoding="utf-8") as f:
        for line in f:
            o = json.loads(line)
            for c in o["candidates"]:
                keys.append((o["qid"], c["docid"]))
                pairs.append((o["query"], c["text"]))
    tok = tokenizers.Tokenizer.from_file(os.path.join(src, "tokenizer.json"))
    tok.enable_truncation(MAX_LEN, strategy="longest_first")
    tok.no_padding()
    encs = tok.encode_batch(pairs)
    plan = plan_batches([len(e.ids) for e in encs], MAX_BATCH, TOKEN_BUDGET)
    batches = [(np.array(rows), pad(encs, rows)) for rows in plan]

    tm = os.path.join(args.repo, "gomps", "testdata", "testmodel")
    model = load_model(os.path.join(tm, "config.json"), os.path.join(src, "model.safetensors"),
                       os.path.join(tm, "head.safetensors"))
    out = {}
    for name, bf16 in (("fp32", False), ("bf16", True)):
        run = torch_runner(model, bf16=bf16)
        logits = np.full(len(pairs), np.nan, np.float64)
        t0 = time.perf_counter()
        for rows, arrays in batches:
            logits[rows] = run(*arrays)
        wall = time.perf_counter() - t0
        print(f"dl19_scores: PyTorch {name}: {len(pairs)} pairs in {len(plan)} batches, {wall:.1f} s "
              f"({len(pairs) / wall:.1f} pairs/s)", file=sys.stderr, flush=True)
        out[name] = logits
    tmp = args.out + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write("qid\tdocid\tfp32\tbf16\n")
        for (qid, docid), a, b in zip(keys, out["fp32"], out["bf16"]):
            f.write(f"{qid}\t{docid}\t{a:.9g}\t{b:.9g}\n")
    os.replace(tmp, args.out)


if __name__ == "__main__":
    main()
