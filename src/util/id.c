/* UUIDv7 generation and validation. */
#include "util/id.h"

#include "util/error.h"
#include "util/timeutil.h"

#include <openssl/rand.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

void gc_random_bytes(void *buf, size_t n)
{
    if (RAND_bytes(buf, (int)n) != 1)
        GC_BUG("no random bytes from the OS");
}

/* RFC 9562 method 1: a 12-bit counter in rand_a keeps ids made in the same millisecond in
 * creation order within this process. */
static pthread_mutex_t id_lock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t last_ms;
static unsigned counter;

void gc_id_new(char out[GC_ID_LEN + 1])
{
    unsigned char b[16];
    uint64_t ms = (uint64_t)gc_now_ms();
    gc_random_bytes(b + 6, 10);
    pthread_mutex_lock(&id_lock);
    if (ms <= last_ms) {
        ms = last_ms;
        if (++counter > 0xfff) {
            ms++;
            counter = 0;
        }
    } else {
        counter = 0;
    }
    last_ms = ms;
    unsigned seq = counter;
    pthread_mutex_unlock(&id_lock);
    for (int i = 0; i < 6; i++)
        b[i] = (unsigned char)(ms >> (40 - 8 * i));
    b[6] = (unsigned char)(0x70 | ((seq >> 8) & 0x0f));
    b[7] = (unsigned char)(seq & 0xff);
    b[8] = (unsigned char)(0x80 | (b[8] & 0x3f));
    snprintf(out, GC_ID_LEN + 1,
             "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1],
             b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14],
             b[15]);
}

bool gc_id_valid(const char *s)
{
    if (!s || strlen(s) != GC_ID_LEN)
        return false;
    for (int i = 0; i < GC_ID_LEN; i++) {
        char c = s[i];
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (c != '-')
                return false;
        } else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
            return false;
        }
    }
    return true;
}

/* xorshift128+ per thread, seeded from the OS the first time a thread needs it */
static _Thread_local uint64_t rid_state[2];

void gc_request_id_new(char out[21])
{
    if (!rid_state[0] && !rid_state[1]) {
        gc_random_bytes(rid_state, sizeof(rid_state));
        rid_state[0] |= 1;
    }
    static const char hex[] = "0123456789abcdef";
    uint64_t ms = (uint64_t)gc_now_ms();
    uint64_t s1 = rid_state[0];
    const uint64_t s0 = rid_state[1];
    rid_state[0] = s0;
    s1 ^= s1 << 23;
    rid_state[1] = s1 ^ s0 ^ (s1 >> 17) ^ (s0 >> 26);
    uint64_t r = rid_state[1] + s0;
    /* 5 hex digits of time (ms, wraps every ~17 min) then 15 of randomness */
    for (int i = 0; i < 5; i++)
        out[i] = hex[(ms >> (16 - 4 * i)) & 15];
    for (int i = 0; i < 15; i++)
        out[5 + i] = hex[(r >> (4 * i)) & 15];
    out[20] = '\0';
}
