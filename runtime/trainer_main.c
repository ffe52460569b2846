/* trainer_main.c: `main` of every generated trainer.
 *
 * Kept apart from the rest of libsnnrt.a so that the archive member holding `main` is pulled
 * in only when nothing else defines one: `cc model.o libsnnrt.a ...` gives the trainer, while a
 * test harness with its own main links the same library and calls the entry points itself.
 * This is also the one place in the runtime that turns errors into exit statuses
 * (snnrt_lib.h: 0 ok, 1 error, 2 bad flag or value, 3 non-finite loss).
 */
#include "snnrt_lib.h"

#include <string.h>

int main(int argc, char **argv) {
    const char *prog = argc > 0 ? strrchr(argv[0], '/') : NULL;
    prog = prog ? prog + 1 : (argc > 0 ? argv[0] : "train");
    snnrt_options opt;
    snnrt_error err = {{0}};
    if (snnrt_cli_parse(argc, argv, &opt, &err) != 0) {
        fprintf(stderr, "%s: error: %s\n", prog, err.msg);
        return SNNRT_EXIT_USAGE;
    }
    if (opt.help) {
        snnrt_cli_help(stdout, prog, &snn_model);
        return SNNRT_EXIT_OK;
    }
    int status = snnrt_run(&snn_model, &opt, stdout, stderr, &err);
    if (status != SNNRT_EXIT_OK) fprintf(stderr, "%s: error: %s\n", prog, err.msg);
    return status;
}
