/* trainer_main.c: `main` of every generated trainer.
 *
 * Kept apart from the rest of libsnnrt.a so that the archive member holding `main` is pulled
 * in only when nothing else defines one: `cc model.o libsnnrt.a ...` gives the trainer, while a
 * test harness with its own main links the same library and calls the entry points itself.
 * This is also the one place in the runtime that turns errors into exit statuses
 * (snnrt_lib.h: 0 ok, 1 error, 2 bad flag or value, 3 non-finite loss, 130 interrupted), and
 * the one place that installs signal handlers: the first SIGINT or SIGTERM asks the loop to
 * stop after the current iteration and checkpoint (--save); a second one ends it at once.
 */
#include "snnrt_lib.h"

#include <signal.h>
#include <string.h>

static volatile sig_atomic_t stop_requested;

/* First SIGINT/SIGTERM: ask the loop to stop after this iteration (and checkpoint); a second
 * one kills the process as usual. */
static void on_signal(int sig) {
    if (stop_requested) {
        signal(sig, SIG_DFL);
        raise(sig);
        return;
    }
    stop_requested = 1;
}

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
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    opt.stop = &stop_requested;
    int status = snnrt_run(&snn_model, &opt, stdout, stderr, &err);
    if (status != SNNRT_EXIT_OK) fprintf(stderr, "%s: error: %s\n", prog, err.msg);
    return status;
}
