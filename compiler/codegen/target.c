/* target.c: the LLVM target machine for the host (or --cpu), the verifier and the optimizer.
 *
 * The CPU is LLVM's host CPU name, except that LLVM 16 calls some AVX-512 machines (newer
 * than it knows) "generic", which would throw away the vector units; then the host features
 * decide: with +avx512f we use "znver4" (the AVX-512 CPU LLVM 16 models best). The host's
 * feature string is passed as well, so the target never claims what the host lacks. Code is
 * position-independent: Debian's cc links PIE executables.
 */
#include "codegen/cg.h"

#include <llvm-c/Analysis.h>
#include <llvm-c/Transforms/PassBuilder.h>
#include <stdio.h>
#include <string.h>

static void init_llvm_targets(void) {
    /* Idempotent in LLVM; called before every use so no global "initialized" flag is needed. */
    LLVMInitializeNativeTarget();
    LLVMInitializeNativeAsmPrinter();
    LLVMInitializeNativeAsmParser();
}

const char *snn_codegen_host_features(snn_arena *a) {
    char *f = LLVMGetHostCPUFeatures();
    const char *r = snn_strndup(a, f ? f : "", f ? strlen(f) : 0);
    LLVMDisposeMessage(f);
    return r;
}

const char *snn_codegen_host_cpu(snn_arena *a) {
    char *cpu = LLVMGetHostCPUName();
    const char *r = snn_strndup(a, cpu, strlen(cpu));
    LLVMDisposeMessage(cpu);
    if (strcmp(r, "generic") == 0) {
        const char *f = snn_codegen_host_features(a);
        if (strstr(f, "+avx512f")) r = "znver4";
    }
    return r;
}

bool cg_target_init(cg_ctx *c, const snn_codegen_options *o) {
    init_llvm_targets();
    char *triple = LLVMGetDefaultTargetTriple();
    char *err = NULL;
    LLVMTargetRef target;
    if (LLVMGetTargetFromTriple(triple, &target, &err)) {
        snn_error(c->diag, cg_noloc(c), "no LLVM target for '%s': %s", triple, err ? err : "?");
        LLVMDisposeMessage(err);
        LLVMDisposeMessage(triple);
        return false;
    }
    const char *cpu = o->cpu ? o->cpu : snn_codegen_host_cpu(c->arena);
    const char *features = o->features ? o->features
                         : o->cpu ? "" : snn_codegen_host_features(c->arena);
    LLVMCodeGenOptLevel lvl = o->opt_level <= 0 ? LLVMCodeGenLevelNone
                            : o->opt_level == 1 ? LLVMCodeGenLevelLess
                            : o->opt_level == 2 ? LLVMCodeGenLevelDefault
                                                : LLVMCodeGenLevelAggressive;
    c->tm = LLVMCreateTargetMachine(target, triple, cpu, features, lvl, LLVMRelocPIC,
                                    LLVMCodeModelDefault);
    if (!c->tm) {
        snn_error(c->diag, cg_noloc(c), "cannot create a target machine for cpu '%s'", cpu);
        LLVMDisposeMessage(triple);
        return false;
    }
    LLVMSetTarget(c->mod, triple);
    c->td = LLVMCreateTargetDataLayout(c->tm);
    LLVMSetModuleDataLayout(c->mod, c->td);
    LLVMDisposeMessage(triple);
    return true;
}

static bool verify(cg_ctx *c, const char *when) {
    char *msg = NULL;
    bool bad = LLVMVerifyModule(c->mod, LLVMReturnStatusAction, &msg);
    if (bad)
        snn_internal_error(c->diag, cg_noloc(c), "LLVM module does not verify %s: %s", when,
                           msg ? msg : "?");
    LLVMDisposeMessage(msg);
    return !bad;
}

bool cg_optimize(cg_ctx *c, const snn_codegen_options *o) {
    if (o->verify && !verify(c, "after lowering")) return false;
    if (o->opt_level <= 0) return true;
    LLVMPassBuilderOptionsRef po = LLVMCreatePassBuilderOptions();
    LLVMPassBuilderOptionsSetLoopVectorization(po, 1);
    LLVMPassBuilderOptionsSetSLPVectorization(po, 1);
    LLVMPassBuilderOptionsSetLoopUnrolling(po, 1);
    char pipeline[32];
    snprintf(pipeline, sizeof pipeline, "default<O%d>", o->opt_level > 3 ? 3 : o->opt_level);
    LLVMErrorRef e = LLVMRunPasses(c->mod, pipeline, c->tm, po);
    LLVMDisposePassBuilderOptions(po);
    if (e) {
        char *msg = LLVMGetErrorMessage(e);
        snn_internal_error(c->diag, cg_noloc(c), "LLVM optimizer failed: %s", msg);
        LLVMDisposeErrorMessage(msg);
        return false;
    }
    if (o->verify && !verify(c, "after optimization")) return false;
    return true;
}
