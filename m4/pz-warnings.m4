# PZ_WARNINGS: probe and enable compiler warnings; the tree builds without any.
AC_DEFUN([PZ_WARNINGS], [
  AX_APPEND_COMPILE_FLAGS_PZ([-std=gnu11 -Wall -Wextra -Wformat=2 -Wshadow -Wpointer-arith -Wstrict-prototypes -Wmissing-prototypes -Wvla -Wno-unused-parameter -Wno-missing-field-initializers -Wimplicit-fallthrough -Wundef -Werror=implicit-function-declaration -fno-strict-aliasing], [PZ_WARN_CFLAGS])
  AC_ARG_ENABLE([werror],
    [AS_HELP_STRING([--enable-werror], [treat warnings as errors])],
    [], [enable_werror=no])
  AS_IF([test "x$enable_werror" = xyes], [PZ_WARN_CFLAGS="$PZ_WARN_CFLAGS -Werror"])
  AC_SUBST([PZ_WARN_CFLAGS])
])

# AX_APPEND_COMPILE_FLAGS_PZ(FLAGS, VAR): append each flag the compiler accepts.
AC_DEFUN([AX_APPEND_COMPILE_FLAGS_PZ], [
  for pz_flag in $1; do
    AC_MSG_CHECKING([whether $CC accepts $pz_flag])
    pz_save_CFLAGS=$CFLAGS
    CFLAGS="$CFLAGS -Werror $pz_flag"
    AC_COMPILE_IFELSE([AC_LANG_PROGRAM([], [])],
      [AC_MSG_RESULT([yes]); $2="$$2 $pz_flag"],
      [AC_MSG_RESULT([no])])
    CFLAGS=$pz_save_CFLAGS
  done
])
