#ifndef DISTILLD_CJANSSON_SHIM_H
#define DISTILLD_CJANSSON_SHIM_H
#include <jansson.h>
#include <stdlib.h>

/* jansson's type tests are macros, which Swift cannot import. */
static inline int cj_is_object(const json_t *j) { return json_is_object(j); }
static inline int cj_is_array(const json_t *j) { return json_is_array(j); }
static inline int cj_is_string(const json_t *j) { return json_is_string(j); }
static inline int cj_is_integer(const json_t *j) { return json_is_integer(j); }
static inline int cj_is_real(const json_t *j) { return json_is_real(j); }
static inline int cj_is_true(const json_t *j) { return json_is_true(j); }
static inline int cj_is_false(const json_t *j) { return json_is_false(j); }
static inline int cj_is_null(const json_t *j) { return json_is_null(j); }
static inline json_t *cj_incref(json_t *j) { return json_incref(j); }
static inline void cj_decref(json_t *j) { json_decref(j); }

/* Why json_loadb failed (jansson >= 2.11); an inline function upstream, wrapped for a plain int. */
static inline int cj_error_code(const json_error_t *e) { return (int)json_error_code(e); }
static inline int cj_error_out_of_memory(void) { return json_error_out_of_memory; }
static inline int cj_error_stack_overflow(void) { return json_error_stack_overflow; }
static inline int cj_error_numeric_overflow(void) { return json_error_numeric_overflow; }

/* Flags, also macros upstream. */
static inline size_t cj_decode_flags(void) { return JSON_DECODE_ANY | JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL; }
static inline size_t cj_encode_flags(void) { return JSON_COMPACT | JSON_REAL_PRECISION(17) | JSON_ENCODE_ANY; }
static inline size_t cj_encode_flags_sorted(void) { return JSON_COMPACT | JSON_REAL_PRECISION(17) | JSON_ENCODE_ANY | JSON_SORT_KEYS; }
static inline size_t cj_encode_flags_pretty(void) { return JSON_INDENT(2) | JSON_REAL_PRECISION(17) | JSON_ENCODE_ANY | JSON_SORT_KEYS; }

#endif
