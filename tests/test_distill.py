"""DFD loss on hand-computed tensors, its near-zero guard, and flooding."""
import pytest
import torch
from transformers import BertConfig, BertModel

from methods.distill import dfd_loss, flooded, fusion_weights, student_local_fusion, teacher_global_fusion

EMBEDDING = torch.full((1, 2), 99.0)  # dropped by dfd_loss; a large value would show if it were used


def t(*values):
    return torch.tensor([list(values)], dtype=torch.float32)  # (1, len(values))


def test_dfd_loss_hand_computed_two_layers_window_two():
    teacher = (EMBEDDING, t(1.0, 2.0), t(3.0, 4.0))  # sums 3 and 7
    student = (EMBEDDING, t(1.0, 1.0), t(2.0, 0.0))  # sums 2 and 2
    # teacher: T1 ← T1·3/10 + T2·7/10 = [2.4, 3.4];  T2 unchanged
    # student (w=2, padded [S1, S2, S2]): F1 = S1·2/4 + S2·2/4 = [1.5, 0.5];  F2 = S2·1/2 + S2·1/2 = [2, 0]
    # loss = mean([0.9², 2.9²]) + mean([1², 4²]) = 4.61 + 8.5
    loss = dfd_loss(teacher, student, window_size=2)
    assert loss.item() == pytest.approx(13.11, abs=1e-5), f"hand-computed DFD loss is 13.11, got {loss.item()}"


def test_teacher_fusion_is_recursive_from_the_top():
    fused = teacher_global_fusion([t(1.0), t(1.0), t(2.0)])
    # T2 ← 1·1/3 + 2·2/3 = 5/3;  T1 ← 1·(1/(1+5/3)) + (5/3)·((5/3)/(8/3)) = 3/8 + 25/24 = 17/12
    assert fused[2].item() == pytest.approx(2.0), "the top layer is not fused"
    assert fused[1].item() == pytest.approx(5 / 3), "T2 fuses with T3"
    assert fused[0].item() == pytest.approx(17 / 12), "T1 fuses with the already fused T2"


def test_student_window_pads_with_last_layer():
    layers = [t(1.0), t(2.0), t(3.0)]
    fused = student_local_fusion(layers, window_size=3)
    # F1 over [1, 2, 3]: (1 + 4 + 9)/6;  F2 over [2, 3, 3]: (4 + 9 + 9)/8;  F3 over [3, 3, 3]: 3
    expected = [14 / 6, 22 / 8, 3.0]
    assert [f.item() for f in fused] == pytest.approx(expected), f"sliding-window fusion: {fused}"
    same = student_local_fusion(layers, window_size=1)
    assert all(torch.equal(f, s) for f, s in zip(same, layers)), "window 1 leaves the student unchanged"


def test_layer_count_mismatch_names_both_counts():
    with pytest.raises(ValueError, match=r"teacher has 3 and the student 2"):
        dfd_loss((EMBEDDING, t(1, 2), t(1, 2), t(1, 2)), (EMBEDDING, t(1, 2), t(1, 2)), window_size=2)
    with pytest.raises(ValueError, match="window_size"):
        dfd_loss((EMBEDDING, t(1, 2)), (EMBEDDING, t(1, 2)), window_size=0)


def test_near_zero_denominator_falls_back_to_equal_weights():
    weights = fusion_weights([t(1.0, -1.0), t(2.0, -2.0)])
    assert [w.item() for w in weights] == [0.5, 0.5], "sums of exactly 0 give equal weights"
    weights = fusion_weights([t(1.0, -1.0 + 1e-7), t(3.0, -3.0)])
    assert [w.item() for w in weights] == [0.5, 0.5], "a sum below eps·Σ|x| (here ~1e-7 of 8) gives equal weights"
    weights = fusion_weights([torch.zeros(2, 3), torch.zeros(2, 3)])
    assert [w.item() for w in weights] == [0.5, 0.5], "all-zero states give equal weights"
    weights = fusion_weights([t(1.0), t(3.0)])
    assert [w.item() for w in weights] == [0.25, 0.75], "a healthy denominator keeps Σx/ΣΣx"


def test_hidden_states_summing_to_zero_give_finite_loss_and_gradient():
    student = [torch.tensor([[1.0, -1.0]], requires_grad=True), torch.tensor([[2.0, -2.0 + 1e-8]],
                                                                             requires_grad=True)]
    teacher = (EMBEDDING, t(5.0, -5.0), t(0.0, 0.0))
    loss = dfd_loss(teacher, [EMBEDDING] + student, window_size=2)
    loss.backward()
    assert torch.isfinite(loss), f"loss must be finite, got {loss}"
    assert all(torch.isfinite(s.grad).all() for s in student), "gradients must be finite"


def test_dfd_on_real_hidden_states_and_teacher_gets_no_gradient():
    torch.manual_seed(0)
    config = BertConfig(num_hidden_layers=2, hidden_size=32, num_attention_heads=4, intermediate_size=64,
                        vocab_size=100)
    teacher, student = BertModel(config).eval(), BertModel(config).eval()
    input_ids = torch.randint(0, 100, (2, 7))
    teacher_states = teacher(input_ids, output_hidden_states=True).hidden_states
    student_states = student(input_ids, output_hidden_states=True).hidden_states
    loss = dfd_loss(teacher_states, student_states, window_size=3)
    loss.backward()
    assert torch.isfinite(loss) and loss.item() > 0, f"positive finite loss between different models: {loss}"
    assert all(p.grad is None for p in teacher.parameters()), "the teacher is detached"
    assert any(p.grad is not None for p in student.parameters()), "the student receives gradients"
    same = dfd_loss(student_states, student_states, window_size=1)
    assert same.item() > 0, "with w=1 a model differs from its own globally fused states"


def test_flooding():
    assert flooded(torch.tensor(0.5), 0.01).item() == pytest.approx(0.5), "above b the loss is unchanged"
    assert flooded(torch.tensor(0.004), 0.01).item() == pytest.approx(0.016), "below b: |ℓ − b| + b"
    loss = torch.tensor(0.004, requires_grad=True)
    flooded(loss, 0.01).backward()
    assert loss.grad.item() == -1.0, "below b the gradient is reversed (ascent)"


def test_magnitude_fusion_weights_stay_convex_when_layer_sums_change_sign():
    layers = [t(3.0, 1.0), t(-1.0, -2.0)]          # sums 4 and -3
    signed = fusion_weights(layers, fusion="signed")
    assert [w.item() for w in signed] == pytest.approx([4.0, -3.0]), "published weights: 4/(4-3), -3/(4-3)"
    magnitude = fusion_weights(layers)
    assert [w.item() for w in magnitude] == pytest.approx([4 / 7, 3 / 7]), "default weights: |4|/7, |-3|/7"
    same_sign = [t(1.0), t(3.0)]
    assert [w.item() for w in fusion_weights(same_sign)] == \
        [w.item() for w in fusion_weights(same_sign, fusion="signed")], "equal to the published ones for one sign"
    with pytest.raises(ValueError, match="fusion must be one of magnitude, signed"):
        fusion_weights(layers, fusion="abs")


def test_dfd_loss_hand_computed_with_a_sign_change():
    teacher = (EMBEDDING, t(3.0, 1.0), t(-1.0, -2.0))   # sums 4, -3
    student = (EMBEDDING, t(3.0, 1.0), t(-1.0, -2.0))
    # magnitude: T1 <- (4/7)[3, 1] + (3/7)[-1, -2] = [9/7, -2/7];  student w=1 leaves S unchanged
    # loss = mean(([3, 1] - [9/7, -2/7])^2) + 0 = ((12/7)^2 + (9/7)^2) / 2 = 225/98
    assert dfd_loss(teacher, student, window_size=1).item() == pytest.approx(225 / 98, rel=1e-6), \
        "magnitude fusion, hand-computed"
    # signed: T1 <- 4·[3, 1] − 3·[-1, -2] = [15, 10]; loss = ((12)^2 + 9^2) / 2 = 112.5
    assert dfd_loss(teacher, student, window_size=1, fusion="signed").item() == pytest.approx(112.5, rel=1e-6), \
        "published (signed) fusion, hand-computed: a model distilled from itself gets a large loss"
