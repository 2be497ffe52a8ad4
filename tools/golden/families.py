#!/usr/bin/env python3
"""Generate the architecture-family test models and their PyTorch goldens (dev-only; run by
tools/golden/families.sh).

Writes, for each model of FAMILIES:
  gomps/testdata/families/<name>/{config.json, model.safetensors, tokenizer.json}
  gomps/testdata/golden/families/<name>.jsonl
and gomps/testdata/golden/families/provenance.json.

Each model is a seeded random-initialised transformers *ForSequenceClassification of its family. The goldens
are its logits (every label) in fp32, eval mode, one pair per forward (batch 1, no padding), from the weights
exactly as stored (F16 and BF16 widened to fp32), with the fast tokenizer called as sentence-transformers'
CrossEncoder calls it: tokenizer([query], [passage], truncation="longest_first", max_length=<model limit>).

MS MARCO text is never written: a real case names its pair by (file, qid, docid, transform) as in
gomps/testdata/golden/README.md; only synthetic cases (transform "text") carry their own text.

With --xlmr-base DIR it instead writes a random-weight model of the real XLM-RoBERTa base shape to DIR (outside
the repo, never committed) for speed measurements.
"""

import argparse
import datetime
import json
import math
import os
import shutil
import sys
import tempfile

import numpy as np
import tokenizers
import torch
from tokenizers import AddedToken, decoders, models, normalizers, pre_tokenizers, processors, trainers
from transformers import (AutoTokenizer, BertConfig, BertForSequenceClassification, ElectraConfig,
                          ElectraForSequenceClassification, XLMRobertaConfig, XLMRobertaForSequenceClassification)

import generate as g

TARGET_STD = 1.0  # per label, over the real golden pairs
TRAIN_PASSAGES = 6000  # the first lines of shared/data/trec-dl/passages.tsv the trained tokenizers learn from

# Text written for this generator: the trained tokenizers see it so that non-ASCII scripts get pieces of their
# own, and the synthetic cases draw on it.
OWN_TEXT = [
    "The river flows past the old mill, and the children count the boats that drift towards the harbour.",
    "A cross-encoder reads the query and the passage together and returns one score for the pair.",
    "Le marché ouvre à sept heures ; les pêcheurs déchargent leurs caisses et le café du coin est déjà plein.",
    "Die Brücke über den Fluss wurde 1898 gebaut und ist heute für Fußgänger und Radfahrer geöffnet.",
    "El tren llega a la estación a las nueve y media, pero hoy viene con veinte minutos de retraso.",
    "O pão de queijo é servido quente, e a cozinha da avó cheira a canela e açúcar queimado.",
    "Поезд отправляется в полночь, и пассажиры спешат найти свои места в вагоне.",
    "Η βιβλιοθήκη της πόλης έχει περισσότερα από δέκα χιλιάδες βιβλία για παιδιά.",
    "東京から大阪まで新幹線で約二時間半かかります。駅弁を買うのが楽しみです。",
    "这个城市的公园很大，周末有很多家庭在湖边散步和野餐。",
    "서울의 지하철은 깨끗하고 빠르며 대부분의 관광지에 갈 수 있습니다.",
    "المكتبة مفتوحة من الصباح حتى المساء، ويمكن للطلاب استعارة الكتب مجانًا.",
    "הספרייה פתוחה מהבוקר עד הערב, והסטודנטים יכולים לשאול ספרים בחינם.",
    "नदी के किनारे एक छोटा सा गाँव है जहाँ लोग खेती करते हैं।",
    "ตลาดน้ำเปิดตั้งแต่เช้าตรู่ และมีผลไม้สดมากมายให้เลือกซื้อ",
    "Ｆｕｌｌｗｉｄｔｈ letters and ligatures like ﬁ and ﬂ, the Ångström sign Å and the ohm sign Ω.",
]

# Synthetic cases of this generator, on top of generate.SYNTHETIC (whose length edges are tuned to the BERT
# tokenizer; each model also gets its own exact edges, see edge_cases).
FAMILY_SYNTHETIC = [
    ("special-literal", "is </s> a tag? [SEP] or <s>",
     "<pad> <mask> [CLS] [MASK] [PAD] [UNK] <unk> written inside the text of a passage"),
    ("arabic-hebrew", "متى تفتح المكتبة؟", OWN_TEXT[11] + " " + OWN_TEXT[12]),
    ("hindi-thai-korean", "गाँव में लोग क्या करते हैं?", OWN_TEXT[13] + " " + OWN_TEXT[14] + " " + OWN_TEXT[10]),
    ("fullwidth-ligatures", "ｆｕｌｌｗｉｄｔｈ ﬁ", OWN_TEXT[15]),
    ("empty-passage-own", "when does the train arrive", ""),
    ("multilingual-long", "which languages are in this text", " ".join(OWN_TEXT * 40)),
]


# ---------------------------------------------------------------------------------------------- families


def hf_config(arch, model_type, hidden, layers, heads, ffn, vocab, positions, dtype, labels=("LABEL_0",), **extra):
    """A config.json as Hugging Face writes one for arch, keys sorted."""
    cfg = {
        "architectures": [arch],
        "attention_probs_dropout_prob": 0.1,
        "classifier_dropout": None,
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.1,
        "hidden_size": hidden,
        "id2label": {str(i): n for i, n in enumerate(labels)},
        "initializer_range": 0.02,
        "intermediate_size": ffn,
        "label2id": {n: i for i, n in enumerate(labels)},
        "layer_norm_eps": 1e-12,
        "max_position_embeddings": positions,
        "model_type": model_type,
        "num_attention_heads": heads,
        "num_hidden_layers": layers,
        "pad_token_id": 0,
        "position_embedding_type": "absolute",
        "torch_dtype": dtype,
        "type_vocab_size": 2,
        "vocab_size": vocab,
    }
    cfg.update(extra)
    return dict(sorted(cfg.items()))


def bert_config(hidden, layers, heads, ffn, vocab, labels, dtype):
    return hf_config("BertForSequenceClassification", "bert", hidden, layers, heads, ffn, vocab, 512, dtype,
                     labels)


def xlmr_config(hidden, layers, heads, ffn, vocab, positions, dtype):
    return hf_config("XLMRobertaForSequenceClassification", "xlm-roberta", hidden, layers, heads, ffn, vocab,
                     positions, dtype, bos_token_id=0, eos_token_id=2, pad_token_id=1, layer_norm_eps=1e-05,
                     type_vocab_size=1)


def electra_config(emb, hidden, layers, heads, ffn, vocab, dtype):
    return hf_config("ElectraForSequenceClassification", "electra", hidden, layers, heads, ffn, vocab, 512, dtype,
                     embedding_size=emb, summary_activation="gelu", summary_last_dropout=0.1,
                     summary_type="first", summary_use_proj=True)


# family: how the model is built and what its head is. offset: the first position id (padding_idx + 1 for
# XLM-RoBERTa). specials: special tokens the pair template adds. "vocab" None = the tokenizer's size.
FAMILY = {
    "bert": {"cls": BertForSequenceClassification, "config": BertConfig, "prefix": "bert.", "offset": 0,
             "specials": 3, "types": True, "head": "pooler", "out": "classifier"},
    "xlm-roberta": {"cls": XLMRobertaForSequenceClassification, "config": XLMRobertaConfig, "prefix": "roberta.",
                    "offset": 2, "specials": 4, "types": False, "head": "tanh", "out": "classifier.out_proj"},
    "electra": {"cls": ElectraForSequenceClassification, "config": ElectraConfig, "prefix": "electra.",
                "offset": 0, "specials": 3, "types": True, "head": "gelu", "out": "classifier.out_proj"},
}

# The committed models. seed: numpy default_rng seed of the weights.
FAMILIES = [
    {"name": "xlmr", "family": "xlm-roberta", "tokenizer": "unigram", "max_len": 512, "seed": 20261201,
     "config": lambda v: xlmr_config(32, 2, 2, 128, v, 514, "float32"),
     "what": "XLM-RoBERTa (bge-reranker-base/-large layout): 2 layers, hidden 32, 2 heads, FFN 128, "
             "514 positions (padding_idx 1, so 512 tokens), 1 token type, 1 label"},
    {"name": "xlmr-long", "family": "xlm-roberta", "tokenizer": "unigram", "max_len": 8192, "seed": 20261202,
     "config": lambda v: xlmr_config(32, 2, 2, 128, v, 8194, "float32"),
     "what": "XLM-RoBERTa with the bge-reranker-v2-m3 limit: 8194 positions (8192 tokens), otherwise as xlmr"},
    {"name": "electra", "family": "electra", "tokenizer": "bert", "max_len": 512, "seed": 20261203,
     "config": lambda v: electra_config(16, 32, 2, 2, 128, v, "float32"),
     "what": "ELECTRA with an embedding projection: embedding_size 16 -> hidden 32, 2 layers, 2 heads, FFN 128, "
             "1 label"},
    {"name": "bert-2label", "family": "bert", "tokenizer": "bert", "max_len": 512, "seed": 20261204,
     "config": lambda v: bert_config(32, 2, 2, 64, v, ["irrelevant", "relevant"], "float16"),
     "what": "BERT with 2 labels (id2label 0 irrelevant, 1 relevant): 2 layers, hidden 32, 2 heads, FFN 64"},
    {"name": "minilm-l12", "family": "bert", "tokenizer": "bert", "max_len": 512, "seed": 20261205,
     "config": lambda v: bert_config(32, 12, 2, 128, v, ["LABEL_0"], "float16"),
     "what": "the depth of ms-marco-MiniLM-L-12-v2 (12 layers, FFN 4 x hidden), width reduced to hidden 32, "
             "2 heads, 1 label"},
    {"name": "tinybert-l2", "family": "bert", "tokenizer": "wordpiece", "max_len": 512, "seed": 20261206,
     "config": lambda v: bert_config(128, 2, 2, 512, v, ["LABEL_0"], "bfloat16"),
     "what": "the shape of ms-marco-TinyBERT-L-2-v2 (2 layers, hidden 128, 2 heads of 64, FFN 512, 512 "
             "positions) with a small trained WordPiece vocabulary instead of 30,522, 1 label"},
]

DTYPES = {"float32": ("F32", torch.float32), "float16": ("F16", torch.float16), "bfloat16": ("BF16", torch.bfloat16)}


# ---------------------------------------------------------------------------------------------- tokenizers


def training_text(shared):
    """The trained tokenizers' corpus: the first TRAIN_PASSAGES passages and every query of trec-dl, then
    OWN_TEXT ten times. Only the learned vocabulary is committed, never this text."""
    out = []
    with open(os.path.join(shared, "data", "trec-dl", "passages.tsv"), encoding="utf-8") as f:
        next(f)
        for i, line in enumerate(f):
            if i == TRAIN_PASSAGES:
                break
            out.append(line.rstrip("\n").split("\t", 1)[1])
    with open(os.path.join(shared, "data", "trec-dl", "queries.tsv"), encoding="utf-8") as f:
        next(f)
        out.extend(line.rstrip("\n").split("\t")[2] for line in f)
    return out + OWN_TEXT * 10


def train_unigram(text):
    """A SentencePiece-style Unigram tokenizer laid out as XLM-RoBERTa's: <s> <pad> </s> <unk> at ids 0..3,
    <mask> last; no normalizer, whitespace split then Metaspace (▁, prepended always) as transformers'
    XLMRobertaTokenizer builds it; pair template <s> A </s> </s> B </s>, every type id 0."""
    tok = tokenizers.Tokenizer(models.Unigram())
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")])
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    trainer = trainers.UnigramTrainer(vocab_size=6000, special_tokens=["<s>", "<pad>", "</s>", "<unk>"],
                                      unk_token="<unk>", max_piece_length=16, show_progress=False)
    tok.train_from_iterator(text, trainer=trainer)
    # The trainer's scores differ in their last bits from run to run: rounding them and ordering by
    # (score, piece) removes that noise. Ties between equal counts are still broken in hash order, so a
    # retrain is not bit-reproducible (main keeps the committed tokenizer unless told to retrain).
    vocab = json.loads(tok.to_str())["model"]["vocab"]
    specials, pieces = vocab[:4], sorted(((p, round(s, 6)) for p, s in vocab[4:]), key=lambda v: (-v[1], v[0]))
    tok.model = models.Unigram([tuple(v) for v in specials] + pieces, unk_id=3, byte_fallback=False)
    tok.add_special_tokens([AddedToken("<mask>", lstrip=True, special=True)])
    s, e = tok.token_to_id("<s>"), tok.token_to_id("</s>")
    assert (s, tok.token_to_id("<pad>"), e, tok.token_to_id("<unk>")) == (0, 1, 2, 3)
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", pair="<s> $A </s> </s> $B </s>", special_tokens=[("<s>", s), ("</s>", e)])
    return tok


def train_wordpiece(text):
    """A BERT-uncased-style WordPiece tokenizer: [PAD] [UNK] [CLS] [SEP] [MASK] at ids 0..4 (not BERT's 0,
    100..103), BertNormalizer (lower case, accents stripped), BertPreTokenizer, ## continuations; pair
    template [CLS] A [SEP] B [SEP] with type ids 0 0 0 1 1."""
    tok = tokenizers.Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True, strip_accents=None, clean_text=True,
                                                handle_chinese_chars=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece(prefix="##")
    trainer = trainers.WordPieceTrainer(vocab_size=4000, special_tokens=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"],
                                        continuing_subword_prefix="##", show_progress=False)
    tok.train_from_iterator(text, trainer=trainer)
    c, s = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1", special_tokens=[("[CLS]", c), ("[SEP]", s)])
    return tok


# The tokenizer_config.json transformers loads each kind of tokenizer.json with.
BERT_TOKENIZER_CONFIG = {"tokenizer_class": "BertTokenizer", "do_lower_case": True, "unk_token": "[UNK]",
                         "sep_token": "[SEP]", "pad_token": "[PAD]", "cls_token": "[CLS]", "mask_token": "[MASK]"}
TOKENIZER_CONFIGS = {
    "bert": BERT_TOKENIZER_CONFIG,
    "wordpiece": BERT_TOKENIZER_CONFIG,
    "unigram": {"tokenizer_class": "XLMRobertaTokenizer", "bos_token": "<s>", "eos_token": "</s>",
                "sep_token": "</s>", "cls_token": "<s>", "unk_token": "<unk>", "pad_token": "<pad>",
                "mask_token": "<mask>"},
}
# The trained tokenizers: how to train each, and the committed model directory whose tokenizer.json is reused
# unless --retrain-tokenizers.
TRAINED = {"unigram": (train_unigram, "xlmr"), "wordpiece": (train_wordpiece, "tinybert-l2")}


class Tok:
    """One tokenizer.json, loaded twice: transformers' AutoTokenizer (the reference) and the raw tokenizers
    library with longest_first truncation (what the Go side binds); every encoding is checked to agree."""

    def __init__(self, path, tok_config, max_len, specials, workdir):
        d = tempfile.mkdtemp(dir=workdir)
        shutil.copyfile(path, os.path.join(d, "tokenizer.json"))
        g.write_json(os.path.join(d, "tokenizer_config.json"), {**tok_config, "model_max_length": max_len})
        self.auto = AutoTokenizer.from_pretrained(d)
        assert self.auto.is_fast
        self.raw = tokenizers.Tokenizer.from_file(path)
        self.raw.enable_truncation(max_len, strategy="longest_first")
        self.plain = tokenizers.Tokenizer.from_file(path)
        self.plain.no_truncation()
        self.max_len, self.specials = max_len, specials

    def count(self, text):
        return len(self.plain.encode(text, add_special_tokens=False).ids)

    def encode(self, query, passage, types_used):
        enc = self.auto([query], [passage], truncation="longest_first", max_length=self.max_len,
                        return_token_type_ids=types_used)
        ids = enc["input_ids"][0]
        types = enc["token_type_ids"][0] if types_used else [0] * len(ids)
        seq = enc.sequence_ids(0)
        nq, np_ = sum(1 for s in seq if s == 0), sum(1 for s in seq if s == 1)
        r = self.raw.encode(query, passage)
        if r.ids != ids or (types_used and r.type_ids != types) or any(r.type_ids) != any(types):
            at = next((i for i, (a, b) in enumerate(zip(ids, r.ids)) if a != b), min(len(ids), len(r.ids)))
            raise RuntimeError(f"families: tokenizers and transformers disagree on {query[:40]!r} / "
                               f"{passage[:40]!r}: lengths {len(ids)} {len(r.ids)}, first difference at {at}: "
                               f"{self.auto.convert_ids_to_tokens(ids[at - 2:at + 3])} vs {r.tokens[at - 2:at + 3]}")
        assert len(ids) <= self.max_len and nq + np_ + self.specials == len(ids), (len(ids), nq, np_)
        return ids, types, nq, np_


# ---------------------------------------------------------------------------------------------- cases


def one_token_word(tok):
    for w in ("berlin", "the", "people", "house", "water", "a"):
        if tok.count(" ".join([w] * 10)) == 10 and tok.count("how many people live in " + w) == \
                tok.count("how many people live in") + 1:
            return w
    raise RuntimeError("families: no one-token word for the length edges")


def edge_cases(tok):
    """Exactly max_len tokens, and one over: the query "how many people live in <w>", the passage w repeated."""
    w = one_token_word(tok)
    q = "how many people live in " + w
    n = tok.max_len - tok.specials - tok.count(q)
    return [("edge-max", q, " ".join([w] * n)), ("edge-over", q, " ".join([w] * (n + 1)))]


def select_cases(data, tok):
    """Real pairs by reference (the same for every model) and synthetic text cases (edges per tokenizer)."""
    cases = []

    def add(kind, file, qid, docid, transform, **extra):
        c = {"kind": kind, "file": file, "qid": qid, "docid": docid, "transform": transform}
        c.update(extra)
        cases.append(c)

    # Every query's rank-1 candidate, and per file the longest (by characters) candidate of its first 5 queries.
    for file, queries in data.items():
        for qid, q in queries.items():
            add("real", file, qid, q["cands"][0][0], "none")
    for file, queries in data.items():
        for qid in list(queries)[:5]:
            docid = max(queries[qid]["cands"], key=lambda c: (len(c[2]), -c[1]))[0]
            if docid != queries[qid]["cands"][0][0]:
                add("longest", file, qid, docid, "none")
    # The 10 passages with the most non-ASCII code points.
    nonascii = sorted((-sum(1 for ch in text if ord(ch) > 127), file, qid, docid)
                      for file, queries in data.items() for qid, q in queries.items()
                      for docid, _, text in q["cands"] if any(ord(ch) > 127 for ch in text))
    for _, file, qid, docid in nonascii[:10]:
        add("nonascii", file, qid, docid, "none")
    # Per file: a swapped pair, truncation far past the limit, both sides truncated, the query side truncated,
    # an empty passage.
    for file, queries in data.items():
        qids = list(queries)
        add("swap", file, qids[0], queries[qids[0]]["cands"][0][0], "swap")
        add("join", file, qids[0], "", "join:100")
        add("joinboth", file, qids[1], "", "joinboth:40")
        add("joinq", file, qids[2], queries[qids[2]]["cands"][0][0], "joinq:20")
        add("empty_passage", file, qids[3], "", "empty_passage")
    for name, q, p in list(g.SYNTHETIC) + FAMILY_SYNTHETIC + edge_cases(tok):
        add("synthetic", "", "", "", "text", name=name, query=q, passage=p)
    return cases


# ---------------------------------------------------------------------------------------------- weights


def make_model(spec, cfg_dict):
    fam = FAMILY[spec["family"]]
    cfg = fam["config"](**cfg_dict)
    cfg._attn_implementation = "eager"
    torch.manual_seed(0)  # construction draws throw-away init values; every parameter is overwritten
    model = fam["cls"](cfg)
    model.eval()
    return model


def draw_weights(model, rng):
    """Seeded float64 draws for every parameter, in name order: matrices N(0, 1/fan_in); embedding tables
    N(0, 0.25); biases N(0, 0.01); LayerNorm gamma 1 + N(0, 0.01), beta N(0, 0.01)."""
    out = {}
    for name, p in sorted(model.named_parameters()):
        shape = tuple(p.shape)
        if "LayerNorm" in name and name.endswith(".weight"):
            a = 1.0 + rng.standard_normal(shape) * 0.1
        elif name.endswith(".bias"):
            a = rng.standard_normal(shape) * 0.1
        elif "embeddings." in name:
            a = rng.standard_normal(shape) * 0.5
        else:
            a = rng.standard_normal(shape) / math.sqrt(shape[1])
        out[name] = a
    return out


def to_stored(w, torch_dtype):
    """float64 arrays -> torch tensors of the storage dtype."""
    return {k: torch.from_numpy(np.ascontiguousarray(v)).to(torch.float32).to(torch_dtype) for k, v in w.items()}


def load(model, stored):
    sd = {k: v.to(torch.float32) for k, v in stored.items()}
    missing, unexpected = model.load_state_dict(sd, strict=False)
    missing = [m for m in missing if not m.endswith(("position_ids", "token_type_ids"))]
    if missing or unexpected:
        raise RuntimeError(f"families: state dict mismatch: missing {missing} unexpected {unexpected}")


@torch.no_grad()
def forward(model, ids, types, types_used, position_ids=None):
    t_ids = torch.tensor([ids], dtype=torch.long)
    kw = {"input_ids": t_ids, "attention_mask": torch.ones_like(t_ids)}
    if types_used:
        kw["token_type_ids"] = torch.tensor([types], dtype=torch.long)
    if position_ids is not None:
        kw["position_ids"] = torch.tensor([position_ids], dtype=torch.long)
    return [float(x) for x in model(**kw).logits[0]]


def write_model(path, stored, spec, scales, biases):
    meta = {"format": "pt", "generator": "tools/golden/families.py", "seed": str(spec["seed"]),
            "classifier_scale": repr(scales), "classifier_bias": repr(biases)}
    tensors = {}
    for k, v in stored.items():
        if v.dtype == torch.bfloat16:
            tensors[k] = g.BF16(v.view(torch.int16).numpy().view(np.uint16))
        else:
            tensors[k] = v.numpy()
    g.write_safetensors(path, tensors, metadata=meta)


def read_model(path):
    """The stored tensors as torch tensors of their stored dtype."""
    from safetensors.torch import load_file
    return load_file(path)


# ---------------------------------------------------------------------------------------------- NumPy check


def numpy_logits(w, cfg, spec, ids, types):
    """An independent float64 NumPy forward of the three families (BERT, XLM-RoBERTa, ELECTRA) to cross-check
    torch: embeddings (positions from FAMILY offset), the optional ELECTRA projection, post-LN encoder
    layers with erf GELU, then the family's head on the first token."""
    fam = FAMILY[spec["family"]]
    pre = fam["prefix"]
    H, nh, eps = cfg["hidden_size"], cfg["num_attention_heads"], cfg["layer_norm_eps"]
    gw = lambda n: w[n].astype(np.float64)

    def ln(x, n):
        mu = x.mean(-1, keepdims=True)
        var = ((x - mu) ** 2).mean(-1, keepdims=True)
        return (x - mu) / np.sqrt(var + eps) * gw(n + ".weight") + gw(n + ".bias")

    def lin(x, n):
        return x @ gw(n + ".weight").T + gw(n + ".bias")

    def gelu(a):
        return 0.5 * a * (1.0 + torch.special.erf(torch.from_numpy(a / math.sqrt(2.0))).numpy())

    T, off = len(ids), fam["offset"]
    e = pre + "embeddings."
    x = gw(e + "word_embeddings.weight")[ids] + gw(e + "position_embeddings.weight")[off:off + T] \
        + gw(e + "token_type_embeddings.weight")[types]
    x = ln(x, e + "LayerNorm")
    if pre + "embeddings_project.weight" in w:
        x = lin(x, pre + "embeddings_project")
    d = H // nh
    for layer in range(cfg["num_hidden_layers"]):
        p = f"{pre}encoder.layer.{layer}."
        q, k, v = (lin(x, p + "attention.self." + n).reshape(T, nh, d).transpose(1, 0, 2)
                   for n in ("query", "key", "value"))
        s = q @ k.transpose(0, 2, 1) / math.sqrt(d)
        s = np.exp(s - s.max(-1, keepdims=True))
        s /= s.sum(-1, keepdims=True)
        a = (s @ v).transpose(1, 0, 2).reshape(T, H)
        x = ln(lin(a, p + "attention.output.dense") + x, p + "attention.output.LayerNorm")
        x = ln(lin(gelu(lin(x, p + "intermediate.dense")), p + "output.dense") + x, p + "output.LayerNorm")
    if fam["head"] == "pooler":
        h = np.tanh(lin(x[0], pre + "pooler.dense"))
    elif fam["head"] == "tanh":
        h = np.tanh(lin(x[0], "classifier.dense"))
    else:
        h = gelu(lin(x[0], "classifier.dense"))
    return lin(h, fam["out"]).tolist()


# ---------------------------------------------------------------------------------------------- main


def build(spec, tok, tok_path, data, cases, td, workdir):
    """Draw, scale, store and score one model; returns its provenance entry."""
    fam = FAMILY[spec["family"]]
    name = spec["name"]
    mdir = os.path.join(td, "families", name)
    os.makedirs(mdir, exist_ok=True)
    shutil.copyfile(tok_path, os.path.join(mdir, "tokenizer.json"))
    cfg = spec["config"](tok.plain.get_vocab_size(with_added_tokens=True))
    g.write_json(os.path.join(mdir, "config.json"), cfg)
    st_name, st_dtype = DTYPES[cfg["torch_dtype"]]
    labels = len(cfg["id2label"])

    enc = []
    for c in cases:
        q, p = g.rebuild(data, c)
        ids, types, nq, np_ = tok.encode(q, p, fam["types"])
        enc.append({"ids": ids, "types": types, "q_tokens": nq, "p_tokens": np_,
                    "full": tok.count(q) + tok.count(p) + tok.specials})
    real = [i for i, c in enumerate(cases) if c["transform"] == "none"]

    # Draw, then scale each label's output row so that its logits over the real pairs have std TARGET_STD
    # and mean near 0.
    model = make_model(spec, cfg)
    w = draw_weights(model, np.random.default_rng(spec["seed"]))
    out_w, out_b = fam["out"] + ".weight", fam["out"] + ".bias"
    w[out_b] = np.zeros(labels)
    load(model, to_stored(w, st_dtype))
    z = np.array([forward(model, enc[i]["ids"], enc[i]["types"], fam["types"]) for i in real])
    scales = [g.round_sig(TARGET_STD / z[:, j].std()) for j in range(labels)]
    biases = [g.round_sig(-scales[j] * z[:, j].mean(), 3) for j in range(labels)]
    w[out_w] = w[out_w] * np.array(scales)[:, None]
    w[out_b] = np.array(biases, dtype=np.float64)
    path = os.path.join(mdir, "model.safetensors")
    write_model(path, to_stored(w, st_dtype), spec, scales, biases)

    # Goldens from the weights exactly as stored.
    stored = read_model(path)
    assert all(v.dtype == st_dtype for v in stored.values())
    model = make_model(spec, cfg)
    load(model, stored)
    logits = [forward(model, e["ids"], e["types"], fam["types"]) for e in enc]

    # Independent float64 NumPy forward on a spread of cases.
    wf = {k: v.to(torch.float64).numpy() for k, v in stored.items()}
    lens = [len(e["ids"]) for e in enc]
    check = sorted({0, real[len(real) // 2], len(cases) - 1, lens.index(max(lens)), lens.index(min(lens)),
                    next(i for i, c in enumerate(cases) if c["transform"] == "empty_passage")})
    worst = max(abs(a - b) for i in check
                for a, b in zip(numpy_logits(wf, cfg, spec, enc[i]["ids"], enc[i]["types"]), logits[i]))
    print(f"families: {name}: numpy float64 vs torch fp32 max |diff| over {len(check)} cases: {worst:.3g}",
          file=sys.stderr)
    if worst > 1e-4:
        raise RuntimeError(f"families: {name}: torch and the NumPy reference disagree by {worst}")

    mutations = mutation_sensitivity(spec, model, tok, cases, enc, logits, data)
    os.makedirs(os.path.join(td, "golden", "families"), exist_ok=True)
    g.write_goldens(os.path.join(td, "golden", "families", name + ".jsonl"), cases, enc, "logits", logits)

    la = np.array(logits)
    lr = la[real]
    entry = {
        "what": spec["what"],
        "family": spec["family"], "architecture": cfg["architectures"][0], "max_length": tok.max_len,
        "tokenizer": spec["tokenizer"], "dtype": st_name, "seed": spec["seed"],
        "config_sha256": g.sha256_file(os.path.join(mdir, "config.json")),
        "model_sha256": g.sha256_file(path), "model_bytes": os.path.getsize(path),
        "tokenizer_sha256": g.sha256_file(os.path.join(mdir, "tokenizer.json")),
        "tensors": len(stored), "parameters": int(sum(v.numel() for v in stored.values())),
        "classifier_scale": scales, "classifier_bias": biases,
        "logits_real": [g.stats(lr[:, j]) for j in range(labels)],
        "logits_all": [g.stats(la[:, j]) for j in range(labels)],
        "numpy_crosscheck_max_abs_diff": worst,
        "mutations_max_abs_diff": mutations,
        "cases": len(cases), "real_pairs": len(real),
        "truncated_cases": sum(1 for e in enc if e["full"] > tok.max_len),
        "len": g.pct(lens), "longest_untruncated": max(e["full"] for e in enc),
    }
    if labels > 1:
        entry["label_correlation_real"] = float(np.corrcoef(lr.T)[0, 1])
    return entry


def mutation_sensitivity(spec, model, tok, cases, enc, logits, data):
    """How far the logits move under the mistakes the goldens must catch (max |diff| over all cases); each
    must stay far above the 1e-4 golden bound."""
    fam = FAMILY[spec["family"]]
    out = {}
    idx = [i for i in range(len(cases)) if len(enc[i]["ids"]) <= 1024]  # the cheap ones suffice

    def worst(fn):
        return max(abs(a - b) for i in idx for a, b in zip(fn(i), logits[i]))

    if spec["family"] == "xlm-roberta":
        out["position_ids_from_0"] = worst(lambda i: forward(model, enc[i]["ids"], enc[i]["types"], False,
                                                             position_ids=list(range(len(enc[i]["ids"])))))
        # <s> q </s> p </s>: the BERT template with XLM-R's tokens (one separator instead of two).
        def bert_template(i):
            ids, nq = enc[i]["ids"], enc[i]["q_tokens"]
            return forward(model, ids[:nq + 2] + ids[nq + 3:], None, False)
        out["single_separator_template"] = worst(bert_template)
    if spec["family"] == "electra":
        # The projection replaced by zero-padding the E-wide embedding into H (what skipping it would mean).
        proj = model.electra.embeddings_project
        saved = proj.weight.data.clone(), proj.bias.data.clone()
        e, h = proj.in_features, proj.out_features
        proj.weight.data = torch.eye(h, e)
        proj.bias.data.zero_()
        out["embedding_projection_skipped"] = worst(lambda i: forward(model, enc[i]["ids"], enc[i]["types"], True))
        proj.weight.data, proj.bias.data = saved
    if fam["types"]:
        out["token_types_all_0"] = worst(lambda i: forward(model, enc[i]["ids"], [0] * len(enc[i]["ids"]), True))
    labels = len(logits[0])
    if labels > 1:
        out["label_columns_swapped"] = max(abs(logits[i][0] - logits[i][1]) for i in idx)
    for k, v in out.items():
        if v < 1e-2:
            raise RuntimeError(f"families: {spec['name']}: mutation {k} moves the logits by only {v}")
    return out


def xlmr_base(out_dir, tok_path, seed):
    """Random weights (F32) in the real XLM-RoBERTa base shape, for speed measurements; one short forward
    checks that transformers loads them."""
    cfg = xlmr_config(768, 12, 12, 3072, 250002, 514, "float32")
    os.makedirs(out_dir, exist_ok=True)
    g.write_json(os.path.join(out_dir, "config.json"), cfg)
    shutil.copyfile(tok_path, os.path.join(out_dir, "tokenizer.json"))
    spec = {"family": "xlm-roberta", "seed": seed}
    model = make_model(spec, cfg)
    rng = np.random.default_rng(seed)
    tensors = {}
    for name, p in sorted(model.named_parameters()):
        shape = tuple(p.shape)
        a = rng.standard_normal(shape, dtype=np.float32)
        if "LayerNorm" in name and name.endswith(".weight"):
            a = 1.0 + a * 0.1
        elif name.endswith(".bias"):
            a *= 0.1
        elif "embeddings." in name:
            a *= 0.5
        else:
            a /= math.sqrt(shape[1])
        tensors[name] = a.astype(np.float32)
        p.data = torch.from_numpy(tensors[name])
    path = os.path.join(out_dir, "model.safetensors")
    g.write_safetensors(path, tensors, metadata={
        "format": "pt", "generator": "tools/golden/families.py --xlmr-base", "seed": str(seed),
        "classifier_scale": "1.0", "classifier_bias": "0.0"})
    ids = [0] + list(range(100, 110)) + [2, 2] + list(range(200, 220)) + [2]
    logit = forward(model, ids, None, False)
    print(f"families: wrote {out_dir} ({os.path.getsize(path):,} B, "
          f"{sum(v.size for v in tensors.values()):,} parameters); logit of a 34-token pair: {logit}", file=sys.stderr)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repo", required=True, help="the gomps repo root")
    ap.add_argument("--shared", required=True, help="the shared/ folder beside the repo")
    ap.add_argument("--retrain-tokenizers", action="store_true",
                    help="train the Unigram and WordPiece tokenizers anew (changes their ids and every golden of "
                         "their models) instead of reusing the committed ones")
    ap.add_argument("--xlmr-base", metavar="DIR",
                    help="write a random XLM-RoBERTa base-shape model to DIR (outside the repo) and stop")
    args = ap.parse_args()

    torch.set_num_threads(2)
    torch.use_deterministic_algorithms(True)
    td = os.path.join(args.repo, "gomps", "testdata")

    if args.xlmr_base:
        out = os.path.abspath(args.xlmr_base)
        if out == os.path.abspath(args.repo) or out.startswith(os.path.abspath(args.repo) + os.sep):
            sys.exit("families: --xlmr-base must be outside the repo")
        xlmr_base(out, os.path.join(td, "families", "xlmr", "tokenizer.json"), 20261210)
        return

    data_dir = os.path.join(args.shared, "data", "trec-dl")
    data = g.load_rerank(data_dir)
    work = tempfile.mkdtemp(prefix="gomps-families-")
    try:
        tok_paths = {"bert": os.path.join(td, "tiny", "tokenizer.json")}
        text, trained = None, []
        for kind, (train, home) in TRAINED.items():
            committed = os.path.join(td, "families", home, "tokenizer.json")
            if os.path.exists(committed) and not args.retrain_tokenizers:
                tok_paths[kind] = os.path.join(work, kind + ".json")
                shutil.copyfile(committed, tok_paths[kind])
                print(f"families: reusing the committed {kind} tokenizer {committed}", file=sys.stderr)
                continue
            text = text or training_text(args.shared)
            tok_paths[kind] = os.path.join(work, kind + ".json")
            train(text).save(tok_paths[kind])
            trained.append(kind)

        entries = {}
        for spec in FAMILIES:
            fam = FAMILY[spec["family"]]
            tok = Tok(tok_paths[spec["tokenizer"]], TOKENIZER_CONFIGS[spec["tokenizer"]], spec["max_len"],
                      fam["specials"], work)
            cases = select_cases(data, tok)
            print(f"families: {spec['name']}: {len(cases)} cases", file=sys.stderr)
            entries[spec["name"]] = build(spec, tok, tok_paths[spec["tokenizer"]], data, cases, td, work)
    finally:
        shutil.rmtree(work)

    prov = {
        "generated_utc": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "generator": "tools/golden/families.py via tools/golden/families.sh (make golden-families)",
        "versions": g.versions(),
        "reference": "transformers <Family>ForSequenceClassification, fp32 from the stored weights, eval, "
                     "attn_implementation=eager, batch 1, no padding, CPU; every label's logit; "
                     "tokenizer([query], [passage], truncation='longest_first', max_length=max_length) with "
                     "AutoTokenizer (fast) over the committed tokenizer.json; token_type_ids not passed to "
                     "XLM-RoBERTa (its tokenizer returns none; the model uses zeros)",
        "tokenizer_training": {"trained_in_this_run": trained,
                               "passages": f"the first {TRAIN_PASSAGES} of shared/data/trec-dl/passages.tsv",
                               "queries": "every query of shared/data/trec-dl/queries.tsv",
                               "own_text_lines": len(OWN_TEXT),
                               "passages_sha256": g.sha256_file(os.path.join(data_dir, "passages.tsv")),
                               "queries_sha256": g.sha256_file(os.path.join(data_dir, "queries.tsv"))},
        "data_sha256": {f: g.sha256_file(os.path.join(data_dir, f)) for f in g.RERANK_FILES},
        "target_std": TARGET_STD,
        "models": entries,
    }
    g.write_json(os.path.join(td, "golden", "families", "provenance.json"), prov)
    json.dump({k: {"std": [s["std"] for s in e["logits_real"]], "bytes": e["model_bytes"],
                   "cases": e["cases"], "mutations": e["mutations_max_abs_diff"]} for k, e in entries.items()},
              sys.stderr, indent=1)
    print(file=sys.stderr)


if __name__ == "__main__":
    main()
