//go:build darwin && cgo

/*
 * gomps-plan.c: the forward pass as units, steps and buffers (gomps-plan.h).
 * Plain C, so tools/check-metal.sh runs it on Linux (tools/metalshim/layer.cpp).
 *
 * Per layer the units are SCORES, SOFTMAX, ATTN, LN1, UP, GELU, DOWN, LN2.
 * A unit whose kernel is selected becomes a step of its own; every run of
 * graph units between two kernels is one MPSGraph segment (one executable per
 * bucket). Values that cross a step boundary live in buffers; buffers are
 * reused once their value is dead, never inside a step that still reads it.
 */
#include "gomps-plan.h"
#include "wfile/gomps-wfile.h"

#include <stdio.h>
#include <string.h>

static int fail(char *err, size_t errlen, const char *msg, int a, int b) {
    if (err != NULL && errlen > 0) snprintf(err, errlen, msg, a, b);
    return -1;
}

static int is_pool(int cls) { return cls >= GOMPS_BUF_FIRST_POOL && cls < GOMPS_BUF_NCLASS; }

static int16_t new_value(gomps_plan *p, int cls) {
    gomps_plan_value *v = &p->values[p->n_values];
    v->cls = (uint8_t)cls;
    v->buf = -1;
    v->producer = -1;
    v->last_use = -1;
    return (int16_t)p->n_values++;
}

static void add_unit(gomps_plan *p, int kind, int kernel, int layer, int in0, int in1, int in2, int out0, int out1) {
    const int16_t u = (int16_t)p->n_units++;
    gomps_plan_unit *x = &p->units[u];
    x->kind = (uint8_t)kind;
    x->kernel = (uint8_t)(kernel != 0);
    x->layer = (uint16_t)layer;
    x->in[0] = (int16_t)in0;
    x->in[1] = (int16_t)in1;
    x->in[2] = (int16_t)in2;
    x->out[0] = (int16_t)out0;
    x->out[1] = (int16_t)out1;
    x->step = -1;
    for (int k = 0; k < 3; k++) {
        if (x->in[k] >= 0) p->values[x->in[k]].last_use = u; /* units are added in order */
    }
    for (int k = 0; k < 2; k++) {
        if (x->out[k] >= 0) p->values[x->out[k]].producer = u;
    }
}

static int step_has(const int16_t *list, int n, int16_t v) {
    for (int i = 0; i < n; i++) {
        if (list[i] == v) return 1;
    }
    return 0;
}

/* Is buffer holder h (a value id, or -1) still needed when step s writes?
 * It is if a later step reads it, or if s itself reads it: a segment's
 * executable may write a result before it has read all of its inputs. */
static int busy(const gomps_plan *p, int16_t h, const gomps_plan_step *s) {
    if (h < 0) return 0;
    const gomps_plan_value *v = &p->values[h];
    if (v->last_use >= s->first + s->n) return 1;
    if (v->last_use >= s->first) return 1; /* gomps:plan-no-alias */
    return 0;
}

int gomps_plan_build(gomps_plan *p, int32_t n_layers, uint32_t kernels, char *err, size_t errlen) {
    memset(p, 0, sizeof *p);
    if (n_layers < 1 || n_layers > GOMPS_PLAN_MAX_LAYERS) {
        return fail(err, errlen, "metal: plan: %d layers, want 1..%d", n_layers, GOMPS_PLAN_MAX_LAYERS);
    }
    if (kernels & ~(GOMPS_PLAN_EMBED | GOMPS_PLAN_LAYER_NORM | GOMPS_PLAN_SOFTMAX | GOMPS_PLAN_BIAS_GELU)) {
        return fail(err, errlen, "metal: plan: unknown kernel bits 0x%x%.0d", (int)kernels, 0);
    }
    p->kernels = kernels;
    p->n_layers = n_layers;
    const int ln = (kernels & GOMPS_PLAN_LAYER_NORM) != 0, sm = (kernels & GOMPS_PLAN_SOFTMAX) != 0,
              ge = (kernels & GOMPS_PLAN_BIAS_GELU) != 0;

    /* values and units, in execution order */
    new_value(p, GOMPS_BUF_IDS);
    new_value(p, GOMPS_BUF_TYPES);
    new_value(p, GOMPS_BUF_MASK);
    new_value(p, GOMPS_BUF_LENGTHS);
    for (int v = 0; v < GOMPS_PLAN_IO_VALUES; v++) p->values[v].buf = 0;
    int16_t x = new_value(p, GOMPS_BUF_HIDDEN);
    add_unit(p, GOMPS_U_EMBED, (kernels & GOMPS_PLAN_EMBED) != 0, 0, GOMPS_V_IDS, GOMPS_V_TYPES, -1, x, -1);
    for (int l = 0; l < n_layers; l++) {
        const int16_t qkv = new_value(p, GOMPS_BUF_QKV), sc = new_value(p, GOMPS_BUF_SCORES);
        add_unit(p, GOMPS_U_SCORES, 0, l, x, -1, -1, qkv, sc);
        const int16_t pr = new_value(p, GOMPS_BUF_SCORES);
        add_unit(p, GOMPS_U_SOFTMAX, sm, l, sc, sm ? GOMPS_V_LENGTHS : GOMPS_V_MASK, -1, pr, -1);
        const int16_t s1 = new_value(p, GOMPS_BUF_HIDDEN);
        add_unit(p, GOMPS_U_ATTN, 0, l, pr, qkv, x, s1, -1);
        const int16_t x1 = new_value(p, GOMPS_BUF_HIDDEN);
        add_unit(p, GOMPS_U_LN1, ln, l, s1, -1, -1, x1, -1);
        const int16_t up = new_value(p, GOMPS_BUF_FFN);
        add_unit(p, GOMPS_U_UP, 0, l, x1, -1, -1, up, -1);
        const int16_t act = new_value(p, GOMPS_BUF_FFN);
        add_unit(p, GOMPS_U_GELU, ge, l, up, -1, -1, act, -1);
        const int16_t s2 = new_value(p, GOMPS_BUF_HIDDEN);
        add_unit(p, GOMPS_U_DOWN, 0, l, act, x1, -1, s2, -1);
        const int16_t xn = new_value(p, GOMPS_BUF_HIDDEN);
        add_unit(p, GOMPS_U_LN2, ln, l, s2, -1, -1, xn, -1);
        x = xn;
    }
    p->logits = new_value(p, GOMPS_BUF_LOGITS);
    p->values[p->logits].buf = 0;
    add_unit(p, GOMPS_U_HEAD, 0, 0, x, -1, -1, p->logits, -1);
    p->values[p->logits].last_use = GOMPS_PLAN_MAX_UNITS; /* read by the host */

    /* steps: each kernel unit alone, each run of graph units one segment */
    for (int16_t u = 0; u < p->n_units; u++) {
        gomps_plan_unit *x_ = &p->units[u];
        if (x_->kernel || p->n_steps == 0 || p->steps[p->n_steps - 1].kernel) {
            gomps_plan_step *s = &p->steps[p->n_steps++];
            s->kernel = x_->kernel;
            s->first = u;
            s->n = 0;
            if (!x_->kernel) p->n_segments++;
        }
        gomps_plan_step *s = &p->steps[p->n_steps - 1];
        s->n++;
        x_->step = (int16_t)(p->n_steps - 1);
    }
    /* each step's inputs (read from buffers) and outputs (written to them) */
    for (int i = 0; i < p->n_steps; i++) {
        gomps_plan_step *s = &p->steps[i];
        const int last = s->first + s->n - 1;
        for (int u = s->first; u <= last; u++) {
            const gomps_plan_unit *x_ = &p->units[u];
            for (int k = 0; k < 3; k++) {
                const int16_t v = x_->in[k];
                if (v < 0 || step_has(s->in, s->n_in, v)) continue;
                const int16_t prod = p->values[v].producer;
                if (prod >= s->first && prod <= last) continue; /* made inside this segment */
                if (s->n_in == GOMPS_PLAN_SEG_IO) return fail(err, errlen, "metal: plan: step %d reads more than %d buffers", i, GOMPS_PLAN_SEG_IO);
                s->in[s->n_in++] = v;
            }
            for (int k = 0; k < 2; k++) {
                const int16_t v = x_->out[k];
                if (v < 0 || p->values[v].last_use <= last) continue; /* dies inside this segment */
                if (s->n_out == GOMPS_PLAN_SEG_IO) return fail(err, errlen, "metal: plan: step %d writes more than %d buffers", i, GOMPS_PLAN_SEG_IO);
                s->out[s->n_out++] = v;
            }
        }
    }
    /* buffers: in step order, a free pool buffer per output; a kernel works in
     * place on an input of the same class that dies there */
    int16_t holder[GOMPS_BUF_NCLASS][GOMPS_PLAN_SEG_IO];
    memset(holder, 0xff, sizeof holder); /* -1 */
    for (int i = 0; i < p->n_steps; i++) {
        const gomps_plan_step *s = &p->steps[i];
        for (int o = 0; o < s->n_out; o++) {
            gomps_plan_value *v = &p->values[s->out[o]];
            if (!is_pool(v->cls)) continue;
            int idx = -1;
            if (s->kernel) {
                for (int k = 0; k < s->n_in && idx < 0; k++) {
                    const gomps_plan_value *in = &p->values[s->in[k]];
                    if (in->cls == v->cls && in->last_use == s->first && in->buf >= 0) idx = in->buf;
                }
            }
            for (int b = 0; idx < 0 && b < GOMPS_PLAN_SEG_IO; b++) {
                if (!busy(p, holder[v->cls][b], s)) idx = b;
            }
            if (idx < 0) return fail(err, errlen, "metal: plan: step %d: no free buffer of class %d", i, v->cls);
            holder[v->cls][idx] = s->out[o];
            v->buf = (int8_t)idx;
            if (idx + 1 > p->pool[v->cls]) p->pool[v->cls] = idx + 1;
        }
    }
    for (int v = 0; v < p->n_values; v++) {
        const gomps_plan_value *pv = &p->values[v];
        if (!is_pool(pv->cls) && (pv->last_use >= 0 || pv->producer >= 0)) p->pool[pv->cls] = 1;
    }
    return gomps_plan_validate(p, err, errlen);
}

int gomps_plan_validate(const gomps_plan *p, char *err, size_t errlen) {
    if (p->n_units < 3 || p->n_units > GOMPS_PLAN_MAX_UNITS || p->n_values > GOMPS_PLAN_MAX_VALUES ||
        p->n_steps < 1 || p->n_steps > p->n_units) {
        return fail(err, errlen, "metal: plan: counts out of range (%d units, %d steps)", p->n_units, p->n_steps);
    }
    for (int c = 0; c < GOMPS_BUF_NCLASS; c++) {
        if (p->pool[c] < 0 || p->pool[c] > GOMPS_PLAN_SEG_IO) return fail(err, errlen, "metal: plan: class %d has %d buffers", c, p->pool[c]);
    }
    int16_t content[GOMPS_BUF_NCLASS][GOMPS_PLAN_SEG_IO];
    memset(content, 0xff, sizeof content);
    int written[GOMPS_PLAN_MAX_VALUES] = {0};
    for (int v = 0; v < GOMPS_PLAN_IO_VALUES; v++) written[v] = 1;
    int next = 0; /* units must be covered by the steps in order */
    for (int i = 0; i < p->n_steps; i++) {
        const gomps_plan_step *s = &p->steps[i];
        const int last = s->first + s->n - 1;
        if (s->first != next || s->n < 1 || (s->kernel && s->n != 1)) return fail(err, errlen, "metal: plan: step %d does not follow unit %d", i, next);
        next = last + 1;
        for (int u = s->first; u <= last; u++) {
            const gomps_plan_unit *x = &p->units[u];
            if (x->kernel != s->kernel || x->step != i) return fail(err, errlen, "metal: plan: unit %d is misfiled in step %d", u, i);
            if (x->kernel && gomps_plan_kernel_op(x->kind) == NULL) return fail(err, errlen, "metal: plan: unit %d (kind %d) has no kernel", u, x->kind);
            for (int k = 0; k < 3; k++) {
                const int16_t v = x->in[k];
                if (v < 0) continue;
                if (v >= p->n_values) return fail(err, errlen, "metal: plan: unit %d reads value %d", u, v);
                const int16_t prod = p->values[v].producer;
                const int local = prod >= s->first && prod < u;
                if (!local && !step_has(s->in, s->n_in, v)) {
                    return fail(err, errlen, "metal: plan: unit %d reads value %d, neither made in its segment nor an input", u, v);
                }
            }
        }
        /* inputs: written and still in their buffer */
        for (int k = 0; k < s->n_in; k++) {
            const int16_t v = s->in[k];
            const gomps_plan_value *pv = &p->values[v];
            if (!written[v]) return fail(err, errlen, "metal: plan: step %d reads value %d before it is written", i, v);
            if (is_pool(pv->cls) && (pv->buf < 0 || content[pv->cls][pv->buf] != v)) {
                return fail(err, errlen, "metal: plan: step %d reads value %d, but its buffer holds another", i, v);
            }
        }
        /* outputs: a buffer of their class, not one this step reads (but a
         * kernel in place on an input that dies here), nor one still needed */
        for (int o = 0; o < s->n_out; o++) {
            const int16_t v = s->out[o];
            const gomps_plan_value *pv = &p->values[v];
            if (pv->producer < s->first || pv->producer > last) return fail(err, errlen, "metal: plan: step %d writes value %d it does not make", i, v);
            if (pv->buf < 0 || pv->buf >= p->pool[pv->cls]) return fail(err, errlen, "metal: plan: value %d has buffer %d", v, pv->buf);
            for (int k = 0; k < s->n_in; k++) {
                const gomps_plan_value *in = &p->values[s->in[k]];
                if (in->cls != pv->cls || in->buf != pv->buf) continue;
                if (!(s->kernel && in->last_use == s->first)) {
                    return fail(err, errlen, "metal: plan: step %d writes the buffer of its input %d", i, s->in[k]);
                }
            }
            for (int q = 0; q < o; q++) {
                const gomps_plan_value *w = &p->values[s->out[q]];
                if (w->cls == pv->cls && w->buf == pv->buf) return fail(err, errlen, "metal: plan: step %d writes two values to one buffer (%d)", i, v);
            }
            if (is_pool(pv->cls)) {
                const int16_t h = content[pv->cls][pv->buf];
                if (h >= 0 && p->values[h].last_use > last) {
                    return fail(err, errlen, "metal: plan: step %d overwrites value %d, which is read later", i, h);
                }
            }
        }
        for (int o = 0; o < s->n_out; o++) {
            const gomps_plan_value *pv = &p->values[s->out[o]];
            written[s->out[o]] = 1;
            if (is_pool(pv->cls)) content[pv->cls][pv->buf] = s->out[o];
        }
        /* a value made here and read after this step must be an output */
        for (int u = s->first; u <= last; u++) {
            for (int k = 0; k < 2; k++) {
                const int16_t v = p->units[u].out[k];
                if (v >= 0 && p->values[v].last_use > last && !step_has(s->out, s->n_out, v)) {
                    return fail(err, errlen, "metal: plan: value %d outlives step %d but is not written out", v, i);
                }
                if (v >= 0 && p->values[v].last_use < 0) return fail(err, errlen, "metal: plan: value %d (unit %d) is never read", v, u);
            }
        }
    }
    if (next != p->n_units) return fail(err, errlen, "metal: plan: steps cover %d of %d units", next, p->n_units);
    const gomps_plan_step *end = &p->steps[p->n_steps - 1];
    if (p->values[p->logits].cls != GOMPS_BUF_LOGITS || end->kernel || !step_has(end->out, end->n_out, p->logits)) {
        return fail(err, errlen, "metal: plan: the last step (%d) does not write the logits%.0d", p->n_steps - 1, 0);
    }
    return 0;
}

uint64_t gomps_plan_class_elems(int cls, int64_t batch, int64_t seq, int64_t hidden, int64_t heads,
                                int64_t intermediate) {
    const uint64_t n = (uint64_t)(batch * seq);
    switch (cls) {
    case GOMPS_BUF_IDS:
    case GOMPS_BUF_TYPES:
    case GOMPS_BUF_MASK: return n;
    case GOMPS_BUF_LENGTHS:
    case GOMPS_BUF_LOGITS: return (uint64_t)batch;
    case GOMPS_BUF_HIDDEN: return n * (uint64_t)hidden;
    case GOMPS_BUF_QKV: return 3 * n * (uint64_t)hidden;
    case GOMPS_BUF_SCORES: return (uint64_t)(batch * heads) * (uint64_t)(seq * seq);
    case GOMPS_BUF_FFN: return n * (uint64_t)intermediate;
    default: return 0;
    }
}

const char *gomps_plan_kernel_op(int kind) {
    switch (kind) {
    case GOMPS_U_EMBED: return "embed";
    case GOMPS_U_SOFTMAX: return "masked_softmax";
    case GOMPS_U_LN1:
    case GOMPS_U_LN2: return "layer_norm";
    case GOMPS_U_GELU: return "bias_gelu";
    default: return NULL;
    }
}

static void bind_value(gomps_plan_dispatch *o, int i, int16_t v) {
    o->bind[i].value = v;
    o->bind[i].weight = -1;
}

static void bind_weight(gomps_plan_dispatch *o, int i, uint32_t w) {
    o->bind[i].value = -1;
    o->bind[i].weight = (int32_t)w;
}

int gomps_plan_dispatch_of(const gomps_plan *p, int step, const gomps_plan_dims *d, gomps_plan_dispatch *out,
                           char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    if (step < 0 || step >= p->n_steps || !p->steps[step].kernel) {
        return fail(err, errlen, "metal: plan: step %d is not a kernel step (%d steps)", step, p->n_steps);
    }
    const gomps_plan_unit *u = &p->units[p->steps[step].first];
    const uint64_t n = (uint64_t)d->batch * d->seq;
    const uint64_t score_rows = n * d->heads, ffn = n * d->intermediate;
    if (d->batch < 1 || d->seq < 1 || d->hidden < 1 || d->heads < 1 || d->intermediate < 1 || score_rows * d->seq > UINT32_MAX ||
        ffn + GOMPS_ELEM_THREADS > UINT32_MAX) {
        return fail(err, errlen, "metal: plan: bucket %dx%d overflows the kernels' 32-bit indices", (int)d->batch, (int)d->seq);
    }
    const uint32_t N = (uint32_t)n, l = u->layer;
    out->kind = u->kind;
    out->op = gomps_plan_kernel_op(u->kind);
    out->threads = GOMPS_ROW_THREADS;
    out->groups = N; /* one threadgroup per row */
    switch ((gomps_unit_kind)u->kind) {
    case GOMPS_U_EMBED: {
        gomps_args_embed a = {N, d->seq, d->hidden, d->vocab, d->type_vocab, d->max_position, d->eps};
        out->args.embed = a;
        out->args_size = sizeof a;
        out->n_bind = 9;
        bind_value(out, 1, u->in[0]); /* ids */
        bind_value(out, 2, u->in[1]); /* type ids */
        bind_weight(out, 3, GOMPS_WT_WORD);
        bind_weight(out, 4, GOMPS_WT_POSITION);
        bind_weight(out, 5, GOMPS_WT_TOKEN_TYPE);
        bind_weight(out, 6, GOMPS_WT_EMB_LN_GAMMA);
        bind_weight(out, 7, GOMPS_WT_EMB_LN_BETA);
        bind_value(out, 8, u->out[0]);
        break;
    }
    case GOMPS_U_SOFTMAX: {
        /* the graph scaled q already (SCORES), so scale 1; lengths mask keys */
        gomps_args_masked_softmax a = {(uint32_t)score_rows, d->seq, d->heads * d->seq, 1.0f, GOMPS_MASK_VALUE};
        out->args.masked_softmax = a;
        out->args_size = sizeof a;
        out->groups = a.rows;
        out->n_bind = 4;
        bind_value(out, 1, u->in[0]); /* scores [B, nh, S, S] */
        bind_value(out, 2, u->in[1]); /* lengths [B] */
        bind_value(out, 3, u->out[0]);
        break;
    }
    case GOMPS_U_LN1:
    case GOMPS_U_LN2: {
        const int attn = u->kind == GOMPS_U_LN1;
        gomps_args_layer_norm a = {N, d->hidden, d->eps};
        out->args.layer_norm = a;
        out->args_size = sizeof a;
        out->n_bind = 5;
        bind_value(out, 1, u->in[0]);
        bind_weight(out, 2, gomps_wfile_layer_index(l, attn ? GOMPS_WL_ATTN_LN_G : GOMPS_WL_FFN_LN_G));
        bind_weight(out, 3, gomps_wfile_layer_index(l, attn ? GOMPS_WL_ATTN_LN_B : GOMPS_WL_FFN_LN_B));
        bind_value(out, 4, u->out[0]);
        break;
    }
    case GOMPS_U_GELU: {
        gomps_args_bias_gelu a = {(uint32_t)ffn, d->intermediate};
        out->args.bias_gelu = a;
        out->args_size = sizeof a;
        out->threads = GOMPS_ELEM_THREADS;
        out->groups = (a.n + GOMPS_ELEM_THREADS - 1) / GOMPS_ELEM_THREADS; /* rounded up: the kernel bound-checks */
        out->n_bind = 4;
        bind_value(out, 1, u->in[0]); /* up, without its bias */
        bind_weight(out, 2, gomps_wfile_layer_index(l, GOMPS_WL_FFN_UP_B));
        bind_value(out, 3, u->out[0]);
        break;
    }
    default:
        return fail(err, errlen, "metal: plan: unit %d (kind %d) has no kernel", p->steps[step].first, u->kind);
    }
    return 0;
}
