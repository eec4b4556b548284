"""FER CNN training: augmentation shapes, a seeded smoke run, resume from the checkpoint."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from modelling.training.fer_cnn import CNN_WEIGHTS, augment, served_input, train_fer_cnn
from serving.fer_cnn import load_fer_cnn


def test_augment_is_seeded_and_shaped() -> None:
    x = torch.rand(8, 1, 48, 48) * 2 - 1
    a = augment(x, 40, torch.Generator().manual_seed(1))
    b = augment(x, 40, torch.Generator().manual_seed(1))
    assert a.shape == (8, 1, 40, 40) and torch.equal(a, b) and a.min() >= -1 and a.max() <= 1


def test_served_input_matches_the_serving_path() -> None:
    faces = np.random.default_rng(0).integers(0, 256, (3, 48, 48), dtype=np.uint8)
    assert served_input(faces, 40).shape == (3, 1, 40, 40)


def test_smoke_run_is_seeded_and_resumable(data_dir: Path, tmp_path: Path) -> None:
    kw = {"epochs": 2, "width": 4, "size": 32, "batch": 32, "limit": 64, "progress": False}
    r1 = train_fer_cnn(data_dir, tmp_path / "a", work_dir=tmp_path / "w1", **kw)
    r2 = train_fer_cnn(data_dir, tmp_path / "b", work_dir=tmp_path / "w2", **kw)
    assert [h["train_loss"] for h in r1["history"]] == [h["train_loss"] for h in r2["history"]]
    assert len(r1["history"]) == 2 and r1["best_epoch"] in (1, 2)
    net = load_fer_cnn(tmp_path / "a" / CNN_WEIGHTS)
    assert net.config()["width"] == 4 and net(torch.zeros(1, 1, 32, 32)).shape == (1, 7)
    again = train_fer_cnn(data_dir, tmp_path / "c", work_dir=tmp_path / "w1", resume=True, **kw)
    assert again["history"] == r1["history"]  # nothing left to train: the checkpoint's record comes back


def test_export_best_of_a_checkpoint(data_dir: Path, tmp_path: Path) -> None:
    from modelling.training.fer_cnn import export_best

    kw = {"epochs": 1, "width": 4, "size": 32, "batch": 32, "limit": 32, "progress": False}
    train_fer_cnn(data_dir, tmp_path / "a", work_dir=tmp_path / "w", **kw)
    (ckpt,) = (tmp_path / "w").glob("ckpt-*.pt")
    record = export_best(ckpt, tmp_path / "b")
    assert record["epochs_done"] == 1 and (tmp_path / "b" / CNN_WEIGHTS).is_file()
    a, b = load_fer_cnn(tmp_path / "a" / CNN_WEIGHTS), load_fer_cnn(tmp_path / "b" / CNN_WEIGHTS)
    assert all(torch.equal(a.state_dict()[k], b.state_dict()[k]) for k in a.state_dict())


def test_resume_with_a_shorter_schedule(data_dir: Path, tmp_path: Path) -> None:
    kw = {"width": 4, "size": 32, "batch": 32, "limit": 64, "progress": False, "work_dir": tmp_path / "w"}
    train_fer_cnn(data_dir, tmp_path / "a", epochs=1, **kw)
    r = train_fer_cnn(data_dir, tmp_path / "a", epochs=2, resume=True, **kw)
    assert len(r["history"]) == 2
    assert r["config"]["rescheduled"] == [{"after_epoch": 1, "from_epochs": 1, "to_epochs": 2}]


def test_init_warm_starts_from_earlier_weights(data_dir: Path, tmp_path: Path) -> None:
    kw = {"epochs": 1, "width": 4, "size": 32, "batch": 32, "limit": 32, "progress": False}
    train_fer_cnn(data_dir, tmp_path / "a", work_dir=tmp_path / "w1", **kw)
    first = tmp_path / "a" / CNN_WEIGHTS
    r = train_fer_cnn(data_dir, tmp_path / "b", work_dir=tmp_path / "w2", init=first, lr=0.0, **kw)
    assert r["config"]["init"]["file"] == CNN_WEIGHTS and len(r["config"]["init"]["sha256"]) == 64
    assert next((tmp_path / "w2").glob("ckpt-*-init.pt")).is_file()
    a, b = load_fer_cnn(first), load_fer_cnn(tmp_path / "b" / CNN_WEIGHTS)
    conv = "features.0.weight"  # lr 0: the weights stay those it started from
    assert torch.equal(a.state_dict()[conv], b.state_dict()[conv])
