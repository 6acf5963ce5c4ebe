# PZ_CHECK_DEPS: find every library prozsec links to; when one is missing,
# stop and name the Debian package that provides it.
AC_DEFUN([PZ_REQUIRE_PKG], [
  PKG_CHECK_MODULES([$1], [$2], [],
    [AC_MSG_ERROR([$2 not found. On Debian/Ubuntu: apt-get install $3  (or run scripts/install-deps.sh as root)])])
])

AC_DEFUN([PZ_CHECK_DEPS], [
  PKG_PROG_PKG_CONFIG([0.29])
  AS_IF([test -z "$PKG_CONFIG"],
    [AC_MSG_ERROR([pkg-config not found. On Debian/Ubuntu: apt-get install pkg-config])])
  PZ_REQUIRE_PKG([GNUTLS], [gnutls >= 3.7.0], [libgnutls28-dev])
  PZ_REQUIRE_PKG([NETTLE], [nettle >= 3.7 hogweed], [nettle-dev])
  PZ_REQUIRE_PKG([GCRYPT], [libgcrypt >= 1.10], [libgcrypt20-dev])
  PZ_REQUIRE_PKG([YAML], [yaml-0.1 >= 0.2.2], [libyaml-dev])
  PZ_REQUIRE_PKG([GLIB], [glib-2.0 >= 2.66 gobject-2.0], [libglib2.0-dev])
  PZ_REQUIRE_PKG([CMOCKA], [cmocka >= 1.1], [libcmocka-dev])
  PZ_REQUIRE_PKG([JSONGLIB], [json-glib-1.0 >= 1.6], [libjson-glib-dev])

  dnl libltdl has no pkg-config file on Debian.
  AC_CHECK_HEADER([ltdl.h], [],
    [AC_MSG_ERROR([ltdl.h not found. On Debian/Ubuntu: apt-get install libltdl-dev])])
  AC_CHECK_LIB([ltdl], [lt_dladvise_init], [LTDL_LIBS=-lltdl],
    [AC_MSG_ERROR([libltdl not found. On Debian/Ubuntu: apt-get install libltdl-dev])])
  AC_SUBST([LTDL_LIBS])

  AC_CHECK_LIB([dl], [dlopen], [DL_LIBS=-ldl], [DL_LIBS=])
  AC_SUBST([DL_LIBS])

  dnl floor() and friends: gcc inlines them, clang calls libm.
  AC_CHECK_LIB([m], [floor], [LIBM=-lm], [LIBM=])
  AC_SUBST([LIBM])

  dnl Optional: the Prometheus metrics endpoint (metrics.listen).
  PKG_CHECK_MODULES([MHD], [libmicrohttpd >= 0.9.60],
    [AC_DEFINE([HAVE_MICROHTTPD], [1], [libmicrohttpd for the metrics endpoint]) have_mhd=yes],
    [have_mhd=no; AC_MSG_WARN([libmicrohttpd not found: no metrics endpoint (apt-get install libmicrohttpd-dev)])])

  AC_PATH_PROG([GNUTLS_CLI], [gnutls-cli], [])
  AC_PATH_PROG([OPENSSL], [openssl], [])
  AC_PATH_PROG([CERTTOOL], [certtool], [])
])
