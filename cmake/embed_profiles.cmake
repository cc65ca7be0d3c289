# Embeds the sensor profiles (profiles/sensors/*.json) into one C source: the texts as
# gc_builtin_profiles[], their file names as gc_builtin_profile_files[].
file(GLOB files ${DIR}/*.json)
list(SORT files)
set(out "/* generated from ${DIR}; do not edit */\n#include <stddef.h>\n")
set(ptrs "")
set(names "")
set(i 0)
foreach(f ${files})
  file(READ ${f} hex HEX)
  string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," body "${hex}")
  string(REGEX REPLACE "((0x..,){20})" "\\1\n" body "${body}")
  get_filename_component(base ${f} NAME)
  string(APPEND out "static const unsigned char p${i}[] = {\n${body}0x00};\n")
  string(APPEND ptrs "(const char *)p${i}, ")
  string(APPEND names "\"${base}\", ")
  math(EXPR i "${i} + 1")
endforeach()
string(APPEND out "extern const char *const gc_builtin_profiles[];\n"
       "extern const char *const gc_builtin_profile_files[];\n"
       "extern const size_t gc_builtin_nprofiles;\n"
       "const char *const gc_builtin_profiles[] = {${ptrs}NULL};\n"
       "const char *const gc_builtin_profile_files[] = {${names}NULL};\n"
       "const size_t gc_builtin_nprofiles = ${i};\n")
file(WRITE ${OUT} "${out}")
