// Guards for memory-mapped files that may shrink while mapped.
//
// A file mapped with mmap that is truncated afterwards raises SIGBUS when a page
// past its new end is read. distilld maps teacher files that users may rewrite
// (np.save to the same path), so a read past the new end must not kill the
// daemon: mappings are registered here, and a SIGBUS inside a registered mapping
// puts a zero page over the faulting page and marks the mapping truncated; the
// read then sees zeros and the store refuses the result. A SIGBUS anywhere else
// goes to the handler that was there before (or the default action: a crash).
#ifndef DISTILL_CSTORESUPPORT_H
#define DISTILL_CSTORESUPPORT_H

#include <stddef.h>

/// Installs the SIGBUS handler once (later calls do nothing). Returns 0, or -1
/// when sigaction fails.
int distill_store_install_sigbus_handler(void);

/// Registers [base, base + length) and returns its slot, or -1 when the table
/// (4096 slots) is full: the mapping then has no guard.
int distill_store_register_mapping(const void *base, size_t length);

/// Removes a slot; call before unmapping.
void distill_store_unregister_mapping(int slot);

/// Whether a SIGBUS has been absorbed in this slot's mapping since registration.
int distill_store_mapping_truncated(int slot);

/// How many SIGBUS faults have been absorbed in total (any slot).
unsigned long distill_store_absorbed_faults(void);

#endif
