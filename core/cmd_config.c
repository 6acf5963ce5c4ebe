#include "config.h"
#include "cmd.h"
int pz_cmd_config(int argc, char **argv)
{
    (void)argc; (void)argv;
    pz_cmd_fail("config: not built yet");
    return PZ_EXIT_USAGE;
}
