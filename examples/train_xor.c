/* train_xor.c — the README's example: a 2-8-1 network learns XOR with Adam. */
#include <stdio.h>
#include <tensorgan.h>

int main(void) {
    tg_ctx *ctx = tg_ctx_new(TG_CPU, 42);                 /* TG_CUDA runs it on the GPU */
    if (!ctx) { fprintf(stderr, "%s\n", tg_last_error()); return 1; }
    tg_module *net = tg_sequential(ctx);
    tg_sequential_add(net, tg_layer_dense(ctx, 2, 8, true));
    tg_sequential_add(net, tg_layer_tanh(ctx));
    tg_sequential_add(net, tg_layer_dense(ctx, 8, 1, true));
    tg_tensor *params[8];
    int n = tg_module_params(net, params, 8);
    tg_optim *adam = tg_adam(ctx, params, n, 0.05f, 0.9f, 0.999f, 1e-8f);

    const float xv[8] = {0, 0, 0, 1, 1, 0, 1, 1}, yv[4] = {0, 1, 1, 0};
    tg_tensor *x = tg_tensor_new4(ctx, 4, 2, 0, 0), *y = tg_tensor_new4(ctx, 4, 1, 0, 0);
    tg_tensor_write(x, xv, 8);
    tg_tensor_write(y, yv, 4);
    float loss = 0;
    for (int step = 0; step < 500; step++) {
        tg_optim_zero_grad(adam);
        tg_tensor *l = tg_bce_with_logits(ctx, tg_module_forward(net, x), y);
        if (!l || tg_backward(ctx, l) != TG_OK) { fprintf(stderr, "%s\n", tg_last_error()); return 1; }
        tg_optim_step(adam);
        loss = tg_tensor_item(l);
        tg_ctx_clear_tape(ctx);                           /* frees this step's intermediates */
        if (step % 100 == 0) printf("step %3d  loss %.4f\n", step, loss);
    }
    printf("final loss %.5f\n", loss);
    tg_optim_free(adam);
    tg_tensor_free(x);
    tg_tensor_free(y);
    tg_module_free(net);
    tg_ctx_free(ctx);
    return loss < 0.05f ? 0 : 1;
}
