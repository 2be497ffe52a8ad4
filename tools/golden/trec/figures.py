"""Writes, as JSON on stdout, trec_eval figures of fixed runs computed by pytrec_eval (the trec_eval 9
C code) and ir_measures, for gomps/trec's TestIndependentFigures. Usage:

    figures.py SHARED_TREC_DL_DIR EXAMPLES_DIR COMMAND

The runs: examples/first-stage.run against examples/qrels.txt, and the (set, retriever) rows of
candidates.tsv (score column; the rank column is ignored, as trec_eval ignores it) against the DL19 and
DL21 qrels. Figures at relevance levels 1 and 2.
"""
import datetime
import importlib.metadata as md
import json
import os
import sys

import ir_measures
import pytrec_eval

MEASURES = {  # pytrec_eval name -> gomps name
    "map": "map",
    "map_cut.10": "map_cut_10",
    "map_cut.100": "map_cut_100",
    "ndcg_cut.10": "ndcg_cut_10",
    "recip_rank": "recip_rank",
    "recall.100": "recall_100",
    "P.10": "P_10",
}
PER_QUERY = ("map", "map_cut_10")


def read_qrels(path):
    q = {}
    with open(path) as f:
        for line in f:
            p = line.split()
            if len(p) == 4:
                q.setdefault(p[0], {})[p[2]] = int(p[3])
    return q


def read_run(path):
    r = {}
    with open(path) as f:
        for line in f:
            p = line.split()
            if len(p) == 6 and p[0] != "qid":
                r.setdefault(p[0], {})[p[2]] = float(p[4])
    return r


def candidate_run(path, want_set, retriever):
    r = {}
    with open(path) as f:
        next(f)
        for line in f:
            s, ret, qid, docid, _rank, score = line.rstrip("\n").split("\t")
            if s == want_set and ret == retriever:
                r.setdefault(qid, {})[docid] = float(score)
    return r


def figures(run, qrels, level):
    per = pytrec_eval.RelevanceEvaluator(qrels, set(MEASURES), relevance_level=level).evaluate(run)
    qids = sorted(per)
    mean = {g: sum(per[q][p.replace(".", "_")] for q in qids) / len(qids) for p, g in MEASURES.items()}
    rr10 = ir_measures.RR(rel=level) @ 10
    mean["recip_rank_10"] = ir_measures.calc_aggregate([rr10], qrels, run)[rr10]
    per_query = {g: {q: per[q][g] for q in qids} for g in PER_QUERY}
    return {"num_q": len(qids), "mean": mean, "per_query": per_query}


def main():
    shared, examples, command = sys.argv[1:4]
    cases = [("examples", "examples/first-stage.run", read_run(os.path.join(examples, "first-stage.run")),
              "examples/qrels.txt", read_qrels(os.path.join(examples, "qrels.txt")))]
    cand = os.path.join(shared, "candidates.tsv")
    for s, ret in (("dl19", "bm25"), ("dl19", "splade-pp-ed"), ("dl21", "bm25")):
        qname = "qrels.%s-passage.txt" % s
        cases.append(("%s.%s" % (s, ret), "candidates.tsv set=%s retriever=%s" % (s, ret),
                      candidate_run(cand, s, ret), qname, read_qrels(os.path.join(shared, qname))))
    out = {
        "provenance": {
            "command": command,
            "tools": {p: md.version(p) for p in ("pytrec-eval-terrier", "ir-measures")},
            "date": datetime.date.today().isoformat(),
            "note": "recip_rank_10 is ir_measures RR(rel=level)@10; every other figure is pytrec_eval's",
        },
        "cases": [],
    }
    for name, run_desc, run, qrels_name, qrels in cases:
        for level in (1, 2):
            c = {"name": name, "run": run_desc, "qrels": qrels_name, "rel_threshold": level}
            c.update(figures(run, qrels, level))
            out["cases"].append(c)
    json.dump(out, sys.stdout, indent=1, sort_keys=True)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
