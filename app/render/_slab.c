/* Thick-slab MIP / MinIP / average through a stored int16 or uint16 volume, sampled where each
 * ray crosses the voxel layers of the array axis it runs most along.
 *
 * A ray leaves output pixel (row, col) along the slab normal. Let axis a be the array axis the
 * normal advances fastest along (in index units per mm). The ray is sampled exactly where it
 * crosses the layers m = integer of axis a, from -half to +half mm: there trilinear
 * interpolation reduces to bilinear interpolation inside layer m, so each sample costs four
 * voxels instead of eight, and no sample falls between two layers (a one-voxel-thin structure
 * across the ray is hit at full strength, not blended with its neighbour layer). Consecutive
 * samples are 1 / |d_a| mm apart, the spacing of ``Reslicer.step_mm``.
 *
 * Samples outside the volume (a layer outside the array, or an in-layer position more than half
 * a voxel outside it, as vtkImageReslice's border) count as the background value, so results
 * match vtkImageReslice's slab modes. The GIL is released while rows are computed: callers
 * split the rows between threads.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>

typedef struct {
    const void *vol;
    Py_ssize_t n[3];      /* voxels along i (column), j (row), k (slice) */
    Py_ssize_t stride[3]; /* elements between neighbours along i, j, k */
    double p0[3];         /* index (i, j, k) of output pixel (0, 0) on the central plane */
    double du[3];         /* index step per output column */
    double dv[3];         /* index step per output row */
    double d[3];          /* index step per mm along the normal */
    double half;          /* half the slab thickness, mm */
    float bg;             /* stored value of samples outside the volume */
    int mode;             /* 0 maximum, 1 minimum, 2 mean */
    int axis;             /* the layer axis a */
    int r0, r1, cols;     /* rows [r0, r1) of a (rows, cols) output */
} Job;

/* floor and ceil to integers without a libm call (|x| < 2^62). */
static inline int64_t ifloor(double x)
{
    int64_t i = (int64_t)x;
    return i - (x < (double)i);
}

static inline int64_t iceil(double x)
{
    int64_t i = (int64_t)x;
    return i + (x > (double)i);
}

static inline float clamp_coord(double x, Py_ssize_t n, Py_ssize_t *index)
{
    if (x < 0.0) x = 0.0;
    if (x > (double)(n - 1)) x = (double)(n - 1);
    Py_ssize_t i = (Py_ssize_t)x;
    if (i > n - 2) i = n - 2;
    *index = i;
    return (float)(x - (double)i);
}

/* Narrow [*c0, *c1] to the columns where lo <= base + col * slope <= hi: widened by one column
 * when ``strict`` is 0 (every such column is in; each is then tested exactly), shrunk by one
 * when it is 1 (every column left satisfies it, whatever the rounding). */
static void clip_cols(double base, double slope, double inv_slope, double lo, double hi,
                      int strict, long *c0, long *c1)
{
    double eps = strict ? -1e-9 : 1e-9;
    if (fabs(slope) < 1e-12) {
        if (base < lo - eps || base > hi + eps) *c1 = *c0 - 1;
        return;
    }
    double t1 = (lo - base) * inv_slope, t2 = (hi - base) * inv_slope;
    if (t1 > t2) {
        double t = t1;
        t1 = t2;
        t2 = t;
    }
    if (t1 < -1e9) t1 = -1e9;
    if (t2 > 1e9) t2 = 1e9;
    long a = (long)(strict ? iceil(t1) + 1 : ifloor(t1) - 1);
    long b = (long)(strict ? ifloor(t2) - 1 : iceil(t2) + 1);
    if (a > *c0) *c0 = a;
    if (b < *c1) *c1 = b;
}

/* Bilinear interpolation in a layer at fractions (fb, fc) from voxel v along axes b and c. */
#define DEFINE_BILINEAR(NAME, T)                                                                \
static inline float NAME(const T *v, Py_ssize_t sb, Py_ssize_t sc, float fb, float fc)          \
{                                                                                               \
    float lo = (float)v[0] + fb * ((float)v[sb] - (float)v[0]);                                 \
    float hi = (float)v[sc] + fb * ((float)v[sb + sc] - (float)v[sc]);                          \
    return lo + fc * (hi - lo);                                                                 \
}

DEFINE_BILINEAR(bilinear_int16_t, int16_t)
DEFINE_BILINEAR(bilinear_uint16_t, uint16_t)

/* Columns c0..c1 of layer m: checked at the edges of the band, unchecked inside it. */
#define LAYER_SPAN(T, OP)                                                                       \
    for (long col = c0; col <= c1; col++) {                                                     \
        if (col == f0 && f0 <= f1) {                                                            \
            /* 32.32 fixed point: no float/int conversion of the positions per sample */        \
            int64_t xb = ifloor((bb + col * ub) * 4294967296.0 + 0.5);                     \
            int64_t xc = ifloor((bc + col * uc) * 4294967296.0 + 0.5);                     \
            const int64_t step_b = ifloor(ub * 4294967296.0 + 0.5);                         \
            const int64_t step_c = ifloor(uc * 4294967296.0 + 0.5);                         \
            diff[col] += 1;                                                                     \
            diff[f1 + 1] -= 1;                                                                  \
            for (; col <= f1; col++, xb += step_b, xc += step_c) {                              \
                Py_ssize_t ib = (Py_ssize_t)(xb >> 32), ic = (Py_ssize_t)(xc >> 32);            \
                float fb = (float)(xb & 0xffffffff) * (1.0f / 4294967296.0f);                   \
                float fc = (float)(xc & 0xffffffff) * (1.0f / 4294967296.0f);                   \
                float s = bilinear_##T(layer + ib * sb + ic * sc, sb, sc, fb, fc);              \
                acc[col] = OP(acc[col], s);                                                     \
            }                                                                                   \
            if (col > c1) break;                                                                \
        }                                                                                       \
        if (m < first[col] || m > last[col]) continue;                                          \
        double xb = bb + col * ub, xc = bc + col * uc;                                          \
        if (xb < -0.5 || xb > (double)nb - 0.5 || xc < -0.5 || xc > (double)nc - 0.5)           \
            continue;                                                                           \
        Py_ssize_t ib, ic;                                                                      \
        float fb = clamp_coord(xb, nb, &ib);                                                    \
        float fc = clamp_coord(xc, nc, &ic);                                                    \
        float s = bilinear_##T(layer + ib * sb + ic * sc, sb, sc, fb, fc);                                   \
        acc[col] = OP(acc[col], s);                                                             \
        inside[col]++;                                                                          \
    }

#define OP_MAX(a, b) ((b) > (a) ? (b) : (a))
#define OP_MIN(a, b) ((b) < (a) ? (b) : (a))
#define OP_SUM(a, b) ((a) + (b))

/* One output row at a time; inside it, layer by layer, so each layer is read along its memory
 * order (cache and TLB friendly) rather than every layer once per pixel. */
#define DEFINE_SLAB(NAME, T, LOWEST, HIGHEST)                                                   \
static void NAME(const Job *job, T *out, float *acc, long *first, long *last, long *inside,    \
                 long *diff)                                                                    \
{                                                                                               \
    const T *vol = (const T *)job->vol;                                                         \
    const int a = job->axis, b = (a + 1) % 3, c = (a + 2) % 3, mode = job->mode;                \
    const Py_ssize_t na = job->n[a], nb = job->n[b], nc = job->n[c];                            \
    const Py_ssize_t sa = job->stride[a], sb = job->stride[b], sc = job->stride[c];             \
    const double da = job->d[a], kb = job->d[b] / da, kc = job->d[c] / da;                      \
    const double reach = job->half * fabs(da);                                                  \
    const long cols = job->cols;                                                                \
    /* along a row: p(col) = q + col * du; in layer m: x_b = q_b + col du_b + (m - p_a) kb */   \
    const double ua = job->du[a], ub = job->du[b] - job->du[a] * kb;                            \
    const double uc = job->du[c] - job->du[a] * kc;                                             \
    const double iua = ua != 0.0 ? 1.0 / ua : 0.0, iub = ub != 0.0 ? 1.0 / ub : 0.0;           \
    const double iuc = uc != 0.0 ? 1.0 / uc : 0.0;                                              \
    const float start = mode == 0 ? -INFINITY : (mode == 1 ? INFINITY : 0.0f);                 \
    for (int r = job->r0; r < job->r1; r++) {                                                   \
        double q[3];                                                                            \
        for (int x = 0; x < 3; x++) q[x] = job->p0[x] + r * job->dv[x];                         \
        long lo_m = LONG_MAX, hi_m = LONG_MIN;                                                  \
        for (long col = 0; col < cols; col++) {                                                 \
            double pa = q[a] + col * ua;                                                        \
            first[col] = (long)iceil(pa - reach - 1e-9);                                        \
            last[col] = (long)ifloor(pa + reach + 1e-9);                                        \
            if (first[col] < lo_m) lo_m = first[col];                                           \
            if (last[col] > hi_m) hi_m = last[col];                                             \
            acc[col] = start;                                                                   \
            inside[col] = 0;                                                                    \
            diff[col] = 0;                                                                      \
        }                                                                                       \
        diff[cols] = 0;                                                                         \
        if (lo_m < 0) lo_m = 0;                                                                 \
        if (hi_m > (long)na - 1) hi_m = (long)na - 1;                                           \
        const double qb = q[b] - q[a] * kb, qc = q[c] - q[a] * kc;                              \
        for (long m = lo_m; m <= hi_m; m++) {                                                   \
            const double bb = qb + m * kb, bc = qc + m * kc;                                    \
            /* the columns whose ray crosses layer m inside the slab: one exact run */          \
            long s0 = 0, s1 = cols - 1;                                                         \
            clip_cols(q[a], ua, iua, m - reach, m + reach, 0, &s0, &s1);                        \
            if (s0 < 0) s0 = 0;                                                                 \
            if (s1 > cols - 1) s1 = cols - 1;                                                   \
            while (s0 <= s1 && (m < first[s0] || m > last[s0])) s0++;                           \
            while (s1 >= s0 && (m < first[s1] || m > last[s1])) s1--;                           \
            if (s0 > s1) continue;                                                              \
            /* of those, the ones inside the volume (loose), and well inside it (no checks) */  \
            long c0 = s0, c1 = s1;                                                              \
            clip_cols(bb, ub, iub, -0.5, (double)nb - 0.5, 0, &c0, &c1);                        \
            clip_cols(bc, uc, iuc, -0.5, (double)nc - 0.5, 0, &c0, &c1);                        \
            if (c0 < s0) c0 = s0;                                                               \
            if (c1 > s1) c1 = s1;                                                               \
            long f0 = c0, f1 = c1;                                                              \
            clip_cols(bb, ub, iub, 1e-6, (double)nb - 1 - 1e-6, 1, &f0, &f1);                   \
            clip_cols(bc, uc, iuc, 1e-6, (double)nc - 1 - 1e-6, 1, &f0, &f1);                   \
            const T *layer = vol + m * sa;                                                      \
            if (mode == 0) { LAYER_SPAN(T, OP_MAX) }                                            \
            else if (mode == 1) { LAYER_SPAN(T, OP_MIN) }                                       \
            else { LAYER_SPAN(T, OP_SUM) }                                                      \
        }                                                                                       \
        T *row = out + (Py_ssize_t)r * cols;                                                    \
        long running = 0;                                                                       \
        for (long col = 0; col < cols; col++) {                                                 \
            running += diff[col];                                                               \
            inside[col] += running;                                                             \
            long total = last[col] - first[col] + 1, outside = total - inside[col];             \
            float v = acc[col], value;                                                          \
            if (mode == 2) {                                                                    \
                value = total > 0 ? (v + outside * job->bg) / (float)total : job->bg;           \
            } else if (mode == 0) {                                                             \
                value = (outside > 0 && job->bg > v) ? job->bg : v;                             \
            } else {                                                                            \
                value = (outside > 0 && job->bg < v) ? job->bg : v;                             \
            }                                                                                   \
            float rounded = floorf(value + 0.5f);                                               \
            if (rounded < (float)(LOWEST)) rounded = (float)(LOWEST);                           \
            if (rounded > (float)(HIGHEST)) rounded = (float)(HIGHEST);                         \
            row[col] = (T)rounded;                                                              \
        }                                                                                       \
    }                                                                                           \
}

DEFINE_SLAB(slab_int16, int16_t, INT16_MIN, INT16_MAX)
DEFINE_SLAB(slab_uint16, uint16_t, 0, UINT16_MAX)

static const char slab_doc[] =
    "slab(volume, out, unsigned, shape_ijk, geometry, mode, axis, r0, r1, cols)\n\n"
    "Fill rows [r0, r1) of ``out`` (rows x cols, the volume's dtype) with the slab composite.\n"
    "``geometry`` holds 14 float64: p0[3], du[3], dv[3], d[3], half_mm, background.";

static PyObject *slab(PyObject *self, PyObject *args)
{
    Py_buffer vol, out, geo;
    int is_unsigned, mode, axis, r0, r1, cols;
    Py_ssize_t ni, nj, nk;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*w*p(nnn)y*iiiii", &vol, &out, &is_unsigned, &ni, &nj, &nk,
                          &geo, &mode, &axis, &r0, &r1, &cols))
        return NULL;
    PyObject *result = NULL;
    if (ni < 2 || nj < 2 || nk < 2 || vol.len != ni * nj * nk * 2) {
        PyErr_SetString(PyExc_ValueError, "volume must be at least 2 voxels along each axis "
                        "and match shape_ijk (2-byte voxels)");
    } else if (geo.len != 14 * (Py_ssize_t)sizeof(double)) {
        PyErr_SetString(PyExc_ValueError, "geometry must hold 14 float64");
    } else if (mode < 0 || mode > 2 || axis < 0 || axis > 2 || cols < 1 || r0 < 0 || r1 < r0
               || out.len < (Py_ssize_t)r1 * cols * 2) {
        PyErr_SetString(PyExc_ValueError, "bad mode, axis or output rows");
    } else {
        const double *g = (const double *)geo.buf;
        Job job;
        job.vol = vol.buf;
        job.n[0] = ni; job.n[1] = nj; job.n[2] = nk;
        job.stride[0] = 1; job.stride[1] = ni; job.stride[2] = ni * nj;
        for (int x = 0; x < 3; x++) {
            job.p0[x] = g[x];
            job.du[x] = g[3 + x];
            job.dv[x] = g[6 + x];
            job.d[x] = g[9 + x];
        }
        job.half = g[12];
        job.bg = (float)g[13];
        job.mode = mode;
        job.axis = axis;
        job.r0 = r0; job.r1 = r1; job.cols = cols;
        if (job.d[axis] == 0.0) {
            PyErr_SetString(PyExc_ValueError, "the normal does not cross the layer axis");
        } else {
            float *acc = PyMem_RawMalloc(cols * sizeof(float));
            long *first = PyMem_RawMalloc((4 * (size_t)cols + 1) * sizeof(long));
            if (acc == NULL || first == NULL) {
                PyErr_NoMemory();
            } else {
                Py_BEGIN_ALLOW_THREADS
                if (is_unsigned)
                    slab_uint16(&job, (uint16_t *)out.buf, acc, first, first + cols,
                                first + 2 * cols, first + 3 * cols);
                else
                    slab_int16(&job, (int16_t *)out.buf, acc, first, first + cols,
                               first + 2 * cols, first + 3 * cols);
                Py_END_ALLOW_THREADS
                result = Py_NewRef(Py_None);
            }
            PyMem_RawFree(acc);
            PyMem_RawFree(first);
        }
    }
    PyBuffer_Release(&vol);
    PyBuffer_Release(&out);
    PyBuffer_Release(&geo);
    return result;
}

static PyMethodDef methods[] = {
    {"slab", slab, METH_VARARGS, slab_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_slab",
    "Layer-sampled thick-slab composites (see app/render/slab.py).", -1, methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__slab(void)
{
    return PyModule_Create(&module);
}
