"""runbooks/model-load-failure.md and the playbooks cannot drift apart; every alert's
runbook_url names a document the repository has."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlparse

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
RUNBOOK = ROOT / "runbooks" / "model-load-failure.md"
ALERT_FILES = [ROOT / "monitoring" / "alerts.yml"]

# "Steps (`playbooks/model_load_failure.yml`): `logs`, `check`" (may wrap onto more lines,
# up to the blank line that ends the paragraph).
STEPS = re.compile(r"^Steps \(`(?P<file>playbooks/[\w.-]+\.ya?ml)`\):(?P<ids>(?:.+\n?)+?)(?:\n|\Z)",
                   re.MULTILINE)
STEP_ID = re.compile(r"`([a-z_][a-z0-9_]*)`")


def named_steps(text: str) -> list[tuple[str, list[str]]]:
    """(playbook file, step ids) for every Steps line of a runbook."""
    return [(m["file"], STEP_ID.findall(m["ids"])) for m in STEPS.finditer(text)]


def unknown_steps(text: str) -> list[str]:
    """'file: id' for every id a runbook names that its playbook does not have."""
    missing = []
    for name, ids in named_steps(text):
        path = ROOT / name
        if not path.is_file():
            missing.append(f"{name}: no such playbook")
            continue
        have = {step["id"] for step in yaml.safe_load(path.read_text())["steps"]}
        missing += [f"{name}: {step}" for step in ids if step not in have]
    return missing


def sections(text: str) -> dict[str, str]:
    """'### title' -> its body, up to the next heading."""
    parts = re.split(r"^(#{2,3} .+)$", text, flags=re.MULTILINE)
    return {parts[i][4:].strip(): parts[i + 1] for i in range(1, len(parts), 2)
            if parts[i].startswith("### ")}


def slug(heading: str) -> str:
    """GitHub's anchor for a Markdown heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def test_every_step_the_runbook_names_is_in_its_playbook() -> None:
    text = RUNBOOK.read_text()
    named = named_steps(text)
    assert len(named) >= 10, f"{RUNBOOK}: expected a Steps line per section, found {named}"
    assert not unknown_steps(text), f"{RUNBOOK} names steps its playbooks lack: " \
                                    f"{unknown_steps(text)}"


def test_every_section_says_what_automates_it_and_how_to_do_it_by_hand() -> None:
    for title, body in sections(RUNBOOK.read_text()).items():
        assert re.search(r"^Steps[ :(]", body, re.MULTILINE), f"section {title!r}: no Steps line"
        assert re.search(r"^By hand:", body, re.MULTILINE), f"section {title!r}: no By hand"


def test_a_step_id_that_is_not_in_the_playbook_is_caught() -> None:
    text = ("Steps (`playbooks/model_load_failure.yml`): `logs`, `reboot_the_world`,\n"
            "`restart`\n\nSteps (`playbooks/nope.yml`): `logs`\n")
    assert named_steps(text)[0] == ("playbooks/model_load_failure.yml",
                                    ["logs", "reboot_the_world", "restart"])
    assert unknown_steps(text) == ["playbooks/model_load_failure.yml: reboot_the_world",
                                   "playbooks/nope.yml: no such playbook"]


def runbook_urls() -> list[tuple[str, str]]:
    found = []
    for path in ALERT_FILES:
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                if "alert" in rule:
                    found.append((rule["alert"], rule["annotations"]["runbook_url"]))
    return found


@pytest.mark.parametrize(("alert", "url"), runbook_urls())
def test_every_runbook_url_names_a_document_in_the_repository(alert: str, url: str) -> None:
    parsed = urlparse(url)
    # https://github.com/<owner>/<repo>/blob/<branch>/<path in the repository>
    match = re.fullmatch(r"/[^/]+/[^/]+/blob/[^/]+/(?P<path>.+)", parsed.path)
    assert match, f"{alert}: runbook_url {url} is not a link to a file of the repository"
    document = ROOT / match["path"]
    assert document.is_file(), f"{alert}: runbook_url names {match['path']}, not in the repo"
    if parsed.fragment:
        headings = re.findall(r"^#+ (.+)$", document.read_text(), re.MULTILINE)
        assert parsed.fragment in {slug(h) for h in headings}, \
            f"{alert}: {match['path']} has no heading #{parsed.fragment}"


# "  # --- fix: "4. Permissions" -----": a group of playbook steps and the runbook section
# (its ### heading, quoted) that the group automates.
GROUP = re.compile(r'^  # --- (?P<phase>\w+): "(?P<title>[^"]+)"', re.MULTILINE)
STEP_LINE = re.compile(r"^  - id: (?P<id>\w+)", re.MULTILINE)


def playbook_groups(text: str) -> list[tuple[str, list[str]]]:
    """(runbook heading, the step ids under it) for every group header of a playbook."""
    marks = sorted([(m.start(), "group", m["title"]) for m in GROUP.finditer(text)]
                   + [(m.start(), "step", m["id"]) for m in STEP_LINE.finditer(text)])
    groups: list[tuple[str, list[str]]] = []
    for _, kind, name in marks:
        if kind == "group":
            groups.append((name, []))
        else:
            assert groups, f"step {name} comes before any group header"
            groups[-1][1].append(name)
    return groups


def test_the_playbooks_steps_follow_the_runbooks_sections_in_order() -> None:
    """Issue 18: each group of model_load_failure.yml is headed by the runbook section it
    automates, the groups come in the runbook's order (scenarios 1 to 7), every step sits
    under one, and that section's Steps line names it."""
    runbook = sections(RUNBOOK.read_text())
    playbook = (ROOT / "playbooks" / "model_load_failure.yml").read_text()
    groups = playbook_groups(playbook)
    titles = [title for title, _ in groups]
    assert [t for t in runbook if t in titles] == titles, "groups out of the runbook's order"
    assert [t for t in titles if t[:2] in {f"{n}." for n in range(1, 8)}] == [
        t for t in runbook if t[:2] in {f"{n}." for n in range(1, 8)}]  # scenarios 1..7
    steps = [step["id"] for step in yaml.safe_load(playbook)["steps"]]
    assert [s for _, ids in groups for s in ids] == steps  # every step under a header
    for title, ids in groups:
        named = {s for _, found in named_steps(runbook[title]) for s in found}
        assert set(ids) <= named, f"section {title!r} does not name {set(ids) - named}"


def test_a_group_out_of_the_runbooks_order_is_caught() -> None:
    text = ('  # --- fix: "4. Permissions" ---\n  - id: fix_mode\n'
            '  # --- fix: "2. Out of memory while loading" ---\n  - id: raise_memory\n')
    groups = playbook_groups(text)
    assert groups == [("4. Permissions", ["fix_mode"]),
                      ("2. Out of memory while loading", ["raise_memory"])]
    runbook = list(sections(RUNBOOK.read_text()))
    assert [t for t in runbook if t in dict(groups)] != [t for t, _ in groups]
