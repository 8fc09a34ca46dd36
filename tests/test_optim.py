"""MT-DNN's Adamax and the other optimizers, checked against steps computed by hand."""
import pytest
import torch

from training.optim import BertAdam, MTDNNAdamax, build_optimizer, build_schedule, parameter_groups

LR, WD, EPS = 0.1, 0.01, 1e-6


def one_param(values, grad):
    param = torch.nn.Parameter(torch.tensor(values, dtype=torch.float64))
    param.grad = torch.tensor(grad, dtype=torch.float64)
    return param


def test_adamax_first_update_by_hand():
    param = one_param([1.0, -2.0, 3.0], [0.5, 0.0, -1e-7])
    MTDNNAdamax([param], lr=LR, weight_decay=WD).step()
    g = torch.tensor([0.5, 0.0, -1e-7], dtype=torch.float64)
    w = torch.tensor([1.0, -2.0, 3.0], dtype=torch.float64)
    m = 0.1 * g                                   # (1 - b1) g, no bias correction
    u = g.abs() + EPS                             # max(b2 * 0, |g| + eps)
    expected = w - LR * (m / (u + EPS) + WD * w)
    torch.testing.assert_close(param.detach(), expected, rtol=0, atol=1e-15,
                               msg="first Adamax update differs from m/(u+eps) + wd*w without bias correction")


def test_adamax_second_update_uses_running_max_and_momentum():
    param = one_param([1.0, -1.0], [1.0, -0.5])
    optimizer = MTDNNAdamax([param], lr=LR, weight_decay=0.0)
    optimizer.step()
    after_first = param.detach().clone()
    param.grad = torch.tensor([0.1, -2.0], dtype=torch.float64)
    optimizer.step()
    g1, g2 = torch.tensor([1.0, -0.5], dtype=torch.float64), torch.tensor([0.1, -2.0], dtype=torch.float64)
    m = 0.9 * (0.1 * g1) + 0.1 * g2
    u = torch.maximum(0.999 * (g1.abs() + EPS), g2.abs() + EPS)
    torch.testing.assert_close(param.detach(), after_first - LR * m / (u + EPS), rtol=0, atol=1e-15,
                               msg="second update must use b1-momentum and the running max of |g| + eps")


def test_eps_sits_inside_the_max():
    param = one_param([1.0], [0.0])
    optimizer = MTDNNAdamax([param], lr=LR, weight_decay=0.0)
    optimizer.step()
    assert optimizer.state[param]["exp_inf"].item() == pytest.approx(EPS, rel=1e-12), \
        "a zero gradient must still leave u = |g| + eps = eps (eps inside the max)"
    assert param.item() == 1.0, "a zero gradient without decay must not move the weight"


def test_zero_gradient_weight_shrinks_by_lr_wd_w_not_by_lr():
    param = one_param([0.5, -0.25], [0.0, 0.0])
    optimizer = MTDNNAdamax([param], lr=LR, weight_decay=WD)
    for _ in range(5):
        param.grad = torch.zeros_like(param)
        optimizer.step()
    expected = torch.tensor([0.5, -0.25], dtype=torch.float64) * (1 - LR * WD) ** 5
    torch.testing.assert_close(param.detach(), expected, rtol=1e-12, atol=0,
                               msg="decoupled decay: each update multiplies a zero-gradient weight by 1 - lr*wd")
    coupled = one_param([0.5, -0.25], [0.0, 0.0])
    torch_adamax = torch.optim.Adamax([coupled], lr=LR, weight_decay=WD)
    torch_adamax.step()
    assert abs(coupled.detach()[0].item() - 0.5) > 0.5 * LR, \
        "this test must tell the two apart: torch's coupled Adamax moves such a weight by about lr"


def test_decay_on_weights_only_never_on_biases_or_layernorm():
    model = torch.nn.Module()
    model.dense = torch.nn.Linear(2, 2)
    model.LayerNorm = torch.nn.LayerNorm(2)
    with torch.no_grad():
        for param in model.parameters():
            param.fill_(1.0)
    optimizer = build_optimizer("adamax", model.named_parameters(), LR, WD)
    for param in model.parameters():
        param.grad = torch.zeros_like(param)
    optimizer.step()
    assert torch.allclose(model.dense.weight, torch.full((2, 2), 1 - LR * WD)), "dense.weight must decay"
    for name in ("dense.bias", "LayerNorm.weight", "LayerNorm.bias"):
        assert torch.equal(model.get_parameter(name), torch.ones_like(model.get_parameter(name))), \
            f"{name} must never decay"
    names = {id(p): n for n, p in model.named_parameters()}
    groups = parameter_groups(model.named_parameters(), WD)
    assert sorted(names[id(p)] for p in groups[0]["params"]) == ["dense.weight"], \
        "only weights go to the decayed group"
    assert [g["weight_decay"] for g in groups] == [WD, 0.0], "groups: (weight_decay, 0)"


def test_weight_decay_flag_value_is_used():
    model = torch.nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        model.weight.fill_(1.0)
    optimizer = build_optimizer("adamax", model.named_parameters(), LR, 0.5)
    model.weight.grad = torch.zeros_like(model.weight)
    optimizer.step()
    assert model.weight.item() == pytest.approx(1 - LR * 0.5), "--weight_decay must set the decay (MT-DNN ignores it)"


def test_per_tensor_clip_inside_the_step():
    param = one_param([0.0, 0.0], [3.0, 4.0])                 # norm 5
    other = one_param([0.0], [0.5])                             # already below the limit
    MTDNNAdamax([param, other], lr=LR, weight_decay=0.0, max_grad_norm=1.0).step()
    torch.testing.assert_close(param.grad, torch.tensor([0.6, 0.8], dtype=torch.float64), rtol=1e-6, atol=0,
                               msg="the gradient is clipped in place to norm max_grad_norm (PLATON sees it)")
    torch.testing.assert_close(other.grad, torch.tensor([0.5], dtype=torch.float64),
                               msg="clipping is per tensor: a small gradient is left alone")
    g = torch.tensor([0.6, 0.8], dtype=torch.float64)
    torch.testing.assert_close(param.detach(), -LR * (0.1 * g) / (g + 2 * EPS), rtol=1e-6, atol=0,
                               msg="the moments see the clipped gradient")


@pytest.mark.parametrize("name", ["adam", "adamw", "sgd"])
def test_per_tensor_clip_for_every_optimizer(name):
    param = torch.nn.Parameter(torch.zeros(2))
    optimizer = build_optimizer(name, [("w", param)], LR, 0.0, max_grad_norm=1.0)
    param.grad = torch.tensor([3.0, 4.0])
    optimizer.step()
    assert torch.allclose(param.grad.norm(), torch.tensor(1.0)), f"{name}: --grad_clipping must clip per tensor"


def test_bert_adam_first_update_by_hand():
    param = one_param([1.0, -2.0], [0.5, -0.1])
    BertAdam([param], lr=LR, weight_decay=WD).step()
    g, w = torch.tensor([0.5, -0.1], dtype=torch.float64), torch.tensor([1.0, -2.0], dtype=torch.float64)
    expected = w - LR * ((0.1 * g) / ((0.001 * g * g).sqrt() + EPS) + WD * w)
    torch.testing.assert_close(param.detach(), expected, rtol=0, atol=1e-14,
                               msg="BERT's Adam: no bias correction, decoupled decay")


@pytest.mark.parametrize("name", ["adam", "adamw"])
def test_adam_variants_decay_decoupled(name):
    param = torch.nn.Parameter(torch.tensor([0.5], dtype=torch.float64))
    optimizer = build_optimizer(name, [("w", param)], LR, WD)
    for _ in range(3):
        param.grad = torch.zeros_like(param)
        optimizer.step()
    assert param.item() == pytest.approx(0.5 * (1 - LR * WD) ** 3, rel=1e-9), \
        f"{name}: a zero-gradient weight must shrink by lr*wd*w per update (decoupled), not by ~lr"


def test_sgd_keeps_l2_decay():
    param = torch.nn.Parameter(torch.tensor([0.5], dtype=torch.float64))
    optimizer = build_optimizer("sgd", [("w", param)], LR, WD)
    param.grad = torch.zeros_like(param)
    optimizer.step()
    assert param.item() == pytest.approx(0.5 - LR * WD * 0.5), "sgd adds wd*w to the gradient (first step)"


def test_schedule_sets_the_lr_the_step_uses():
    param = one_param([1.0], [1.0])
    optimizer = MTDNNAdamax([param], lr=LR, weight_decay=0.0)
    schedule = build_schedule(optimizer, total_steps=4, warmup=0.5, schedule="warmup_linear")
    optimizer.step()
    assert param.item() == 1.0, "as in MT-DNN, the first update runs at multiplier 0 (step 0 of the warmup)"
    schedule.step()
    param.grad = torch.tensor([1.0], dtype=torch.float64)
    optimizer.step()
    m, u = 0.9 * 0.1 + 0.1, max(0.999 * (1 + EPS), 1 + EPS)
    assert param.item() == pytest.approx(1.0 - LR * 0.5 * m / (u + EPS), rel=1e-12), \
        "the second update runs at lr * 1/4 / 1/2"


def test_state_dict_round_trip_continues_bitwise():
    torch.manual_seed(0)
    grads = [torch.randn(3, 4) for _ in range(6)]

    def run(split):
        param = torch.nn.Parameter(torch.ones(3, 4))
        optimizer = build_optimizer("adamax", [("w", param)], LR, WD, max_grad_norm=0.5)
        for i, grad in enumerate(grads):
            if i == split:
                saved_param, saved_state = param.detach().clone(), optimizer.state_dict()
                param = torch.nn.Parameter(saved_param)
                optimizer = build_optimizer("adamax", [("w", param)], LR, WD, max_grad_norm=0.5)
                optimizer.load_state_dict(saved_state)
            param.grad = grad.clone()
            optimizer.step()
        return param.detach()

    assert torch.equal(run(split=-1), run(split=3)), "a reloaded optimizer must continue bit for bit"


def test_unknown_optimizer_is_refused():
    with pytest.raises(ValueError, match="unknown optimizer 'lamb'"):
        build_optimizer("lamb", [], LR, WD)
