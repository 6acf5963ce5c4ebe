/* core/buildtree.h — let programs run from the build tree find the plugins
 * built next to them, without an install and without environment setup. */
#ifndef PZ_CORE_BUILDTREE_H
#define PZ_CORE_BUILDTREE_H

/* When the running executable lives in the top build directory it was
 * built in and PROZSEC_PLUGIN_PATH is unset, set PROZSEC_PLUGIN_PATH to
 * that build tree's plugins/.libs. An installed program is never in the
 * build directory, so this never changes installed behaviour. */
void pz_buildtree_setup(void);

#endif
