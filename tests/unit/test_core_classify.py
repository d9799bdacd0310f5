"""diagnose.classify with the shipped playbook's rules: the runbook's error patterns."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from remediator.core.actions import ACTIONS, normalize_args
from remediator.core.classify import classify
from remediator.core.playbook import load_playbook

PLAYBOOK = Path(__file__).resolve().parents[2] / "playbooks" / "model_load_failure.yml"


def shipped_rules() -> list[dict[str, Any]]:
    step = load_playbook(PLAYBOOK).step("classify")
    assert step is not None
    rules: list[dict[str, Any]] = step.args["rules"]
    return rules


def run_classify(text: str, oom_killed: bool = False) -> str | None:
    args, problems = normalize_args(ACTIONS["diagnose.classify"], {
        "text": text, "state": {"oom_killed": oom_killed}, "rules": shipped_rules(),
        "default": "unknown"})
    assert problems == []
    scenario: str | None = classify(args)["scenario"]
    return scenario


@pytest.mark.parametrize(("log_line", "scenario"), [
    # The runbook's "Common error patterns to look for", and the serving app's messages.
    ("FileNotFoundError: model file not found: /app/models/best_model.pth",
     "file_missing_or_corrupted"),
    ("ValueError: The model file is corrupted: /app/models/best_model.pth: bad zip",
     "file_missing_or_corrupted"),
    ("ls: cannot access '/app/models/best_model.pth': No such file or directory",
     "file_missing_or_corrupted"),
    # Issue 21: a GPU out of memory gets scenario 2's memory fix, not the CPU fallback.
    ("RuntimeError: CUDA out of memory. Tried to allocate 2.00 GiB", "out_of_memory"),
    ("MemoryError: out of memory while loading /app/models/best_model.pth (CUDA out of "
     "memory. Tried to allocate 2.00 GiB (GPU 0; 7.79 GiB total capacity)) (raise the "
     "container memory limit or load a quantized variant)", "out_of_memory"),
    ("RuntimeError: CUDA requested (device='cuda') but CUDA is not available; set device: cpu "
     "in config/model.yml", "cuda"),
    ("MemoryError: out of memory while loading /app/models/best_model.pth", "out_of_memory"),
    ("PermissionError: permission denied reading model file /app/models/best_model.pth",
     "permission_denied"),
    ("OSError: [Errno 13] Permission denied: '/app/models/best_model.pth'", "permission_denied"),
    ("OSError: [Errno 28] No space left on device", "disk_full"),
    ("ImportError: No module named 'torchvision'", "missing_dependency"),
    ("ModelFormatTooOld: best_model.pth uses checkpoint format version 1; convert it: "
     "python scripts/convert_model.py --input x", "model_format"),
    ("config file /app/config/model.yml not found", "configuration"),
    ("Model load failed: unknown model name 'mobile-mm-llm-int3'", "configuration"),
    # The serving app's own words for each scenario (mobile_multimodal.errors).
    ("ValueError: The model file is corrupted: /app/models/best_model.pth: sha256 1f... does "
     "not match the manifest's 14b5...", "file_missing_or_corrupted"),
    ("Worker (pid:7) was killed by the kernel OOM killer: out of memory while serving or "
     "loading the model", "out_of_memory"),
    ("ImportError: No module named 'PIL' (No module named 'PIL'); this image lacks a "
     "dependency", "missing_dependency"),
    ("/app/config/model.yml: load_timeout: expected a duration like 30s or 2m, got 'soon'",
     "configuration"),
    ("/app/config/model.yml: device: expected one of auto, cpu, cuda, got 'gpu'",
     "configuration"),
    ("/app/config/model.yml:3: invalid YAML: expected ',' or ']'", "configuration"),
    # The investigation exec's findings start with the scenario's name.
    ("permission_denied: primary model /app/models/best_model.pth is not readable by uid "
     "1000 (mode 0000, owner 1000:1000)", "permission_denied"),
    ("model_format: primary model /app/models/best_model.pth uses checkpoint format version 0",
     "model_format"),
    ("everything is fine, nothing to see", "unknown"),
])
def test_runbook_error_patterns_map_to_scenarios(log_line: str, scenario: str) -> None:
    assert run_classify(f"INFO starting\nERROR Model load failed: {log_line}\n") == scenario


def test_oom_killed_container_state_beats_the_log_text() -> None:
    assert run_classify("FileNotFoundError: x", oom_killed=True) == "out_of_memory"


def test_the_matching_line_is_kept_as_evidence() -> None:
    args, _ = normalize_args(ACTIONS["diagnose.classify"], {
        "text": "a\nb FileNotFoundError: gone\nc",
        "rules": [{"pattern": "filenotfound", "scenario": "file_missing_or_corrupted"}]})
    outputs = classify(args)
    assert outputs["matched"] == "b FileNotFoundError: gone"
    assert outputs["rule"] == 0


def test_case_sensitive_rules_when_asked() -> None:
    args, _ = normalize_args(ACTIONS["diagnose.classify"], {
        "text": "filenotfounderror", "ignore_case": False,
        "rules": [{"pattern": "FileNotFoundError", "scenario": "x"}]})
    assert classify(args)["scenario"] is None
