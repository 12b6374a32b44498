// Small C helpers the Swift kernels cannot express: a software prefetch.
#ifndef DISTILL_CKERNELSUPPORT_H
#define DISTILL_CKERNELSUPPORT_H

/// Asks the CPU to bring the cache line holding `p` into cache (for reading,
/// kept in all levels). A hint: it never faults, whatever `p` is.
static inline void distill_prefetch(const void *p) { __builtin_prefetch(p, 0, 3); }

/// The same for a line about to be written (prefetchw).
static inline void distill_prefetch_write(const void *p) { __builtin_prefetch(p, 1, 3); }

#endif
