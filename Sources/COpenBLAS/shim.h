// OpenBLAS's CBLAS interface and its thread controls (openblas_set_num_threads,
// openblas_get_num_threads, openblas_get_corename), found through pkg-config
// `openblas` (Debian's libopenblas-dev puts cblas.h under an alternatives path).
#include <cblas.h>
