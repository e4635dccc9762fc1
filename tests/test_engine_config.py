"""Recipes: the TrainConfig schema, YAML loading with overrides, and every shipped recipe."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from spikedrive import list_models
from spikedrive.pruning import load_prune_config
from spikedrive.engine import (
    TrainConfig,
    apply_overrides,
    check_compatible,
    config_from_dict,
    list_datasets,
    list_tasks,
    load_config,
    save_config,
)

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
RECIPES = sorted(CONFIGS.rglob("*.yaml")) + sorted(CONFIGS.rglob("*.yml"))


def test_defaults_are_the_demo_and_load_without_a_file() -> None:
    cfg = load_config(None, [])
    assert cfg == TrainConfig()
    assert (cfg.task, cfg.model, cfg.model_kwargs, cfg.dataset) == ("classification", "digits_snn", {"T": 4}, "digits")
    assert cfg.out_dir == str(Path("runs") / "digits_snn_digits")


def test_overrides_are_parsed_and_coerced_to_field_types() -> None:
    cfg = load_config(None, ["lr=1", "epochs=3", "model_kwargs.T=8", "model_kwargs.channels=[4, 8]",
                             "clip_grad=2", "out_dir=2024", "resume=true", "label_smoothing=0.1",
                             "max_steps_per_epoch=null", "optimizer=sgd"])
    assert cfg.lr == 1.0 and isinstance(cfg.lr, float)
    assert cfg.epochs == 3 and isinstance(cfg.epochs, int)
    assert cfg.model_kwargs == {"T": 8, "channels": [4, 8]}
    assert cfg.clip_grad == 2.0 and isinstance(cfg.clip_grad, float)
    assert cfg.out_dir == "2024"  # text field: the raw text, not the integer 2024
    assert cfg.resume is True
    assert cfg.max_steps_per_epoch is None
    assert cfg.optimizer == "sgd"
    assert load_config(None, ["clip_grad=None", "resume=runs/x/last.pt"]).resume == "runs/x/last.pt"


def test_dotted_override_keeps_other_entries_and_does_not_alias() -> None:
    base = TrainConfig(model_kwargs={"T": 4, "num_classes": 10})
    cfg = apply_overrides(base, ["model_kwargs.T=2", "dataset_kwargs.split.seed=3"])
    assert cfg.model_kwargs == {"T": 2, "num_classes": 10}
    assert cfg.dataset_kwargs == {"split": {"seed": 3}}
    assert base.model_kwargs == {"T": 4, "num_classes": 10}


@pytest.mark.parametrize("override, words", [
    (["lrr=0.1"], ["'lrr'", "'lr'"]),
    (["epocs=3"], ["'epocs'", "'epochs'"]),
    (["epochs=3.5"], ["epochs", "3.5", "integer"]),
    (["epochs=0"], ["epochs", "0", ">= 1"]),
    (["lr=fast"], ["lr", "fast", "number"]),
    (["optimizer=lion"], ["optimizer", "lion", "lamb"]),
    (["scheduler=step"], ["scheduler", "step", "cosine"]),
    (["clip_grad=-1"], ["clip_grad", "-1", "> 0"]),
    (["grad_accum=0"], ["grad_accum", "0", ">= 1"]),
    (["amp=fp32"], ["amp", "fp32", "bf16"]),
    (["ema=1.0"], ["ema", "1.0", "(0, 1)"]),
    (["mixup=-0.2"], ["mixup", "-0.2", ">= 0"]),
    (["cutmix=-1"], ["cutmix", "-1", ">= 0"]),
    (["no_weight_decay=pos_embed"], ["no_weight_decay", "pos_embed", "list of text"]),
    (["label_smoothing=1.0"], ["label_smoothing", "1.0", "[0, 1)"]),
    (["device=tpu"], ["device", "tpu", "cuda"]),
    (["seed=true"], ["seed", "True", "integer"]),
    (["warmup_epochs=20", "epochs=5"], ["warmup_epochs", "20", "epochs=5"]),
    (["lr.x=1"], ["'lr'", "not a mapping"]),
    (["lr"], ["key=value"]),
])
def test_bad_values_name_field_value_and_expectation(override: list[str], words: list[str]) -> None:
    with pytest.raises(ValueError) as info:
        load_config(None, override)
    for word in words:
        assert word in str(info.value), (word, str(info.value))


def test_dataclass_validates_direct_construction_too() -> None:
    with pytest.raises(ValueError, match="batch_size"):
        TrainConfig(batch_size=0)
    with pytest.raises(ValueError, match="model_kwargs"):
        TrainConfig(model_kwargs=[1, 2])  # type: ignore[arg-type]
    assert TrainConfig(lr=1).lr == 1.0


def test_unknown_key_in_yaml_names_file_key_and_close_matches(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("model: digits_snn\nbatch_sise: 32\n")
    with pytest.raises(ValueError) as info:
        load_config(path, [])
    assert "batch_sise" in str(info.value) and "batch_size" in str(info.value) and "bad.yaml" in str(info.value)
    with pytest.raises(ValueError, match="mapping"):
        config_from_dict([1, 2])  # type: ignore[arg-type]


def test_missing_and_malformed_files_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="nope.yaml"):
        load_config(tmp_path / "nope.yaml", [])
    bad = tmp_path / "broken.yaml"
    bad.write_text("model: [digits_snn\n")
    with pytest.raises(ValueError, match="not valid YAML"):
        load_config(bad, [])


def test_save_then_load_round_trips(tmp_path: Path) -> None:
    cfg = load_config(None, ["model_kwargs.T=2", "clip_grad=1.5", "resume=auto", "no_weight_decay=[a, '*.b']", "ema=0.99", "lr=3e-4", "epochs=7"])
    save_config(cfg, tmp_path / "config.yaml")
    assert load_config(tmp_path / "config.yaml", []) == cfg
    assert not list(tmp_path.glob(".*.tmp"))  # the atomic write left no temporary file


def test_overrides_apply_on_top_of_a_file(tmp_path: Path) -> None:
    path = tmp_path / "r.yaml"
    path.write_text("epochs: 9\nlr: 3e-4\nmodel_kwargs: {T: 6, num_classes: 10}\n")
    cfg = load_config(path, ["model_kwargs.T=3"])
    assert cfg.epochs == 9 and cfg.model_kwargs == {"T": 3, "num_classes": 10}
    assert cfg.lr == 3e-4  # YAML 1.1 reads "3e-4" as text; a number field still gets a number


def test_configs_folder_has_recipes() -> None:
    assert CONFIGS / "demo" / "digits.yaml" in RECIPES


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: str(p.relative_to(CONFIGS)))
def test_every_shipped_recipe_loads_and_names_registered_parts(path: Path) -> None:
    # Lottery recipes carry a `pruning:` section read by `spikedrive prune`.
    cfg = load_prune_config(path)[0] if "pruning" in (yaml.safe_load(path.read_text()) or {}) else load_config(path, [])
    if cfg.model == "pending":
        # A data-only recipe: its dataset is registered, its model or task lands with a method issue
        # (tests/test_dataset_zoo.py fails once they exist, so the recipe gets completed then).
        assert cfg.dataset in list_datasets(), f"{path}: dataset {cfg.dataset!r} is not registered"
        return
    assert cfg.model in list_models(), f"{path}: model {cfg.model!r} is not registered"
    assert cfg.task in list_tasks(), f"{path}: task {cfg.task!r} is not registered"
    assert cfg.dataset in list_datasets(), f"{path}: dataset {cfg.dataset!r} is not registered"


def test_dict_fields_hold_their_yaml_round_trip_form(tmp_path: Path) -> None:
    cfg = TrainConfig(model_kwargs={"T": 4, "channels": (8, 16), "blocks": {"widths": (1, (2, 3))}})
    assert cfg.model_kwargs == {"T": 4, "channels": [8, 16], "blocks": {"widths": [1, [2, 3]]}}
    assert isinstance(cfg.model_kwargs["channels"], list)
    save_config(cfg, tmp_path / "config.yaml")
    assert load_config(tmp_path / "config.yaml", []) == cfg
    assert yaml.safe_load(yaml.safe_dump(cfg.to_dict())) == cfg.to_dict()
    cfg.model_kwargs["channels"] = (8, 16)  # set after construction: to_dict still gives the YAML form
    assert cfg.to_dict()["model_kwargs"]["channels"] == [8, 16]


def test_checkpoint_with_tuples_is_compatible_with_its_yaml_config() -> None:
    # A checkpoint written before dict fields were normalised holds the tuple itself.
    saved = {"config": {"task": "classification", "model": "digits_snn", "model_kwargs": {"T": 4, "channels": (8, 16)}}}
    check_compatible(saved, TrainConfig(model_kwargs={"T": 4, "channels": [8, 16]}), "old.pt")
    with pytest.raises(ValueError, match="model_kwargs"):
        check_compatible(saved, TrainConfig(model_kwargs={"T": 4, "channels": [8, 32]}), "old.pt")


def test_exponent_floats_without_a_dot_are_numbers_in_overrides_and_files(tmp_path: Path) -> None:
    cfg = load_config(None, ["model_kwargs.lr_scale=1e-3", "dataset_kwargs.noise.sigma=2E5",
                             "model_kwargs.gain=1.0e3", "model_kwargs.tag='1e3'", "out_dir=1e3", "lr=5e-2"])
    assert cfg.model_kwargs == {"T": 4, "lr_scale": 1e-3, "gain": 1000.0, "tag": "1e3"}
    assert cfg.dataset_kwargs == {"noise": {"sigma": 2e5}}
    assert cfg.out_dir == "1e3" and cfg.lr == 0.05  # a text field keeps the raw text
    path = tmp_path / "r.yaml"
    path.write_text("model_kwargs: {T: 2, lr_scale: 1e-3, widths: [1e2, 2]}\ndataset_kwargs: {name: '1e3'}\n")
    cfg = load_config(path, [])
    assert cfg.model_kwargs == {"T": 2, "lr_scale": 1e-3, "widths": [100.0, 2]}
    assert isinstance(cfg.model_kwargs["lr_scale"], float)
    assert cfg.dataset_kwargs == {"name": "1e3"}
    # Text that reads as such a number is quoted on save, so it comes back as text.
    save_config(cfg, tmp_path / "config.yaml")
    assert load_config(tmp_path / "config.yaml", []) == cfg
