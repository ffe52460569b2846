/* desc.c: the one exported symbol of a generated object, `const snn_model_desc snn_model`
 * (runtime/snnrt.h), built as an LLVM constant.
 *
 * The LLVM struct types below mirror the C structs field by field; with the target's data
 * layout LLVM pads them exactly as the C compiler does (natural alignment, x86-64 SysV), so
 * the runtime reads the global through its own declaration. tests/unit/test_codegen.c checks
 * every field through the C declaration, which catches any drift of snnrt.h.
 */
#include "codegen/cg.h"

#include <string.h>

#include "snnrt.h"

static LLVMValueRef cstr(cg_ctx *c, const char *s, const char *name) {
    if (!s) return LLVMConstNull(c->t_ptr);
    LLVMValueRef init = LLVMConstStringInContext(c->ctx, s, (unsigned)strlen(s), 0);
    LLVMValueRef g = LLVMAddGlobal(c->mod, LLVMTypeOf(init), name);
    LLVMSetInitializer(g, init);
    LLVMSetGlobalConstant(g, 1);
    LLVMSetLinkage(g, LLVMPrivateLinkage);
    LLVMSetUnnamedAddress(g, LLVMGlobalUnnamedAddr);
    return g;
}

static LLVMValueRef i32v(cg_ctx *c, int64_t v) { return LLVMConstInt(c->t_i32, (unsigned long long)v, 1); }
static LLVMValueRef i64v(cg_ctx *c, int64_t v) { return LLVMConstInt(c->t_i64, (unsigned long long)v, 1); }
static LLVMValueRef f32v(cg_ctx *c, float v) { return LLVMConstReal(c->t_f32, v); }

void cg_emit_model_desc(cg_ctx *c, LLVMValueRef work_bytes, LLVMValueRef fwd_bwd,
                        LLVMValueRef fwd) {
    const snn_ir_module *m = c->m;
    LLVMTypeRef shape_ty = LLVMArrayType(c->t_i64, SNN_MAX_RANK);
    /* snn_param_desc { name, rank, shape[4], size, init, init_value, fan_in } */
    LLVMTypeRef pd_f[7] = {c->t_ptr, c->t_i32, shape_ty, c->t_i64, c->t_i32, c->t_f32, c->t_i64};
    LLVMTypeRef pd_ty = LLVMStructCreateNamed(c->ctx, "snn_param_desc");
    LLVMStructSetBody(pd_ty, pd_f, 7, 0);
    /* snn_train_defaults { data_dir, steps, batch, epochs, seed, optimizer, lr, beta1, beta2,
     *                      eps, weight_decay, momentum } */
    LLVMTypeRef td_f[12] = {c->t_ptr, c->t_i64, c->t_i64, c->t_i64, c->t_i64, c->t_i32,
                            c->t_f32, c->t_f32, c->t_f32, c->t_f32, c->t_f32, c->t_f32};
    LLVMTypeRef td_ty = LLVMStructCreateNamed(c->ctx, "snn_train_defaults");
    LLVMStructSetBody(td_ty, td_f, 12, 0);
    /* snn_model_desc { abi_version, model_name, source_file, n_inputs, n_classes, n_params,
     *                  params, defaults, loss_name, metric_name, work_bytes, forward_backward,
     *                  forward } */
    LLVMTypeRef md_f[13] = {c->t_i32, c->t_ptr, c->t_ptr, c->t_i64, c->t_i64, c->t_i32,
                            c->t_ptr, td_ty, c->t_ptr, c->t_ptr, c->t_ptr, c->t_ptr, c->t_ptr};
    LLVMTypeRef md_ty = LLVMStructCreateNamed(c->ctx, "snn_model_desc");
    LLVMStructSetBody(md_ty, md_f, 13, 0);

    LLVMValueRef *pds = snn_alloc(c->arena, sizeof(LLVMValueRef) * (size_t)(m->n_params + 1));
    for (int32_t i = 0; i < m->n_params; i++) {
        const snn_ir_param *p = &m->params[i];
        LLVMValueRef dims[SNN_MAX_RANK];
        int64_t size = 1;
        for (int k = 0; k < SNN_MAX_RANK; k++) {
            int64_t d = k < p->shape.rank ? p->shape.dim[k] : 0;
            dims[k] = i64v(c, d);
            if (k < p->shape.rank) size *= d;
        }
        LLVMValueRef f[7] = {
            cstr(c, p->name, snn_sprintf(c->arena, "param.%s.name", p->name)),
            i32v(c, p->shape.rank),
            LLVMConstArray(c->t_i64, dims, SNN_MAX_RANK),
            i64v(c, size),
            i32v(c, p->init == SNN_PINIT_UNIFORM_FAN_IN ? SNN_INIT_UNIFORM_FAN_IN : SNN_INIT_CONST),
            f32v(c, p->init_value),
            i64v(c, p->fan_in),
        };
        pds[i] = LLVMConstNamedStruct(pd_ty, f, 7);
    }
    LLVMValueRef params_arr = LLVMConstNull(c->t_ptr);
    if (m->n_params > 0) {
        LLVMValueRef init = LLVMConstArray(pd_ty, pds, (unsigned)m->n_params);
        params_arr = LLVMAddGlobal(c->mod, LLVMTypeOf(init), "snn_params");
        LLVMSetInitializer(params_arr, init);
        LLVMSetGlobalConstant(params_arr, 1);
        LLVMSetLinkage(params_arr, LLVMPrivateLinkage);
    }
    LLVMValueRef td[12] = {
        cstr(c, m->train.data_dir, "train.data_dir"),
        i64v(c, m->train.steps), i64v(c, m->train.batch), i64v(c, m->train.epochs),
        i64v(c, (int64_t)m->train.seed), i32v(c, m->train.optimizer),
        f32v(c, m->train.lr), f32v(c, m->train.beta1), f32v(c, m->train.beta2),
        f32v(c, m->train.eps), f32v(c, m->train.weight_decay), f32v(c, m->train.momentum),
    };
    LLVMValueRef md[13] = {
        i32v(c, SNN_ABI_VERSION),
        cstr(c, m->name, "model.name"),
        cstr(c, m->source_file, "model.source_file"),
        i64v(c, m->n_inputs), i64v(c, m->n_classes),
        i32v(c, m->n_params),
        params_arr,
        LLVMConstNamedStruct(td_ty, td, 12),
        cstr(c, m->loss_name, "model.loss_name"),
        cstr(c, m->metric_name, "model.metric_name"),
        work_bytes, fwd_bwd, fwd,
    };
    LLVMValueRef g = LLVMAddGlobal(c->mod, md_ty, "snn_model");
    LLVMSetInitializer(g, LLVMConstNamedStruct(md_ty, md, 13));
    LLVMSetGlobalConstant(g, 1);
    LLVMSetAlignment(g, 8);
}
