// report.c: the HTML page of `mixprec optimize` (report.h): one self-contained file with
// inline CSS and inline SVG plots, readable in a browser without network.
// It formats what optimize.c measured and must not compute or change any result: the only
// arithmetic here is plot geometry. Every outside string is HTML-escaped (sb_esc).
#include "method/report.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/tensors.h"

// ---- string builder ----

typedef struct sb {
    char *p;
    size_t len, cap;
    int oom;
} sb;

static int sb_reserve(sb *b, size_t add) {
    if (b->oom) return 0;
    if (b->len + add + 1 <= b->cap) return 1;
    size_t cap = b->cap ? b->cap : 65536;
    while (cap < b->len + add + 1) {
        if (cap > ((size_t)1 << 40)) {
            b->oom = 1;
            return 0;
        }
        cap *= 2;
    }
    char *p = realloc(b->p, cap);
    if (!p) {
        b->oom = 1;
        return 0;
    }
    b->p = p;
    b->cap = cap;
    return 1;
}

static void sb_printf(sb *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(sb *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || !sb_reserve(b, (size_t)n)) return;
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

static void sb_puts(sb *b, const char *s) {
    size_t n = strlen(s);
    if (!sb_reserve(b, n)) return;
    memcpy(b->p + b->len, s, n + 1);
    b->len += n;
}

// HTML-escape s (text and attribute values alike).
static void sb_esc(sb *b, const char *s) {
    for (; s && *s; s++) {
        switch (*s) {
        case '&': sb_puts(b, "&amp;"); break;
        case '<': sb_puts(b, "&lt;"); break;
        case '>': sb_puts(b, "&gt;"); break;
        case '"': sb_puts(b, "&quot;"); break;
        case '\'': sb_puts(b, "&#39;"); break;
        default:
            if ((unsigned char)*s < 0x20 && *s != '\n' && *s != '\t') break;  // drop control bytes
            if (sb_reserve(b, 1)) {
                b->p[b->len++] = *s;
                b->p[b->len] = 0;
            }
        }
    }
}

// ---- number formatting (never "nan" on the page) ----

typedef struct num {
    char s[40];
} num;

static num fmt_g(double v, int digits) {
    num n;
    if (!isfinite(v)) snprintf(n.s, sizeof n.s, "&mdash;");
    else snprintf(n.s, sizeof n.s, "%.*g", digits, v);
    return n;
}

static num fmt_pct(double frac) {
    num n;
    if (!isfinite(frac)) snprintf(n.s, sizeof n.s, "&mdash;");
    else snprintf(n.s, sizeof n.s, "%+.1f%%", 100 * frac);
    return n;
}

static num fmt_f(double v, int decimals) {
    num n;
    if (!isfinite(v)) snprintf(n.s, sizeof n.s, "&mdash;");
    else snprintf(n.s, sizeof n.s, "%.*f", decimals, v);
    return n;
}

// A point's predictions, or what is missing: a format the sensitivity table lacks is "not
// calibrated", one the latency table lacks (f8_e4m3: no GGUF type) is "not profiled".
static num pred_loss_cell(const mxp_opt_point *q) {
    num n;
    if (q->has_pred_loss) return fmt_g(q->pred_loss_mse, 3);
    snprintf(n.s, sizeof n.s, "not calibrated");
    return n;
}

static num pred_gain_cell(const mxp_opt_point *q) {
    num n;
    if (q->has_pred_gain) return fmt_pct(q->pred_gain_frac);
    snprintf(n.s, sizeof n.s, "not profiled");
    return n;
}

// ---- colours ----

static const char *const kind_color[MXP_PT_KIND_COUNT] = {"#d62728", "#1f77b4", "#2ca02c", "#9467bd",
                                                           "#8c564b", "#e377c2", "#7f7f7f", "#17becf"};
static const char *const kind_name[MXP_PT_KIND_COUNT] = {"chosen plan", "Pareto sweep (same solver)", "uniform format",
                                                          "MAC objective", "memory objective", "fisher metric",
                                                          "llama.cpp mix", "mixprec at a mix's size"};
static const char *const fmt_color[MXP_FMT_COUNT] = {
    "#d9d9d9", "#9ecae1", "#4292c6", "#74c476", "#fd8d3c", "#9e9ac8", "#fdae6b", "#e6550d", "#fdd0a2",
    "#67000d", "#a50f15", "#ef3b2c", "#fc9272", "#fcbba1", "#bcbddc"};

// Sequential colour for t in [0, 1] (light yellow -> red -> dark purple).
static void heat_color(double t, char out[8]) {
    static const double stops[4][3] = {{255, 255, 204}, {253, 141, 60}, {189, 0, 38}, {60, 0, 50}};
    if (!(t >= 0)) t = 0;
    if (t > 1) t = 1;
    double x = t * 3;
    int i = x >= 3 ? 2 : (int)x;
    double f = x - i;
    int c[3];
    for (int k = 0; k < 3; k++) c[k] = (int)lround(stops[i][k] + f * (stops[i + 1][k] - stops[i][k]));
    snprintf(out, 8, "#%02x%02x%02x", c[0], c[1], c[2]);
}

// "model.layers.3.self_attn.q_proj" -> "3.self_attn.q_proj" (the full name goes in a tooltip).
static const char *short_name(const char *s) {
    static const char pre[] = "model.layers.";
    if (!strncmp(s, pre, sizeof pre - 1)) return s + sizeof pre - 1;
    if (!strncmp(s, "model.", 6)) return s + 6;
    return s;
}

// ---- plots ----

typedef struct plot {
    double x0, x1, y0, y1;  // axis ranges (log10 of the values on a log axis)
    int logx, logy;
    double W, H, ml, mr, mt, mb;  // size and margins, px
} plot;

static double px(const plot *p, double x) {
    if (p->logx) x = x > 0 ? log10(x) : p->x0;
    if (x < p->x0) x = p->x0;
    if (x > p->x1) x = p->x1;
    return p->ml + (x - p->x0) / (p->x1 - p->x0) * (p->W - p->ml - p->mr);
}

static double py(const plot *p, double y) {
    if (p->logy) y = y > 0 ? log10(y) : p->y0;
    if (y < p->y0) y = p->y0;
    if (y > p->y1) y = p->y1;
    return p->H - p->mb - (y - p->y0) / (p->y1 - p->y0) * (p->H - p->mt - p->mb);
}

typedef struct range {
    double lo, hi;
    int any;
} range;

static void range_add(range *r, double v, int log) {
    if (!isfinite(v) || (log && v <= 0)) return;
    double x = log ? log10(v) : v;
    if (!r->any) r->lo = r->hi = x;
    if (x < r->lo) r->lo = x;
    if (x > r->hi) r->hi = x;
    r->any = 1;
}

// Finish a range into axis limits: a little padding; log axes snap to whole decades.
static void range_finish(const range *r, int log, double *lo, double *hi) {
    double a = r->any ? r->lo : 0, b = r->any ? r->hi : 1;
    if (log) {
        if (!r->any) a = -6, b = 0;
        a = floor(a);
        b = ceil(b);
        if (b <= a) b = a + 1;
    } else {
        if (b - a < 1e-12) {
            double d = fabs(a) > 0 ? fabs(a) * 0.1 : 1;
            a -= d;
            b += d;
        }
        double pad = (b - a) * 0.08;
        a -= pad;
        b += pad;
    }
    *lo = a;
    *hi = b;
}

static double nice_step(double span) {
    double raw = span / 5, p = pow(10, floor(log10(raw))), m = raw / p;
    return (m < 1.5 ? 1 : m < 3.5 ? 2 : m < 7.5 ? 5 : 10) * p;
}

static void plot_begin(sb *b, const plot *p, const char *title) {
    sb_printf(b, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" viewBox=\"0 0 %.0f %.0f\" "
                 "role=\"img\"><title>",
              p->W, p->H, p->W, p->H);
    sb_esc(b, title);
    sb_puts(b, "</title>\n");
}

// Axes, grid, tick labels and axis titles.
static void plot_axes(sb *b, const plot *p, const char *xlabel, const char *ylabel, int xpct, int ypct) {
    double L = p->ml, R = p->W - p->mr, T = p->mt, B = p->H - p->mb;
    sb_printf(b, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"#fff\" stroke=\"#999\"/>\n", L, T, R - L,
              B - T);
    for (int axis = 0; axis < 2; axis++) {
        int lg = axis ? p->logy : p->logx, pct = axis ? ypct : xpct;
        double lo = axis ? p->y0 : p->x0, hi = axis ? p->y1 : p->x1;
        double step = lg ? (hi - lo > 8 ? 2 : 1) : nice_step(hi - lo);
        for (double v = ceil(lo / step - 1e-9) * step; v <= hi + 1e-9 * step; v += step) {
            char lab[40];
            if (lg) snprintf(lab, sizeof lab, "1e%d", (int)lround(v));
            else if (pct) snprintf(lab, sizeof lab, "%.3g%%", fabs(v) < 1e-9 * step ? 0.0 : v);
            else snprintf(lab, sizeof lab, "%.3g", fabs(v) < 1e-9 * step ? 0.0 : v);
            if (!axis) {
                double x = L + (v - lo) / (hi - lo) * (R - L);
                sb_printf(b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" class=\"grid\"/>"
                             "<text x=\"%.1f\" y=\"%.1f\" class=\"tick\" text-anchor=\"middle\">%s</text>\n",
                          x, T, x, B, x, B + 14, lab);
            } else {
                double y = B - (v - lo) / (hi - lo) * (B - T);
                sb_printf(b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" class=\"grid\"/>"
                             "<text x=\"%.1f\" y=\"%.1f\" class=\"tick\" text-anchor=\"end\">%s</text>\n",
                          L, y, R, y, L - 4, y + 4, lab);
            }
        }
    }
    sb_printf(b, "<text x=\"%.1f\" y=\"%.1f\" class=\"axis\" text-anchor=\"middle\">", (L + R) / 2, p->H - 6);
    sb_esc(b, xlabel);
    sb_printf(b, "</text><text transform=\"translate(14 %.1f) rotate(-90)\" class=\"axis\" text-anchor=\"middle\">",
              (T + B) / 2);
    sb_esc(b, ylabel);
    sb_puts(b, "</text>\n");
}

// A marker with a tooltip. shape: 0 circle, 1 square, 2 triangle, 3 star-ish diamond.
static void marker(sb *b, double x, double y, int shape, const char *color, int hollow, const char *tip) {
    if (!isfinite(x) || !isfinite(y)) return;  // e.g. a configuration the timing engine could not run
    const char *fill = hollow ? "#fff" : color;
    if (shape == 1)
        sb_printf(b, "<rect x=\"%.1f\" y=\"%.1f\" width=\"9\" height=\"9\" fill=\"%s\" stroke=\"%s\" stroke-width=\"1.5\">",
                  x - 4.5, y - 4.5, fill, color);
    else if (shape == 2)
        sb_printf(b, "<polygon points=\"%.1f,%.1f %.1f,%.1f %.1f,%.1f\" fill=\"%s\" stroke=\"%s\" stroke-width=\"1.5\">", x,
                  y - 6, x - 5.5, y + 4, x + 5.5, y + 4, fill, color);
    else if (shape == 3)
        sb_printf(b, "<polygon points=\"%.1f,%.1f %.1f,%.1f %.1f,%.1f %.1f,%.1f\" fill=\"%s\" stroke=\"%s\" "
                     "stroke-width=\"1.5\">",
                  x, y - 8, x + 6, y, x, y + 8, x - 6, y, fill, color);
    else
        sb_printf(b, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"4.5\" fill=\"%s\" stroke=\"%s\" stroke-width=\"1.5\">", x, y, fill,
                  color);
    sb_puts(b, "<title>");
    sb_esc(b, tip);
    sb_puts(b, "</title>");
    sb_puts(b, shape == 1 ? "</rect>\n" : shape == 0 ? "</circle>\n" : "</polygon>\n");
}

static int kind_shape(mxp_point_kind k) {
    switch (k) {
    case MXP_PT_CHOSEN: return 3;
    case MXP_PT_UNIFORM: return 1;
    case MXP_PT_MAC:
    case MXP_PT_MEMORY:
    case MXP_PT_FISHER: return 2;
    default: return 0;
    }
}

static void legend_item(sb *b, double x, double y, int shape, const char *color, int hollow, const char *text) {
    marker(b, x, y, shape, color, hollow, text);
    sb_printf(b, "<text x=\"%.1f\" y=\"%.1f\" class=\"tick\">", x + 10, y + 4);
    sb_esc(b, text);
    sb_puts(b, "</text>\n");
}

// Indices of the Pareto points, sorted by budget (insertion sort; a handful of points).
static int pareto_order(const mxp_report *r, int *idx) {
    int n = 0;
    for (int i = 0; i < r->n_points; i++) {
        if (r->points[i].kind != MXP_PT_PARETO) continue;
        int j = n++;
        while (j > 0 && r->points[idx[j - 1]].budget > r->points[i].budget) {
            idx[j] = idx[j - 1];
            j--;
        }
        idx[j] = i;
    }
    return n;
}

static void point_tip(const mxp_opt_point *q, char *tip, size_t cap) {
    int n = isfinite(q->gain_frac)
                ? snprintf(tip, cap, "%s: measured loss MSE %.3g, gain %.1f%%", q->label, q->loss_mse, 100 * q->gain_frac)
                : snprintf(tip, cap, "%s: measured loss MSE %.3g, gain not timed", q->label, q->loss_mse);
    if (n > 0 && (size_t)n < cap && q->has_pred_loss)
        n += snprintf(tip + n, cap - (size_t)n, "; predicted loss MSE %.3g", q->pred_loss_mse);
    if (n > 0 && (size_t)n < cap && q->has_pred_gain)
        snprintf(tip + n, cap - (size_t)n, ", predicted gain %.1f%%", 100 * q->pred_gain_frac);
    else if (n > 0 && (size_t)n < cap && q->has_pred_loss)
        snprintf(tip + n, cap - (size_t)n, ", gain not profiled");
}

// Loss MSE (log x) vs time gain (% of the reference): the predicted and the measured curve of
// the sweep, the chosen plan, the uniform formats and the baselines.
static void svg_pareto(sb *b, const mxp_report *r) {
    plot p = {.logx = 1, .W = 760, .H = 430, .ml = 70, .mr = 190, .mt = 20, .mb = 46};
    range xr = {0}, yr = {0};
    for (int i = 0; i < r->n_points; i++) {
        const mxp_opt_point *q = &r->points[i];
        range_add(&xr, q->loss_mse, 1);
        range_add(&yr, 100 * q->gain_frac, 0);
        if (q->has_pred) {
            range_add(&xr, q->pred_loss_mse, 1);
            range_add(&yr, 100 * q->pred_gain_frac, 0);
        }
    }
    range_add(&yr, 0, 0);
    range_finish(&xr, 1, &p.x0, &p.x1);
    range_finish(&yr, 0, &p.y0, &p.y1);
    plot_begin(b, &p, "Pareto curve: loss MSE vs time gain, predicted and measured");
    plot_axes(b, &p, "loss MSE (log; 0 drawn at the left edge)", "time gain, % of the f32 time", 0, 1);
    sb_printf(b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#555\" stroke-dasharray=\"2 3\"/>\n",
              p.ml, py(&p, 0), p.W - p.mr, py(&p, 0));
    int *idx = malloc((size_t)(r->n_points + 1) * sizeof *idx);
    int n = idx ? pareto_order(r, idx) : 0;
    for (int pass = 0; pass < 2; pass++) {  // 0: predicted (dashed), 1: measured
        sb_printf(b, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"1.6\"%s points=\"", kind_color[MXP_PT_PARETO],
                  pass ? "" : " stroke-dasharray=\"5 4\"");
        for (int k = 0; k < n; k++) {
            const mxp_opt_point *q = &r->points[idx[k]];
            double x = pass ? q->loss_mse : q->pred_loss_mse, y = 100 * (pass ? q->gain_frac : q->pred_gain_frac);
            sb_printf(b, "%.1f,%.1f ", px(&p, x), py(&p, y));
        }
        sb_puts(b, "\"/>\n");
    }
    free(idx);
    char tip[512];
    for (int i = 0; i < r->n_points; i++) {
        const mxp_opt_point *q = &r->points[i];
        point_tip(q, tip, sizeof tip);
        const char *c = kind_color[q->kind];
        if (q->has_pred) {
            sb_printf(b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" stroke-opacity=\"0.45\"/>\n",
                      px(&p, q->pred_loss_mse), py(&p, 100 * q->pred_gain_frac), px(&p, q->loss_mse),
                      py(&p, 100 * q->gain_frac), c);
            marker(b, px(&p, q->pred_loss_mse), py(&p, 100 * q->pred_gain_frac), kind_shape(q->kind), c, 1, tip);
        }
        marker(b, px(&p, q->loss_mse), py(&p, 100 * q->gain_frac), kind_shape(q->kind), c, 0, tip);
        if (q->kind == MXP_PT_UNIFORM) {
            sb_printf(b, "<text x=\"%.1f\" y=\"%.1f\" class=\"lab\">", px(&p, q->loss_mse) + 7, py(&p, 100 * q->gain_frac) - 6);
            sb_esc(b, q->label + (strncmp(q->label, "uniform ", 8) ? 0 : 8));
            sb_puts(b, "</text>\n");
        }
    }
    double lx = p.W - p.mr + 14, ly = p.mt + 10;
    for (int k = 0; k < MXP_PT_KIND_COUNT; k++, ly += 20)
        legend_item(b, lx, ly, kind_shape((mxp_point_kind)k), kind_color[k], 0, kind_name[k]);
    legend_item(b, lx, ly, 0, "#444", 0, "filled: measured");
    legend_item(b, lx, ly + 20, 0, "#444", 1, "hollow: predicted");
    sb_printf(b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#1f77b4\" stroke-dasharray=\"5 4\"/>", lx - 6,
              ly + 40, lx + 6, ly + 40);
    sb_printf(b, "<text x=\"%.1f\" y=\"%.1f\" class=\"tick\">predicted curve</text>\n", lx + 10, ly + 44);
    sb_printf(b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#1f77b4\"/>", lx - 6, ly + 60, lx + 6, ly + 60);
    sb_printf(b, "<text x=\"%.1f\" y=\"%.1f\" class=\"tick\">measured curve</text>\n", lx + 10, ly + 64);
    sb_puts(b, "</svg>\n");
}

// Predicted vs measured, one marker per solved plan: time gain (linear) or loss MSE (log-log),
// with the y = x diagonal (and y = 1.5 x for the loss).
static void svg_pred_vs_meas(sb *b, const mxp_report *r, int loss) {
    plot p = {.logx = loss, .logy = loss, .W = 470, .H = 400, .ml = 70, .mr = 20, .mt = 20, .mb = 46};
    range xr = {0};
    for (int i = 0; i < r->n_points; i++) {
        const mxp_opt_point *q = &r->points[i];
        if (!(loss ? q->has_pred_loss : q->has_pred_gain)) continue;
        range_add(&xr, loss ? q->pred_loss_mse : 100 * q->pred_gain_frac, loss);
        range_add(&xr, loss ? q->loss_mse : 100 * q->gain_frac, loss);
    }
    if (!loss) range_add(&xr, 0, 0);
    range_finish(&xr, loss, &p.x0, &p.x1);
    p.y0 = p.x0;
    p.y1 = p.x1;
    plot_begin(b, &p, loss ? "Predicted vs measured loss MSE" : "Predicted vs measured time gain");
    plot_axes(b, &p, loss ? "predicted loss MSE" : "predicted time gain, % of f32",
              loss ? "measured loss MSE (held-out)" : "measured time gain, % of f32", !loss, !loss);
    double a = loss ? pow(10, p.x0) : p.x0, z = loss ? pow(10, p.x1) : p.x1;
    sb_printf(b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#555\" stroke-dasharray=\"4 3\"/>\n",
              px(&p, a), py(&p, a), px(&p, z), py(&p, z));
    if (loss)
        sb_printf(b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#c66\" stroke-dasharray=\"1 3\">"
                     "<title>measured = 1.5 x predicted</title></line>\n",
                  px(&p, a), py(&p, 1.5 * a), px(&p, z / 1.5), py(&p, z));
    char tip[512];
    for (int i = 0; i < r->n_points; i++) {
        const mxp_opt_point *q = &r->points[i];
        if (!(loss ? q->has_pred_loss : q->has_pred_gain)) continue;
        point_tip(q, tip, sizeof tip);
        double x = loss ? q->pred_loss_mse : 100 * q->pred_gain_frac, y = loss ? q->loss_mse : 100 * q->gain_frac;
        marker(b, px(&p, x), py(&p, y), kind_shape(q->kind), kind_color[q->kind], 0, tip);
    }
    sb_printf(b, "<text x=\"%.1f\" y=\"%.1f\" class=\"tick\">dashed: measured = predicted%s</text>\n", p.ml + 8, p.mt + 14,
              loss ? "; dotted: 1.5 x" : "");
    sb_puts(b, "</svg>\n");
}

// Sensitivity heat map: ops (rows) x calibrated formats (columns), colour = log10 s.
static void svg_heatmap(sb *b, const mxp_report *r) {
    const double cw = 86, ch = 15, left = 230, top = 40;
    double lo = INFINITY, hi = -INFINITY;
    for (int i = 0; i < r->n_ops; i++)
        for (int k = 0; k < r->n_formats; k++) {
            size_t at = (size_t)i * MXP_FMT_COUNT + r->formats[k];
            double s = r->sens[at];
            if (r->sens_has[at] && s > 0 && isfinite(s)) {
                lo = fmin(lo, log10(s));
                hi = fmax(hi, log10(s));
            }
        }
    if (!(hi >= lo)) lo = -10, hi = 0;
    lo = floor(lo);
    hi = ceil(hi);
    if (hi <= lo) hi = lo + 1;
    double W = left + cw * r->n_formats + 140, H = top + ch * r->n_ops + 20;
    sb_printf(b, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" viewBox=\"0 0 %.0f %.0f\" "
                 "role=\"img\"><title>Sensitivity s (predicted loss MSE) per op and format</title>\n",
              W, H, W, H);
    for (int k = 0; k < r->n_formats; k++)
        sb_printf(b, "<text x=\"%.1f\" y=\"%.1f\" class=\"axis\" text-anchor=\"middle\">%s</text>\n", left + cw * (k + 0.5),
                  top - 10, mxp_format_get(r->formats[k])->name);
    char col[8], tip[512];
    for (int i = 0; i < r->n_ops; i++) {
        double y = top + ch * i;
        sb_printf(b, "<text x=\"%.1f\" y=\"%.1f\" class=\"tick\" text-anchor=\"end\">", left - 6, y + ch - 4);
        sb_esc(b, short_name(r->op_names[i]));
        sb_puts(b, "</text>\n");
        for (int k = 0; k < r->n_formats; k++) {
            size_t at = (size_t)i * MXP_FMT_COUNT + r->formats[k];
            double s = r->sens[at];
            const char *fname = mxp_format_get(r->formats[k])->name;
            if (!r->sens_has[at]) {
                snprintf(col, sizeof col, "#eeeeee");
                snprintf(tip, sizeof tip, "%s, %s: not possible (width not a multiple of the block)", r->op_names[i], fname);
            } else if (!(s > 0)) {
                snprintf(col, sizeof col, "#ffffff");
                snprintf(tip, sizeof tip, "%s, %s: s = 0", r->op_names[i], fname);
            } else {
                heat_color((log10(s) - lo) / (hi - lo), col);
                snprintf(tip, sizeof tip, "%s, %s: s = %.3g", r->op_names[i], fname, s);
            }
            sb_printf(b, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"%s\" stroke=\"#fff\"><title>",
                      left + cw * k, y, cw, ch, col);
            sb_esc(b, tip);
            sb_puts(b, "</title></rect>\n");
        }
    }
    // colour bar
    double bx = left + cw * r->n_formats + 30, bh = fmin(220, ch * r->n_ops);
    for (int s = 0; s < 20; s++) {
        heat_color(1 - s / 19.0, col);
        sb_printf(b, "<rect x=\"%.1f\" y=\"%.1f\" width=\"16\" height=\"%.2f\" fill=\"%s\"/>\n", bx, top + bh * s / 20,
                  bh / 20 + 0.5, col);
    }
    sb_printf(b, "<text x=\"%.1f\" y=\"%.1f\" class=\"tick\">1e%d</text>\n", bx + 22, top + 8, (int)hi);
    sb_printf(b, "<text x=\"%.1f\" y=\"%.1f\" class=\"tick\">1e%d</text>\n", bx + 22, top + bh, (int)lo);
    sb_printf(b, "<text x=\"%.1f\" y=\"%.1f\" class=\"tick\">s (log)</text>\n", bx, top - 10);
    sb_puts(b, "</svg>\n");
}

// Format per op (rows) for the chosen plan, the sweep (by budget) and the baselines.
static void svg_layers(sb *b, const mxp_report *r) {
    int *cols = malloc((size_t)(r->n_points + 1) * sizeof *cols);
    if (!cols) {
        b->oom = 1;
        return;
    }
    int n = 0;
    for (int i = 0; i < r->n_points; i++)
        if (r->points[i].kind == MXP_PT_CHOSEN) cols[n++] = i;
    n += pareto_order(r, cols + n);
    for (int i = 0; i < r->n_points; i++)
        if (r->points[i].kind >= MXP_PT_MAC) cols[n++] = i;
    const double cw = 44, ch = 15, left = 230, top = 120;
    double W = left + cw * n + 120, H = top + ch * r->n_ops + 20;
    sb_printf(b, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" viewBox=\"0 0 %.0f %.0f\" "
                 "role=\"img\"><title>Chosen format per op</title>\n",
              W, H, W, H);
    char tip[512];
    for (int c = 0; c < n; c++) {
        const mxp_opt_point *q = &r->points[cols[c]];
        double x = left + cw * (c + 0.5);
        char head[96];
        if (q->kind == MXP_PT_PARETO) snprintf(head, sizeof head, "tau %.2g", q->budget);
        else snprintf(head, sizeof head, "%s", q->label);
        sb_printf(b, "<text transform=\"translate(%.1f %.1f) rotate(-55)\" class=\"%s\">", x + 4, top - 8,
                  q->kind == MXP_PT_CHOSEN ? "axis" : "tick");
        sb_esc(b, head);
        sb_puts(b, "</text>\n");
        for (int i = 0; i < r->n_ops; i++) {
            int f = q->fmt ? q->fmt[i] : MXP_FMT_F32;
            if (f < 0 || f >= MXP_FMT_COUNT) f = MXP_FMT_F32;
            snprintf(tip, sizeof tip, "%s: %s -> %s", q->label, r->op_names[i], mxp_format_get((mxp_format_id)f)->name);
            sb_printf(b, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"%s\" stroke=\"#fff\"><title>",
                      left + cw * c, top + ch * i, cw, ch, fmt_color[f]);
            sb_esc(b, tip);
            sb_puts(b, "</title></rect>\n");
        }
    }
    if (n) sb_printf(b, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"none\" stroke=\"#d62728\" "
                        "stroke-width=\"2\"/>\n", left, top, cw, ch * r->n_ops);
    for (int i = 0; i < r->n_ops; i++) {
        sb_printf(b, "<text x=\"%.1f\" y=\"%.1f\" class=\"tick\" text-anchor=\"end\">", left - 6, top + ch * i + ch - 4);
        sb_esc(b, short_name(r->op_names[i]));
        sb_puts(b, "</text>\n");
    }
    double lx = left + cw * n + 20;
    for (int f = 0; f < MXP_FMT_COUNT; f++) {
        double y = top + 18 * f;
        sb_printf(b, "<rect x=\"%.1f\" y=\"%.1f\" width=\"14\" height=\"12\" fill=\"%s\"/>"
                     "<text x=\"%.1f\" y=\"%.1f\" class=\"tick\">%s</text>\n",
                  lx, y, fmt_color[f], lx + 20, y + 10, mxp_format_get((mxp_format_id)f)->name);
    }
    sb_puts(b, "</svg>\n");
    free(cols);
}

// ---- tables ----

static void points_table(sb *b, const mxp_report *r) {
    const char *unit = r->decode ? "token" : "pass";
    sb_printf(b, "<table><tr><th>configuration</th><th>budget &tau;</th><th>predicted loss MSE</th>"
                 "<th>measured loss MSE &plusmn; se</th><th>predicted gain</th><th>measured gain</th>"
                 "<th>ms / %s (f32 &rarr; this)</th><th>tokens/s</th><th>perplexity</th><th>KL</th><th>top-1</th>"
                 "<th>weights MB</th></tr>\n",
              unit);
    for (int i = 0; i < r->n_points; i++) {
        const mxp_opt_point *q = &r->points[i];
        sb_printf(b, "<tr%s><td><span class=\"dot\" style=\"background:%s\"></span>",
                  q->kind == MXP_PT_CHOSEN ? " class=\"chosen\"" : "", kind_color[q->kind]);
        sb_esc(b, q->label);
        if (q->is_dup && q->dup_of >= 0 && q->dup_of < r->n_points) {
            sb_puts(b, " <small>(same formats as ");
            sb_esc(b, r->points[q->dup_of].label);
            sb_puts(b, ")</small>");
        }
        sb_printf(b, "</td><td>%s</td>", q->has_budget ? fmt_g(q->budget, 3).s : "&mdash;");
        sb_printf(b, "<td>%s</td><td>%s &plusmn; %s</td>", pred_loss_cell(q).s, fmt_g(q->loss_mse, 3).s,
                  fmt_g(q->loss_mse_se, 2).s);
        sb_printf(b, "<td>%s</td><td>%s &plusmn; %s</td>", pred_gain_cell(q).s, fmt_pct(q->gain_frac).s,
                  fmt_f(100 * q->gain_ci_frac, 1).s);
        sb_printf(b, "<td>%s &rarr; %s</td>", fmt_f(1e3 * q->ref_time_s, 3).s, fmt_f(1e3 * q->time_s, 3).s);
        sb_printf(b, "<td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td></tr>\n", fmt_f(q->tokens_per_s, 0).s,
                  fmt_f(q->ppl, 3).s, fmt_g(q->kl, 3).s, fmt_f(100 * q->top1, 1).s, fmt_f(q->weight_bytes / 1e6, 2).s);
    }
    sb_puts(b, "</table>\n");
}

// llama.cpp's own speed of the same GGUF files, next to mixprec's measured and predicted gain.
static void llama_table(sb *b, const mxp_report *r) {
    sb_printf(b, "<p>Each configuration written as GGUF and run by llama.cpp's <code>llama-bench</code> (build ");
    sb_esc(b, r->llama_build ? r->llama_build : "unknown");
    sb_printf(b, ", %d threads): prefill of %d tokens and decode of %d tokens, median of %d rounds, each round one "
                 "llama-bench run over every file. Speed-ups are against uniform f32 in llama.cpp; mixprec's gains "
                 "are for the workload <code>",
              r->llama_threads, r->llama_prefill_tokens, r->llama_decode_tokens, r->llama_rounds);
    sb_esc(b, r->workload);
    sb_puts(b, "</code>: measured on the whole model (run by ");
    sb_esc(b, r->time_engine ? r->time_engine : "unknown");
    sb_puts(b, "), predicted by the latency table (timed on ");
    sb_esc(b, r->profile_engine ? r->profile_engine : "unknown");
    sb_puts(b, ").</p>\n<table><tr><th>configuration</th><th>llama.cpp prefill tok/s</th>"
               "<th>vs f32</th><th>llama.cpp decode tok/s</th><th>vs f32</th><th>mixprec measured gain</th>"
               "<th>mixprec predicted gain</th><th>weights MB</th></tr>\n");
    sb_printf(b, "<tr><td>f32 (reference)</td><td>%s</td><td>1.00x</td><td>%s</td><td>1.00x</td><td>0</td><td>0</td>"
                 "<td>&mdash;</td></tr>\n",
              fmt_f(r->llama_ref_prefill_tps, 1).s, fmt_f(r->llama_ref_decode_tps, 1).s);
    for (int i = 0; i < r->n_points; i++) {
        const mxp_opt_point *q = &r->points[i];
        if (!q->has_llama || (q->kind == MXP_PT_UNIFORM && q->uniform == MXP_FMT_F32)) continue;
        sb_printf(b, "<tr%s><td>", q->kind == MXP_PT_CHOSEN ? " class=\"chosen\"" : "");
        sb_esc(b, q->label);
        sb_printf(b, "</td><td>%s</td><td>%sx</td><td>%s</td><td>%sx</td><td>%s</td><td>%s</td><td>%s</td></tr>\n",
                  fmt_f(q->llama_prefill_tps, 1).s, fmt_f(q->llama_prefill_tps / r->llama_ref_prefill_tps, 2).s,
                  fmt_f(q->llama_decode_tps, 1).s, fmt_f(q->llama_decode_tps / r->llama_ref_decode_tps, 2).s,
                  fmt_pct(q->gain_frac).s, q->has_pred ? fmt_pct(q->pred_gain_frac).s : "&mdash;",
                  fmt_f(q->weight_bytes / 1e6, 2).s);
    }
    sb_puts(b, "</table>\n");
}

// Each llama.cpp mix beside the least-loss plan of at most its size (the point after it) and
// the fastest plan within its measured loss (the point after that, when solved): accuracy,
// and llama.cpp's speed of the workload's kind against the mix's.
static int mixes_table(sb *b, const mxp_report *r) {
    int n = 0;
    const char *unit = r->decode ? "decode" : "prefill";
    for (int i = 0; i + 1 < r->n_points; i++) {
        const mxp_opt_point *m = &r->points[i], *q = &r->points[i + 1];
        const mxp_opt_point *l = i + 2 < r->n_points && r->points[i + 2].kind == MXP_PT_LOSS_MATCHED ? &r->points[i + 2] : NULL;
        if (m->kind != MXP_PT_LLAMA_MIX || q->kind != MXP_PT_SIZED) continue;
        if (!n++)
            sb_printf(b, "<table><tr><th>configuration</th><th>weights MB</th><th>KL</th><th>measured loss MSE</th>"
                         "<th>top-1</th><th>lower KL</th><th>llama.cpp %s tok/s</th><th>vs the mix</th></tr>\n", unit);
        double mtps = r->decode ? m->llama_decode_tps : m->llama_prefill_tps;
        for (int k = 0; k < 3; k++) {
            const mxp_opt_point *x = k == 0 ? m : k == 1 ? q : l;
            if (!x) continue;
            double tps = r->decode ? x->llama_decode_tps : x->llama_prefill_tps;
            int has_tps = x->has_llama && m->has_llama && mtps > 0;
            sb_puts(b, "<tr><td>");
            sb_esc(b, x->label);
            sb_printf(b, "</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td class=\"%s\">%s</td><td>%s</td><td>%s</td></tr>\n",
                      fmt_f(x->weight_bytes / 1e6, 3).s, fmt_g(x->kl, 3).s, fmt_g(x->loss_mse, 3).s, fmt_f(x->top1, 4).s,
                      k == 1 ? (q->kl < m->kl ? "ok" : "bad") : "", k == 1 ? (q->kl < m->kl ? "mixprec" : "llama.cpp") : "",
                      has_tps ? fmt_f(tps, 1).s : "&mdash;", has_tps && k ? fmt_f(tps / mtps, 2).s : "&mdash;");
        }
    }
    if (n) sb_puts(b, "</table>\n");
    return n;
}

static void target_table(sb *b, const mxp_report *r) {
    int n_fail = 0;
    for (int i = 0; i < r->n_target; i++) n_fail += !r->target[i].loss_ok || !r->target[i].gain_ok;
    sb_printf(b, "<p>Target: at each budget &tau; the plan's measured time gain is at least that of every uniform format "
                 "whose measured loss MSE is within &tau;, and its measured loss MSE is at most 1.5 &tau;. "
                 "<b>%d of %d budgets meet both.</b></p>\n",
              r->n_target - n_fail, r->n_target);
    sb_puts(b, "<table><tr><th>plan</th><th>budget &tau;</th><th>measured loss MSE</th><th>/ &tau;</th><th>loss</th>"
               "<th>measured gain</th><th>best uniform within &tau; (measured)</th><th>its gain</th>"
               "<th>difference &plusmn; 95%</th><th>gain</th></tr>\n");
    for (int i = 0; i < r->n_target; i++) {
        const mxp_target_row *t = &r->target[i];
        const mxp_opt_point *q = &r->points[t->point];
        sb_printf(b, "<tr%s><td>", q->kind == MXP_PT_CHOSEN ? " class=\"chosen\"" : "");
        sb_esc(b, q->label);
        sb_printf(b, "</td><td>%s</td><td>%s</td><td>%s</td><td class=\"%s\">%s</td><td>%s</td><td>", fmt_g(t->budget, 3).s,
                  fmt_g(q->loss_mse, 3).s, fmt_f(q->loss_mse / t->budget, 2).s, t->loss_ok ? "ok" : "bad",
                  t->loss_ok ? "ok" : "FAIL", fmt_pct(q->gain_frac).s);
        if (t->has_best_uniform) sb_esc(b, r->points[t->best_uniform].label);
        else sb_puts(b, "none (f32)");
        // the two gains come from the same timing rounds; their intervals add in quadrature (an
        // approximation: it ignores their correlation)
        double ci_u = t->has_best_uniform ? r->points[t->best_uniform].gain_ci_frac : 0;
        double diff = q->gain_frac - t->best_uniform_gain_frac, ci = sqrt(q->gain_ci_frac * q->gain_ci_frac + ci_u * ci_u);
        int noise = !t->gain_ok && -diff <= ci;
        sb_printf(b, "</td><td>%s</td><td>%s &plusmn; %s</td><td class=\"%s\">%s</td></tr>\n",
                  fmt_pct(t->best_uniform_gain_frac).s, fmt_pct(diff).s, fmt_f(100 * ci, 1).s, t->gain_ok ? "ok" : "bad",
                  t->gain_ok ? "ok" : noise ? "FAIL (within noise)" : "FAIL");
    }
    sb_puts(b, "</table>\n");
    int n_llama = 0, n_llama_ok = 0;
    for (int i = 0; i < r->n_target; i++) {
        n_llama += r->target[i].has_llama;
        n_llama_ok += r->target[i].has_llama && r->target[i].llama_gain_ok;
    }
    if (!n_llama) return;
    sb_printf(b, "<p>The same gain target on the speeds llama.cpp measured (llama-bench, %s, the GGUF of every "
                 "configuration): <b>%d of %d budgets meet it.</b></p>\n",
              r->decode ? "decode" : "prefill", n_llama_ok, n_llama);
    sb_puts(b, "<table><tr><th>plan</th><th>budget &tau;</th><th>llama.cpp gain</th>"
               "<th>best uniform within &tau; (llama.cpp)</th><th>its gain</th><th>difference</th><th>gain</th></tr>\n");
    for (int i = 0; i < r->n_target; i++) {
        const mxp_target_row *t = &r->target[i];
        if (!t->has_llama) continue;
        const mxp_opt_point *q = &r->points[t->point];
        sb_printf(b, "<tr%s><td>", q->kind == MXP_PT_CHOSEN ? " class=\"chosen\"" : "");
        sb_esc(b, q->label);
        sb_printf(b, "</td><td>%s</td><td>%s</td><td>", fmt_g(t->budget, 3).s, fmt_pct(t->llama_gain_frac).s);
        if (t->llama_has_best_uniform) sb_esc(b, r->points[t->llama_best_uniform].label);
        else sb_puts(b, "none (f32)");
        sb_printf(b, "</td><td>%s</td><td>%s</td><td class=\"%s\">%s</td></tr>\n", fmt_pct(t->llama_best_uniform_gain_frac).s,
                  fmt_pct(t->llama_gain_frac - t->llama_best_uniform_gain_frac).s, t->llama_gain_ok ? "ok" : "bad",
                  t->llama_gain_ok ? "ok" : "FAIL");
    }
    sb_puts(b, "</table>\n");
}

static const mxp_opt_point *chosen_point(const mxp_report *r) {
    for (int i = 0; i < r->n_points; i++)
        if (r->points[i].kind == MXP_PT_CHOSEN) return &r->points[i];
    return NULL;
}

static void summary_table(sb *b, const mxp_report *r, const mxp_opt_point *c) {
    const char *unit = r->decode ? "decode" : "prefill";
    double pred_time = c->has_pred_gain ? r->profile_ref_time_s - c->pred_gain_s : NAN;
    double pred_tps = pred_time > 0 ? r->unit_tokens / pred_time : NAN;
    double ref_pred_tps = r->profile_ref_time_s > 0 ? r->unit_tokens / r->profile_ref_time_s : NAN;
    double ppl_bound = c->has_pred_loss ? r->ref_ppl * exp(sqrt(c->pred_loss_mse)) : NAN;
    sb_puts(b, "<table><tr><th>quantity</th><th>predicted</th><th>measured (held-out)</th><th>f32 reference</th></tr>\n");
    sb_printf(b, "<tr><td>loss MSE (mean over samples of (L<sub>plan</sub> &minus; L<sub>f32</sub>)&sup2;)</td>"
                 "<td>%s</td><td>%s &plusmn; %s</td><td>0</td></tr>\n",
              pred_loss_cell(c).s, fmt_g(c->loss_mse, 3).s, fmt_g(c->loss_mse_se, 2).s);
    sb_printf(b, "<tr><td>perplexity</td><td>&le; %s (from &radic;loss MSE)</td><td>%s</td><td>%s</td></tr>\n",
              fmt_f(ppl_bound, 3).s, fmt_f(c->ppl, 3).s, fmt_f(r->ref_ppl, 3).s);
    sb_printf(b, "<tr><td>KL(f32 &#8741; plan), nats per token</td><td>&mdash;</td><td>%s</td><td>0</td></tr>\n",
              fmt_g(c->kl, 3).s);
    sb_printf(b, "<tr><td>top-1 agreement with f32</td><td>&mdash;</td><td>%s%%</td><td>100%%</td></tr>\n",
              fmt_f(100 * c->top1, 1).s);
    sb_printf(b, "<tr><td>time gain (%% of the f32 time)</td><td>%s</td><td>%s &plusmn; %s%%</td><td>0</td></tr>\n",
              pred_gain_cell(c).s, fmt_pct(c->gain_frac).s, fmt_f(100 * c->gain_ci_frac, 1).s);
    sb_printf(b, "<tr><td>time per %s, ms</td><td>%s (profile: f32 %s)</td><td>%s</td><td>%s</td></tr>\n",
              r->decode ? "token" : "pass", fmt_f(1e3 * pred_time, 3).s, fmt_f(1e3 * r->profile_ref_time_s, 3).s,
              fmt_f(1e3 * c->time_s, 3).s, fmt_f(1e3 * c->ref_time_s, 3).s);
    sb_printf(b, "<tr><td>%s tokens/s</td><td>%s (profile: f32 %s)</td><td>%s</td><td>%s</td></tr>\n", unit,
              fmt_f(pred_tps, 0).s, fmt_f(ref_pred_tps, 0).s, fmt_f(c->tokens_per_s, 0).s, fmt_f(c->ref_tokens_per_s, 0).s);
    sb_printf(b, "<tr><td>linear weights, MB</td><td>%s</td><td>%s</td><td>&mdash;</td></tr>\n",
              fmt_f(c->weight_bytes / 1e6, 3).s, fmt_f(c->weight_bytes / 1e6, 3).s);
    sb_puts(b, "</table>\n");
}

static const char *const css =
    "body{font-family:system-ui,-apple-system,'Segoe UI',Helvetica,Arial,sans-serif;margin:24px auto;max-width:1320px;"
    "color:#222;padding:0 16px}h1{font-size:22px;margin-bottom:4px}h2{font-size:18px;margin-top:30px;"
    "border-bottom:1px solid #ddd;padding-bottom:4px}p,li{font-size:14px;line-height:1.45}"
    "table{border-collapse:collapse;font-size:13px;margin:8px 0}th,td{border:1px solid #ddd;padding:4px 8px;"
    "text-align:right}th{background:#f4f4f4}td:first-child,th:first-child{text-align:left}tr.chosen td{font-weight:600;"
    "background:#fff5f5}td.ok{color:#18794e}td.bad{color:#c00;font-weight:700}.dot{display:inline-block;width:10px;"
    "height:10px;border-radius:5px;margin-right:6px}.grid{stroke:#eee}.tick{font-size:11px;fill:#333}"
    ".axis{font-size:12px;fill:#111}.lab{font-size:11px;fill:#2a7a2a}.meta td{text-align:left}.figs{display:flex;"
    "flex-wrap:wrap;gap:16px}code{background:#f4f4f4;padding:1px 4px}svg{max-width:100%;height:auto}";

mxp_status mxp_report_html(const mxp_report *r, char **out, size_t *len, mxp_err *err) {
    *out = NULL;
    *len = 0;
    const mxp_opt_point *c = chosen_point(r);
    if (!c) return mxp_fail(err, MXP_ERR_ARG, "report: no chosen plan among the points");
    sb b = {0};
    sb_puts(&b, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
                "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>mixprec optimize: ");
    sb_esc(&b, r->model);
    sb_printf(&b, "</title>\n<style>%s</style></head><body>\n", css);
    sb_puts(&b, "<h1>mixprec optimize: ");
    sb_esc(&b, r->model);
    sb_puts(&b, "</h1>\n<p>Workload <code>");
    sb_esc(&b, r->workload);
    sb_printf(&b, "</code>, budget: predicted loss MSE &le; &tau; = %s", fmt_g(r->tau, 4).s);
    if (r->ppl_increase > 0)
        sb_printf(&b, " (from --max-ppl-increase %s%%: &tau; = ln(1 + P)&sup2;)", fmt_g(100 * r->ppl_increase, 4).s);
    sb_printf(&b, ". Chosen plan: predicted gain %s, <b>measured gain %s</b>; predicted loss MSE %s, <b>measured %s</b>; "
                  "perplexity %s &rarr; %s.</p>\n",
              pred_gain_cell(c).s, fmt_pct(c->gain_frac).s, pred_loss_cell(c).s, fmt_g(c->loss_mse, 3).s,
              fmt_f(r->ref_ppl, 3).s, fmt_f(c->ppl, 3).s);

    sb_puts(&b, "<h2>Prediction vs measurement (chosen plan)</h2>\n");
    summary_table(&b, r, c);
    sb_printf(&b, "<p>Accuracy: %d held-out windows of %d tokens (the evaluation split of the data), every op in "
                  "its format with the real kernels, compared with f32 window by window. Time: the whole model, one %s, "
                  "timed in %d rounds that run f32 and every configuration once each (order rotating "
                  "per round); the gain is the median over rounds of the paired difference with the f32 run of the same "
                  "round, &plusmn; a 95%% interval; the whole model ran on ",
              r->eval_samples, r->seq_len,
              r->decode ? "decoded token after the workload's cached positions" : "prefill pass of the workload",
              r->time_rounds);
    sb_esc(&b, r->time_engine ? r->time_engine : "an engine the report does not name");
    sb_puts(&b, ". Predicted gains are the latency table's sub-graph gains over its sum of sub-graph f32 times; the "
                "table was timed on ");
    sb_esc(&b, r->profile_engine ? r->profile_engine : "an engine the table does not name");
    sb_puts(&b, ".</p>\n");
    sb_puts(&b, "<h2>Deployed speed: llama.cpp</h2>\n");
    if (r->has_llama) llama_table(&b, r);
    else sb_puts(&b, "<p>Not measured (see the notes).</p>\n");
    sb_puts(&b, "<h2>Pareto curve: predicted and measured</h2>\n");
    svg_pareto(&b, r);
    sb_puts(&b, "<div class=\"figs\">");
    svg_pred_vs_meas(&b, r, 0);
    svg_pred_vs_meas(&b, r, 1);
    sb_puts(&b, "</div>\n");

    sb_puts(&b, "<h2>Target over a sweep of budgets</h2>\n");
    target_table(&b, r);

    sb_puts(&b, "<h2>Baselines, each measured the same way</h2>\n");
    sb_puts(&b, "<p>Every uniform format; the plans the same solver chooses for the same budget with the MAC objective "
                "(theoretical time from MAC counts) and the memory objective (weight bytes); and the plan chosen with "
                "the fisher metric instead of the loss-MSE sensitivities (the least fisher score among plans whose "
                "predicted time gain is at least the chosen plan's, since fisher scores are not in loss-MSE units).</p>\n");
    points_table(&b, r);

    sb_puts(&b, "<h2>Against llama.cpp's own mixes, at the same size</h2>\n");
    sb_puts(&b, "<p>llama-quantize turns the f32 GGUF into each mix; its formats (read from its GGUF), the "
                "least-predicted-loss plan whose plan-op weights (linear ops and token embedding) are no larger, and "
                "the fastest plan whose predicted loss MSE is at most the mix's measured one are measured like every "
                "configuration here, against f32 on the held-out samples, and timed in llama.cpp.</p>\n");
    if (!mixes_table(&b, r)) sb_puts(&b, "<p>Not run (see the notes).</p>\n");

    sb_puts(&b, "<h2>Chosen format per op</h2>\n<p>First column (red frame): the chosen plan; then the sweep by "
                "budget and the baselines.</p>\n");
    svg_layers(&b, r);

    sb_puts(&b, "<h2>Sensitivity heat map</h2>\n<p>s<sub>l</sub>(p): predicted loss-MSE contribution of each op in "
                "each format (first-order Taylor, squared per sample, averaged over the calibration samples).</p>\n");
    svg_heatmap(&b, r);

    if (r->n_notes) {
        sb_puts(&b, "<h2>Notes</h2>\n<ul>\n");
        for (int i = 0; i < r->n_notes; i++) {
            sb_puts(&b, "<li>");
            sb_esc(&b, r->notes[i]);
            sb_puts(&b, "</li>\n");
        }
        sb_puts(&b, "</ul>\n");
    }

    sb_puts(&b, "<h2>Run</h2>\n<table class=\"meta\">");
    const char *keys[] = {"tool", "ggml", "model", "data", "workload", "machine", "kernels", "created"};
    const char *vals[] = {r->tool, r->ggml, r->model, r->data, r->workload, r->machine, r->kernels, r->created};
    for (size_t k = 0; k < sizeof keys / sizeof *keys; k++) {
        sb_printf(&b, "<tr><td>%s</td><td>", keys[k]);
        sb_esc(&b, vals[k] ? vals[k] : "");
        sb_puts(&b, "</td></tr>\n");
    }
    sb_printf(&b, "<tr><td>calibration</td><td>%d samples x %d tokens</td></tr>\n", r->calib_samples, r->seq_len);
    sb_printf(&b, "<tr><td>held-out check</td><td>%d samples (%d tokens), f32 loss %s, perplexity %s</td></tr>\n",
              r->eval_samples, r->eval_tokens, fmt_f(r->ref_loss, 4).s, fmt_f(r->ref_ppl, 3).s);
    for (int s = 0; s < r->n_stages; s++) {
        sb_puts(&b, "<tr><td>stage: ");
        sb_esc(&b, r->stage_names[s]);
        sb_printf(&b, "</td><td>%.1f s</td></tr>\n", r->stage_s[s]);
    }
    sb_puts(&b, "</table>\n</body></html>\n");
    if (b.oom) {
        free(b.p);
        return mxp_fail(err, MXP_ERR_NOMEM, "report: out of memory");
    }
    *out = b.p;
    *len = b.len;
    return MXP_OK;
}

mxp_status mxp_report_write_html(const mxp_report *r, const char *path, mxp_err *err) {
    char *html;
    size_t len;
    mxp_status st = mxp_report_html(r, &html, &len, err);
    if (st) return st;
    st = mxp_write_file_atomic(path, html, len, err);
    free(html);
    return st;
}
