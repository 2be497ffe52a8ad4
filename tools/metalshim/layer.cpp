// layer.cpp: the Metal backend's segmented forward pass, executed on Linux.
//
// metal/gomps-plan.c (the same C the backend compiles) plans the forward for
// a kernel selection: which units run as MPSGraph segments, which as our
// kernels, and which buffer every intermediate lives in. This program runs
// that plan step by step on a small random BERT:
//   - graph segments as float64 loops written after metal/graph.m's units
//     (each reads its inputs from the plan's buffers at the moment it uses
//     them, writes its outputs at once, and its output buffers are poisoned
//     with NaN when it starts, since an executable may write a result before
//     it has read every input);
//   - kernel steps as the real .metal kernels compiled through the shim,
//     with the arguments, buffer bindings and grid from
//     gomps_plan_dispatch_of (what metal/backend.m encodes);
//   - buffers holding dead values are poisoned after every step;
// and compares the logits with an independent float64 forward over the real
// tokens only. So the data flow (buffer layouts, strides, which intermediate
// feeds which kernel, buffer reuse, padding and dummy rows) is checked
// without a Mac; what MPSGraph itself computes is not (metal/README.md).
//
//   layer [--small]   (--small: fewer cases, for the sanitizer build)
//
// Prints one line per case and a summary; exits 1 if any case failed.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <limits>
#include <map>
#include <random>
#include <string>
#include <vector>

#include <metal_stdlib>

#include "bias-gelu.metal"
#include "embed.metal"
#include "layer-norm.metal"
#include "masked-softmax.metal"

#include "msl_shim_end.h"

#include "gomps-plan.h"
#include "wfile/gomps-wfile.h"

namespace {

int g_pass = 0, g_fail = 0;

struct Config {
    uint V = 37, P = 12, T = 2, H = 64, nh = 2, I = 96, L = 2;
    double eps = 1e-12;
    uint hd() const { return H / nh; }
    uint n_tensors() const { return GOMPS_WT_LAYER0 + GOMPS_WT_PER_LAYER * L + 4; }
    uint head(uint k) const { return GOMPS_WT_LAYER0 + GOMPS_WT_PER_LAYER * L + k; }
};

using Vec = std::vector<double>;

// ---- the model: random weights in wfile tensor order, rounded to T ----

struct Weights {
    std::vector<Vec> w; // by tensor index, already rounded to the compute dtype
};

template <typename T> double round_to(double v) { return double(float(T(float(v)))); }

template <typename T> Weights make_weights(const Config &c, uint64_t seed) {
    std::mt19937_64 g(seed);
    Weights m;
    m.w.resize(c.n_tensors());
    auto fill = [&](uint idx, size_t n, double lo, double hi) {
        std::uniform_real_distribution<double> d(lo, hi);
        m.w[idx].resize(n);
        for (auto &x : m.w[idx]) x = round_to<T>(d(g));
    };
    const double sH = 1.7 / std::sqrt(double(c.H)), sI = 1.7 / std::sqrt(double(c.I));
    fill(GOMPS_WT_WORD, size_t(c.V) * c.H, -1, 1);
    fill(GOMPS_WT_POSITION, size_t(c.P) * c.H, -1, 1);
    fill(GOMPS_WT_TOKEN_TYPE, size_t(c.T) * c.H, -1, 1);
    fill(GOMPS_WT_EMB_LN_GAMMA, c.H, 0.5, 1.5);
    fill(GOMPS_WT_EMB_LN_BETA, c.H, -0.3, 0.3);
    for (uint l = 0; l < c.L; ++l) {
        auto L = [&](uint k) { return gomps_wfile_layer_index(l, k); };
        fill(L(GOMPS_WL_QKV_W), size_t(3) * c.H * c.H, -sH, sH);
        fill(L(GOMPS_WL_QKV_B), 3 * c.H, -0.2, 0.2);
        fill(L(GOMPS_WL_ATTN_OUT_W), size_t(c.H) * c.H, -sH, sH);
        fill(L(GOMPS_WL_ATTN_OUT_B), c.H, -0.2, 0.2);
        fill(L(GOMPS_WL_ATTN_LN_G), c.H, 0.5, 1.5);
        fill(L(GOMPS_WL_ATTN_LN_B), c.H, -0.3, 0.3);
        fill(L(GOMPS_WL_FFN_UP_W), size_t(c.I) * c.H, -sH, sH);
        fill(L(GOMPS_WL_FFN_UP_B), c.I, -0.5, 0.5);
        fill(L(GOMPS_WL_FFN_DOWN_W), size_t(c.H) * c.I, -sI, sI);
        fill(L(GOMPS_WL_FFN_DOWN_B), c.H, -0.2, 0.2);
        fill(L(GOMPS_WL_FFN_LN_G), c.H, 0.5, 1.5);
        fill(L(GOMPS_WL_FFN_LN_B), c.H, -0.3, 0.3);
    }
    fill(c.head(GOMPS_WH_POOLER_W), size_t(c.H) * c.H, -2 * sH, 2 * sH);
    fill(c.head(GOMPS_WH_POOLER_B), c.H, -0.2, 0.2);
    fill(c.head(GOMPS_WH_CLS_W), c.H, -1.5, 1.5);
    fill(c.head(GOMPS_WH_CLS_B), 1, -0.2, 0.2);
    return m;
}

// y[r, o] = sum_i x[r, i] W[o, i] (+ b[o]); W is [out, in]
Vec matmul_wt(const Vec &x, size_t rows, size_t in, const Vec &w, size_t out, const Vec *b) {
    Vec y(rows * out);
    for (size_t r = 0; r < rows; ++r)
        for (size_t o = 0; o < out; ++o) {
            double s = b ? (*b)[o] : 0.0;
            for (size_t i = 0; i < in; ++i) s += x[r * in + i] * w[o * in + i];
            y[r * out + o] = s;
        }
    return y;
}

Vec layer_norm_rows(const Vec &x, size_t rows, size_t n, const Vec &g, const Vec &b, double eps) {
    Vec y(rows * n);
    for (size_t r = 0; r < rows; ++r) {
        double mean = 0, var = 0;
        for (size_t i = 0; i < n; ++i) mean += x[r * n + i];
        mean /= double(n);
        for (size_t i = 0; i < n; ++i) var += (x[r * n + i] - mean) * (x[r * n + i] - mean);
        var /= double(n);
        for (size_t i = 0; i < n; ++i) y[r * n + i] = (x[r * n + i] - mean) / std::sqrt(var + eps) * g[i] + b[i];
    }
    return y;
}

double gelu(double v) { return 0.5 * v * (1.0 + std::erf(v / std::sqrt(2.0))); }

// ---- the independent reference: one row, its real tokens only ----

double reference_logit(const Config &c, const Weights &m, const int *ids, const int *types, uint n) {
    const auto &w = m.w;
    const uint H = c.H, hd = c.hd();
    Vec x(size_t(n) * H);
    for (uint j = 0; j < n; ++j)
        for (uint h = 0; h < H; ++h)
            x[j * H + h] = w[GOMPS_WT_WORD][size_t(ids[j]) * H + h] + w[GOMPS_WT_POSITION][size_t(j) * H + h] +
                           w[GOMPS_WT_TOKEN_TYPE][size_t(types[j]) * H + h];
    x = layer_norm_rows(x, n, H, w[GOMPS_WT_EMB_LN_GAMMA], w[GOMPS_WT_EMB_LN_BETA], c.eps);
    for (uint l = 0; l < c.L; ++l) {
        auto W = [&](uint k) -> const Vec & { return w[gomps_wfile_layer_index(l, k)]; };
        Vec qkv = matmul_wt(x, n, H, W(GOMPS_WL_QKV_W), 3 * H, &W(GOMPS_WL_QKV_B));
        Vec ctx(size_t(n) * H, 0.0);
        for (uint hh = 0; hh < c.nh; ++hh)
            for (uint i = 0; i < n; ++i) {
                Vec s(n);
                double mx = -1e300, z = 0;
                for (uint j = 0; j < n; ++j) {
                    double d = 0;
                    for (uint k = 0; k < hd; ++k) d += qkv[i * 3 * H + hh * hd + k] * qkv[j * 3 * H + H + hh * hd + k];
                    s[j] = d / std::sqrt(double(hd));
                    mx = std::max(mx, s[j]);
                }
                for (uint j = 0; j < n; ++j) z += (s[j] = std::exp(s[j] - mx));
                for (uint j = 0; j < n; ++j)
                    for (uint k = 0; k < hd; ++k) ctx[i * H + hh * hd + k] += s[j] / z * qkv[j * 3 * H + 2 * H + hh * hd + k];
            }
        Vec a = matmul_wt(ctx, n, H, W(GOMPS_WL_ATTN_OUT_W), H, &W(GOMPS_WL_ATTN_OUT_B));
        for (size_t i = 0; i < a.size(); ++i) a[i] += x[i];
        Vec x1 = layer_norm_rows(a, n, H, W(GOMPS_WL_ATTN_LN_G), W(GOMPS_WL_ATTN_LN_B), c.eps);
        Vec up = matmul_wt(x1, n, H, W(GOMPS_WL_FFN_UP_W), c.I, &W(GOMPS_WL_FFN_UP_B));
        for (auto &v : up) v = gelu(v);
        Vec d = matmul_wt(up, n, c.I, W(GOMPS_WL_FFN_DOWN_W), H, &W(GOMPS_WL_FFN_DOWN_B));
        for (size_t i = 0; i < d.size(); ++i) d[i] += x1[i];
        x = layer_norm_rows(d, n, H, W(GOMPS_WL_FFN_LN_G), W(GOMPS_WL_FFN_LN_B), c.eps);
    }
    Vec cls(x.begin(), x.begin() + H);
    Vec pooled = matmul_wt(cls, 1, H, w[c.head(GOMPS_WH_POOLER_W)], H, &w[c.head(GOMPS_WH_POOLER_B)]);
    for (auto &v : pooled) v = std::tanh(v);
    return matmul_wt(pooled, 1, H, w[c.head(GOMPS_WH_CLS_W)], 1, &w[c.head(GOMPS_WH_CLS_B)])[0];
}

// ---- the plan, executed ----

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

template <typename T> struct Emulator {
    const Config &c;
    const gomps_plan &p;
    const Weights &m;
    std::vector<std::vector<T>> wt; // weights as the GPU buffers hold them
    uint B, S;
    // the session's buffers, each exactly the bucket's size (so AddressSanitizer
    // sees any access past the bucket's view)
    std::vector<int> ids, types, lengths;
    std::vector<float> mask, logits;
    std::vector<std::vector<T>> pool[GOMPS_BUF_NCLASS];
    int holder[GOMPS_BUF_NCLASS][GOMPS_PLAN_SEG_IO];
    std::string error;

    Emulator(const Config &c, const gomps_plan &p, const Weights &m, uint B, uint S) : c(c), p(p), m(m), B(B), S(S) {
        for (const auto &v : m.w) {
            std::vector<T> t(v.size());
            for (size_t i = 0; i < v.size(); ++i) t[i] = T(float(v[i]));
            wt.push_back(std::move(t));
        }
        for (int cls = GOMPS_BUF_FIRST_POOL; cls < GOMPS_BUF_NCLASS; ++cls)
            for (int k = 0; k < p.pool[cls]; ++k) pool[cls].emplace_back(elems(cls), T(float(kNaN)));
        std::memset(holder, 0xff, sizeof holder);
    }

    size_t elems(int cls) const { return gomps_plan_class_elems(cls, B, S, c.H, c.nh, c.I); }

    void *ptr(int v) {
        const gomps_plan_value &pv = p.values[v];
        switch (pv.cls) {
        case GOMPS_BUF_IDS: return ids.data();
        case GOMPS_BUF_TYPES: return types.data();
        case GOMPS_BUF_MASK: return mask.data();
        case GOMPS_BUF_LENGTHS: return lengths.data();
        case GOMPS_BUF_LOGITS: return logits.data();
        default: return pool[pv.cls].at(size_t(pv.buf)).data();
        }
    }

    void poison(int v) {
        const gomps_plan_value &pv = p.values[v];
        if (pv.cls == GOMPS_BUF_LOGITS) {
            std::fill(logits.begin(), logits.end(), float(kNaN));
        } else if (pv.cls >= GOMPS_BUF_FIRST_POOL) {
            auto &b = pool[pv.cls].at(size_t(pv.buf));
            std::fill(b.begin(), b.end(), T(float(kNaN)));
        }
    }

    // a step's buffer input, as float64, read now
    Vec read(int v) {
        const gomps_plan_value &pv = p.values[v];
        const size_t n = elems(pv.cls);
        Vec out(n);
        if (pv.cls == GOMPS_BUF_MASK) {
            for (size_t i = 0; i < n; ++i) out[i] = mask[i];
        } else {
            const T *src = static_cast<const T *>(ptr(v));
            for (size_t i = 0; i < n; ++i) out[i] = double(float(src[i]));
        }
        return out;
    }

    void write(int v, const Vec &x) {
        const gomps_plan_value &pv = p.values[v];
        if (pv.cls == GOMPS_BUF_LOGITS) {
            for (size_t i = 0; i < x.size(); ++i) logits[i] = float(x[i]);
            return;
        }
        T *dst = static_cast<T *>(ptr(v));
        for (size_t i = 0; i < x.size(); ++i) dst[i] = T(float(x[i]));
    }

    const Vec &W(uint idx) const { return m.w[idx]; }

    // one graph unit, after graph.m's emit_unit; get(v) yields an input
    void unit(const gomps_plan_unit &u, const std::function<Vec(int)> &get, const std::function<void(int, Vec)> &put) {
        const uint H = c.H, hd = c.hd(), N = B * S, l = u.layer;
        auto LW = [&](uint k) -> const Vec & { return W(gomps_wfile_layer_index(l, k)); };
        switch (u.kind) {
        case GOMPS_U_EMBED: {
            Vec e(size_t(N) * H);
            for (uint r = 0; r < N; ++r)
                for (uint h = 0; h < H; ++h)
                    e[r * H + h] = W(GOMPS_WT_WORD)[size_t(ids[r]) * H + h] + W(GOMPS_WT_POSITION)[size_t(r % S) * H + h] +
                                   W(GOMPS_WT_TOKEN_TYPE)[size_t(types[r]) * H + h];
            put(u.out[0], layer_norm_rows(e, N, H, W(GOMPS_WT_EMB_LN_GAMMA), W(GOMPS_WT_EMB_LN_BETA), c.eps));
            break;
        }
        case GOMPS_U_SCORES: {
            Vec qkv = matmul_wt(get(u.in[0]), N, H, LW(GOMPS_WL_QKV_W), 3 * H, &LW(GOMPS_WL_QKV_B));
            Vec sc(size_t(B) * c.nh * S * S);
            for (uint b = 0; b < B; ++b)
                for (uint hh = 0; hh < c.nh; ++hh)
                    for (uint i = 0; i < S; ++i)
                        for (uint j = 0; j < S; ++j) {
                            double d = 0;
                            for (uint k = 0; k < hd; ++k)
                                d += qkv[size_t(b * S + i) * 3 * H + hh * hd + k] / std::sqrt(double(hd)) *
                                     qkv[size_t(b * S + j) * 3 * H + H + hh * hd + k];
                            sc[((size_t(b) * c.nh + hh) * S + i) * S + j] = d;
                        }
            put(u.out[0], qkv);
            put(u.out[1], sc);
            break;
        }
        case GOMPS_U_SOFTMAX: { // the graph's: + additive mask [B, S], softmax over keys
            Vec sc = get(u.in[0]), mk = get(u.in[1]);
            for (size_t row = 0; row < size_t(B) * c.nh * S; ++row) {
                const size_t b = row / (size_t(c.nh) * S);
                double mx = -1e300, z = 0;
                for (uint j = 0; j < S; ++j) mx = std::max(mx, sc[row * S + j] += mk[b * S + j]);
                for (uint j = 0; j < S; ++j) z += (sc[row * S + j] = std::exp(sc[row * S + j] - mx));
                for (uint j = 0; j < S; ++j) sc[row * S + j] /= z;
            }
            put(u.out[0], sc);
            break;
        }
        case GOMPS_U_ATTN: {
            Vec pr = get(u.in[0]), qkv = get(u.in[1]), x = get(u.in[2]);
            Vec ctx(size_t(N) * H, 0.0);
            for (uint b = 0; b < B; ++b)
                for (uint hh = 0; hh < c.nh; ++hh)
                    for (uint i = 0; i < S; ++i)
                        for (uint j = 0; j < S; ++j) {
                            const double a = pr[((size_t(b) * c.nh + hh) * S + i) * S + j];
                            for (uint k = 0; k < hd; ++k)
                                ctx[size_t(b * S + i) * H + hh * hd + k] += a * qkv[size_t(b * S + j) * 3 * H + 2 * H + hh * hd + k];
                        }
            Vec y = matmul_wt(ctx, N, H, LW(GOMPS_WL_ATTN_OUT_W), H, &LW(GOMPS_WL_ATTN_OUT_B));
            for (size_t i = 0; i < y.size(); ++i) y[i] += x[i];
            put(u.out[0], y);
            break;
        }
        case GOMPS_U_LN1:
            put(u.out[0], layer_norm_rows(get(u.in[0]), N, H, LW(GOMPS_WL_ATTN_LN_G), LW(GOMPS_WL_ATTN_LN_B), c.eps));
            break;
        case GOMPS_U_UP: put(u.out[0], matmul_wt(get(u.in[0]), N, H, LW(GOMPS_WL_FFN_UP_W), c.I, nullptr)); break;
        case GOMPS_U_GELU: {
            Vec x = get(u.in[0]);
            for (size_t i = 0; i < x.size(); ++i) x[i] = gelu(x[i] + LW(GOMPS_WL_FFN_UP_B)[i % c.I]);
            put(u.out[0], x);
            break;
        }
        case GOMPS_U_DOWN: {
            Vec y = matmul_wt(get(u.in[0]), N, c.I, LW(GOMPS_WL_FFN_DOWN_W), H, &LW(GOMPS_WL_FFN_DOWN_B));
            Vec x1 = get(u.in[1]);
            for (size_t i = 0; i < y.size(); ++i) y[i] += x1[i];
            put(u.out[0], y);
            break;
        }
        case GOMPS_U_LN2:
            put(u.out[0], layer_norm_rows(get(u.in[0]), N, H, LW(GOMPS_WL_FFN_LN_G), LW(GOMPS_WL_FFN_LN_B), c.eps));
            break;
        case GOMPS_U_HEAD: {
            Vec x = get(u.in[0]), cls(size_t(B) * H);
            for (uint b = 0; b < B; ++b)
                for (uint h = 0; h < H; ++h) cls[b * H + h] = x[size_t(b * S) * H + h];
            Vec pooled = matmul_wt(cls, B, H, W(c.head(GOMPS_WH_POOLER_W)), H, &W(c.head(GOMPS_WH_POOLER_B)));
            for (auto &v : pooled) v = std::tanh(v);
            put(u.out[0], matmul_wt(pooled, B, H, W(c.head(GOMPS_WH_CLS_W)), 1, &W(c.head(GOMPS_WH_CLS_B))));
            break;
        }
        default: error = "unknown unit kind " + std::to_string(u.kind);
        }
    }

    bool graph_step(int si) {
        const gomps_plan_step &s = p.steps[si];
        auto is_in = [&](int v) {
            for (int k = 0; k < s.n_in; ++k)
                if (s.in[k] == v) return true;
            return false;
        };
        auto is_out = [&](int v) {
            for (int k = 0; k < s.n_out; ++k)
                if (s.out[k] == v) return true;
            return false;
        };
        for (int k = 0; k < s.n_out; ++k) poison(s.out[k]);
        std::map<int, Vec> local;
        auto get = [&](int v) -> Vec {
            if (auto it = local.find(v); it != local.end()) return it->second;
            if (!is_in(v)) {
                error = "step " + std::to_string(si) + " reads value " + std::to_string(v) + " it does not have";
                return Vec(elems(p.values[v].cls), kNaN);
            }
            return read(v);
        };
        auto put = [&](int v, Vec x) {
            if (is_out(v)) write(v, x);
            local[v] = std::move(x);
        };
        for (int u = s.first; u < s.first + s.n; ++u) unit(p.units[u], get, put);
        return error.empty();
    }

    bool kernel_step(int si) {
        gomps_plan_dims dims{B, S, c.H, c.nh, c.I, c.V, c.T, c.P, float(c.eps)};
        gomps_plan_dispatch d;
        char err[256];
        if (gomps_plan_dispatch_of(&p, si, &dims, &d, err, sizeof err) != 0) {
            error = err;
            return false;
        }
        // buffer index i -> pointer; the class each index must have
        auto buf = [&](int i, int want_cls) -> void * {
            const gomps_plan_binding &b = d.bind[i];
            if (i >= d.n_bind) {
                error = std::string(d.op) + ": buffer " + std::to_string(i) + " is not bound";
                return nullptr;
            }
            if (want_cls < 0) { // a weight
                if (b.weight < 0 || size_t(b.weight) >= wt.size()) {
                    error = std::string(d.op) + ": buffer " + std::to_string(i) + " should be a weight";
                    return nullptr;
                }
                return wt[size_t(b.weight)].data();
            }
            if (b.value < 0 || p.values[b.value].cls != want_cls) {
                error = std::string(d.op) + ": buffer " + std::to_string(i) + " has the wrong class";
                return nullptr;
            }
            return ptr(b.value);
        };
        constexpr int Wt = -1;
        switch (d.kind) {
        case GOMPS_U_EMBED: {
            auto *a = buf(1, GOMPS_BUF_IDS), *b = buf(2, GOMPS_BUF_TYPES), *w = buf(3, Wt), *po = buf(4, Wt),
                 *ty = buf(5, Wt), *ga = buf(6, Wt), *be = buf(7, Wt), *o = buf(8, GOMPS_BUF_HIDDEN);
            if (!error.empty() || d.args_size != sizeof d.args.embed) return false;
            msl_shim::run_groups(d.groups, d.threads, [&](uint row, uint tid, uint lane, uint sg) {
                embed<T>(d.args.embed, (const int *)a, (const int *)b, (const T *)w, (const T *)po, (const T *)ty,
                         (const T *)ga, (const T *)be, (T *)o, row, tid, lane, sg);
            });
            break;
        }
        case GOMPS_U_SOFTMAX: {
            auto *x = buf(1, GOMPS_BUF_SCORES), *len = buf(2, GOMPS_BUF_LENGTHS), *o = buf(3, GOMPS_BUF_SCORES);
            if (!error.empty() || d.args_size != sizeof d.args.masked_softmax) return false;
            msl_shim::run_groups(d.groups, d.threads, [&](uint row, uint tid, uint lane, uint sg) {
                masked_softmax<T>(d.args.masked_softmax, (const T *)x, (const int *)len, (T *)o, row, tid, lane, sg);
            });
            break;
        }
        case GOMPS_U_LN1:
        case GOMPS_U_LN2: {
            auto *x = buf(1, GOMPS_BUF_HIDDEN), *ga = buf(2, Wt), *be = buf(3, Wt), *o = buf(4, GOMPS_BUF_HIDDEN);
            if (!error.empty() || d.args_size != sizeof d.args.layer_norm) return false;
            msl_shim::run_groups(d.groups, d.threads, [&](uint row, uint tid, uint lane, uint sg) {
                layer_norm<T>(d.args.layer_norm, (const T *)x, (const T *)ga, (const T *)be, (T *)o, row, tid, lane, sg);
            });
            break;
        }
        case GOMPS_U_GELU: {
            auto *x = buf(1, GOMPS_BUF_FFN), *bias = buf(2, Wt), *o = buf(3, GOMPS_BUF_FFN);
            if (!error.empty() || d.args_size != sizeof d.args.bias_gelu) return false;
            msl_shim::run_grid(d.groups * d.threads,
                               [&](uint gid) { bias_gelu<T>(d.args.bias_gelu, (const T *)x, (const T *)bias, (T *)o, gid); });
            break;
        }
        default: error = "kernel step of kind " + std::to_string(d.kind); return false;
        }
        return true;
    }

    // the forward of rows real rows (ids/types [rows, seq], lengths) padded
    // into the bucket the way metal/backend.m's session_run pads them
    bool forward(uint rows, uint seq, const std::vector<int> &in_ids, const std::vector<int> &in_types,
                 const std::vector<int> &in_len) {
        ids.assign(size_t(B) * S, 0);
        types.assign(size_t(B) * S, 0);
        mask.assign(size_t(B) * S, 0.0f);
        lengths.assign(B, 1);
        logits.assign(B, float(kNaN));
        for (uint r = 0; r < B; ++r) {
            const int len = r < rows ? in_len[r] : 1; // dummy rows: length 1
            lengths[r] = len;
            for (uint j = 0; j < S; ++j) {
                const bool real = int(j) < len;
                ids[r * S + j] = real && r < rows ? in_ids[r * seq + j] : 0;
                types[r * S + j] = real && r < rows ? in_types[r * seq + j] : 0;
                mask[r * S + j] = real ? 0.0f : GOMPS_MASK_VALUE;
            }
        }
        for (int si = 0; si < p.n_steps; ++si) {
            const gomps_plan_step &s = p.steps[si];
            if (!(s.kernel ? kernel_step(si) : graph_step(si))) {
                if (error.empty()) error = "step " + std::to_string(si) + " failed";
                return false;
            }
            // the values this step wrote now hold their buffers; buffers whose
            // value is dead after it are poisoned
            for (int k = 0; k < s.n_out; ++k) {
                const gomps_plan_value &pv = p.values[s.out[k]];
                if (pv.cls >= GOMPS_BUF_FIRST_POOL) holder[pv.cls][pv.buf] = s.out[k];
            }
            const int last = s.first + s.n - 1;
            for (int cls = GOMPS_BUF_FIRST_POOL; cls < GOMPS_BUF_NCLASS; ++cls)
                for (int k = 0; k < p.pool[cls]; ++k) {
                    const int h = holder[cls][k];
                    if (h >= 0 && p.values[h].last_use <= last) {
                        poison(h);
                        holder[cls][k] = -1;
                    }
                }
        }
        return true;
    }
};

std::string kernel_names(uint32_t k) {
    std::string s;
    const char *names[] = {"embed", "layer_norm", "softmax", "bias_gelu"};
    for (int i = 0; i < 4; ++i)
        if (k & (1u << i)) s += (s.empty() ? "" : ",") + std::string(names[i]);
    return s.empty() ? "none" : s;
}

template <typename T> struct dtype_name;
template <> struct dtype_name<float> { static constexpr const char *v = "f32"; };
template <> struct dtype_name<half> { static constexpr const char *v = "f16"; };

// One kernel selection on one bucket: the plan, then the forward against the
// reference. f32 bound 1e-5 absolute on the logits (observed ~1e-7: fp32
// storage between steps and the kernels' fp32 arithmetic); f16 bound
// 3e-2 + 3e-2 |ref|, the darwin tests' fp16 tolerance.
template <typename T>
void run_case(const Config &c, const Weights &m, uint32_t kernels, uint B, uint S, uint rows, uint64_t seed) {
    static gomps_plan plan; // large; one at a time
    char err[256] = "";
    const std::string name = std::string("forward_") + dtype_name<T>::v + "/kernels=" + kernel_names(kernels) +
                             "/bucket=" + std::to_string(B) + "x" + std::to_string(S) + "/rows=" + std::to_string(rows);
    // the plan is complete even when its validation fails: run it anyway, so
    // the numbers below judge the data flow on their own
    const bool valid = gomps_plan_build(&plan, int32_t(c.L), kernels, err, sizeof err) == 0;
    if (!valid) std::printf("%-64s plan invalid: %s\n", name.c_str(), err);

    std::mt19937_64 g(seed);
    std::vector<int> ids(size_t(rows) * S), types(size_t(rows) * S), len(rows);
    for (uint r = 0; r < rows; ++r) {
        len[r] = r == 0 ? int(S) : 1 + int(g() % S); // row 0 fills the bucket
        const uint split = 1 + uint(g() % uint(len[r]));
        for (uint j = 0; j < S; ++j) {
            ids[r * S + j] = int(g() % c.V); // padding content must not matter
            types[r * S + j] = j < uint(len[r]) ? int(j >= split) : int(g() % 2);
        }
        ids[r * S] = 2;
    }
    Emulator<T> e(c, plan, m, B, S);
    const bool ran = e.forward(rows, S, ids, types, len);
    double maxd = 0, num = 0, den = 0, worst_tol = 0;
    bool ok = valid && ran;
    for (uint r = 0; ran && r < B; ++r) {
        if (!std::isfinite(e.logits[r])) {
            ok = false;
            maxd = kNaN;
            continue;
        }
        if (r >= rows) continue; // dummy rows: only finite
        const double want = reference_logit(c, m, &ids[r * S], &types[r * S], uint(len[r]));
        const double d = std::fabs(double(e.logits[r]) - want);
        const double tol = sizeof(T) == 4 ? 1e-5 : 3e-2 + 3e-2 * std::fabs(want);
        if (!(d <= tol)) ok = false;
        if (d > maxd) maxd = d, worst_tol = tol;
        num += d * d;
        den += want * want;
    }
    std::printf("%-64s segments=%d kernel_steps=%d buffers=H%d/Q%d/S%d/F%d max|d|=%.2e (tol %.1e) nmse=%.2e%s %s\n",
                name.c_str(), plan.n_segments, plan.n_steps - plan.n_segments, plan.pool[GOMPS_BUF_HIDDEN],
                plan.pool[GOMPS_BUF_QKV], plan.pool[GOMPS_BUF_SCORES], plan.pool[GOMPS_BUF_FFN], maxd, worst_tol,
                den > 0 ? num / den : 0.0, e.error.empty() ? "" : (" error: " + e.error).c_str(), ok ? "PASS" : "FAIL");
    (ok ? g_pass : g_fail)++;
}

// Every selection's plan validates, with the expected step counts.
void check_plans(uint32_t layers) {
    static gomps_plan plan;
    for (uint32_t k = 0; k < 16; ++k) {
        char err[256] = "";
        const bool ok_build = gomps_plan_build(&plan, int32_t(layers), k, err, sizeof err) == 0;
        const int per = ((k >> 2) & 1) + 2 * ((k >> 1) & 1) + ((k >> 3) & 1);
        const bool counts = plan.n_segments == 1 + int(layers) * per &&
                            plan.n_steps - plan.n_segments == int(k & 1) + int(layers) * per;
        const bool ok = ok_build && counts;
        std::printf("%-64s steps=%d segments=%d%s%s %s\n",
                    ("plan/layers=" + std::to_string(layers) + "/kernels=" + kernel_names(k)).c_str(), plan.n_steps,
                    plan.n_segments, ok_build ? "" : " invalid: ", ok_build ? "" : err, ok ? "PASS" : "FAIL");
        (ok ? g_pass : g_fail)++;
    }
}

} // namespace

int main(int argc, char **argv) {
    bool small = false;
    for (int i = 1; i < argc; ++i) {
        if (std::string(argv[i]) == "--small") {
            small = true;
        } else {
            std::fprintf(stderr, "layer: unknown argument %s\n", argv[i]);
            return 2;
        }
    }
    const Config c;
    for (uint32_t layers : {1u, 6u, 12u, uint32_t(GOMPS_PLAN_MAX_LAYERS)}) check_plans(layers);
    { // one layer too many is an error, not an overflow
        static gomps_plan plan;
        char err[256] = "";
        const bool ok = gomps_plan_build(&plan, GOMPS_PLAN_MAX_LAYERS + 1, 15, err, sizeof err) != 0 &&
                        std::strstr(err, "layers") != nullptr;
        std::printf("%-64s %s %s\n", "plan/layers=too-many", err, ok ? "PASS" : "FAIL");
        (ok ? g_pass : g_fail)++;
    }
    const Weights w32 = make_weights<float>(c, 17), w16 = make_weights<half>(c, 17);
    // bucket 3x7 holding 2 rows (one dummy row), and 2x12 full
    if (small) {
        run_case<float>(c, w32, 15, 2, 5, 1, 1);
        run_case<half>(c, w16, 15, 2, 5, 1, 2);
    } else {
        for (uint32_t k = 0; k < 16; ++k) run_case<float>(c, w32, k, 3, 7, 2, 100 + k);
        run_case<float>(c, w32, 15, 2, 12, 2, 7);
        run_case<float>(c, w32, 15, 1, 1, 1, 8);
        for (uint32_t k : {0u, 1u, 2u, 4u, 8u, 15u}) run_case<half>(c, w16, k, 3, 7, 2, 200 + k);
    }
    std::printf("layer: %d passed, %d failed\n", g_pass, g_fail);
    return g_fail == 0 ? 0 : 1;
}
