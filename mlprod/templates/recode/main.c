/* The harness of mlprod's generated C (mlprod.export.recode): it includes model.c.
 * Reads CSV rows (numeric columns then categorical ones, no header; empty = missing) on stdin.
 * `model`: one line per row, label,p1,...,pC. `model bench R`: JSON with the median time of one
 * row (averaged over a loop) and of the whole batch, over R repeats. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include "model.c"

#define MAX_ROWS 1000000
static double now(void) {
    struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + 1e-9 * t.tv_nsec;
}
static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b; return (x > y) - (x < y);
}
static double median(double *v, int n) { qsort(v, n, sizeof *v, cmp); return v[n / 2]; }

int main(int argc, char **argv) {
    static char line[65536];
    int n = 0, cap = 1024, bench = argc > 2 && strcmp(argv[1], "bench") == 0;
    double (*num)[MLPROD_N_NUMERIC + 1] = malloc(cap * sizeof *num);
    char *(*cat)[MLPROD_N_CATEGORICAL + 1] = malloc(cap * sizeof *cat);
    while (fgets(line, sizeof line, stdin) && n < MAX_ROWS) {
        if (n == cap) {
            cap *= 2; num = realloc(num, cap * sizeof *num); cat = realloc(cat, cap * sizeof *cat);
        }
        line[strcspn(line, "\r\n")] = '\0';
        char *field = line;
        for (int j = 0; j < MLPROD_N_NUMERIC + MLPROD_N_CATEGORICAL; j++) {
            char *end = strchr(field, ',');
            if (end) *end = '\0';
            if (j < MLPROD_N_NUMERIC) num[n][j] = *field ? strtod(field, NULL) : NAN;
            else cat[n][j - MLPROD_N_NUMERIC] = strdup(field);
            field = end ? end + 1 : field + strlen(field);
        }
        n++;
    }
    double p[MLPROD_N_CLASSES];
    if (!bench) {
        for (int i = 0; i < n; i++) {
            mlprod_predict(num[i], (const char *const *)cat[i], p);
            int best = 0;
            for (int k = 1; k < MLPROD_N_CLASSES; k++) if (p[k] > p[best]) best = k;
            printf("%s", mlprod_classes[best]);
            for (int k = 0; k < MLPROD_N_CLASSES; k++) printf(",%.17g", p[k]);
            printf("\n");
        }
        return 0;
    }
    int repeats = atoi(argv[2]), loop = 10000;
    double *single = malloc(repeats * sizeof *single), *batch = malloc(repeats * sizeof *batch);
    volatile double sink = 0.0;
    for (int r = 0; r < repeats; r++) {
        double t0 = now();
        for (int i = 0; i < loop; i++) {
            mlprod_predict(num[0], (const char *const *)cat[0], p); sink += p[0];
        }
        single[r] = (now() - t0) / loop;
        t0 = now();
        for (int i = 0; i < n; i++) {
            mlprod_predict(num[i], (const char *const *)cat[i], p); sink += p[0];
        }
        batch[r] = now() - t0;
    }
    printf("{\"rows\": %d, \"single_seconds\": %.6g, \"batch_seconds\": %.6g}\n",
           n, median(single, repeats), median(batch, repeats));
    return 0;
}
