"""A second Docker engine over TCP with TLS (a private dockerd, certificates made here):
the right certificates reach it; a wrong client certificate, or a CA that did not sign the
engine's, is refused with a message naming the target and the engine; /readyz says so
without the other targets' engines going down with it."""

from __future__ import annotations

from contextlib import closing
from pathlib import Path

import pytest

from remediator.adapters.engines import Engines
from remediator.core.engines import TlsFiles
from remediator.core.targets import Target
from remediator.errors import RuntimeError_
from tests.harness.second_engine import SecondEngine, make_certs

pytestmark = pytest.mark.docker


def target(name: str, engine: SecondEngine, tls: TlsFiles, container: str = "x") -> Target:
    return Target(name=name, selector={"service": name}, container=container,
                  base_url="http://127.0.0.1:1", docker_host=engine.tls_url, tls=tls)


def test_the_engine_answers_over_tls_with_the_right_certificates(
        second_engine: SecondEngine) -> None:
    with closing(second_engine.client()) as there:
        box = there.containers.run("mobile-multimodal:latest", ["sleep", "300"], detach=True,
                                   entrypoint=[], name="tls-probe")
    try:
        good = target("app-tls", second_engine, second_engine.tls_files(), "tls-probe")
        engines = Engines([good])
        out = engines.call("docker.inspect", {}, good, 30)
        assert out["running"] is True and out["image"] == "mobile-multimodal:latest", out
        assert engines.states()[second_engine.tls_url]["up"] is True
    finally:
        box.remove(force=True)


def test_a_wrong_tls_certificate_is_refused_naming_the_target_and_the_engine(
        second_engine: SecondEngine, tmp_path: Path) -> None:
    stranger = make_certs(tmp_path / "stranger", "stranger")  # another CA, another pair
    ours = second_engine.certs
    wrong_cert = target("app-wrong-cert", second_engine, second_engine.tls_files(stranger))
    wrong_ca = target("app-wrong-ca", second_engine,
                      TlsFiles(str(stranger.ca), str(ours.client_cert), str(ours.client_key)))
    engines = Engines([wrong_cert, wrong_ca])

    with pytest.raises(RuntimeError_) as refused:
        engines.call("docker.inspect", {}, wrong_cert, 30)
    message = str(refused.value)
    assert (f"Docker engine {second_engine.tls_url} (target 'app-wrong-cert') refused the "
            "TLS connection: the engine refused our certificate") in message, message

    with pytest.raises(RuntimeError_) as untrusted:
        engines.call("docker.inspect", {}, wrong_ca, 30)
    message = str(untrusted.value)
    assert (f"Docker engine {second_engine.tls_url} (target 'app-wrong-ca') refused the "
            "TLS connection: the engine's certificate is not signed by the target's "
            "tls.ca") in message, message

    states = engines.states()
    assert {s["up"] for s in states.values()} == {False}, states
    assert any("'app-wrong-cert'" in str(s["error"]) for s in states.values()), states
