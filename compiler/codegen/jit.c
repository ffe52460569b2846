/* jit.c: the generated module compiled in memory with ORC's LLJIT, for tests (and a future
 * `snnc --run`): the same plan, lowering and O3 pipeline as snn_codegen, then LLJIT instead of
 * an object file. The caller gets the `snn_model` descriptor and calls its entry points
 * directly; runtime services the generated code needs (snnrt_sgemm, snnrt_sgemm_bias,
 * snnrt_transpose, snnrt_uniform, snnrt_uniform_fill) are bound to addresses the caller gives,
 * so a unit test does not depend on which runtime objects its executable happened to link.
 * Everything else (expf, memcpy) resolves in the process.
 */
#include "codegen/cg.h"

#include <llvm-c/Error.h>
#include <llvm-c/LLJIT.h>
#include <llvm-c/Orc.h>
#include <stdlib.h>

#include "snnrt.h"

struct snn_jit {
    LLVMOrcLLJITRef jit;
    const snn_model_desc *model;
};

static bool orc_ok(snn_diag *d, snn_loc loc, LLVMErrorRef e, const char *what) {
    if (!e) return true;
    char *msg = LLVMGetErrorMessage(e);
    snn_error(d, loc, "JIT: %s: %s", what, msg);
    LLVMDisposeErrorMessage(msg);
    return false;
}

snn_jit *snn_jit_compile(snn_arena *a, snn_diag *d, const snn_ir_module *m,
                         const snn_codegen_options *o, const snn_jit_symbol *syms, int n_syms) {
    snn_codegen_options defaults;
    if (!o) { snn_codegen_options_default(&defaults); o = &defaults; }
    LLVMOrcThreadSafeContextRef tsc = LLVMOrcCreateNewThreadSafeContext();
    cg_ctx c;
    snn_jit *j = NULL;
    LLVMOrcLLJITRef jit = NULL;
    snn_loc loc = {m->source_file, 0, 0};
    if (!cg_build(&c, a, d, m, o, LLVMOrcThreadSafeContextGetContext(tsc))) goto fail;

    LLVMOrcJITTargetMachineBuilderRef jtmb =
        LLVMOrcJITTargetMachineBuilderCreateFromTargetMachine(c.tm);
    c.tm = NULL;   /* taken by the builder */
    LLVMOrcLLJITBuilderRef bld = LLVMOrcCreateLLJITBuilder();
    LLVMOrcLLJITBuilderSetJITTargetMachineBuilder(bld, jtmb);
    if (!orc_ok(d, loc, LLVMOrcCreateLLJIT(&jit, bld), "cannot create LLJIT")) goto fail;
    LLVMOrcJITDylibRef jd = LLVMOrcLLJITGetMainJITDylib(jit);

    LLVMOrcDefinitionGeneratorRef gen = NULL;
    if (!orc_ok(d, loc, LLVMOrcCreateDynamicLibrarySearchGeneratorForProcess(
                            &gen, LLVMOrcLLJITGetGlobalPrefix(jit), NULL, NULL),
                "process symbols"))
        goto fail;
    LLVMOrcJITDylibAddGenerator(jd, gen);
    if (n_syms > 0) {
        LLVMOrcCSymbolMapPair *pairs = calloc((size_t)n_syms, sizeof *pairs);
        for (int i = 0; i < n_syms; i++) {
            pairs[i].Name = LLVMOrcLLJITMangleAndIntern(jit, syms[i].name);
            pairs[i].Sym.Address = (LLVMOrcExecutorAddress)(uintptr_t)syms[i].addr;
            pairs[i].Sym.Flags.GenericFlags =
                LLVMJITSymbolGenericFlagsExported | LLVMJITSymbolGenericFlagsCallable;
        }
        LLVMOrcMaterializationUnitRef mu = LLVMOrcAbsoluteSymbols(pairs, (size_t)n_syms);
        free(pairs);
        LLVMErrorRef e = LLVMOrcJITDylibDefine(jd, mu);
        if (e) LLVMOrcDisposeMaterializationUnit(mu);
        if (!orc_ok(d, loc, e, "defining runtime symbols")) goto fail;
    }
    LLVMOrcThreadSafeModuleRef tsm = LLVMOrcCreateNewThreadSafeModule(c.mod, tsc);
    c.mod = NULL;   /* owned by tsm, then by the JIT */
    if (!orc_ok(d, loc, LLVMOrcLLJITAddLLVMIRModule(jit, jd, tsm), "adding the module")) {
        LLVMOrcDisposeThreadSafeModule(tsm);
        goto fail;
    }
    LLVMOrcExecutorAddress addr = 0;
    if (!orc_ok(d, loc, LLVMOrcLLJITLookup(jit, &addr, "snn_model"), "looking up snn_model"))
        goto fail;
    j = calloc(1, sizeof *j);
    j->jit = jit;
    j->model = (const snn_model_desc *)(uintptr_t)addr;
    cg_ctx_dispose(&c);
    LLVMOrcDisposeThreadSafeContext(tsc);
    return j;

fail:
    cg_ctx_dispose(&c);
    if (jit) LLVMOrcDisposeLLJIT(jit);
    LLVMOrcDisposeThreadSafeContext(tsc);
    return NULL;
}

const struct snn_model_desc *snn_jit_model(snn_jit *j) { return j ? j->model : NULL; }

void snn_jit_free(snn_jit *j) {
    if (!j) return;
    LLVMErrorRef e = LLVMOrcDisposeLLJIT(j->jit);
    if (e) LLVMConsumeError(e);
    free(j);
}
