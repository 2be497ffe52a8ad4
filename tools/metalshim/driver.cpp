// driver.cpp: runs every gomps .metal kernel, compiled as C++ through the
// metal_stdlib shim, on seeded random inputs against independent
// double-precision loops, and measures gomps_erf against libm.
//
//   driver [--small] [--only=op[,op...]]
//     --small  shapes of at most 8 rows (for the ThreadSanitizer and
//              AddressSanitizer builds, which must stay fast)
//     --only   run only the named ops (embed, layer_norm, masked_softmax,
//              bias_gelu, erf, shim: the shim's own SIMD and barrier check)
//
// Prints one line per case and a summary; exits 1 if any case failed.
// tools/check-metal.sh builds and runs it (plain, TSan, ASan, mutants).
#include <cfloat>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <metal_stdlib>

#include "bias-gelu.metal"
#include "embed.metal"
#include "layer-norm.metal"
#include "masked-softmax.metal"

#include "msl_shim_end.h"

namespace {

int g_pass = 0, g_fail = 0;
std::set<std::string> g_only;

bool wanted(const char *op) { return g_only.empty() || g_only.count(op) > 0; }

// Tolerances (normalized MSE = sum (y - ref)^2 / sum ref^2): the project
// bound, 1e-7, for both dtypes. f32 cases observe about 7e-15. f16 cases
// (half inputs and outputs, fp32 arithmetic inside) observe up to 5.3e-8,
// which is the cost of rounding the output to half, so f16 keeps a 2x margin.
constexpr double kTolF32 = 1e-7;
constexpr double kTolF16 = 1e-7;
// gomps_erf: max absolute error against libm (the bound).
constexpr double kTolErf = 1e-6;

constexpr size_t kGuard = 64; // guard elements each side of an output
constexpr uint32_t kGuardBits = 0x7fc0dead; // a NaN payload no kernel writes

template <typename T> struct dtype_name;
template <> struct dtype_name<float> { static constexpr const char *v = "f32"; };
template <> struct dtype_name<half> { static constexpr const char *v = "f16"; };

template <typename T> double tol_of() { return sizeof(T) == 4 ? kTolF32 : kTolF16; }

// out_buf: an output with guard elements before and after, checked untouched.
template <typename T> struct out_buf {
    explicit out_buf(size_t n) : n(n), raw(n + 2 * kGuard) {
        for (size_t i = 0; i < kGuard; ++i) {
            set_guard(raw[i]);
            set_guard(raw[kGuard + n + i]);
        }
    }
    static void set_guard(T &x) {
        if constexpr (sizeof(T) == 4) {
            std::memcpy(&x, &kGuardBits, 4);
        } else {
            uint16_t b = 0x7e5d;
            std::memcpy(&x, &b, 2);
        }
    }
    static bool is_guard(const T &x) {
        T g;
        set_guard(g);
        return std::memcmp(&x, &g, sizeof(T)) == 0;
    }
    T *data() { return raw.data() + kGuard; }
    bool guards_intact() const {
        for (size_t i = 0; i < kGuard; ++i) {
            if (!is_guard(raw[i]) || !is_guard(raw[kGuard + n + i])) return false;
        }
        return true;
    }
    size_t n;
    std::vector<T> raw;
};

// rnd fills exactly-sized vectors (so AddressSanitizer sees any over-read)
// with uniform values in [lo, hi), rounded to T.
template <typename T> std::vector<T> rnd(std::mt19937_64 &g, size_t n, double lo, double hi) {
    std::uniform_real_distribution<double> d(lo, hi);
    std::vector<T> v(n);
    for (auto &x : v) x = T(float(d(g)));
    return v;
}

template <typename T> void report(const std::string &name, const T *y, const std::vector<double> &ref,
                                  bool guards_ok, double tol) {
    double num = 0, den = 0;
    size_t bad = 0;
    for (size_t i = 0; i < ref.size(); ++i) {
        const double v = double(float(y[i]));
        if (!std::isfinite(v)) {
            ++bad;
            continue;
        }
        num += (v - ref[i]) * (v - ref[i]);
        den += ref[i] * ref[i];
    }
    const double nmse = den > 0 ? num / den : num;
    const bool ok = bad == 0 && guards_ok && nmse <= tol;
    std::printf("%-52s nmse=%.3e tol=%.0e%s%s %s\n", name.c_str(), nmse, tol,
                bad ? " NON-FINITE" : "", guards_ok ? "" : " GUARD-OVERWRITTEN", ok ? "PASS" : "FAIL");
    (ok ? g_pass : g_fail)++;
}

// ---- references (double precision, written independently of the kernels) ----

std::vector<double> ref_layer_norm(const std::vector<double> &x, size_t rows, size_t cols,
                                   const std::vector<double> &gamma, const std::vector<double> &beta,
                                   double eps) {
    std::vector<double> y(rows * cols);
    for (size_t r = 0; r < rows; ++r) {
        double mean = 0;
        for (size_t c = 0; c < cols; ++c) mean += x[r * cols + c];
        mean /= double(cols);
        double var = 0;
        for (size_t c = 0; c < cols; ++c) var += (x[r * cols + c] - mean) * (x[r * cols + c] - mean);
        var /= double(cols);
        for (size_t c = 0; c < cols; ++c)
            y[r * cols + c] = (x[r * cols + c] - mean) / std::sqrt(var + eps) * gamma[c] + beta[c];
    }
    return y;
}

template <typename T> std::vector<double> widen(const std::vector<T> &v) {
    std::vector<double> d(v.size());
    for (size_t i = 0; i < v.size(); ++i) d[i] = double(float(v[i]));
    return d;
}

// ---- cases ----

template <typename T> void case_layer_norm(std::mt19937_64 &g, uint rows, uint cols) {
    auto x = rnd<T>(g, size_t(rows) * cols, -3, 5);
    auto gamma = rnd<T>(g, cols, 0.5, 1.5);
    auto beta = rnd<T>(g, cols, -0.5, 0.5);
    const float eps = 1e-12f;
    out_buf<T> out(size_t(rows) * cols);
    gomps_args_layer_norm a{rows, cols, eps};
    msl_shim::run_groups(rows, GOMPS_ROW_THREADS, [&](uint row, uint tid, uint lane, uint sg) {
        layer_norm<T>(a, x.data(), gamma.data(), beta.data(), out.data(), row, tid, lane, sg);
    });
    auto ref = ref_layer_norm(widen(x), rows, cols, widen(gamma), widen(beta), double(eps));
    std::ostringstream n;
    n << "layer_norm_" << dtype_name<T>::v << "/rows=" << rows << "/cols=" << cols;
    report(n.str(), out.data(), ref, out.guards_intact(), tol_of<T>());
}

template <typename T>
void case_masked_softmax(std::mt19937_64 &g, uint batch, uint heads, uint seq, std::vector<int> lengths) {
    const uint rows = batch * heads * seq, cols = seq;
    auto x = rnd<T>(g, size_t(rows) * cols, -8, 8);
    const float scale = 1.0f / std::sqrt(32.0f);
    out_buf<T> out(size_t(rows) * cols);
    gomps_args_masked_softmax a{rows, cols, heads * seq, scale, GOMPS_MASK_VALUE};
    msl_shim::run_groups(rows, GOMPS_ROW_THREADS, [&](uint row, uint tid, uint lane, uint sg) {
        masked_softmax<T>(a, x.data(), lengths.data(), out.data(), row, tid, lane, sg);
    });
    std::vector<double> ref(size_t(rows) * cols);
    for (uint r = 0; r < rows; ++r) {
        const int len = lengths[r / (heads * seq)];
        double m = -1e300;
        std::vector<double> s(cols);
        for (uint c = 0; c < cols; ++c) {
            s[c] = double(float(x[size_t(r) * cols + c])) * double(scale) + (int(c) < len ? 0.0 : -10000.0);
            m = std::max(m, s[c]);
        }
        double z = 0;
        for (uint c = 0; c < cols; ++c) z += std::exp(s[c] - m);
        for (uint c = 0; c < cols; ++c) ref[size_t(r) * cols + c] = std::exp(s[c] - m) / z;
    }
    std::ostringstream n;
    n << "masked_softmax_" << dtype_name<T>::v << "/b=" << batch << "/heads=" << heads << "/seq=" << seq;
    report(n.str(), out.data(), ref, out.guards_intact(), tol_of<T>());
}

template <typename T> void case_bias_gelu(std::mt19937_64 &g, uint rows, uint cols) {
    const uint n = rows * cols;
    auto x = rnd<T>(g, n, -6, 6);
    auto bias = rnd<T>(g, cols, -1, 1);
    out_buf<T> out(n);
    gomps_args_bias_gelu a{n, cols};
    // The host rounds the grid up to whole threadgroups; so does this driver.
    const uint grid = (n + GOMPS_ELEM_THREADS - 1) / GOMPS_ELEM_THREADS * GOMPS_ELEM_THREADS;
    msl_shim::run_grid(grid, [&](uint gid) { bias_gelu<T>(a, x.data(), bias.data(), out.data(), gid); });
    std::vector<double> ref(n);
    for (uint i = 0; i < n; ++i) {
        const double v = double(float(x[i])) + double(float(bias[i % cols]));
        ref[i] = 0.5 * v * (1.0 + std::erf(v / std::sqrt(2.0)));
    }
    std::ostringstream s;
    s << "bias_gelu_" << dtype_name<T>::v << "/rows=" << rows << "/cols=" << cols << "/grid=" << grid;
    report(s.str(), out.data(), ref, out.guards_intact(), tol_of<T>());
}

template <typename T>
void case_embed(std::mt19937_64 &g, uint batch, uint seq, uint hidden, uint vocab, uint maxpos) {
    const uint rows = batch * seq, types = 2;
    auto word = rnd<T>(g, size_t(vocab) * hidden, -1, 1);
    auto pos = rnd<T>(g, size_t(maxpos) * hidden, -1, 1);
    auto tt = rnd<T>(g, size_t(types) * hidden, -1, 1);
    auto gamma = rnd<T>(g, hidden, 0.5, 1.5);
    auto beta = rnd<T>(g, hidden, -0.5, 0.5);
    std::vector<int> ids(rows), tids(rows);
    std::uniform_int_distribution<int> di(0, int(vocab) - 1), dt(0, int(types) - 1);
    for (uint r = 0; r < rows; ++r) {
        ids[r] = di(g);
        tids[r] = dt(g);
    }
    const float eps = 1e-12f;
    out_buf<T> out(size_t(rows) * hidden);
    gomps_args_embed a{rows, seq, hidden, vocab, types, maxpos, eps};
    msl_shim::run_groups(rows, GOMPS_ROW_THREADS, [&](uint row, uint tid, uint lane, uint sg) {
        embed<T>(a, ids.data(), tids.data(), word.data(), pos.data(), tt.data(), gamma.data(), beta.data(),
                 out.data(), row, tid, lane, sg);
    });
    std::vector<double> sum(size_t(rows) * hidden);
    for (uint r = 0; r < rows; ++r)
        for (uint c = 0; c < hidden; ++c)
            sum[size_t(r) * hidden + c] = double(float(word[size_t(ids[r]) * hidden + c])) +
                                          double(float(pos[size_t(r % seq) * hidden + c])) +
                                          double(float(tt[size_t(tids[r]) * hidden + c]));
    auto ref = ref_layer_norm(sum, rows, hidden, widen(gamma), widen(beta), double(eps));
    std::ostringstream n;
    n << "embed_" << dtype_name<T>::v << "/b=" << batch << "/seq=" << seq << "/hidden=" << hidden;
    report(n.str(), out.data(), ref, out.guards_intact(), tol_of<T>());
}

// erf: max absolute error of gomps_erf (fp32) against libm's double erf, on a
// dense grid over [-10, 10], random points, and the special values.
void case_erf(bool small) {
    double maxerr = 0, at = 0;
    auto check = [&](float x) {
        const double e = std::fabs(double(gomps_erf(x)) - std::erf(double(x)));
        if (!(e <= maxerr)) {
            maxerr = e;
            at = x;
        }
    };
    const int steps = small ? 20000 : 2000000;
    for (int i = 0; i <= steps; ++i) check(float(-10.0 + 20.0 * i / steps));
    std::mt19937_64 g(7);
    std::normal_distribution<double> d(0, 2);
    for (int i = 0; i < steps / 4; ++i) check(float(d(g)));
    for (float x : {0.0f, -0.0f, 0.5f, -0.5f, std::nextafter(0.5f, 0.0f), 1e-30f, FLT_MIN, 3.9f, 4.0f, 9.0f,
                    INFINITY, -INFINITY, FLT_MAX, -FLT_MAX})
        check(x);
    const bool nan_ok = std::isnan(gomps_erf(NAN));
    const bool ok = maxerr <= kTolErf && nan_ok;
    std::printf("%-52s maxabs=%.3e at x=%.6g tol=%.0e%s %s\n", "erf_f32/vs_libm", maxerr, at, kTolErf,
                nan_ok ? "" : " NAN-NOT-PROPAGATED", ok ? "PASS" : "FAIL");
    (ok ? g_pass : g_fail)++;
}

// The shim itself: simd_sum/simd_max over full and partial simdgroups, and
// threadgroup_barrier ordering a write before other threads' reads.
void case_shim() {
    const uint n = 40; // one full simdgroup and one of 8 lanes
    std::vector<float> sums(n), maxes(n), seen(n);
    std::vector<float> shared(n);
    msl_shim::run_groups(2, n, [&](uint group, uint tid, uint, uint sg) {
        const float v = float(tid + 1 + group);
        const float s = metal::simd_sum(v), m = metal::simd_max(v);
        if (group == 1) {
            sums[tid] = s;
            maxes[tid] = m;
        }
        shared[tid] = v;
        metal::threadgroup_barrier(metal::mem_flags::mem_threadgroup);
        if (group == 1) seen[tid] = shared[(tid + 1) % n];
        metal::threadgroup_barrier(metal::mem_flags::mem_threadgroup);
        (void)sg;
    });
    bool ok = true;
    for (uint t = 0; t < n; ++t) {
        const uint lo = t < 32 ? 0 : 32, hi = t < 32 ? 32 : n;
        float want_sum = 0, want_max = 0;
        for (uint k = lo; k < hi; ++k) {
            want_sum += float(k + 2);
            want_max = std::max(want_max, float(k + 2));
        }
        ok = ok && sums[t] == want_sum && maxes[t] == want_max && seen[t] == float((t + 1) % n + 2);
    }
    std::printf("%-52s %s\n", "shim/simd+barrier/threads=40", ok ? "PASS" : "FAIL");
    (ok ? g_pass : g_fail)++;
}

template <typename T> void run_all(std::mt19937_64 &g, bool small) {
    if (wanted("layer_norm")) {
        if (small) {
            case_layer_norm<T>(g, 8, 384);
            case_layer_norm<T>(g, 3, 129);
        } else {
            for (auto [r, c] : std::vector<std::pair<uint, uint>>{{74, 384}, {7, 127}, {3, 1}, {2, 129}, {1, 512},
                                                                   {5, 1536}})
                case_layer_norm<T>(g, r, c);
        }
    }
    if (wanted("masked_softmax")) {
        if (small) {
            case_masked_softmax<T>(g, 1, 2, 4, {3});
            case_masked_softmax<T>(g, 2, 1, 3, {1, 3});
        } else {
            case_masked_softmax<T>(g, 2, 12, 37, {37, 5});
            case_masked_softmax<T>(g, 1, 2, 129, {100});
            case_masked_softmax<T>(g, 3, 1, 1, {1, 1, 1});
            case_masked_softmax<T>(g, 1, 1, 512, {511});
        }
    }
    if (wanted("bias_gelu")) {
        if (small) {
            case_bias_gelu<T>(g, 8, 129);
        } else {
            case_bias_gelu<T>(g, 74, 1536);
            case_bias_gelu<T>(g, 7, 129);
            case_bias_gelu<T>(g, 1, 1);
        }
    }
    if (wanted("embed")) {
        if (small) {
            case_embed<T>(g, 2, 4, 384, 50, 8);
        } else {
            case_embed<T>(g, 2, 37, 384, 1000, 512);
            case_embed<T>(g, 1, 7, 129, 30, 7);
            case_embed<T>(g, 1, 3, 1024, 10, 4);
            case_embed<T>(g, 3, 1, 1, 5, 3);
        }
    }
}

} // namespace

int main(int argc, char **argv) {
    bool small = false;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        if (a == "--small") {
            small = true;
        } else if (a.rfind("--only=", 0) == 0) {
            std::stringstream ss(a.substr(7));
            for (std::string op; std::getline(ss, op, ',');) g_only.insert(op);
        } else {
            std::fprintf(stderr, "metalshim: unknown argument %s\n", a.c_str());
            return 2;
        }
    }
    std::mt19937_64 g(20261127);
    run_all<float>(g, small);
    run_all<half>(g, small);
    if (wanted("erf")) case_erf(small);
    if (wanted("shim")) case_shim();
    std::printf("metalshim: %d passed, %d failed\n", g_pass, g_fail);
    return g_fail == 0 ? 0 : 1;
}
