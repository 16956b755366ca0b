"""kafkaboot.injection: which handler parameters dependency-injector fills."""

import subprocess
import sys
import textwrap

from dependency_injector.wiring import Closing, Provide, inject

from kafkaboot.injection import injected_parameters, unwired_injections


def handler(order: dict, repository: object = Provide["repository"], plain: int = 3) -> None: ...


@inject
def wired(order: dict, repository: object = Provide["repository"]) -> None: ...


def test_provide_defaults_are_injected_parameters():
    assert injected_parameters(handler) == {"repository"}
    assert injected_parameters(lambda order, s=Closing[Provide["s"]]: None) == {"s"}


def test_without_inject_every_injected_parameter_is_unwired():
    assert unwired_injections(handler) == {"repository"}


def test_inject_without_wiring_leaves_the_parameter_unwired():
    assert unwired_injections(wired) == {"repository"}


def test_binding_a_listener_does_not_import_dependency_injector():
    # Its wiring module imports FastAPI: a service without DI must not pay for it.
    code = textwrap.dedent(
        """
        import sys
        from kafkaboot.listener.binding import bind

        def on_order(order: dict) -> None: ...

        bind(on_order, name="on_order", batch=False, manual_ack=False)
        heavy = ("dependency_injector", "fastapi")
        loaded = sorted(m for m in sys.modules if m.split(".")[0] in heavy)
        assert not loaded, loaded
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
