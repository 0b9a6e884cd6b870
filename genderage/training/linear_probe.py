"""LP-FT's first stage (Kumar et al., ICLR 2022): fit the new head to convergence on the frozen backbone's features.

A randomly initialised head sends large, noisy gradients into the backbone in the first steps of a fine-tune, and those
distort the pretrained features most where the fine-tuning data says least (other photo sets). Fitting the head first,
as a multinomial logistic regression on features extracted once, makes the fine-tune that follows start from a head
that already agrees with the features, so it can be gentle."""

from __future__ import annotations

import logging

import torch
from torch.utils.data import DataLoader

from .losses import partial_cross_entropy, partial_nll, target_sets
from .modeling import head_parameter_names

logger = logging.getLogger(__name__)

# Ridge strengths tried on the validation features; the lowest validation loss wins (the smallest won every arm of the
# last grid, 1e-4 to 1e-2, so it reaches further down).
L2_GRID = (1e-6, 1e-5, 1e-4, 1e-3, 1e-2)


def head_linear(model: torch.nn.Module) -> torch.nn.Linear:
    """The classification head's (last) linear layer."""
    head = {id(p) for name, p in model.named_parameters() if name in head_parameter_names(model)}
    linears = [module for module in model.modules() if isinstance(module, torch.nn.Linear) and id(module.weight) in head]
    if not linears:
        raise ValueError(f"{type(model).__name__} has no linear classification head to probe")
    return linears[-1]


@torch.no_grad()
def extract_features(model: torch.nn.Module, dataset, collate_fn, batch_size: int = 128, num_workers: int = 0,
                     device: torch.device | str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """The inputs of the head's linear layer (the backbone's features) and the labels, for every example of `dataset`
    (which yields pixel_values and labels, e.g. under the eval transform)."""
    features: list[torch.Tensor] = []
    hook = head_linear(model).register_forward_hook(lambda module, inputs, output: features.append(inputs[0].float().cpu()))
    was_training = model.training
    model.eval()
    # The inputs in the model's own memory format (channels_last models run faster on channels_last inputs).
    channels_last = next(model.parameters()).is_contiguous(memory_format=torch.channels_last)
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    labels = []
    try:
        loader = DataLoader(dataset, batch_size=batch_size, collate_fn=collate_fn, num_workers=num_workers)
        for batch in loader:
            model(pixel_values=batch["pixel_values"].to(device, memory_format=memory_format))
            labels.append(batch["labels"])
    finally:
        hook.remove()
        model.train(was_training)
    return torch.cat(features), torch.cat(labels)


def fit_linear_head(features: torch.Tensor, labels: torch.Tensor, num_labels: int, l2: float,
                    sample_weights: torch.Tensor | None = None, max_iter: int = 500) -> tuple[torch.Tensor, torch.Tensor]:
    """A multinomial logistic regression (weight, bias) fitted to convergence with full-batch L-BFGS: the weighted mean
    cross-entropy (the marginal likelihood for partly labelled rows, `losses.partial_nll`) plus l2/2 · |weight|²."""
    sets = target_sets(num_labels)
    weights = torch.ones(len(labels)) if sample_weights is None else sample_weights.float()
    weights = weights / weights.sum()
    weight = torch.zeros(num_labels, features.shape[1], requires_grad=True)
    bias = torch.zeros(num_labels, requires_grad=True)
    optimizer = torch.optim.LBFGS([weight, bias], lr=1, max_iter=max_iter, tolerance_grad=1e-6, tolerance_change=1e-9,
                                  history_size=20, line_search_fn="strong_wolfe")

    def closure():
        optimizer.zero_grad()
        losses = partial_nll(features @ weight.T + bias, labels, sets)
        loss = (losses * weights).sum() + 0.5 * l2 * weight.pow(2).sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    return weight.detach(), bias.detach()


def probe_head(model: torch.nn.Module, train_features: torch.Tensor, train_labels: torch.Tensor,
               validation_features: torch.Tensor, validation_labels: torch.Tensor,
               sample_weights: torch.Tensor | None = None) -> dict:
    """Fit the head at each ridge strength of L2_GRID, keep the one with the lowest validation loss, and write it into
    the model's head. Returns the probe's figures (l2, validation loss and accuracy over the task's labels)."""
    linear = head_linear(model)
    best = None
    for l2 in L2_GRID:
        weight, bias = fit_linear_head(train_features, train_labels, linear.out_features, l2, sample_weights)
        logits = validation_features @ weight.T + bias
        loss = partial_cross_entropy(logits, validation_labels, target_sets(linear.out_features)).item()
        full = validation_labels < linear.out_features  # accuracy over the fully labelled rows
        accuracy = (logits[full].argmax(-1) == validation_labels[full]).float().mean().item()
        logger.info("linear probe, l2 %g: validation loss %.4f, accuracy %.4f", l2, loss, accuracy)
        if best is None or loss < best["probe_validation_loss"]:
            best = {"probe_l2": l2, "probe_validation_loss": loss, "probe_validation_accuracy": accuracy, "head": (weight, bias)}
    weight, bias = best.pop("head")
    with torch.no_grad():
        linear.weight.copy_(weight.to(linear.weight))
        linear.bias.copy_(bias.to(linear.bias))
    return best
