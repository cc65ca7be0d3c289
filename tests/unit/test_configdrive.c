/* Unit tests of src/drivers/configdrive.c: the NoCloud config drive is a well-formed ISO 9660
 * image with the cidata label, Rock Ridge and Joliet names, and the files' bytes. */
#define _GNU_SOURCE /* memmem */
#include "testutil.h"

#include "drivers/configdrive.h"
#include "util/mem.h"

static void iso_has_label_names_and_bytes(void **state)
{
    (void)state;
    const char *ud = "#cloud-config\nruncmd:\n  - echo hello\n";
    const char *md = "instance-id: \"abc\"\nlocal-hostname: \"web-1\"\n";
    struct gc_cd_file f[] = {{"user-data", ud, strlen(ud)}, {"meta-data", md, strlen(md)}};
    unsigned char *iso = NULL;
    size_t len = 0;
    struct gc_error err = {0};
    assert_int_equal(gc_configdrive_iso("cidata", f, 2, &iso, &len, &err), 0);
    assert_non_null(iso);
    assert_int_equal(len % 2048, 0);
    assert_true(len >= 0x8000 + 3 * 2048);
    /* the primary volume descriptor at sector 16: type 1, "CD001", the volume id at 40 */
    assert_int_equal(iso[0x8000], 1);
    assert_memory_equal(iso + 0x8001, "CD001", 5);
    assert_memory_equal(iso + 0x8000 + 40, "cidata", 6);
    assert_int_equal(iso[0x8000 + 46], ' ');
    /* a Joliet supplementary descriptor (type 2) follows */
    bool joliet = false;
    for (size_t s = 0x8800; s + 2048 <= len && iso[s] != 255; s += 2048)
        joliet |= iso[s] == 2 && memcmp(iso + s + 1, "CD001", 5) == 0;
    assert_true(joliet);
    /* Rock Ridge alternate names (NM entries) carry the real file names */
    assert_non_null(memmem(iso, len, "NM\x0e\x01\x00user-data", 14));
    assert_non_null(memmem(iso, len, "NM\x0e\x01\x00meta-data", 14));
    assert_non_null(memmem(iso, len, ud, strlen(ud)));
    assert_non_null(memmem(iso, len, md, strlen(md)));
    free(iso);
}

static void iso_holds_64_kib(void **state)
{
    (void)state;
    size_t n = 65536;
    char *big = gc_malloc(n);
    for (size_t i = 0; i < n; i++)
        big[i] = (char)('a' + i % 26);
    struct gc_cd_file f[] = {{"user-data", big, n}, {"meta-data", "", 0}};
    unsigned char *iso = NULL;
    size_t len = 0;
    struct gc_error err = {0};
    assert_int_equal(gc_configdrive_iso("cidata", f, 2, &iso, &len, &err), 0);
    assert_true(len > n);
    assert_non_null(memmem(iso, len, big, n));
    free(iso);
    free(big);
}

static void iso_refuses_duplicate_names(void **state)
{
    (void)state;
    struct gc_cd_file f[] = {{"user-data", "a", 1}, {"user-data", "b", 1}};
    unsigned char *iso = NULL;
    size_t len = 0;
    struct gc_error err = {0};
    assert_int_equal(gc_configdrive_iso("cidata", f, 2, &iso, &len, &err), GC_EINTERNAL);
    assert_null(iso);
    assert_non_null(strstr(err.msg, "user-data"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(iso_has_label_names_and_bytes),
        cmocka_unit_test(iso_holds_64_kib),
        cmocka_unit_test(iso_refuses_duplicate_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
