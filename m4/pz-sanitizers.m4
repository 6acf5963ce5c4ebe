# PZ_SANITIZERS: --enable-sanitizers builds everything with ASan + UBSan.
AC_DEFUN([PZ_SANITIZERS], [
  AC_ARG_ENABLE([sanitizers],
    [AS_HELP_STRING([--enable-sanitizers], [build with AddressSanitizer and UndefinedBehaviorSanitizer])],
    [], [enable_sanitizers=no])
  PZ_SAN_CFLAGS=
  PZ_SAN_LDFLAGS=
  AS_IF([test "x$enable_sanitizers" = xyes], [
    PZ_SAN_CFLAGS="-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer -g"
    PZ_SAN_LDFLAGS="-fsanitize=address,undefined"
    pz_save_CFLAGS=$CFLAGS; pz_save_LDFLAGS=$LDFLAGS
    CFLAGS="$CFLAGS $PZ_SAN_CFLAGS"; LDFLAGS="$LDFLAGS $PZ_SAN_LDFLAGS"
    AC_LINK_IFELSE([AC_LANG_PROGRAM([], [])], [],
      [AC_MSG_ERROR([$CC cannot build with -fsanitize=address,undefined; on Debian gcc needs libasan8 and libubsan1 (apt-get install gcc)])])
    CFLAGS=$pz_save_CFLAGS; LDFLAGS=$pz_save_LDFLAGS
  ])
  AC_SUBST([PZ_SAN_CFLAGS])
  AC_SUBST([PZ_SAN_LDFLAGS])
  AM_CONDITIONAL([SANITIZERS], [test "x$enable_sanitizers" = xyes])
])
