"""The penalty's convolutions give D the same input gradient and the same second derivative as PyTorch's own."""

from contextlib import nullcontext

import torch

from deepanon.models import Discriminator, ModelConfig
from deepanon.models.twice_differentiable import InputDifferentiableConv2d, twice_differentiable
from deepanon.training import loss
from tests.models.conftest import face_batch


def penalty_gradients(d: Discriminator, x_hat: torch.Tensor, certainty: torch.Tensor, pose: torch.Tensor):
    """∇_x̂ D(x̂) and the eq. 11 penalty's gradient for every D parameter (fp32)."""
    x_hat = x_hat.clone().requires_grad_(True)
    gradient = loss.critic_gradient(d(x_hat, x_hat * certainty, certainty, pose), x_hat)
    penalty = loss.improved_gradient_penalty(gradient, certainty, weight=10.0).sum()
    d.zero_grad(set_to_none=True)
    penalty.backward()
    return gradient.detach(), {name: p.grad for name, p in d.named_parameters()}


def test_penalty_gradients_match_pytorchs_double_backward():
    torch.manual_seed(0)
    d = Discriminator(ModelConfig(image_size=32, num_keypoints=5, width=0.25))
    for name, p in d.named_parameters():  # biases away from zero, so that a wrong bias path would show
        if name.endswith("bias"):
            torch.nn.init.normal_(p, std=0.5)
    with torch.no_grad():
        d.score.weight *= 300  # ‖∇D‖ in the hole ≈ 2-3: the one-sided penalty is active
    image, certainty, pose = face_batch(3, 5, size=32)
    expected_input, expected = penalty_gradients(d, image, certainty, pose)
    with twice_differentiable():
        got_input, got = penalty_gradients(d, image, certainty, pose)
    assert (expected_input * (1 - certainty)).flatten(1).norm(dim=1).min() > 1.5
    torch.testing.assert_close(got_input, expected_input, rtol=1e-4, atol=1e-6)
    # D is piecewise linear in x̂: its input gradient, and so the penalty, moves with every layer's weight but with no
    # bias and no pose feature (they shift the activations, not the slopes)
    weights = [n for n in expected if n.endswith("weight") and not n.startswith("pose_bank.")]
    assert all(expected[n] is not None and expected[n].abs().max() > 0 for n in weights)
    for name, grad in expected.items():
        if name in weights:
            torch.testing.assert_close(got[name], grad, rtol=1e-4, atol=1e-5, msg=name)
        else:
            assert all(g is None or g.abs().max() == 0 for g in (got[name], grad)), name


def test_only_inside_the_block_and_with_gradients():
    d = Discriminator(ModelConfig(image_size=32, num_keypoints=5, width=0.25))
    x = torch.ones(1, 7, 32, 32)

    def backward_name(enabled: bool, grad: bool) -> str:
        with torch.set_grad_enabled(grad), (twice_differentiable() if enabled else nullcontext()):
            out = d.from_input(x)
        return type(out.grad_fn).__name__ if out.grad_fn is not None else "none"

    assert backward_name(True, True) == InputDifferentiableConv2d.__name__ + "Backward"
    assert backward_name(False, True) == "ConvolutionBackward0"
    assert backward_name(True, False) == "none"
