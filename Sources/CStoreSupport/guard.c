#define _GNU_SOURCE
#include "CStoreSupport.h"

#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

// The table is read inside a signal handler: fixed size, no locks, atomics only.
// A slot is published by storing its range first and `state` (1 = live) last;
// it is retired by storing state 0 before the memory is unmapped.
#define SLOTS 4096

struct slot {
    _Atomic int state;  // 0 free, 1 live, 2 being claimed
    _Atomic uintptr_t base;
    _Atomic size_t length;
    _Atomic int truncated;
};

static struct slot table[SLOTS];
static _Atomic unsigned long absorbed;
static _Atomic int installed;
static struct sigaction previous;

static void on_sigbus(int sig, siginfo_t *info, void *context) {
    uintptr_t addr = (uintptr_t)info->si_addr;
    for (int i = 0; i < SLOTS; i++) {
        if (atomic_load(&table[i].state) != 1) continue;
        uintptr_t base = atomic_load(&table[i].base);
        size_t length = atomic_load(&table[i].length);
        if (addr < base || addr - base >= length) continue;
        long page = sysconf(_SC_PAGESIZE);
        uintptr_t start = addr & ~((uintptr_t)page - 1);
        void *p = mmap((void *)start, (size_t)page, PROT_READ, MAP_FIXED | MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) break;
        atomic_store(&table[i].truncated, 1);
        atomic_fetch_add(&absorbed, 1);
        return;  // the read is retried and now sees zeros
    }
    // Not ours: hand over to what was installed before us.
    if ((previous.sa_flags & SA_SIGINFO) && previous.sa_sigaction != NULL) {
        previous.sa_sigaction(sig, info, context);
        return;
    }
    if (previous.sa_handler != SIG_DFL && previous.sa_handler != SIG_IGN && previous.sa_handler != NULL) {
        previous.sa_handler(sig);
        return;
    }
    // Default action: reinstate it; returning re-executes the access, which faults again and ends the process.
    signal(SIGBUS, SIG_DFL);
}

int distill_store_install_sigbus_handler(void) {
    int expected = 0;
    if (!atomic_compare_exchange_strong(&installed, &expected, 1)) return 0;
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_sigaction = on_sigbus;
    action.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_NODEFER;
    sigemptyset(&action.sa_mask);
    if (sigaction(SIGBUS, &action, &previous) != 0) {
        atomic_store(&installed, 0);
        return -1;
    }
    return 0;
}

int distill_store_register_mapping(const void *base, size_t length) {
    for (int i = 0; i < SLOTS; i++) {
        int expected = 0;
        if (!atomic_compare_exchange_strong(&table[i].state, &expected, 2)) continue;
        atomic_store(&table[i].base, (uintptr_t)base);
        atomic_store(&table[i].length, length);
        atomic_store(&table[i].truncated, 0);
        atomic_store(&table[i].state, 1);
        return i;
    }
    return -1;
}

void distill_store_unregister_mapping(int slot) {
    if (slot < 0 || slot >= SLOTS) return;
    atomic_store(&table[slot].state, 0);
}

int distill_store_mapping_truncated(int slot) {
    if (slot < 0 || slot >= SLOTS) return 0;
    return atomic_load(&table[slot].truncated);
}

unsigned long distill_store_absorbed_faults(void) { return atomic_load(&absorbed); }
