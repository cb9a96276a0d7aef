"""Quantisation-aware fine-tuning of the selection model (pipelines/selection/qat.py)."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from faceedge.edge.face_input import SELECTION_INPUT as FACE_INPUT  # noqa: E402
from faceedge.pipelines.selection.model import SelectionNet  # noqa: E402
from faceedge.pipelines.selection.qat import QuantAwareSelectionNet, RoundedConv, fine_tune  # noqa: E402
from faceedge.pipelines.selection.train import TrainSettings, batch_loss, export_onnx, train_model  # noqa: E402

from test_selection import _toy_samples  # noqa: E402


def test_folded_net_without_rounding_is_the_trained_net_and_rounds_only_after_the_float_layers():
    torch.manual_seed(0)
    net = SelectionNet(width=8)
    net.train()
    net(torch.randn(16, 3, 64, 64))  # batch-norm statistics that are not the identity
    net.eval()
    model = QuantAwareSelectionNet(net, leading_float=3)
    kinds = [type(block[0]) for block in model.features]
    assert kinds[:3] == [torch.nn.Conv2d] * 3 and kinds[3:] == [RoundedConv] * 4
    x = torch.randn(8, 3, 64, 64)
    model.train()
    model(x)  # sets the activation ranges
    model.eval()
    with torch.no_grad():
        expected = net(x)
        assert torch.allclose(model.simulate(False)(x), expected, atol=1e-4)
        rounded = model.simulate(True)(x)
    assert not torch.equal(rounded, expected)
    # What the last rounded layer hands the float head takes at most 256 values, as a uint8 tensor does.
    with torch.no_grad():
        handed = model.output_rounding(model.features(x))
    assert len(torch.unique(handed)) <= 256 < len(torch.unique(model.simulate(False).features(x)))


def test_quantization_aware_epochs_lower_the_rounded_loss_resume_and_export(tmp_path):
    samples = _toy_samples(96)
    settings = TrainSettings(epochs=3, batch_size=32, lr=3e-3, seed=0, width=8)
    net, _ = train_model(samples, settings, progress=False)
    inputs = torch.from_numpy(FACE_INPUT(samples.aligned))
    labels = torch.from_numpy(samples.labels.astype(np.int64))
    genuine = torch.from_numpy(samples.genuine_similarity.astype(np.float32))

    def rounded_loss(model):
        model.simulate(True).eval()
        with torch.no_grad():
            return float(batch_loss(model(inputs), labels, genuine, 0.363, settings))

    before = QuantAwareSelectionNet(net, leading_float=3)
    before.train()
    before(inputs)  # ranges from the same faces the fine-tuning sees
    checkpoint = tmp_path / "qat.pt"
    tuned, history = fine_tune(net, samples, settings, epochs=2, lr=1e-3, leading_float=3, checkpoint=checkpoint,
                               progress=False)
    assert len(history) == 2
    assert rounded_loss(tuned) < rounded_loss(before)
    _, resumed = fine_tune(net, samples, settings, epochs=3, lr=1e-3, leading_float=3, checkpoint=checkpoint,
                           progress=False)
    assert resumed[:2] == history and len(resumed) == 3
    # The result is a plain float model: its ONNX export matches torch with the rounding off.
    assert export_onnx(tuned.simulate(False).eval(), tmp_path / "q.onnx", FACE_INPUT(samples.aligned[:5])) < 1e-4
