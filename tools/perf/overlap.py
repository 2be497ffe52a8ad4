#!/usr/bin/env python3
"""bf16 vs fp32 on the DL19 BM25 lists (dev-only; run by tools/perf/bf16-overlap.sh). Standard library only.

Reads, from DIR: gomps-f32.jsonl and gomps-bf16.jsonl (`gomps score --rank` output: one line per query with
qid and candidates[docid, score]) and torch.tsv (tools/peers/dl19_scores.py: qid, docid, fp32, bf16). For
each comparison it prints, over every query, the mean / min overlap of the query's top 10 with the reference's
top 10 (top 10 = the 10 highest logits, ties broken by docid, the same rule on both sides), how many queries
lose any of their top 10, and max / mean |delta logit| over all pairs.
"""

import argparse
import json
import os
import sys


def read_gomps(path):
    out = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            o = json.loads(line)
            q = out.setdefault(o["qid"], {})
            for c in o["candidates"]:
                if c["docid"] in q:
                    sys.exit(f"overlap: {path}: query {o['qid']}: docid {c['docid']} twice")
                q[c["docid"]] = float(c["score"])
    return out


def read_torch(path):
    f32, b16 = {}, {}
    with open(path, encoding="utf-8") as f:
        next(f)
        for line in f:
            qid, docid, a, b = line.rstrip("\n").split("\t")
            f32.setdefault(qid, {})[docid] = float(a)
            b16.setdefault(qid, {})[docid] = float(b)
    return f32, b16


def top(scores, k):
    return set(sorted(scores, key=lambda d: (-scores[d], d))[:k])


def compare(run, ref, k=10):
    if run.keys() != ref.keys() or any(run[q].keys() != ref[q].keys() for q in ref):
        sys.exit("overlap: the two runs score different pairs")
    ov = [len(top(run[q], k) & top(ref[q], k)) for q in sorted(ref)]
    d = [abs(run[q][p] - ref[q][p]) for q in ref for p in ref[q]]
    return {"queries": len(ov), "pairs": len(d), "mean_overlap": sum(ov) / len(ov), "min_overlap": min(ov),
            "queries_below_k": sum(o < k for o in ov), "max_delta": max(d), "mean_delta": sum(d) / len(d)}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dir")
    ap.add_argument("--json", default="", help="also write the rows as JSON here")
    args = ap.parse_args()
    g32 = read_gomps(os.path.join(args.dir, "gomps-f32.jsonl"))
    g16 = read_gomps(os.path.join(args.dir, "gomps-bf16.jsonl"))
    t32, t16 = read_torch(os.path.join(args.dir, "torch.tsv"))
    rows = [
        ("gomps bf16", "gomps fp32", compare(g16, g32)),
        ("PyTorch bf16 autocast (control)", "PyTorch fp32", compare(t16, t32)),
        ("gomps fp32 (check)", "PyTorch fp32", compare(g32, t32)),
        ("gomps bf16", "PyTorch fp32", compare(g16, t32)),
    ]
    r0 = rows[0][2]
    print(f"DL19 BM25 top-100 lists: {r0['queries']} queries, {r0['pairs']} pairs; top-10 overlap "
          "(ties by docid), |delta logit| over all pairs\n")
    print("| run | reference | mean top-10 overlap | min | queries < 10 | max abs delta logit | mean abs delta logit |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for run, ref, r in rows:
        print(f"| {run} | {ref} | {r['mean_overlap']:.2f} | {r['min_overlap']} | {r['queries_below_k']} "
              f"| {r['max_delta']:.3g} | {r['mean_delta']:.3g} |")
    print("\nQueries whose top 10 changed: qid, the reference ranks of the passages that entered, and the "
          "reference's logit gap between its 10th and 11th passage")
    for (run, ref, _), (a, b) in zip(rows[:2], ((g16, g32), (t16, t32))):
        for q in sorted(b):
            ranked = sorted(b[q], key=lambda d: (-b[q][d], d))
            entered = top(a[q], 10) - set(ranked[:10])
            if entered:
                print(f"  {run} vs {ref}: query {q}: entered from reference rank(s) "
                      f"{sorted(ranked.index(d) + 1 for d in entered)}, gap 10th-11th "
                      f"{b[q][ranked[9]] - b[q][ranked[10]]:.4f}")
    ok = r0["mean_overlap"] >= 9.5
    print(f"\ntarget (issue 7): gomps bf16 vs gomps fp32 mean top-10 overlap >= 9.5: "
          f"{r0['mean_overlap']:.2f} -> {'met' if ok else 'NOT met'}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump([{"run": a, "reference": b, **r} for a, b, r in rows], f, indent=1)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
