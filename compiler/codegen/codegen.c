/* codegen.c: the codegen driver: context lifetime, emission of LLVM text, assembly and
 * objects, and the link step that makes a trainer executable.
 *
 *     plan (plan.c) -> lower (lower.c, desc.c) -> verify + optimize (target.c) -> emit / link
 *
 * Every LLVM object is owned by the cg_ctx and disposed in cg_ctx_dispose, on success and on
 * every failure path, so in-process tests that compile many modules do not leak.
 *
 * Linking runs `cc` directly (posix_spawnp, no shell), with the runtime library found next to
 * the running snnc (build/snnc beside build/libsnnrt.a) unless SNNC_RUNTIME_DIR or the options
 * say otherwise.
 */
#include "codegen/cg.h"

#include <errno.h>
#include <limits.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

void snn_codegen_options_default(snn_codegen_options *o) {
    memset(o, 0, sizeof *o);
    o->opt_level = 3;
}

bool cg_ctx_init(cg_ctx *c, snn_arena *a, snn_diag *d, const snn_ir_module *m,
                 const snn_codegen_options *o, LLVMContextRef ctx) {
    memset(c, 0, sizeof *c);
    c->arena = a;
    c->diag = d;
    c->m = m;
    c->own_ctx = ctx == NULL;
    c->ctx = ctx ? ctx : LLVMContextCreate();
    c->mod = LLVMModuleCreateWithNameInContext(m->name ? m->name : "snn", c->ctx);
    if (m->source_file) LLVMSetSourceFileName(c->mod, m->source_file, strlen(m->source_file));
    c->b = LLVMCreateBuilderInContext(c->ctx);
    c->t_void = LLVMVoidTypeInContext(c->ctx);
    c->t_i1 = LLVMInt1TypeInContext(c->ctx);
    c->t_i32 = LLVMInt32TypeInContext(c->ctx);
    c->t_i64 = LLVMInt64TypeInContext(c->ctx);
    c->t_f32 = LLVMFloatTypeInContext(c->ctx);
    c->t_ptr = LLVMPointerTypeInContext(c->ctx, 0);
    if (!cg_plan_build(a, d, m, o->time_loops, o, &c->plan)) return false;
    return cg_target_init(c, o);
}

void cg_ctx_dispose(cg_ctx *c) {
    if (c->b) LLVMDisposeBuilder(c->b);
    if (c->mod) LLVMDisposeModule(c->mod);
    if (c->td) LLVMDisposeTargetData(c->td);
    if (c->tm) LLVMDisposeTargetMachine(c->tm);
    if (c->ctx && c->own_ctx) LLVMContextDispose(c->ctx);
    free(c->plan.groups);
    free(c->plan.bufs);
    memset(c, 0, sizeof *c);
}

bool cg_build(cg_ctx *c, snn_arena *a, snn_diag *d, const snn_ir_module *m,
              const snn_codegen_options *o, LLVMContextRef ctx) {
    if (!cg_ctx_init(c, a, d, m, o, ctx)) return false;
    if (!cg_lower_module(c)) return false;
    return cg_optimize(c, o);
}

static bool write_all(snn_diag *d, snn_loc loc, const char *path, const char *data, size_t n) {
    bool to_stdout = strcmp(path, "-") == 0;
    FILE *f = to_stdout ? stdout : fopen(path, "wb");
    if (!f) {
        snn_error(d, loc, "cannot write '%s': %s", path, strerror(errno));
        return false;
    }
    bool ok = fwrite(data, 1, n, f) == n;
    ok = (to_stdout ? fflush(f) == 0 : fclose(f) == 0) && ok;
    if (!ok) snn_error(d, loc, "cannot write '%s': %s", path, strerror(errno));
    return ok;
}

static bool emit_machine(cg_ctx *c, LLVMCodeGenFileType ft, const char *path) {
    char *err = NULL;
    if (strcmp(path, "-") == 0) {
        LLVMMemoryBufferRef buf = NULL;
        if (LLVMTargetMachineEmitToMemoryBuffer(c->tm, c->mod, ft, &err, &buf)) {
            snn_error(c->diag, cg_noloc(c), "code generation failed: %s", err ? err : "?");
            LLVMDisposeMessage(err);
            return false;
        }
        bool ok = write_all(c->diag, cg_noloc(c), path, LLVMGetBufferStart(buf),
                            LLVMGetBufferSize(buf));
        LLVMDisposeMemoryBuffer(buf);
        return ok;
    }
    if (LLVMTargetMachineEmitToFile(c->tm, c->mod, (char *)path, ft, &err)) {
        snn_error(c->diag, cg_noloc(c), "cannot write '%s': %s", path, err ? err : "?");
        LLVMDisposeMessage(err);
        return false;
    }
    return true;
}

/* The directory holding libsnnrt.a (see codegen.h), in the arena. */
static const char *runtime_dir(snn_arena *a, const snn_codegen_options *o) {
    if (o->runtime_dir) return o->runtime_dir;
    const char *env = getenv("SNNC_RUNTIME_DIR");
    if (env && *env) return env;
    char buf[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
    if (n <= 0) return ".";
    buf[n] = 0;
    char *slash = strrchr(buf, '/');
    if (slash) *slash = 0;
    return snn_strndup(a, buf, strlen(buf));
}

static bool link_exe(cg_ctx *c, const snn_codegen_options *o, const char *obj,
                     const char *out) {
    const char *dir = runtime_dir(c->arena, o);
    const char *lib = snn_sprintf(c->arena, "%s/libsnnrt.a", dir);
    if (access(lib, R_OK) != 0) {
        snn_error(c->diag, cg_noloc(c), "runtime library '%s' not found (build it with `make`, "
                  "or set SNNC_RUNTIME_DIR to the directory that holds it)", lib);
        return false;
    }
    const char *cc = o->cc ? o->cc : getenv("CC");
    if (!cc || !*cc) cc = "cc";
    /* $CC may carry flags ("gcc -m64"): split it on spaces */
    char *ccw = snn_strndup(c->arena, cc, strlen(cc));
    const char *argv[64];
    int n = 0;
    for (char *save = NULL, *w = strtok_r(ccw, " \t", &save); w && n < 48;
         w = strtok_r(NULL, " \t", &save))
        argv[n++] = w;
    if (n == 0) argv[n++] = "cc";
    const char *tail[] = {"-o", out, obj, lib, "-lopenblas", "-lz", "-lm", "-fopenmp"};
    for (size_t i = 0; i < sizeof tail / sizeof *tail; i++) argv[n++] = tail[i];
    argv[n] = NULL;
    char *cmd = "";
    for (int i = 0; i < n; i++) cmd = snn_sprintf(c->arena, "%s%s%s", cmd, i ? " " : "", argv[i]);
    pid_t pid;
    int rc = posix_spawnp(&pid, argv[0], NULL, NULL, (char *const *)argv, environ);
    if (rc != 0) {
        snn_error(c->diag, cg_noloc(c), "cannot run the linker '%s': %s", argv[0], strerror(rc));
        return false;
    }
    int status = 0;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR) {
            snn_error(c->diag, cg_noloc(c), "waiting for the linker: %s", strerror(errno));
            return false;
        }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        snn_error(c->diag, cg_noloc(c), "linking failed (%s %d): %s",
                  WIFEXITED(status) ? "exit status" : "signal",
                  WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status), cmd);
        return false;
    }
    return true;
}

bool snn_codegen(snn_arena *a, snn_diag *d, const snn_ir_module *m, const snn_codegen_options *o,
                 snn_emit_kind kind, const char *out_path) {
    snn_codegen_options defaults;
    if (!o) { snn_codegen_options_default(&defaults); o = &defaults; }
    cg_ctx c;
    bool ok = cg_build(&c, a, d, m, o, NULL);
    if (ok) {
        switch (kind) {
        case SNN_EMIT_LLVM: {
            char *s = LLVMPrintModuleToString(c.mod);
            ok = write_all(d, cg_noloc(&c), out_path, s, strlen(s));
            LLVMDisposeMessage(s);
            break;
        }
        case SNN_EMIT_ASM: ok = emit_machine(&c, LLVMAssemblyFile, out_path); break;
        case SNN_EMIT_OBJ:
            if (strcmp(out_path, "-") == 0) {
                snn_error(d, cg_noloc(&c), "will not write an object file to stdout");
                ok = false;
            } else ok = emit_machine(&c, LLVMObjectFile, out_path);
            break;
        case SNN_EMIT_EXE: {
            char tmp[] = "/tmp/snnc-XXXXXX.o";
            int fd = mkstemps(tmp, 2);
            if (fd < 0) {
                snn_error(d, cg_noloc(&c), "cannot create a temporary object file: %s",
                          strerror(errno));
                ok = false;
                break;
            }
            close(fd);
            ok = emit_machine(&c, LLVMObjectFile, tmp) && link_exe(&c, o, tmp, out_path);
            unlink(tmp);
            break;
        }
        }
    }
    cg_ctx_dispose(&c);
    return ok;
}
