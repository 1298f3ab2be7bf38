/* dL/dω of a depthwise K×K convolution (stride 1, zero padding K / 2) from its bf16 input x and output gradient g,
 * both (B, C, H, W) contiguous, into out (C, K, K) fp32:
 *
 *     out[c, i, j] = Σ_{b, y, u} g[b, c, y, u] · x[b, c, y + i - K/2, u + j - K/2]   (zero outside the image)
 *
 * Each image plane is widened to fp32 once, zero-padded; every row of g then adds its products with the K×K shifted
 * rows of x into LANES-wide partial sums (vectorised by the compiler), summed in double per channel. Channels are
 * shared among `threads` OpenMP threads. Returns 0, or 1 when a buffer could not be allocated.
 * Built at run time by deepanon/models/native.py.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define LANES 16

static inline float bf16_to_float(uint16_t bits) {
    uint32_t widened = (uint32_t)bits << 16;
    float value;
    memcpy(&value, &widened, sizeof value);
    return value;
}

int depthwise_weight_gradient(const uint16_t *x, const uint16_t *g, float *out, int batch, int channels, int height,
                              int width, int k, int threads) {
    const int pad = k / 2;
    /* rows of LANES-multiple length: the last lanes multiply zeros of g with zeros of x's padding */
    const int lanes_width = (width + LANES - 1) / LANES * LANES;
    const int row = lanes_width + 2 * pad;
    const size_t plane = (size_t)height * width;
    int failed = 0;
#pragma omp parallel num_threads(threads)
    {
        float *x_padded = calloc((size_t)(height + 2 * pad) * row, sizeof(float));
        float *g_row = calloc((size_t)lanes_width, sizeof(float));
        float *partial = malloc((size_t)k * k * LANES * sizeof(float));
        double *sums = malloc((size_t)k * k * sizeof(double));
        const int ready = x_padded && g_row && partial && sums;
        if (!ready) {
#pragma omp atomic write
            failed = 1;
        }
        /* every thread reaches the loop's closing barrier; one without its buffers computes nothing */
#pragma omp for schedule(static)
        for (int c = 0; c < channels; c++) {
            if (ready) {
                for (int t = 0; t < k * k; t++) sums[t] = 0.0;
                for (int b = 0; b < batch; b++) {
                    const uint16_t *x_plane = x + ((size_t)b * channels + c) * plane;
                    const uint16_t *g_plane = g + ((size_t)b * channels + c) * plane;
                    for (int y = 0; y < height; y++)
                        for (int u = 0; u < width; u++)
                            x_padded[(size_t)(y + pad) * row + u + pad] = bf16_to_float(x_plane[(size_t)y * width + u]);
                    memset(partial, 0, (size_t)k * k * LANES * sizeof(float));
                    for (int y = 0; y < height; y++) {
                        for (int u = 0; u < width; u++) g_row[u] = bf16_to_float(g_plane[(size_t)y * width + u]);
                        for (int i = 0; i < k; i++) {
                            const float *x_row = x_padded + (size_t)(y + i) * row;
                            for (int j = 0; j < k; j++) {
                                float *lane_sums = partial + (size_t)(i * k + j) * LANES;
                                for (int u = 0; u < lanes_width; u += LANES) {
#pragma omp simd
                                    for (int l = 0; l < LANES; l++) lane_sums[l] += g_row[u + l] * x_row[u + l + j];
                                }
                            }
                        }
                    }
                    for (int t = 0; t < k * k; t++)
                        for (int l = 0; l < LANES; l++) sums[t] += partial[(size_t)t * LANES + l];
                }
                for (int t = 0; t < k * k; t++) out[(size_t)c * k * k + t] = (float)sums[t];
            }
        }
        free(x_padded);
        free(g_row);
        free(partial);
        free(sums);
    }
    return failed;
}
