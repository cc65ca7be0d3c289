/* Functions that are too easy to misuse; including this makes them compile errors (git's banned.h). */
#ifndef GC_BANNED_H
#define GC_BANNED_H

#define GC_BANNED(func) sorry_##func##_is_banned_in_govcloud

#undef strcpy
#define strcpy(x, y) GC_BANNED(strcpy)
#undef strcat
#define strcat(x, y) GC_BANNED(strcat)
#undef strncpy
#define strncpy(x, y, n) GC_BANNED(strncpy)
#undef sprintf
#define sprintf(...) GC_BANNED(sprintf)
#undef vsprintf
#define vsprintf(...) GC_BANNED(vsprintf)
#undef gets
#define gets(x) GC_BANNED(gets)
#undef strtok
#define strtok(x, y) GC_BANNED(strtok)

#endif
