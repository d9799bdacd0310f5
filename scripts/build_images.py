#!/usr/bin/env python3
"""Build the two images (`mobile-multimodal`, `remediator`) without any registry.

Steps, each skipped when its inputs have not changed:
1. the local base image (debootstrap bookworm minbase + python3, then `docker import`);
2. build/requirements-*.txt from pyproject.toml, and build/wheelhouse filled on the host
   (containers here cannot reach the package index);
3. build/dist: the project's own wheel;
4. `docker build --target modelserver|remediator`, tagged `<version>` and `latest`.

Usage: python scripts/build_images.py [--base-image NAME] [--only modelserver|remediator]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / "build"
LOCAL_BASE = "remediator-base:bookworm"
IMAGES = {"modelserver": "mobile-multimodal", "remediator": "remediator"}
# The serving image needs everything; Remediator never imports torch.
MODEL_ONLY_DEPS = ("torch", "numpy", "pillow")


class BuildError(Exception):
    """A build step failed; the message names the step and what to do."""


def log(msg: str) -> None:
    print(f"[images] {msg}", flush=True)


def digest(*parts: bytes) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(part)
    return h.hexdigest()


def tree_digest(*roots: Path) -> str:
    h = hashlib.sha256()
    for root in roots:
        files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
        for path in files:
            if "__pycache__" in path.parts or path.suffix == ".pyc":
                continue
            h.update(str(path.relative_to(ROOT)).encode())
            h.update(path.read_bytes())
    return h.hexdigest()


def stamp_ok(name: str, value: str) -> bool:
    stamp = BUILD / f".{name}.stamp"
    return stamp.exists() and stamp.read_text() == value


def write_stamp(name: str, value: str) -> None:
    replace_file(BUILD / f".{name}.stamp", value)


def replace_file(path: Path, text: str) -> None:
    """Write `path` as a new file: a checkout's build/ may be hard-linked from another
    one, whose copy must not change under it."""
    part = path.with_name(f"{path.name}.part")
    part.write_text(text)
    os.replace(part, path)


def docker_client():  # type: ignore[no-untyped-def]
    import docker
    import docker.errors

    try:
        client = docker.from_env(timeout=600)
        client.ping()
    except docker.errors.DockerException as exc:
        raise BuildError(
            f"cannot reach the Docker engine ({exc}). Start it with `make docker` "
            "(as root) or point DOCKER_HOST at a running engine."
        ) from exc
    return client


def ensure_local_base(client, name: str) -> None:  # type: ignore[no-untyped-def]
    import docker.errors

    try:
        client.images.get(name)
        log(f"base image {name}: present")
        return
    except docker.errors.ImageNotFound:
        pass
    if shutil.which("debootstrap") is None:
        raise BuildError("debootstrap is missing: run `make host` (as root) to install it")
    if os.geteuid() != 0:
        raise BuildError("bootstrapping the base image needs root (debootstrap); run as root")
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="remediator-base-") as tmp:
        rootfs = Path(tmp) / "rootfs"
        log(f"base image {name}: debootstrap bookworm (about a minute, once)")
        run(["debootstrap", "--variant=minbase", "--include=python3,python3-venv",
             "bookworm", str(rootfs)], step="debootstrap")
        tar = subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)
        assert tar.stdout is not None
        resp = client.api.import_image_from_stream(tar.stdout, repository=name.split(":")[0],
                                                   tag=name.split(":")[1])
        tar.wait()
        if tar.returncode != 0:
            raise BuildError(f"tar of the bootstrapped root failed ({tar.returncode})")
        log(f"base image {name}: imported in {time.monotonic() - started:.0f}s ({str(resp)[:60]})")


def run(cmd: list[str], step: str) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-20:])
        raise BuildError(f"{step} failed (exit {proc.returncode}):\n{tail}")


def requirements() -> tuple[str, str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    deps: list[str] = list(project["dependencies"])
    remediator = [d for d in deps if not d.lower().startswith(MODEL_ONLY_DEPS)]
    return "\n".join(deps) + "\n", "\n".join(remediator) + "\n"


def ensure_wheelhouse() -> None:
    model_reqs, rem_reqs = requirements()
    BUILD.mkdir(exist_ok=True)
    replace_file(BUILD / "requirements-modelserver.txt", model_reqs)
    replace_file(BUILD / "requirements-remediator.txt", rem_reqs)
    key = digest(model_reqs.encode())
    wheelhouse = BUILD / "wheelhouse"
    if stamp_ok("wheelhouse", key) and wheelhouse.is_dir():
        log("wheelhouse: up to date")
        return
    log("wheelhouse: collecting wheels on the host (pip wheel)")
    # Added to, not emptied: the wheels already there are used again (torch is large), and
    # pip in the image takes the newest that matches.
    wheelhouse.mkdir(exist_ok=True)
    run([sys.executable, "-m", "pip", "wheel", "--quiet", "-w", str(wheelhouse),
         "--find-links", str(wheelhouse), "-r", str(BUILD / "requirements-modelserver.txt")],
        step="pip wheel (wheelhouse)")
    write_stamp("wheelhouse", key)


def ensure_dist() -> None:
    key = tree_digest(ROOT / "pyproject.toml", ROOT / "app")
    dist = BUILD / "dist"
    if stamp_ok("dist", key) and any(dist.glob("*.whl")):
        log("project wheel: up to date")
        return
    shutil.rmtree(dist, ignore_errors=True)
    run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
         "-w", str(dist), str(ROOT)], step="pip wheel (project)")
    write_stamp("dist", key)
    log("project wheel: built")


def version() -> str:
    return str(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"])


def build_target(client, target: str, base_image: str) -> None:  # type: ignore[no-untyped-def]
    import docker.errors

    repo, ver = IMAGES[target], version()
    started = time.monotonic()
    try:
        image, _ = client.images.build(
            path=str(ROOT), target=target, tag=f"{repo}:{ver}", pull=False, rm=True,
            buildargs={"BASE_IMAGE": base_image}, labels={"org.remediator.version": ver},
        )
    except docker.errors.BuildError as exc:
        lines = [str(c.get("stream", c.get("error", ""))).rstrip() for c in exc.build_log]
        tail = "\n".join(line for line in lines if line)[-3000:]
        raise BuildError(f"docker build --target {target} failed: {exc.msg}\n{tail}") from exc
    image.tag(repo, "latest")
    log(f"{repo}:{ver} and {repo}:latest ({time.monotonic() - started:.1f}s, {image.short_id})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-image", default=os.environ.get("BASE_IMAGE") or LOCAL_BASE)
    parser.add_argument("--only", choices=sorted(IMAGES), action="append")
    args = parser.parse_args(argv)
    started = time.monotonic()
    try:
        client = docker_client()
        if args.base_image == LOCAL_BASE:
            ensure_local_base(client, LOCAL_BASE)
        ensure_wheelhouse()
        ensure_dist()
        for target in args.only or ["modelserver", "remediator"]:
            build_target(client, target, args.base_image)
    except BuildError as exc:
        print(f"make images: {exc}", file=sys.stderr)
        return 1
    log(f"done in {time.monotonic() - started:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
