"""N concurrent clients against a REST predict URL for a bounded time.

Examples:
    python tools/load_test.py \\
      --url=http://127.0.0.1:8501/v1/models/digits:predict \\
      --concurrency=8 --duration_s=10 --image_shape=32,32,3
    python tools/load_test.py --url=... --body_file=request.json \\
      --auth_token=$TOKEN --compare_in_process=/models/digits/1

Each client holds one keep-alive HTTP/1.1 connection and sends the same
request body in a loop: `--body_file`, or one random uint8 image of
`--image_shape` as `{"signature_name": ..., "instances": [image]}` (batch 1).
Requests during the first `--warmup_s` are not counted. Prints the
throughput, the p50 and p99 latency of the successful requests, and the
errors by HTTP status (or exception).

With `--compare_in_process=SAVED_MODEL_DIR` the same run also loads that
SavedModel in this process and calls the request's signature directly on
the decoded request (the same tensors, batch 1 when the request is) from
`--concurrency` threads. REST and in-process alternate `--rounds` times,
`--duration_s` in all for each, so that both meet the same background load;
it prints REST throughput divided by in-process throughput. The clients run
on the same machine as the server and take CPU from it, as in-process calls
need no client.
"""

from __future__ import annotations

import collections
import http.client
import json
import os
import sys
import threading
import time
import urllib.parse

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import flags  # noqa: E402

FLAGS = flags.FlagValues()
flags.DEFINE_string("url", None, "A :predict (or :classify) URL.", flag_values=FLAGS)
flags.DEFINE_integer("concurrency", 8, "Concurrent clients.", flag_values=FLAGS)
flags.DEFINE_float("duration_s", 10.0, "Measured seconds.", flag_values=FLAGS)
flags.DEFINE_float("warmup_s", 1.0, "Seconds sent before measuring.", flag_values=FLAGS)
flags.DEFINE_string("body_file", None, "JSON request body to send.", flag_values=FLAGS)
flags.DEFINE_list(
    "image_shape",
    ["32", "32", "3"],
    "Shape of the random uint8 image (no --body_file).",
    flag_values=FLAGS,
)
flags.DEFINE_string(
    "signature_name", "", "signature_name of the generated body.", flag_values=FLAGS
)
flags.DEFINE_string("auth_token", "", "Bearer token.", flag_values=FLAGS)
flags.DEFINE_string(
    "compare_in_process",
    None,
    "SavedModel dir to time in-process too.",
    flag_values=FLAGS,
)
flags.DEFINE_float("timeout_s", 30.0, "Per-request socket timeout.", flag_values=FLAGS)
flags.DEFINE_integer(
    "rounds",
    3,
    "With --compare_in_process: REST and in-process alternate this often.",
    flag_values=FLAGS,
)


def make_body(image_shape: list[int], signature_name: str = "", seed: int = 0) -> bytes:
    """One random uint8 image as a row-format predict body."""
    import numpy as np

    image = np.random.default_rng(seed).integers(0, 256, image_shape, dtype=np.uint8)
    body = {"instances": [image.tolist()]}
    if signature_name:
        body["signature_name"] = signature_name
    return json.dumps(body).encode("utf-8")


class _Results:
    def __init__(self):
        self.lock = threading.Lock()
        self.latencies: list[float] = []
        self.errors: collections.Counter = collections.Counter()
        self.first_error: dict[str, str] = {}

    def add(self, seconds: float | None, error: str | None = None, detail: str = ""):
        with self.lock:
            if error is None:
                self.latencies.append(seconds)
            else:
                self.errors[error] += 1
                self.first_error.setdefault(error, detail[:300])


def summarize(latencies: list[float], errors: int, seconds: float) -> dict:
    values = sorted(latencies)

    def pct(fraction):
        if not values:
            return 0.0
        return values[max(0, min(len(values) - 1, round(fraction * len(values)) - 1))]

    return {
        "requests": len(values),
        "errors": errors,
        "throughput": len(values) / seconds,
        "p50_ms": pct(0.5) * 1000,
        "p99_ms": pct(0.99) * 1000,
    }


def _rest_raw(
    url: str,
    body: bytes,
    concurrency: int,
    duration_s: float,
    warmup_s: float,
    auth_token: str,
    timeout_s: float,
) -> dict:
    parts = urllib.parse.urlsplit(url)
    if parts.scheme != "http" or not parts.hostname:
        raise ValueError(f"--url must be http://HOST:PORT/...; received {url!r}.")
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    headers = {"Content-Type": "application/json"}
    if auth_token:
        headers["Authorization"] = f"Bearer {auth_token}"
    results = _Results()
    start = time.monotonic() + warmup_s
    end = start + duration_s

    def client():
        connection = None
        while True:
            now = time.monotonic()
            if now >= end:
                break
            if connection is None:
                connection = http.client.HTTPConnection(
                    parts.hostname, parts.port or 80, timeout=timeout_s
                )
            sent = time.monotonic()
            try:
                connection.request("POST", path, body, headers)
                response = connection.getresponse()
                data = response.read()
                status = response.status
                if response.getheader("Connection", "").lower() == "close":
                    connection.close()
                    connection = None
            except (OSError, http.client.HTTPException) as e:
                if connection is not None:
                    connection.close()
                connection = None
                if sent >= start:
                    results.add(None, type(e).__name__, str(e))
                continue
            done = time.monotonic()
            if sent < start or done > end:
                continue
            if status == 200:
                results.add(done - sent)
            else:
                results.add(None, f"HTTP {status}", data.decode("utf-8", "replace"))
        if connection is not None:
            connection.close()

    threads = [threading.Thread(target=client, daemon=True) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=warmup_s + duration_s + timeout_s + 5)
    return {
        "latencies": results.latencies,
        "error_kinds": dict(results.errors),
        "first_errors": results.first_error,
    }


def run_rest(
    url: str,
    body: bytes,
    concurrency: int,
    duration_s: float,
    warmup_s: float = 1.0,
    auth_token: str = "",
    timeout_s: float = 30.0,
) -> dict:
    """Runs the clients; returns throughput, p50_ms, p99_ms, errors and details."""
    raw = _rest_raw(url, body, concurrency, duration_s, warmup_s, auth_token, timeout_s)
    return _merge([raw], duration_s)


class InProcess:
    """The request's signature of a SavedModel, called directly (no server).

    Args:
        saved_model_dir: the SavedModel (e.g. the served version's directory).
        body: the JSON request body; its decoded tensors are what is fed.
    """

    def __init__(self, saved_model_dir: str, body: bytes):
        import tensorflow as tf

        from serving import json_codec
        from serving.signature import Signature

        loaded = tf.saved_model.load(saved_model_dir)
        signatures = {key: Signature(key, fn) for key, fn in loaded.signatures.items()}

        def signature_of(name):
            return signatures[name or "serving_default"]

        name, arrays, _ = json_codec.decode_request(json.loads(body), signature_of)
        signature = signatures[name]
        self._loaded = loaded  # keeps the variables alive
        self.signature_name = name
        self.batch = int(next(iter(arrays.values())).shape[0]) if arrays else 0
        self._function = signature.function
        self._tensors = {
            k: tf.constant(v, dtype=signature.inputs[k].dtype)
            for k, v in arrays.items()
        }

    def run(self, concurrency: int, duration_s: float, warmup_s: float) -> dict:
        """Calls from `concurrency` threads; returns raw latencies."""
        function, tensors = self._function, self._tensors
        results = _Results()
        start = time.monotonic() + warmup_s
        end = start + duration_s

        def worker():
            while True:
                sent = time.monotonic()
                if sent >= end:
                    return
                outputs = {k: v.numpy() for k, v in function(**tensors).items()}
                done = time.monotonic()
                if sent >= start and done <= end and outputs:
                    results.add(done - sent)

        threads = [
            threading.Thread(target=worker, daemon=True) for _ in range(concurrency)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return {"latencies": results.latencies, "error_kinds": {}, "first_errors": {}}


def compare(
    url: str,
    body: bytes,
    saved_model_dir: str,
    concurrency: int,
    duration_s: float,
    warmup_s: float,
    rounds: int,
    auth_token: str = "",
    timeout_s: float = 30.0,
) -> tuple[dict, dict, InProcess]:
    """REST and in-process alternately, `rounds` times each, for `duration_s` in all.

    Alternating makes both see the same background load on a shared machine.
    """
    local = InProcess(saved_model_dir, body)
    rest_raw, local_raw = [], []
    for index in range(rounds):
        warm = warmup_s if index == 0 else 0.2
        rest_raw.append(
            _rest_raw(
                url, body, concurrency, duration_s / rounds, warm, auth_token, timeout_s
            )
        )
        local_raw.append(local.run(concurrency, duration_s / rounds, warm))
    return _merge(rest_raw, duration_s), _merge(local_raw, duration_s), local


def _merge(raws: list[dict], duration_s: float) -> dict:
    latencies = [x for raw in raws for x in raw["latencies"]]
    kinds: collections.Counter = collections.Counter()
    first: dict[str, str] = {}
    for raw in raws:
        kinds.update(raw["error_kinds"])
        for kind, text in raw["first_errors"].items():
            first.setdefault(kind, text)
    summary = summarize(latencies, sum(kinds.values()), duration_s)
    summary["error_kinds"] = dict(kinds)
    summary["first_errors"] = first
    return summary


def _line(summary: dict, unit: str) -> str:
    return (
        f"  {unit} {summary['requests']}  errors {summary['errors']}  "
        f"throughput {summary['throughput']:.1f}/s  p50 {summary['p50_ms']:.2f} ms  "
        f"p99 {summary['p99_ms']:.2f} ms"
    )


def main(argv: list[str]) -> int:
    from tools.tool_flags import parse_flags

    exit_code = parse_flags(FLAGS, argv, __doc__)
    if exit_code is not None:
        return exit_code
    if not FLAGS.url:
        print("load_test: --url is required.", file=sys.stderr)
        return 2
    if FLAGS.body_file:
        with open(FLAGS.body_file, "rb") as f:
            body = f.read()
    else:
        body = make_body([int(d) for d in FLAGS.image_shape], FLAGS.signature_name)
    print(
        f"REST {FLAGS.url}  concurrency={FLAGS.concurrency}  "
        f"duration={FLAGS.duration_s:.1f}s  body={len(body)} bytes",
        flush=True,
    )
    if FLAGS.compare_in_process:
        rest, local, in_process = compare(
            FLAGS.url,
            body,
            FLAGS.compare_in_process,
            FLAGS.concurrency,
            FLAGS.duration_s,
            FLAGS.warmup_s,
            FLAGS.rounds,
            FLAGS.auth_token,
            FLAGS.timeout_s,
        )
    else:
        rest = run_rest(
            FLAGS.url,
            body,
            FLAGS.concurrency,
            FLAGS.duration_s,
            FLAGS.warmup_s,
            FLAGS.auth_token,
            FLAGS.timeout_s,
        )
    print(_line(rest, "requests"), flush=True)
    for kind, count in rest["error_kinds"].items():
        print(f"  error {kind} x{count}: {rest['first_errors'][kind]}")
    if FLAGS.compare_in_process:
        print(
            f"In-process {FLAGS.compare_in_process}  "
            f"signature={in_process.signature_name}  "
            f"batch={in_process.batch}  threads={FLAGS.concurrency}  "
            f"(alternating with REST, {FLAGS.rounds} rounds)"
        )
        print(_line(local, "calls"))
        ratio = rest["throughput"] / local["throughput"] if local["throughput"] else 0.0
        print(f"REST / in-process throughput: {ratio:.2f}x")
    return 0 if rest["requests"] else 1


if __name__ == "__main__":
    # Run from a checkout without installing: make `tools` importable.
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    sys.exit(main(sys.argv))
