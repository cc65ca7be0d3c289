/* Wall-clock and monotonic time, RFC 3339 formatting and parsing (UTC, milliseconds). */
#ifndef GC_TIMEUTIL_H
#define GC_TIMEUTIL_H

#include <stddef.h>
#include <stdint.h>

int64_t gc_now_ms(void);       /* Unix time in milliseconds */
int64_t gc_mono_ns(void);      /* monotonic clock in nanoseconds */
/* "2026-11-25T13:22:09.123Z"; buf needs 25 bytes. */
void gc_time_format_rfc3339(int64_t ms, char *buf, size_t cap);
/* Accepts RFC 3339 with Z or ±hh:mm and optional fraction; 0 on success, -1 otherwise. */
int gc_time_parse_rfc3339(const char *s, int64_t *ms);

#endif
