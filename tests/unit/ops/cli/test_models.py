"""`moodstream classify` prints one valid Prediction; `train` rejects unknown parts."""

from __future__ import annotations

import io
from pathlib import Path

from typer.testing import CliRunner

from moodstream.schema import Prediction
from ops.cli import app


def test_classify_prints_a_prediction(tmp_path: Path) -> None:
    from PIL import Image
    from skimage import data

    img = tmp_path / "astronaut.jpg"
    buf = io.BytesIO()
    Image.fromarray(data.astronaut()).save(buf, "JPEG")
    img.write_bytes(buf.getvalue())
    res = CliRunner().invoke(app, ["classify", "--text", "what a wonderful day", "--image", str(img)])
    assert res.exit_code == 0, res.output
    pred = Prediction.model_validate_json(res.stdout)
    assert pred.sentiment.label == "positive"
    assert pred.modalities.image is not None and pred.modalities.text is not None


def test_classify_needs_input_and_train_needs_a_known_part(tmp_path: Path) -> None:
    runner = CliRunner()
    assert runner.invoke(app, ["classify"]).exit_code != 0
    assert runner.invoke(app, ["classify", "--image", str(tmp_path / "missing.jpg")]).exit_code != 0
    assert runner.invoke(app, ["train", "nothing", "--data", str(tmp_path)]).exit_code != 0
