# PZ_FUZZING: --enable-fuzzing builds libFuzzer targets (needs clang and libclang-rt-14-dev).
AC_DEFUN([PZ_FUZZING], [
  AC_ARG_ENABLE([fuzzing],
    [AS_HELP_STRING([--enable-fuzzing], [build libFuzzer targets (CC=clang)])],
    [], [enable_fuzzing=no])
  PZ_FUZZ_CFLAGS=
  AS_IF([test "x$enable_fuzzing" = xyes], [
    PZ_FUZZ_CFLAGS="-fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer -g"
    pz_save_CFLAGS=$CFLAGS; pz_save_LDFLAGS=$LDFLAGS
    CFLAGS="$CFLAGS -fsanitize=fuzzer,address,undefined"
    AC_LINK_IFELSE([AC_LANG_SOURCE([[
#include <stddef.h>
#include <stdint.h>
int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { (void)d; (void)n; return 0; }
]])], [],
      [AC_MSG_ERROR([cannot link a libFuzzer target: configure with CC=clang and apt-get install clang libclang-rt-14-dev])])
    CFLAGS=$pz_save_CFLAGS; LDFLAGS=$pz_save_LDFLAGS
    dnl Instrument the whole tree (libpzcore, plugins), not only the targets,
    dnl so coverage guidance reaches the parsers under test.
    PZ_SAN_CFLAGS="$PZ_SAN_CFLAGS -fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer -g"
    PZ_SAN_LDFLAGS="$PZ_SAN_LDFLAGS -fsanitize=address,undefined"
  ])
  AC_SUBST([PZ_FUZZ_CFLAGS])
  AM_CONDITIONAL([FUZZING], [test "x$enable_fuzzing" = xyes])
])
