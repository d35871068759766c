"""moto's offline SageMaker runtime: what its invoke_endpoint answers, and how to choose it.

moto does not run a model. ``invoke_endpoint`` answers a canned body (``b"body"``), for any
endpoint name, even one that does not exist, unless answers were queued first through moto's own
results API; each queued answer is then returned once, in order. Queuing an answer proves the
calls and the plumbing around them, never the model: the answer is whatever was queued.
"""

from __future__ import annotations

from collections.abc import Iterable

#: moto's results API for SageMaker endpoints (intercepted in process while ``mock_aws`` is on).
RESULTS_API = "http://motoapi.amazonaws.com/moto-api/static/sagemaker/endpoint-results"


def queue_answers(bodies: Iterable[str | bytes], *, region: str,
                  content_type: str = "application/json", variant: str = "production",
                  account: str = "123456789012") -> int:
    """Queue answers for moto's ``invoke_endpoint`` (while ``moto.mock_aws`` is active).

    Returns
    -------
    int
        How many answers were queued.

    Raises
    ------
    RuntimeError
        If the results API does not answer (moto's mock is off: the request then goes to the
        network, which answers nothing here), or moto refuses the answers.
    """
    import requests

    results = [{"Body": b.decode() if isinstance(b, bytes) else b, "ContentType": content_type,
                "InvokedProductionVariant": variant, "CustomAttributes": ""} for b in bodies]
    try:
        done = requests.post(RESULTS_API, json={"account_id": account, "region": region,
                                                "results": results}, timeout=5)
    except requests.RequestException as err:
        raise RuntimeError(f"moto's results API did not answer ({err}): queue answers only "
                           "inside `with moto.mock_aws():` or after mock_aws().start().") from None
    if done.status_code != 201:
        raise RuntimeError(f"moto refused the answers: {done.status_code} {done.text[:200]}")
    return len(results)
