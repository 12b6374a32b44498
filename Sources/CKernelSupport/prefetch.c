// The helpers are static inline functions in include/CKernelSupport.h; this
// file only gives SwiftPM a C source to build the target from.
#include "CKernelSupport.h"
