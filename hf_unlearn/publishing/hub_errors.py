"""One-line messages for a failed exchange with the Hugging Face Hub, and the errors that count as one.

:func:`hub_network_errors` names what a failed Hub exchange raises inside ``hub_guard.hub_session`` (HTTP errors,
redirects, refused retries, transport errors, answers that are not the Hub's JSON) and :func:`describe_hub_error`
words each of them in one line: what failed, where, and the fix. They are used by the model push
(:mod:`hf_unlearn.publishing.hub`), the provenance check and the metrics push to a Space; they live apart from the
push so that those callers get the wording without the upload code, and the push module keeps to the upload itself.
"""

from __future__ import annotations

import json

from . import hub_guard as _guard

__all__ = ["describe_hub_error", "hub_network_errors"]


def _transport_errors() -> tuple[type[BaseException], ...]:
    errors: list[type[BaseException]] = [ConnectionError, TimeoutError, OSError]
    for mod in ("httpx2", "httpx"):
        try:
            errors.append(__import__(mod).HTTPError)
        except (ImportError, AttributeError):
            pass
    return tuple(errors)


def hub_network_errors() -> tuple[type[BaseException], ...]:
    """What a failed Hub exchange raises inside `hub_guard.hub_session` (HTTP errors, redirects, refused retries,
    transport errors and answers that are not the Hub's JSON); `describe_hub_error` words each in one line."""
    from huggingface_hub.errors import HfHubHTTPError

    return (
        HfHubHTTPError,
        _guard.HubRedirectError,
        _guard.HubStatusError,
        _guard.HubRetryError,
        json.JSONDecodeError,
        KeyError,
        TypeError,
        AttributeError,
        IndexError,
    ) + _transport_errors()


def describe_hub_error(
    err: BaseException,
    endpoint: str,
    last_request: str | None = None,
    timeout: float | None = None,
    action: str = "hf-unlearn",
) -> str:
    """One line for a failed Hub exchange: what failed, where (the last request) and the fix."""
    return _describe(err, endpoint, last_request, timeout, action)


def _describe(
    err: BaseException,
    endpoint: str,
    last_request: str | None = None,
    timeout: float | None = None,
    action: str = "a push",
) -> str:
    from huggingface_hub.errors import HfHubHTTPError, OfflineModeIsEnabled

    where = last_request or endpoint
    if isinstance(err, _guard.HubRedirectError):
        return (
            f"the Hub answered {err} (redirects are not followed during a push: check --endpoint and the repo "
            "id, e.g. a renamed repo)"
        )
    if isinstance(err, _guard.HubRetryError):
        return (
            f"{err} on the first try; {action} does not retry: rerun it, or raise --hub_timeout / "
            f"{_guard.HUB_TIMEOUT_ENV} (now {timeout:g} s) if the Hub is slow"
        )
    if isinstance(err, TimeoutError) or type(err).__name__.endswith("Timeout") or "Timeout" in type(err).__name__:
        return (
            f"no answer from {where} within {timeout:g} s ({type(err).__name__}); the Hub may be down or slow: "
            f"retry, or raise --hub_timeout / {_guard.HUB_TIMEOUT_ENV}"
        )
    if isinstance(err, json.JSONDecodeError) or (isinstance(err, (KeyError, TypeError, AttributeError, IndexError))):
        first = (str(err).strip().splitlines() or [""])[0] or "no detail"
        return f"unexpected answer from {where} ({type(err).__name__}: {first}); is {endpoint} a Hugging Face Hub?"
    if isinstance(err, OfflineModeIsEnabled):
        return "offline mode is enabled (HF_HUB_OFFLINE=1); unset it to push"
    is_status = isinstance(err, _guard.HubStatusError)
    if is_status or (isinstance(err, HfHubHTTPError) and getattr(err, "response", None) is not None):
        status = err.status if is_status else err.response.status_code
        try:
            where = err.where if is_status else f"{err.response.request.method} {err.response.request.url}"
        except Exception:
            where = endpoint
        detail = (err.server_message or "").strip().splitlines()
        hint = {
            401: "authentication failed: check that the token is valid (`hf auth whoami`)",
            403: "permission denied: the token needs write access to this namespace",
            404: "not found: check the repo id and revision",
            409: "conflict on the Hub",
            412: "the branch moved during the push: retry",
            429: "rate limited by the Hub: retry later",
        }.get(status, "server error" if status >= 500 else "request rejected")
        return f"HTTP {status} from {where} ({hint})" + (f": {detail[0]}" if detail else "")
    first = (str(err).strip().splitlines() or [""])[0] or "no detail"
    transport = tuple(e for e in _transport_errors() if e is not OSError)
    if isinstance(err, transport):
        if last_request and type(err).__name__ not in ("ConnectError",):  # connected, then the exchange broke
            return (
                f"the connection to the Hub at {endpoint} broke during {last_request} ({type(err).__name__}: {first})"
            )
        return f"could not reach the Hub at {endpoint} ({type(err).__name__}: {first})"
    return f"{type(err).__name__}: {first}"
